//! `palisade-bench steps`: where the time of a sandboxed spawn goes, step by step.
//!
//! The library's child runs its set-up without any hook to time it from outside, and tracers
//! (strace, perf trace) add 10-40 us to every system call, which drowns steps that take a few
//! microseconds. So this experiment replays the same sequence of system calls as
//! `crates/palisade/src/backend/linux/child.rs` (same clone flags, same mounts in the same order,
//! a Landlock ruleset with the same rules, seccomp filters of the same length, init + fork +
//! exec), stamping CLOCK_MONOTONIC into a shared page after each step. Each variant runs
//! interleaved with the real library in the same mode, so the replica's total can be checked
//! against the real thing. The host-side work the library does per command (private /tmp,
//! placeholders, protected-path resolution, the Landlock ruleset) is timed separately, in-process.
//!
//! x86_64 and aarch64 only (raw system call numbers come from the libc crate).

use crate::scratch::{self, Scratch};
use crate::stats;
use palisade::policy::protected::{self, Action};
use palisade::{Network, Policy, Sandbox, SandboxOptions};
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Timestamps in the shared page (index = step).
mod t {
    pub const START: usize = 0; // parent, right before clone
    pub const CHILD_RUNNING: usize = 1;
    pub const ID_MAPS: usize = 2;
    pub const CAPTURED: usize = 3;
    pub const ROOT_RO: usize = 4;
    pub const DEV: usize = 5;
    pub const WRITABLE: usize = 6;
    pub const PROTECTED: usize = 7;
    pub const MASKS: usize = 8;
    pub const PROC: usize = 9;
    pub const LOOPBACK: usize = 10;
    pub const CAPS: usize = 11;
    pub const LANDLOCK: usize = 12;
    pub const SECCOMP1: usize = 13;
    pub const SECCOMP2: usize = 14;
    pub const FORKED: usize = 15; // in the command process, first thing after init's fork
    pub const PRE_EXEC: usize = 16;
    pub const EXECED: usize = 17; // parent: the error pipe reached end of file
    pub const CMD_REAPED: usize = 18; // init: the command has exited
    pub const DONE: usize = 19; // parent: waitpid returned
    pub const N: usize = 20;
}

const LABELS: &[(usize, &str)] = &[
    (t::CHILD_RUNNING, "clone() until the child runs (namespaces created)"),
    (t::ID_MAPS, "setgroups, uid_map, gid_map"),
    (t::CAPTURED, "mounts private + open_tree of writable roots and devices"),
    (t::ROOT_RO, "mount_setattr / read-only (recursive)"),
    (t::DEV, "minimal /dev (tmpfs, 6 devices, pts, 5 links)"),
    (t::WRITABLE, "attach /dev/shm, /tmp, workspace"),
    (t::PROTECTED, "protected paths: open_tree + read-only + attach each"),
    (t::MASKS, "deny-read masks and hidden socket folders (tmpfs)"),
    (t::PROC, "/dev read-only + mount /proc"),
    (t::LOOPBACK, "bring up lo (socket + ioctl)"),
    (t::CAPS, "chdir / + drop capabilities (41 prctl + capset)"),
    (t::LANDLOCK, "no_new_privs + landlock_restrict_self"),
    (t::SECCOMP1, "seccomp filter 1 (219 instructions)"),
    (t::SECCOMP2, "seccomp filter 2 (10 instructions)"),
    (t::FORKED, "init: block signals + fork the command"),
    (t::PRE_EXEC, "command: reset signals, close_range, chdir"),
    (t::EXECED, "execve until the parent sees it (error pipe EOF)"),
    (t::CMD_REAPED, "command runs /bin/true and exits; init reaps it"),
    (t::DONE, "init exits, namespaces torn down, parent's waitpid returns"),
];

#[repr(C)]
struct Shared {
    t: [u64; t::N],
    failed_step: u64,
    errno: u64,
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into ts; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// One configuration of the replica.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// user + mount + pid + network namespaces (the default policy)
    Default,
    /// user + mount + pid namespaces (network on)
    NetOn,
    /// user + mount namespaces (network on, keep_processes: no init)
    NoPid,
    /// no namespaces (Landlock-only mode, network on)
    LandlockOnly,
}

impl Variant {
    const ALL: [Variant; 4] = [Variant::Default, Variant::NetOn, Variant::NoPid, Variant::LandlockOnly];
    fn name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::NetOn => "net-on",
            Variant::NoPid => "no-pidns",
            Variant::LandlockOnly => "landlock-only",
        }
    }
    fn flags(self) -> libc::c_ulong {
        let (u, m, p, n) = (libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWPID, libc::CLONE_NEWNET);
        (match self {
            Variant::Default => u | m | p | n,
            Variant::NetOn => u | m | p,
            Variant::NoPid => u | m,
            Variant::LandlockOnly => 0,
        }) as libc::c_ulong
    }
    fn namespaces(self) -> bool {
        self != Variant::LandlockOnly
    }
    fn init(self) -> bool {
        matches!(self, Variant::Default | Variant::NetOn)
    }
    fn net(self) -> bool {
        self == Variant::Default
    }
}

