//! The library's object lifetimes must not weaken a running command: dropping the `Sandbox`
//! while a command it started still runs must leave that command's protections in place (the
//! placeholders of missing protected paths stay until the command ends).
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};

#[test]
fn dropping_the_sandbox_keeps_a_running_commands_placeholders() {
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
