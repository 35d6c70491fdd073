//! Frames from a byte stream ([`FrameReader`]), the order of a conversation ([`Conversation`]), and
//! the fuzzing entry point that checks the decoders against each other ([`fuzz_one`]).

use super::codec::{decode_payload, parse_header};
use super::*;

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
