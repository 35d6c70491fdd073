//! Unit tests of the protocol module (kept in their own file so every file stays short).

use super::*;

/// SplitMix64: a small deterministic generator for the property-style loops.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn string(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| match self.below(4) {
                0 => char::from_u32(0x20 + self.below(0x5f) as u32).unwrap(),
                1 => ['é', 'ß', '日', '本', '🦀', '\\', '"', ' '][self.below(8)],
                2 => char::from_u32(0x41 + self.below(26) as u32).unwrap(),
                _ => char::from_u32(0x61 + self.below(26) as u32).unwrap(),
            })
            .collect()
    }
}

fn sample_spawn() -> SpawnRequest {
    SpawnRequest {
        version: crate::SETUP_VERSION,
        program: "C:\\Program Files\\Git\\cmd\\git.exe".into(),
        args: vec!["commit".into(), "-m".into(), "ünïcødé \"quoted\" ".into(), String::new()],
        env: vec![("PATH".into(), "C:\\Windows\\System32;C:\\tools".into()), ("EMPTY".into(), String::new())],
        cwd: "C:\\Users\\me\\src\\project".into(),
        tty: Some(TtySize { cols: 120, rows: 40 }),
        network: false,
        keep_processes: false,
        private_desktop: true,
        capability_sids: vec![Sid::parse("S-1-5-21-1-2-3-4-5").unwrap()],
        fence_probe: Some(ProbeRequest { loopback_port: 50123, enforce: true, proxy_port: None }),
    }
}

fn every_message() -> Vec<Message> {
    let mut plain = sample_spawn();
    plain.tty = None;
    plain.args.clear();
    plain.env.clear();
    plain.capability_sids.clear();
    plain.network = true;
    plain.fence_probe = None;
    let mut reported = plain.clone();
    reported.fence_probe = Some(ProbeRequest { loopback_port: u16::MAX, enforce: false, proxy_port: None });
    vec![
        Message::Spawn(sample_spawn()),
        Message::Spawn(plain),
        Message::Spawn(reported),
        Message::StdinData(b"hello\r\n\0\xff".to_vec()),
        Message::StdinData(vec![7; MAX_DATA]),
        Message::StdinClose,
        Message::Resize(TtySize { cols: 1, rows: u16::MAX }),
        Message::Terminate,
        Message::Started { pid: 4242 },
        Message::Output { stream: Stream::Stdout, data: b"out".to_vec() },
        Message::Output { stream: Stream::Stderr, data: vec![0xff, 0, 0x1b] },
        Message::Exit { code: 0 },
        Message::Exit { code: 0xC000_013A },
        Message::Error { kind: ErrorKind::NotFound, message: "program `nope` not found".into() },
        Message::Error { kind: ErrorKind::Internal, message: String::new() },
        Message::FenceReport { outside: ProbeOutcome::Blocked, loopback: ProbeOutcome::Open, proxy: None },
        Message::FenceReport {
            outside: ProbeOutcome::NoRoute,
            loopback: ProbeOutcome::Failed(10055),
            proxy: Some(ProbeOutcome::Open),
        },
    ]
}

#[test]
fn every_message_round_trips() {
    for m in every_message() {
        let f = m.encode().unwrap();
        assert_eq!(&f[..4], b"PLSR");
        assert_eq!(u32::from_le_bytes(f[8..12].try_into().unwrap()) as usize, f.len() - HEADER_LEN);
        assert_eq!(decode_frame(&f).unwrap(), m, "{m:?}");
    }
    for k in ErrorKind::ALL {
        let m = Message::Error { kind: k, message: k.name().into() };
        assert_eq!(decode_frame(&m.encode().unwrap()).unwrap(), m);
    }
}

