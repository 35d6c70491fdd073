//! `palisade sh` / `palisade-sh` as a drop-in `sh`, the recipes of docs/integrations.md that can
//! run here (a Python agent's `subprocess`, a program running `$SHELL -c`, the Rust library),
//! and the status record of `--status-fd` / `--status-file`, validated against
//! docs/status.schema.json.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

const SH_BIN: &str = env!("CARGO_BIN_EXE_palisade-sh");

/// `palisade sh <args>` in the workspace with the fixture's environment.
fn psh(fx: &Fixture, args: &[&str]) -> Output {
    fx.palisade().arg("sh").args(args).output().expect("running palisade sh")
}

/// `palisade-sh <args>` likewise.
fn psh_bin(fx: &Fixture) -> Command {
    let mut c = Command::new(SH_BIN);
    c.current_dir(&fx.ws).envs(fx.env()).stdin(std::process::Stdio::null());
    c
}

#[test]
fn sh_c_gives_the_commands_streams_and_exit_code() {
    let fx = Fixture::new();
    let o = psh(&fx, &["-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", show(&o));
    assert_eq!(stdout(&o), "out\n", "{}", show(&o));
    assert_eq!(stderr(&o), "err\n", "{}", show(&o));
    // ARG0 and the positional arguments, as `sh -c CMD NAME ARGS...`.
    let o = psh(&fx, &["-c", "echo \"$0|$1|$2|$#\"", "name", "a b", "c"]);
    assert_eq!(stdout(&o), "name|a b|c|2\n", "{}", show(&o));
    // A signal that ends the shell: 128+N, as `palisade run` and shells report it.
    let o = psh(&fx, &["-c", "kill -TERM $$"]);
    assert_eq!(o.status.code(), Some(128 + 15), "{}", show(&o));
}

#[test]
fn sh_options_scripts_stdin_and_double_dash_reach_the_shell() {
    let fx = Fixture::new();
    // -e: the first failure ends the script.
    let o = psh(&fx, &["-ec", "false; echo not-reached"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(!stdout(&o).contains("not-reached"), "{}", show(&o));
    // -lc (a login shell, as agents often ask), with the fixture's fake profile.
    let o = psh(&fx, &["-lc", "echo login-ok"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "login-ok\n"), "{}", show(&o));
    // A script file and its arguments, after `--`.
    std::fs::write(fx.ws.join("script.sh"), "echo \"script $1\"; exit 3\n").unwrap();
    let o = psh(&fx, &["--", "script.sh", "arg"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(3), "script arg\n"), "{}", show(&o));
    // Nothing: the shell reads its commands from stdin (interactive when that is a terminal).
    let mut c = fx.palisade();
    c.arg("sh").stdin(std::fs::File::open(fx.ws.join("script.sh")).unwrap());
    let o = c.output().unwrap();
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(3), "script \n"), "{}", show(&o));
}

#[test]
fn sh_is_sandboxed_a_write_outside_is_refused() {
    let fx = Fixture::new();
    fx.require_visible();
    let before = Snapshot::take(&fx.outside);
    let o = psh(
        &fx,
        &["-c", "echo pwned > \"$PAL_OUT/victim.txt\"; echo inside > \"$PAL_WS/made.txt\"; echo $PALISADE_SANDBOX"],
    );
    before.assert_unchanged("palisade sh -c writing outside the workspace", &o);
    assert_eq!(stdout(&o), "1\n", "{}", show(&o));
    assert_eq!(std::fs::read_to_string(fx.ws.join("made.txt")).unwrap(), "inside\n", "{}", show(&o));
    assert!(stderr(&o).contains("victim.txt"), "the shell did not report the refused write: {}", show(&o));
}

#[test]
fn palisade_sh_flags_come_from_the_environment_and_bad_ones_are_one_line_125() {
    let fx = Fixture::new();
    let o = psh_bin(&fx)
        .env("PALISADE_SH_FLAGS", "--mode read-only")
        .args(["-c", "echo x > \"$PAL_WS/ro.txt\""])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!fx.ws.join("ro.txt").exists(), "--mode read-only from PALISADE_SH_FLAGS was not applied: {}", show(&o));
    let o = psh_bin(&fx).env("PALISADE_SH_FLAGS", "--bogus").args(["-c", "echo ran"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", show(&o));
    assert!(stderr(&o).starts_with("palisade: PALISADE_SH_FLAGS"), "{}", show(&o));
    assert!(stdout(&o).is_empty(), "{}", show(&o));
}

/// docs/integrations.md, "A Python agent": `subprocess.run(cmd, shell=True, executable=...)`.
#[test]
fn recipe_python_subprocess_with_palisade_sh() {
    let fx = Fixture::new();
    fx.require_visible();
    let py = require_tool("python3");
    let agent = r#"
import subprocess, sys
r = subprocess.run(sys.argv[1], shell=True, executable=sys.argv[2], capture_output=True, text=True)
print("rc=%d out=%r err=%r" % (r.returncode, r.stdout, r.stderr))
"#;
    let before = Snapshot::take(&fx.outside);
    let cmd = "echo hello; echo oops >&2; echo pwned > \"$PAL_OUT/victim.txt\" || exit 4";
    let o = Command::new(&py).args(["-c", agent, cmd, SH_BIN]).current_dir(&fx.ws).envs(fx.env()).output().unwrap();
    before.assert_unchanged("a Python agent's subprocess through palisade-sh", &o);
    let out = stdout(&o);
    assert!(out.starts_with("rc=4 out='hello\\n' err='oops\\n"), "{}", show(&o));
}

/// docs/integrations.md, "Tools that run `$SHELL -c`" (Aider, editors, make SHELL=...).
#[test]
fn recipe_shell_variable_names_palisade_sh() {
    let fx = Fixture::new();
    fx.require_visible();
    let before = Snapshot::take(&fx.outside);
    // The tool is an ordinary host program that runs "$SHELL" -c; inside, a nested `$SHELL -c`
    // (the command's own tools honour SHELL too) runs directly under the same sandbox.
    let o = Command::new("/bin/sh")
        .args([
            "-c",
            r#""$SHELL" -c 'echo "in=$PALISADE_SANDBOX"; "$SHELL" -c "echo nested=\$PALISADE_SANDBOX; echo x > \"\$PAL_OUT/victim.txt\"; exit 6"'"#,
        ])
        .current_dir(&fx.ws)
        .envs(fx.env())
        .env("SHELL", SH_BIN)
        .output()
        .unwrap();
    before.assert_unchanged("$SHELL -c with SHELL=palisade-sh", &o);
    assert_eq!(o.status.code(), Some(6), "{}", show(&o));
    assert_eq!(stdout(&o), "in=1\nnested=1\n", "{}", show(&o));
    // Under another name (tools that judge a shell by its name): the same.
    let link = fx.root.join("palisade-bash");
    std::os::unix::fs::symlink(SH_BIN, &link).unwrap();
    let o = Command::new(&link)
        .args(["-c", "echo \"$PALISADE_SANDBOX\"; exit 3"])
        .current_dir(&fx.ws)
        .envs(fx.env())
        .output()
        .unwrap();
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(3), "1\n"), "{}", show(&o));
}

