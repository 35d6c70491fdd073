//! The denial observer's seccomp filter (see observer.rs): which system calls it watches, where
//! their paths are, and the small BPF program that sends those calls to the supervisor as user
//! notifications. Every other call, and opens that only read, pass at the cost of a few BPF
//! instructions. The program only ever answers ALLOW or USER_NOTIF: it refuses nothing.

// The audit architecture value of this target: the one the sandbox's own filter checks.
use super::seccomp::AUDIT_ARCH;
use seccompiler::{sock_filter, BpfProgram};

/// Where a path argument is resolved from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// The working directory of the caller.
    Cwd,
    /// The directory descriptor in this argument (`AT_FDCWD`: the working directory).
    DirFd(usize),
}

/// What a watched call touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A path argument (a NULL path with a directory descriptor names the descriptor's file).
    Path { base: Base, arg: usize },
    /// A socket address (`connect(fd, addr, len)`).
    Address { arg: usize, len_arg: usize },
}

/// One watched system call.
#[derive(Clone, Copy, Debug)]
pub struct Watched {
    pub nr: libc::c_long,
    pub name: &'static str,
    /// Watched only when these flags (low 32 bits of this argument) ask for writing.
    pub write_flags_arg: Option<usize>,
    pub targets: &'static [Target],
    /// The call follows a symbolic link in the last component (open, chmod) rather than acting
    /// on the link itself (unlink, rename, mkdir).
    pub follows: bool,
}

const fn path(base: Base, arg: usize) -> Target {
    Target::Path { base, arg }
}
const AT0: &[Target] = &[path(Base::DirFd(0), 1)];
const CWD0: &[Target] = &[path(Base::Cwd, 0)];

/// Flags that make an open a write: O_WRONLY, O_RDWR, O_CREAT, O_TRUNC (O_APPEND and O_TMPFILE
/// need O_WRONLY or O_RDWR to write).
const WRITE_FLAGS: u32 = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u32;

/// fchmodat2 (Linux 6.6), the same number on every architecture.
const SYS_FCHMODAT2: libc::c_long = 452;

