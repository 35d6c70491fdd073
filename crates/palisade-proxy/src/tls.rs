//! Finding the server name (SNI) in a TLS ClientHello, from the first bytes a client sends into
//! a tunnel. Pure and bounded: the ClientHello may span several TLS records, but the handshake
//! message may be at most [`MAX_CLIENT_HELLO`] bytes and the records carrying it at most
//! [`MAX_RECORD_BYTES`] bytes in all.

/// The largest ClientHello handshake message accepted (header included).
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;
/// The most raw bytes (record headers included) read while collecting a ClientHello.
pub const MAX_RECORD_BYTES: usize = 32 * 1024;

const RECORD_HEADER: usize = 5;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST: u8 = 0;

/// What the bytes so far say.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// Not enough bytes yet to decide.
    NeedMore,
    /// A complete ClientHello; the host name it carries, if any (raw, not normalized).
    Complete(Option<String>),
    /// Not a valid ClientHello, or too large; the reason is one line.
    Invalid(String),
}

/// Whether `buf` starts like a TLS record of any content type (so the tunnel must be checked
/// as TLS: a first record that is not a ClientHello is refused, since it names no server).
pub fn looks_like_tls(buf: &[u8]) -> bool {
    // change_cipher_spec, alert, handshake, application_data, heartbeat
    matches!(buf.first(), Some(20..=24))
}

/// Whether `buf` starts like an SSLv2-format ClientHello (a 2-byte length with the top bit set,
/// then message type 1 and version major 3): servers still negotiate TLS from one, and it has
/// no room for a server name. `None`: too short to tell.
pub fn looks_like_sslv2_hello(buf: &[u8]) -> Option<bool> {
    match buf {
        [first, ..] if first & 0x80 == 0 => Some(false),
        [_, _, kind, major, ..] => Some(*kind == 1 && *major == 3),
        _ => None,
    }
}

/// Parses the ClientHello at the start of `buf`.
pub fn client_hello(buf: &[u8]) -> Hello {
    let mut message: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        if let Some(total) = handshake_len(&message) {
            if total > MAX_CLIENT_HELLO {
                return Hello::Invalid(format!("TLS ClientHello larger than {MAX_CLIENT_HELLO} bytes"));
            }
            if message.len() >= total {
                return match parse_hello_body(&message[4..total]) {
                    Ok(name) => Hello::Complete(name),
                    Err(e) => Hello::Invalid(format!("malformed TLS ClientHello: {e}")),
                };
            }
        }
        if pos >= MAX_RECORD_BYTES {
            return Hello::Invalid(format!("TLS ClientHello spread over more than {MAX_RECORD_BYTES} bytes"));
        }
        let Some(header) = buf.get(pos..pos + RECORD_HEADER) else {
            return Hello::NeedMore;
        };
        if header[0] != CONTENT_HANDSHAKE {
            return Hello::Invalid("TLS record before the ClientHello is complete is not a handshake".into());
        }
        if header[1] != 3 {
            return Hello::Invalid("not a TLS record (version major is not 3)".into());
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > 16384 {
            return Hello::Invalid(format!("TLS record length {len} out of range"));
        }
        let end = pos + RECORD_HEADER + len;
        message.extend_from_slice(&buf[pos + RECORD_HEADER..buf.len().min(end)]);
        if message.first().is_some_and(|&t| t != HANDSHAKE_CLIENT_HELLO) {
            return Hello::Invalid("first TLS handshake message is not a ClientHello".into());
        }
        if buf.len() < end {
            return match handshake_len(&message) {
                Some(total) if total > MAX_CLIENT_HELLO => {
                    Hello::Invalid(format!("TLS ClientHello larger than {MAX_CLIENT_HELLO} bytes"))
                }
                _ if end > MAX_RECORD_BYTES => {
                    Hello::Invalid(format!("TLS ClientHello spread over more than {MAX_RECORD_BYTES} bytes"))
                }
                _ => Hello::NeedMore,
            };
        }
        pos = end;
    }
}

fn handshake_len(message: &[u8]) -> Option<usize> {
    let h = message.get(..4)?;
    Some(4 + (usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3])))
}

