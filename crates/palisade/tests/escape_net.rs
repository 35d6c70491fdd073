//! Network off (the default): listeners the test opens on the host — TCP and UDP on 127.0.0.1
//! and ::1, abstract and pathname unix sockets — must receive nothing from the sandbox. After
//! the command has ended, the test polls each listener without blocking: a connection the
//! sandbox made would already sit in the accept queue (the kernel completes loopback handshakes
//! and queues datagrams synchronously), so no waiting is involved.
//!
//! With `--network on`, the same host listener is reached (the positive control).
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::io::{ErrorKind, Read};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;

/// Python: try to connect to (family, host, port) over TCP and send a marker.
const PY_TCP: &str = r#"
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    s.sendall(sys.argv[3].encode())
    print("CONNECTED")
except OSError as e:
    print("connect failed:", e)
"#;

const PY_UDP: &str = r#"
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
try:
    s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
    print("SENT")
except OSError as e:
    print("send failed:", e)
"#;

const PY_UNIX: &str = r#"
import socket, sys
name = sys.argv[1]
addr = "\0" + name[1:] if name.startswith("@") else name
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(addr)
    s.sendall(sys.argv[2].encode())
    print("CONNECTED")
except OSError as e:
    print("connect failed:", e)
"#;

/// Whatever connections are queued on a listener right now (non-blocking), with what they sent.
fn accepted_tcp(l: &TcpListener) -> Vec<String> {
    l.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    loop {
        match l.accept() {
            Ok((mut c, peer)) => {
                c.set_nonblocking(true).unwrap();
                let mut b = Vec::new();
                let _ = c.read_to_end(&mut b);
                got.push(format!("{peer}: {:?}", String::from_utf8_lossy(&b)));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return got,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn received_udp(u: &UdpSocket) -> Vec<String> {
    u.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        match u.recv_from(&mut buf) {
            Ok((n, peer)) => got.push(format!("{peer}: {:?}", String::from_utf8_lossy(&buf[..n]))),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return got,
            Err(e) => panic!("recv: {e}"),
        }
    }
}

fn bind_tcp(addr: &str) -> TcpListener {
    TcpListener::bind(addr).unwrap_or_else(|e| panic!("this test needs a host listener on {addr}: {e}"))
}

/// TCP to a host listener, from python and from bash's /dev/tcp.
fn tcp_blocked(host: &str) {
    let fx = Fixture::new();
    let l = bind_tcp(&if host.contains(':') { format!("[{host}]:0") } else { format!("{host}:0") });
    let port = l.local_addr().unwrap().port().to_string();
    let o = fx.py(PY_TCP, &[host, &port, &fx.m]);
    assert!(stdout(&o).contains("connect failed"), "the connection attempt did not fail inside: {}", show(&o));
    let o2 = fx.run(&["bash", "-c", &format!("echo {} > /dev/tcp/{host}/{port}; echo bash-done", fx.m)]);
    assert!(stdout(&o2).contains("bash-done"), "{}", show(&o2));
    let got = accepted_tcp(&l);
    assert!(
        got.is_empty(),
        "SANDBOX ESCAPE: the host listener on {host}:{port} accepted {got:?}\npython: {}\nbash: {}",
        show(&o),
        show(&o2)
    );
}

#[test]
fn tcp_to_host_ipv4_loopback_is_blocked() {
    tcp_blocked("127.0.0.1");
}

/// The host's own address on its network interface (not the loopback): a listener bound to it
/// (as services bound to 0.0.0.0 are) receives nothing from an offline command, and does from
/// an online one (the control).
#[test]
fn tcp_to_the_hosts_own_network_address_is_blocked() {
    let host = host_ipv4_address();
    tcp_blocked(&host);
    let fx = Fixture::new();
    let l = bind_tcp(&format!("{host}:0"));
    let port = l.local_addr().unwrap().port().to_string();
    let on = fx.py_flags(&["--network", "on"], PY_TCP, &[&host, &port, &fx.m]);
    assert_eq!(accepted_tcp(&l).len(), 1, "control: with the network on {host}:{port} is reachable: {}", show(&on));
}

#[test]
fn tcp_to_host_ipv6_loopback_is_blocked() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        skip("this host has no IPv6 loopback (::1), so there is nothing to connect to");
        return;
    }
    tcp_blocked("::1");
}

fn udp_blocked(host: &str, bind: &str) {
    let fx = Fixture::new();
    let u = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("binding a UDP socket on {bind}: {e}"));
    let port = u.local_addr().unwrap().port().to_string();
    let o = fx.py(PY_UDP, &[host, &port, &fx.m]);
    let o2 = fx.run(&["bash", "-c", &format!("echo {} > /dev/udp/{host}/{port}; echo bash-done", fx.m)]);
    assert!(stdout(&o2).contains("bash-done"), "{}", show(&o2));
    let got = received_udp(&u);
    assert!(
        got.is_empty(),
        "SANDBOX ESCAPE: the host's UDP socket on {host}:{port} received {got:?}\npython: {}\nbash: {}",
        show(&o),
        show(&o2)
    );
}