/// docs/integrations.md, "The Rust library".
#[test]
fn recipe_rust_library() {
    let fx = Fixture::new();
    fx.require_visible();
    let before = Snapshot::take(&fx.outside);
    let policy = palisade::Policy::new(&fx.ws, Some(&fx.home));
    let sandbox = palisade::Sandbox::new(policy).expect("Sandbox::new");
    let out = sandbox
        .command("sh")
        .arg("-c")
        .arg(format!("echo built; echo x > {}/victim.txt; exit 2", fx.outside.display()))
        .current_dir(&fx.ws)
        .output()
        .expect("running the command");
    assert_eq!(out.status.code(), Some(2), "{:?}", out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "built\n");
    let after = Snapshot::take(&fx.outside);
    assert!(
        before.diff(&after).is_empty(),
        "the library's sandbox let a write outside through: {:?}",
        before.diff(&after)
    );
}

// --- the status record ------------------------------------------------------------------------

fn validate(record: &serde_json::Value) {
    let schema_text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/status.schema.json"))
            .expect("reading docs/status.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&schema_text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let errors: Vec<String> =
        validator.iter_errors(record).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "the record does not match docs/status.schema.json: {errors:?}\n{record:#}");
}

fn read_record(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(text.lines().count(), 1, "one record, one line: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `palisade run --status-fd 3 ... 3>FILE`, through a host shell that opens the descriptor.
fn run_with_fd(fx: &Fixture, fd_target: &Path, extra: &str, script: &str) -> Output {
    let line = format!(
        "exec \"$BIN\" run --workspace \"$PAL_WS\" {extra} -- sh -c '{script}' 3>\"$STATUS\"",
        extra = extra,
        script = script
    );
    Command::new("/bin/sh")
        .args(["-c", &line])
        .current_dir(&fx.ws)
        .envs(fx.env())
        .env("BIN", BIN)
        .env("STATUS", fd_target)
        .output()
        .unwrap()
}

#[test]
fn status_fd_gets_one_valid_record_the_command_never_sees() {
    let fx = Fixture::new();
    let status = fx.root.join("status.json");
    let o = run_with_fd(
        &fx,
        &status,
        "--status-fd 3",
        "if test -e /proc/self/fd/3; then echo fd3-inherited; fi; echo out; echo err >&2; exit 5",
    );
    assert_eq!(o.status.code(), Some(5), "{}", show(&o));
    assert_eq!(stdout(&o), "out\n", "{}", show(&o));
    assert_eq!(stderr(&o), "err\n", "the record or a notice mixed into stderr: {}", show(&o));
    let r = read_record(&status);
    validate(&r);
    assert_eq!(r["exit_code"], 5);
    assert_eq!(r["status"], 5);
    assert!(r["signal"].is_null());
    assert!(r["policy_digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(r["policy_sources"]["mode"]["value"], "workspace-write");
    assert!(!r["layers"].as_array().unwrap().is_empty(), "{r:#}");
}

#[test]
fn status_file_and_json_status_together_and_the_digest_follows_the_policy() {
    let fx = Fixture::new();
    let a = fx.root.join("a.json");
    let b = fx.root.join("b.json");
    let c = fx.root.join("c.json");
    let run = |file: &Path, flags: &[&str], script: &str| {
        let mut cmd = fx.palisade();
        cmd.args(["run", "--workspace"]).arg(&fx.ws).arg("--status-file").arg(file).args(flags);
        cmd.args(["--", "sh", "-c", script]).output().unwrap()
    };
    let o = run(&a, &["--json-status"], "kill -KILL $$");
    assert_eq!(o.status.code(), Some(128 + 9), "{}", show(&o));
    // --json-status is unchanged: its line is still the last on stderr.
    let last: serde_json::Value = serde_json::from_str(stderr(&o).lines().last().unwrap()).expect("json-status line");
    assert_eq!(last["status"], 137);
    let ra = read_record(&a);
    validate(&ra);
    assert_eq!(ra["signal"], 9);
    assert!(ra["exit_code"].is_null());
    ok(&run(&b, &[], "true"));
    ok(&run(&c, &["--mode", "read-only"], "true"));
    let (rb, rc) = (read_record(&b), read_record(&c));
    validate(&rb);
    assert_eq!(ra["policy_digest"], rb["policy_digest"], "same policy, same digest");
    assert_ne!(rb["policy_digest"], rc["policy_digest"], "another mode, another digest");
}

#[test]
fn a_refused_run_still_writes_a_record_and_a_bad_fd_is_one_line_125() {
    let fx = Fixture::new();
    let file = fx.root.join("refused.json");
    let o = fx
        .palisade()
        .args(["run", "--workspace"])
        .arg(fx.root.join("no-such-workspace"))
        .arg("--status-file")
        .arg(&file)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    let r = read_record(&file);
    validate(&r);
    assert_eq!(r["status"], 125);
    assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r:#}");
    let marker = fx.ws.join("ran");
    for (fd, why) in [("9", "not open"), ("1", "standard stream")] {
        let o = fx
            .palisade()
            .args(["run", "--workspace"])
            .arg(&fx.ws)
            .args(["--status-fd", fd, "--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(125), "--status-fd {fd}: {}", show(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "--status-fd {fd}: {}", show(&o));
        assert!(stderr(&o).contains(why), "--status-fd {fd}: {}", show(&o));
        assert!(!marker.exists(), "--status-fd {fd} was refused but the command ran");
    }
}

#[test]
fn palisade_sh_writes_the_status_record_from_palisade_sh_flags() {
    let fx = Fixture::new();
    let file = fx.root.join("sh.json");
    let o = psh_bin(&fx)
        .env("PALISADE_SH_FLAGS", format!("--status-file {}", file.display()))
        .args(["-c", "exit 9"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(9), "{}", show(&o));
    let r = read_record(&file);
    validate(&r);
    assert_eq!(r["exit_code"], 9);
}

/// `--status-file` in a folder the command may write is refused (125, one line naming the
/// writable root) before anything runs: the command could write a forged record there and make
/// the folder read-only, or move the folder away so that palisade's record lands elsewhere (both
/// tried by an attack on an earlier version). In read-only mode the workspace is no writable
/// root, and a record there is written.
#[test]
fn a_status_file_inside_a_writable_root_is_refused() {
    let fx = Fixture::new();
    let marker = fx.ws.join("ran");
    for file in [fx.ws.join("status.json"), fx.ws.join("sub").join("status.json")] {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let o = fx
            .palisade()
            .args(["run", "--workspace"])
            .arg(&fx.ws)
            .arg("--status-file")
            .arg(&file)
            .args(["--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(125), "{}: {}", file.display(), show(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", show(&o));
        assert!(stderr(&o).contains("inside the writable root"), "{}", show(&o));
        assert!(!marker.exists(), "--status-file {} was refused but the command ran", file.display());
    }
    let file = fx.ws.join("read-only.json");
    let o = fx
        .palisade()
        .args(["run", "--mode", "read-only", "--workspace"])
        .arg(&fx.ws)
        .arg("--status-file")
        .arg(&file)
        .args(["--", "sh", "-c", "exit 4"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    let r = read_record(&file);
    validate(&r);
    assert_eq!(r["exit_code"], 4);
}
