//! The seccomp filters: defence in depth behind the namespaces and Landlock, and the network
//! fence itself where no network namespace is used.
//!
//! Two filters are installed because seccompiler gives one action per filter: `clone3` and
//! `openat2` must fail with `ENOSYS` (their flags live in memory a filter cannot read, and
//! callers fall back to `clone` and `openat` only on `ENOSYS`), everything else fails with
//! `EPERM`.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
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

/// Builds the filters (compiled once per sandbox, applied in every child).
pub fn build(opts: FilterOptions) -> Result<Vec<BpfProgram>, seccompiler::BackendError> {
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
    let eperm = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch())?;

    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, vec![]);
    clone3.insert(libc::SYS_openat2, vec![]);
    let enosys = SeccompFilter::new(clone3, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch())?;

    let mut eperm: BpfProgram = eperm.try_into()?;
    eperm.splice(0..0, x32_guard());
    Ok(vec![eperm, enosys.try_into()?])
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
            let progs = build(FilterOptions { unix_sockets_only, namespaced_families_only: !unix_sockets_only }).unwrap();
            assert_eq!(progs.len(), 2);
            assert!(progs.iter().all(|p| !p.is_empty()));
        }
    }

    #[test]
    fn offline_filter_is_larger_than_online_filter() {
        let on = build(FilterOptions { unix_sockets_only: false, namespaced_families_only: false }).unwrap();
        let off = build(FilterOptions { unix_sockets_only: true, namespaced_families_only: false }).unwrap();
        assert!(off[0].len() > on[0].len());
    }
}
