//! network = allow from the side of a command (or a user) that tries to get more out of it than
//! the allowlist says, or that is interrupted mid-way. Proxy-level attacks (request smuggling,
//! address forms, TLS) are in crates/palisade-proxy/tests/attacks.rs; these need the sandbox.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// SIGTERM sent to `palisade run --allow-net` must reach the command, as it does offline: the
/// proxy's thread (started before the signal forwarder) must not take the signal and end
/// palisade at once, which would skip the command's own cleanup, the records and the cleanup of
/// the private /tmp and placeholders.
#[test]
fn sigterm_during_a_run_with_the_proxy_reaches_the_command() {
    let fx = Fixture::new();
    let script = "trap 'echo trapped > term-seen; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    let mut child = fx
        .run_cmd(&["--allow-net", "example.test", "--json-status"], &["sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running palisade");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "ready\n", "the command did not start");
    // SAFETY-free: kill(2) through the kill command, to the palisade process only.
    let sent = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "palisade did not end after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    // The side effect: the command's own handler ran (the signal was passed on to it).
    let seen = std::fs::read_to_string(fx.ws.join("term-seen")).unwrap_or_default();
    assert_eq!(seen, "trapped\n", "the command never got SIGTERM; palisade ended with {status:?}; stderr: {err}");
    assert_eq!(status.code(), Some(7), "palisade must end with the command's status; stderr: {err}");
    assert!(err.lines().any(|l| l.starts_with("{\"exit_code\":7")), "no --json-status line: {err}");
}