#[test]
fn header_layout_is_fixed() {
    let f = Message::Exit { code: 3 }.encode().unwrap();
    assert_eq!(f, [b'P', b'L', b'S', b'R', 3, 0, 0x83, 0, 4, 0, 0, 0, 3, 0, 0, 0]);
    let f = Message::Terminate.encode().unwrap();
    assert_eq!(f, [b'P', b'L', b'S', b'R', 3, 0, 0x05, 0, 0, 0, 0, 0]);
    let f = Message::FenceReport {
        outside: ProbeOutcome::Failed(0x0102_0304),
        loopback: ProbeOutcome::Blocked,
        proxy: None,
    }
    .encode()
    .unwrap();
    assert_eq!(f, [b'P', b'L', b'S', b'R', 3, 0, 0x85, 0, 7, 0, 0, 0, 4, 4, 3, 2, 1, 1, 0]);
    let f = Message::FenceReport {
        outside: ProbeOutcome::Blocked,
        loopback: ProbeOutcome::Blocked,
        proxy: Some(ProbeOutcome::Open),
    }
    .encode()
    .unwrap();
    assert_eq!(f, [b'P', b'L', b'S', b'R', 3, 0, 0x85, 0, 4, 0, 0, 0, 1, 1, 1, 2]);
}

#[test]
fn random_messages_round_trip() {
    let mut rng = Rng::new(7);
    for _ in 0..500 {
        let network = rng.below(2) == 1;
        let s = SpawnRequest {
            version: rng.next() as u32,
            program: format!("p{}", rng.string(20)),
            args: (0..rng.below(6)).map(|_| rng.string(30)).collect(),
            env: (0..rng.below(6))
                .map(|i| (format!("V{i}{}", rng.string(5).replace('=', "")), rng.string(30)))
                .collect(),
            cwd: format!("C:\\{}", rng.string(20)),
            tty: if rng.below(2) == 0 {
                None
            } else {
                Some(TtySize { cols: 1 + rng.below(500) as u16, rows: 1 + rng.below(200) as u16 })
            },
            network,
            keep_processes: rng.below(2) == 1,
            private_desktop: rng.below(2) == 1,
            capability_sids: (0..rng.below(3))
                .map(|i| Sid::parse(&format!("S-1-5-21-{}-{i}", rng.next() as u32)).unwrap())
                .collect(),
            fence_probe: match (network, rng.below(3)) {
                (true, 0) => None,
                (n, r) => {
                    let loopback_port = 1 + rng.below(65534) as u16;
                    Some(ProbeRequest {
                        loopback_port,
                        enforce: !n || r == 1,
                        // A proxy port only without network, never the probe's own port.
                        proxy_port: (!n && r == 2).then_some(loopback_port + 1),
                    })
                }
            },
        };
        let m = Message::Spawn(s);
        assert_eq!(decode_frame(&m.encode().unwrap()).unwrap(), m);
        let n = 1 + rng.below(300);
        let d = Message::Output { stream: Stream::Stderr, data: rng.bytes(n) };
        assert_eq!(decode_frame(&d.encode().unwrap()).unwrap(), d);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for m in every_message() {
        let f = m.encode().unwrap();
        for cut in 0..f.len() {
            let e = decode_frame(&f[..cut]).unwrap_err();
            assert!(matches!(e, DecodeError::Truncated { .. }), "{m:?} cut at {cut}: {e}");
            let mut r = FrameReader::new();
            r.push(&f[..cut]);
            assert_eq!(r.next_message(), Ok(None));
            if cut > 0 {
                assert!(matches!(r.finish(), Err(DecodeError::Truncated { .. })));
            }
        }
    }
}

#[test]
fn truncating_a_field_inside_the_payload_is_an_error() {
    // Shorten the payload and fix up the length: the decoder must notice the missing field.
    for m in every_message() {
        let f = m.encode().unwrap();
        for cut in HEADER_LEN..f.len() {
            let mut g = f[..cut].to_vec();
            let len = (cut - HEADER_LEN) as u32;
            g[8..12].copy_from_slice(&len.to_le_bytes());
            assert!(decode_frame(&g).is_err(), "{m:?} payload cut at {cut} decoded");
        }
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    let f = Message::Started { pid: 1 }.encode().unwrap();
    let mut g = f.clone();
    g.push(0);
    assert_eq!(decode_frame(&g), Err(DecodeError::TrailingBytes { message: "started", count: 1 }));
    // Inside the payload: claim one byte more than the fields use.
    let mut g = f.clone();
    g.push(0);
    g[8] += 1;
    assert_eq!(decode_frame(&g), Err(DecodeError::TrailingBytes { message: "started", count: 1 }));
}

#[test]
fn header_errors_are_typed() {
    let f = Message::Terminate.encode().unwrap();
    let mut g = f.clone();
    g[0] = b'X';
    assert!(matches!(decode_frame(&g), Err(DecodeError::BadMagic(_))));
    // Wrong magic is noticed from the first byte, before the header is complete.
    let mut r = FrameReader::new();
    r.push(b"G");
    assert!(matches!(r.next_message(), Err(DecodeError::BadMagic(_))));
    let mut g = f.clone();
    g[4] = 4;
    assert_eq!(decode_frame(&g), Err(DecodeError::UnsupportedVersion { found: 4 }));
    // Version 2 (before the proxy port) is refused too.
    let mut g = f.clone();
    g[4] = 2;
    assert_eq!(decode_frame(&g), Err(DecodeError::UnsupportedVersion { found: 2 }));
    let mut g = f.clone();
    g[6] = 0x42;
    assert_eq!(decode_frame(&g), Err(DecodeError::UnknownType(0x42)));
    let mut g = f.clone();
    g[7] = 1;
    assert_eq!(decode_frame(&g), Err(DecodeError::ReservedFlags(1)));
    let mut g = f.clone();
    g[8..12].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
    assert_eq!(decode_frame(&g), Err(DecodeError::Oversized { length: MAX_PAYLOAD + 1 }));
    let mut r = FrameReader::new();
    r.push(&g);
    assert_eq!(r.next_message(), Err(DecodeError::Oversized { length: MAX_PAYLOAD + 1 }));
    // The reader stays failed.
    r.push(&f);
    assert!(r.next_message().is_err());
    assert!(r.finish().is_err());
}

/// Builds a frame around a hand-written payload.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    f.push(kind);
    f.push(0);
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

fn spawn_payload(program: &[u8], argc: u32, tty_tag: u8, network: u8) -> Vec<u8> {
    let mut p = Vec::new();
    put_u32(&mut p, 1);
    put_bytes(&mut p, program);
    put_u32(&mut p, argc);
    put_u32(&mut p, 0);
    put_str(&mut p, "C:\\");
    p.push(tty_tag);
    p.extend_from_slice(&[network, 0, 0]);
    put_u32(&mut p, 0);
    // An enforcing probe of port 443, no proxy port.
    p.extend_from_slice(&[1, 0xbb, 0x01, 1, 0]);
    p
}

#[test]
fn payload_errors_are_typed() {
    assert!(decode_frame(&frame(1, &spawn_payload(b"git", 0, 0, 0))).is_ok());
    assert_eq!(
        decode_frame(&frame(1, &spawn_payload(b"g\xffit", 0, 0, 0))),
        Err(DecodeError::InvalidUtf8("spawn.program"))
    );
    assert_eq!(
        decode_frame(&frame(1, &spawn_payload(b"g\0it", 0, 0, 0))),
        Err(DecodeError::Invalid(Violation { field: "spawn.program", problem: Problem::Nul }))
    );
    assert_eq!(
        decode_frame(&frame(1, &spawn_payload(b"", 0, 0, 0))),
        Err(DecodeError::Invalid(Violation { field: "spawn.program", problem: Problem::Empty }))
    );
    assert_eq!(
        decode_frame(&frame(1, &spawn_payload(b"git", u32::MAX, 0, 0))),
        Err(DecodeError::Invalid(Violation {
            field: "spawn.args",
            problem: Problem::TooMany { count: u32::MAX as usize, max: MAX_ARGS }
        }))
    );
    assert_eq!(
        decode_frame(&frame(1, &spawn_payload(b"git", 0, 2, 0))),
        Err(DecodeError::InvalidTag { field: "spawn.tty", value: 2 })
    );
    assert_eq!(
        decode_frame(&frame(1, &spawn_payload(b"git", 0, 0, 2))),
        Err(DecodeError::InvalidTag { field: "spawn.network", value: 2 })
    );
    // A long string is refused from its length, before its bytes arrive.
    let mut p = Vec::new();
    put_u32(&mut p, 1);
    put_u32(&mut p, (MAX_STRING + 1) as u32);
    assert_eq!(
        decode_frame(&frame(1, &p)),
        Err(DecodeError::Invalid(Violation {
            field: "spawn.program",
            problem: Problem::TooLong { len: MAX_STRING + 1, max: MAX_STRING }
        }))
    );
    assert_eq!(
        decode_frame(&frame(0x82, &[3, 1, 0, 0, 0, b'x'])),
        Err(DecodeError::InvalidTag { field: "output.stream", value: 3 })
    );
    assert_eq!(
        decode_frame(&frame(0x84, &[0, 0, 0, 0, 0])),
        Err(DecodeError::InvalidTag { field: "error.kind", value: 0 })
    );
    assert_eq!(
        decode_frame(&frame(0x84, &[1, 2, 0, 0, 0, b'a', b'\n'])),
        Err(DecodeError::Invalid(Violation { field: "error.message", problem: Problem::LineBreak }))
    );
    assert_eq!(
        decode_frame(&frame(0x02, &[0, 0, 0, 0])),
        Err(DecodeError::Invalid(Violation { field: "data", problem: Problem::Empty }))
    );
    assert_eq!(
        decode_frame(&frame(0x04, &[0, 0, 5, 0])),
        Err(DecodeError::Invalid(Violation { field: "resize", problem: Problem::ZeroSize }))
    );
    let mut p = spawn_payload(b"git", 0, 0, 0);
    p.truncate(p.len() - 5);
    let n = p.len();
    p[n - 4..].copy_from_slice(&1u32.to_le_bytes());
    put_str(&mut p, "S-1-5-18)(A;;GA;;;WD");
    assert_eq!(
        decode_frame(&frame(1, &p)),
        Err(DecodeError::Invalid(Violation { field: "spawn.capability_sids", problem: Problem::NotASid }))
    );
}

#[test]
fn encoding_refuses_what_decoding_would() {
    let mut s = sample_spawn();
    s.env.push(("A=B".into(), "x".into()));
    assert!(matches!(Message::Spawn(s).encode(), Err(EncodeError::Invalid(_))));
    let mut s = sample_spawn();
    s.args.push("a\0b".into());
    assert!(Message::Spawn(s).encode().is_err());
    let mut s = sample_spawn();
    s.args = vec![String::new(); MAX_ARGS + 1];
    assert!(Message::Spawn(s).encode().is_err());
    assert!(Message::StdinData(vec![0; MAX_DATA + 1]).encode().is_err());
    assert!(Message::Output { stream: Stream::Stdout, data: vec![] }.encode().is_err());
    // Individually legal strings that add up to more than a frame.
    let mut s = sample_spawn();
    s.args = vec!["x".repeat(MAX_STRING); 40];
    assert!(matches!(Message::Spawn(s).encode(), Err(EncodeError::TooLarge { .. })));
    let mut out = vec![9];
    assert!(Message::StdinData(vec![]).encode_into(&mut out).is_err());
    assert_eq!(out, vec![9]);
}

#[test]
fn data_chunks_split_large_writes() {
    let data = vec![1u8; MAX_DATA * 2 + 5];
    let chunks = data_chunks(Some(Stream::Stdout), &data);
    assert_eq!(chunks.len(), 3);
    assert!(chunks.iter().all(|c| c.encode().is_ok()));
    assert!(data_chunks(None, &[]).is_empty());
    assert!(matches!(data_chunks(None, b"x")[0], Message::StdinData(_)));
}

#[test]
fn frame_reader_accepts_any_chunking() {
    let msgs = every_message();
    let stream: Vec<u8> = msgs.iter().flat_map(|m| m.encode().unwrap()).collect();
    let mut rng = Rng::new(99);
    for round in 0..200 {
        let mut r = FrameReader::new();
        let mut got = Vec::new();
        let mut i = 0;
        while i < stream.len() {
            let n = if round == 0 { 1 } else { 1 + rng.below(5000) };
            let end = (i + n).min(stream.len());
            r.push(&stream[i..end]);
            i = end;
            while let Some(m) = r.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, msgs);
        assert_eq!(r.buffered(), 0);
        assert!(r.finish().is_ok());
    }
}

#[test]
fn frame_reader_enforces_the_sender() {
    let mut r = FrameReader::from(Sender::Runner);
    r.push(&Message::Exit { code: 1 }.encode().unwrap());
    assert_eq!(r.next_message(), Ok(Some(Message::Exit { code: 1 })));
    r.push(&Message::Terminate.encode().unwrap());
    assert_eq!(r.next_message(), Err(DecodeError::WrongSender("terminate")));
    let mut r = FrameReader::from(Sender::Cli);
    r.push(&Message::Started { pid: 1 }.encode().unwrap()[..HEADER_LEN]);
    assert_eq!(r.next_message(), Err(DecodeError::WrongSender("started")));
}

#[test]
fn random_mutations_never_panic_and_errors_are_one_line() {
    let base: Vec<Vec<u8>> = every_message().iter().map(|m| m.encode().unwrap()).collect();
    let mut rng = Rng::new(0x5eed);
    let mut decoded = 0;
    for case in 0..20_000 {
        let mut f = base[case % base.len()].clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 if !f.is_empty() => {
                    let i = rng.below(f.len());
                    f[i] = rng.next() as u8;
                }
                1 if !f.is_empty() => {
                    let i = rng.below(f.len());
                    f[i] ^= 1 << rng.below(8);
                }
                2 => {
                    let i = rng.below(f.len() + 1);
                    f.insert(i, rng.next() as u8);
                }
                _ if !f.is_empty() => {
                    let i = rng.below(f.len());
                    f.remove(i);
                }
                _ => {}
            }
        }
        match decode_frame(&f) {
            Ok(m) => {
                decoded += 1;
                assert_eq!(m.encode().unwrap(), f);
            }
            Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
        }
        fuzz_one(&f);
    }
    // Some mutations (e.g. inside data bytes) keep frames valid; most do not.
    assert!(decoded > 0 && decoded < 20_000);
}

