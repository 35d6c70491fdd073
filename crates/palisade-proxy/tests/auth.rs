//! The optional per-sandbox credentials (`Config::credentials`, used by the Windows elevated
//! mode, whose proxy listens on the host's loopback): clients that present them are served,
//! every other client is refused before anything reaches a destination (checked at the origin),
//! and the credentials never travel on to an origin.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::*;
use palisade_policy::net_rules::Allowlist;
use palisade_proxy::{Config, CredentialBook, Credentials, Protocol, Proxy, Resolver};

const USER: &str = "palisade";
const SECRET: &str = "Sx7kQ2vN9pLm4RtW8yZb";

fn hosts() -> &'static str {
    "127.0.0.1 origin.test\n"
}

fn proxy_with_credentials(origin: &Origin) -> Running {
    let book = CredentialBook::new();
    book.insert(Credentials::new(USER, SECRET).unwrap(), 0);
    proxy_with_book(origin, std::sync::Arc::new(book))
}

/// A proxy for the origin (its name leads to loopback, which is allowed as an address too)
/// that serves the clients presenting an entry of `book`.
fn proxy_with_book(origin: &Origin, book: std::sync::Arc<CredentialBook>) -> Running {
    let port = origin.port();
    let allowlist =
        Allowlist::parse(&[format!("origin.test:{port}"), format!("127.0.0.1:{port}")], &[] as &[String]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::new(allowlist);
    config.resolver = Resolver::from_hosts_text(hosts()).unwrap();
    config.credentials = Some(book);
    let handle = Proxy::start(config, vec![listener]).unwrap();
    Running { handle, addr }
}

fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", palisade_proxy::auth::base64(format!("{user}:{secret}").as_bytes()))
}