/// The calls that change the filesystem by path. Calls on descriptors (write, fchmod,
/// ftruncate, fsetxattr) act on files already opened, whose open was watched. `openat2` never
/// reaches this filter: the sandbox's filter answers it ENOSYS (callers fall back to openat).
const WRITE_CALLS: &[Watched] = &[
    Watched { nr: libc::SYS_openat, name: "openat", follows: true, write_flags_arg: Some(2), targets: AT0 },
    Watched { nr: libc::SYS_mkdirat, name: "mkdirat", follows: false, write_flags_arg: None, targets: AT0 },
    Watched { nr: libc::SYS_mknodat, name: "mknodat", follows: false, write_flags_arg: None, targets: AT0 },
    Watched { nr: libc::SYS_unlinkat, name: "unlinkat", follows: false, write_flags_arg: None, targets: AT0 },
    Watched {
        nr: libc::SYS_renameat2,
        name: "renameat2",
        follows: false,
        write_flags_arg: None,
        targets: &[path(Base::DirFd(0), 1), path(Base::DirFd(2), 3)],
    },
    Watched {
        nr: libc::SYS_linkat,
        name: "linkat",
        follows: false,
        write_flags_arg: None,
        targets: &[path(Base::DirFd(2), 3)],
    },
    Watched {
        nr: libc::SYS_symlinkat,
        name: "symlinkat",
        follows: false,
        write_flags_arg: None,
        targets: &[path(Base::DirFd(1), 2)],
    },
    Watched { nr: libc::SYS_truncate, name: "truncate", follows: true, write_flags_arg: None, targets: CWD0 },
    Watched { nr: libc::SYS_fchmodat, name: "fchmodat", follows: true, write_flags_arg: None, targets: AT0 },
    Watched { nr: SYS_FCHMODAT2, name: "fchmodat2", follows: true, write_flags_arg: None, targets: AT0 },
    Watched { nr: libc::SYS_fchownat, name: "fchownat", follows: true, write_flags_arg: None, targets: AT0 },
    Watched { nr: libc::SYS_utimensat, name: "utimensat", follows: true, write_flags_arg: None, targets: AT0 },
    Watched { nr: libc::SYS_setxattr, name: "setxattr", follows: true, write_flags_arg: None, targets: CWD0 },
    Watched { nr: libc::SYS_lsetxattr, name: "lsetxattr", follows: false, write_flags_arg: None, targets: CWD0 },
    Watched { nr: libc::SYS_removexattr, name: "removexattr", follows: true, write_flags_arg: None, targets: CWD0 },
    Watched { nr: libc::SYS_lremovexattr, name: "lremovexattr", follows: false, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_open, name: "open", follows: true, write_flags_arg: Some(1), targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_creat, name: "creat", follows: true, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_mkdir, name: "mkdir", follows: false, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_mknod, name: "mknod", follows: false, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_unlink, name: "unlink", follows: false, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_rmdir, name: "rmdir", follows: false, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_rename,
        name: "rename",
        follows: false,
        write_flags_arg: None,
        targets: &[path(Base::Cwd, 0), path(Base::Cwd, 1)],
    },
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_renameat,
        name: "renameat",
        follows: false,
        write_flags_arg: None,
        targets: &[path(Base::DirFd(0), 1), path(Base::DirFd(2), 3)],
    },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_link, name: "link", follows: false, write_flags_arg: None, targets: &[path(Base::Cwd, 1)] },
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_symlink,
        name: "symlink",
        follows: false,
        write_flags_arg: None,
        targets: &[path(Base::Cwd, 1)],
    },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_chmod, name: "chmod", follows: true, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_chown, name: "chown", follows: true, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_lchown, name: "lchown", follows: false, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_utime, name: "utime", follows: true, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_utimes, name: "utimes", follows: true, write_flags_arg: None, targets: CWD0 },
    #[cfg(target_arch = "x86_64")]
    Watched { nr: libc::SYS_futimesat, name: "futimesat", follows: true, write_flags_arg: None, targets: AT0 },
];

/// `connect(2)`, watched unless the network is on.
const CONNECT: Watched = Watched {
    nr: libc::SYS_connect,
    name: "connect",
    follows: false,
    write_flags_arg: None,
    targets: &[Target::Address { arg: 1, len_arg: 2 }],
};

/// The watched calls: the writes, and `connect` when `watch_connect`.
pub fn watched(watch_connect: bool) -> Vec<Watched> {
    let mut v = WRITE_CALLS.to_vec();
    if watch_connect {
        v.push(CONNECT);
    }
    v
}