/// The fuzz harness as a bounded, deterministic test: random inputs of every shape, plus
/// inputs that start with a valid header so the payload decoder is reached.
#[test]
fn fuzz_harness_random_inputs() {
    let mut rng = Rng::new(0xf022);
    for case in 0..30_000 {
        let n = rng.below(64);
        let mut data = rng.bytes(n);
        if case % 2 == 0 {
            let t = MessageType::ALL[rng.below(MessageType::ALL.len())] as u8;
            let mut f = frame(t, &data);
            if case % 6 == 0 {
                f[8..12].copy_from_slice(&(rng.next() as u32).to_le_bytes());
            }
            data = f;
        }
        fuzz_one(&data);
    }
}

/// Writes one valid frame per sample message into `$PALISADE_FUZZ_CORPUS` (a seed corpus
/// for the cargo-fuzz target in `fuzz/`). Ignored: run it on purpose.
#[test]
#[ignore]
fn write_fuzz_corpus() {
    let dir = std::env::var_os("PALISADE_FUZZ_CORPUS").expect("set PALISADE_FUZZ_CORPUS to a folder");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, m) in every_message().iter().enumerate() {
        let name = format!("{i:02}-{}", m.message_type().name());
        std::fs::write(std::path::Path::new(&dir).join(name), m.encode().unwrap()).unwrap();
    }
}

