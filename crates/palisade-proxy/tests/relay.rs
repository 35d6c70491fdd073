//! The relay after a tunnel's first bytes are checked (on Linux: splice(2) through a pipe per
//! direction): large transfers both ways arrive intact and are counted exactly, half-closes
//! pass through either way while the other direction keeps flowing, a silent tunnel that
//! carried data is still closed by the idle timeout, and a client that vanishes mid-download
//! frees its connection slot.

mod common;

use std::hash::{DefaultHasher, Hasher};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use palisade_proxy::{Limits, Protocol};

const HOSTS: &str = "127.0.0.1 origin.test\n";
/// Bytes each way in the large transfers: many times a pipe's or buffer's 64 KiB.
const UP_LEN: usize = 6 * 1024 * 1024 + 12345;
const DOWN_LEN: usize = 9 * 1024 * 1024 + 777;
/// Opaque first bytes, so the tunnel's check lets the random bytes after them through.
const PREFIX: &[u8] = b"SSH-2.0-relay-test\r\n";

fn allowing(origin: &Origin, limits: Limits) -> Running {
    let port = origin.port();
    proxy(&[format!("origin.test:{port}"), format!("127.0.0.1:{port}")], &[], HOSTS, limits)
}

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn digest(bytes: &[u8]) -> (usize, u64) {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    (bytes.len(), h.finish())
}

