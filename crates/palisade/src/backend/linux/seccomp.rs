//! The seccomp filters: defence in depth behind the namespaces and Landlock, and the network
//! fence itself where no network namespace is used.
//!
//! seccompiler gives one action per filter, and `clone3` and `openat2` must fail with `ENOSYS`
//! (their flags live in memory a filter cannot read, and callers fall back to `clone` and
//! `openat` only on `ENOSYS`) while everything else fails with `EPERM`. Rather than loading two
//! filters (each load costs a BPF translation and JIT in every spawn, and every system call
//! of the command then runs both), the `EPERM` program gets a short hand-written prefix that
//! returns `ENOSYS` for those two, and lets every call the program has no rule for through
//! after a binary search (see [`with_prefix`]): one filter.

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// What the filter must block besides the always-blocked calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterOptions {
    /// Network off without a network namespace: no `socket(2)` at all, only AF_UNIX
    /// `socketpair(2)`. Connecting to a host service's pathname unix socket (an SSH agent, the
    /// Docker daemon) needs nothing but write permission on the socket file, which Landlock
    /// does not govern, and without a mount namespace nothing can hide the file.
    pub unix_sockets_only: bool,
    /// Offline in a network namespace: only the socket families that namespace fences (unix,
    /// IPv4, IPv6, netlink). Others are not per-namespace: AF_VSOCK in particular reaches the
    /// hypervisor's host from a virtual machine whatever namespace the socket is made in.
    pub namespaced_families_only: bool,
    /// Processes may outlive the command (`keep_processes`): no `TIOCSPGRP`, so that a process
    /// left behind cannot make itself the terminal's foreground group after palisade returned
    /// and read what the user types next (the user's shell then also loses its terminal).
    pub foreground_fixed: bool,
}

/// System calls no sandboxed command gets, whatever the policy: debugging and memory access of
/// other processes, io_uring (its socket operations bypass a socket filter), the kernel keyring,
/// BPF, namespace and mount manipulation, and kernel-wide administration.
const ALWAYS_BLOCKED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_lookup_dcookie,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
];

const TIOCSTI: u64 = 0x5412;
/// `tcflow`'s request and the action that suspends output (asm-generic/ioctls.h, termios.h).
const TCXONC: u64 = 0x540A;
const TCOOFF: u64 = 0;
/// Setting the terminal's foreground process group (`tcsetpgrp`).
const TIOCSPGRP: u64 = 0x5410;
/// fchmodat2 (Linux 6.6), the same number on every architecture.
const SYS_FCHMODAT2: libc::c_long = 452;
/// O_TMPFILE without O_DIRECTORY (the bit that makes an open create an unnamed file).
const TMPFILE: u64 = 0o20000000;
const TIOCLINUX: u64 = 0x541C;
/// Terminal requests no ordinary program needs, each of which changes the caller's terminal
/// for others after the command ends: exclusive mode (later opens of /dev/tty fail with EBUSY:
/// sudo and ssh cannot prompt) and clearing the caller's own exclusive mode, the line
/// discipline (output vanishes, input goes elsewhere), console redirection, and hanging up the
/// terminal for every process holding it. Shells, editors and `stty` use none of them.
const TTY_ADMIN_IOCTLS: &[u64] = &[TIOCEXCL, TIOCNXCL, TIOCSETD, TIOCCONS, TIOCVHANGUP];
const TIOCEXCL: u64 = 0x540C;
const TIOCNXCL: u64 = 0x540D;
const TIOCSETD: u64 = 0x5423;
const TIOCCONS: u64 = 0x541D;
const TIOCVHANGUP: u64 = 0x5437;

fn arch() -> TargetArch {
    #[cfg(target_arch = "x86_64")]
    {
        TargetArch::x86_64
    }
    #[cfg(target_arch = "aarch64")]
    {
        TargetArch::aarch64
    }
    #[cfg(target_arch = "riscv64")]
    {
        TargetArch::riscv64
    }
}

fn cond(arg: u8, len: Len, op: Op, value: u64) -> Cond {
    Cond::new(arg, len, op, value).expect("argument index below 6")
}

fn rule(conds: Vec<Cond>) -> SeccompRule {
    SeccompRule::new(conds).expect("a rule has at least one condition")
}

