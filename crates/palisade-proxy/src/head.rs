//! HTTP/1.x request heads as a proxy sees them: parsing (with `httparse`), the request target
//! forms a proxy accepts, body framing, and the head forwarded to an origin. Pure and bounded.

use palisade_policy::net_rules::RequestHost;

/// At most this many header lines; more is treated as an oversize head.
const MAX_HEADERS: usize = 100;

#[derive(Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub minor_version: u8,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes of the head, up to and including the blank line.
    pub len: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    Malformed(String),
}

/// Parses a complete request head from the start of `buf`; `Ok(None)` means more bytes are needed
/// (and the head is still within `max` bytes).
pub fn parse_head(buf: &[u8], max: usize) -> Result<Option<RequestHead>, HeadError> {
    // Parse only once the blank line is there, so that a head arriving byte by byte costs one
    // parse rather than one per byte.
    let window = &buf[..buf.len().min(max)];
    if !window.windows(4).any(|w| w == b"\r\n\r\n") && !window.windows(2).any(|w| w == b"\n\n") {
        return if buf.len() >= max { Err(HeadError::TooLarge) } else { Ok(None) };
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => Ok(Some(RequestHead {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            minor_version: req.version.unwrap_or(1),
            headers: req.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect(),
            len,
        })),
        Ok(httparse::Status::Partial) => {
            if buf.len() >= max {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            }
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

impl RequestHead {
    /// All values of a header (names compare case-insensitively).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// `host[:port]` or `[v6][:port]`, as in a CONNECT target or a Host header.
pub fn parse_authority(text: &str) -> Result<(String, Option<u16>), String> {
    if text.is_empty() {
        return Err("empty host".into());
    }
    if text.contains('@') {
        return Err(format!("{text:?} carries user information"));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(|| format!("{text:?} has '[' without ']'"))?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| format!("{text:?}: junk after ']'"))?),
        };
        (format!("[{inside}]"), port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
            Some(_) => return Err(format!("{text:?}: an IPv6 address must be in brackets")),
            None => (text.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("{text:?}: bad port")),
        },
    };
    Ok((host, port))
}

/// A parsed `http://authority/path` request target.
#[derive(Debug, PartialEq, Eq)]
pub struct AbsoluteTarget {
    pub host: String,
    pub port: u16,
    pub path: String,
}

pub fn parse_absolute_http(target: &str) -> Result<AbsoluteTarget, String> {
    let scheme_end = target.find("://").ok_or_else(|| {
        format!("request target {target:?} is not an absolute http:// URL (is this client configured to use a proxy?)")
    })?;
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("scheme {scheme:?} cannot be forwarded; https goes through CONNECT"));
    }
    let rest = &target[scheme_end + 3..];
    if rest.contains('#') {
        return Err("request target contains a fragment".into());
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let (host, port) = parse_authority(authority)?;
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    Ok(AbsoluteTarget { host, port: port.unwrap_or(80), path })
}

/// Whether a Host header value names the same host as the request target. The port is not
/// compared: the connection's port is fixed by the proxy, and servers choose a virtual host by name.
pub fn host_header_matches(value: &[u8], host: &RequestHost) -> bool {
    let Ok(text) = std::str::from_utf8(value) else { return false };
    let Ok((h, _port)) = parse_authority(text.trim()) else { return false };
    RequestHost::parse(&h).is_ok_and(|parsed| parsed == *host)
}

/// How the request body is delimited.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Framing {
    Length(u64),
    Chunked,
}

pub fn body_framing(head: &RequestHead) -> Result<Framing, String> {
    let te: Vec<&[u8]> = head.values("transfer-encoding").collect();
    let cl: Vec<&[u8]> = head.values("content-length").collect();
    if !te.is_empty() && !cl.is_empty() {
        return Err("both Transfer-Encoding and Content-Length".into());
    }
    if !te.is_empty() {
        return match te.as_slice() {
            [v] if v.trim_ascii().eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            _ => Err("unsupported Transfer-Encoding (only a single \"chunked\")".into()),
        };
    }
    let mut length = None;
    for v in cl {
        let v = v.trim_ascii();
        let n = std::str::from_utf8(v)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or("bad Content-Length")?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting Content-Length headers".into());
        }
        length = Some(n);
    }
    Ok(Framing::Length(length.unwrap_or(0)))
}

/// Hop-by-hop headers the proxy consumes instead of forwarding.
const HOP_BY_HOP: [&str; 6] = ["connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "upgrade"];

/// The head sent to the origin: origin-form target, the client's end-to-end headers, one request
/// per connection (`Connection: close`), and a Host header when an HTTP/1.0 client sent none.
pub fn forwarded_head(head: &RequestHead, target: &AbsoluteTarget) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len + 64);
    out.extend_from_slice(format!("{} {} HTTP/1.{}\r\n", head.method, target.path, head.minor_version).as_bytes());
    let mut has_host = false;
    for (name, value) in &head.headers {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        let host = match target.port {
            80 => target.host.clone(),
            port => format!("{}:{port}", target.host),
        };
        out.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// Whether the first bytes of a tunnel look like an HTTP request line (`TOKEN SP`): `Some(true)`
/// yes, `Some(false)` no, `None` undecided yet. Empty lines before it are skipped, as servers
/// do (RFC 9112 section 2.2), and the method may be lower-case (methods are case-sensitive
/// tokens: Go's net/http serves `get`); digits and dots end the check, so that an SSH banner
/// (`SSH-2.0-...`) stays opaque.
pub fn looks_like_http(buf: &[u8]) -> Option<bool> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = &buf[start..];
    for (i, &b) in line.iter().enumerate().take(24) {
        if b == b' ' {
            return Some(i > 0);
        }
        if !(b.is_ascii_alphabetic() || b == b'-' || b == b'_') {
            return Some(false);
        }
    }
    if line.len() >= 24 {
        Some(false)
    } else {
        None
    }
}

/// Whether the target of a request inside a tunnel to `host` names no other host: origin form
/// (`/path`), `*`, or an absolute URL whose host is `host` (servers route by an absolute URL's
/// host over the Host header, RFC 9112 section 3.2.2). An authority-form target is refused.
pub fn target_stays_on(target: &str, host: &RequestHost) -> bool {
    if target.starts_with('/') || target == "*" {
        return true;
    }
    let Some((_scheme, rest)) = target.split_once("://") else { return false };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match parse_authority(authority) {
        Ok((h, _)) => RequestHost::parse(&h).is_ok_and(|parsed| parsed == *host),
        Err(_) => false,
    }
}

/// A minimal HTTP response with a one-line plain-text body.
pub fn error_response(status: u16, reason: &str, line: &str) -> Vec<u8> {
    let body = format!("{line}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
