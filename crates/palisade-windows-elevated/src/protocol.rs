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
//! Version 2 added the spawn request's `fence_probe` and the `FenceReport` message. A runner and
//! a CLI of different versions refuse each other: the runner's command line names the version
//! (exit 3), and every frame carries it.

use std::fmt;

use crate::sid::Sid;

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"PLSR";
/// The only protocol version this code speaks. A peer with another version is refused.
pub const PROTOCOL_VERSION: u16 = 2;
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
    FenceReport { outside: ProbeOutcome, loopback: ProbeOutcome },
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Spawn(_) => MessageType::Spawn,
            Message::StdinData(_) => MessageType::StdinData,
            Message::StdinClose => MessageType::StdinClose,
            Message::Resize(_) => MessageType::Resize,
            Message::Terminate => MessageType::Terminate,
            Message::Started { .. } => MessageType::Started,
            Message::Output { .. } => MessageType::Output,
            Message::Exit { .. } => MessageType::Exit,
            Message::Error { .. } => MessageType::Error,
            Message::FenceReport { .. } => MessageType::FenceReport,
        }
    }

    pub fn sender(&self) -> Sender {
        self.message_type().sender()
    }

    /// Checks every limit and rule that decoding checks, so that whatever encodes also decodes.
    pub fn validate(&self) -> Result<(), Violation> {
        match self {
            Message::Spawn(s) => validate_spawn(s),
            Message::StdinData(d) | Message::Output { data: d, .. } => check_data(d),
            Message::Resize(size) => check_size("resize", *size),
            Message::Error { message, .. } => {
                check_string("error.message", message, MAX_ERROR_MESSAGE)?;
                if message.contains(['\n', '\r']) {
                    return Err(Violation { field: "error.message", problem: Problem::LineBreak });
                }
                Ok(())
            }
            Message::StdinClose
            | Message::Terminate
            | Message::Started { .. }
            | Message::Exit { .. }
            | Message::FenceReport { .. } => Ok(()),
        }
    }

    /// The complete frame (header and payload).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the complete frame to `out`. On error nothing is appended.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.validate().map_err(EncodeError::Invalid)?;
        let mut p = Vec::new();
        match self {
            Message::Spawn(s) => {
                put_u32(&mut p, s.version);
                put_str(&mut p, &s.program);
                put_u32(&mut p, s.args.len() as u32);
                for a in &s.args {
                    put_str(&mut p, a);
                }
                put_u32(&mut p, s.env.len() as u32);
                for (k, v) in &s.env {
                    put_str(&mut p, k);
                    put_str(&mut p, v);
                }
                put_str(&mut p, &s.cwd);
                match s.tty {
                    None => p.push(0),
                    Some(t) => {
                        p.push(1);
                        p.extend_from_slice(&t.cols.to_le_bytes());
                        p.extend_from_slice(&t.rows.to_le_bytes());
                    }
                }
                p.push(s.network as u8);
                p.push(s.keep_processes as u8);
                p.push(s.private_desktop as u8);
                put_u32(&mut p, s.capability_sids.len() as u32);
                for sid in &s.capability_sids {
                    put_str(&mut p, sid.as_str());
                }
                match s.fence_probe {
                    None => p.push(0),
                    Some(f) => {
                        p.push(1);
                        p.extend_from_slice(&f.loopback_port.to_le_bytes());
                        p.push(f.enforce as u8);
                    }
                }
            }
            Message::StdinData(d) => put_bytes(&mut p, d),
            Message::StdinClose | Message::Terminate => {}
            Message::Resize(t) => {
                p.extend_from_slice(&t.cols.to_le_bytes());
                p.extend_from_slice(&t.rows.to_le_bytes());
            }
            Message::Started { pid } => put_u32(&mut p, *pid),
            Message::Output { stream, data } => {
                p.push(*stream as u8);
                put_bytes(&mut p, data);
            }
            Message::Exit { code } => put_u32(&mut p, *code),
            Message::Error { kind, message } => {
                p.push(*kind as u8);
                put_str(&mut p, message);
            }
            Message::FenceReport { outside, loopback } => {
                put_outcome(&mut p, *outside);
                put_outcome(&mut p, *loopback);
            }
        }
        if p.len() > MAX_PAYLOAD as usize {
            return Err(EncodeError::TooLarge { length: p.len(), max: MAX_PAYLOAD });
        }
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        out.push(self.message_type() as u8);
        out.push(0);
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&p);
        Ok(())
    }
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
    TooLong { len: usize, max: usize },
    TooMany { count: usize, max: usize },
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
            Problem::ProbeMissing => write!(f, "{field} is missing: a command without network must be preceded by a fence probe"),
            Problem::ProbeNotEnforced => write!(f, "{field} is report-only: a command without network needs an enforcing probe"),
            Problem::ZeroPort => write!(f, "{field} names port 0"),
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