/// The audit architecture value of this target (`AUDIT_ARCH_*`), as seccompiler checks it.
pub(super) const AUDIT_ARCH: u32 = {
    #[cfg(target_arch = "x86_64")]
    {
        0xC000_003E
    }
    #[cfg(target_arch = "aarch64")]
    {
        0xC000_00B7
    }
    #[cfg(target_arch = "riscv64")]
    {
        0xC000_00F3
    }
};

/// Calls that fail with `ENOSYS` (see the module's documentation).
const ENOSYS_CALLS: [libc::c_long; 2] = [libc::SYS_clone3, libc::SYS_openat2];

/// What a jump of the prefix goes to.
#[derive(Clone, Copy)]
enum Target {
    /// The `EPERM` program (the system call is one it has rules for).
    Rest,
    Allow,
    Enosys,
}

/// One instruction of the prefix, before jump offsets are known.
enum Item {
    Fixed(sock_filter),
    /// `jeq #k`: to `Target` if equal, else the next instruction.
    JeqTo(u32, Target),
    /// `jge #k`: skip `skip` instructions if greater or equal, else the next instruction.
    Jge(u32, usize),
    JaTo(Target),
}

/// A binary search over the sorted system call numbers `nrs`: to `Rest` for one of them, to
/// `Allow` for any other.
fn search(nrs: &[u32]) -> Vec<Item> {
    if nrs.len() <= 4 {
        let mut v: Vec<Item> = nrs.iter().map(|&k| Item::JeqTo(k, Target::Rest)).collect();
        v.push(Item::JaTo(Target::Allow));
        return v;
    }
    let mid = nrs.len() / 2;
    let (lo, hi) = (search(&nrs[..mid]), search(&nrs[mid..]));
    let mut v = vec![Item::Jge(nrs[mid], lo.len())];
    v.extend(lo);
    v.extend(hi);
    v
}

