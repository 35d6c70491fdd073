//! Palisade's policy: what a sandboxed command may do, as plain data and pure functions.
//!
//! Nothing in this crate touches the operating system's enforcement mechanisms; every backend
//! (Linux, Windows, macOS) turns the same [`Policy`] into its own OS calls. Keeping the decisions
//! here means they are unit-tested on any host.

#![forbid(unsafe_code)]

pub mod config;
pub mod denials;
pub mod env;
pub mod git_config_keys;
pub mod git_index;
pub mod net_rules;
pub mod protected;
pub mod workspace;

use std::fmt;
use std::path::{Path, PathBuf};

pub use config::{ConfigError, Layer, LoadRequest, Overrides, Resolved, Source};

/// How much the command may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Nothing is writable except the private temporary directory.
    ReadOnly,
    /// The workspace, the extra writable roots and the private temporary directory.
    WorkspaceWrite,
    /// No filesystem confinement at all (an explicit user choice).
    FullAccess,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::ReadOnly, Mode::WorkspaceWrite, Mode::FullAccess];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read-only",
            Mode::WorkspaceWrite => "workspace-write",
            Mode::FullAccess => "full-access",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the command may use the network.
///
/// `Off` means no TCP/UDP of any family to anything outside the sandbox (the host's loopback
/// included), no abstract unix sockets outside the sandbox and no unix sockets outside the
/// writable roots. `Allow` is `Off` plus one way out: Palisade's own proxy, which connects only
/// to what the allowlist admits (see [`net_rules`]). The enum is non-exhaustive so that adding
/// a mode is not a breaking change; a backend refuses a mode it does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Network {
    Off,
    /// Only through Palisade's proxy, to what the allowlist admits.
    Allow(net_rules::Allowlist),
    On,
}

impl Network {
    pub fn as_str(&self) -> &'static str {
        match self {
            Network::Off => "off",
            Network::Allow(_) => "allow",
            Network::On => "on",
        }
    }

    /// `off`, `on`, or `allow` (with an empty allowlist: entries come from elsewhere).
    pub fn parse(s: &str) -> Option<Network> {
        match s {
            "off" => Some(Network::Off),
            "allow" => Some(Network::Allow(net_rules::Allowlist::default())),
            "on" => Some(Network::On),
            _ => None,
        }
    }

    pub fn is_off(&self) -> bool {
        matches!(self, Network::Off)
    }

    /// The allowlist, in `allow` mode.
    pub fn allowlist(&self) -> Option<&net_rules::Allowlist> {
        match self {
            Network::Allow(a) => Some(a),
            _ => None,
        }
    }

    /// How open the mode is: off < allow < on (the layering's "may only narrow").
    pub fn openness(&self) -> u8 {
        match self {
            Network::Off => 0,
            Network::Allow(_) => 1,
            Network::On => 2,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which environment variables reach the command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvPolicy {
    /// Case-insensitive glob patterns (`*` only) for names that look like secrets.
    pub secret_patterns: Vec<String>,
    /// Names that pass even though they match a secret pattern (exact, case-sensitive).
    pub keep: Vec<String>,
}

/// The effective policy for one command. All paths are absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// The active workspace (writable in `workspace-write`).
    pub workspace: PathBuf,
    /// Extra writable roots besides the workspace (only used in `workspace-write`).
    pub writable_roots: Vec<PathBuf>,
    /// Paths the command may not read (files or directories; they need not exist).
    pub deny_read: Vec<PathBuf>,
    /// Patterns, relative to each writable root, that stay read-only (see [`protected`]).
    pub protected_paths: Vec<String>,
    pub network: Network,
    pub env: EnvPolicy,
    /// Let processes started by the command outlive it.
    pub keep_processes: bool,
}

impl Policy {
    /// The built-in defaults for a workspace, before any configuration file.
    pub fn new(workspace: impl Into<PathBuf>, home: Option<&Path>) -> Policy {
        Policy {
            mode: Mode::WorkspaceWrite,
            workspace: workspace.into(),
            writable_roots: Vec::new(),
            deny_read: home.map(default_deny_read).unwrap_or_default(),
            protected_paths: protected::DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect(),
            network: Network::Off,
            env: EnvPolicy {
                secret_patterns: env::DEFAULT_SECRET_PATTERNS.iter().map(|s| s.to_string()).collect(),
                keep: Vec::new(),
            },
            keep_processes: false,
        }
    }

    /// The roots the command may write (besides its private temporary directory), in the order
    /// given: the workspace first. Empty in `read-only`; meaningless in `full-access`.
    pub fn write_roots(&self) -> Vec<PathBuf> {
        match self.mode {
            Mode::ReadOnly => Vec::new(),
            Mode::WorkspaceWrite | Mode::FullAccess => {
                let mut roots = vec![self.workspace.clone()];
                for r in &self.writable_roots {
                    if !roots.contains(r) {
                        roots.push(r.clone());
                    }
                }
                roots
            }
        }
    }
}

/// Secrets folders and files under a home directory that are unreadable by default.
pub const DEFAULT_DENY_READ_IN_HOME: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker/config.json",
    ".netrc",
    ".config/gh",
    // Plaintext credentials as common as `.netrc`: git's credential store, cloud and registry
    // tokens (read by the tools only to log in or publish).
    ".git-credentials",
    ".config/git/credentials",
    ".config/gcloud",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".pypirc",
    ".vault-token",
];

pub fn default_deny_read(home: &Path) -> Vec<PathBuf> {
    DEFAULT_DENY_READ_IN_HOME.iter().map(|p| home.join(p)).collect()
}
