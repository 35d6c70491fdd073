//! Measures what the proxy adds: per-connection latency of a small request and throughput of a
//! large download, through the proxy versus straight to an origin on loopback.
//!
//! `cargo run --release -p palisade-proxy --example proxy_bench -- [--requests N] [--megabytes M]
//! [--rounds R]`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use palisade_policy::net_rules::Allowlist;
use palisade_proxy::{Config, Proxy, Resolver};

fn origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Answers one request: `GET /big/<n>` with n bytes, anything else with a short body.
fn serve(mut s: TcpStream) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
    let n: usize =
        line.split(' ').nth(1).and_then(|p| p.strip_prefix("/big/")).and_then(|n| n.parse().ok()).unwrap_or(2);
    let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n");
    let block = vec![b'x'; 256 * 1024];
    let mut left = n;
    while left > 0 {
        let k = left.min(block.len());
        if s.write_all(&block[..k]).is_err() {
            return;
        }
        left -= k;
    }
}

enum Route {
    Direct,
    Forward,
    Connect,
}

/// One request for `path`; returns the bytes of the response.
fn fetch(route: &Route, origin: SocketAddr, proxy: SocketAddr, path: &str) -> usize {
    let host = format!("bench.test:{}", origin.port());
    let mut s = match route {
        Route::Direct => TcpStream::connect(origin).unwrap(),
        _ => TcpStream::connect(proxy).unwrap(),
    };
    s.set_nodelay(true).unwrap();
    match route {
        Route::Direct => write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap(),
        Route::Forward => write!(s, "GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap(),
        Route::Connect => {
            write!(s, "CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).unwrap();
                head.push(b[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
            write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        }
    }
    let mut total = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Median, minimum and maximum.
fn summary(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

fn main() {
    let mut requests = 300usize;
    let mut megabytes = 256usize;
    let mut rounds = 3usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1).and_then(|v| v.parse::<usize>().ok())) {
            ("--requests", Some(n)) => requests = n.max(1),
            ("--megabytes", Some(n)) => megabytes = n.max(1),
            ("--rounds", Some(n)) => rounds = n.max(1),
            _ => {
                eprintln!("usage: proxy_bench [--requests N] [--megabytes M] [--rounds R]");
                std::process::exit(2);
            }
        }
    }
    let origin = origin();
    let port = origin.port();
    let allowlist =
        Allowlist::parse(&[format!("bench.test:{port}"), format!("127.0.0.1:{port}")], &[] as &[String]).unwrap();
    let mut config = Config::new(allowlist);
    config.resolver = Resolver::from_hosts_text("127.0.0.1 bench.test\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap();
    let handle = Proxy::start(config, vec![listener]).unwrap();

    println!("latency of one small request on a new connection ({requests} each):");
    let mut direct_p50 = 0.0;
    for (name, route) in [("direct", Route::Direct), ("forward", Route::Forward), ("connect", Route::Connect)] {
        fetch(&route, origin, proxy, "/"); // warm up
        let mut times: Vec<Duration> = (0..requests)
            .map(|_| {
                let t = Instant::now();
                fetch(&route, origin, proxy, "/");
                t.elapsed()
            })
            .collect();
        times.sort();
        let mean = times.iter().sum::<Duration>().as_secs_f64() / requests as f64 * 1e6;
        let p50 = percentile(&times, 0.5).as_secs_f64() * 1e6;
        if matches!(route, Route::Direct) {
            direct_p50 = p50;
        }
        println!(
            "  {name:8} mean {mean:8.1} us  p50 {p50:8.1} us  p99 {:8.1} us  added at p50 {:8.1} us",
            percentile(&times, 0.99).as_secs_f64() * 1e6,
            p50 - direct_p50
        );
    }

    // Rounds of direct, CONNECT and forwarded downloads back to back, so a load that comes and
    // goes on a shared machine hits the three alike; each route's median and spread are shown,
    // and the median of each round's ratio to that round's direct download.
    let bytes = megabytes * 1024 * 1024;
    println!("download of {megabytes} MiB, {rounds} rounds (median, min-max):");
    let routes = [("direct", Route::Direct), ("connect", Route::Connect), ("forward", Route::Forward)];
    let mut speeds = vec![Vec::new(); routes.len()];
    let mut ratios = vec![Vec::new(); routes.len()];
    for _ in 0..rounds {
        for (i, (name, route)) in routes.iter().enumerate() {
            let t = Instant::now();
            let got = fetch(route, origin, proxy, &format!("/big/{bytes}"));
            let secs = t.elapsed().as_secs_f64();
            assert!(got > bytes, "short download via {name}: {got}");
            speeds[i].push(megabytes as f64 / secs);
        }
        for i in 0..routes.len() {
            let ratio = speeds[i].last().unwrap() / speeds[0].last().unwrap();
            ratios[i].push(ratio);
        }
    }
    for (i, (name, _)) in routes.iter().enumerate() {
        let (median, min, max) = summary(&mut speeds[i]);
        let (ratio, ratio_min, ratio_max) = summary(&mut ratios[i]);
        println!(
            "  {name:8} {median:8.1} MiB/s ({min:.0}-{max:.0})  of direct {:4.0}% ({:.0}-{:.0}%)",
            ratio * 100.0,
            ratio_min * 100.0,
            ratio_max * 100.0
        );
    }
    let records = handle.shutdown();
    let refused = records.iter().filter(|r| !r.allowed).count();
    println!("proxy records: {} ({refused} refused)", records.len());
}
