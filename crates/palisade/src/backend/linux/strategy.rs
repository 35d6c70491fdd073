//! Which confinement a sandbox uses on this host, and what it refuses: decisions from the
//! policy, the options the caller asked for and two facts about the host (the effective uid and
//! the Landlock ABI), kept apart from the system calls so that the whole refusal matrix is
//! unit-tested.

use super::probe;
use crate::{Error, SandboxOptions};
use palisade_policy::{Mode, Policy};

/// How this sandbox confines commands on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// User + mount (+ pid, + network) namespaces, with Landlock and seccomp inside.
    Namespaces { pid: bool, net: bool },
    /// Landlock and seccomp only (an explicit user choice where namespaces are unavailable).
    LandlockOnly,
    /// No confinement (mode = full-access): only the environment filter and seccomp's
    /// process protections.
    Unconfined,
}

impl Strategy {
    /// Offline without a network namespace of its own: the network is then fenced by filters
    /// alone (seccomp allows no socket, Landlock no TCP).
    pub fn offline_by_filters(self, policy: &Policy) -> bool {
        policy.network.is_off() && !matches!(self, Strategy::Namespaces { net: true, .. })
    }
}

/// What the choice depends on about this host.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    pub euid: u32,
    pub landlock: Option<landlock::ABI>,
}

/// The strategy for `policy` on `host`, or the refusal (fail closed: a protection the policy
/// needs that this host cannot enforce is named, with what to do).
pub fn choose(policy: &Policy, options: &SandboxOptions, host: Host) -> Result<Strategy, Error> {
    let strategy = if policy.mode == Mode::FullAccess {
        Strategy::Unconfined
    } else if options.landlock_only {
        Strategy::LandlockOnly
    } else {
        // A network namespace gives offline commands their own loopback (test servers
        // inside keep working) while the host's is unreachable. Keeping processes alive
        // after the command means no pid namespace (its end kills everything in it).
        Strategy::Namespaces { pid: !policy.keep_processes, net: policy.network.is_off() }
    };
    let needs_landlock = match strategy {
        Strategy::LandlockOnly => true,
        // Device nodes ignore read-only mounts, and root owns the raw disks: only
        // Landlock's device rules keep root's commands off them.
        Strategy::Namespaces { .. } => host.euid == 0,
        Strategy::Unconfined => false,
    };
    if host.landlock.is_none() && needs_landlock {
        return Err(Error::Unenforceable {
            what: "the filesystem policy".into(),
            why: "Landlock is not available in this kernel (it needs Linux 5.13+ with landlock in the lsm= boot list)".into(),
            fix: "enable Landlock (add `landlock` to the kernel's lsm= parameter) or run Palisade as an unprivileged user with user namespaces".into(),
        });
    }
    if !signals_fenced(strategy, host.landlock) {
        return Err(Error::Unenforceable {
            what: "keeping the command away from processes outside (signals)".into(),
            why: "without a pid namespace (--keep-processes, or Landlock-only mode) only Landlock's signal scope (ABI 6, Linux 6.12+) stops a command from signalling the user's other processes, and this kernel does not have it".into(),
            fix: "run without --keep-processes (and with user namespaces), or on Linux 6.12+".into(),
        });
    }
    if strategy == Strategy::LandlockOnly && host.euid == 0 && !options.landlock_only_as_root {
        // Landlock has no right for metadata changes, and without a mount namespace nothing
        // is read-only: root (even without capabilities, as the owner) could chmod any of
        // root's files on the host (/etc/shadow 0666).
        return Err(Error::Unenforceable {
            what: "the filesystem policy for root in Landlock-only mode".into(),
            why: "Landlock does not cover chmod/utimes, and without a mount namespace root's commands could change the mode of any of root's files on the host".into(),
            fix: format!("run Palisade as an unprivileged user, or allow user namespaces (`{}` where AppArmor restricts them); where neither is possible (a container without user namespaces), `[linux] allow_landlock_only_as_root = true` accepts that risk", probe::sudo_setup()),
        });
    }
    if strategy == Strategy::LandlockOnly {
        // Without a mount namespace nothing can keep a path inside a writable root
        // read-only, nor hide file names.
        if !policy.protected_paths.is_empty() && !policy.write_roots().is_empty() && !options.accept_unprotected_paths {
            return Err(Error::Unenforceable {
                what: "protected paths (.git/hooks, .git/config, agent folders)".into(),
                why: "they need a mount namespace, and Landlock-only mode has none".into(),
                fix: format!("allow user namespaces (`{}` where AppArmor restricts them), or also set `[linux] allow_unprotected_paths = true` to accept that protected paths are writable", probe::sudo_setup()),
            });
        }
        if policy.network.is_off() && host.landlock.is_none_or(|a| a < landlock::ABI::V4) {
            return Err(Error::Unenforceable {
                what: "network = off".into(),
                why: "without a network namespace it needs Landlock's TCP rules (ABI 4, Linux 6.7+)".into(),
                fix: "allow user namespaces, or run with --network on".into(),
            });
        }
    }
    Ok(strategy)
}

