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