enum Prot {
    Pin(CString),
    ReadOnly(CString),
}

/// Everything the child needs, made before clone (the child allocates nothing).
struct Plan {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    /// (source, target) of the writable trees.
    writable: Vec<(CString, CString)>,
    devices: Vec<CString>,
    protected: Vec<Prot>,
    masks: Vec<CString>,
    hidden: Vec<CString>,
    ws: CString,
    seccomp1: Vec<libc::sock_filter>,
    seccomp2: Vec<libc::sock_filter>,
    program: CString,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

const DEVICES: &[&CStr] = &[c"/dev/null", c"/dev/zero", c"/dev/full", c"/dev/random", c"/dev/urandom", c"/dev/tty"];
const DEV_LINKS: &[(&CStr, &CStr)] = &[
    (c"pts/ptmx", c"/dev/ptmx"),
    (c"/proc/self/fd", c"/dev/fd"),
    (c"/proc/self/fd/0", c"/dev/stdin"),
    (c"/proc/self/fd/1", c"/dev/stdout"),
    (c"/proc/self/fd/2", c"/dev/stderr"),
];

fn cs(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in paths")
}

/// A filter of `len` instructions shaped like what seccompiler emits for the library's rules:
/// check the architecture (kill on a foreign one), load the syscall number, then one block per
/// listed syscall (`jeq nr` that skips the block when it does not match, the block's body, a
/// return), and allow at the end. Its length and shape (so its JIT and cache-building cost)
/// follow the library's filter; the syscall numbers it lists do not exist, so it blocks nothing.
fn synthetic_filter(len: usize, errno: u32) -> Vec<libc::sock_filter> {
    assert!((8..=250).contains(&len));
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let mut f = vec![
        ins(0x20, 0, 0, 4),           // ld [arch]
        ins(0x15, 1, 0, AUDIT_ARCH),  // jeq #arch, skip the kill
        ins(0x06, 0, 0, 0x8000_0000), // ret kill_process
        ins(0x20, 0, 0, 0),           // ld [nr]
    ];
    let body = len - f.len() - 1;
    let blocks = body.div_ceil(5);
    for b in 0..blocks {
        let size = body / blocks + usize::from(b < body % blocks);
        f.push(ins(0x15, 0, (size - 1) as u8, 1000 + b as u32)); // jeq #nr, else next block
        for _ in 0..size - 2 {
            f.push(ins(0x20, 0, 0, 0)); // the rule's body (argument checks in the real filter)
        }
        f.push(ins(0x06, 0, 0, 0x0005_0000 | errno)); // ret errno
    }
    f.push(ins(0x06, 0, 0, 0x7fff_0000)); // ret allow
    debug_assert_eq!(f.len(), len);
    f
}

mod ll {
    pub const EXECUTE: u64 = 1 << 0;
    pub const WRITE_FILE: u64 = 1 << 1;
    pub const READ_FILE: u64 = 1 << 2;
    pub const READ_DIR: u64 = 1 << 3;
    pub const TRUNCATE: u64 = 1 << 14;
    pub const IOCTL_DEV: u64 = 1 << 15;

