//! What an escape-suite author tries against the proxy: addresses that lead back into the
//! host's or the LAN's networks in disguise, and first requests in a tunnel that dodge the
//! Host check. The side effect asserted is at the origin: it received nothing.

mod common;

use std::io::Write;

use common::*;
use palisade_proxy::Limits;

/// IPv6 addresses that carry an IPv4 address a translator or relay turns back into it:
/// NAT64 (64:ff9b::/96, RFC 6052; the local-use 64:ff9b:1::/48, RFC 8215) and 6to4
/// (2002::/16). On a network with NAT64 (IPv6-only clouds with DNS64), a name whose AAAA is
/// 64:ff9b::a9fe:a9fe reaches the metadata service 169.254.169.254, 64:ff9b::a00:5 the LAN.
#[test]
fn translated_ipv6_forms_of_local_ipv4_are_refused() {
    let hosts = "64:ff9b::7f00:1 nat64-loop.test\n\
                 64:ff9b::a9fe:a9fe nat64-meta.test\n\
                 64:ff9b::a00:5 nat64-lan.test\n\
                 64:ff9b:1::cb00:7107 nat64-local-use.test\n\
                 2002:7f00:1::1 sixtofour-loop.test\n\
                 2002:c0a8:101::1 sixtofour-lan.test\n";
    let names = [
        "nat64-loop.test",
        "nat64-meta.test",
        "nat64-lan.test",
        "nat64-local-use.test",
        "sixtofour-loop.test",
        "sixtofour-lan.test",
    ];
    let allow: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let p = proxy(&allow, &[], hosts, Limits::default());
    for name in names {
        let response = forward_get(p.addr, name, "/");
        let text = String::from_utf8_lossy(&response).into_owned();
        assert!(text.starts_with("HTTP/1.1 403"), "{name}: {text}");
        assert!(body_of(&response).contains(&format!("palisade: {name} resolves to ")), "{name}: {text}");
    }
    let records = p.records(names.len());
    assert!(records.iter().all(|r| !r.allowed), "{records:?}");
    // A public IPv4 address behind NAT64 or 6to4 is still a destination like any other.
    assert_eq!(palisade_proxy::vet::special_range("64:ff9b::cb00:7107".parse().unwrap()), None);
    assert_eq!(palisade_proxy::vet::special_range("2002:cb00:7107::1".parse().unwrap()), None);
}

