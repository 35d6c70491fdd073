//! The message protocol between `palisade` (the CLI) and `palisade-runner` over a named pipe.
//!
//! # Frames
//!
//! Every message is one frame: a fixed 12-byte header followed by the payload.
//!
//! | bytes | field | value |
//! |---|---|---|
//! | 0..4 | magic | `PLSR` |
//! | 4..6 | protocol version | u16 little endian, [`PROTOCOL_VERSION`] |
//! | 6 | message type | see [`MessageType`]; the high bit is set on messages the runner sends |
//! | 7 | flags | must be 0 (reserved) |
//! | 8..12 | payload length | u32 little endian, at most [`MAX_PAYLOAD`] |
//!
//! # Payload encoding
//!
//! Fields follow each other with no padding: integers little endian; `bool` one byte that is 0
//! or 1; a string is a u32 byte length then that many bytes of UTF-8 containing no NUL (so it
//! survives conversion to a NUL-terminated UTF-16 string on the runner's side unchanged); bytes
//! are a u32 length then the bytes; a list is a u32 count then the items; an option is a tag
//! byte 0 (none) or 1 followed by the value. The payload must be consumed exactly: trailing bytes
//! are an error, as are every limit below, so that each message has exactly one encoding.
//!
//! Strings are UTF-8 rather than UTF-16: the CLI refuses arguments that are not valid Unicode
//! (unpaired surrogates) before it sends anything, and the runner converts to UTF-16.
//!
//! # Conversation
//!
//! The CLI sends [`Message::Spawn`] first and exactly once, then any of `StdinData`,
//! `StdinClose` (once; no data after it), `Resize`, `Terminate`. The runner answers, when the
//! request asked for a fence probe, one `FenceReport` first; then `Started` (or `Error` and
//! closes), then `Output` chunks, and ends with exactly one `Exit` or `Error`.
//! [`Conversation`] checks this order for either side.
//!
//! # Versions
//!
//! Version 2 added the spawn request's `fence_probe` and the `FenceReport` message; version 3
//! the probe's `proxy_port` (`network = allow`: the proxied account) and the report's `proxy`
//! outcome. A runner and a CLI of different versions refuse each other: the runner's command
//! line names the version (exit 3), and every frame carries it.

use std::fmt;

use crate::sid::Sid;

mod codec;
mod stream;

pub use codec::decode_frame;
#[cfg(test)]
use codec::{put_bytes, put_str, put_u32};
pub use stream::{fuzz_one, Conversation, FrameReader, OrderError};

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"PLSR";
/// The only protocol version this code speaks. A peer with another version is refused.
pub const PROTOCOL_VERSION: u16 = 3;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Largest payload a frame may carry (1 MiB).
pub const MAX_PAYLOAD: u32 = 1 << 20;
/// Largest `StdinData`/`Output` chunk; larger writes are split with [`data_chunks`].
pub const MAX_DATA: usize = 64 * 1024;
/// Most arguments a command may have (Windows command lines are at most 32,767 UTF-16 units).
pub const MAX_ARGS: usize = 8192;
/// Most environment variables.
pub const MAX_ENV: usize = 4096;
/// Longest string (program, argument, variable name or value, directory), in bytes.
pub const MAX_STRING: usize = 32 * 1024;
/// Longest error message, in bytes.
pub const MAX_ERROR_MESSAGE: usize = 4096;
/// Most capability SIDs in a spawn request.
pub const MAX_SIDS: usize = 64;

/// Who sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    Cli,
    Runner,
}

/// The message type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    Spawn = 0x01,
    StdinData = 0x02,
    StdinClose = 0x03,
    Resize = 0x04,
    Terminate = 0x05,
    Started = 0x81,
    Output = 0x82,
    Exit = 0x83,
    Error = 0x84,
    FenceReport = 0x85,
}

impl MessageType {
    pub const ALL: [MessageType; 10] = [
        MessageType::Spawn,
        MessageType::StdinData,
        MessageType::StdinClose,
        MessageType::Resize,
        MessageType::Terminate,
        MessageType::Started,
        MessageType::Output,
        MessageType::Exit,
        MessageType::Error,
        MessageType::FenceReport,
    ];

    pub fn from_byte(b: u8) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| *t as u8 == b)
    }

    pub fn sender(self) -> Sender {
        if (self as u8) & 0x80 == 0 {
            Sender::Cli
        } else {
            Sender::Runner
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MessageType::Spawn => "spawn",
            MessageType::StdinData => "stdin-data",
            MessageType::StdinClose => "stdin-close",
            MessageType::Resize => "resize",
            MessageType::Terminate => "terminate",
            MessageType::Started => "started",
            MessageType::Output => "output",
            MessageType::Exit => "exit",
            MessageType::Error => "error",
            MessageType::FenceReport => "fence-report",
        }
    }
}

/// A terminal size in character cells; both at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtySize {
    pub cols: u16,
    pub rows: u16,
}

