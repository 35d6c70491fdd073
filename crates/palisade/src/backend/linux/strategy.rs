//! Which confinement a sandbox uses on this host, and what it refuses: decisions from the
//! policy, the options the caller asked for and two facts about the host (the effective uid and
//! the Landlock ABI), with no system call, so that the whole refusal matrix is unit-tested
//! (see plan.rs, which adds the network fence and the layers).

use super::facts::HostFacts;
use super::probe;
use crate::error::Error;
use crate::spec::SandboxOptions;
use palisade_policy::{Mode, Policy};

/// How this sandbox confines commands on this host. (Whether it has a network namespace of its
/// own is the network fence's business: see plan::NetworkFence.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// User + mount + ipc (+ pid) namespaces, with Landlock and seccomp inside.
    Namespaces { pid: bool },
    /// Landlock and seccomp only (an explicit user choice where namespaces are unavailable).
    LandlockOnly,
    /// No confinement (mode = full-access): only the environment filter and seccomp's
    /// process protections.
    Unconfined,
}

/// A protection the policy needs that this host cannot enforce (fail closed). Each becomes an
/// [`Error::Unenforceable`] naming it, why, and what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The strategy needs Landlock and the kernel has none.
    NoLandlock,
    /// No pid namespace, and no Landlock signal scope (ABI 6) either.
    SignalsUnfenced,
    /// Landlock-only mode for root without the explicit opt-in.
    RootInLandlockOnly,
    /// Landlock-only mode has no mount namespace to keep protected paths read-only.
    ProtectedPathsNeedNamespaces,
    /// network = off without a network namespace needs Landlock's TCP rules (ABI 4).
    OfflineNeedsLandlockTcp,
    /// network = allow needs a network namespace of its own (Landlock-only mode and full
    /// access have none): only there is the proxy the single way out.
    AllowlistNeedsNamespace,
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        let (what, why, fix): (&str, &str, String) = match r {
            Refusal::NoLandlock => (
                "the filesystem policy",
                "Landlock is not available in this kernel (it needs Linux 5.13+ with landlock in the lsm= boot list)",
                "enable Landlock (add `landlock` to the kernel's lsm= parameter) or run Palisade as an unprivileged user with user namespaces".into(),
            ),
            Refusal::SignalsUnfenced => (
                "keeping the command away from processes outside (signals)",
                "without a pid namespace (--keep-processes, or Landlock-only mode) only Landlock's signal scope (ABI 6, Linux 6.12+) stops a command from signalling the user's other processes, and this kernel does not have it",
                "run without --keep-processes (and with user namespaces), or on Linux 6.12+".into(),
            ),
            Refusal::RootInLandlockOnly => (
                "the filesystem policy for root in Landlock-only mode",
                "Landlock does not cover chmod/utimes, and without a mount namespace root's commands could change the mode of any of root's files on the host",
                format!("run Palisade as an unprivileged user, or allow user namespaces (`{}` where AppArmor restricts them); where neither is possible (a container without user namespaces), `[linux] allow_landlock_only_as_root = true` accepts that risk", probe::sudo_setup()),
            ),
            Refusal::ProtectedPathsNeedNamespaces => (
                "protected paths (.git/hooks, .git/config, agent folders)",
                "they need a mount namespace, and Landlock-only mode has none",
                format!("allow user namespaces (`{}` where AppArmor restricts them), or also set `[linux] allow_unprotected_paths = true` to accept that protected paths are writable", probe::sudo_setup()),
            ),
            Refusal::OfflineNeedsLandlockTcp => (
                "network = off",
                "without a network namespace it needs Landlock's TCP rules (ABI 4, Linux 6.7+)",
                "allow user namespaces, or run with --network on".into(),
            ),
            Refusal::AllowlistNeedsNamespace => (
                "the network allowlist",
                "the network allowlist needs a network namespace of its own, whose only way out is Palisade's proxy, and this sandbox has none (Landlock-only mode, or mode = full-access)",
                "run where user namespaces are available (and not in full-access mode), or use --network off or --network on".into(),
            ),
        };
        Error::Unenforceable { what: what.into(), why: why.into(), fix }
    }
}

