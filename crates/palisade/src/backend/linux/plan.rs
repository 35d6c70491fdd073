//! The Linux plan of a sandbox: everything `Prepared::prepare` decides, as one pure function of the
//! policy, the caller's options and the host's facts (gathered apart, see facts.rs), so that
//! every refusal and every weaker protection is unit-tested on any host.
//!
//! The plan holds the strategy (namespaces, Landlock-only, unconfined; see strategy.rs), the
//! network fence (one value for everything offline means: a network namespace or not, the
//! seccomp socket filter, Landlock's TCP rules and abstract-socket scope, the host socket
//! folders to hide), the Landlock ABI in use and the enforcement layers shown to users.

use super::facts::HostFacts;
use super::seccomp::FilterOptions;
use super::socket_dirs;
use super::strategy::{self, Refusal, Strategy};
use crate::report::{Enforcement, Layer};
use crate::spec::SandboxOptions;
use palisade_policy::{Network, Policy};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct LinuxPlan {
    pub strategy: Strategy,
    pub network: NetworkFence,
    /// The Landlock ABI the sandbox enforces with (None: the kernel has none, or unconfined).
    pub landlock: Option<landlock::ABI>,
    /// Without a pid namespace, and not keeping processes: this process becomes a child
    /// subreaper and ends what the command leaves behind (see process::kill_orphaned_descendants).
    pub contain_orphans: bool,
    /// What the sandbox enforces with, layer by layer (`palisade check`, --json-status).
    pub layers: Enforcement,
}

/// How the command is kept off the network: every mechanism that depends on the policy's
/// network setting asks this value (a further mode is one more variant and one more arm in
/// each method below).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkFence {
    /// network = on: the host's network, unfenced.
    Open,
    /// Offline in a network namespace of its own: only a private loopback (test servers inside
    /// keep working), only the socket families that namespace fences, and the host's unix
    /// sockets hidden (their well-known folders covered, the others masked one by one).
    OwnNamespace {
        /// The host's socket folders covered with an empty tmpfs (see socket_dirs).
        hidden_socket_dirs: Vec<PathBuf>,
    },
    /// Offline without a network namespace (Landlock-only, or unconfined): seccomp allows no
    /// socket but unix socket pairs, Landlock allows no TCP.
    Filters,
    /// network = allow: everything `OwnNamespace` does, plus one way out: Palisade's proxy
    /// (on the host, with the host's network), reached at 127.0.0.1:`port` of the command's
    /// own loopback, where the child listens before exec and hands the socket over.
    Proxied { hidden_socket_dirs: Vec<PathBuf>, port: u16 },
}

/// The port of the proxy inside every command's network namespace. Fixed, since the namespace
/// is the command's own (nothing else listens there before it starts), and 3128 is the
/// conventional proxy port that tools' documentation and users recognise.
pub const PROXY_PORT: u16 = 3128;

impl NetworkFence {
    /// The fence `policy` needs under `strategy`, or the refusal when this host cannot build it.
    pub fn for_policy(policy: &Policy, strategy: Strategy, host: &HostFacts) -> Result<NetworkFence, Refusal> {
        if policy.network == Network::On {
            return Ok(NetworkFence::Open);
        }
        let hidden = || {
            // Never the workspace's folder (nor a writable root's), whatever the mode.
            let write_roots = policy.write_roots();
            let mut keep: Vec<&Path> = write_roots.iter().map(PathBuf::as_path).collect();
            keep.push(&policy.workspace);
            socket_dirs::to_hide(&host.socket_dirs, &keep)
        };
        if let Network::Allow(_) = policy.network {
            // Only a network namespace of its own leaves the proxy as the single way out.
            return match strategy {
                Strategy::Namespaces { .. } => {
                    Ok(NetworkFence::Proxied { hidden_socket_dirs: hidden(), port: PROXY_PORT })
                }
                Strategy::LandlockOnly | Strategy::Unconfined => Err(Refusal::AllowlistNeedsNamespace),
            };
        }
        // Off (and, failing closed, any setting this backend does not know).
        Ok(match strategy {
            Strategy::Namespaces { .. } => NetworkFence::OwnNamespace { hidden_socket_dirs: hidden() },
            Strategy::LandlockOnly if host.landlock().is_none_or(|a| a < landlock::ABI::V4) => {
                return Err(Refusal::OfflineNeedsLandlockTcp)
            }
            Strategy::LandlockOnly | Strategy::Unconfined => NetworkFence::Filters,
        })
    }

    /// Whether the command gets a network namespace of its own (with its loopback up).
    pub fn new_namespace(&self) -> bool {
        matches!(self, NetworkFence::OwnNamespace { .. } | NetworkFence::Proxied { .. })
    }