/// The network fence probe the runner makes before it starts the command (see
/// [`crate::fence_probe`]): a non-blocking TCP connect to an outside address and one to a
/// loopback port the CLI listens on for this purpose, both as the runner's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The CLI's loopback listener (on 127.0.0.1; not a proxy port). Not 0.
    pub loopback_port: u16,
    /// Refuse to start the command (`Error` of kind [`ErrorKind::FenceOpen`]) unless the probe
    /// proves the fence. `false` (report only) is allowed only with `network = true`: the
    /// plumbing tests' runner runs as the caller, whose connects are not fenced, and a request
    /// for an offline command can never turn the refusal off.
    pub enforce: bool,
    /// `network = allow`: the port of the CLI's proxy on 127.0.0.1, which the runner's account
    /// must reach (a third connect) while the other two are blocked; the command then runs as
    /// `PalisadeProxied`. Only without `network`; not 0, not `loopback_port`.
    pub proxy_port: Option<u16>,
}

/// How one probe connect ended (the runner's classification, [`crate::fence_probe::classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Refused at once with `WSAEACCES`: a WFP block at `ALE_AUTH_CONNECT`.
    Blocked,
    /// Connected, in progress, or answered (refused) by the far end: nothing stopped it.
    Open,
    /// No route to the address (`WSAENETUNREACH`, `WSAEHOSTUNREACH`): it did not get out, but
    /// not because of the fence.
    NoRoute,
    /// Another error, with its Winsock code: the probe shows nothing.
    Failed(u32),
}

/// What the CLI asks the runner to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnRequest {
    /// The setup version the CLI expects the runner to belong to ([`crate::SETUP_VERSION`]).
    /// A runner from another setup answers [`ErrorKind::VersionMismatch`].
    pub version: u32,
    /// The program, as resolved by the CLI (absolute path) or a name to look up in `PATH`.
    pub program: String,
    /// Arguments after the program (not including it).
    pub args: Vec<String>,
    /// The complete environment of the command (already filtered by the policy), in order.
    pub env: Vec<(String, String)>,
    /// The working directory (absolute).
    pub cwd: String,
    /// `Some` to run the command in a pseudo console of this size, `None` for pipes.
    pub tty: Option<TtySize>,
    /// Whether the policy allows network. The runner refuses when this does not match the
    /// account it runs as (`PalisadeOnline` only for `true`), so a mix-up fails closed.
    pub network: bool,
    /// Let processes the command starts outlive it (no kill-on-close for the job).
    pub keep_processes: bool,
    /// Run the command on a private desktop.
    pub private_desktop: bool,
    /// Restricting SIDs to add besides the account's own, `Everyone` and `RESTRICTED`: one per
    /// writable root (see `palisade-windows-plan`).
    pub capability_sids: Vec<Sid>,
    /// The fence probe to make before the command starts. Required with `network = false`
    /// (and then enforcing).
    pub fence_probe: Option<ProbeRequest>,
}

/// Which output stream a chunk belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

/// Why the runner could not do what it was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The runner belongs to another setup version than the CLI.
    VersionMismatch = 1,
    /// The request was well-formed but not acceptable (e.g. `network` does not match the account).
    BadRequest = 2,
    /// The program was not found.
    NotFound = 3,
    /// The program exists but cannot be executed.
    NotExecutable = 4,
    /// Minting the restricted token failed.
    Token = 5,
    /// Creating or configuring the job object failed.
    Job = 6,
    /// Creating the pseudo console failed.
    PseudoConsole = 7,
    /// Starting the process failed for another reason.
    Spawn = 8,
    /// The peer broke the protocol (order of messages).
    Protocol = 9,
    /// Anything else inside the runner.
    Internal = 10,
    /// The fence probe got out (or could not prove the fence): the command was not started.
    FenceOpen = 11,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::VersionMismatch,
        ErrorKind::BadRequest,
        ErrorKind::NotFound,
        ErrorKind::NotExecutable,
        ErrorKind::Token,
        ErrorKind::Job,
        ErrorKind::PseudoConsole,
        ErrorKind::Spawn,
        ErrorKind::Protocol,
        ErrorKind::Internal,
        ErrorKind::FenceOpen,
    ];

    pub fn from_byte(b: u8) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| *k as u8 == b)
    }

    /// The CLI's exit status for this error: 127 not found, 126 not executable, else 125.
    pub fn exit_status(self) -> i32 {
        match self {
            ErrorKind::NotFound => 127,
            ErrorKind::NotExecutable => 126,
            _ => 125,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::VersionMismatch => "version mismatch",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::NotFound => "not found",
            ErrorKind::NotExecutable => "not executable",
            ErrorKind::Token => "restricted token",
            ErrorKind::Job => "job object",
            ErrorKind::PseudoConsole => "pseudo console",
            ErrorKind::Spawn => "spawn",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Internal => "internal",
            ErrorKind::FenceOpen => "fence open",
        }
    }
}