/// Decodes exactly one complete frame; anything before or after it is an error.
pub fn decode_frame(bytes: &[u8]) -> Result<Message, DecodeError> {
    let header = parse_header(bytes)?;
    let Some(header) = header else {
        return Err(DecodeError::Truncated { what: "header", needed: HEADER_LEN - bytes.len() });
    };
    let total = HEADER_LEN + header.length as usize;
    if bytes.len() < total {
        return Err(DecodeError::Truncated { what: "payload", needed: total - bytes.len() });
    }
    if bytes.len() > total {
        return Err(DecodeError::TrailingBytes { message: header.kind.name(), count: bytes.len() - total });
    }
    decode_payload(header.kind, &bytes[HEADER_LEN..])
}

struct Header {
    kind: MessageType,
    length: u32,
}

/// Checks as much of the header as `bytes` holds. `Ok(None)`: fine so far, incomplete.
fn parse_header(bytes: &[u8]) -> Result<Option<Header>, DecodeError> {
    let m = bytes.len().min(4);
    if bytes[..m] != MAGIC[..m] {
        return Err(DecodeError::BadMagic(bytes[..m].to_vec()));
    }
    if bytes.len() >= 6 {
        let v = u16::from_le_bytes([bytes[4], bytes[5]]);
        if v != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion { found: v });
        }
    }
    let kind = match bytes.get(6) {
        None => None,
        Some(b) => Some(MessageType::from_byte(*b).ok_or(DecodeError::UnknownType(*b))?),
    };
    if let Some(&f) = bytes.get(7) {
        if f != 0 {
            return Err(DecodeError::ReservedFlags(f));
        }
    }
    if bytes.len() < HEADER_LEN {
        return Ok(None);
    }
    let length = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if length > MAX_PAYLOAD {
        return Err(DecodeError::Oversized { length });
    }
    Ok(Some(Header { kind: kind.expect("checked above"), length }))
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let left = self.b.len() - self.pos;
        if n > left {
            return Err(DecodeError::Truncated { what, needed: n - left });
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError::InvalidTag { field: what, value: v }),
        }
    }
    /// A length or count, refused before anything is allocated when above `max`.
    fn len(&mut self, what: &'static str, max: usize, is_count: bool) -> Result<usize, DecodeError> {
        let n = self.u32(what)? as usize;
        if n > max {
            let problem = if is_count { Problem::TooMany { count: n, max } } else { Problem::TooLong { len: n, max } };
            return Err(DecodeError::Invalid(Violation { field: what, problem }));
        }
        Ok(n)
    }
    fn string(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let n = self.len(what, max, false)?;
        let b = self.take(n, what)?;
        let s = std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8(what))?;
        if s.contains('\0') {
            return Err(DecodeError::Invalid(Violation { field: what, problem: Problem::Nul }));
        }
        Ok(s.to_string())
    }
    fn bytes(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let n = self.len(what, MAX_DATA, false)?;
        Ok(self.take(n, what)?.to_vec())
    }
    fn size(&mut self, what: &'static str) -> Result<TtySize, DecodeError> {
        Ok(TtySize { cols: self.u16(what)?, rows: self.u16(what)? })
    }
    fn outcome(&mut self, what: &'static str) -> Result<ProbeOutcome, DecodeError> {
        Ok(match self.u8(what)? {
            1 => ProbeOutcome::Blocked,
            2 => ProbeOutcome::Open,
            3 => ProbeOutcome::NoRoute,
            4 => ProbeOutcome::Failed(self.u32(what)?),
            v => return Err(DecodeError::InvalidTag { field: what, value: v }),
        })
    }
}

