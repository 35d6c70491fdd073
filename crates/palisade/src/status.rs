//! How a command ended, and its collected output.

use std::fmt;

use crate::error::exit_code;

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
}

impl ExitStatus {
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn from_raw(raw: i32) -> ExitStatus {
        #[cfg(unix)]
        {
            if libc::WIFSIGNALED(raw) {
                return ExitStatus { code: None, signal: Some(libc::WTERMSIG(raw)) };
            }
            ExitStatus { code: Some(libc::WEXITSTATUS(raw)), signal: None }
        }
        #[cfg(not(unix))]
        {
            ExitStatus { code: Some(raw), signal: None }
        }
    }

    #[allow(dead_code)]
    pub(crate) fn from_code(code: i32) -> ExitStatus {
        ExitStatus { code: Some(code), signal: None }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// The exit code, if the command exited normally.
    pub fn code(&self) -> Option<i32> {
        self.code
    }
    /// The signal that ended the command, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }
    /// The status as a shell reports it: the exit code, or 128 + the signal number.
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => exit_code::PALISADE_ERROR,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => write!(f, "unknown status"),
        }
    }
}

/// The output of a finished command.
#[derive(Clone, Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// What the host-side check after the command found and did (see [`Child::notices`]).
    pub notices: Vec<String>,
    /// The command's connections through Palisade's network proxy (network = allow; see
    /// [`Child::network_records`]).
    pub network: Vec<NetworkRecord>,
    /// The refused writes and connections (with `report_denials`; see [`Child::denials`]).
    pub denials: Vec<DenialRecord>,
}

/// One connection a command made to Palisade's network proxy (network = allow), allowed or
/// refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRecord {
    /// How the command asked: `http` (plain HTTP forwarding), `http-connect`, `socks5`, or
    /// `unknown` (closed before it said).
    pub protocol: String,
    /// The host it asked for (empty if it never said), IPv6 in brackets.
    pub host: String,
    pub port: u16,
    /// Whether traffic was let through to the destination.
    pub allowed: bool,
    /// The allowlist entry that decided, if one did.
    pub rule: Option<String>,
    /// Why it was refused, or how it ended abnormally (one line).
    pub reason: Option<String>,
    /// Bytes sent to the destination, and received from it.
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration: std::time::Duration,
}

#[cfg(any(target_os = "linux", windows))]
impl From<palisade_proxy::Record> for NetworkRecord {
    fn from(r: palisade_proxy::Record) -> NetworkRecord {
        NetworkRecord {
            protocol: r.protocol.as_str().to_string(),
            host: r.host,
            port: r.port,
            allowed: r.allowed,
            rule: r.rule,
            reason: r.reason,
            bytes_up: r.bytes_up,
            bytes_down: r.bytes_down,
            duration: r.duration,
        }
    }
}

/// What a refused call tried to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DenialKind {
    /// Create, open for writing, remove, rename, link, or change the mode, owner, times or
    /// extended attributes of a file.
    Write,
    /// Connect a socket to an address.
    Connect,
}

impl DenialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DenialKind::Write => "write",
            DenialKind::Connect => "connect",
        }
    }
}

/// One kind of refused call the command made (with `--report-denials`, Linux): what it tried,
/// on which path or address, the policy rule that makes the kernel refuse it, and the system
/// call observed. Calls that differ only in when they happened are one record with a count.
/// The source is the call and its arguments as the kernel passed them to Palisade's observer
/// (before running it, unchanged), not the command's output; see the README's "Denial reports".
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DenialRecord {
    pub kind: DenialKind,
    /// The path (as seen inside the sandbox, links on the way resolved where they exist) or
    /// the address (`192.0.2.1:443`, `[2001:db8::1]:443`).
    pub target: String,
    /// The rule: `writable-roots`, `protected`, `deny-read`, `network-off` or
    /// `network-proxy-only` (see [`palisade_policy::denials::Rule`]).
    #[serde(serialize_with = "rule_name")]
    pub rule: palisade_policy::denials::Rule,
    /// The system call's name (`openat`, `mkdirat`, `connect`...).
    pub syscall: String,
    /// How many such calls were seen.
    pub count: u64,
}

fn rule_name<S: serde::Serializer>(rule: &palisade_policy::denials::Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.as_str())
}