/// Writes `DOWN_LEN` random bytes (seed 2) and half-closes, while recording everything the
/// client sends until it half-closes.
fn exchange_origin() -> Origin {
    spawn_origin(|stream, seen| {
        let mut writer = stream.try_clone().unwrap();
        let sender = thread::spawn(move || {
            writer.write_all(&random_bytes(2, DOWN_LEN)).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        stream.read_to_end(seen).unwrap();
        sender.join().unwrap();
    })
}

/// Sends `PREFIX` and `UP_LEN` random bytes (seed 1) then half-closes, while reading until the
/// origin's end; returns what arrived.
fn exchange(mut s: TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut writer = s.try_clone().unwrap();
    let sender = thread::spawn(move || {
        writer.write_all(PREFIX).unwrap();
        writer.write_all(&random_bytes(1, UP_LEN)).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    sender.join().unwrap();
    got
}

fn check_exchange(p: &Running, origin: &Origin, got: &[u8], protocol: Protocol) {
    assert_eq!(digest(got), digest(&random_bytes(2, DOWN_LEN)), "what the client received");
    let mut sent = PREFIX.to_vec();
    sent.extend_from_slice(&random_bytes(1, UP_LEN));
    assert_eq!(digest(&origin.seen.wait(1)[0]), digest(&sent), "what the origin received");
    let r = &p.records(1)[0];
    assert_eq!((r.protocol, r.allowed, r.reason.as_deref()), (protocol, true, None), "{r:?}");
    assert_eq!((r.bytes_up, r.bytes_down), (sent.len() as u64, DOWN_LEN as u64));
}

#[test]
fn large_random_transfer_both_ways_through_connect() {
    let origin = exchange_origin();
    let p = allowing(&origin, Limits::default());
    let (s, head) = connect_tunnel(p.addr, &format!("origin.test:{}", origin.port()));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let got = exchange(s);
    check_exchange(&p, &origin, &got, Protocol::HttpConnect);
}

#[test]
fn large_random_transfer_both_ways_through_socks() {
    let origin = exchange_origin();
    let p = allowing(&origin, Limits::default());
    let mut s = client(p.addr);
    let port = origin.port().to_be_bytes();
    s.write_all(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port[0], port[1]]).unwrap();
    let mut replies = [0u8; 12];
    s.read_exact(&mut replies).unwrap();
    assert_eq!(replies, [5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let got = exchange(s);
    check_exchange(&p, &origin, &got, Protocol::Socks5);
}

#[test]
fn client_half_close_reaches_the_origin_which_still_answers() {
    // Reads until the client's end, then answers with how much it got.
    let origin = spawn_origin(|stream, seen| {
        stream.read_to_end(seen).unwrap();
        let answer = format!("after your end I got {} bytes", seen.len());
        stream.write_all(answer.repeat(5000).as_bytes()).unwrap();
    });
    let p = allowing(&origin, Limits::default());
    let (mut c, _) = connect_tunnel(p.addr, &format!("origin.test:{}", origin.port()));
    let sent = [PREFIX, &random_bytes(3, 300_000)].concat();
    c.write_all(&sent).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let got = read_all(&mut c);
    let answer = format!("after your end I got {} bytes", sent.len()).repeat(5000);
    assert_eq!(digest(&got), digest(answer.as_bytes()));
    let r = &p.records(1)[0];
    assert_eq!((r.bytes_up, r.bytes_down, r.reason.as_deref()), (sent.len() as u64, got.len() as u64, None));
}

#[test]
fn origin_half_close_reaches_the_client_which_still_sends() {
    // Answers the client's first line, ends its side, and keeps reading until the client's end.
    let origin = spawn_origin(|stream, seen| {
        let mut b = [0u8; 1];
        while !seen.ends_with(b"\n") {
            stream.read_exact(&mut b).unwrap();
            seen.push(b[0]);
        }
        stream.write_all(&random_bytes(4, 500_000)).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        stream.read_to_end(seen).unwrap();
    });
    let p = allowing(&origin, Limits::default());
    let (mut c, _) = connect_tunnel(p.addr, &format!("origin.test:{}", origin.port()));
    c.write_all(PREFIX).unwrap();
    let got = read_all(&mut c);
    assert_eq!(digest(&got), digest(&random_bytes(4, 500_000)), "the origin's bytes, then its end");
    let more = random_bytes(5, 400_000);
    c.write_all(&more).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let sent = [PREFIX, &more].concat();
    assert_eq!(digest(&origin.seen.wait(1)[0]), digest(&sent), "the client's bytes after the origin's end");
    let r = &p.records(1)[0];
    assert_eq!((r.bytes_up, r.bytes_down, r.reason.as_deref()), (sent.len() as u64, 500_000, None));
}

#[test]
fn traffic_keeps_a_tunnel_open_past_the_idle_timeout_and_silence_ends_it() {
    // Echoes what it reads, and never closes on its own.
    let origin = spawn_origin(|stream, seen| {
        let mut chunk = [0u8; 65536];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 || stream.write_all(&chunk[..n]).is_err() {
                break;
            }
            seen.extend_from_slice(&chunk[..n]);
        }
    });
    let idle = Duration::from_millis(400);
    let p = allowing(&origin, Limits { idle_timeout: idle, ..Limits::default() });
    let (mut c, _) = connect_tunnel(p.addr, &format!("origin.test:{}", origin.port()));
    let sent = [PREFIX, &random_bytes(6, 1_000_000)].concat();
    let mut writer = c.try_clone().unwrap();
    let sending = sent.clone();
    // Spread over about 1 s, more than twice the idle timeout: traffic keeps the tunnel open.
    let sender = thread::spawn(move || {
        for piece in sending.chunks(sending.len() / 10 + 1) {
            writer.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(100));
        }
    });
    let mut echoed = vec![0u8; sent.len()];
    c.read_exact(&mut echoed).unwrap();
    let silent_from = Instant::now();
    assert!(read_all(&mut c).is_empty(), "nothing more, then the end");
    let took = silent_from.elapsed();
    sender.join().unwrap();
    assert_eq!(digest(&echoed), digest(&sent));
    assert!(took >= idle - Duration::from_millis(50) && took < Duration::from_secs(3), "{took:?}");
    let r = &p.records(1)[0];
    assert!(r.reason.as_deref().unwrap().contains("without traffic"), "{r:?}");
    assert_eq!((r.bytes_up, r.bytes_down), (sent.len() as u64, sent.len() as u64));
}

#[test]
fn client_vanishing_mid_download_frees_its_connection() {
    let origin = http_origin();
    let limits = Limits { max_connections: 1, ..Limits::default() };
    let p = allowing(&origin, limits);
    let authority = format!("origin.test:{}", origin.port());
    let (mut c, _) = connect_tunnel(p.addr, &authority);
    write!(c, "GET /big/{} HTTP/1.1\r\nHost: {authority}\r\n\r\n", 1u64 << 32).unwrap();
    let mut first = vec![0u8; 1 << 20];
    c.read_exact(&mut first).unwrap();
    drop(c); // unread bytes pending: the client's kernel resets the connection
    let r = &p.records(1)[0];
    let reason = r.reason.as_deref().unwrap_or("");
    assert!(reason.starts_with("read: ") || reason.starts_with("write: "), "{r:?}");
    assert!(r.bytes_down >= 1 << 20 && r.bytes_down < 1 << 32, "{r:?}");
    // With one slot, the next request is served only if the vanished one gave its slot back.
    let start = Instant::now();
    loop {
        let response = forward_get(p.addr, &authority, "/after");
        if body_of(&response).starts_with("origin: GET /after") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "the slot was not released");
        thread::sleep(Duration::from_millis(50));
    }
}