#[test]
fn udp_to_host_ipv4_loopback_is_blocked() {
    udp_blocked("127.0.0.1", "127.0.0.1:0");
}

#[test]
fn udp_to_host_ipv6_loopback_is_blocked() {
    if UdpSocket::bind("[::1]:0").is_err() {
        skip("this host has no IPv6 loopback (::1)");
        return;
    }
    udp_blocked("::1", "[::1]:0");
}

#[test]
fn abstract_unix_socket_on_host_is_unreachable() {
    use std::os::linux::net::SocketAddrExt;
    let fx = Fixture::new();
    let name = format!("palisade-test-{}", fx.m);
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = UnixListener::bind_addr(&addr).expect("binding an abstract unix socket");
    let o = fx.py(PY_UNIX, &[&format!("@{name}"), &fx.m]);
    assert!(stdout(&o).contains("connect failed"), "the connection attempt did not fail inside: {}", show(&o));
    let got = accepted_unix(&l);
    assert!(got.is_empty(), "SANDBOX ESCAPE: the abstract unix socket @{name} accepted {got:?}\nrun: {}", show(&o));
}

fn pathname_socket_blocked(dir: &std::path::Path, what: &str) {
    let fx = Fixture::new();
    let path = dir.join(format!("s-{}.sock", &fx.m[..10]));
    std::fs::create_dir_all(dir).unwrap();
    let l = UnixListener::bind(&path).unwrap_or_else(|e| panic!("binding {}: {e}", path.display()));
    let o = fx.py(PY_UNIX, &[s(&path), &fx.m]);
    let got = accepted_unix(&l);
    assert!(
        got.is_empty(),
        "SANDBOX ESCAPE: a unix socket {what} ({}) was reached from inside with network off, received {got:?}\nrun: {}",
        path.display(),
        show(&o)
    );
    assert!(stdout(&o).contains("connect failed"), "the connection attempt did not fail inside: {}", show(&o));
}

/// A unix socket in a folder under the host's /tmp (hidden by the private /tmp).
#[test]
fn pathname_unix_socket_under_host_tmp_is_unreachable() {
    let fx = Fixture::new();
    pathname_socket_blocked(&fx.tmp_outside.join("sockets"), "under the host's /tmp");
}

/// A unix socket in a folder under the (fake) home: think ~/.docker/run/docker.sock or an agent
/// socket. Network off promises no unix sockets outside the writable roots.
#[test]
fn pathname_unix_socket_under_home_is_unreachable() {
    let fx = Fixture::new();
    fx.require_visible();
    pathname_socket_blocked(&fx.home.join(".local/run"), "under the home directory");
}

/// Ordinary test servers work: a server inside the sandbox on 127.0.0.1, reached by a client in
/// the same sandbox.
#[test]
fn server_and_client_inside_the_sandbox_talk() {
    let fx = Fixture::new();
    let o = fx.py(
        r#"
import socket, threading, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept(); c.sendall(b"pong:" + c.recv(100)); c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(("127.0.0.1", port), timeout=10); cl.sendall(sys.argv[1].encode())
print(cl.recv(100).decode()); t.join()
"#,
        &[&fx.m],
    );
    ok(&o);
    assert!(stdout(&o).contains(&format!("pong:{}", fx.m)), "{}", show(&o));
}

/// Positive control: with `--network on` the host listener IS reached (so the tests above can
/// tell a connection when there is one).
#[test]
fn network_on_reaches_the_host_listener() {
    let fx = Fixture::new();
    let l = bind_tcp("127.0.0.1:0");
    let port = l.local_addr().unwrap().port().to_string();
    let o = fx.py_flags(&["--network", "on"], PY_TCP, &["127.0.0.1", &port, &fx.m]);
    let got = accepted_tcp(&l);
    assert_eq!(
        got.len(),
        1,
        "with --network on the host listener should get one connection: {got:?}\nrun: {}",
        show(&o)
    );
    assert!(got[0].contains(&fx.m), "{got:?}");

    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = u.local_addr().unwrap().port().to_string();
    let o = fx.py_flags(&["--network", "on"], PY_UDP, &["127.0.0.1", &uport, &fx.m]);
    let got = received_udp(&u);
    assert_eq!(
        got.len(),
        1,
        "with --network on the host UDP socket should get one datagram: {got:?}\nrun: {}",
        show(&o)
    );
}