    pub fn all(abi: i64) -> u64 {
        let mut a = (1u64 << 13) - 1;
        if abi >= 2 {
            a |= 1 << 13; // refer
        }
        if abi >= 3 {
            a |= TRUNCATE;
        }
        if abi >= 5 {
            a |= IOCTL_DEV;
        }
        a
    }
    pub fn file_rights(abi: i64) -> u64 {
        all(abi) & (EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV)
    }
}

#[repr(C, packed)]
struct PathBeneath {
    allowed: u64,
    parent_fd: i32,
}

/// The Landlock ruleset of a default-policy spawn (writes confined to the writable roots, the
/// private tmp and the devices), made with raw system calls as the landlock crate makes it.
fn landlock_ruleset(write: &[PathBuf], scope: bool) -> Result<RawFd, String> {
    // SAFETY: with a null attribute this only returns the ABI version.
    let abi = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    if abi < 1 {
        return Err("Landlock is not available".into());
    }
    let handled = ll::all(abi) & !(ll::EXECUTE | ll::READ_FILE | ll::READ_DIR);
    let attr: [u64; 3] = [handled, 0, if scope && abi >= 6 { 2 } else { 0 }];
    let size = if abi >= 6 { 24 } else if abi >= 4 { 16 } else { 8 };
    // SAFETY: attr is a valid landlock_ruleset_attr of at least `size` bytes.
    let fd = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, attr.as_ptr(), size as usize, 0u32) };
    if fd < 0 {
        return Err(format!("landlock_create_ruleset: {}", std::io::Error::last_os_error()));
    }
    let fd = fd as RawFd;
    let add = |p: &Path, access: u64| -> Result<(), String> {
        let c = cs(p);
        // SAFETY: O_PATH open of a NUL-terminated path.
        let pfd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if pfd < 0 {
            return Ok(());
        }
        let access = if p.is_dir() { access } else { access & ll::file_rights(abi) };
        let rule = PathBeneath { allowed: access, parent_fd: pfd };
        // SAFETY: a valid path_beneath attribute for rule type 1.
        let r = unsafe { libc::syscall(libc::SYS_landlock_add_rule, fd, 1u32, &rule as *const PathBeneath, 0u32) };
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(pfd) };
        if r < 0 {
            return Err(format!("landlock_add_rule {}: {}", p.display(), std::io::Error::last_os_error()));
        }
        Ok(())
    };
    for w in write {
        add(w, handled)?;
    }
    let device = ll::WRITE_FILE | ll::TRUNCATE | ll::IOCTL_DEV;
    for d in ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts"] {
        add(Path::new(d), device & handled)?;
    }
    Ok(fd)
}

/// `/proc/self/fd/N` into a stack buffer.
fn fd_path(fd: RawFd, buf: &mut [u8; 32]) -> *const libc::c_char {
    const P: &[u8] = b"/proc/self/fd/";
    buf[..P.len()].copy_from_slice(P);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.max(0) as u32, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[P.len() + i] = digits[len - 1 - i];
    }
    buf[P.len() + len] = 0;
    buf.as_ptr().cast()
}

const OPEN_TREE_CLONE: u32 = 1;
const AT_RECURSIVE: u32 = 0x8000;
const MOVE_F_EMPTY: u32 = 0x4;
const MOVE_T_EMPTY: u32 = 0x40;
const ATTR_RDONLY: u64 = 1;

#[repr(C)]
struct MountAttr {
    set: u64,
    clr: u64,
    propagation: u64,
    userns_fd: u64,
}

// The raw system calls of the child. Each returns the errno on failure.
fn sc(r: libc::c_long) -> Result<libc::c_long, i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}
unsafe fn open_tree(dfd: RawFd, path: *const libc::c_char, extra: u32) -> Result<RawFd, i32> {
    sc(libc::syscall(libc::SYS_open_tree, dfd, path, OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | AT_RECURSIVE | extra))
        .map(|f| f as RawFd)
}
unsafe fn move_mount(from: RawFd, to_dfd: RawFd, to: *const libc::c_char, flags: u32) -> Result<(), i32> {
    sc(libc::syscall(libc::SYS_move_mount, from, c"".as_ptr(), to_dfd, to, flags)).map(drop)
}
unsafe fn set_ro(dfd: RawFd, path: *const libc::c_char, flags: u32) -> Result<(), i32> {
    let a = MountAttr { set: ATTR_RDONLY, clr: 0, propagation: 0, userns_fd: 0 };
    sc(libc::syscall(libc::SYS_mount_setattr, dfd, path, flags, &a as *const MountAttr, std::mem::size_of::<MountAttr>()))
        .map(drop)
}
unsafe fn openat2_nofollow(path: *const libc::c_char) -> Result<RawFd, i32> {
    let how: [u64; 3] = [(libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0x04];
    sc(libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, path, how.as_ptr(), 24usize)).map(|f| f as RawFd)
}
unsafe fn mount(src: *const libc::c_char, dst: *const libc::c_char, fs: *const libc::c_char, flags: libc::c_ulong, data: *const libc::c_char) -> Result<(), i32> {
    sc(libc::mount(src, dst, fs, flags, data.cast()) as libc::c_long).map(drop)
}
unsafe fn write_file(path: &CStr, data: &[u8]) -> Result<(), i32> {
    let fd = sc(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) as libc::c_long)? as RawFd;
    let r = sc(libc::write(fd, data.as_ptr().cast(), data.len()) as libc::c_long);
    libc::close(fd);
    r.map(drop)
}