#[test]
fn connect_without_or_with_wrong_credentials_gets_407_and_reaches_nothing() {
    let origin = http_origin();
    let p = proxy_with_credentials(&origin);
    let target = format!("origin.test:{}", origin.port());
    let wrong = format!("Proxy-Authorization: {}\r\n", basic(USER, "Sx7kQ2vN9pLm4RtW8yZc"));
    for extra in ["", wrong.as_str()] {
        let mut s = client(p.addr);
        write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n").unwrap();
        let response = String::from_utf8_lossy(&read_all(&mut s)).into_owned();
        assert!(response.starts_with("HTTP/1.1 407 "), "{response}");
        assert!(response.contains("Proxy-Authenticate: Basic realm=\"palisade\"\r\n"), "{response}");
        assert!(!response.contains(SECRET));
    }
    let records = p.records(2);
    for r in &records {
        assert_eq!((r.protocol, r.allowed), (Protocol::HttpConnect, false));
        assert!(r.reason.as_deref().unwrap().contains("did not present its credentials"), "{r:?}");
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(origin.seen.all().is_empty(), "the origin was reached without credentials");
}

#[test]
fn connect_with_credentials_is_served() {
    let origin = http_origin();
    let p = proxy_with_credentials(&origin);
    let target = format!("origin.test:{}", origin.port());
    let mut s = client(p.addr);
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n", basic(USER, SECRET))
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    write!(s, "GET /in HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let body = String::from_utf8_lossy(&read_all(&mut s)).into_owned();
    assert!(body.contains("origin: GET /in HTTP/1.1"), "{body}");
    drop(s);
    let r = &p.records(1)[0];
    assert_eq!((r.protocol, r.allowed), (Protocol::HttpConnect, true));
}

#[test]
fn forwarding_checks_credentials_and_never_passes_them_on() {
    let origin = http_origin();
    let p = proxy_with_credentials(&origin);
    let authority = format!("origin.test:{}", origin.port());
    let mut s = client(p.addr);
    write!(s, "GET http://{authority}/x HTTP/1.1\r\nHost: {authority}\r\n\r\n").unwrap();
    let refused = String::from_utf8_lossy(&read_all(&mut s)).into_owned();
    assert!(refused.starts_with("HTTP/1.1 407 "), "{refused}");
    let mut s = client(p.addr);
    write!(
        s,
        "GET http://{authority}/x HTTP/1.1\r\nHost: {authority}\r\nproxy-authorization: {}\r\n\r\n",
        basic(USER, SECRET)
    )
    .unwrap();
    let served = String::from_utf8_lossy(&read_all(&mut s)).into_owned();
    assert!(served.contains("origin: GET /x HTTP/1.1"), "{served}");
    let seen = origin.seen.wait(1);
    assert_eq!(seen.len(), 1, "only the authenticated request reached the origin");
    let head = String::from_utf8_lossy(&seen[0]).into_owned();
    assert_eq!(header(&head, "proxy-authorization"), None, "{head}");
    assert!(!head.contains(SECRET));
    let records = p.records(2);
    assert_eq!(records.iter().filter(|r| r.allowed).count(), 1);
    assert!(records.iter().all(|r| r.protocol == Protocol::HttpForward));
}

/// A SOCKS5 exchange: greeting with `methods`, then (if the proxy picked username/password)
/// `user`/`password`, then a CONNECT to 127.0.0.1:`port`. Returns every byte the proxy sent.
fn socks_exchange(p: &Running, methods: &[u8], user: &str, password: &str, port: u16) -> Vec<u8> {
    let mut s = client(p.addr);
    let mut greeting = vec![5, methods.len() as u8];
    greeting.extend_from_slice(methods);
    s.write_all(&greeting).unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).unwrap();
    let mut got = choice.to_vec();
    if choice == [5, 2] {
        let mut sub = vec![1, user.len() as u8];
        sub.extend_from_slice(user.as_bytes());
        sub.push(password.len() as u8);
        sub.extend_from_slice(password.as_bytes());
        s.write_all(&sub).unwrap();
        let p = port.to_be_bytes();
        // Sent at once: a proxy that refused must not act on it.
        let _ = s.write_all(&[5, 1, 0, 1, 127, 0, 0, 1, p[0], p[1]]);
        let _ = s.write_all(b"GET /socks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    }
    got.extend(read_all(&mut s));
    got
}

#[test]
fn socks_needs_username_password() {
    let origin = http_origin();
    let p = proxy_with_credentials(&origin);
    // Only "no authentication" offered: no acceptable method.
    assert_eq!(socks_exchange(&p, &[0], "", "", origin.port()), [5, 0xff]);
    // Wrong password, wrong user: failure status, then closed.
    assert_eq!(socks_exchange(&p, &[0, 2], USER, "Sx7kQ2vN9pLm4RtW8yZ", origin.port()), [5, 2, 1, 1]);
    assert_eq!(socks_exchange(&p, &[2], "other", SECRET, origin.port()), [5, 2, 1, 1]);
    let records = p.records(3);
    assert!(records.iter().all(|r| !r.allowed && r.protocol == Protocol::Socks5), "{records:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(origin.seen.all().is_empty(), "the origin was reached without credentials");
    // The right ones: success, the CONNECT reply, then the origin's answer.
    let got = socks_exchange(&p, &[0, 2], USER, SECRET, origin.port());
    assert_eq!(got[..4], [5, 2, 1, 0]);
    assert_eq!(got[4..6], [5, 0]);
    assert!(String::from_utf8_lossy(&got[14..]).contains("origin: GET /socks"), "{got:?}");
    assert_eq!(origin.seen.wait(1).len(), 1);
}

#[test]
#[cfg_attr(windows, ignore = "needs curl, which Wine cannot start")]
fn curl_with_credentials_in_the_proxy_urls() {
    let origin = http_origin();
    let p = proxy_with_credentials(&origin);
    let url = format!("http://origin.test:{}/curl", origin.port());
    let http_proxy = format!("http://{USER}:{SECRET}@{}", p.addr);
    let socks_proxy = format!("socks5h://{USER}:{SECRET}@{}", p.addr);
    for args in [vec!["-x", &http_proxy, &url], vec!["-p", "-x", &http_proxy, &url], vec!["-x", &socks_proxy, &url]] {
        let out = curl(&args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("origin: GET /curl"), "{args:?}");
    }
    let without = format!("http://{}", p.addr);
    let out = curl(&["-f", "-x", &without, &url]);
    assert!(!out.status.success(), "a proxy URL without credentials was served");
    assert_eq!(origin.seen.wait(3).len(), 3);
}

/// Windows gives each command of a sandbox its own secret on the sandbox's one port: each
/// command gets back its own connections, and once its entry is revoked (the command ended) its
/// secret is refused and its open tunnels end, while another command's keep working.
#[test]
fn each_commands_secret_tags_its_records_and_revoking_ends_its_tunnels() {
    const OTHER: &str = "Qm3vX8kP2nR7tW4yZb9c";
    let origin = http_origin();
    let port = origin.port();
    let book = std::sync::Arc::new(CredentialBook::new());
    book.insert(Credentials::new(USER, SECRET).unwrap(), 1);
    book.insert(Credentials::new(USER, OTHER).unwrap(), 2);
    let Running { handle, addr } = proxy_with_book(&origin, book.clone());
    let target = format!("origin.test:{port}");
    let open_tunnel = |secret: &str| {
        let mut s = client(addr);
        write!(
            s,
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
            basic(USER, secret)
        )
        .unwrap();
        let head = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        s
    };
    let mut first = open_tunnel(SECRET);
    let mut second = open_tunnel(OTHER);

    book.revoke(1);
    // The revoked command's tunnel is ended by the proxy (settled: recorded and closed), so a
    // request sent on it afterwards reaches nothing.
    assert!(handle.settle(1, std::time::Duration::from_secs(5)), "the revoked tunnel is still open");
    let _ = write!(first, "GET /after HTTP/1.1\r\nHost: {target}\r\n\r\n");
    let after = String::from_utf8_lossy(&read_all(&mut first)).into_owned();
    assert!(!after.contains("origin:"), "the revoked tunnel still carried a request: {after}");
    let mine = handle.take_records_for(1);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(mine[0].allowed && mine[0].reason.as_deref().unwrap_or("").contains("command"), "{mine:?}");
    // Its secret is refused from now on.
    let mut s = client(addr);
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n", basic(USER, SECRET))
        .unwrap();
    assert!(String::from_utf8_lossy(&read_all(&mut s)).starts_with("HTTP/1.1 407 "));

    // The other command's tunnel still works, and its record carries its own tag.
    write!(second, "GET /still HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let body = String::from_utf8_lossy(&read_all(&mut second)).into_owned();
    assert!(body.contains("origin: GET /still HTTP/1.1"), "{body}");
    drop(second);
    assert!(handle.settle(2, std::time::Duration::from_secs(5)), "tag 2 never settled");
    let theirs = handle.take_records_for(2);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert!(theirs[0].allowed && theirs[0].reason.is_none(), "{theirs:?}");
    // The refused attempt carries the listener's tag (0): it presented no valid credentials.
    let refused = handle.take_records_for(0);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(!refused[0].allowed);
}
