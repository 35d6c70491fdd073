//! Test helpers: origin servers on 127.0.0.1 ephemeral ports, a proxy on another, and clients.
//! Names resolve through a hosts-text resolver only, so no test can reach anything but loopback.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use palisade_policy::net_rules::Allowlist;
use palisade_proxy::{Config, Limits, Proxy, ProxyHandle, Record, Resolver};

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What an origin server received on each connection, once that connection ended.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<Vec<u8>>>>);

impl Seen {
    pub fn all(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `n` connections have ended (or panics after a while).
    pub fn wait(&self, n: usize) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(start.elapsed() < IO_TIMEOUT, "origin saw {} connections, expected {n}", all.len());
            thread::sleep(Duration::from_millis(10));
        }
    }
}

pub struct Origin {
    pub addr: SocketAddr,
    pub seen: Seen,
}

impl Origin {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// An HTTP origin: reads one request (head and Content-Length body), answers
/// `origin: <request line> host=<Host>` (or `n` bytes of 'x' for `GET /big/<n>`), then closes.
pub fn http_origin() -> Origin {
    spawn_origin(|stream, seen_bytes| {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    seen_bytes.extend_from_slice(&buf);
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let chunked = header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        while chunked && !buf[head_end..].ends_with(b"0\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        while buf.len() < head_end + length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        seen_bytes.extend_from_slice(&buf);
        let line = head.lines().next().unwrap_or("").to_string();
        let path = line.split(' ').nth(1).unwrap_or("");
        let _ = if let Some(n) = path.strip_prefix("/big/") {
            let n: usize = n.parse().unwrap_or(0);
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n");
            let block = vec![b'x'; 64 * 1024];
            let mut left = n;
            while left > 0 {
                let k = left.min(block.len());
                if stream.write_all(&block[..k]).is_err() {
                    break;
                }
                left -= k;
            }
            Ok(())
        } else {
            let body = format!("origin: {line} host={}\n", header(&head, "host").unwrap_or("-"));
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        };
    })
}

/// An origin that only records what it receives until the peer closes (or 10 s pass).
pub fn sink_origin() -> Origin {
    spawn_origin(|stream, seen_bytes| {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            seen_bytes.extend_from_slice(&chunk[..n]);
        }
    })
}

pub fn spawn_origin(serve: fn(&mut TcpStream, &mut Vec<u8>)) -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let record = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let record = record.clone();
            thread::spawn(move || {
                stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut bytes = Vec::new();
                serve(&mut stream, &mut bytes);
                record.0.lock().unwrap().push(bytes);
            });
        }
    });
    Origin { addr, seen }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub struct Running {
    pub handle: ProxyHandle,
    pub addr: SocketAddr,
}

impl Running {
    /// Waits for at least `n` records (connections end slightly after the client sees it).
    pub fn records(&self, n: usize) -> Vec<Record> {
        let start = Instant::now();
        let mut all = Vec::new();
        loop {
            all.extend(self.handle.take_records());
            if all.len() >= n {
                return all;
            }
            assert!(start.elapsed() < IO_TIMEOUT, "{} records, expected {n}: {all:?}", all.len());
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts a proxy on 127.0.0.1 with these entries; `hosts` is hosts-file text for the resolver.
pub fn proxy(allow: &[String], deny: &[String], hosts: &str, limits: Limits) -> Running {
    let allowlist = Allowlist::parse(allow, deny).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::new(allowlist);
    config.resolver = Resolver::from_hosts_text(hosts).unwrap();
    config.limits = limits;
    let handle = Proxy::start(config, vec![listener]).unwrap();
    Running { handle, addr }
}

pub fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Reads until the peer closes (or errors); returns what arrived.
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 16384];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    out
}

/// Reads an HTTP response head (through the blank line) byte by byte, leaving the rest unread.
pub fn read_head(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => out.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends a CONNECT and returns the stream and the response head.
pub fn connect_tunnel(proxy: SocketAddr, target: &str) -> (TcpStream, String) {
    let mut s = client(proxy);
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    (s, head)
}

/// A plain-HTTP request through the proxy (`GET http://{authority}{path}`); the whole response.
pub fn forward_get(proxy: SocketAddr, authority: &str, path: &str) -> Vec<u8> {
    let mut s = client(proxy);
    write!(s, "GET http://{authority}{path} HTTP/1.1\r\nHost: {authority}\r\n\r\n").unwrap();
    read_all(&mut s)
}

/// The body of a complete response (after the blank line).
pub fn body_of(response: &[u8]) -> String {
    let i = find(response, b"\r\n\r\n").map(|i| i + 4).unwrap_or(response.len());
    String::from_utf8_lossy(&response[i..]).into_owned()
}

pub fn curl(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "10"]).args(args);
    for var in
        ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"]
    {
        cmd.env_remove(var);
    }
    cmd.output().expect("curl is installed (the project's CI image has it)")
}

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}