/// The entry of system call `nr`, if watched.
pub fn lookup(watched: &[Watched], nr: i32) -> Option<&Watched> {
    watched.iter().find(|w| w.nr == nr as libc::c_long)
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The program: for a watched call, USER_NOTIF (for opens, only when their flags write);
/// ALLOW for everything else (a foreign architecture or an x32 call included: the sandbox's
/// own filter refuses those). The offset of argument `i`'s low half in `seccomp_data` is
/// 16 + 8i on the little-endian targets Palisade supports.
pub fn program(watched: &[Watched]) -> BpfProgram {
    let ins = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    let n = watched.len();
    // Layout: [0] ld arch, [1] jeq arch, [2] ld nr, [3] jge x32, [4..4+n] one jeq per call,
    // [4+n] ret allow, [5+n] ret notify, then per flag-checked call (jumps only go forward):
    // ld flags, jset, ret notify, ret allow.
    let allow = 4 + n;
    let notify = allow + 1;
    let mut p = vec![
        ins(LD_W_ABS, 0, 0, 4),
        ins(JEQ_K, 0, (allow - 2) as u8, AUDIT_ARCH),
        ins(LD_W_ABS, 0, 0, 0),
        ins(JGE_K, (allow - 4) as u8, 0, 0x4000_0000),
    ];
    let mut checks = Vec::new();
    for (i, w) in watched.iter().enumerate() {
        let at = 4 + i;
        let to = match w.write_flags_arg {
            None => notify,
            Some(arg) => {
                checks.push(arg);
                notify + 1 + 4 * (checks.len() - 1)
            }
        };
        p.push(ins(JEQ_K, u8::try_from(to - at - 1).expect("a short program"), 0, w.nr as u32));
    }
    p.push(ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    p.push(ins(RET_K, 0, 0, libc::SECCOMP_RET_USER_NOTIF));
    for arg in checks {
        p.push(ins(LD_W_ABS, 0, 0, 16 + 8 * arg as u32));
        p.push(ins(JSET_K, 0, 1, WRITE_FLAGS));
        p.push(ins(RET_K, 0, 0, libc::SECCOMP_RET_USER_NOTIF));
        p.push(ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for the instructions this program uses (any other panics).
    fn run(p: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = &p[pc];
            pc += 1;
            let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
            match i.code {
                LD_W_ABS => a = u32::from_ne_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
                JEQ_K => pc += jump(a == i.k),
                JGE_K => pc += jump(a >= i.k),
                JSET_K => pc += jump(a & i.k != 0),
                RET_K => return i.k,
                other => panic!("instruction 0x{other:x} at {} not interpreted", pc - 1),
            }
        }
    }

    #[test]
    fn only_watched_calls_notify_and_opens_only_when_they_write() {
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        let allow = libc::SECCOMP_RET_ALLOW;
        for watch_connect in [false, true] {
            let w = watched(watch_connect);
            let p = program(&w);
            let openat = libc::SYS_openat as u32;
            let read_only = [libc::O_RDONLY, libc::O_RDONLY | libc::O_CLOEXEC | libc::O_DIRECTORY, libc::O_PATH];
            for flags in read_only {
                assert_eq!(run(&p, AUDIT_ARCH, openat, [0, 0, flags as u64, 0, 0, 0]), allow, "{flags:o}");
            }
            for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_CREAT | libc::O_EXCL, libc::O_TRUNC] {
                assert_eq!(run(&p, AUDIT_ARCH, openat, [0, 0, flags as u64, 0, 0, 0]), notify, "{flags:o}");
            }
            // High bits of the flags argument do not matter (the kernel takes an int).
            assert_eq!(run(&p, AUDIT_ARCH, openat, [0, 0, 1 << 40, 0, 0, 0]), allow);
            for call in &w {
                let args = [0, 0, libc::O_WRONLY as u64, 0, 0, 0];
                let args = match call.write_flags_arg {
                    Some(a) => {
                        let mut v = [0u64; 6];
                        v[a] = libc::O_WRONLY as u64;
                        v
                    }
                    None => args,
                };
                assert_eq!(run(&p, AUDIT_ARCH, call.nr as u32, args), notify, "{}", call.name);
            }
            let mut notified = 0;
            for nr in 0u32..1100 {
                // Writing flags in every argument: each open finds them where it looks.
                let r = run(&p, AUDIT_ARCH, nr, [libc::O_WRONLY as u64; 6]);
                assert!(r == allow || r == notify);
                notified += usize::from(r == notify);
                assert_eq!(r == notify, lookup(&w, nr as i32).is_some(), "system call {nr}");
            }
            assert_eq!(notified, w.len());
            let connect = libc::SYS_connect as u32;
            assert_eq!(run(&p, AUDIT_ARCH, connect, [0; 6]) == notify, watch_connect);
            // A foreign architecture and x32 numbers pass (the sandbox's filter handles them).
            assert_eq!(run(&p, 0x4000_0003, libc::SYS_mkdirat as u32, [0; 6]), allow);
            assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_mkdirat as u32 | 0x4000_0000, [0; 6]), allow);
        }
    }
}