/// The architecture check (killing the process on a foreign one, as seccompiler's programs do:
/// system call numbers differ there), `ENOSYS` for [`ENOSYS_CALLS`], then a binary search that
/// allows every system call `rest` has no rule for and runs `rest` (self-contained: its
/// jumps are relative) for the others.
///
/// seccompiler's program tests the listed calls one after another, so an unlisted call (nearly
/// every call a command makes) walks past all ~50 of them; the kernel also runs the filter
/// for every system call number when it is loaded (to cache which ones are always allowed).
/// The search answers in about six comparisons, which halves the load's cost.
fn with_prefix(listed: &[u32], rest: BpfProgram) -> Result<BpfProgram, seccompiler::BackendError> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    const ARCH_OFFSET: u32 = 4;
    const NR_OFFSET: u32 = 0;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    let mut nrs: Vec<u32> = listed.to_vec();
    nrs.sort_unstable();
    nrs.dedup();
    let mut items = vec![
        Item::Fixed(ins(LD_W_ABS, 0, 0, ARCH_OFFSET)),
        Item::Fixed(ins(JEQ_K, 1, 0, AUDIT_ARCH)),
        Item::Fixed(ins(RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS)),
        Item::Fixed(ins(LD_W_ABS, 0, 0, NR_OFFSET)),
    ];
    items.extend(ENOSYS_CALLS.iter().map(|&nr| Item::JeqTo(nr as u32, Target::Enosys)));
    items.extend(search(&nrs));
    let allow = items.len();
    let enosys = allow + 1;
    let rest_at = allow + 2;
    let to = |t: Target| match t {
        Target::Rest => rest_at,
        Target::Allow => allow,
        Target::Enosys => enosys,
    };
    let too_far = || seccompiler::BackendError::FilterTooLarge(rest_at);
    let mut p = Vec::with_capacity(rest_at + rest.len());
    for (at, item) in items.iter().enumerate() {
        p.push(match *item {
            Item::Fixed(ref i) => ins(i.code, i.jt, i.jf, i.k),
            Item::JeqTo(k, t) => ins(JEQ_K, u8::try_from(to(t) - at - 1).map_err(|_| too_far())?, 0, k),
            Item::Jge(k, skip) => ins(JGE_K, u8::try_from(skip).map_err(|_| too_far())?, 0, k),
            Item::JaTo(t) => ins(JA, 0, 0, (to(t) - at - 1) as u32),
        });
    }
    p.push(ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    p.push(ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    p.extend(rest);
    Ok(p)
}

/// Builds the filter (compiled once per sandbox, applied in every child).
pub fn build(opts: FilterOptions) -> Result<BpfProgram, seccompiler::BackendError> {
    let (listed, eperm) = eperm_program(opts)?;
    let mut program = with_prefix(&listed, eperm)?;
    program.splice(0..0, x32_guard());
    // The kernel's limit (BPF_MAXINSNS); seccompiler checked its part against it already.
    if program.len() > 4096 {
        return Err(seccompiler::BackendError::FilterTooLarge(program.len()));
    }
    Ok(program)
}

/// seccompiler's program for the `EPERM` rules, with the system calls it has rules for.
fn eperm_program(opts: FilterOptions) -> Result<(Vec<u32>, BpfProgram), seccompiler::BackendError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &nr in ALWAYS_BLOCKED {
        rules.insert(nr, vec![]);
    }
    // Terminal input injection, console control and the terminal changes that outlive the
    // command (TTY_ADMIN_IOCTLS), on any descriptor. The kernel compares the request as a
    // 32-bit value, so the filter must too: a request with high bits set still means TIOCSTI.
    // Also output suspended by `tcflow(TCOOFF)` (TCXONC with 0), which outlives the command:
    // the user's shell then blocks on its next write, and Ctrl-Q does not undo it.
    let mut ioctl_rules: Vec<SeccompRule> = [TIOCSTI, TIOCLINUX]
        .iter()
        .chain(TTY_ADMIN_IOCTLS)
        .map(|&req| rule(vec![cond(1, Len::Dword, Op::Eq, req)]))
        .collect();
    ioctl_rules.push(rule(vec![cond(1, Len::Dword, Op::Eq, TCXONC), cond(2, Len::Qword, Op::Eq, TCOOFF)]));
    if opts.foreground_fixed {
        ioctl_rules.push(rule(vec![cond(1, Len::Dword, Op::Eq, TIOCSPGRP)]));
    }
    rules.insert(libc::SYS_ioctl, ioctl_rules);
    // No new user namespace from inside (a fresh one would give back capabilities).
    let newuser = libc::CLONE_NEWUSER as u64;
    rules.insert(libc::SYS_unshare, vec![rule(vec![cond(0, Len::Qword, Op::MaskedEq(newuser), newuser)])]);
    rules.insert(libc::SYS_clone, vec![rule(vec![cond(0, Len::Qword, Op::MaskedEq(newuser), newuser)])]);
    if opts.unix_sockets_only {
        rules.insert(libc::SYS_socket, vec![]);
        rules.insert(libc::SYS_socketpair, vec![rule(vec![cond(0, Len::Dword, Op::Ne, libc::AF_UNIX as u64)])]);
    }
    if opts.namespaced_families_only && !opts.unix_sockets_only {
        let allowed = [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK];
        let other = || rule(allowed.iter().map(|&f| cond(0, Len::Dword, Op::Ne, f as u64)).collect());
        rules.insert(libc::SYS_socket, vec![other()]);
        rules.insert(libc::SYS_socketpair, vec![other()]);
    }
    // No set-user-id or set-group-id bits: a command running as root (uid 0 is the host's root
    // in the user namespace) could otherwise leave a set-user-id-root program in the workspace
    // for any local user to run later. Every call that sets a mode is covered: chmod and
    // friends, and file creation (open with O_CREAT or O_TMPFILE, mknod); openat2, whose mode
    // a filter cannot read, fails with ENOSYS (below) so that callers fall back to openat.
    let special = [libc::S_ISUID as u64, libc::S_ISGID as u64];
    let mode_rules =
        |arg: u8| special.iter().map(|&b| rule(vec![cond(arg, Len::Dword, Op::MaskedEq(b), b)])).collect::<Vec<_>>();
    let create_rules = |flags: u8, mode: u8| {
        let creating = [libc::O_CREAT as u64, TMPFILE];
        creating
            .iter()
            .flat_map(|&c| special.iter().map(move |&b| (c, b)))
            .map(|(c, b)| {
                rule(vec![cond(flags, Len::Dword, Op::MaskedEq(c), c), cond(mode, Len::Dword, Op::MaskedEq(b), b)])
            })
            .collect::<Vec<_>>()
    };
    rules.insert(libc::SYS_fchmod, mode_rules(1));
    rules.insert(libc::SYS_fchmodat, mode_rules(2));
    rules.insert(SYS_FCHMODAT2, mode_rules(2));
    rules.insert(libc::SYS_mknodat, mode_rules(2));
    rules.insert(libc::SYS_openat, create_rules(2, 3));
    #[cfg(target_arch = "x86_64")]
    {
        rules.insert(libc::SYS_chmod, mode_rules(1));
        rules.insert(libc::SYS_mknod, mode_rules(1));
        rules.insert(libc::SYS_creat, mode_rules(1));
        rules.insert(libc::SYS_open, create_rules(1, 2));
    }
    debug_assert!(ENOSYS_CALLS.iter().all(|nr| !rules.contains_key(nr)));
    let listed: Vec<u32> = rules.keys().map(|&nr| nr as u32).collect();
    let eperm = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch())?;
    Ok((listed, eperm.try_into()?))
}