/// The fence probe's rules and every malformed encoding of it.
#[test]
fn fence_probe_fields_are_validated() {
    let payload = |network: u8, probe: &[u8]| {
        let mut p = spawn_payload(b"git", 0, 0, network);
        p.truncate(p.len() - 5);
        p.extend_from_slice(probe);
        frame(1, &p)
    };
    let probe = |f: &[u8]| match decode_frame(f) {
        Ok(Message::Spawn(s)) => Ok(s.fence_probe),
        Ok(m) => panic!("{m:?}"),
        Err(e) => Err(e),
    };
    let invalid = |problem| Err(DecodeError::Invalid(Violation { field: "spawn.fence_probe", problem }));
    let req = |loopback_port, enforce, proxy_port| Ok(Some(ProbeRequest { loopback_port, enforce, proxy_port }));
    assert_eq!(probe(&payload(0, &[1, 0x39, 0x30, 1, 0])), req(12345, true, None));
    assert_eq!(probe(&payload(1, &[0])), Ok(None));
    assert_eq!(probe(&payload(1, &[1, 1, 0, 0, 0])), req(1, false, None));
    // network = allow: the proxy's port, only without network, not 0, not the probe's port.
    assert_eq!(probe(&payload(0, &[1, 0x39, 0x30, 1, 1, 0xce, 0xb8])), req(12345, true, Some(47310)));
    assert_eq!(probe(&payload(1, &[1, 0x39, 0x30, 1, 1, 0xce, 0xb8])), invalid(Problem::ProxyWithNetwork));
    assert_eq!(probe(&payload(0, &[1, 0x39, 0x30, 1, 1, 0, 0])), invalid(Problem::ZeroPort));
    assert_eq!(probe(&payload(0, &[1, 0x39, 0x30, 1, 1, 0x39, 0x30])), invalid(Problem::ProxyIsProbePort));
    // Report-only is still refused without network, proxy port or not.
    assert_eq!(probe(&payload(0, &[1, 0x39, 0x30, 0, 1, 0xce, 0xb8])), invalid(Problem::ProbeNotEnforced));
    assert_eq!(
        probe(&payload(0, &[1, 0x39, 0x30, 1, 2, 0xce, 0xb8])),
        Err(DecodeError::InvalidTag { field: "spawn.fence_probe.proxy_port", value: 2 })
    );
    assert!(matches!(probe(&payload(0, &[1, 0x39, 0x30, 1, 1, 0xce])), Err(DecodeError::Truncated { .. })));
    // No network: the probe is required, and enforcing.
    assert_eq!(probe(&payload(0, &[0])), invalid(Problem::ProbeMissing));
    assert_eq!(probe(&payload(0, &[1, 1, 0, 0, 0])), invalid(Problem::ProbeNotEnforced));
    assert_eq!(probe(&payload(1, &[1, 0, 0, 1, 0])), invalid(Problem::ZeroPort));
    assert_eq!(
        probe(&payload(0, &[2, 1, 0, 1])),
        Err(DecodeError::InvalidTag { field: "spawn.fence_probe", value: 2 })
    );
    assert_eq!(
        probe(&payload(0, &[1, 1, 0, 2])),
        Err(DecodeError::InvalidTag { field: "spawn.fence_probe", value: 2 })
    );
    assert!(matches!(probe(&payload(0, &[1, 1, 0])), Err(DecodeError::Truncated { .. })));
    assert!(matches!(probe(&payload(0, &[1, 1, 0, 1])), Err(DecodeError::Truncated { .. })));
    assert!(matches!(probe(&payload(0, &[])), Err(DecodeError::Truncated { .. })));
    assert!(matches!(probe(&payload(0, &[1, 1, 0, 1, 0, 0])), Err(DecodeError::TrailingBytes { .. })));
    // The encoder refuses the same.
    let mut s = sample_spawn();
    s.fence_probe = None;
    assert!(matches!(Message::Spawn(s.clone()).encode(), Err(EncodeError::Invalid(_))));
    s.fence_probe = Some(ProbeRequest { loopback_port: 1, enforce: false, proxy_port: None });
    assert!(matches!(Message::Spawn(s.clone()).encode(), Err(EncodeError::Invalid(_))));
    s.fence_probe = Some(ProbeRequest { loopback_port: 1, enforce: true, proxy_port: Some(1) });
    assert!(matches!(Message::Spawn(s.clone()).encode(), Err(EncodeError::Invalid(_))));
    s.fence_probe = Some(ProbeRequest { loopback_port: 1, enforce: true, proxy_port: Some(2) });
    assert!(Message::Spawn(s.clone()).encode().is_ok());
    s.network = true;
    assert!(matches!(Message::Spawn(s.clone()).encode(), Err(EncodeError::Invalid(_))));
    s.fence_probe = Some(ProbeRequest { loopback_port: 1, enforce: false, proxy_port: None });
    assert!(Message::Spawn(s).encode().is_ok());
    // The report's outcomes.
    assert_eq!(
        decode_frame(&frame(0x85, &[5, 1])),
        Err(DecodeError::InvalidTag { field: "fence-report.outside", value: 5 })
    );
    assert_eq!(
        decode_frame(&frame(0x85, &[1, 0])),
        Err(DecodeError::InvalidTag { field: "fence-report.loopback", value: 0 })
    );
    assert!(matches!(decode_frame(&frame(0x85, &[1, 4, 1, 0])), Err(DecodeError::Truncated { .. })));
    assert!(matches!(decode_frame(&frame(0x85, &[1, 1])), Err(DecodeError::Truncated { .. })));
    assert!(matches!(decode_frame(&frame(0x85, &[1, 1, 1])), Err(DecodeError::Truncated { .. })));
    assert!(matches!(decode_frame(&frame(0x85, &[1, 1, 0, 0])), Err(DecodeError::TrailingBytes { .. })));
    assert!(matches!(decode_frame(&frame(0x85, &[1, 1, 1, 2, 0])), Err(DecodeError::TrailingBytes { .. })));
    assert_eq!(
        decode_frame(&frame(0x85, &[1, 1, 3])),
        Err(DecodeError::InvalidTag { field: "fence-report.proxy", value: 3 })
    );
    // A version-1 frame is refused as such.
    let mut f = Message::Terminate.encode().unwrap();
    f[4] = 1;
    assert_eq!(decode_frame(&f), Err(DecodeError::UnsupportedVersion { found: 1 }));
}

