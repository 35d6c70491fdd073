//! SOCKS5 (RFC 1928) greeting and request parsing, and replies. Only the "no authentication"
//! method (or, when the proxy asks for credentials, username/password: `auth.rs`) and the
//! CONNECT command are served. Pure and bounded (a request is at most 262 bytes).

use std::net::{Ipv4Addr, Ipv6Addr};

pub const VERSION: u8 = 5;
pub const METHOD_NONE: u8 = 0;
pub const METHOD_UNACCEPTABLE: u8 = 0xff;

/// Reply codes.
pub const REPLY_OK: u8 = 0;
pub const REPLY_GENERAL_FAILURE: u8 = 1;
pub const REPLY_NOT_ALLOWED: u8 = 2;
pub const REPLY_HOST_UNREACHABLE: u8 = 4;
pub const REPLY_CONNECTION_REFUSED: u8 = 5;
pub const REPLY_TTL_EXPIRED: u8 = 6;
pub const REPLY_COMMAND_NOT_SUPPORTED: u8 = 7;
pub const REPLY_ADDRESS_NOT_SUPPORTED: u8 = 8;

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    NeedMore,
    /// The value and the number of bytes it took.
    Done(T, usize),
    /// A protocol error: the reply code to send (if any) and a one-line reason.
    Invalid(Option<u8>, String),
}

/// The greeting: whether the client offers "no authentication".
pub fn parse_greeting(buf: &[u8]) -> Parsed<bool> {
    match parse_greeting_methods(buf) {
        Parsed::Done(methods, end) => Parsed::Done(methods.contains(&METHOD_NONE), end),
        Parsed::NeedMore => Parsed::NeedMore,
        Parsed::Invalid(code, e) => Parsed::Invalid(code, e),
    }
}

/// The greeting: the methods the client offers.
pub fn parse_greeting_methods(buf: &[u8]) -> Parsed<Vec<u8>> {
    let [version, count, ..] = *buf else { return Parsed::NeedMore };
    if version != VERSION {
        return Parsed::Invalid(None, format!("SOCKS version {version} (only 5 is served)"));
    }
    let end = 2 + usize::from(count);
    match buf.get(2..end) {
        None => Parsed::NeedMore,
        Some(methods) => Parsed::Done(methods.to_vec(), end),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub command: u8,
    /// The host as text a client would write: a name, a dotted IPv4 address, or `[v6]`.
    pub host: String,
    pub port: u16,
}

pub fn command_name(command: u8) -> &'static str {
    match command {
        1 => "CONNECT",
        2 => "BIND",
        3 => "UDP ASSOCIATE",
        _ => "unknown",
    }
}

pub fn parse_request(buf: &[u8]) -> Parsed<Request> {
    let [version, command, reserved, atyp, ..] = *buf else { return Parsed::NeedMore };
    if version != VERSION {
        return Parsed::Invalid(Some(REPLY_GENERAL_FAILURE), format!("SOCKS request version {version}"));
    }
    if reserved != 0 {
        return Parsed::Invalid(Some(REPLY_GENERAL_FAILURE), "SOCKS reserved byte is not zero".into());
    }
    let (host, addr_end) = match atyp {
        1 => match buf.get(4..8) {
            Some(b) => (Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(), 8),
            None => return Parsed::NeedMore,
        },
        4 => match buf.get(4..20) {
            Some(b) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                (format!("[{}]", Ipv6Addr::from(a)), 20)
            }
            None => return Parsed::NeedMore,
        },
        3 => {
            let Some(&len) = buf.get(4) else { return Parsed::NeedMore };
            let end = 5 + usize::from(len);
            let Some(name) = buf.get(5..end) else { return Parsed::NeedMore };
            if len == 0 || !name.is_ascii() {
                return Parsed::Invalid(
                    Some(REPLY_GENERAL_FAILURE),
                    "SOCKS host name is empty or not ASCII (write the punycode form)".into(),
                );
            }
            (String::from_utf8_lossy(name).into_owned(), end)
        }
        other => {
            return Parsed::Invalid(
                Some(REPLY_ADDRESS_NOT_SUPPORTED),
                format!("SOCKS address type {other} is not supported"),
            )
        }
    };
    let Some(p) = buf.get(addr_end..addr_end + 2) else { return Parsed::NeedMore };
    let port = u16::from_be_bytes([p[0], p[1]]);
    Parsed::Done(Request { command, host, port }, addr_end + 2)
}

/// A reply with an unspecified bound address (the client learns nothing about the host side).
pub fn reply(code: u8) -> [u8; 10] {
    [VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting() {
        assert_eq!(parse_greeting(&[5]), Parsed::NeedMore);
        assert_eq!(parse_greeting(&[5, 2, 2]), Parsed::NeedMore);
        assert_eq!(parse_greeting(&[5, 2, 2, 0, 9]), Parsed::Done(true, 4));
        assert_eq!(parse_greeting(&[5, 1, 2]), Parsed::Done(false, 3));
        assert_eq!(parse_greeting(&[5, 0]), Parsed::Done(false, 2));
        assert!(matches!(parse_greeting(&[4, 1, 0]), Parsed::Invalid(None, _)));
        assert_eq!(parse_greeting_methods(&[5, 2, 2, 0, 9]), Parsed::Done(vec![2, 0], 4));
        assert_eq!(parse_greeting_methods(&[5, 2, 2]), Parsed::NeedMore);
    }

    #[test]
    fn requests() {
        let name = [&[5, 1, 0, 3, 11][..], b"example.com", &[1, 187]].concat();
        for cut in 0..name.len() {
            assert_eq!(parse_request(&name[..cut]), Parsed::NeedMore);
        }
        assert_eq!(
            parse_request(&name),
            Parsed::Done(Request { command: 1, host: "example.com".into(), port: 443 }, name.len())
        );
        let v4 = [5, 2, 0, 1, 203, 0, 113, 9, 0, 80];
        assert_eq!(parse_request(&v4), Parsed::Done(Request { command: 2, host: "203.0.113.9".into(), port: 80 }, 10));
        let mut v6 = vec![5, 1, 0, 4];
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0x1f, 0x90]);
        assert_eq!(
            parse_request(&v6),
            Parsed::Done(Request { command: 1, host: "[2001:db8::1]".into(), port: 8080 }, 22)
        );
        assert!(matches!(parse_request(&[5, 1, 0, 9, 0, 0]), Parsed::Invalid(Some(REPLY_ADDRESS_NOT_SUPPORTED), _)));
        assert!(matches!(parse_request(&[5, 1, 1, 1, 0, 0]), Parsed::Invalid(Some(_), _)));
        assert!(matches!(parse_request(&[5, 1, 0, 3, 0, 0, 0]), Parsed::Invalid(Some(_), _)));
        assert!(matches!(parse_request(&[5, 1, 0, 3, 1, 0xc3, 0, 0]), Parsed::Invalid(Some(_), _)));
    }
}
