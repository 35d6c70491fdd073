//! The library API (`Sandbox`, `Command`, `Child`), without the CLI.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use palisade::Stdio;
use std::io::{BufRead, BufReader, Write};

#[test]
fn output_captures_stdout_and_stderr() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let out = sb.command("sh").arg("-c").arg("echo out; echo err >&2; exit 3").output().unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code(), Some(3));
    assert!(!out.status.success());
}

#[test]
fn spawn_with_piped_stdin() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let mut child = sb.command("cat").stdin(Stdio::Piped).stdout(Stdio::Piped).spawn().unwrap();
    child.stdin.take().unwrap().write_all(fx.m.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, fx.m.as_bytes());
}

#[test]
fn status_codes_and_signals() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let st = sb.command("sh").arg("-c").arg("exit 0").stdout(Stdio::Null).status().unwrap();
    assert!(st.success());
    let st = sb.command("sh").arg("-c").arg("exit 42").status().unwrap();
    assert_eq!(st.code(), Some(42));
    assert_eq!(st.shell_code(), 42);
    let st = sb.command("sh").arg("-c").arg("kill -TERM $$").status().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGTERM), "{st}");
    assert_eq!(st.code(), None);
    assert_eq!(st.shell_code(), 143);
}

#[test]
fn not_found_and_not_executable_are_errors() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let e = sb.command(format!("no-such-command-{}", fx.m)).status().unwrap_err();
    assert!(matches!(e, palisade::Error::NotFound(_)), "{e:?}");
    assert_eq!(e.exit_code(), 127);
    std::fs::write(fx.ws.join("plain.txt"), "x").unwrap();
    let e = sb.command(fx.ws.join("plain.txt")).status().unwrap_err();
    assert!(matches!(e, palisade::Error::NotExecutable(_)), "{e:?}");
    assert_eq!(e.exit_code(), 126);
}

#[test]
fn relative_workspace_is_rejected() {
    let r = palisade::Sandbox::new(palisade::Policy::new("relative/ws", None));
    assert!(matches!(r, Err(palisade::Error::InvalidInput(_))), "a relative workspace was accepted");
}

/// kill() ends a long-running command and everything it started.
#[test]
fn kill_ends_the_command_and_its_descendants() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let base = sleep_marker();
    let (a, b) = (format!("sleep\0{}", base + 1), format!("sleep\0{}", base + 2));
    let _g = (KillOnDrop(a.clone()), KillOnDrop(b.clone()));
    let mut child = sb
        .command("sh")
        .arg("-c")
        .arg("sleep $(($1+1)) </dev/null >/dev/null 2>&1 & setsid sleep $(($1+2)) </dev/null >/dev/null 2>&1 & echo started; sleep $(($1+3))")
        .arg("sh")
        .arg(base.to_string())
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pids_with(&a).is_empty() || pids_with(&b).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the background processes never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(child.try_wait().unwrap().is_none(), "the command ended by itself");
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert!(!st.success(), "{st}");
    for n in [&a, &b] {
        let left = survivors(n);
        assert!(left.is_empty(), "{:?} survived kill(): {left:?}", n.replace('\0', " "));
    }
}

#[test]
fn try_wait_reports_running_then_finished() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let mut child = sb.command("cat").stdin(Stdio::Piped).stdout(Stdio::Null).spawn().unwrap();
    assert!(child.id() > 0);
    // cat waits for its input: still running, deterministically.
    assert_eq!(child.try_wait().unwrap(), None);
    drop(child.stdin.take());
    let st = child.wait().unwrap();
    assert!(st.success());
    assert_eq!(child.try_wait().unwrap(), Some(st), "try_wait after wait should return the same status");
}

#[test]
fn env_set_by_the_caller_passes_even_if_secret_looking() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let out = sb
        .command("sh")
        .arg("-c")
        .arg("echo $API_TOKEN; echo ${GONE-unset}")
        .env("API_TOKEN", &fx.m)
        .env("GONE", "x")
        .env_remove("GONE")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\nunset\n", fx.m));
    let out = sb.command("sh").arg("-c").arg("echo ${HOME-unset}").env_clear().output().unwrap();
    assert_eq!(out.stdout, b"unset\n", "env_clear left HOME");
}

#[test]
fn enforcement_lists_the_layers() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    let layers = &sb.enforcement().layers;
    for name in ["user namespace", "mount namespace", "pid namespace", "network namespace", "seccomp"] {
        let l = layers.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no layer {name}: {layers:?}"));
        assert!(l.active, "{name} is not active on this host: {layers:?}");
    }
}

/// Several commands from one sandbox, concurrently, each confined.
#[test]
fn one_sandbox_many_commands() {
    let fx = Fixture::new();
    let sb = fx.sandbox();
    std::thread::scope(|s| {
        for i in 0..4 {
            let sb = &sb;
            let ws = fx.ws.clone();
            s.spawn(move || {
                let out = sb.command("sh").arg("-c").arg(format!("echo {i} > f{i} && cat f{i}")).output().unwrap();
                assert_eq!(out.stdout, format!("{i}\n").as_bytes(), "{}", String::from_utf8_lossy(&out.stderr));
                assert!(ws.join(format!("f{i}")).is_file());
            });
        }
    });
}

/// Landlock-only mode ends what a command leaves behind when it ends (this process is a child
/// subreaper then). That must not reach another command of the same program still running
/// beside it (an MCP server or a harness runs several at once): it is not an orphan.
#[test]
fn ending_one_landlock_only_command_leaves_a_concurrent_one_running() {
    let fx = Fixture::new();
    let Some(sandbox) = landlock_only_sandbox(fx.policy(), false) else {
        return;
    };
    let mut long = sandbox
        .command("sh")
        .arg("-c")
        .arg("sleep 1; echo survived > survived.txt")
        .current_dir(&fx.ws)
        .stdin(palisade::Stdio::Null)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let short = sandbox.command("true").current_dir(&fx.ws).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(short.status.success());
    let status = long.wait().unwrap();
    assert!(status.success(), "the concurrent command was ended with the other one: {status:?}");
    assert_eq!(std::fs::read_to_string(fx.ws.join("survived.txt")).unwrap(), "survived\n");
}