/// The child's side: the library's steps, stamped. Returns only on failure.
unsafe fn child(plan: &Plan, v: Variant, sh: *mut Shared, ruleset: RawFd, err_fd: RawFd) -> (usize, i32) {
    let stamp = |i: usize| (*sh).t[i] = now_ns();
    macro_rules! step {
        ($i:expr, $e:expr) => {
            if let Err(e) = $e {
                return ($i, e);
            }
        };
    }
    stamp(t::CHILD_RUNNING);
    if v.namespaces() {
        step!(t::ID_MAPS, write_file(c"/proc/self/setgroups", b"deny"));
        step!(t::ID_MAPS, write_file(c"/proc/self/uid_map", &plan.uid_map));
        step!(t::ID_MAPS, write_file(c"/proc/self/gid_map", &plan.gid_map));
        stamp(t::ID_MAPS);
        step!(t::CAPTURED, mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()));
        let mut trees = [-1; 8];
        for (i, (src, _)) in plan.writable.iter().enumerate() {
            match open_tree(libc::AT_FDCWD, src.as_ptr(), 0) {
                Ok(fd) => trees[i] = fd,
                Err(e) => return (t::CAPTURED, e),
            }
        }
        let mut devs = [-1; 8];
        for (i, d) in plan.devices.iter().enumerate() {
            match open_tree(libc::AT_FDCWD, d.as_ptr(), 0) {
                Ok(fd) => devs[i] = fd,
                Err(e) => return (t::CAPTURED, e),
            }
        }
        stamp(t::CAPTURED);
        step!(t::ROOT_RO, set_ro(libc::AT_FDCWD, c"/".as_ptr(), AT_RECURSIVE));
        stamp(t::ROOT_RO);
        let nosuid_noexec = libc::MS_NOSUID | libc::MS_NOEXEC;
        step!(t::DEV, mount(c"tmpfs".as_ptr(), c"/dev".as_ptr(), c"tmpfs".as_ptr(), nosuid_noexec, c"mode=755,size=64k".as_ptr()));
        for (i, d) in DEVICES.iter().enumerate() {
            let fd = libc::open(d.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o666);
            if fd < 0 {
                return (t::DEV, errno());
            }
            libc::close(fd);
            step!(t::DEV, move_mount(devs[i], libc::AT_FDCWD, d.as_ptr(), MOVE_F_EMPTY));
        }
        if libc::mkdir(c"/dev/pts".as_ptr(), 0o755) < 0 {
            return (t::DEV, errno());
        }
        step!(t::DEV, move_mount(devs[DEVICES.len()], libc::AT_FDCWD, c"/dev/pts".as_ptr(), MOVE_F_EMPTY));
        for (target, link) in DEV_LINKS {
            if libc::symlink(target.as_ptr(), link.as_ptr()) < 0 {
                return (t::DEV, errno());
            }
        }
        stamp(t::DEV);
        libc::mkdir(c"/dev/shm".as_ptr(), 0o755);
        for (i, (_, target)) in plan.writable.iter().enumerate() {
            step!(t::WRITABLE, move_mount(trees[i], libc::AT_FDCWD, target.as_ptr(), MOVE_F_EMPTY));
        }
        stamp(t::WRITABLE);
        for p in &plan.protected {
            let (path, ro) = match p {
                Prot::Pin(p) => (p, false),
                Prot::ReadOnly(p) => (p, true),
            };
            let target = match openat2_nofollow(path.as_ptr()) {
                Ok(fd) => fd,
                Err(e) => return (t::PROTECTED, e),
            };
            let tree = match open_tree(target, c"".as_ptr(), libc::AT_EMPTY_PATH as u32) {
                Ok(fd) => fd,
                Err(e) => return (t::PROTECTED, e),
            };
            if ro {
                step!(t::PROTECTED, set_ro(tree, c"".as_ptr(), libc::AT_EMPTY_PATH as u32 | AT_RECURSIVE));
            }
            step!(t::PROTECTED, move_mount(tree, target, c"".as_ptr(), MOVE_F_EMPTY | MOVE_T_EMPTY));
            libc::close(tree);
            libc::close(target);
        }
        stamp(t::PROTECTED);
        let ro_flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        for (list, data) in [(&plan.hidden, c"mode=755,size=4k"), (&plan.masks, c"mode=000,size=4k")] {
            for p in list.iter() {
                let fd = match openat2_nofollow(p.as_ptr()) {
                    Ok(fd) => fd,
                    Err(libc::ENOENT) => continue,
                    Err(e) => return (t::MASKS, e),
                };
                let mut buf = [0u8; 32];
                step!(t::MASKS, mount(c"tmpfs".as_ptr(), fd_path(fd, &mut buf), c"tmpfs".as_ptr(), ro_flags, data.as_ptr()));
                libc::close(fd);
            }
        }
        stamp(t::MASKS);
        for fd in trees.iter().chain(devs.iter()).filter(|f| **f >= 0) {
            libc::close(*fd);
        }
        step!(t::PROC, set_ro(libc::AT_FDCWD, c"/dev".as_ptr(), 0));
        if v.init() {
            step!(t::PROC, mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, std::ptr::null()));
        }
        stamp(t::PROC);
        if v.net() {
            let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                return (t::LOOPBACK, errno());
            }
            let mut ifr: libc::ifreq = std::mem::zeroed();
            ifr.ifr_name[0] = b'l' as libc::c_char;
            ifr.ifr_name[1] = b'o' as libc::c_char;
            ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) < 0 {
                return (t::LOOPBACK, errno());
            }
            libc::close(s);
        }
        stamp(t::LOOPBACK);
        if libc::chdir(c"/".as_ptr()) < 0 {
            return (t::CAPS, errno());
        }
    } else {
        for i in [t::ID_MAPS, t::CAPTURED, t::ROOT_RO, t::DEV, t::WRITABLE, t::PROTECTED, t::MASKS, t::PROC, t::LOOPBACK] {
            stamp(i);
        }
    }
    // Capabilities: the bounding set, ambient set and securebits, then capset to nothing.
    if v.namespaces() || libc::geteuid() == 0 {
        for cap in 0..=40 {
            libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
        }
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0);
        let hdr = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this process
        let data = [0u32; 6];
        libc::syscall(libc::SYS_capset, hdr.as_ptr(), data.as_ptr());
    }
    stamp(t::CAPS);
    step!(t::LANDLOCK, sc(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long));
    step!(t::LANDLOCK, sc(libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32)));
    libc::close(ruleset);
    stamp(t::LANDLOCK);
    for (i, f) in [(t::SECCOMP1, &plan.seccomp1), (t::SECCOMP2, &plan.seccomp2)] {
        let prog = libc::sock_fprog { len: f.len() as u16, filter: f.as_ptr() as *mut libc::sock_filter };
        step!(i, sc(libc::syscall(libc::SYS_seccomp, 1u32, 0u32, &prog as *const libc::sock_fprog)));
        stamp(i);
    }
    if v.init() {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        let cmd = libc::fork();
        if cmd < 0 {
            return (t::FORKED, errno());
        }
        if cmd > 0 {
            libc::close(err_fd);
            let mut st = 0;
            libc::waitpid(cmd, &mut st, 0);
            stamp(t::CMD_REAPED);
            libc::_exit(0);
        }
        stamp(t::FORKED);
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    } else {
        stamp(t::FORKED);
    }
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32); // CLOSE_RANGE_CLOEXEC
    if libc::chdir(plan.ws.as_ptr()) < 0 {
        return (t::PRE_EXEC, errno());
    }
    stamp(t::PRE_EXEC);
    libc::execve(plan.program.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
    (t::EXECED, errno())
}