fn decode_payload(kind: MessageType, payload: &[u8]) -> Result<Message, DecodeError> {
    let mut c = Cursor { b: payload, pos: 0 };
    let msg = match kind {
        MessageType::Spawn => {
            let version = c.u32("spawn.version")?;
            let program = c.string("spawn.program", MAX_STRING)?;
            let n = c.len("spawn.args", MAX_ARGS, true)?;
            let mut args = Vec::new();
            for _ in 0..n {
                args.push(c.string("spawn.args", MAX_STRING)?);
            }
            let n = c.len("spawn.env", MAX_ENV, true)?;
            let mut env = Vec::new();
            for _ in 0..n {
                let k = c.string("spawn.env name", MAX_STRING)?;
                let v = c.string("spawn.env value", MAX_STRING)?;
                env.push((k, v));
            }
            let cwd = c.string("spawn.cwd", MAX_STRING)?;
            let tty = match c.u8("spawn.tty")? {
                0 => None,
                1 => Some(c.size("spawn.tty")?),
                v => return Err(DecodeError::InvalidTag { field: "spawn.tty", value: v }),
            };
            let network = c.bool("spawn.network")?;
            let keep_processes = c.bool("spawn.keep_processes")?;
            let private_desktop = c.bool("spawn.private_desktop")?;
            let n = c.len("spawn.capability_sids", MAX_SIDS, true)?;
            let mut capability_sids = Vec::new();
            for _ in 0..n {
                let s = c.string("spawn.capability_sids", 256)?;
                let sid = Sid::parse(&s).map_err(|_| {
                    DecodeError::Invalid(Violation { field: "spawn.capability_sids", problem: Problem::NotASid })
                })?;
                capability_sids.push(sid);
            }
            let fence_probe = match c.u8("spawn.fence_probe")? {
                0 => None,
                1 => Some(ProbeRequest { loopback_port: c.u16("spawn.fence_probe")?, enforce: c.bool("spawn.fence_probe")? }),
                v => return Err(DecodeError::InvalidTag { field: "spawn.fence_probe", value: v }),
            };
            Message::Spawn(SpawnRequest {
                version,
                program,
                args,
                env,
                cwd,
                tty,
                network,
                keep_processes,
                private_desktop,
                capability_sids,
                fence_probe,
            })
        }
        MessageType::StdinData => Message::StdinData(c.bytes("stdin-data")?),
        MessageType::StdinClose => Message::StdinClose,
        MessageType::Resize => Message::Resize(c.size("resize")?),
        MessageType::Terminate => Message::Terminate,
        MessageType::Started => Message::Started { pid: c.u32("started.pid")? },
        MessageType::Output => {
            let stream = match c.u8("output.stream")? {
                1 => Stream::Stdout,
                2 => Stream::Stderr,
                v => return Err(DecodeError::InvalidTag { field: "output.stream", value: v }),
            };
            Message::Output { stream, data: c.bytes("output.data")? }
        }
        MessageType::Exit => Message::Exit { code: c.u32("exit.code")? },
        MessageType::Error => {
            let k = c.u8("error.kind")?;
            let kind = ErrorKind::from_byte(k).ok_or(DecodeError::InvalidTag { field: "error.kind", value: k })?;
            Message::Error { kind, message: c.string("error.message", MAX_ERROR_MESSAGE)? }
        }
        MessageType::FenceReport => {
            Message::FenceReport { outside: c.outcome("fence-report.outside")?, loopback: c.outcome("fence-report.loopback")? }
        }
    };
    if c.pos != payload.len() {
        return Err(DecodeError::TrailingBytes { message: kind.name(), count: payload.len() - c.pos });
    }
    msg.validate().map_err(DecodeError::Invalid)?;
    Ok(msg)
}

fn put_u32(p: &mut Vec<u8>, v: u32) {
    p.extend_from_slice(&v.to_le_bytes());
}
fn put_str(p: &mut Vec<u8>, s: &str) {
    put_bytes(p, s.as_bytes());
}
fn put_bytes(p: &mut Vec<u8>, b: &[u8]) {
    put_u32(p, b.len() as u32);
    p.extend_from_slice(b);
}
fn put_outcome(p: &mut Vec<u8>, o: ProbeOutcome) {
    match o {
        ProbeOutcome::Blocked => p.push(1),
        ProbeOutcome::Open => p.push(2),
        ProbeOutcome::NoRoute => p.push(3),
        ProbeOutcome::Failed(code) => {
            p.push(4);
            put_u32(p, code);
        }
    }
}

fn check_string(field: &'static str, s: &str, max: usize) -> Result<(), Violation> {
    if s.len() > max {
        return Err(Violation { field, problem: Problem::TooLong { len: s.len(), max } });
    }
    if s.contains('\0') {
        return Err(Violation { field, problem: Problem::Nul });
    }
    Ok(())
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), Violation> {
    if count > max {
        return Err(Violation { field, problem: Problem::TooMany { count, max } });
    }
    Ok(())
}