/// One message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// CLI → runner, first and once.
    Spawn(SpawnRequest),
    /// CLI → runner: bytes for the command's stdin (1..=[`MAX_DATA`] bytes).
    StdinData(Vec<u8>),
    /// CLI → runner: end of stdin.
    StdinClose,
    /// CLI → runner: the terminal was resized.
    Resize(TtySize),
    /// CLI → runner: end the command (and, unless `keep_processes`, its job).
    Terminate,
    /// Runner → CLI: the command started with this process id.
    Started { pid: u32 },
    /// Runner → CLI: output of the command (1..=[`MAX_DATA`] bytes).
    Output { stream: Stream, data: Vec<u8> },
    /// Runner → CLI, last: the command's exit code.
    Exit { code: u32 },
    /// Runner → CLI, last: the runner failed. `message` is one line.
    Error { kind: ErrorKind, message: String },
    /// Runner → CLI, before `Started` or `Error`, once, when the request asked for a probe:
    /// how its two connects ended.
    /// `proxy`: the connect to the proxy's port, when the request named one.
    FenceReport { outside: ProbeOutcome, loopback: ProbeOutcome, proxy: Option<ProbeOutcome> },
}

/// Splits `data` into `Output` (or, with `stream = None`, `StdinData`) messages of at most
/// [`MAX_DATA`] bytes each. Empty input gives no message.
pub fn data_chunks(stream: Option<Stream>, data: &[u8]) -> Vec<Message> {
    data.chunks(MAX_DATA)
        .map(|c| match stream {
            Some(s) => Message::Output { stream: s, data: c.to_vec() },
            None => Message::StdinData(c.to_vec()),
        })
        .collect()
}

/// A rule a message breaks, shared by encoding and decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: &'static str,
    pub problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    TooLong {
        len: usize,
        max: usize,
    },
    TooMany {
        count: usize,
        max: usize,
    },
    Nul,
    Empty,
    LineBreak,
    EqualsInName,
    NotASid,
    ZeroSize,
    /// `spawn.fence_probe`: missing although the request asks for no network.
    ProbeMissing,
    /// `spawn.fence_probe`: report only although the request asks for no network.
    ProbeNotEnforced,
    /// `spawn.fence_probe`: port 0.
    ZeroPort,
    /// `spawn.fence_probe`: a proxy port in a request with network (only the fenced proxied
    /// account goes through the proxy).
    ProxyWithNetwork,
    /// `spawn.fence_probe`: the proxy port is the probe's loopback port.
    ProxyIsProbePort,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field;
        match &self.problem {
            Problem::TooLong { len, max } => write!(f, "{field} is {len} bytes long (at most {max})"),
            Problem::TooMany { count, max } => write!(f, "{field} has {count} entries (at most {max})"),
            Problem::Nul => write!(f, "{field} contains a NUL character"),
            Problem::Empty => write!(f, "{field} is empty"),
            Problem::LineBreak => write!(f, "{field} contains a line break"),
            Problem::EqualsInName => write!(f, "{field} contains `=`"),
            Problem::NotASid => write!(f, "{field} is not a SID"),
            Problem::ZeroSize => write!(f, "{field} has a zero width or height"),
            Problem::ProbeMissing => {
                write!(f, "{field} is missing: a command without network must be preceded by a fence probe")
            }
            Problem::ProbeNotEnforced => {
                write!(f, "{field} is report-only: a command without network needs an enforcing probe")
            }
            Problem::ZeroPort => write!(f, "{field} names port 0"),
            Problem::ProxyWithNetwork => write!(f, "{field} names a proxy port although the request asks for network"),
            Problem::ProxyIsProbePort => write!(f, "{field} names the same port for the proxy and the probe"),
        }
    }
}

/// Why a message cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode message: {0}")]
    Invalid(Violation),
    #[error("cannot encode message: payload of {length} bytes exceeds {max}")]
    TooLarge { length: usize, max: u32 },
}

/// Why bytes are not a valid frame. `Display` is one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("bad frame: wrong magic {0:02x?} (not a palisade-runner peer)")]
    BadMagic(Vec<u8>),
    #[error("bad frame: protocol version {found}, this side speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion { found: u16 },
    #[error("bad frame: unknown message type 0x{0:02x}")]
    UnknownType(u8),
    #[error("bad frame: reserved flags 0x{0:02x} set")]
    ReservedFlags(u8),
    #[error("bad frame: payload of {length} bytes exceeds {MAX_PAYLOAD}")]
    Oversized { length: u32 },
    #[error("bad frame: {what} is cut short ({needed} more bytes needed)")]
    Truncated { what: &'static str, needed: usize },
    #[error("bad frame: {count} bytes after the end of the {message} message")]
    TrailingBytes { message: &'static str, count: usize },
    #[error("bad frame: {0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("bad frame: {field} has invalid value {value}")]
    InvalidTag { field: &'static str, value: u8 },
    #[error("bad frame: a {0} message may not be sent by this peer")]
    WrongSender(&'static str),
    #[error("bad frame: {0}")]
    Invalid(Violation),
}

#[cfg(test)]
mod tests;