fn make_plan(scratch: &Scratch, ws: &Path, tmp_root: &Path, actions: &[Action], v: Variant) -> Plan {
    // SAFETY: geteuid and getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let writable = vec![
        (cs(&tmp_root.join("shm")), c"/dev/shm".to_owned()),
        (cs(&tmp_root.join("tmp")), c"/tmp".to_owned()),
        (cs(ws), cs(ws)),
    ];
    let protected = actions
        .iter()
        .map(|a| match a {
            Action::Pin(p) => Prot::Pin(cs(p)),
            Action::ReadOnly(p) | Action::Placeholder { path: p, .. } => Prot::ReadOnly(cs(p)),
        })
        .collect();
    let masks = scratch.existing_deny_read_dirs().iter().map(|p| cs(p)).collect();
    let hidden = if v.net() {
        scratch::socket_dirs(&[ws]).iter().map(|p| cs(p)).collect()
    } else {
        Vec::new()
    };
    let mut devices: Vec<CString> = DEVICES.iter().map(|d| (*d).to_owned()).collect();
    devices.push(c"/dev/pts".to_owned());
    let program = c"/bin/true".to_owned();
    // The CString's buffer does not move with the Plan, so the pointer stays valid.
    let argv = vec![program.as_ptr(), std::ptr::null()];
    let envp = vec![c"PALISADE_SANDBOX=1".as_ptr(), std::ptr::null()];
    Plan {
        uid_map: format!("{euid} {euid} 1\n").into_bytes(),
        gid_map: format!("{egid} {egid} 1\n").into_bytes(),
        writable,
        devices,
        protected,
        masks,
        hidden,
        ws: cs(ws),
        seccomp1: synthetic_filter(219, libc::EPERM as u32),
        seccomp2: synthetic_filter(10, libc::ENOSYS as u32),
        program,
        argv,
        envp,
    }
}