    /// The port the child opens for the proxy on its private loopback (network = allow).
    pub fn proxy_port(&self) -> Option<u16> {
        match self {
            NetworkFence::Proxied { port, .. } => Some(*port),
            NetworkFence::Open | NetworkFence::OwnNamespace { .. } | NetworkFence::Filters => None,
        }
    }

    /// The network part of the seccomp filter.
    pub fn seccomp(&self) -> FilterOptions {
        FilterOptions {
            unix_sockets_only: matches!(self, NetworkFence::Filters),
            namespaced_families_only: !matches!(self, NetworkFence::Open),
            // Decided by keep_processes, not the network (see Prepared::prepare).
            foreground_fixed: false,
        }
    }

    /// Whether Landlock denies TCP bind and connect (where no namespace fences them).
    pub fn landlock_blocks_tcp(&self) -> bool {
        matches!(self, NetworkFence::Filters)
    }

    /// Whether Landlock keeps abstract unix sockets outside the sandbox out of reach.
    pub fn scopes_abstract_unix(&self) -> bool {
        !matches!(self, NetworkFence::Open)
    }

    /// The host's socket folders to cover with an empty tmpfs.
    pub fn hidden_socket_dirs(&self) -> &[PathBuf] {
        match self {
            NetworkFence::OwnNamespace { hidden_socket_dirs } | NetworkFence::Proxied { hidden_socket_dirs, .. } => {
                hidden_socket_dirs
            }
            NetworkFence::Open | NetworkFence::Filters => &[],
        }
    }

    /// Whether the host's bound unix sockets elsewhere are masked one by one (connecting to
    /// one crosses namespaces; see host_sockets).
    pub fn masks_host_sockets(&self) -> bool {
        self.new_namespace()
    }

    /// The layer shown for the network namespace (namespaces strategy only).
    fn namespace_layer(&self) -> Layer {
        match self {
            NetworkFence::OwnNamespace { .. } => {
                Layer::new("network namespace", true, "offline: only a private loopback")
            }
            NetworkFence::Proxied { port, .. } => {
                Layer::new("network namespace", true, &format!("allowlist: only Palisade's proxy at 127.0.0.1:{port}"))
            }
            NetworkFence::Open => Layer::new("network namespace", false, "network is on"),
            // Not reached: offline under namespaces always has a namespace of its own.
            NetworkFence::Filters => Layer::new("network namespace", false, "offline by filters"),
        }
    }
}

/// The plan for `policy` on `host`, or what it refuses. No system call.
pub fn decide(policy: &Policy, options: &SandboxOptions, host: &HostFacts) -> Result<LinuxPlan, Refusal> {
    let strategy = strategy::choose(policy, options, host)?;
    let network = NetworkFence::for_policy(policy, strategy, host)?;
    let landlock = host.landlock().filter(|_| strategy != Strategy::Unconfined);
    let layers = layers(strategy, &network, landlock.is_some(), host);
    Ok(LinuxPlan {
        strategy,
        network,
        landlock,
        contain_orphans: strategy == Strategy::LandlockOnly && !policy.keep_processes,
        layers,
    })
}

fn layers(strategy: Strategy, network: &NetworkFence, use_landlock: bool, host: &HostFacts) -> Enforcement {
    let mut e = Enforcement::default();
    match strategy {
        Strategy::Namespaces { pid } => {
            e.push(Layer::new("user namespace", true, "commands have no privileges outside it"));
            e.push(Layer::new(
                "mount namespace",
                true,
                "read-only root, writable roots, protected paths, deny-read masks, private /tmp",
            ));
            e.push(Layer::new("ipc namespace", true, "host System V IPC and POSIX message queues out of reach"));
            e.push(Layer::new(
                "pid namespace",
                pid,
                if pid {
                    "the process tree ends with the command"
                } else {
                    "off: keep_processes asks processes to outlive the command"
                },
            ));
            e.push(network.namespace_layer());
        }
        Strategy::LandlockOnly => {
            e.push(Layer::new("namespaces", false, "Landlock-only mode (explicit choice)"));
            if host.euid == 0 {
                // Said wherever the layers are shown (check, --json-status): never silent.
                e.push(Layer::new(
                    "metadata outside writable roots",
                    false,
                    "NOT protected: root's commands can chmod/chown/touch root's files anywhere (allow_landlock_only_as_root)",
                ));
            }
        }
        Strategy::Unconfined => {
            e.push(Layer::new("filesystem", false, "full-access mode: no confinement"));
        }
    }
    e.push(Layer::new(
        "landlock",
        use_landlock,
        &match host.landlock() {
            Some(_) => format!("ABI {}", host.landlock_version),
            None => "not available in this kernel".into(),
        },
    ));
    e.push(Layer::new("seccomp", true, "ptrace, io_uring, keyring, bpf, mounts, new user namespaces, TIOCSTI blocked"));
    e
}

#[cfg(test)]
mod tests;