/// Socket families that no network namespace fences: AF_VSOCK reaches the hypervisor's host
/// from a virtual machine (a test cannot listen there, so it checks the socket cannot even be
/// made), AF_BLUETOOTH the radios. Offline, only unix, IPv4/6 and netlink sockets are made.
const PY_FAMILIES: &str = r#"
import socket
for name, fam in (("vsock", 40), ("bluetooth", 31), ("packet", 17), ("alg", 38)):
    try:
        socket.socket(fam, socket.SOCK_STREAM if fam in (40, 38) else socket.SOCK_RAW).close()
        print(name, "CREATED")
    except OSError as e:
        print(name, "refused", e.errno)
"#;

#[test]
fn sockets_outside_the_network_namespace_cannot_be_made_offline() {
    let fx = Fixture::new();
    let o = fx.py(PY_FAMILIES, &[]);
    assert!(stdout(&o).contains("vsock"), "the script did not run: {}", show(&o));
    assert!(
        !stdout(&o).contains("CREATED"),
        "SANDBOX ESCAPE: an offline command made a socket its network namespace does not fence\n{}",
        show(&o)
    );
    // Control: every family the same script makes on the host, it makes with the network on
    // (so "refused" offline is the filter's doing). Without any (no vsock module), the
    // offline assertion proves nothing here.
    let host = std::process::Command::new(require_tool("python3")).args(["-c", PY_FAMILIES]).output().unwrap();
    let made: Vec<String> = stdout(&host).lines().filter(|l| l.ends_with("CREATED")).map(str::to_string).collect();
    if made.is_empty() {
        skip_expected(
            "this host makes none of these socket families (no vsock module), so the filter cannot be told apart",
        );
        return;
    }
    let on = fx.py_flags(&["--network", "on"], PY_FAMILIES, &[]);
    for line in &made {
        // Packet sockets need CAP_NET_RAW, which no sandboxed command keeps.
        if line.starts_with("packet") {
            continue;
        }
        assert!(
            stdout(&on).contains(line.as_str()),
            "control: with the network on, `{line}` was expected (as on the host): {}",
            show(&on)
        );
    }
}

/// A host service's socket inside the workspace (a database's `.s.PGSQL.5432`, a daemon's
/// socket in a writable cache folder): offline, the command must not reach it; with the network
/// on it does (the control).
#[test]
fn host_service_socket_inside_the_workspace_is_unreachable_offline() {
    let fx = Fixture::new();
    let path = fx.ws.join(".s.service.sock");
    let l = UnixListener::bind(&path).unwrap_or_else(|e| panic!("binding {}: {e}", path.display()));
    let o = fx.py(PY_UNIX, &[s(&path), &fx.m]);
    let got = accepted_unix(&l);
    assert!(
        got.is_empty(),
        "SANDBOX ESCAPE: a host service's socket in the workspace was reached offline, received {got:?}\nrun: {}",
        show(&o)
    );
    let on = fx.py_flags(&["--network", "on"], PY_UNIX, &[s(&path), &fx.m]);
    assert!(
        !accepted_unix(&l).is_empty(),
        "control: with the network on the socket should be reachable: {}",
        show(&on)
    );
}

/// A host service that bound its socket with a relative path (after a chdir, to keep within
/// the 108-byte limit): the kernel lists the path as bound, relative, yet the socket is as
/// reachable by its absolute path.
#[test]
fn host_socket_bound_with_a_relative_path_is_unreachable_offline() {
    let fx = Fixture::new();
    fx.require_visible();
    // The server reports only after the command has ended (its stdin closes): a slow start of
    // the sandbox cannot make it answer "nothing" early.
    let server = RelativeSocketServer::start(&fx.outside);
    let path = fx.outside.join("rel.sock");
    let o = fx.py(PY_UNIX, &[s(&path), &fx.m]);
    assert_eq!(
        server.result(),
        "nothing",
        "SANDBOX ESCAPE: a host socket bound with a relative path was reached offline\nrun: {}",
        show(&o)
    );
    // Control: such a server, reached the same way with the network on, sees the connection.
    let dir = fx.outside.join("control");
    std::fs::create_dir_all(&dir).unwrap();
    let server = RelativeSocketServer::start(&dir);
    let on = fx.py_flags(&["--network", "on"], PY_UNIX, &[s(&dir.join("rel.sock")), &fx.m]);
    assert_eq!(server.result(), "GOT", "control: with the network on the server saw nothing: {}", show(&on));
}

