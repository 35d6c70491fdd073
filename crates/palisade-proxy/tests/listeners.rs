//! Listeners that come and go while the proxy runs (one per sandboxed command): records carry
//! the listener's tag, removing a listener closes it and its connections, and a stopped proxy
//! takes no new listener.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::*;
use palisade_proxy::Limits;

fn hosts() -> &'static str {
    "127.0.0.1 origin.test\n"
}

#[test]
fn records_carry_the_listener_tag_and_removal_closes_it() {
    let origin = http_origin();
    let port = origin.port();
    let p = proxy(&[format!("origin.test:{port}"), format!("127.0.0.1:{port}")], &[], hosts(), Limits::default());
    let extra = TcpListener::bind("127.0.0.1:0").unwrap();
    let extra_addr = extra.local_addr().unwrap();
    p.handle.add_listener(extra, 7).unwrap();

    let body = body_of(&forward_get(extra_addr, &format!("origin.test:{port}"), "/via-7"));
    assert_eq!(body, format!("origin: GET /via-7 HTTP/1.1 host=origin.test:{port}\n"));
    let refused = forward_get(extra_addr, "elsewhere.test", "/");
    assert!(String::from_utf8_lossy(&refused).starts_with("HTTP/1.1 403"), "{}", String::from_utf8_lossy(&refused));
    origin.seen.wait(1);

    // A connection left open on the listener is closed with it, and recorded.
    let mut idle = client(extra_addr);
    idle.write_all(b"GET http://origin.test").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    p.handle.remove_listener(7);
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    assert!(std::net::TcpStream::connect(extra_addr).is_err(), "the listener is still open");

    let mine = p.handle.take_records_for(7);
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert!(mine.iter().all(|r| r.listener == 7));
    assert_eq!(mine.iter().filter(|r| r.allowed).count(), 1, "{mine:?}");
    assert!(mine.iter().any(|r| r.reason.as_deref().is_some_and(|x| x.contains("listener was closed"))), "{mine:?}");
    // The first listener's (tag 0) records are separate, and it still serves.
    let body = body_of(&forward_get(p.addr, &format!("origin.test:{port}"), "/via-0"));
    assert!(body.contains("/via-0"), "{body}");
    let zero = p.records(1);
    assert!(zero.iter().all(|r| r.listener == 0), "{zero:?}");
}

#[test]
fn a_stopped_proxy_takes_no_listener() {
    let mut p = proxy(&[], &[], hosts(), Limits::default());
    assert!(p.handle.is_running());
    p.handle.stop();
    assert!(!p.handle.is_running());
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    assert!(p.handle.add_listener(l, 1).is_err());
    // The refused listener is closed: nothing answers there (fail closed).
    assert!(std::net::TcpStream::connect(addr).is_err());
    p.handle.remove_listener(1);
}