/// Whether processes outside the sandbox are out of reach of the command's signals: a pid
/// namespace hides them (a host pid does not exist inside); without one, only Landlock's
/// signal scope (ABI 6) stops kill(2) on the user's other processes. Unconfined (full-access)
/// promises nothing.
pub fn signals_fenced(strategy: Strategy, abi: Option<landlock::ABI>) -> bool {
    match strategy {
        Strategy::Namespaces { pid: true, .. } | Strategy::Unconfined => true,
        Strategy::Namespaces { pid: false, .. } | Strategy::LandlockOnly => abi.is_some_and(|a| a >= landlock::ABI::V6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landlock::ABI;
    use palisade_policy::Network;

    #[test]
    fn without_a_pid_namespace_signals_need_landlock_scopes() {
        let keep = Strategy::Namespaces { pid: false, net: true };
        assert!(signals_fenced(Strategy::Namespaces { pid: true, net: true }, None));
        assert!(signals_fenced(keep, Some(ABI::V6)));
        for abi in [None, Some(ABI::V1), Some(ABI::V5)] {
            assert!(!signals_fenced(keep, abi), "{abi:?}");
            assert!(!signals_fenced(Strategy::LandlockOnly, abi), "{abi:?}");
        }
    }

    /// Offline is fenced by filters exactly where no network namespace of its own does it.
    #[test]
    fn offline_by_filters_only_without_a_network_namespace() {
        let mut policy = Policy::new(std::env::temp_dir(), None);
        policy.network = Network::Off;
        assert!(!Strategy::Namespaces { pid: true, net: true }.offline_by_filters(&policy));
        assert!(Strategy::LandlockOnly.offline_by_filters(&policy));
        policy.network = Network::On;
        assert!(!Strategy::LandlockOnly.offline_by_filters(&policy));
        assert!(!Strategy::Namespaces { pid: true, net: false }.offline_by_filters(&policy));
    }

    /// One row: the policy's mode, network and keep_processes, whether it has protected paths,
    /// the options, the host; and the outcome (a strategy, or a refusal named by its `what`).
    struct Row {
        mode: Mode,
        net_off: bool,
        keep: bool,
        protected: bool,
        landlock_only: bool,
        accept_unprotected: bool,
        as_root: bool,
        euid: u32,
        abi: Option<ABI>,
        want: Result<Strategy, &'static str>,
    }

    const USER: u32 = 1000;

    fn row() -> Row {
        Row {
            mode: Mode::WorkspaceWrite,
            net_off: true,
            keep: false,
            protected: true,
            landlock_only: false,
            accept_unprotected: false,
            as_root: false,
            euid: USER,
            abi: Some(ABI::V6),
            want: Ok(Strategy::Namespaces { pid: true, net: true }),
        }
    }

    /// The refusal matrix, written out case by case (not derived from the code above).
    #[test]
    fn the_refusal_matrix() {
        let ns = |pid, net| Ok(Strategy::Namespaces { pid, net });
        let rows = [
            // The default, with and without Landlock (an unprivileged user needs none).
            row(),
            Row { abi: None, ..row() },
            Row { net_off: false, want: ns(true, false), ..row() },
            // Root's commands need Landlock's device rules.
            Row { euid: 0, ..row() },
            Row { euid: 0, abi: None, want: Err("the filesystem policy"), ..row() },
            // keep_processes: no pid namespace, so Landlock's signal scope (ABI 6).
            Row { keep: true, want: ns(false, true), ..row() },
            Row { keep: true, abi: Some(ABI::V5), want: Err("keeping the command away from processes outside (signals)"), ..row() },
            Row { keep: true, abi: None, want: Err("keeping the command away from processes outside (signals)"), ..row() },
            // Full access refuses nothing, whatever the host.
            Row { mode: Mode::FullAccess, abi: None, euid: 0, keep: true, want: Ok(Strategy::Unconfined), ..row() },
            Row { mode: Mode::FullAccess, landlock_only: true, abi: None, want: Ok(Strategy::Unconfined), ..row() },
            // Landlock-only: Landlock itself, the signal scope, protected paths, root, offline TCP.
            Row { landlock_only: true, abi: None, want: Err("the filesystem policy"), ..row() },
            Row { landlock_only: true, abi: Some(ABI::V5), want: Err("keeping the command away from processes outside (signals)"), ..row() },
            Row { landlock_only: true, want: Err("protected paths (.git/hooks, .git/config, agent folders)"), ..row() },
            Row { landlock_only: true, accept_unprotected: true, want: Ok(Strategy::LandlockOnly), ..row() },
            Row { landlock_only: true, protected: false, want: Ok(Strategy::LandlockOnly), ..row() },
            // Read-only mode has no writable root for a protected path to be in.
            Row { landlock_only: true, mode: Mode::ReadOnly, want: Ok(Strategy::LandlockOnly), ..row() },
            Row { landlock_only: true, accept_unprotected: true, euid: 0, want: Err("the filesystem policy for root in Landlock-only mode"), ..row() },
            Row { landlock_only: true, accept_unprotected: true, euid: 0, as_root: true, want: Ok(Strategy::LandlockOnly), ..row() },
            // The opt-in does not lift the other refusals.
            Row { landlock_only: true, euid: 0, as_root: true, want: Err("protected paths (.git/hooks, .git/config, agent folders)"), ..row() },
        ];
        let base = std::env::temp_dir();
        for (i, r) in rows.into_iter().enumerate() {
            let mut policy = Policy::new(&base, None);
            policy.mode = r.mode;
            policy.network = if r.net_off { Network::Off } else { Network::On };
            policy.keep_processes = r.keep;
            if !r.protected {
                policy.protected_paths.clear();
            }
            let options = SandboxOptions {
                landlock_only: r.landlock_only,
                accept_unprotected_paths: r.accept_unprotected,
                landlock_only_as_root: r.as_root,
            };
            let got = choose(&policy, &options, Host { euid: r.euid, landlock: r.abi });
            match (got, r.want) {
                (Ok(s), Ok(w)) => assert_eq!(s, w, "row {i}"),
                (Err(Error::Unenforceable { what, .. }), Err(w)) => assert_eq!(what, w, "row {i}"),
                (got, want) => panic!("row {i}: got {got:?}, want {want:?}"),
            }
        }
    }
}
