//! Landlock-only mode (`[linux] allow_landlock_only = true`: no namespaces, Landlock and seccomp
//! only), which an unprivileged user gets where user namespaces are refused. The mode refuses
//! root's commands, so the attacks run in the unprivileged pass; the root pass checks the
//! refusal. Every assertion looks at the host: the listener received nothing, the file outside
//! is unchanged.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::io::ErrorKind;
use std::os::unix::net::UnixListener;

/// The fixture's configuration for Landlock-only mode (protected paths cannot be enforced there).
fn landlock_only(fx: &Fixture) {
    std::fs::create_dir_all(fx.xdg.join("palisade")).unwrap();
    std::fs::write(
        fx.xdg.join("palisade/config.toml"),
        "[linux]\nallow_landlock_only = true\nallow_unprotected_paths = true\n",
    )
    .unwrap();
}

/// Whether this pass can exercise the mode (root is refused, which the root pass asserts).
fn unprivileged(fx: &Fixture) -> bool {
    if is_root() {
        let o = fx.run(&["true"]);
        assert_eq!(o.status.code(), Some(125), "root's command ran in Landlock-only mode: {}", show(&o));
        skip_expected("Landlock-only mode refuses root (asserted); the unprivileged pass runs the attacks");
        return false;
    }
    true
}

const PY_UNIX: &str = "import socket, sys\ntry:\n    s = socket.socket(socket.AF_UNIX)\n    s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()); print('CONNECTED')\nexcept OSError as e:\n    print('refused', e.errno)\n";

/// A host service's pathname socket (an SSH agent, Docker's socket) outside every hidden
/// folder: offline, the command must not reach it; online it does (the control).
#[test]
fn host_pathname_socket_is_unreachable_offline() {
    let fx = Fixture::new();
    fx.require_visible();
    landlock_only(&fx);
    if !unprivileged(&fx) {
        return;
    }
    let path = fx.outside.join(format!("{}.sock", fx.m));
    let l = UnixListener::bind(&path).unwrap();
    let o = fx.py(PY_UNIX, &[s(&path), &fx.m]);
    assert!(stdout(&o).contains("refused"), "the script did not run or connected: {}", show(&o));
    let got = accepted_unix(&l);
    assert!(
        got.is_empty(),
        "SANDBOX ESCAPE: a host unix socket was reached offline in Landlock-only mode: {got:?}\n{}",
        show(&o)
    );
    let on = fx.py_flags(&["--network", "on"], PY_UNIX, &[s(&path), &fx.m]);
    assert_eq!(accepted_unix(&l).len(), 1, "control: with the network on the socket is reachable: {}", show(&on));
}

/// TCP to the host's loopback and to the host's own non-loopback address.
#[test]
fn host_tcp_listeners_are_unreachable_offline() {
    let fx = Fixture::new();
    landlock_only(&fx);
    if !unprivileged(&fx) {
        return;
    }
    let py = "import socket, sys\ns = socket.socket()\ns.settimeout(3)\ntry:\n    s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b'x'); print('CONNECTED')\nexcept OSError as e:\n    print('refused', e)\n";
    for host in ["127.0.0.1".to_string(), host_ipv4_address()] {
        let l = std::net::TcpListener::bind((host.as_str(), 0)).unwrap_or_else(|e| panic!("listening on {host}: {e}"));
        let port = l.local_addr().unwrap().port().to_string();
        let o = fx.py(py, &[&host, &port]);
        l.set_nonblocking(true).unwrap();
        let got = l.accept();
        assert!(
            got.as_ref().is_err_and(|e| e.kind() == ErrorKind::WouldBlock),
            "SANDBOX ESCAPE: the host listener on {host} accepted {got:?} from an offline Landlock-only command\n{}",
            show(&o)
        );
        let on = fx.py_flags(&["--network", "on"], py, &[&host, &port]);
        assert!(l.accept().is_ok(), "control: with the network on {host}:{port} is reachable: {}", show(&on));
    }
}

/// Writes outside the writable roots, by the routes Landlock governs in this mode.
#[test]
fn files_outside_stay_unchanged() {
    let fx = Fixture::new();
    fx.require_visible();
    landlock_only(&fx);
    if !unprivileged(&fx) {
        return;
    }
    let before = Snapshot::take(&fx.outside);
    let o = fx.sh("echo x >> \"$PAL_OUT/victim.txt\"; echo x > \"$PAL_OUT/new.txt\"; ln -s /etc \"$PAL_OUT/link\"; \
         ln \"$PAL_OUT/victim.txt\" hard; mv \"$PAL_OUT/victim.txt\" moved; rm -f \"$PAL_OUT/victim.txt\"; \
         truncate -s 0 \"$PAL_OUT/victim.txt\"; echo done");
    assert!(stdout(&o).contains("done"), "the script did not run: {}", show(&o));
    before.assert_unchanged("writes outside from a Landlock-only command", &o);
}

/// Root without user namespaces (containers, CI) can opt in: the run confines writes, and the
/// status and `check` say what stays unprotected (metadata of root's files). Never silently.
#[test]
fn root_opt_in_runs_confined_and_says_what_it_does_not_protect() {
    let fx = Fixture::new();
    fx.require_visible();
    if !is_root() {
        skip_expected("about root's commands (the root pass runs it)");
        return;
    }
    std::fs::create_dir_all(fx.xdg.join("palisade")).unwrap();
    std::fs::write(
        fx.xdg.join("palisade/config.toml"),
        "[linux]\nallow_landlock_only = true\nallow_unprotected_paths = true\nallow_landlock_only_as_root = true\n",
    )
    .unwrap();
    let before = Snapshot::take(&fx.outside);
    let o = fx.run_flags(
        &["--json-status"],
        &["sh", "-c", "echo x >> \"$PAL_OUT/victim.txt\"; echo inside > made.txt; echo done"],
    );
    assert!(stdout(&o).contains("done"), "root's opted-in run did not run: {}", show(&o));
    assert!(fx.ws.join("made.txt").exists(), "the workspace was not writable: {}", show(&o));
    before.assert_unchanged("a write outside from root's Landlock-only command", &o);
    let status = stderr(&o).lines().last().unwrap_or_default().to_string();
    let v: serde_json::Value = serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    let layer =
        v["layers"].as_array().unwrap().iter().find(|l| l["name"] == "metadata outside writable roots").cloned();
    assert!(
        layer.as_ref().is_some_and(|l| l["active"] == false),
        "the status does not say metadata is unprotected: {v}"
    );
    let c = fx.palisade().args(["check", "--workspace"]).arg(&fx.ws).output().unwrap();
    assert!(stdout(&c).contains("NOT protected"), "check does not say what stays unprotected: {}", show(&c));
}