/// A cursor that never reads past its slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.buf.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Result<&'a [u8], &'static str> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], &'static str> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn parse_hello_body(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader { buf: body };
    let _legacy_version = r.take(2)?;
    let _random = r.take(32)?;
    if r.vec8()?.len() > 32 {
        return Err("session id longer than 32 bytes");
    }
    let suites = r.vec16()?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err("bad cipher suite list");
    }
    if r.vec8()?.is_empty() {
        return Err("empty compression method list");
    }
    if r.buf.is_empty() {
        return Ok(None); // no extensions at all
    }
    let mut exts = Reader { buf: r.vec16()? };
    if !r.buf.is_empty() {
        return Err("bytes after the extensions");
    }
    let mut name = None;
    let mut seen_sni = false;
    while !exts.buf.is_empty() {
        let typ = exts.u16()?;
        let data = exts.vec16()?;
        if typ != EXT_SERVER_NAME {
            continue;
        }
        if seen_sni {
            return Err("two server_name extensions");
        }
        seen_sni = true;
        name = parse_server_name(data)?;
    }
    Ok(name)
}

fn parse_server_name(data: &[u8]) -> Result<Option<String>, &'static str> {
    let mut outer = Reader { buf: data };
    let mut list = Reader { buf: outer.vec16()? };
    if !outer.buf.is_empty() {
        return Err("bytes after the server name list");
    }
    let mut host = None;
    while !list.buf.is_empty() {
        let typ = list.u8()?;
        let name = list.vec16()?;
        if typ != NAME_TYPE_HOST {
            continue;
        }
        if host.is_some() {
            return Err("two host names in server_name");
        }
        if name.is_empty() || !name.is_ascii() {
            return Err("server name is empty or not ASCII");
        }
        host = Some(String::from_utf8_lossy(name).into_owned());
    }
    Ok(host)
}

/// Builds a minimal ClientHello carrying `sni` (for tests and benches), split into records of at
/// most `record_size` bytes of handshake data each.
pub fn build_client_hello(sni: Option<&str>, padding: usize, record_size: usize) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let name = name.as_bytes();
        let entry_len = 3 + name.len();
        exts.extend_from_slice(&EXT_SERVER_NAME.to_be_bytes());
        exts.extend_from_slice(&((entry_len + 2) as u16).to_be_bytes());
        exts.extend_from_slice(&(entry_len as u16).to_be_bytes());
        exts.push(NAME_TYPE_HOST);
        exts.extend_from_slice(&(name.len() as u16).to_be_bytes());
        exts.extend_from_slice(name);
    }
    if padding > 0 {
        exts.extend_from_slice(&21u16.to_be_bytes()); // the padding extension
        exts.extend_from_slice(&(padding as u16).to_be_bytes());
        exts.resize(exts.len() + padding, 0);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // no session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut message = vec![HANDSHAKE_CLIENT_HELLO];
    message.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend_from_slice(&body);
    let mut out = Vec::new();
    for chunk in message.chunks(record_size.clamp(1, 16384)) {
        out.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_server_name_in_one_or_many_records() {
        for size in [16384, 100, 7, 1] {
            let hello = build_client_hello(Some("Example.com"), 0, size);
            assert_eq!(client_hello(&hello), Hello::Complete(Some("Example.com".into())), "{size}");
            for cut in 0..hello.len() {
                assert_eq!(client_hello(&hello[..cut]), Hello::NeedMore, "size {size} cut {cut}");
            }
        }
        assert_eq!(client_hello(&build_client_hello(None, 0, 16384)), Hello::Complete(None));
    }

    #[test]
    fn size_bounds() {
        let big = build_client_hello(Some("a.example"), 15 * 1024, 16384);
        assert!(matches!(client_hello(&big), Hello::Complete(Some(_))));
        let too_big = build_client_hello(Some("a.example"), 17 * 1024, 16384);
        assert!(matches!(client_hello(&too_big), Hello::Invalid(e) if e.contains("larger")));
        // Declared too large: refused from the header alone, without waiting for the bytes.
        assert!(matches!(client_hello(&too_big[..9]), Hello::Invalid(_)));
        let fragmented = build_client_hello(Some("a.example"), 8 * 1024, 1);
        assert!(matches!(client_hello(&fragmented), Hello::Invalid(e) if e.contains("spread")));
    }

    #[test]
    fn rejects_what_is_not_a_client_hello() {
        assert!(matches!(client_hello(&[22, 2, 0, 0, 5]), Hello::Invalid(_)));
        assert!(matches!(client_hello(&[22, 3, 1, 0, 0]), Hello::Invalid(_)));
        assert!(matches!(client_hello(&[22, 3, 1, 0, 4, 2, 0, 0, 0]), Hello::Invalid(_)));
        let mut hello = build_client_hello(Some("x.example"), 0, 16384);
        hello[5 + 4 + 34] = 40; // session id length beyond 32
        assert!(matches!(client_hello(&hello), Hello::Invalid(_)));
        assert!(!looks_like_tls(b"GET / HTTP/1.1"));
        assert!(looks_like_tls(&hello));
    }
}