/// One replica spawn; returns the stamps relative to the start, in ms (NaN where not stamped).
fn replica_once(plan: &Plan, write: &[PathBuf], v: Variant, sh: *mut Shared) -> Result<[f64; t::N], String> {
    let ruleset = landlock_ruleset(write, true)?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills fds; sh points to a live shared mapping.
    unsafe {
        libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC);
        (*sh).t = [0; t::N];
        (*sh).failed_step = 0;
        (*sh).t[t::START] = now_ns();
    }
    // SAFETY: fork-style clone; the child only makes raw system calls on data prepared above.
    let pid = unsafe { libc::syscall(libc::SYS_clone, v.flags() | libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: in the child, which ends in execve or _exit.
        unsafe {
            libc::close(fds[0]);
            let (step, e) = child(plan, v, sh, ruleset, fds[1]);
            (*sh).failed_step = step as u64;
            (*sh).errno = e as u64;
            libc::_exit(1);
        }
    }
    // SAFETY: closing our copies of descriptors we own.
    unsafe {
        libc::close(ruleset);
        libc::close(fds[1]);
    }
    if pid < 0 {
        // SAFETY: as above.
        unsafe { libc::close(fds[0]) };
        return Err(format!("clone: {}", std::io::Error::last_os_error()));
    }
    let mut b = [0u8; 1];
    // SAFETY: reads into a local buffer until end of file; then closes the pipe.
    unsafe {
        while libc::read(fds[0], b.as_mut_ptr().cast(), 1) > 0 {}
        (*sh).t[t::EXECED] = now_ns();
        libc::close(fds[0]);
    }
    let mut st = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut st, 0) };
    let done = now_ns();
    // SAFETY: the child and its descendants have exited; the page is only ours now.
    let s = unsafe { &*sh };
    if s.failed_step != 0 || !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
        let step = LABELS.iter().find(|(i, _)| *i as u64 == s.failed_step).map(|(_, l)| *l).unwrap_or("?");
        return Err(format!(
            "replica ({}) failed at \"{step}\": {}",
            v.name(),
            std::io::Error::from_raw_os_error(s.errno as i32)
        ));
    }
    let mut out = [f64::NAN; t::N];
    for (i, o) in out.iter_mut().enumerate() {
        let stamp = if i == t::DONE { done } else { s.t[i] };
        if stamp != 0 {
            *o = (stamp as f64 - s.t[t::START] as f64) / 1e6;
        }
    }
    Ok(out)
}