fn check_data(d: &[u8]) -> Result<(), Violation> {
    if d.is_empty() {
        return Err(Violation { field: "data", problem: Problem::Empty });
    }
    if d.len() > MAX_DATA {
        return Err(Violation { field: "data", problem: Problem::TooLong { len: d.len(), max: MAX_DATA } });
    }
    Ok(())
}

fn check_size(field: &'static str, t: TtySize) -> Result<(), Violation> {
    if t.cols == 0 || t.rows == 0 {
        return Err(Violation { field, problem: Problem::ZeroSize });
    }
    Ok(())
}

fn validate_spawn(s: &SpawnRequest) -> Result<(), Violation> {
    check_string("spawn.program", &s.program, MAX_STRING)?;
    if s.program.is_empty() {
        return Err(Violation { field: "spawn.program", problem: Problem::Empty });
    }
    check_count("spawn.args", s.args.len(), MAX_ARGS)?;
    for a in &s.args {
        check_string("spawn.args", a, MAX_STRING)?;
    }
    check_count("spawn.env", s.env.len(), MAX_ENV)?;
    for (k, v) in &s.env {
        check_string("spawn.env name", k, MAX_STRING)?;
        check_string("spawn.env value", v, MAX_STRING)?;
        if k.is_empty() {
            return Err(Violation { field: "spawn.env name", problem: Problem::Empty });
        }
        if k.contains('=') {
            return Err(Violation { field: "spawn.env name", problem: Problem::EqualsInName });
        }
    }
    check_string("spawn.cwd", &s.cwd, MAX_STRING)?;
    if s.cwd.is_empty() {
        return Err(Violation { field: "spawn.cwd", problem: Problem::Empty });
    }
    if let Some(t) = s.tty {
        check_size("spawn.tty", t)?;
    }
    check_count("spawn.capability_sids", s.capability_sids.len(), MAX_SIDS)?;
    let field = "spawn.fence_probe";
    match s.fence_probe {
        None if !s.network => return Err(Violation { field, problem: Problem::ProbeMissing }),
        Some(p) if !s.network && !p.enforce => return Err(Violation { field, problem: Problem::ProbeNotEnforced }),
        Some(p) if p.loopback_port == 0 => return Err(Violation { field, problem: Problem::ZeroPort }),
        _ => {}
    }
    Ok(())
}

/// Reassembles frames from bytes that arrive in arbitrary chunks (a pipe read returns whatever
/// it has).
///
/// The header is checked as soon as its bytes arrive, so a peer announcing a 4 GiB payload is
/// refused before anything is buffered for it. A caller that reads into a fixed buffer and
/// drains [`FrameReader::next_message`] after each [`FrameReader::push`] never holds more than
/// one frame plus one read. After an error the reader keeps returning that error: a byte stream
/// that broke framing cannot be resynchronized safely.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    from: Option<Sender>,
    failed: Option<DecodeError>,
}

impl FrameReader {
    /// A reader that accepts messages from either side.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// A reader that refuses messages `from` would not send (the CLI reads with
    /// `FrameReader::from(Sender::Runner)` and vice versa).
    pub fn from(from: Sender) -> FrameReader {
        FrameReader { from: Some(from), ..FrameReader::default() }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.next_inner();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Message>, DecodeError> {
        let avail = &self.buf[self.start..];
        if avail.is_empty() {
            return Ok(None);
        }
        let Some(h) = parse_header(avail)? else { return Ok(None) };
        if let Some(from) = self.from {
            if h.kind.sender() != from {
                return Err(DecodeError::WrongSender(h.kind.name()));
            }
        }
        let total = HEADER_LEN + h.length as usize;
        if avail.len() < total {
            return Ok(None);
        }
        let msg = decode_payload(h.kind, &avail[HEADER_LEN..total])?;
        self.start += total;
        Ok(Some(msg))
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Call at end of stream: an error if a frame was left incomplete (or an error occurred).
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.buffered() {
            0 => Ok(()),
            n if n < HEADER_LEN => Err(DecodeError::Truncated { what: "header", needed: HEADER_LEN - n }),
            n => {
                let avail = &self.buf[self.start..];
                let len = u32::from_le_bytes([avail[8], avail[9], avail[10], avail[11]]) as usize;
                Err(DecodeError::Truncated { what: "payload", needed: HEADER_LEN + len - n })
            }
        }
    }
}

/// A breach of the order of messages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("protocol violation: {message} {why}")]
pub struct OrderError {
    pub message: &'static str,
    pub why: &'static str,
}

/// Checks the order of the messages one side receives (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// The side receiving the messages.
    receiver: Sender,
    state: State,
    stdin_closed: bool,
    fence_reported: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing yet (runner: waiting for `Spawn`; CLI: waiting for `Started`).
    Opening,
    Running,
    Ended,
}

