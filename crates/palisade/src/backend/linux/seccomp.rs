//! The seccomp filters: defence in depth behind the namespaces and Landlock, and the network
//! fence itself where no network namespace is used.
//!
//! seccompiler gives one action per filter, and `clone3` and `openat2` must fail with `ENOSYS`
//! (their flags live in memory a filter cannot read, and callers fall back to `clone` and
//! `openat` only on `ENOSYS`) while everything else fails with `EPERM`. Rather than loading two
//! filters (each load costs a BPF translation and JIT in every spawn, and every system call
//! of the command then runs both), the `EPERM` program gets a short hand-written prefix that
//! returns `ENOSYS` for those two: one filter.

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// What the filter must block besides the always-blocked calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterOptions {
    /// Block every socket family but AF_UNIX (network off without a network namespace).
    pub unix_sockets_only: bool,
    /// Offline in a network namespace: only the socket families that namespace fences (unix,
    /// IPv4, IPv6, netlink). Others are not per-namespace: AF_VSOCK in particular reaches the
    /// hypervisor's host from a virtual machine whatever namespace the socket is made in.
    pub namespaced_families_only: bool,
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
/// fchmodat2 (Linux 6.6), the same number on every architecture.
const SYS_FCHMODAT2: libc::c_long = 452;
/// O_TMPFILE without O_DIRECTORY (the bit that makes an open create an unnamed file).
const TMPFILE: u64 = 0o20000000;
const TIOCLINUX: u64 = 0x541C;

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
const AUDIT_ARCH: u32 = {
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

/// `prefix` + `rest`: a program that checks the architecture (killing the process on a foreign
/// one, as seccompiler's programs do: system call numbers differ there), returns `ENOSYS` for
/// [`ENOSYS_CALLS`], and otherwise runs `rest` (self-contained; its jumps are relative).
fn with_enosys_prefix(rest: BpfProgram) -> BpfProgram {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    const ARCH_OFFSET: u32 = 4;
    const NR_OFFSET: u32 = 0;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    let n = ENOSYS_CALLS.len() as u8;
    let mut p = vec![
        ins(LD_W_ABS, 0, 0, ARCH_OFFSET),
        ins(JEQ_K, 1, 0, AUDIT_ARCH),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        ins(LD_W_ABS, 0, 0, NR_OFFSET),
    ];
    for (i, &nr) in ENOSYS_CALLS.iter().enumerate() {
        // On a match, jump over the remaining comparisons and the `ja` to the return.
        p.push(ins(JEQ_K, n - i as u8, 0, nr as u32));
    }
    p.push(ins(JA, 0, 0, 1));
    p.push(ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    p.extend(rest);
    p
}

/// Builds the filter (compiled once per sandbox, applied in every child).
pub fn build(opts: FilterOptions) -> Result<BpfProgram, seccompiler::BackendError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &nr in ALWAYS_BLOCKED {
        rules.insert(nr, vec![]);
    }
    // Terminal input injection and console control. The kernel compares the request as a
    // 32-bit value, so the filter must too: a request with high bits set still means TIOCSTI.
    rules.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![cond(1, Len::Dword, Op::Eq, TIOCSTI)]),
            rule(vec![cond(1, Len::Dword, Op::Eq, TIOCLINUX)]),
        ],
    );
    // No new user namespace from inside (a fresh one would give back capabilities).
    let newuser = libc::CLONE_NEWUSER as u64;
    rules.insert(libc::SYS_unshare, vec![rule(vec![cond(0, Len::Qword, Op::MaskedEq(newuser), newuser)])]);
    rules.insert(libc::SYS_clone, vec![rule(vec![cond(0, Len::Qword, Op::MaskedEq(newuser), newuser)])]);
    if opts.unix_sockets_only {
        rules.insert(libc::SYS_socket, vec![rule(vec![cond(0, Len::Dword, Op::Ne, libc::AF_UNIX as u64)])]);
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
    let mode_rules = |arg: u8| special.iter().map(|&b| rule(vec![cond(arg, Len::Dword, Op::MaskedEq(b), b)])).collect::<Vec<_>>();
    let create_rules = |flags: u8, mode: u8| {
        let creating = [libc::O_CREAT as u64, TMPFILE];
        creating
            .iter()
            .flat_map(|&c| special.iter().map(move |&b| (c, b)))
            .map(|(c, b)| rule(vec![cond(flags, Len::Dword, Op::MaskedEq(c), c), cond(mode, Len::Dword, Op::MaskedEq(b), b)]))
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
    debug_assert!(ENOSYS_CALLS.iter().all(|nr| !rules.contains_key(&(*nr as i64))));
    let eperm = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch())?;
    let program = with_enosys_prefix(eperm.try_into()?);
    // The kernel's limit (BPF_MAXINSNS); seccompiler checked its part against it already.
    if program.len() > 4096 {
        return Err(seccompiler::BackendError::FilterTooLarge(program.len()));
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_for_both_network_settings() {
        for unix_sockets_only in [false, true] {
            let prog = build(FilterOptions { unix_sockets_only, namespaced_families_only: !unix_sockets_only }).unwrap();
            assert!(prog.len() > 12);
        }
    }

    #[test]
    fn offline_filter_is_larger_than_online_filter() {
        let on = build(FilterOptions { unix_sockets_only: false, namespaced_families_only: false }).unwrap();
        let off = build(FilterOptions { unix_sockets_only: true, namespaced_families_only: false }).unwrap();
        assert!(off.len() > on.len());
    }

    /// The prefix's jumps land where they should: both listed calls on the ENOSYS return, the
    /// `ja` on the first instruction of the rest.
    #[test]
    fn enosys_prefix_jumps_to_its_return_and_then_to_the_rest() {
        let rest = vec![sock_filter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 }];
        let p = with_enosys_prefix(rest.clone());
        let ret = p.iter().position(|i| i.code == 0x06 && i.k == (libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32)).unwrap();
        for (at, i) in p.iter().enumerate().filter(|(_, i)| i.code == 0x15 && i.k != AUDIT_ARCH) {
            assert_eq!(at + 1 + i.jt as usize, ret, "jeq {} at {at}", i.k);
            assert!(ENOSYS_CALLS.contains(&(i.k as libc::c_long)));
        }
        let ja = p.iter().position(|i| i.code == 0x05).unwrap();
        assert_eq!(ja + 1 + p[ja].k as usize, p.len() - rest.len());
        assert_eq!(p.len() - rest.len(), 4 + ENOSYS_CALLS.len() + 2);
    }
}
