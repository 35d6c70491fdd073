//! network = allow on Linux, against a "fake internet": a network namespace this test makes
//! (`palisade-t-<pid>-<n>`, removed on drop) whose interface holds documentation addresses
//! (192.0.2.10 and 198.51.100.10) and HTTP servers there and on its loopback. The
//! sandbox is run by this test binary itself (re-executed as a helper under `ip netns exec`),
//! so Palisade's host-side proxy sees that fake internet and nothing else; names resolve only
//! through a hosts file (SandboxOptions::network_hosts_file). Side effects are asserted in the
//! servers' request logs. Needs root (network namespaces) and `ip`.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The helper's environment variable: when set, `helper_runs_one_sandboxed_command` runs the
/// sandbox (inside the fake internet's namespace) instead of returning at once.
const HELPER: &str = "PALISADE_NET_ALLOW_HELPER";

/// A network namespace with documentation addresses and HTTP servers; removed on drop.
struct FakeInternet {
    name: String,
    servers: Vec<Child>,
    dir: PathBuf,
}

impl FakeInternet {
    fn new(dir: &Path) -> FakeInternet {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("palisade-t-{}-{n}", std::process::id());
        let net = FakeInternet { name, servers: Vec::new(), dir: dir.to_path_buf() };
        net.ip(&["netns", "add", &net.name]);
        for args in [
            &["link", "set", "lo", "up"][..],
            // On the namespace's loopback: a dummy interface would need a kernel module that
            // containers often lack, and the addresses only have to be reachable from there.
            &["addr", "add", "192.0.2.10/32", "dev", "lo"],
            &["addr", "add", "198.51.100.10/32", "dev", "lo"],
        ] {
            let mut all = vec!["-n", &net.name];
            all.extend_from_slice(args);
            net.ip(&all);
        }
        net
    }

    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("running ip");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// An HTTP server on `addr`:80 in the namespace, serving `hello.txt`; its request log is
    /// `<dir>/<label>.log`.
    fn serve(&mut self, addr: &str, label: &str) {
        let root = self.dir.join(label);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("hello.txt"), format!("hello from {label}\n")).unwrap();
        let log = std::fs::File::create(self.log_path(label)).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "/usr/bin/python3",
                "-u",
                "-m",
                "http.server",
                "80",
                "--bind",
                addr,
                "--directory",
            ])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting python3 -m http.server");
        self.servers.push(child);
        // A bare connect is not logged as a request.
        self.wait_until_accepting(addr, 80);
    }

    /// Waits (at most 15 s) until a server of the namespace accepts on `addr`:`port`.
    fn wait_until_accepting(&self, addr: &str, port: u16) {
        let probe = format!("import socket; socket.create_connection(('{addr}', {port}), timeout=1).close()");
        let start = Instant::now();
        while !Command::new("ip")
            .args(["netns", "exec", &self.name, "/usr/bin/python3", "-c", &probe])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(start.elapsed() < Duration::from_secs(15), "the server on {addr}:{port} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_path(&self, label: &str) -> PathBuf {
        self.dir.join(format!("{label}.log"))
    }

    fn log(&self, label: &str) -> String {
        std::fs::read_to_string(self.log_path(label)).unwrap_or_default()
    }
}

impl Drop for FakeInternet {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// The sandboxed script: each probe prints one `name=result` line.
const SCRIPT: &str = r#"
echo "allowed=$(curl -sS --max-time 10 http://allowed.test/hello.txt)"
echo "denied_code=$(curl -sS --max-time 10 -o /tmp/denied -w '%{http_code}' http://denied.test/hello.txt?denied-probe)"
echo "denied=$(cat /tmp/denied)"
if curl -sS --noproxy '*' --max-time 5 http://192.0.2.10/hello.txt?direct-probe >/dev/null 2>&1; then echo direct=reached; else echo direct=failed; fi
/usr/bin/python3 - <<'PY'
import socket
try:
    s = socket.create_connection(("192.0.2.10", 80), timeout=5)
    s.sendall(b"GET /hello.txt?raw-probe HTTP/1.0\r\n\r\n")
    print("raw=reached")
except OSError as e:
    print("raw=failed", e.errno)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"udp-probe", ("192.0.2.10", 53))
    print("udp=sent")
