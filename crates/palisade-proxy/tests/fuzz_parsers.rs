//! Deterministic mutation fuzzing of every parser that reads client bytes: HTTP heads and
//! targets, chunked bodies, SOCKS5 greetings and requests, TLS ClientHellos, and the tunnel
//! inspector. Each must return (never panic, never loop) on any input. Runs in `cargo test`;
//! the seed is fixed so a failure reproduces.

use palisade_policy::net_rules::RequestHost;
use palisade_proxy::body::BodyFramer;
use palisade_proxy::head::{self, Framing};
use palisade_proxy::{inspect, socks, tls};

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] =
    &[0, 1, 3, 5, 0x16, 0x7f, 0x80, 0xff, b'\r', b'\n', b' ', b':', b'[', b']', b';', b'0', b'f'];

/// Applies 1-8 random edits: flip, set to an interesting byte, insert, delete, duplicate a slice,
/// truncate.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if at < v.len() => v[at] ^= 1 << rng.below(8),
            1 if at < v.len() => v[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => v.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if at < v.len() => {
                v.remove(at);
            }
            4 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(64)).min(v.len());
                let slice = v[start..end].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, slice);
            }
            _ => v.truncate(at),
        }
        v.truncate(64 * 1024);
    }
    v
}

fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    (0..rng.below(max)).map(|_| rng.next() as u8).collect()
}

const ROUNDS: usize = 30_000;

#[test]
fn http_heads_targets_and_framing() {
    let seeds: [&[u8]; 4] = [
        b"GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 3\r\n\r\nabc",
        b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
        b"POST http://a.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\nProxy-Connection: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ];
    let mut rng = Rng(0x5eed_0001);
    for i in 0..ROUNDS {
        let input = if i % 10 == 0 { random_bytes(&mut rng, 512) } else { mutate(&mut rng, seeds[i % seeds.len()]) };
        let max = 16 + rng.below(4096);
        if let Ok(Some(h)) = head::parse_head(&input, max) {
            assert!(h.len <= input.len() && h.len <= max);
            let _ = head::body_framing(&h);
            let _ = head::parse_authority(&h.target);
            if let Ok(t) = head::parse_absolute_http(&h.target) {
                let out = head::forwarded_head(&h, &t);
                assert!(out.ends_with(b"Connection: close\r\n\r\n"));
            }
            let host = RequestHost::Name("example.com".into());
            for v in h.values("host") {
                let _ = head::host_header_matches(v, &host);
            }
        }
        let _ = head::looks_like_http(&input);
    }
}

#[test]
fn chunked_bodies() {
    let seed = b"5;ext\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..ROUNDS {
        let input = mutate(&mut rng, seed);
        let mut framer = BodyFramer::new(Framing::Chunked);
        let mut pos = 0;
        while pos < input.len() && !framer.is_done() {
            let step = 1 + rng.below(32);
            let end = (pos + step).min(input.len());
            match framer.feed(&input[pos..end]) {
                Ok(n) => {
                    assert!(n <= end - pos);
                    if n < end - pos {
                        assert!(framer.is_done(), "a framer stops short only at the body's end");
                    }
                    pos += n;
                    if framer.is_done() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
}

#[test]
fn socks_messages() {
    let mut rng = Rng(0x5eed_0003);
    let seeds: [&[u8]; 4] = [
        &[5, 2, 0, 2],
        &[5, 1, 0, 3, 11, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'c', b'o', b'm', 1, 187],
        &[5, 1, 0, 1, 203, 0, 113, 1, 0, 80],
        &[5, 1, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187],
    ];
    for i in 0..ROUNDS {
        let input = mutate(&mut rng, seeds[i % seeds.len()]);
        if let socks::Parsed::Done(_, used) = socks::parse_greeting(&input) {
            assert!(used <= input.len() && used <= 257);
        }
        if let socks::Parsed::Done(r, used) = socks::parse_request(&input) {
            assert!(used <= input.len() && used <= 262);
            let _ = RequestHost::parse(&r.host);
        }
    }
}

#[test]
fn client_hellos_and_tunnel_inspection() {
    let mut rng = Rng(0x5eed_0004);
    let seeds = [
        tls::build_client_hello(Some("api.example.com"), 0, 16384),
        tls::build_client_hello(Some("api.example.com"), 300, 40),
        tls::build_client_hello(None, 10, 16384),
    ];
    let host = RequestHost::Name("api.example.com".into());
    for i in 0..ROUNDS {
        let input = if i % 10 == 0 { random_bytes(&mut rng, 600) } else { mutate(&mut rng, &seeds[i % seeds.len()]) };
        if let tls::Hello::Complete(Some(name)) = tls::client_hello(&input) {
            assert!(name.is_ascii() && !name.is_empty() && name.len() <= u16::MAX as usize);
        }
        let _ = inspect::inspect(&input, &host, 4096);
    }
    // A valid hello fed in growing prefixes is "need more" until complete, then the same answer.
    let whole = &seeds[1];
    for cut in 0..whole.len() {
        assert_eq!(tls::client_hello(&whole[..cut]), tls::Hello::NeedMore);
    }
    assert_eq!(tls::client_hello(whole), tls::Hello::Complete(Some("api.example.com".into())));
}
