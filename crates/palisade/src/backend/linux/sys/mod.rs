//! Thin wrappers over the Linux system calls the sandbox needs. Every `unsafe` block of the
//! Linux backend lives here, each with the reason it is sound.
//!
//! The functions used between `clone` and `execve` (in the child) must be async-signal-safe: they
//! make one system call each, allocate nothing and return the raw `errno` on failure.

use std::ffi::CStr;
use std::os::fd::RawFd;

mod mounts;
mod net;
mod notify;
mod terminal;

pub use mounts::*;
pub use net::*;
pub use notify::*;
pub use terminal::*;

pub type Errno = i32;

pub fn errno_now() -> Errno {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

pub(super) fn check(rc: libc::c_long) -> Result<libc::c_long, Errno> {
    if rc < 0 {
        Err(errno_now())
    } else {
        Ok(rc)
    }
}

pub(super) fn check_int(rc: libc::c_int) -> Result<libc::c_int, Errno> {
    if rc < 0 {
        Err(errno_now())
    } else {
        Ok(rc)
    }
}

/// `clone` with namespace flags and no shared memory: returns twice, like `fork`.
///
/// # Safety
/// In a multi-threaded process the child may only call async-signal-safe functions until it
/// execs or exits: no allocation, no locks. The caller's child path must uphold this.
pub unsafe fn clone_process(flags: libc::c_ulong) -> Result<libc::pid_t, Errno> {
    // SAFETY (of the call itself): without CLONE_VM the child gets a copy-on-write copy of the
    // address space and its own stack, so passing a null stack is what `fork` does.
    let rc = libc::syscall(
        libc::SYS_clone,
        flags | libc::SIGCHLD as libc::c_ulong,
        std::ptr::null_mut::<libc::c_void>(),
        std::ptr::null_mut::<libc::c_void>(),
        std::ptr::null_mut::<libc::c_void>(),
        0usize,
    );
    check(rc).map(|pid| pid as libc::pid_t)
}

/// Starts `entry(arg)` in a new process that shares this one's memory until it execs or exits
/// (`CLONE_VM | CLONE_VFORK`, like `vfork`): nothing is copied, and the caller is suspended
/// until then. The new process runs on `stack`.
///
/// # Safety
/// `entry` must only make async-signal-safe calls and end in `execve` or `_exit`; it must not
/// free or move anything the caller owns, since the memory is shared.
pub unsafe fn spawn_sharing_memory(
    stack: &mut [u8],
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
    namespaces: libc::c_int,
) -> Result<libc::pid_t, Errno> {
    // The stack grows down: pass its 16-byte aligned top.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let flags = namespaces | libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // Signal handlers of the caller must not run on the shared memory before the child has
    // reset them: block everything around the clone (the child unblocks before exec).
    let all = {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut s);
        s
    };
    let mut old: libc::sigset_t = std::mem::zeroed();
    libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    let r = check_int(libc::clone(entry, top as *mut libc::c_void, flags, arg));
    libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    r
}

/// A plain `fork` (used by `palisade check`'s probes).
pub fn fork_process() -> Result<libc::pid_t, Errno> {
    // SAFETY: only called in the sandbox's init process, which is single-threaded.
    check_int(unsafe { libc::fork() })
}

pub fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> Result<RawFd, Errno> {
    // SAFETY: path is a valid NUL-terminated string.
    check_int(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })
}

/// Whether this user may write in `path` (access(2) with W_OK, by the real ids: palisade does
/// not run set-user-id).
pub fn access_write(path: &std::path::Path) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
    // SAFETY: c is a valid NUL-terminated string.
    check_int(unsafe { libc::access(c.as_ptr(), libc::W_OK) }).map(drop)
}

/// The device and inode of an open descriptor.
pub fn fstat_id(fd: RawFd) -> Result<(u64, u64), Errno> {
    // SAFETY: st is plain data that fstat fills in; zeroed is a valid value for it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a stat buffer.
    check_int(unsafe { libc::fstat(fd, &mut st) })?;
    Ok((st.st_dev, st.st_ino))
}