/// The first request in a CONNECT tunnel must name the tunnel's host; these spellings of a
/// request for another virtual host are read as HTTP by common servers (an empty line before the
/// request line is skipped, RFC 9112 section 2.2; an absolute-form target wins over Host,
/// section 3.2.2; methods are case-sensitive tokens, so `get` reaches Go's net/http).
#[test]
fn first_request_in_a_tunnel_cannot_dodge_the_host_check() {
    let origin = sink_origin();
    let port = origin.port();
    let p = proxy(
        &[format!("origin.test:{port}"), format!("127.0.0.1:{port}")],
        &[],
        "127.0.0.1 origin.test\n",
        Limits::default(),
    );
    let attempts = [
        "\r\nGET /crlf HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_string(),
        "\n\nGET /lf HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_string(),
        "get /lower HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_string(),
        format!("GET http://evil.example/absolute HTTP/1.1\r\nHost: origin.test:{port}\r\n\r\n"),
        format!("GET HTTPS://evil.example:{port}/absolute-https HTTP/1.1\r\nHost: origin.test\r\n\r\n"),
        "GET evil.example:80 HTTP/1.1\r\nHost: origin.test\r\n\r\n".to_string(),
    ];
    for (i, attempt) in attempts.iter().enumerate() {
        let (mut c, head) = connect_tunnel(p.addr, &format!("origin.test:{port}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        c.write_all(attempt.as_bytes()).unwrap();
        let _ = c.shutdown(std::net::Shutdown::Write);
        read_all(&mut c);
        let seen = origin.seen.wait(i + 1);
        assert_eq!(String::from_utf8_lossy(&seen[i]), "", "the origin received attempt {attempt:?}");
    }
    let records = p.records(attempts.len());
    assert!(records.iter().all(|r| !r.allowed), "{records:?}");
    // The same requests naming the tunnel's host pass, byte for byte.
    let fine = [
        "\r\nGET /crlf HTTP/1.1\r\nHost: origin.test\r\n\r\n".to_string(),
        format!("GET http://origin.test:{port}/absolute HTTP/1.1\r\nHost: origin.test:{port}\r\n\r\n"),
        "get /lower HTTP/1.1\r\nHost: origin.test\r\n\r\n".to_string(),
    ];
    for (i, request) in fine.iter().enumerate() {
        let (mut c, _) = connect_tunnel(p.addr, &format!("origin.test:{port}"));
        c.write_all(request.as_bytes()).unwrap();
        let _ = c.shutdown(std::net::Shutdown::Write);
        read_all(&mut c);
        let seen = origin.seen.wait(attempts.len() + i + 1);
        assert_eq!(String::from_utf8_lossy(&seen[attempts.len() + i]), *request);
    }
}

/// Without a server name the server picks its default site, which is why a ClientHello naming
/// none is refused; the same must hold for the TLS-ish openings that carry no name at all: an
/// SSLv2-format ClientHello (which OpenSSL servers still take, negotiating TLS) and a record
/// that is not a handshake.
#[test]
fn tls_openings_without_a_server_name_are_refused() {
    let origin = sink_origin();
    let port = origin.port();
    let p = proxy(
        &[format!("origin.test:{port}"), format!("127.0.0.1:{port}")],
        &[],
        "127.0.0.1 origin.test\n",
        Limits::default(),
    );
    let ciphers = [0x00, 0x00, 0x2f, 0x00, 0x00, 0x35];
    let mut body = vec![1, 3, 3, 0, ciphers.len() as u8, 0, 0, 0, 16];
    body.extend_from_slice(&ciphers);
    body.extend_from_slice(&[7; 16]);
    let mut sslv2 = vec![0x80, body.len() as u8];
    sslv2.extend_from_slice(&body);
    let attempts: [&[u8]; 3] = [&sslv2, b"\x17\x03\x03\x00\x05hello", b"\x15\x03\x03\x00\x02\x01\x00"];
    for (i, attempt) in attempts.iter().enumerate() {
        let (mut c, head) = connect_tunnel(p.addr, &format!("origin.test:{port}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        c.write_all(attempt).unwrap();
        let _ = c.shutdown(std::net::Shutdown::Write);
        read_all(&mut c);
        let seen = origin.seen.wait(i + 1);
        assert_eq!(seen[i], b"", "the origin received attempt {i}");
    }
    assert!(p.records(attempts.len()).iter().all(|r| !r.allowed));
}

/// A name leading to one of the host's own (non-loopback) addresses would reach the host's
/// services listening on every address: refused unless that address is allowed as one.
#[test]
fn names_leading_to_the_hosts_own_addresses_are_refused() {
    let start = |allow: &[&str]| {
        let allowlist = palisade_policy::net_rules::Allowlist::parse(allow, &[] as &[&str]).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = palisade_proxy::Config::new(allowlist);
        config.resolver = palisade_proxy::Resolver::from_hosts_text("192.0.2.77 self.test\n").unwrap();
        config.host_addresses = vec!["192.0.2.77".parse().unwrap()];
        (palisade_proxy::Proxy::start(config, vec![listener]).unwrap(), addr)
    };
    let (_p, addr) = start(&["self.test"]);
    let response = forward_get(addr, "self.test", "/");
    let text = String::from_utf8_lossy(&response).into_owned();
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(body_of(&response).contains("resolves to 192.0.2.77, an address of this host"), "{text}");
    let records = _p.take_records();
    assert!(records.iter().all(|r| !r.allowed), "{records:?}");
    // Allowed as an address too: the check lets it through to the connect (nothing listens at
    // 192.0.2.77 here, so the answer is a gateway error, not the refusal).
    let (_p, addr) = start(&["self.test", "192.0.2.77"]);
    let text = String::from_utf8_lossy(&forward_get(addr, "self.test", "/")).into_owned();
    assert!(!text.contains("an address of this host"), "{text}");
}