/// On x86_64 the x32 ABI reaches the kernel with the same audit architecture but with bit 30
/// set in the syscall number, so a deny list keyed on plain numbers (which `seccompiler`
/// builds) would not match an x32 `ptrace` or `keyctl` on kernels that enable x32. These
/// instructions, placed before the list, refuse every such call; elsewhere they fall through.
/// The jumps stay inside the block, so any program can follow it.
fn x32_guard() -> Vec<seccompiler::sock_filter> {
    #[cfg(target_arch = "x86_64")]
    {
        use seccompiler::sock_filter;
        const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
        const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
        const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
        const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        const X32_SYSCALL_BIT: u32 = 0x4000_0000;
        vec![
            sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k: 4 }, // seccomp_data.arch
            sock_filter { code: JEQ_K, jt: 0, jf: 3, k: AUDIT_ARCH_X86_64 },
            sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
            sock_filter { code: JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT },
            sock_filter { code: RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32 },
        ]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_for_both_network_settings() {
        for unix_sockets_only in [false, true] {
            let prog = build(FilterOptions {
                unix_sockets_only,
                namespaced_families_only: !unix_sockets_only,
                foreground_fixed: false,
            })
            .unwrap();
            assert!(prog.len() > 12);
        }
    }

    #[test]
    fn offline_filter_is_larger_than_online_filter() {
        let on =
            build(FilterOptions { unix_sockets_only: false, namespaced_families_only: false, foreground_fixed: false })
                .unwrap();
        let off =
            build(FilterOptions { unix_sockets_only: true, namespaced_families_only: false, foreground_fixed: false })
                .unwrap();
        assert!(off.len() > on.len());
    }

    /// A classic BPF interpreter for what seccompiler and the prefix emit (it panics on any
    /// other instruction, so a test cannot pass by skipping one). `data` is seccomp_data.
    fn run(p: &[sock_filter], nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&AUDIT_ARCH.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = &p[pc];
            pc += 1;
            let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
            match i.code {
                0x20 => a = u32::from_ne_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
                0x54 => a &= i.k,
                0x05 => pc += i.k as usize,
                0x15 => pc += jump(a == i.k),
                0x25 => pc += jump(a > i.k),
                0x35 => pc += jump(a >= i.k),
                0x45 => pc += jump(a & i.k != 0),
                0x06 => return i.k,
                other => panic!("instruction 0x{other:x} at {} not interpreted", pc - 1),
            }
        }
    }

    /// The whole filter answers exactly as the ENOSYS rule and seccompiler's program would: for
    /// every system call number with arguments that hit and miss each rule; x32-style numbers
    /// (bit 30, x86_64) get EPERM from the x32 guard whatever they are.
    #[test]
    fn prefixed_filter_answers_like_the_rules_for_every_system_call() {
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let special = (libc::S_ISUID | libc::S_ISGID) as u64;
        let arg_sets: Vec<[u64; 6]> = vec![
            [0; 6],
            [u64::MAX; 6],
            [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
            [0, TIOCSTI, 0, 0, 0, 0],
            [0, TIOCSTI | 0xffff_0000_0000_0000, 0, 0, 0, 0],
            [0, TIOCEXCL, 0, 0, 0, 0],
            [0, TIOCSETD | 0xffff_0000_0000_0000, 0, 0, 0, 0],
            [0, libc::TCGETS, 0, 0, 0, 0],
            [libc::AF_INET as u64, 0, 0, 0, 0, 0],
            [libc::AF_UNIX as u64, 0, 0, 0, 0, 0],
            [40, 0, 0, 0, 0, 0], // AF_VSOCK
            [0, special, special, special, 0, 0],
            [0, libc::O_CREAT as u64, libc::O_CREAT as u64 | TMPFILE, special, special, 0],
            [0, 0o755, 0o755, 0o644, 0, 0],
        ];
        for opts in [
            FilterOptions { unix_sockets_only: false, namespaced_families_only: false, foreground_fixed: false },
            FilterOptions { unix_sockets_only: true, namespaced_families_only: false, foreground_fixed: false },
            FilterOptions { unix_sockets_only: false, namespaced_families_only: true, foreground_fixed: false },
        ] {
            let (listed, rest) = eperm_program(opts).unwrap();
            let full = build(opts).unwrap();
            let nrs = (0u32..1100).chain((0..600).map(|n| n | 0x4000_0000)).chain([u32::MAX, 0x8000_0000]);
            let mut blocked = 0;
            for nr in nrs {
                for args in &arg_sets {
                    let x32 = cfg!(target_arch = "x86_64") && nr >= 0x4000_0000;
                    let want = if x32 {
                        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32
                    } else if ENOSYS_CALLS.contains(&(nr as libc::c_long)) {
                        enosys
                    } else {
                        run(&rest, nr, *args)
                    };
                    let got = run(&full, nr, *args);
                    assert_eq!(got, want, "system call {nr} with {args:?} ({opts:?})");
                    blocked += usize::from(got != libc::SECCOMP_RET_ALLOW);
                }
            }
            // The comparison means something only if the rules block things.
            assert!(blocked > listed.len(), "{blocked} blocked answers");
        }
    }

    /// The terminal requests that outlive the command are refused on any descriptor (with high
    /// bits set too); those shells, editors and `stty` use pass.
    #[test]
    fn terminal_admin_ioctls_are_refused_and_ordinary_ones_pass() {
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let prog =
            build(FilterOptions { unix_sockets_only: true, namespaced_families_only: false, foreground_fixed: false })
                .unwrap();
        let ioctl = libc::SYS_ioctl as u32;
        for req in [TIOCSTI, TIOCLINUX, TIOCEXCL, TIOCNXCL, TIOCSETD, TIOCCONS, TIOCVHANGUP] {
            for fd in [0, 1, 2, 7] {
                assert_eq!(run(&prog, ioctl, [fd, req, 0, 0, 0, 0]), eperm, "ioctl 0x{req:x}");
                assert_eq!(
                    run(&prog, ioctl, [fd, req | 0xdead_0000_0000_0000, 0, 0, 0, 0]),
                    eperm,
                    "ioctl 0x{req:x} with high bits"
                );
            }
        }
        // The request constants are c_ulong with glibc and c_int with musl.
        #[allow(clippy::unnecessary_cast)]
        let ordinary: [u64; 16] = [
            libc::TCGETS as u64,
            libc::TCSETS as u64,
            libc::TCSETSW as u64,
            libc::TCSETSF as u64,
            libc::TIOCGWINSZ as u64,
            libc::TIOCSWINSZ as u64,
            libc::TIOCGPGRP as u64,
            libc::TIOCSPGRP as u64,
            libc::TIOCSCTTY as u64,
            libc::TIOCNOTTY as u64,
            libc::TIOCGSID as u64,
            libc::FIONREAD as u64,
            libc::FIONBIO as u64,
            libc::TCFLSH as u64,
            0x5424,      // TIOCGETD: reading the line discipline is harmless
            0x8004_5440, // TIOCGEXCL
        ];
        for req in ordinary {
            assert_eq!(run(&prog, ioctl, [0, req, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW, "ioctl 0x{req:x}");
        }
        // tcflow: suspending output (TCOOFF, 0) outlives the command; the other actions pass.
        assert_eq!(run(&prog, ioctl, [1, TCXONC, 0, 0, 0, 0]), eperm);
        assert_eq!(run(&prog, ioctl, [1, TCXONC | 0xdead_0000_0000_0000, 0, 0, 0, 0]), eperm);
        for action in [1, 2, 3, 0x1_0000_0000] {
            assert_eq!(run(&prog, ioctl, [1, TCXONC, action, 0, 0, 0]), libc::SECCOMP_RET_ALLOW, "tcflow {action}");
        }
        // tcsetpgrp passes unless processes may outlive the command.
        let kept =
            build(FilterOptions { unix_sockets_only: true, namespaced_families_only: false, foreground_fixed: true })
                .unwrap();
        assert_eq!(run(&kept, ioctl, [0, TIOCSPGRP, 0, 0, 0, 0]), eperm);
        assert_eq!(run(&kept, ioctl, [0, TIOCSPGRP | 0xdead_0000_0000_0000, 0, 0, 0, 0]), eperm);
        assert_eq!(run(&kept, ioctl, [0, 0x540F, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
        // TIOCGPGRP
    }
}