except OSError as e:
    print("udp=failed", e.errno)
PY
echo "sneaky_code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' http://sneaky.test/hello.txt?sneaky-probe)"
"#;

/// Runs one sandboxed `sh -c SCRIPT` with the allowlist, in the fake internet's namespace;
/// prints its output, then `RECORD host port allowed reason` lines (Child::network_records).
#[test]
fn helper_runs_one_sandboxed_command() {
    let Some(args) = std::env::var_os(HELPER) else { return };
    let args = args.into_string().unwrap();
    let mut parts = args.split('\n');
    let (ws, hosts) = (parts.next().unwrap(), parts.next().unwrap());
    let allow: Vec<&str> = parts.collect();
    let mut policy = palisade::Policy::new(ws, None);
    policy.network =
        palisade::Network::Allow(palisade::policy::net_rules::Allowlist::parse(&allow, &[] as &[&str]).unwrap());
    let options = palisade::SandboxOptions { network_hosts_file: Some(PathBuf::from(hosts)), ..Default::default() };
    let sandbox = palisade::Sandbox::with_options(policy, options).expect("the sandbox");
    let out = sandbox.command("sh").arg("-c").arg(SCRIPT).output().expect("running the command");
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    for r in &out.network {
        report.push_str(&format!(
            "RECORD {} {} {} {}\n",
            r.host,
            r.port,
            r.allowed,
            r.reason.as_deref().unwrap_or("-")
        ));
    }
    for n in &out.notices {
        report.push_str(&format!("NOTICE {n}\n"));
    }
    std::fs::write(Path::new(ws).join("report.txt"), report).unwrap();
}

fn line<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= line in:\n{report}"))
}

#[test]
fn only_allowed_names_get_out_through_the_proxy() {
    if !is_root() {
        skip_expected("needs root (network namespaces for the fake internet; the root pass runs it)");
        return;
    }
    if tool("ip").is_none() {
        skip("needs `ip` (iproute2) to build the fake internet");
        return;
    }
    require_tool("curl");
    let fx = Fixture::new();
    let mut net = FakeInternet::new(&fx.outside);
    net.serve("192.0.2.10", "allowed");
    net.serve("198.51.100.10", "denied");
    // The namespace's own loopback: where a name pointing at 127.0.0.1 would lead the proxy.
    net.serve("127.0.0.1", "loopback");
    let hosts = fx.outside.join("hosts");
    std::fs::write(&hosts, "192.0.2.10 allowed.test\n198.51.100.10 denied.test\n127.0.0.1 sneaky.test\n").unwrap();

    let helper_args = format!("{}\n{}\nallowed.test\nsneaky.test", fx.ws.display(), hosts.display());
    let out = Command::new("ip")
        .args(["netns", "exec", &net.name])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "helper_runs_one_sandboxed_command", "--nocapture", "--test-threads=1"])
        .env(HELPER, helper_args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helper: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(fx.ws.join("report.txt")).expect("the helper's report");

    // Allowed: through the proxy, and the server got it.
    assert_eq!(line(&report, "allowed"), "hello from allowed", "{report}");
    assert!(net.log("allowed").contains("GET /hello.txt HTTP"), "{}", net.log("allowed"));
    // Not in the allowlist: 403 with the one-line reason; the server received nothing.
    assert_eq!(line(&report, "denied_code"), "403", "{report}");
    assert!(line(&report, "denied").starts_with("palisade: denied.test is not in the network allowlist"), "{report}");
    assert_eq!(net.log("denied"), "", "the denied server received a request");
    // No route but the proxy: a direct connection, a program ignoring the proxy variables, UDP.
    assert_eq!(line(&report, "direct"), "failed", "{report}");
    assert!(line(&report, "raw").starts_with("failed"), "{report}");
    assert!(line(&report, "udp").starts_with("failed"), "{report}");
    let allowed_log = net.log("allowed");
    assert!(!allowed_log.contains("direct-probe") && !allowed_log.contains("raw-probe"), "{allowed_log}");
    // A listed name that resolves to loopback is refused; the loopback server got nothing.
    assert_eq!(line(&report, "sneaky_code"), "403", "{report}");
    assert_eq!(net.log("loopback"), "", "the namespace's loopback server received a request");

    // The records, allowed and refused, through the library.
    let records: Vec<&str> = report.lines().filter(|l| l.starts_with("RECORD ")).collect();
    assert!(records.iter().any(|r| r.starts_with("RECORD allowed.test 80 true")), "{report}");
    assert!(records.iter().any(|r| r.starts_with("RECORD denied.test 80 false palisade: denied.test is not in the network allowlist")), "{report}");
    assert!(records.iter().any(|r| r.starts_with("RECORD sneaky.test 80 false")), "{report}");
    assert_eq!(records.len(), 3, "{report}");
    assert!(!report.contains("NOTICE"), "{report}");
}

