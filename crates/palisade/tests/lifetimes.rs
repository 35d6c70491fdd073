//! The library's object lifetimes must not weaken a running command: dropping the `Sandbox`
//! while a command it started still runs must leave that command's protections in place (the
//! placeholders of missing protected paths stay until the command ends).
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};

#[test]
fn dropping_the_sandbox_keeps_a_running_commands_placeholders() {
    // A `palisade cleanup` of the tests below, running meanwhile, may be the one that removes
    // this sandbox's placeholders (it takes the root's lock in the moment between this
    // sandbox's release of its shared lock and its try for the exclusive one), and may still be
    // at it when the last assertion looks.
    let _turn = CLEANUP.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new();
    fx.git_init();
    let envrc = fx.ws.join(".envrc");
    assert!(!envrc.exists());
    let sandbox = fx.sandbox();
    let mut child = sandbox
        .command("sh")
        .arg("-c")
        .arg("echo ready; read _go; echo 'echo pwned' > .envrc; printf 'x' > .git/hooks/post-checkout; echo tried")
        .stdin(palisade::Stdio::Piped)
        .stdout(palisade::Stdio::Piped)
        .stderr(palisade::Stdio::Piped)
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // The sandbox object goes away while its command still runs.
    drop(sandbox);
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(rest.contains("tried"), "the command did not get to its attempt: {rest}");
    assert!(status.success(), "{status}");
    assert!(
        !envrc.is_file(),
        "SANDBOX ESCAPE: .envrc was created after the Sandbox was dropped: {:?}",
        std::fs::read_to_string(&envrc)
    );
    assert!(!fx.ws.join(".git/hooks/post-checkout").exists(), "SANDBOX ESCAPE: a hook was created");
    // And once everything has ended, the placeholder is gone from the host.
    assert!(!envrc.exists(), "the .envrc placeholder was left behind");
}

/// `palisade cleanup` acts on every workspace of this user: the two tests using it take turns,
/// or one's cleanup would remove the other's killed run's placeholders first.
static CLEANUP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A run killed with SIGKILL cannot remove its placeholders; its command dies with it, and
/// `palisade cleanup` then removes them (and the next run in that workspace would too).
#[test]
fn cleanup_removes_the_placeholders_of_a_killed_run() {
    let _turn = CLEANUP.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new();
    fx.git_init();
    let envrc = fx.ws.join(".envrc");
    let before: Vec<_> = std::fs::read_dir(&fx.ws).unwrap().map(|e| e.unwrap().file_name()).collect();
    let nap = sleep_marker().to_string();
    let mut run = fx
        .run_cmd(&[], &["sh", "-c", &format!("echo ready; exec sleep {nap}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(run.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(
        envrc.exists(),
        "no .envrc placeholder while the command runs (did the protected paths change? this test needs updating)"
    );
    run.kill().unwrap(); // SIGKILL: palisade gets no chance to clean up
    run.wait().unwrap();
    assert_eq!(survivors(&nap), Vec::<i32>::new(), "the command outlived palisade's SIGKILL");
    assert!(envrc.exists(), "the killed run's placeholder is already gone: this test proves nothing");

    let o = fx.palisade().arg("cleanup").output().unwrap();
    ok(&o);
    assert!(stdout(&o).contains("placeholders left by interrupted runs removed"), "{}", show(&o));
    assert!(!envrc.exists(), "`palisade cleanup` left the killed run's .envrc placeholder: {}", show(&o));
    let after: Vec<_> = std::fs::read_dir(&fx.ws).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(after, before, "the workspace's entries differ from before the killed run");
}

/// `palisade cleanup` while a sandbox runs must leave that sandbox's placeholders: removing one
/// from outside would detach its read-only mount inside, and the command could then create
/// the protected path.
#[test]
fn cleanup_leaves_a_running_sandboxs_placeholders() {
    let _turn = CLEANUP.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new();
    fx.git_init();
    let envrc = fx.ws.join(".envrc");
    let mut run = fx
        .run_cmd(&[], &["sh", "-c", "echo ready; read _go; echo 'echo pwned' > .envrc; echo tried"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let o = fx.palisade().arg("cleanup").output().unwrap();
    ok(&o);
    assert!(envrc.exists(), "`palisade cleanup` removed a running sandbox's .envrc placeholder: {}", show(&o));
    run.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    drop(run.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    run.wait().unwrap();
    assert!(rest.contains("tried"), "the command did not get to its attempt: {rest}");
    assert!(!envrc.is_file(), "SANDBOX ESCAPE: .envrc was created after `palisade cleanup` ran beside the sandbox");
    assert!(!envrc.exists(), "the .envrc placeholder was left behind after the run");
}
