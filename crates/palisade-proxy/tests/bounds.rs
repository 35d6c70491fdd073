//! The proxy's bounds: oversize heads, slow heads, silent tunnels, idle tunnels, connection
//! floods, and garbage, each followed by a check that other clients are still served.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use palisade_proxy::Limits;

const HOSTS: &str = "127.0.0.1 origin.test\n";

fn allowing(origin: &Origin, limits: Limits) -> Running {
    let port = origin.port();
    proxy(&[format!("origin.test:{port}"), format!("127.0.0.1:{port}")], &[], HOSTS, limits)
}

/// A normal request still works.
fn still_serves(p: &Running, origin: &Origin) {
    let response = forward_get(p.addr, &format!("origin.test:{}", origin.port()), "/alive");
    assert!(body_of(&response).starts_with("origin: GET /alive"), "{}", String::from_utf8_lossy(&response));
}

#[test]
fn oversize_head_gets_431() {
    let origin = http_origin();
    let p = allowing(&origin, Limits::default());
    let mut c = client(p.addr);
    let big = format!("GET http://origin.test:{}/ HTTP/1.1\r\nX-Big: {}\r\n\r\n", origin.port(), "a".repeat(20 * 1024));
    let _ = c.write_all(big.as_bytes()); // the proxy may close before reading it all
    let response = read_all(&mut c);
    assert!(response.starts_with(b"HTTP/1.1 431 "), "{}", String::from_utf8_lossy(&response));
    assert_eq!(body_of(&response), "palisade: request head larger than 16384 bytes\n");
    // Many small headers count the same way.
    let mut c = client(p.addr);
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let _ = write!(c, "GET http://origin.test:{}/ HTTP/1.1\r\n{many}\r\n", origin.port());
    assert!(read_all(&mut c).starts_with(b"HTTP/1.1 431 "));
    still_serves(&p, &origin);
    assert_eq!(origin.seen.wait(1).len(), 1, "only the last request reached the origin");
}

#[test]
fn malformed_and_garbage_requests_are_refused_and_serving_goes_on() {
    let origin = http_origin();
    let p = allowing(&origin, Limits::default());
    let mut c = client(p.addr);
    c.write_all(b"\x00\x01\x02garbage\r\n\r\n").unwrap();
    assert!(read_all(&mut c).starts_with(b"HTTP/1.1 400 "));
    let mut c = client(p.addr);
    c.write_all(b"GET /not-a-proxy-request HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let r = read_all(&mut c);
    assert!(body_of(&r).contains("not an absolute http:// URL"), "{}", String::from_utf8_lossy(&r));
    let mut c = client(p.addr);
    c.write_all(b"CONNECT origin.test HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(body_of(&read_all(&mut c)), "palisade: CONNECT target needs a port\n");
    let mut c = client(p.addr);
    c.write_all(&[5, 9, 9, 9]).unwrap(); // a SOCKS greeting cut short, then closed
    drop(c);
    still_serves(&p, &origin);
}

#[test]
fn slow_head_is_cut_off_by_the_deadline() {
    let origin = http_origin();
    let limits = Limits { head_timeout: Duration::from_millis(400), ..Limits::default() };
    let p = allowing(&origin, limits);
    let start = Instant::now();
    let mut c = client(p.addr);
    c.write_all(b"GET http://origin.test/ HTTP/1.1\r\nX-Slow: ").unwrap();
    // Keep trickling bytes; the deadline is for the whole head, not per read.
    let mut writer = c.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..40 {
            if writer.write_all(b"a").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let response = read_all(&mut c);
    let took = start.elapsed();
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 408 "), "{}", String::from_utf8_lossy(&response));
    assert!(took >= Duration::from_millis(380) && took < Duration::from_secs(3), "{took:?}");
    let r = &p.records(1)[0];
    assert!(r.reason.as_deref().unwrap().contains("not received within 0.4 s"), "{r:?}");
    drop(c);
    trickle.join().unwrap();
    // A SOCKS client that never finishes is cut off as well.
    let mut c = client(p.addr);
    c.write_all(&[5, 1]).unwrap();
    assert!(read_all(&mut c).is_empty());
    still_serves(&p, &origin);
}

#[test]
fn silent_tunnel_is_closed_after_the_first_bytes_timeout() {
    let origin = sink_origin();
    let limits = Limits { first_bytes_timeout: Duration::from_millis(300), ..Limits::default() };
    let p = allowing(&origin, limits);
    let start = Instant::now();
    let (mut c, head) = connect_tunnel(p.addr, &format!("origin.test:{}", origin.port()));
    assert!(head.starts_with("HTTP/1.1 200"));
    assert!(read_all(&mut c).is_empty());
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(origin.seen.wait(1)[0], b"");
    let r = &p.records(1)[0];
    assert!(!r.allowed && r.reason.as_deref().unwrap().contains("server speaks first"), "{r:?}");
}

#[test]
fn idle_tunnel_is_closed() {
    let origin = sink_origin();
    let limits = Limits { idle_timeout: Duration::from_millis(300), ..Limits::default() };
    let p = allowing(&origin, limits);
    let (mut c, _) = connect_tunnel(p.addr, &format!("origin.test:{}", origin.port()));
    c.write_all(b"SSH-2.0-test\r\n").unwrap();
    let start = Instant::now();
    assert!(read_all(&mut c).is_empty());
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(origin.seen.wait(1)[0], b"SSH-2.0-test\r\n");
    let r = &p.records(1)[0];
    assert!(r.allowed);
    assert_eq!(r.bytes_up, 14);
    assert!(r.reason.as_deref().unwrap().contains("without traffic"), "{r:?}");
}

#[test]
fn connection_flood_is_bounded_and_others_recover() {
    let origin = http_origin();
    let limits = Limits { max_connections: 4, head_timeout: Duration::from_secs(20), ..Limits::default() };
    let p = allowing(&origin, limits);
    // Four clients hold every slot by never finishing their heads.
    let holders: Vec<_> = (0..4)
        .map(|_| {
            let mut c = client(p.addr);
            c.write_all(b"G").unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Excess connections are closed at once, not queued.
    for _ in 0..20 {
        let start = Instant::now();
        let mut c = client(p.addr);
        let _ = c.write_all(b"GET http://origin.test/ HTTP/1.1\r\n\r\n");
        assert!(read_all(&mut c).is_empty());
        assert!(start.elapsed() < Duration::from_secs(2));
    }
    let refused = p.records(20);
    assert!(refused.iter().all(|r| r.reason.as_deref() == Some("palisade: more than 4 proxy connections at once")));
    drop(holders);
    let start = Instant::now();
    loop {
        let response = forward_get(p.addr, &format!("origin.test:{}", origin.port()), "/after");
        if body_of(&response).starts_with("origin: GET /after") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "slots were not released");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn shutdown_closes_connections_and_delivers_their_records() {
    let origin = sink_origin();
    let p = allowing(&origin, Limits::default());
    let (mut c, _) = connect_tunnel(p.addr, &format!("origin.test:{}", origin.port()));
    c.write_all(b"SSH-2.0-test\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let records = p.handle.shutdown();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].reason.as_deref().unwrap().contains("proxy stopped"));
    assert!(read_all(&mut c).is_empty());
    assert!(std::net::TcpStream::connect(p.addr).is_err(), "the listener is closed");
}