impl FakeInternet {
    /// An HTTPS server (a self-signed certificate made here) on `addr`:443 in the namespace,
    /// serving the same folder as `serve(addr, label)`; its request log is `<label>-tls.log`.
    fn serve_tls(&mut self, addr: &str, label: &str) {
        let root = self.dir.join(label);
        let (cert, key) = (self.dir.join(format!("{label}.crt")), self.dir.join(format!("{label}.key")));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=palisade-test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("running openssl");
        assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
        let server = format!(
            "import functools, http.server, ssl\n\
             h = functools.partial(http.server.SimpleHTTPRequestHandler, directory={root:?})\n\
             s = http.server.ThreadingHTTPServer(({addr:?}, 443), h)\n\
             c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain({cert:?}, {key:?})\n\
             s.socket = c.wrap_socket(s.socket, server_side=True)\n\
             s.serve_forever()\n",
            root = root.display().to_string(),
            cert = cert.display().to_string(),
            key = key.display().to_string(),
        );
        let log = std::fs::File::create(self.log_path(&format!("{label}-tls"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, "/usr/bin/python3", "-u", "-c", &server])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the TLS server");
        self.servers.push(child);
        self.wait_until_accepting(addr, 443);
    }

    /// An "ssh server" on `addr`:22 in the namespace that sends an SSH identification line and
    /// logs (to `<label>-ssh.log`) the first bytes each client sends, then hangs up: enough to
    /// see that an ssh client's own identification arrived.
    fn serve_ssh_banner(&mut self, addr: &str, label: &str) {
        let log = self.log_path(&format!("{label}-ssh"));
        let server = format!(
            "import socket\n\
             s = socket.create_server(({addr:?}, 22))\n\
             while True:\n\
             \x20   c, _ = s.accept()\n\
             \x20   c.sendall(b'SSH-2.0-PalisadeTestServer\\r\\n')\n\
             \x20   c.settimeout(5)\n\
             \x20   try: data = c.recv(255)\n\
             \x20   except OSError: data = b''\n\
             \x20   if data:\n\
             \x20       open({log:?}, 'ab').write(data.split(b'\\r\\n')[0] + b'\\n')\n\
             \x20   c.close()\n",
            log = log.display().to_string(),
        );
        std::fs::write(&log, "").unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, "/usr/bin/python3", "-u", "-c", &server])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the ssh banner server");
        self.servers.push(child);
        self.wait_until_accepting(addr, 22);
    }
}

/// An ssh `ProxyCommand` (`socks5.py HOST PORT`) that does what `nc -X 5 -x 127.0.0.1:3128`
/// does: a SOCKS5 CONNECT by name to the proxy `ALL_PROXY` names, then copies both ways.
const SOCKS5_CONNECTOR: &str = r#"
import os, select, socket, struct, sys, urllib.parse
proxy = urllib.parse.urlsplit(os.environ["ALL_PROXY"])
host, port = sys.argv[1].encode(), int(sys.argv[2])
s = socket.create_connection((proxy.hostname, proxy.port))
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host + struct.pack(">H", port))
reply = s.recv(10)
if len(reply) < 2 or reply[1] != 0:
    sys.exit("socks5: refused, code %d" % (reply[1] if len(reply) > 1 else -1))