impl Conversation {
    /// The runner's view: it receives what the CLI sends.
    pub fn runner() -> Conversation {
        Conversation { receiver: Sender::Runner, state: State::Opening, stdin_closed: false, fence_reported: false }
    }

    /// The CLI's view: it receives what the runner sends.
    pub fn cli() -> Conversation {
        Conversation { receiver: Sender::Cli, state: State::Opening, stdin_closed: false, fence_reported: false }
    }

    /// Whether the runner has sent its last message (`Exit` or `Error`).
    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Whether the runner has sent a `FenceReport` (the CLI refuses a `Started` without one
    /// when it asked for a probe).
    pub fn fence_reported(&self) -> bool {
        self.fence_reported
    }

    /// Accepts `m` as the next received message or says why it is out of order.
    pub fn receive(&mut self, m: &Message) -> Result<(), OrderError> {
        let name = m.message_type().name();
        let err = |why| Err(OrderError { message: name, why });
        if m.sender() == self.receiver {
            return err("comes from the wrong side");
        }
        if self.state == State::Ended {
            return err("arrived after the conversation ended");
        }
        match (self.receiver, m) {
            (Sender::Runner, Message::Spawn(_)) if self.state == State::Opening => self.state = State::Running,
            (Sender::Runner, Message::Spawn(_)) => return err("was sent twice"),
            (Sender::Runner, _) if self.state == State::Opening => return err("arrived before spawn"),
            (Sender::Runner, Message::StdinData(_)) if self.stdin_closed => return err("arrived after stdin-close"),
            (Sender::Runner, Message::StdinClose) if self.stdin_closed => return err("was sent twice"),
            (Sender::Runner, Message::StdinClose) => self.stdin_closed = true,
            (Sender::Runner, _) => {}
            (Sender::Cli, Message::Started { .. }) if self.state == State::Opening => self.state = State::Running,
            (Sender::Cli, Message::Started { .. }) => return err("was sent twice"),
            (Sender::Cli, Message::Error { .. }) => self.state = State::Ended,
            (Sender::Cli, Message::FenceReport { .. }) if self.fence_reported => return err("was sent twice"),
            (Sender::Cli, Message::FenceReport { .. }) if self.state == State::Opening => self.fence_reported = true,
            (Sender::Cli, Message::FenceReport { .. }) => return err("arrived after started"),
            (Sender::Cli, _) if self.state == State::Opening => return err("arrived before started"),
            (Sender::Cli, Message::Exit { .. }) => self.state = State::Ended,
            (Sender::Cli, _) => {}
        }
        Ok(())
    }
}

/// One fuzzing case: feeds `data` to every decoding entry point and checks their invariants.
/// It must never panic; a real fuzzer calls it with arbitrary inputs (see `fuzz/README.md`).
///
/// Invariants: `decode_frame` and a [`FrameReader`] fed the same bytes in uneven chunks agree;
/// whatever decodes re-encodes to exactly the same bytes (one encoding per message).
pub fn fuzz_one(data: &[u8]) {
    let whole = decode_frame(data);
    if let Ok(m) = &whole {
        assert_eq!(m.encode().expect("a decoded message re-encodes").as_slice(), data);
    }
    // The same bytes through the incremental reader, in chunks whose sizes come from the data.
    let mut r = FrameReader::new();
    let mut got = Vec::new();
    let mut err = None;
    let mut i = 0;
    let mut step = 1 + data.first().map_or(0, |b| (*b % 7) as usize);
    while i < data.len() {
        let end = (i + step).min(data.len());
        r.push(&data[i..end]);
        i = end;
        step = 1 + (step * 5 + 3) % 13;
        loop {
            match r.next_message() {
                Ok(Some(m)) => got.push(m),
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if err.is_some() {
            break;
        }
    }
    if let Ok(m) = whole {
        assert_eq!(got, vec![m]);
        assert!(err.is_none() && r.finish().is_ok());
    }
    for m in &got {
        let _ = m.encode().expect("a decoded message re-encodes");
        let mut c = Conversation::runner();
        let _ = c.receive(m);
    }
    let _ = r.finish();
    if let Some(e) = err {
        assert!(!e.to_string().contains('\n'));
    }
}

#[cfg(test)]
mod tests;
