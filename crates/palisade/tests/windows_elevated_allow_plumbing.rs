//! `network = allow` in the elevated Windows mode: the plumbing Wine can run (never run on real
//! Windows yet). Through the library's test-only entry (`elevated_sandbox_for_tests`) the runner
//! runs as the caller, so nothing here is fenced (that is `windows_elevated_enforcement.rs`, on
//! real Windows); checked here: the sandbox's proxy listens on the port the setup marker lists,
//! the command's proxy variables carry that port and a per-sandbox secret (replacing the
//! caller's), a client with the secret is tunnelled to an allowed address (seen at the origin),
//! another local process without it gets 407 and reaches nothing, a name that leads to one of
//! this host's own addresses is refused unless that address is allowed, and the refusals when no
//! port is free or the marker lists none.
#![cfg(windows)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use palisade::__private::{elevated_sandbox_for_tests, elevated_sandbox_with_hosts_for_tests, ElevatedTestSeam};
use palisade::{Network, Policy, Sandbox, Stdio};
use palisade_policy::net_rules::Allowlist;
use palisade_windows_elevated::setup_plan::marker_contents;
use palisade_windows_elevated::SETUP_VERSION;

static SERIAL: Mutex<()> = Mutex::new(());

/// The variable that turns this test binary into the command the tests run (see `helper`).
const HELPER: &str = "PALISADE_ALLOW_TEST_HELPER";

