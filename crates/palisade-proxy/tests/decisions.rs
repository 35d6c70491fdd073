//! End-to-end decisions through a running proxy: allowed and refused requests over HTTP
//! forwarding, CONNECT and SOCKS5, by curl and by a raw client, with the side effect checked at
//! the origin (what it received, or that it received nothing).

mod common;

use std::io::Write;

use common::*;
use palisade_proxy::{Limits, Protocol};

fn hosts() -> &'static str {
    "127.0.0.1 origin.test other.test\n"
}

/// Allows origin.test on the origin's port and, explicitly, 127.0.0.1 on it (the test origin
/// lives on loopback, which a name may reach only when the address itself is allowed).
fn allowing(origin: &Origin) -> Running {
    let port = origin.port();
    proxy(&[format!("origin.test:{port}"), format!("127.0.0.1:{port}")], &[], hosts(), Limits::default())
}

#[test]
#[cfg_attr(windows, ignore = "needs curl, which Wine cannot start")]
fn curl_forwarding_allowed_and_recorded() {
    let origin = http_origin();
    let p = allowing(&origin);
    let url = format!("http://origin.test:{}/hello?x=1", origin.port());
    let out = curl(&["-x", &p.url(), &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(body, format!("origin: GET /hello?x=1 HTTP/1.1 host=origin.test:{}\n", origin.port()));
    let seen = origin.seen.wait(1);
    let head = String::from_utf8_lossy(&seen[0]).into_owned();
    assert_eq!(header(&head, "connection"), Some("close"));
    assert_eq!(header(&head, "proxy-connection"), None);
    let r = &p.records(1)[0];
    assert_eq!(r.protocol, Protocol::HttpForward);
    assert_eq!((r.host.as_str(), r.port, r.allowed), ("origin.test", origin.port(), true));
    assert_eq!(r.rule.as_deref(), Some(format!("origin.test:{}", origin.port()).as_str()));
    assert_eq!(r.reason, None);
    assert_eq!(r.bytes_up, seen[0].len() as u64);
    let response_len = "HTTP/1.1 200 OK\r\nContent-Length: NN\r\nConnection: close\r\n\r\n".len() + body.len();
    assert_eq!(r.bytes_down, response_len as u64);
}

#[test]
#[cfg_attr(windows, ignore = "needs curl, which Wine cannot start")]
fn curl_connect_tunnel_allowed() {
    let origin = http_origin();
    let p = allowing(&origin);
    let url = format!("http://origin.test:{}/tunnelled", origin.port());
    let out = curl(&["-p", "-x", &p.url(), &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("origin: GET /tunnelled HTTP/1.1"));
    let r = &p.records(1)[0];
    assert_eq!((r.protocol, r.allowed), (Protocol::HttpConnect, true));
    assert_eq!(r.bytes_up, origin.seen.wait(1)[0].len() as u64);
}

#[test]
fn rust_client_connect_counts_bytes_exactly() {
    let origin = http_origin();
    let p = allowing(&origin);
    let (mut s, head) = connect_tunnel(p.addr, &format!("origin.test:{}", origin.port()));
    assert_eq!(head, "HTTP/1.1 200 Connection established\r\n\r\n");
    let request = format!("GET /big/100000 HTTP/1.1\r\nHost: origin.test:{}\r\n\r\n", origin.port());
    s.write_all(request.as_bytes()).unwrap();
    let response = read_all(&mut s);
    assert!(response.ends_with(&[b'x'; 1000]));
    drop(s); // a tunnel lasts until both sides have closed
    let r = &p.records(1)[0];
    assert_eq!(r.bytes_up, request.len() as u64);
    assert_eq!(r.bytes_down, response.len() as u64);
    assert!(r.duration > std::time::Duration::ZERO);
}

#[test]
fn name_not_in_the_list_gets_403_with_the_exact_line() {
    let origin = http_origin();
    let p = allowing(&origin);
    let (mut s, head) = connect_tunnel(p.addr, "example.org:443");
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    let body = String::from_utf8(read_all(&mut s)).unwrap();
    assert_eq!(
        body,
        "palisade: example.org is not in the network allowlist (add --allow-net example.org or network.allow in .palisade/config.toml)\n"
    );
    // Through plain-HTTP forwarding too, with the port in the suggestion.
    let response = forward_get(p.addr, &format!("other.test:{}", origin.port()), "/");
    let text = body_of(&response);
    assert!(text.contains(&format!("--allow-net other.test:{} ", origin.port())), "{text}");
    let records = p.records(2);
    assert!(records.iter().all(|r| !r.allowed && r.rule.is_none()));
    assert_eq!(records[0].host, "example.org");
    assert!(origin.seen.all().is_empty(), "the origin must not be contacted");
}

#[test]
fn name_resolving_to_loopback_is_refused_unless_the_address_is_allowed() {
    let origin = http_origin();
    let port = origin.port();
    let p = proxy(&[format!("origin.test:{port}")], &[], hosts(), Limits::default());
    let text = body_of(&forward_get(p.addr, &format!("origin.test:{port}"), "/"));
    assert!(text.contains("origin.test resolves to 127.0.0.1, a loopback address"), "{text}");
    let (_s, head) = connect_tunnel(p.addr, &format!("origin.test:{port}"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let records = p.records(2);
    assert!(records.iter().all(|r| !r.allowed && r.rule.as_deref() == Some(&format!("origin.test:{port}")[..])));
    // The address entry for another port does not help either.
    let p2 = proxy(&[format!("origin.test:{port}"), "127.0.0.1:1".into()], &[], hosts(), Limits::default());
    let (_s, head) = connect_tunnel(p2.addr, &format!("origin.test:{port}"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(origin.seen.all().is_empty(), "the origin must not be contacted");
}

#[test]
fn raw_ip_needs_an_address_entry() {
    let origin = http_origin();
    let port = origin.port();
    let names_only = proxy(&[format!("origin.test:{port}")], &[], hosts(), Limits::default());
    let (mut s, head) = connect_tunnel(names_only.addr, &format!("127.0.0.1:{port}"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let body = String::from_utf8(read_all(&mut s)).unwrap();
    assert!(body.contains(&format!("--allow-net 127.0.0.1:{port} ")), "{body}");
    assert!(origin.seen.all().is_empty());
    let with_ip = allowing(&origin);
    let response = forward_get(with_ip.addr, &format!("127.0.0.1:{port}"), "/ip");
    assert!(body_of(&response).starts_with("origin: GET /ip"), "{}", String::from_utf8_lossy(&response));
    assert_eq!(with_ip.records(1)[0].rule.as_deref(), Some(&format!("127.0.0.1:{port}")[..]));
}

#[test]
fn deny_entry_wins() {
    let origin = http_origin();
    let port = origin.port();
    let p = proxy(
        &[format!("origin.test:{port}"), format!("127.0.0.1:{port}")],
        &s(&["origin.test"]),
        hosts(),
        Limits::default(),
    );
    let (mut c, head) = connect_tunnel(p.addr, &format!("origin.test:{port}"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert_eq!(
        body_of(&[head.as_bytes(), &read_all(&mut c)].concat()),
        "palisade: origin.test is refused by the network deny rule origin.test\n"
    );
    // A deny on the address a name resolves to applies as well.
    let p = proxy(
        &[format!("origin.test:{port}"), format!("127.0.0.1:{port}")],
        &s(&["127.0.0.0/8"]),
        hosts(),
        Limits::default(),
    );
    let (_c, head) = connect_tunnel(p.addr, &format!("origin.test:{port}"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(origin.seen.all().is_empty());
}

#[test]
#[cfg_attr(windows, ignore = "needs curl, which Wine cannot start")]
fn curl_socks5_allowed_and_denied() {
    let origin = http_origin();
    let p = allowing(&origin);
    let socks = format!("{}", p.addr);
    let url = format!("http://origin.test:{}/socks", origin.port());
    let out = curl(&["--socks5-hostname", &socks, &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("origin: GET /socks"));
    let denied = curl(&["--socks5-hostname", &socks, &format!("http://other.test:{}/", origin.port())]);
    assert!(!denied.status.success());
    let records = p.records(2);
    assert_eq!(records.len(), 2);
    let (ok, no) = (&records[0], &records[1]);
    assert_eq!((ok.protocol, ok.allowed, ok.host.as_str()), (Protocol::Socks5, true, "origin.test"));
    assert!(ok.bytes_up > 0 && ok.bytes_down > 0);
    assert_eq!((no.protocol, no.allowed, no.host.as_str()), (Protocol::Socks5, false, "other.test"));
    assert!(no.reason.as_deref().unwrap().contains("not in the network allowlist"));
    assert_eq!(origin.seen.all().len(), 1);
}

fn socks_request(p: &Running, request: &[u8]) -> Vec<u8> {
    let mut c = client(p.addr);
    c.write_all(&[5, 1, 0]).unwrap();
    let mut method = [0u8; 2];
    std::io::Read::read_exact(&mut c, &mut method).unwrap();
    assert_eq!(method, [5, 0]);
    c.write_all(request).unwrap();
    read_all(&mut c)
}

#[test]
fn socks5_raw_commands_and_address_types() {
    let origin = http_origin();
    let p = allowing(&origin);
    let port = origin.port().to_be_bytes();
    // BIND and UDP ASSOCIATE: "command not supported".
    for cmd in [2u8, 3] {
        let reply = socks_request(&p, &[5, cmd, 0, 1, 127, 0, 0, 1, port[0], port[1]]);
        assert_eq!(reply[..2], [5, 7], "command {cmd}");
    }
    // IPv4 allowed by the address entry.
    let mut c = client(p.addr);
    c.write_all(&[5, 1, 0]).unwrap();
    c.write_all(&[5, 1, 0, 1, 127, 0, 0, 1, port[0], port[1]]).unwrap();
    c.write_all(b"GET /v4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let got = read_all(&mut c);
    assert_eq!(got[..2], [5, 0]);
    assert_eq!(got[2..12], [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert!(body_of(&got[12..]).starts_with("origin: GET /v4"));
    drop(c);
    // IPv6 not allowed: "connection not allowed by ruleset".
    let mut v6 = vec![5, 1, 0, 4];
    v6.extend_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&[1, 187]);
    assert_eq!(socks_request(&p, &v6)[..2], [5, 2]);
    // No acceptable method.
    let mut c = client(p.addr);
    c.write_all(&[5, 1, 2]).unwrap();
    assert_eq!(read_all(&mut c), [5, 0xff]);
    let records = p.records(5);
    assert!(records[0].reason.as_deref().unwrap().contains("SOCKS BIND is not supported"));
    assert!(records[1].reason.as_deref().unwrap().contains("UDP ASSOCIATE"));
    assert!(records[2].allowed);
    assert_eq!(records[3].host, "[2001:db8::1]");
    assert_eq!(origin.seen.all().len(), 1);
}

#[test]
fn sni_must_match_the_connect_host() {
    let origin = sink_origin();
    let p = allowing(&origin);
    let target = format!("origin.test:{}", origin.port());
    let (mut c, head) = connect_tunnel(p.addr, &target);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    c.write_all(&palisade_proxy::tls::build_client_hello(Some("evil.example"), 0, 100)).unwrap();
    assert!(read_all(&mut c).is_empty(), "the tunnel is closed");
    assert_eq!(origin.seen.wait(1)[0], b"", "nothing reaches the origin");
    let r = &p.records(1)[0];
    assert!(!r.allowed);
    assert!(r.reason.as_deref().unwrap().contains("TLS server name evil.example does not match"), "{r:?}");
    // The matching name passes, byte for byte, even split over several records.
    let hello = palisade_proxy::tls::build_client_hello(Some("Origin.Test"), 3000, 500);
    let (mut c, _) = connect_tunnel(p.addr, &target);
    c.write_all(&hello).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    read_all(&mut c);
    assert_eq!(origin.seen.wait(2)[1], hello);
    assert!(p.records(1)[0].allowed);
}

#[test]
fn host_header_must_match_the_target() {
    let origin = http_origin();
    let p = allowing(&origin);
    let port = origin.port();
    let mut c = client(p.addr);
    write!(c, "GET http://origin.test:{port}/ HTTP/1.1\r\nHost: evil.example\r\n\r\n").unwrap();
    let response = read_all(&mut c);
    assert!(response.starts_with(b"HTTP/1.1 403"));
    assert_eq!(
        body_of(&response),
        "palisade: the Host header (evil.example) does not match the request target's host origin.test\n"
    );
    // Inside a CONNECT tunnel as well.
    let (mut c, _) = connect_tunnel(p.addr, &format!("origin.test:{port}"));
    write!(c, "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n").unwrap();
    assert!(read_all(&mut c).is_empty());
    let seen = origin.seen.wait(1);
    assert_eq!(seen, [b"".to_vec()], "the tunnel's origin connection carried nothing");
    let records = p.records(2);
    assert!(records.iter().all(|r| !r.allowed));
}

#[test]
fn forwarding_sends_exactly_one_request() {
    let origin = http_origin();
    let p = allowing(&origin);
    let port = origin.port();
    let mut c = client(p.addr);
    let first = format!(
        "POST http://origin.test:{port}/up HTTP/1.1\r\nHost: origin.test:{port}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    );
    let smuggled = "GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n";
    c.write_all(format!("{first}{smuggled}").as_bytes()).unwrap();
    let response = read_all(&mut c);
    assert!(body_of(&response).starts_with("origin: POST /up HTTP/1.1"));
    let seen = String::from_utf8(origin.seen.wait(1)[0].clone()).unwrap();
    assert!(seen.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "{seen}");
    assert!(!seen.contains("evil"), "{seen}");
}
