//! How a [`Message`] becomes a frame and a frame a message, and the limits both directions check
//! (see the module documentation of [`crate::protocol`] for the format).

use super::*;

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
                        match f.proxy_port {
                            None => p.push(0),
                            Some(port) => {
                                p.push(1);
                                p.extend_from_slice(&port.to_le_bytes());
                            }
                        }
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
            Message::FenceReport { outside, loopback, proxy } => {
                put_outcome(&mut p, *outside);
                put_outcome(&mut p, *loopback);
                match proxy {
                    None => p.push(0),
                    Some(o) => {
                        p.push(1);
                        put_outcome(&mut p, *o);
                    }
                }
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

pub(super) struct Header {
    pub(super) kind: MessageType,
    pub(super) length: u32,
}

/// Checks as much of the header as `bytes` holds. `Ok(None)`: fine so far, incomplete.
pub(super) fn parse_header(bytes: &[u8]) -> Result<Option<Header>, DecodeError> {
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

pub(super) fn decode_payload(kind: MessageType, payload: &[u8]) -> Result<Message, DecodeError> {
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
                1 => Some(ProbeRequest {
                    loopback_port: c.u16("spawn.fence_probe")?,
                    enforce: c.bool("spawn.fence_probe")?,
                    proxy_port: match c.u8("spawn.fence_probe.proxy_port")? {
                        0 => None,
                        1 => Some(c.u16("spawn.fence_probe.proxy_port")?),
                        v => return Err(DecodeError::InvalidTag { field: "spawn.fence_probe.proxy_port", value: v }),
                    },
                }),
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
        MessageType::FenceReport => Message::FenceReport {
            outside: c.outcome("fence-report.outside")?,
            loopback: c.outcome("fence-report.loopback")?,
            proxy: match c.u8("fence-report.proxy")? {
                0 => None,
                1 => Some(c.outcome("fence-report.proxy")?),
                v => return Err(DecodeError::InvalidTag { field: "fence-report.proxy", value: v }),
            },
        },
    };
    if c.pos != payload.len() {
        return Err(DecodeError::TrailingBytes { message: kind.name(), count: payload.len() - c.pos });
    }
    msg.validate().map_err(DecodeError::Invalid)?;
    Ok(msg)
}

pub(super) fn put_u32(p: &mut Vec<u8>, v: u32) {
    p.extend_from_slice(&v.to_le_bytes());
}
pub(super) fn put_str(p: &mut Vec<u8>, s: &str) {
    put_bytes(p, s.as_bytes());
}
pub(super) fn put_bytes(p: &mut Vec<u8>, b: &[u8]) {
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
        Some(p) if p.loopback_port == 0 || p.proxy_port == Some(0) => {
            return Err(Violation { field, problem: Problem::ZeroPort })
        }
        Some(p) if s.network && p.proxy_port.is_some() => {
            return Err(Violation { field, problem: Problem::ProxyWithNetwork })
        }
        Some(p) if p.proxy_port == Some(p.loopback_port) => {
            return Err(Violation { field, problem: Problem::ProxyIsProbePort })
        }
        _ => {}
    }
    Ok(())
}