/// Moves a descriptor's file position to `offset` from the start.
pub fn seek_to(fd: RawFd, offset: i64) -> Result<(), Errno> {
    // SAFETY: lseek has no memory effects.
    if unsafe { libc::lseek(fd, offset, libc::SEEK_SET) } < 0 {
        return Err(errno_now());
    }
    Ok(())
}

pub fn close(fd: RawFd) {
    // SAFETY: closing a descriptor this process owns; errors are irrelevant here.
    unsafe { libc::close(fd) };
}

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno_now();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Reads until `buf` is full or end of file; returns the number of bytes read.
pub fn read_full(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the destination is the unfilled, writable tail of buf.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 {
            let e = errno_now();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    Ok(got)
}

pub fn write_file(path: &CStr, content: &[u8]) -> Result<(), Errno> {
    let fd = open(path, libc::O_WRONLY, 0)?;
    let r = write_all(fd, content);
    close(fd);
    r
}

pub fn mkdir(path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    match check_int(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
        Ok(_) => Ok(()),
        Err(libc::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn symlink(target: &CStr, link: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated.
    check_int(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }).map(drop)
}

/// The inode number of what `path` names (following links, so /proc/self/ns/* gives the
/// namespace's inode).
pub fn inode_of(path: &CStr) -> Result<u64, Errno> {
    // SAFETY: st is written by the kernel; path is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check_int(unsafe { libc::stat(path.as_ptr(), &mut st) })?;
    Ok(st.st_ino)
}

pub fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

pub fn dup2(from: RawFd, to: RawFd) -> Result<(), Errno> {
    if from == to {
        // Clear close-on-exec, which dup2 onto itself would not do.
        // SAFETY: fcntl on a descriptor number; failure is reported.
        return check_int(unsafe { libc::fcntl(from, libc::F_SETFD, 0) }).map(drop);
    }
    // SAFETY: dup2 on descriptor numbers.
    check_int(unsafe { libc::dup2(from, to) }).map(drop)
}

/// Marks every descriptor from `first` up as close-on-exec.
pub fn cloexec_from(first: RawFd) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes this process's descriptor flags.
    check(unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, !0u32, CLOSE_RANGE_CLOEXEC) }).map(drop)
}

/// Closes every descriptor from `first` up except those in `keep` (at most 8 of them).
pub fn close_all_except(first: RawFd, keep: &[RawFd]) {
    let mut sorted = [-1 as RawFd; 8];
    let n = keep.len().min(sorted.len());
    sorted[..n].copy_from_slice(&keep[..n]);
    sorted[..n].sort_unstable();
    let mut from = first;
    for &k in sorted[..n].iter().filter(|&&k| k >= first) {
        if k > from {
            // SAFETY: close_range only closes this process's descriptors.
            unsafe { libc::syscall(libc::SYS_close_range, from as libc::c_uint, (k - 1) as libc::c_uint, 0u32) };
        }
        from = from.max(k + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from as libc::c_uint, !0u32, 0u32) };
}

/// Enforces a Landlock ruleset on this process (no_new_privs must be set).
pub fn landlock_restrict_self(ruleset: RawFd) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) }).map(drop)
}

/// Adds a path-beneath rule granting `access` under the directory `dir` to a Landlock ruleset.
pub fn landlock_add_path_rule(ruleset: RawFd, dir: RawFd, access: u64) -> Result<(), Errno> {
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
    let attr = PathBeneath { allowed_access: access, parent_fd: dir };
    // SAFETY: attr is a valid landlock_path_beneath_attr that outlives the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneath,
            0u32,
        )
    })
    .map(drop)
}

pub fn prctl(option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the prctl options used here take integer arguments only.
    check_int(unsafe { libc::prctl(option, arg, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) }).map(drop)
}

pub fn getppid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::getppid() }
}