#[test]
fn conversation_order_runner_side() {
    let spawn = Message::Spawn(sample_spawn());
    let mut c = Conversation::runner();
    assert_eq!(c.receive(&Message::StdinClose).unwrap_err().why, "arrived before spawn");
    c.receive(&spawn).unwrap();
    assert_eq!(c.receive(&spawn).unwrap_err().why, "was sent twice");
    c.receive(&Message::StdinData(b"x".to_vec())).unwrap();
    c.receive(&Message::Resize(TtySize { cols: 80, rows: 24 })).unwrap();
    c.receive(&Message::StdinClose).unwrap();
    assert_eq!(c.receive(&Message::StdinData(b"x".to_vec())).unwrap_err().why, "arrived after stdin-close");
    c.receive(&Message::Terminate).unwrap();
    assert_eq!(c.receive(&Message::Exit { code: 0 }).unwrap_err().why, "comes from the wrong side");
}

#[test]
fn conversation_order_cli_side() {
    let mut c = Conversation::cli();
    assert!(c.receive(&Message::Output { stream: Stream::Stdout, data: b"x".to_vec() }).is_err());
    let report = Message::FenceReport { outside: ProbeOutcome::Blocked, loopback: ProbeOutcome::Blocked, proxy: None };
    assert!(!c.fence_reported());
    c.receive(&report).unwrap();
    assert!(c.fence_reported());
    assert_eq!(c.receive(&report).unwrap_err().why, "was sent twice");
    c.receive(&Message::Started { pid: 9 }).unwrap();
    c.receive(&Message::Output { stream: Stream::Stdout, data: b"x".to_vec() }).unwrap();
    assert!(c.receive(&Message::Started { pid: 9 }).is_err());
    let mut late = Conversation::cli();
    late.receive(&Message::Started { pid: 9 }).unwrap();
    assert_eq!(late.receive(&report).unwrap_err().why, "arrived after started");
    assert!(Conversation::runner().receive(&report).is_err());
    c.receive(&Message::Exit { code: 0 }).unwrap();
    assert!(c.is_ended());
    assert_eq!(c.receive(&Message::Exit { code: 0 }).unwrap_err().why, "arrived after the conversation ended");
    // An error may end the conversation before anything started.
    let mut c = Conversation::cli();
    c.receive(&Message::Error { kind: ErrorKind::NotFound, message: "x".into() }).unwrap();
    assert!(c.is_ended());
}

#[test]
fn error_kinds_map_to_exit_statuses() {
    assert_eq!(ErrorKind::NotFound.exit_status(), 127);
    assert_eq!(ErrorKind::NotExecutable.exit_status(), 126);
    assert_eq!(ErrorKind::Token.exit_status(), 125);
    for k in ErrorKind::ALL {
        assert_eq!(ErrorKind::from_byte(k as u8), Some(k));
    }
    assert_eq!(ErrorKind::FenceOpen.exit_status(), 125);
    assert_eq!(ErrorKind::from_byte(0), None);
    assert_eq!(ErrorKind::from_byte(12), None);
}