/// The strategy for `policy` on `host`, or the refusal (fail closed: a protection the policy
/// needs that this host cannot enforce is named, with what to do). The network's own refusal
/// is the fence's (see plan::NetworkFence::for_policy), checked after these.
pub fn choose(policy: &Policy, options: &SandboxOptions, host: &HostFacts) -> Result<Strategy, Refusal> {
    let landlock = host.landlock();
    let strategy = if policy.mode == Mode::FullAccess {
        Strategy::Unconfined
    } else if options.landlock_only {
        Strategy::LandlockOnly
    } else {
        // Keeping processes alive after the command means no pid namespace (its end kills
        // everything in it).
        Strategy::Namespaces { pid: !policy.keep_processes }
    };
    let needs_landlock = match strategy {
        Strategy::LandlockOnly => true,
        // Device nodes ignore read-only mounts, and root owns the raw disks: only
        // Landlock's device rules keep root's commands off them.
        Strategy::Namespaces { .. } => host.euid == 0,
        Strategy::Unconfined => false,
    };
    if landlock.is_none() && needs_landlock {
        return Err(Refusal::NoLandlock);
    }
    if !signals_fenced(strategy, landlock) {
        return Err(Refusal::SignalsUnfenced);
    }
    if strategy == Strategy::LandlockOnly && host.euid == 0 && !options.landlock_only_as_root {
        // Landlock has no right for metadata changes, and without a mount namespace nothing
        // is read-only: root (even without capabilities, as the owner) could chmod any of
        // root's files on the host (/etc/shadow 0666).
        return Err(Refusal::RootInLandlockOnly);
    }
    // Without a mount namespace nothing can keep a path inside a writable root read-only, nor
    // hide file names.
    if strategy == Strategy::LandlockOnly
        && !policy.protected_paths.is_empty()
        && !policy.write_roots().is_empty()
        && !options.accept_unprotected_paths
    {
        return Err(Refusal::ProtectedPathsNeedNamespaces);
    }
    Ok(strategy)
}

/// Whether processes outside the sandbox are out of reach of the command's signals: a pid
/// namespace hides them (a host pid does not exist inside); without one, only Landlock's
/// signal scope (ABI 6) stops kill(2) on the user's other processes. Unconfined (full-access)
/// promises nothing.
pub fn signals_fenced(strategy: Strategy, abi: Option<landlock::ABI>) -> bool {
    match strategy {
        Strategy::Namespaces { pid: true } | Strategy::Unconfined => true,
        Strategy::Namespaces { pid: false } | Strategy::LandlockOnly => abi.is_some_and(|a| a >= landlock::ABI::V6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landlock::ABI;

    #[test]
    fn without_a_pid_namespace_signals_need_landlock_scopes() {
        let keep = Strategy::Namespaces { pid: false };
        assert!(signals_fenced(Strategy::Namespaces { pid: true }, None));
        assert!(signals_fenced(keep, Some(ABI::V6)));
        for abi in [None, Some(ABI::V1), Some(ABI::V5)] {
            assert!(!signals_fenced(keep, abi), "{abi:?}");
            assert!(!signals_fenced(Strategy::LandlockOnly, abi), "{abi:?}");
        }
    }

    /// Each refusal's message, word for word as users have seen it (the text is the interface:
    /// scripts and the README quote it).
    #[test]
    fn refusals_read_as_before() {
        let setup = probe::sudo_setup();
        let cases = [
            (Refusal::NoLandlock, "refusing to run: the filesystem policy cannot be enforced on this host: Landlock is not available in this kernel (it needs Linux 5.13+ with landlock in the lsm= boot list); to fix: enable Landlock (add `landlock` to the kernel's lsm= parameter) or run Palisade as an unprivileged user with user namespaces".to_string()),
            (Refusal::SignalsUnfenced, "refusing to run: keeping the command away from processes outside (signals) cannot be enforced on this host: without a pid namespace (--keep-processes, or Landlock-only mode) only Landlock's signal scope (ABI 6, Linux 6.12+) stops a command from signalling the user's other processes, and this kernel does not have it; to fix: run without --keep-processes (and with user namespaces), or on Linux 6.12+".to_string()),
            (Refusal::RootInLandlockOnly, format!("refusing to run: the filesystem policy for root in Landlock-only mode cannot be enforced on this host: Landlock does not cover chmod/utimes, and without a mount namespace root's commands could change the mode of any of root's files on the host; to fix: run Palisade as an unprivileged user, or allow user namespaces (`{setup}` where AppArmor restricts them); where neither is possible (a container without user namespaces), `[linux] allow_landlock_only_as_root = true` accepts that risk")),
            (Refusal::ProtectedPathsNeedNamespaces, format!("refusing to run: protected paths (.git/hooks, .git/config, agent folders) cannot be enforced on this host: they need a mount namespace, and Landlock-only mode has none; to fix: allow user namespaces (`{setup}` where AppArmor restricts them), or also set `[linux] allow_unprotected_paths = true` to accept that protected paths are writable")),
            (Refusal::OfflineNeedsLandlockTcp, "refusing to run: network = off cannot be enforced on this host: without a network namespace it needs Landlock's TCP rules (ABI 4, Linux 6.7+); to fix: allow user namespaces, or run with --network on".to_string()),
            (Refusal::AllowlistNeedsNamespace, "refusing to run: the network allowlist cannot be enforced on this host: the network allowlist needs a network namespace of its own, whose only way out is Palisade's proxy, and this sandbox has none (Landlock-only mode, or mode = full-access); to fix: run where user namespaces are available (and not in full-access mode), or use --network off or --network on".to_string()),
        ];
        for (refusal, text) in cases {
            assert_eq!(Error::from(refusal).to_string(), text, "{refusal:?}");
        }
    }
}
