//! Checking the first bytes a client sends into a tunnel against the host the tunnel was opened
//! for: a TLS ClientHello must name that host (SNI), a plain HTTP request must carry it in its
//! Host header. Anything else (SSH, a binary protocol) passes as opaque. This closes domain and
//! virtual-host fronting by SNI or Host; it cannot see inside TLS (see README.md).

use palisade_policy::net_rules::RequestHost;

use crate::head::{self, HeadError};
use crate::tls::{self, Hello};
use crate::vet::display_host;

/// `None`: more bytes are needed. `Some(Ok)`: the tunnel may carry them. `Some(Err)`: refuse,
/// with a one-line reason.
pub fn inspect(buf: &[u8], host: &RequestHost, max_head: usize) -> Option<Result<(), String>> {
    if buf.is_empty() {
        return None;
    }
    if tls::looks_like_tls(buf) {
        return match tls::client_hello(buf) {
            Hello::NeedMore => None,
            Hello::Invalid(e) => Some(Err(format!("palisade: {e}"))),
            Hello::Complete(sni) => Some(check_sni(sni.as_deref(), host)),
        };
    }
    if tls::looks_like_sslv2_hello(buf)? {
        let shown = display_host(host);
        return Some(Err(format!("palisade: an SSLv2-format ClientHello names no server, in a tunnel to {shown}")));
    }
    match head::looks_like_http(buf)? {
        false => Some(Ok(())),
        true => match head::parse_head(buf, max_head) {
            Ok(None) => None,
            Err(HeadError::TooLarge) => {
                Some(Err(format!("palisade: HTTP request head in the tunnel larger than {max_head} bytes")))
            }
            Err(HeadError::Malformed(e)) => Some(Err(format!("palisade: malformed HTTP request in the tunnel: {e}"))),
            Ok(Some(req)) if !head::target_stays_on(&req.target, host) => Some(Err(format!(
                "palisade: the request target {:?} in the tunnel names a host other than the tunnel's host {}",
                req.target.chars().take(255).collect::<String>(),
                display_host(host)
            ))),
            Ok(Some(req)) => {
                let values: Vec<&[u8]> = req.values("host").collect();
                match values.as_slice() {
                    [one] if head::host_header_matches(one, host) => Some(Ok(())),
                    _ if matches!(host, RequestHost::Ip(_)) && values.len() <= 1 => Some(Ok(())),
                    _ => {
                        let shown: Vec<String> =
                            values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect();
                        Some(Err(format!(
                            "palisade: the Host header ({}) in the tunnel does not match the tunnel's host {}",
                            if shown.is_empty() { "missing".into() } else { shown.join(", ") },
                            display_host(host)
                        )))
                    }
                }
            }
        },
    }
}

/// A tunnel to a name needs a ClientHello naming it. A tunnel to an address (allowed only by an
/// address entry) admits any server name: the entry allowed that address as a whole.
fn check_sni(sni: Option<&str>, host: &RequestHost) -> Result<(), String> {
    let shown = display_host(host);
    match (sni, host) {
        (_, RequestHost::Ip(_)) => Ok(()),
        (None, RequestHost::Name(_)) => {
            Err(format!("palisade: the TLS ClientHello names no server, in a tunnel to {shown}"))
        }
        (Some(name), RequestHost::Name(_)) => match RequestHost::parse(name) {
            Ok(parsed) if parsed == *host => Ok(()),
            _ => Err(format!(
                "palisade: the TLS server name {} does not match the tunnel's host {shown}",
                name.chars().take(255).collect::<String>()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::build_client_hello;

    fn name(s: &str) -> RequestHost {
        RequestHost::parse(s).unwrap()
    }

    #[test]
    fn tls_server_name_must_match() {
        let h = name("api.example.com");
        assert_eq!(inspect(&build_client_hello(Some("API.example.com."), 0, 16384), &h, 16384), Some(Ok(())));
        let other = inspect(&build_client_hello(Some("evil.example"), 0, 16384), &h, 16384).unwrap().unwrap_err();
        assert!(other.contains("evil.example") && other.contains("api.example.com"), "{other}");
        assert!(inspect(&build_client_hello(None, 0, 16384), &h, 16384).unwrap().is_err());
        let partial = build_client_hello(Some("api.example.com"), 0, 50);
        assert_eq!(inspect(&partial[..60], &h, 16384), None);
        let ip = RequestHost::parse("203.0.113.9").unwrap();
        assert_eq!(inspect(&build_client_hello(Some("whatever.example"), 0, 16384), &ip, 16384), Some(Ok(())));
    }

    #[test]
    fn http_host_must_match() {
        let h = name("example.com");
        assert_eq!(inspect(b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", &h, 16384), Some(Ok(())));
        assert_eq!(inspect(b"GET / HTTP/1.1\r\nHost: exa", &h, 16384), None);
        assert!(inspect(b"GET / HTTP/1.1\r\nHost: other.com\r\n\r\n", &h, 16384).unwrap().is_err());
        assert!(inspect(b"GET / HTTP/1.1\r\n\r\n", &h, 16384).unwrap().is_err());
        assert!(inspect(b"GET / HTTP/1.1\r\nHost: example.com\r\nHost: b.com\r\n\r\n", &h, 16384).unwrap().is_err());
        assert_eq!(inspect(b"SSH-2.0-OpenSSH_9.2\r\n", &h, 16384), Some(Ok(())));
        assert_eq!(inspect(b"GE", &h, 16384), None);
        assert!(inspect(&[b'A'; 100], &h, 50).unwrap().is_ok());
    }
}