/// Whether a step happens at all in a variant.
fn applies(v: Variant, step: usize) -> bool {
    match step {
        t::ID_MAPS | t::CAPTURED | t::ROOT_RO | t::DEV | t::WRITABLE | t::PROTECTED | t::MASKS | t::PROC => v.namespaces(),
        t::LOOPBACK => v.net(),
        t::FORKED | t::CMD_REAPED => v.init(),
        _ => true,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    stats::percentile(&v, 50.0)
}

fn time_it(n: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let mut d = Vec::with_capacity(n);
    for _ in 0..n + 5 {
        let t0 = Instant::now();
        f()?;
        d.push(t0.elapsed());
    }
    Ok(stats::summarize(&d[5..]).median)
}

fn mkdir_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().mode(mode).create(p)?;
    if mode & 0o1000 != 0 {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// What the library does on the host per command, each timed on its own.
fn host_side(scratch: &Scratch, ws: &Path, n: usize, placeholders: &[PathBuf]) -> Result<Vec<(String, f64)>, String> {
    let e = |e: std::io::Error| e.to_string();
    let mut out = Vec::new();
    let private_tmp = |base: PathBuf| {
        let e = |e: std::io::Error| e.to_string();
        move || -> Result<(), String> {
            let mut rnd = [0u8; 8];
            // SAFETY: getrandom writes at most 8 bytes into rnd.
            unsafe { libc::getrandom(rnd.as_mut_ptr().cast(), 8, 0) };
            let d = base.join(format!("palisade-bench-tmp-{}", u64::from_ne_bytes(rnd)));
            mkdir_mode(&d, 0o700).map_err(e)?;
            mkdir_mode(&d.join("tmp"), 0o1777).map_err(e)?;
            mkdir_mode(&d.join("shm"), 0o1777).map_err(e)?;
            std::fs::remove_dir_all(&d).map_err(e)
        }
    };
    let tmp = std::env::temp_dir();
    let fs_of = |p: &Path| -> String {
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        let c = cs(p);
        // SAFETY: statfs into a zeroed struct.
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return "?".into();
        }
        match st.f_type as i64 {
            0x0102_1994 => "tmpfs".into(),
            0xEF53 => "ext4".into(),
            0x9123_683E => "btrfs".into(),
            0x5846_5342 => "xfs".into(),
            0x794c_7630 => "overlayfs".into(),
            other => format!("fs 0x{other:x}"),
        }
    };
    out.push((
        format!("private tmp: mkdir x3 + chmod x2 + remove_dir_all in {} ({})", tmp.display(), fs_of(&tmp)),
        time_it(n, private_tmp(tmp.clone()))?,
    ));
    if Path::new("/dev/shm").is_dir() && fs_of(&tmp) != "tmpfs" {
        out.push(("  the same in /dev/shm (tmpfs), for comparison".into(), time_it(n, private_tmp("/dev/shm".into()))?));
    }

    // Placeholders: a copy of the workspace's shape without them, so that each round creates,
    // records and removes the same set the library does.
    let ph_root = scratch.root.join("ph-ws");
    let rel: Vec<PathBuf> = placeholders.iter().filter_map(|p| p.strip_prefix(ws).ok().map(Path::to_path_buf)).collect();
    for r in &rel {
        if let Some(parent) = r.parent() {
            std::fs::create_dir_all(ph_root.join(parent)).map_err(e)?;
        }
    }
    let record = scratch.root.join("ph.record");
    out.push((
        format!("placeholders: {} x (mkdir + append to the record), then {} x rmdir (on {})", rel.len(), rel.len(), fs_of(ws)),
        time_it(n, || {
            use std::io::Write;
            for r in &rel {
                let p = ph_root.join(r);
                mkdir_mode(&p, 0o755).map_err(e)?;
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&record).map_err(e)?;
                writeln!(f, "{}", p.display()).map_err(e)?;
            }
            for r in rel.iter().rev() {
                std::fs::remove_dir(ph_root.join(r)).map_err(e)?;
            }
            std::fs::remove_file(&record).map_err(e)
        })?,
    ));
    let patterns: Vec<String> = protected::DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect();
    out.push((
        "protected-path resolution (protected::resolve on the real filesystem)".into(),
        time_it(n, || protected::resolve(&ph_root, &patterns, &protected::RealFs).map(drop).map_err(|e| e.to_string()))?,
    ));
    let write = vec![ws.to_path_buf(), tmp.clone()];
    out.push((
        "Landlock ruleset: create + 11 rules (open O_PATH, add_rule)".into(),
        time_it(n, || {
            let fd = landlock_ruleset(&write, true)?;
            // SAFETY: closing the ruleset we made.
            unsafe { libc::close(fd) };
            Ok(())
        })?,
    ));
    let policy = Policy::new(&scratch.workspace, Some(&scratch.home));
    out.push(("environment filter (policy.env.filter of this process's variables)".into(), time_it(n, || {
        std::hint::black_box(policy.env.filter(std::env::vars_os()));
        Ok(())
    })?));
    Ok(out)
}

fn library_for(v: Variant, scratch: &Scratch) -> Result<Sandbox, String> {
    let mut p = Policy::new(&scratch.workspace, Some(&scratch.home));
    let mut o = SandboxOptions::default();
    match v {
        Variant::Default => {}
        Variant::NetOn => p.network = Network::On,
        Variant::NoPid => {
            p.network = Network::On;
            p.keep_processes = true;
        }
        Variant::LandlockOnly => {
            p.network = Network::On;
            o = SandboxOptions { landlock_only: true, accept_unprotected_paths: true };
        }
    }
    Sandbox::with_options(p, o).map_err(|e| format!("library ({}): {e}", v.name()))
}