/// Reads an HTTP response head (through the blank line).
fn read_head(s: &mut TcpStream) -> String {
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

/// Not a test: with `PALISADE_ALLOW_TEST_HELPER=proxy-connect:HOST:PORT` this binary prints its
/// `http_proxy` and `ALL_PROXY`, opens a tunnel to HOST:PORT through the proxy `http_proxy`
/// names (its credentials included), prints the response's first line and, on 200, sends an
/// SSH-style banner (which the proxy passes as opaque). Exits 0 on 200, 3 otherwise.
#[test]
#[ignore = "not a test: the command the tests run (with --ignored)"]
fn helper() {
    let Ok(mode) = std::env::var(HELPER) else { return };
    let target = mode.strip_prefix("proxy-connect:").expect("proxy-connect:HOST:PORT");
    let proxy = std::env::var("http_proxy").expect("http_proxy is set");
    println!("http_proxy={proxy}");
    println!("ALL_PROXY={}", std::env::var("ALL_PROXY").unwrap_or_default());
    let rest = proxy.strip_prefix("http://").expect("an http:// proxy URL");
    let (userinfo, address) = rest.rsplit_once('@').expect("credentials in the proxy URL");
    let mut s = TcpStream::connect(address).expect("the proxy is listening");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = palisade_proxy::auth::base64(userinfo.as_bytes());
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    println!("{}", head.lines().next().unwrap_or(""));
    if head.starts_with("HTTP/1.1 200") {
        s.write_all(b"SSH-2.0-palisade-test\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        std::process::exit(0);
    }
    std::process::exit(3);
}

fn windows_path(p: &str) -> PathBuf {
    match p.strip_prefix('/') {
        Some(rest) => PathBuf::from(format!("Z:\\{}", rest.replace('/', "\\"))),
        None => PathBuf::from(p),
    }
}

struct Setup {
    ws: tempfile::TempDir,
    program_data: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Setup {
    fn new(proxy_ports: &[u16]) -> Setup {
        let t = |p: &str| tempfile::Builder::new().prefix(p).tempdir().unwrap();
        let s = Setup {
            ws: t("palisade-allow-ws-"),
            program_data: t("palisade-allow-pd-"),
            home: t("palisade-allow-home-"),
        };
        std::fs::write(s.program_data.path().join("setup.json"), marker_contents(SETUP_VERSION, proxy_ports)).unwrap();
        s
    }

    fn sandbox(&self, allow: &[String]) -> Result<Sandbox, palisade::Error> {
        elevated_sandbox_for_tests(self.policy(allow), &self.seam())
    }

    /// A sandbox whose proxy resolves names from `hosts` (hosts-file lines) only.
    fn sandbox_with_hosts(&self, allow: &[String], hosts: &str) -> Result<Sandbox, palisade::Error> {
        let file = self.program_data.path().join("hosts");
        std::fs::write(&file, hosts).unwrap();
        elevated_sandbox_with_hosts_for_tests(self.policy(allow), &self.seam(), Some(&file))
    }

    fn policy(&self, allow: &[String]) -> Policy {
        let mut p = Policy::new(self.ws.path(), Some(self.home.path()));
        p.network = Network::Allow(Allowlist::parse(allow, &[] as &[String]).unwrap());
        p
    }

    fn seam(&self) -> ElevatedTestSeam {
        ElevatedTestSeam {
            program_data: self.program_data.path().to_path_buf(),
            runner: windows_path(env!("CARGO_BIN_EXE_palisade-runner")),
            group_sid: None,
        }
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn me() -> String {
    std::env::current_exe().unwrap().display().to_string()
}

fn run_helper(sb: &Sandbox, target: &str) -> (Option<i32>, String, String) {
    let (code, stdout, stderr, _) = run_helper_recorded(sb, target);
    (code, stdout, stderr)
}

/// [`run_helper`], with the command's connections as the proxy recorded them.
fn run_helper_recorded(sb: &Sandbox, target: &str) -> (Option<i32>, String, String, Vec<palisade::NetworkRecord>) {
    let out = sb
        .command(me())
        .args(["--exact", "helper", "--ignored", "--nocapture", "--test-threads=1"])
        .env(HELPER, format!("proxy-connect:{target}"))
        .env("HTTP_PROXY", "http://corp.example:8080")
        .env("no_proxy", "*")
        .stdin(Stdio::Null)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).replace("\r\n", "\n");
    (out.status.code(), text(&out.stdout), text(&out.stderr), out.network)
}

/// The secret in the `http_proxy` line the helper printed.
fn secret_in(stdout: &str, port: u16) -> String {
    // (libtest writes "test helper ... " before the helper's first line.)
    let url = stdout
        .split("http_proxy=")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no http_proxy line: {stdout}"));
    url.strip_prefix("http://palisade:")
        .and_then(|r| r.strip_suffix(&format!("@127.0.0.1:{port}")))
        .unwrap_or_else(|| panic!("http_proxy is {url:?}"))
        .to_string()
}

/// Waits up to 10 s for one connection on `origin`; what it sent until it closed.
fn origin_received(origin: &TcpListener) -> Option<Vec<u8>> {
    origin.set_nonblocking(true).unwrap();
    let start = Instant::now();
    loop {
        match origin.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got);
                return Some(got);
            }
            Err(_) if start.elapsed() < Duration::from_secs(10) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

#[test]
fn allow_serves_the_command_through_the_sandbox_proxy_with_its_secret() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let origin = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin_port = origin.local_addr().unwrap().port();
    let port = free_port();
    let s = Setup::new(&[port]);
    let sb = s.sandbox(&[format!("127.0.0.1:{origin_port}")]).unwrap_or_else(|e| panic!("sandbox: {e}"));
    assert!(sb.enforcement().layers.iter().any(|l| l.name == "network" && l.detail.contains("PalisadeProxied")));

    let (code, stdout, stderr, records) = run_helper_recorded(&sb, &format!("127.0.0.1:{origin_port}"));
    assert_eq!(code, Some(0), "stdout {stdout} stderr {stderr}");
    assert!(stdout.contains("HTTP/1.1 200 "), "{stdout}");
    // The caller's proxy variable is replaced (Windows names have no case), with a secret.
    let secret = secret_in(&stdout, port);
    assert!(secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret:?}");
    // The command's own connection comes back with it, allowed, its bytes counted.
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert!(r.allowed && r.host == "127.0.0.1" && r.port == origin_port && r.bytes_up > 0, "{r:?}");
    assert!(stdout.contains(&format!("ALL_PROXY=socks5h://palisade:{secret}@127.0.0.1:{port}")), "{stdout}");
    let got = origin_received(&origin).expect("the origin saw the tunnel");
    assert!(String::from_utf8_lossy(&got).contains("SSH-2.0-palisade-test"), "{got:?}");

    // Another local process, without the secret: refused, and the origin sees nothing.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\nHost: 127.0.0.1:{origin_port}\r\n\r\n").unwrap();
    c.write_all(b"SSH-2.0-intruder\r\n").unwrap();
    let head = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
    origin.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(origin.accept().is_err(), "a client without the secret reached the origin");

    // The first command's secret ended with it: a process holding on to it gets 407.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = palisade_proxy::auth::base64(format!("palisade:{secret}").as_bytes());
    write!(c, "CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n").unwrap();
    let head = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 407 "), "an ended command's secret still works: {head}");

    // A destination outside the allowlist, from a second command with a secret of its own: 403,
    // and the refusal is that command's record (the first command's are not repeated).
    let refused_port = free_port();
    let (code, stdout, _, records) = run_helper_recorded(&sb, &format!("127.0.0.1:{refused_port}"));
    assert_eq!(code, Some(3), "{stdout}");
    assert!(stdout.contains("HTTP/1.1 403 "), "{stdout}");
    assert_ne!(secret_in(&stdout, port), secret, "two commands share a proxy secret");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(!records[0].allowed && records[0].port == refused_port, "{records:?}");
}

/// A name is checked against this host's own addresses (listed with GetAdaptersAddresses): one
/// that leads to an address of this host would reach its services listening on every address.
#[test]
fn allow_refuses_a_name_that_leads_to_this_hosts_own_address() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Wine's GetAdaptersAddresses fails while other Wine processes share the prefix, and the
    // library then lists no address (see network.rs): the Windows workflow runs this test.
    if let Some(v) = palisade::__private::wine_version() {
        eprintln!(
            "NOT RUN under Wine {v}: its GetAdaptersAddresses is unreliable here; the Windows workflow runs this test"
        );
        return;
    }
    let own = if_addrs::get_if_addrs()
        .expect("listing this host's addresses")
        .into_iter()
        .map(|i| i.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .expect("this machine has an IPv4 address besides loopback (every CI machine and this dev machine do)");
    let origin = TcpListener::bind((own, 0)).unwrap();
    let origin_port = origin.local_addr().unwrap().port();
    let port = free_port();
    let s = Setup::new(&[port]);
    let hosts = format!("{own} self.test\n");
    let name = format!("self.test:{origin_port}");

    let sb = s.sandbox_with_hosts(std::slice::from_ref(&name), &hosts).unwrap_or_else(|e| panic!("sandbox: {e}"));
    let (code, stdout, _) = run_helper(&sb, &name);
    assert_eq!(code, Some(3), "{stdout}");
    assert!(stdout.contains("HTTP/1.1 403 "), "{stdout}");
    origin.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(origin.accept().is_err(), "a name leading to this host's address reached it");
    drop(sb);

    // The same name with that address allowed as an address: the tunnel goes through, so the
    // refusal above was the host-address rule (and the hosts file was used).
    let allowed = [name.clone(), format!("{own}:{origin_port}")];
    let sb = s.sandbox_with_hosts(&allowed, &hosts).unwrap_or_else(|e| panic!("sandbox: {e}"));
    let (code, stdout, stderr) = run_helper(&sb, &name);
    assert_eq!(code, Some(0), "stdout {stdout} stderr {stderr}");
    let got = origin_received(&origin).expect("the origin saw the tunnel");
    assert!(String::from_utf8_lossy(&got).contains("SSH-2.0-palisade-test"), "{got:?}");
}

#[test]
fn allow_is_refused_in_one_line_when_no_proxy_port_is_free() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let s = Setup::new(&[port]);
    let e = s.sandbox(&["example.com".to_string()]).err().expect("refused").to_string();
    assert!(e.contains("in use") && e.contains(&port.to_string()) && !e.contains('\n'), "{e}");
    // A marker listing no port (setup version 1's) is refused too, naming setup.
    let s = Setup::new(&[]);
    let e = s.sandbox(&["example.com".to_string()]).err().expect("refused").to_string();
    assert!(e.contains("palisade setup --elevated"), "{e}");
}