while True:
    ready, _, _ = select.select([s, 0], [], [])
    if s in ready:
        data = s.recv(65536)
        if not data:
            break
        os.write(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            s.shutdown(socket.SHUT_WR)
            continue
        s.sendall(data)
"#;

/// What a package index, a git server and a tarball host look like to pip, git and npm, in the
/// folder the "allowed" server serves.
fn publish_packages(root: &Path) {
    // git over (dumb) http: a bare repository with one commit.
    let src = root.join("src-repo");
    let git = |dir: &Path, args: &[&str]| {
        let o = Command::new("git").current_dir(dir).args(args).env("GIT_CONFIG_NOSYSTEM", "1").output().expect("git");
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join("README"), "fetched through the proxy\n").unwrap();
    git(&src, &["add", "README"]);
    git(&src, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first"]);
    git(root, &["clone", "-q", "--bare", "src-repo", "repo.git"]);
    git(&root.join("repo.git"), &["update-server-info"]);
    // A pip index (PEP 503 simple layout: the server's folder listing is the project page).
    let wheel_dir = root.join("simple/palisadetestpkg");
    std::fs::create_dir_all(&wheel_dir).unwrap();
    let make_wheel = r#"
import sys, zipfile
w = sys.argv[1] + "/palisadetestpkg-0.1-py3-none-any.whl"
with zipfile.ZipFile(w, "w") as z:
    z.writestr("palisadetestpkg/__init__.py", "")
    z.writestr("palisadetestpkg-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: palisadetestpkg\nVersion: 0.1\n")
    z.writestr("palisadetestpkg-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("palisadetestpkg-0.1.dist-info/RECORD", "")
"#;
    let o = Command::new("python3").arg("-c").arg(make_wheel).arg(&wheel_dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // An npm package tarball.
    let pkg = root.join("npm-src/package");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("package.json"), r#"{"name":"palisade-test-pkg","version":"1.0.0"}"#).unwrap();
    let o = Command::new("tar")
        .arg("czf")
        .arg(root.join("pkg.tgz"))
        .arg("-C")
        .arg(root.join("npm-src"))
        .arg("package")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The CLI as users and agents call it: `--allow-net` names, curl over HTTPS (CONNECT), git,
/// pip and npm through the proxy variables, the checks a fronting attempt meets (a TLS server
/// name or an HTTP `Host` that differs from what was allowed), one `palisade: network:` line
/// per refused destination, and every connection in `--json-status`.
/// `palisade run --workspace WS ARGS -- sh -c SCRIPT` inside the fake internet's namespace,
/// with names from `hosts`: its stdout, its stderr, and both as one report for messages.
fn run_cli_in(net: &FakeInternet, fx: &Fixture, hosts: &Path, args: &[&str], script: &str) -> (String, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &net.name, BIN, "run", "--workspace"])
        .arg(&fx.ws)
        .args(args)
        .args(["--json-status", "--", "sh", "-c", script])
        .current_dir(&fx.ws)
        .envs(fx.env())
        .env("PALISADE_NET_HOSTS_FILE", hosts)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (so, se) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    let report = format!("stdout:\n{so}\nstderr:\n{se}");
    (so, se, report)
}

/// The `--json-status` line of a run's stderr (the last line that starts as one).
fn status_line(stderr: &str, report: &str) -> serde_json::Value {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("{\"exit_code\""))
        .unwrap_or_else(|| panic!("no status line: {report}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn the_cli_lets_real_tools_reach_allowed_names_only() {
    if !is_root() {
        skip_expected("needs root (network namespaces for the fake internet; the root pass runs it)");
        return;
    }
    if tool("ip").is_none() {
        skip("needs `ip` (iproute2) to build the fake internet");
        return;
    }
    for t in ["curl", "git", "openssl", "npm", "tar"] {
        require_tool(t);
    }
    // Debian's pip (scripts/deps.sh installs it): a pyenv shim would look for its versions
    // under the fixture's home.
    assert!(
        Command::new("/usr/bin/python3").args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success()),
        "needs /usr/bin/python3 -m pip (scripts/deps.sh installs python3-pip)"
    );
    let fx = Fixture::new();
    let mut net = FakeInternet::new(&fx.outside);
    publish_packages(&fx.outside.join("allowed"));
    net.serve("192.0.2.10", "allowed");
    net.serve_tls("192.0.2.10", "allowed");
    net.serve("198.51.100.10", "denied");
    let hosts = fx.outside.join("hosts");
    std::fs::write(&hosts, "192.0.2.10 allowed.test\n198.51.100.10 denied.test\n").unwrap();
    let script = r#"
echo "https=$(curl -sS -k --max-time 10 https://allowed.test/hello.txt)"
git clone -q http://allowed.test/repo.git /tmp/clone && echo "git=$(cat /tmp/clone/README)"
PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= /usr/bin/python3 -m pip download -q --no-deps --no-cache-dir --disable-pip-version-check \
  --trusted-host allowed.test --index-url http://allowed.test/simple/ -d /tmp/pd palisadetestpkg==0.1 >/tmp/pip.log 2>&1 && echo "pip=$(ls /tmp/pd)"
npm_config_cache=/tmp/npmc npm install -s --no-save --no-audit --no-fund --prefix /tmp/n http://allowed.test/pkg.tgz >/tmp/npm.log 2>&1 \
  && echo "npm=$(cat /tmp/n/node_modules/palisade-test-pkg/package.json)"
echo "sni=$(curl -sS -k --max-time 10 -o /dev/null -w '%{http_code}' --connect-to denied.test:443:allowed.test:443 https://denied.test/hello.txt?sni-probe 2>/dev/null)"
echo "host=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H 'Host: denied.test' http://allowed.test/hello.txt?host-probe)"
echo "denied=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' http://denied.test/hello.txt)"
cat /tmp/pip.log /tmp/npm.log >&2
"#;
    let (so, se, report) = run_cli_in(&net, &fx, &hosts, &["--allow-net", "allowed.test"], script);
    let line = |text: &str, key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {key}= line in:\n{report}"))
    };
    assert_eq!(line(&so, "https"), "hello from allowed", "{report}");
    assert_eq!(line(&so, "git"), "fetched through the proxy", "{report}");
    assert_eq!(line(&so, "pip"), "palisadetestpkg-0.1-py3-none-any.whl", "{report}");
    assert!(line(&so, "npm").contains("palisade-test-pkg"), "{report}");
    // The server saw the tools' requests (through the proxy, from the host side).
    let log = net.log("allowed");
    for want in ["/repo.git/info/refs", "/simple/palisadetestpkg/", "/pkg.tgz"] {
        assert!(log.contains(want), "the server never got {want}: {log}");
    }
    assert!(net.log("allowed-tls").contains("GET /hello.txt "), "{}", net.log("allowed-tls"));
    // A TLS server name or a Host header other than the allowed name: refused, nothing sent.
    assert_eq!(line(&so, "sni"), "000", "{report}");
    assert!(!net.log("allowed-tls").contains("sni-probe"), "{}", net.log("allowed-tls"));
    assert_eq!(line(&so, "host"), "403", "{report}");
    assert!(!log.contains("host-probe"), "{log}");
    assert_eq!(line(&so, "denied"), "403", "{report}");
    assert_eq!(net.log("denied"), "", "the denied server received a request");
    // One line per refused destination, naming the flag that would allow it.
    assert!(se.contains("palisade: network: refused denied.test:80: denied.test is not in the network allowlist (add --allow-net denied.test"), "{report}");
    // Every connection is in the JSON status line.
    let v = status_line(&se, &report);
    let status = v.to_string();
    let records = v["network"].as_array().unwrap();
    assert!(
        records.iter().any(|r| r["host"] == "allowed.test"
            && r["port"] == 443
            && r["allowed"] == true
            && r["protocol"] == "http-connect"),
        "{status}"
    );
    assert!(records.iter().any(|r| r["host"] == "denied.test" && r["allowed"] == false), "{status}");
    assert!(records.iter().filter(|r| r["allowed"] == false).count() >= 3, "{status}");
    // And the audit log's line for the command has the same connections.
    let audit = std::fs::read_to_string(fx.audit_log()).expect("the audit log");
    assert_eq!(audit.lines().count(), 1, "{audit}");
    let entry: serde_json::Value = serde_json::from_str(audit.trim_end()).unwrap();
    assert_eq!(entry["network_mode"], "allow");
    assert_eq!(entry["network"], v["network"], "{audit}");
}

/// A loopback HTTP server of the host (no namespace needed: runs as any user), on a free port;
/// its request log is `<dir>/<label>.log`.
fn host_loopback_server(dir: &Path, label: &str) -> (Child, u16) {
    let root = dir.join(label);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), format!("hello from {label}\n")).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let log = std::fs::File::create(dir.join(format!("{label}.log"))).unwrap();
    let child = Command::new("python3")
        .args(["-u", "-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting python3 -m http.server");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(15), "the server on port {port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

/// As any user (the unprivileged pass runs it too): the host's loopback is reachable only
/// through the proxy, only at the address and port allowed, and never directly.
#[test]
fn the_hosts_loopback_is_reached_only_as_allowed() {
    require_tool("curl");
    let fx = Fixture::new();
    let (mut allowed, port) = host_loopback_server(&fx.outside, "allowed");
    let (mut other, other_port) = host_loopback_server(&fx.outside, "other");
    let script = format!(
        "echo \"via_proxy=$(NO_PROXY= no_proxy= curl -sS --max-time 10 http://127.0.0.1:{port}/hello.txt)\"\n\
         echo \"other_port=$(NO_PROXY= no_proxy= curl -sS --max-time 10 -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{other_port}/hello.txt?other-probe)\"\n\
         if curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:{port}/hello.txt?direct-probe >/dev/null 2>&1; then echo direct=reached; else echo direct=failed; fi\n"
    );
    let allow = format!("127.0.0.1:{port}");
    let out = fx.run_flags(&["--allow-net", &allow], &["sh", "-c", &script]);
    let _ = (allowed.kill(), other.kill(), allowed.wait(), other.wait());
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = format!("{so}\n{}", String::from_utf8_lossy(&out.stderr));
    let log = |label: &str| std::fs::read_to_string(fx.outside.join(format!("{label}.log"))).unwrap_or_default();
    assert_eq!(line(&so, "via_proxy"), "hello from allowed", "{report}");
    assert!(log("allowed").contains("GET /hello.txt HTTP"), "{}", log("allowed"));
    assert_eq!(line(&so, "other_port"), "403", "{report}");
    assert_eq!(log("other"), "", "the other port's server received a request");
    assert_eq!(line(&so, "direct"), "failed", "{report}");
    assert!(!log("allowed").contains("direct-probe"), "{}", log("allowed"));
}

#[test]
fn git_over_ssh_reaches_an_allowed_host_through_socks5_only() {
    if !is_root() {
        skip_expected("needs root (network namespaces for the fake internet; the root pass runs it)");
        return;
    }
    if tool("ip").is_none() {
        skip("needs `ip` (iproute2) to build the fake internet");
        return;
    }
    for t in ["git", "ssh"] {
        require_tool(t);
    }
    let fx = Fixture::new();
    let mut net = FakeInternet::new(&fx.outside);
    net.serve_ssh_banner("192.0.2.10", "allowed");
    net.serve_ssh_banner("198.51.100.10", "denied");
    let hosts = fx.outside.join("hosts");
    std::fs::write(&hosts, "192.0.2.10 allowed.test\n198.51.100.10 denied.test\n").unwrap();
    std::fs::write(fx.ws.join("socks5.py"), SOCKS5_CONNECTOR).unwrap();
    // The usual recipe for git over ssh behind a SOCKS proxy: GIT_SSH_COMMAND with a
    // ProxyCommand. The fake server hangs up after the identification lines, so git fails;
    // what matters is which server heard an ssh client.
    let connector = fx.ws.join("socks5.py");
    let script = r#"
export GIT_SSH_COMMAND="ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ProxyCommand='/usr/bin/python3 CONNECTOR %h %p'"
git ls-remote ssh://git@allowed.test/repo.git >/dev/null 2>/tmp/allowed.err; echo "allowed=$?"
git ls-remote ssh://git@denied.test/repo.git >/dev/null 2>/tmp/denied.err; echo "denied=$?"
ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout=5 git@192.0.2.10 true 2>/tmp/direct.err; echo "direct=$?"
cat /tmp/allowed.err /tmp/denied.err /tmp/direct.err >&2
"#
    .replace("CONNECTOR", &connector.display().to_string());
    let (so, se, report) = run_cli_in(&net, &fx, &hosts, &["--allow-net", "allowed.test:22"], &script);
    // The allowed host heard an ssh client, through the proxy.
    let heard = net.log("allowed-ssh");
    assert!(
        heard.lines().any(|l| l.starts_with("SSH-2.0-")),
        "the allowed ssh server heard no client: {heard:?}\n{report}"
    );
    // The denied host heard nothing: the SOCKS request for its name was refused.
    assert_eq!(net.log("denied-ssh"), "", "the denied ssh server heard a client\n{report}");
    assert!(so.contains("allowed=") && so.contains("denied=") && so.contains("direct="), "{report}");
    // Plain ssh (no ProxyCommand) has no route: it adds nothing to the allowed server's log.
    assert_eq!(net.log("allowed-ssh").lines().count(), heard.lines().count(), "{report}");
    assert!(se.contains("palisade: network: refused denied.test:22: denied.test"), "{report}");
    let v = status_line(&se, &report);
    let status = v.to_string();
    let records = v["network"].as_array().unwrap();
    assert!(records.iter().any(|r| r["host"] == "allowed.test" && r["port"] == 22 && r["allowed"] == true), "{status}");
    assert!(records.iter().any(|r| r["host"] == "denied.test" && r["port"] == 22 && r["allowed"] == false), "{status}");
}

/// A name leading into the host's directly connected network (a neighbour, the gateway) is
/// refused like one leading to the host itself, whatever the range (this machine's LAN uses
/// documentation addresses, which no fixed range covers); allowed as an address, the proxy
/// tries it. Runs in the host's own network, as any user.
#[test]
fn a_name_leading_into_the_hosts_local_network_is_refused() {
    require_tool("curl");
    let fx = Fixture::new();
    let own: std::net::Ipv4Addr = host_ipv4_address().parse().unwrap();
    let listing = Command::new("ip").args(["-o", "-4", "addr", "show"]).output().expect("ip addr");
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let prefix: u32 = listing
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{own}/")))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{own} not in `ip addr`: {listing}"));
    assert!(prefix <= 30, "{own}/{prefix} has no neighbours to name");
    let mask = u32::MAX << (32 - prefix);
    let first = (u32::from(own) & mask) + 1;
    let neighbour = std::net::Ipv4Addr::from(if first == u32::from(own) { first + 1 } else { first });
    let hosts = fx.outside.join("hosts");
    std::fs::write(&hosts, format!("{neighbour} neighbour.test\n")).unwrap();
    let run = |extra: &[&str]| {
        let mut flags = vec!["--allow-net", "neighbour.test"];
        flags.extend_from_slice(extra);
        let o = fx
            .run_cmd(
                &flags,
                &["sh", "-c", "curl -sS --max-time 5 -o /dev/null -w 'code=%{http_code}\\n' http://neighbour.test/"],
            )
            .env("PALISADE_NET_HOSTS_FILE", &hosts)
            .output()
            .unwrap();
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (so, se) = run(&[]);
    assert_eq!(line(&so, "code"), "403", "{so}{se}");
    assert!(se.contains(&format!("resolves to {neighbour}, in this host's local network")), "{se}");
    let allowed = neighbour.to_string();
    let (so, se) = run(&["--allow-net", &allowed]);
    assert_ne!(line(&so, "code"), "403", "allowed as an address, it was still refused: {so}{se}");
}