pub fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process without running atexit handlers or flushing stdio
    // buffers that belong to the parent's copy.
    unsafe { libc::_exit(code) }
}

/// Drops every capability: bounding set, ambient, inheritable, permitted and effective, and
/// locks the secure bits so that exec as uid 0 grants nothing back.
pub fn drop_all_capabilities(last_cap: u32) -> Result<(), Errno> {
    for cap in 0..=last_cap {
        match prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) {
            Ok(()) | Err(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    // PR_CAP_AMBIENT_CLEAR_ALL
    // SAFETY: integer-only prctl.
    check_int(unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) })?;
    const SECBITS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x40 | 0x80; // NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each locked
    prctl(libc::PR_SET_SECUREBITS, SECBITS)?;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header { version: 0x2008_0522, pid: 0 };
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: header and data are the v3 capset structures (two data elements).
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) }).map(drop)
}

/// Whether this process holds any effective capability in its user namespace.
pub fn has_capabilities() -> bool {
    // SAFETY: PR_CAPBSET_READ is not relevant; use capget on ourselves.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    let header = Header { version: 0x2008_0522, pid: 0 };
    let mut data = [0u32; 6];
    // SAFETY: capget writes two 12-byte structures into data (24 bytes).
    let rc = unsafe { libc::syscall(libc::SYS_capget, &header as *const Header, data.as_mut_ptr()) };
    rc == 0 && (data[0] != 0 || data[3] != 0)
}

/// Blocks the given signals (and returns the previous mask) in this thread.
pub fn block_signals(set: &libc::sigset_t) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; pthread_sigmask writes the old mask.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, set, &mut old);
        old
    }
}

pub fn set_signal_mask(set: &libc::sigset_t) {
    // SAFETY: sets this thread's mask from a valid sigset_t.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, set, std::ptr::null_mut()) };
}

pub fn empty_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        s
    }
}

pub fn sigset_of(signals: &[libc::c_int]) -> libc::sigset_t {
    let mut s = empty_sigset();
    for &sig in signals {
        // SAFETY: adds a valid signal number to an initialised set.
        unsafe { libc::sigaddset(&mut s, sig) };
    }
    s
}

/// Resets every signal's disposition to the default (ignored signals survive exec otherwise).
pub fn reset_signal_dispositions() {
    for sig in 1..libc::SIGRTMIN() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// Waits for one of the signals in `set` (which must be blocked) and returns it with its code.
pub fn wait_signal(set: &libc::sigset_t) -> (libc::c_int, libc::c_int) {
    loop {
        // SAFETY: info is written by the kernel.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: set is an initialised sigset.
        let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
        if sig > 0 {
            return (sig, info.si_code);
        }
    }
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: sending a signal has no memory effects.
    check_int(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Reaps one child without blocking: `Some((pid, status))`, or `None` if none has exited.
pub fn reap_any() -> Result<Option<(libc::pid_t, libc::c_int)>, Errno> {
    let mut status = 0;
    // SAFETY: status is a valid out pointer.
    let pid = check_int(unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) })?;
    Ok(if pid == 0 { None } else { Some((pid, status)) })
}

/// Waits for a specific child, blocking unless `nohang`.
pub fn wait_pid(pid: libc::pid_t, nohang: bool) -> Result<Option<libc::c_int>, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, if nohang { libc::WNOHANG } else { 0 }) };
        if rc < 0 {
            let e = errno_now();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok(if rc == 0 { None } else { Some(status) });
    }
}

pub fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to NUL-terminated strings
    // that outlive this call (they are owned by the prepared command).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno_now()
}

pub fn pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two new descriptors, owned by nobody else.
    Ok(unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) })
}

/// The highest capability number this kernel knows.
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(63)
}

pub fn geteuid() -> u32 {
    // SAFETY: no arguments.
    unsafe { libc::geteuid() }
}

pub fn getegid() -> u32 {
    // SAFETY: no arguments.
    unsafe { libc::getegid() }
}