pub fn main(scratch: &Scratch, iterations: usize, json: bool) -> Result<(), String> {
    // The replica runs in its own copy of the workspace whose placeholders exist throughout; the
    // real library runs in the original one, making and removing its placeholders per command.
    let ws = &scratch.root.join("ws-replica");
    scratch::populate_workspace(ws).map_err(|e| e.to_string())?;
    let patterns: Vec<String> = protected::DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect();
    let actions = protected::resolve(ws, &patterns, &protected::RealFs).map_err(|e| e.to_string())?;
    let placeholders: Vec<PathBuf> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Placeholder { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect();
    let host = host_side(scratch, ws, iterations.min(300), &placeholders)?;

    // The replica's placeholders exist for the whole run (the library makes them per command;
    // that cost is in the host-side list above).
    for p in &placeholders {
        std::fs::create_dir_all(p).map_err(|e| format!("placeholder {}: {e}", p.display()))?;
    }
    let tmp_root = scratch.root.join("private-tmp");
    for d in ["tmp", "shm"] {
        use std::os::unix::fs::PermissionsExt;
        let dir = tmp_root.join(d);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).map_err(|e| e.to_string())?;
    }
    // SAFETY: an anonymous shared mapping of one page, unmapped at the end.
    let page = unsafe {
        libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
    };
    if page == libc::MAP_FAILED {
        return Err("mmap failed".into());
    }
    let sh = page as *mut Shared;

    let mut variants = Vec::new();
    for v in Variant::ALL {
        let plan = make_plan(scratch, ws, &tmp_root, &actions, v);
        let mut write = vec![ws.clone(), tmp_root.join("tmp")];
        if v.namespaces() {
            write.push(tmp_root.join("shm"));
        }
        let sb = library_for(v, scratch)?;
        let ok = (0..10).try_for_each(|_| replica_once(&plan, &write, v, sh).map(drop));
        match ok {
            Ok(()) => variants.push((v, plan, write, sb)),
            Err(e) => eprintln!("steps: {} skipped: {e}", v.name()),
        }
    }
    let rounds = 10;
    let per_round = iterations.div_ceil(rounds).max(1);
    let mut stamps: Vec<Vec<[f64; t::N]>> = variants.iter().map(|_| Vec::new()).collect();
    let mut lib: Vec<Vec<Duration>> = variants.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, (v, plan, write, sb)) in variants.iter().enumerate() {
            for _ in 0..per_round {
                stamps[i].push(replica_once(plan, write, *v, sh)?);
                let t0 = Instant::now();
                let st = sb.command("/bin/true").status().map_err(|e| e.to_string())?;
                lib[i].push(t0.elapsed());
                if !st.success() {
                    return Err(format!("library ({}): {st}", v.name()));
                }
            }
        }
    }
    // SAFETY: unmapping the page mapped above; no child uses it any more.
    unsafe { libc::munmap(page, 4096) };
    for p in placeholders.iter().rev() {
        let _ = std::fs::remove_dir(p);
    }

    // Per-step medians: each step's duration is the time since the previous stamped step.
    let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();
    for &(step, label) in LABELS {
        let per_variant = variants
            .iter()
            .enumerate()
            .map(|(i, (v, ..))| {
                if !applies(*v, step) {
                    return f64::NAN;
                }
                median(
                    stamps[i]
                        .iter()
                        .map(|s| {
                            let prev = (0..step).rev().find(|&j| s[j].is_finite() && applies(*v, j)).unwrap_or(0);
                            s[step] - s[prev]
                        })
                        .collect(),
                )
            })
            .collect();
        rows.push((label, per_variant));
    }
    let totals: Vec<f64> = stamps.iter().map(|s| median(s.iter().map(|x| x[t::DONE]).collect())).collect();
    let lib_totals: Vec<f64> = lib.iter().map(|d| stats::summarize(d).median).collect();

    let mut out: Box<dyn std::io::Write> = if json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let w = 60;
    let _ = writeln!(
        out,
        "Step-by-step replica of a sandboxed spawn of /bin/true (median ms of {} runs per variant, interleaved with the real library)\n",
        per_round * rounds
    );
    let _ = write!(out, "{:<w$}", "step");
    for (v, ..) in &variants {
        let _ = write!(out, " {:>13}", v.name());
    }
    let _ = writeln!(out);
    for (label, vals) in &rows {
        let _ = write!(out, "{label:<w$}");
        for x in vals {
            if x.is_finite() {
                let _ = write!(out, " {x:>13.3}");
            } else {
                let _ = write!(out, " {:>13}", "-");
            }
        }
        let _ = writeln!(out);
    }
    let _ = write!(out, "{:<w$}", "replica total (clone to waitpid)");
    for x in &totals {
        let _ = write!(out, " {x:>13.3}");
    }
    let _ = writeln!(out);
    let _ = write!(out, "{:<w$}", "real library, same mode (whole status() call)");
    for x in &lib_totals {
        let _ = write!(out, " {x:>13.3}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "\nhost side, per command, in the library's process (median ms):");
    for (label, ms) in &host {
        let _ = writeln!(out, "  {label:<w$} {ms:>8.3}");
    }
    let _ = writeln!(
        out,
        "\nThe replica's private tmp and placeholders exist beforehand, so its total leaves out the host-side\nwork above; replica total + host side should come close to the real library's time."
    );
    if json {
        let steps: Vec<_> = rows
            .iter()
            .map(|(label, vals)| {
                let m: serde_json::Map<String, serde_json::Value> = variants
                    .iter()
                    .zip(vals)
                    .map(|((v, ..), x)| (v.name().to_string(), if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null }))
                    .collect();
                serde_json::json!({"step": label, "ms": m})
            })
            .collect();
        let names: Vec<_> = variants.iter().map(|(v, ..)| v.name()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "variants": names,
                "steps": steps,
                "replica_total_ms": totals,
                "library_total_ms": lib_totals,
                "host_side_ms": host.iter().map(|(l, m)| serde_json::json!({"what": l, "ms": m})).collect::<Vec<_>>(),
            }))
            .unwrap_or_default()
        );
    }
    Ok(())
}