/// A host service binding `rel.sock` relative to `dir`; it reports after its stdin closes
/// whether anything connected meanwhile (a connection would already wait in the accept queue).
struct RelativeSocketServer {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl RelativeSocketServer {
    fn start(dir: &std::path::Path) -> RelativeSocketServer {
        use std::io::BufRead;
        let py = require_tool("python3");
        let server = "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind('rel.sock')\ns.listen(4)\nprint('ready', flush=True)\nsys.stdin.read()\ns.setblocking(False)\ntry:\n    c, _ = s.accept()\n    print('GOT', flush=True)\nexcept OSError:\n    print('nothing', flush=True)\n";
        let mut child = std::process::Command::new(py)
            .args(["-c", server])
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        RelativeSocketServer { child, lines }
    }

    fn result(mut self) -> String {
        drop(self.child.stdin.take());
        let r = self.lines.next().unwrap().unwrap();
        let _ = self.child.wait();
        r
    }
}

/// One sandbox, several commands: the library remembers where relative sockets were found
/// (looking means reading every process's descriptors). A socket bound after the first command
/// must be found and hidden all the same, and the one found before must stay hidden.
#[test]
fn relative_sockets_bound_between_commands_of_one_sandbox_are_unreachable() {
    let fx = Fixture::new();
    fx.require_visible();
    let py = require_tool("python3");
    let sb = palisade::Sandbox::new(palisade::Policy::new(&fx.ws, Some(&fx.home))).unwrap();
    let connect = |path: &std::path::Path| {
        let o = sb.command(&py).arg("-c").arg(PY_UNIX).arg(path).arg(&fx.m).output().unwrap();
        format!("{} {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let (a, b) = (fx.outside.join("a"), fx.outside.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let first = RelativeSocketServer::start(&a);
    let o1 = connect(&a.join("rel.sock"));
    let second = RelativeSocketServer::start(&b);
    let o2 = connect(&b.join("rel.sock"));
    let o3 = connect(&a.join("rel.sock"));
    let (r1, r2) = (first.result(), second.result());
    assert_eq!(
        r1, "nothing",
        "SANDBOX ESCAPE: a host socket bound with a relative path was reached offline\nfirst: {o1}\nagain: {o3}"
    );
    assert_eq!(
        r2, "nothing",
        "SANDBOX ESCAPE: a relative socket bound between two commands was reached offline\nrun: {o2}"
    );
    // Control: such a server does see a connection from the host.
    let c = fx.outside.join("c");
    std::fs::create_dir_all(&c).unwrap();
    let control = RelativeSocketServer::start(&c);
    let _conn = std::os::unix::net::UnixStream::connect(c.join("rel.sock")).unwrap();
    assert_eq!(control.result(), "GOT", "control: the server did not see a host connection");
}

/// A host service whose socket file was moved after binding, so that the kernel's socket list
/// still names it by the name it was bound under (`mode`, in `dir`):
/// - `link`: bind `s.tmp`, link it to `s`, remove `s.tmp` (OpenSSH's ControlMaster);
/// - `rename`: bind `s.tmp`, rename it to `s`;
/// - `folder`: bind `a/s`, rename the folder `a` to `b`;
/// - `hardlinks`: bind `s`, link it to `s2` too (two names);
/// - `later`: bind `s`; on the line `move` from stdin, link it to `s.moved` and remove `s`.
///
/// It reports how many connections it accepted once its stdin closes (a connection would already
/// wait in the accept queue), so a slow start cannot make a test pass.
struct MovedSocketServer {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    /// The socket's names now.
    names: Vec<std::path::PathBuf>,
}

const PY_MOVED_SERVER: &str = r#"
import os, socket, sys
mode, d = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
if mode == "link":
    s.bind(d + "/s.tmp"); os.link(d + "/s.tmp", d + "/s"); os.unlink(d + "/s.tmp")
elif mode == "rename":
    s.bind(d + "/s.tmp"); os.rename(d + "/s.tmp", d + "/s")
elif mode == "folder":
    os.mkdir(d + "/a"); s.bind(d + "/a/s"); os.rename(d + "/a", d + "/b")
elif mode == "hardlinks":
    s.bind(d + "/s"); os.link(d + "/s", d + "/s2")
elif mode == "later":
    s.bind(d + "/s")
s.listen(16)
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "move":
        os.link(d + "/s", d + "/s.moved"); os.unlink(d + "/s")
        print("moved", flush=True)
s.setblocking(False)
n = 0
while True:
    try:
        c, _ = s.accept()
        n += 1
    except BlockingIOError:
        break
print("accepted", n, flush=True)
"#;

impl MovedSocketServer {
    fn start(mode: &str, dir: &std::path::Path) -> MovedSocketServer {
        use std::io::BufRead;
        let py = require_tool("python3");
        std::fs::create_dir_all(dir).unwrap();
        let mut child = std::process::Command::new(py)
            .args(["-c", PY_MOVED_SERVER, mode])
            .arg(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready", "the {mode} server did not start");
        let names = match mode {
            "folder" => vec![dir.join("b/s")],
            "hardlinks" => vec![dir.join("s"), dir.join("s2")],
            _ => vec![dir.join("s")],
        };
        for n in &names {
            assert!(n.exists(), "the {mode} server's socket {} is missing", n.display());
        }
        MovedSocketServer { child, lines, names }
    }

    /// Moves the socket (mode `later`) and waits until it is done.
    fn move_now(&mut self, dir: &std::path::Path) {
        use std::io::Write;
        writeln!(self.child.stdin.as_mut().unwrap(), "move").unwrap();
        assert_eq!(self.lines.next().unwrap().unwrap(), "moved");
        self.names = vec![dir.join("s.moved")];
    }

    /// Connects from the host (the control: this must reach the server), then ends the server
    /// and returns how many connections it accepted in all.
    fn accepted_with_control(mut self) -> usize {
        let _conn = std::os::unix::net::UnixStream::connect(&self.names[0]).expect("control: connecting from the host");
        drop(self.child.stdin.take());
        let r = self.lines.next().unwrap().unwrap();
        let _ = self.child.wait();
        r.strip_prefix("accepted ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("server said {r:?}"))
    }
}

/// Offline, a command connects to each name of a host socket that was moved after binding; the
/// server must see only the host's control connection.
fn moved_socket_unreachable(mode: &str) {
    let fx = Fixture::new();
    fx.require_visible();
    let dir = fx.home.join(".cache/ssh");
    let srv = MovedSocketServer::start(mode, &dir);
    let runs: Vec<String> = srv.names.iter().map(|n| show(&fx.py(PY_UNIX, &[s(n), &fx.m]))).collect();
    let names = srv.names.clone();
    let accepted = srv.accepted_with_control();
    assert!(accepted >= 1, "control: the host's own connection did not reach the server");
    assert_eq!(
        accepted, 1,
        "SANDBOX ESCAPE: a host socket moved after binding ({mode}: {names:?}) was reached offline\nruns: {runs:#?}"
    );
}

/// OpenSSH's ControlMaster: bound as `<ControlPath>.<random>`, linked to `<ControlPath>`, the
/// temporary name removed. Reaching it runs commands on the remote host (`ssh -S`).
#[test]
fn host_socket_linked_into_place_is_unreachable_offline() {
    moved_socket_unreachable("link");
}

#[test]
fn host_socket_renamed_into_place_is_unreachable_offline() {
    moved_socket_unreachable("rename");
}

#[test]
fn host_socket_in_a_renamed_folder_is_unreachable_offline() {
    moved_socket_unreachable("folder");
}

#[test]
fn host_socket_with_two_names_is_unreachable_by_both_offline() {
    moved_socket_unreachable("hardlinks");
}

/// One sandbox, several commands: where a socket was found is remembered; when the host moves
/// it between commands (ControlMaster style), the next command must not reach the new name.
#[test]
fn host_socket_moved_between_commands_of_one_sandbox_is_unreachable() {
    let fx = Fixture::new();
    fx.require_visible();
    let py = require_tool("python3");
    let sb = palisade::Sandbox::new(palisade::Policy::new(&fx.ws, Some(&fx.home))).unwrap();
    let connect = |path: &std::path::Path| {
        let o = sb.command(&py).arg("-c").arg(PY_UNIX).arg(path).arg(&fx.m).output().unwrap();
        format!("{} {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let dir = fx.home.join(".cache/ssh");
    let mut srv = MovedSocketServer::start("later", &dir);
    let first = connect(&srv.names[0]);
    srv.move_now(&dir);
    let second = connect(&srv.names[0]);
    let accepted = srv.accepted_with_control();
    assert!(accepted >= 1, "control: the host's own connection did not reach the server");
    assert_eq!(accepted, 1, "SANDBOX ESCAPE: a host socket moved between two commands was reached offline\nfirst: {first}\nafter the move: {second}");
}