/// Installs a seccomp filter on this process (no_new_privs must already be set).
pub fn seccomp_set_filter(program: &[seccompiler::sock_filter]) -> Result<(), Errno> {
    let prog =
        libc::sock_fprog { len: program.len() as libc::c_ushort, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: prog points to the program (same layout as libc's sock_filter), which outlives
    // the call; the kernel copies it.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    })
    .map(drop)
}

/// What a path or descriptor names: device, inode, whether it is a directory, and the id of
/// the mount it is on (`None` on kernels without STATX_MNT_ID, before 5.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub dir: bool,
    pub mount: Option<u64>,
}

/// [`Identity`] of `path` relative to `dirfd` (the descriptor itself with an empty path),
/// following a final link.
pub fn identity(dirfd: RawFd, path: &CStr) -> Result<Identity, Errno> {
    // SAFETY: statx is plain data; the kernel fills it.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let flags = if path.is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    let mask = libc::STATX_TYPE | libc::STATX_INO | libc::STATX_MNT_ID;
    // SAFETY: path is NUL-terminated and st is a valid statx buffer.
    check_int(unsafe { libc::statx(dirfd, path.as_ptr(), flags, mask, &mut st) })?;
    Ok(Identity {
        dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
        dir: u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFDIR,
        mount: (st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id),
    })
}

/// CLOCK_MONOTONIC in nanoseconds (a vDSO call: async-signal-safe, no allocation).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into ts; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One zeroed page of anonymous memory shared with every process later cloned from this one
/// (it stays shared across fork), never unmapped.
pub fn shared_page() -> std::io::Result<*mut u8> {
    // SAFETY: a new anonymous mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(p.cast())
}

/// Whether `path` is a directory (not a symbolic link to one) without entries, in three system
/// calls (open, one `getdents64`, close) instead of a stat plus a directory stream.
///
/// One `getdents64` into a buffer far larger than "." and ".." returns more entries when there
/// are any (filesystems fill the buffer); a filesystem that returned a short batch would only
/// make a non-empty directory look like an untouched placeholder, which is harmless: it still
/// gets its read-only mount, and removal (`rmdir`) refuses a directory that is not empty.
pub fn is_empty_dir_nofollow(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    let Ok(fd) = open(&c, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0) else { return false };
    // linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name (NUL-terminated).
    let mut buf = [0u64; 128];
    // SAFETY: getdents64 writes at most the buffer's size in bytes into it.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), std::mem::size_of_val(&buf)) };
    close(fd);
    if n < 0 {
        return false;
    }
    // SAFETY: the kernel filled the first n bytes of the buffer (u64s, so any byte is valid).
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
    let mut at = 0;
    while at + 19 < bytes.len() {
        let reclen = u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
        let name = &bytes[at + 19..(at + reclen).min(bytes.len())];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if (name != b"." && name != b"..") || reclen == 0 {
            return false;
        }
        at += reclen;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_dir_check_refuses_contents_files_links_and_missing_paths() {
        let base = std::env::temp_dir().join(format!("palisade-sys-test-{}", std::process::id()));
        let empty = base.join("empty");
        let full = base.join("full");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::create_dir_all(&full).unwrap();
        std::fs::write(full.join("f"), "x").unwrap();
        std::fs::write(base.join("file"), "x").unwrap();
        std::os::unix::fs::symlink(&empty, base.join("link")).unwrap();
        assert!(is_empty_dir_nofollow(&empty));
        assert!(!is_empty_dir_nofollow(&full));
        assert!(!is_empty_dir_nofollow(&base.join("file")));
        assert!(!is_empty_dir_nofollow(&base.join("link")));
        assert!(!is_empty_dir_nofollow(&base.join("missing")));
        // Many entries (more than one getdents64 buffer) with the dots among them.
        for i in 0..500 {
            std::fs::write(full.join(format!("entry-with-a-long-name-{i:04}")), "").unwrap();
        }
        assert!(!is_empty_dir_nofollow(&full));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
