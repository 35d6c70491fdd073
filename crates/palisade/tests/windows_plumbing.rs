//! Plumbing of the Windows backend that Wine can run: the CLI's stdio relay, exit codes
//! (the command's own, 125/126/127), refusals, the private temporary folder, the job object
//! ending the process tree, the library's `Child` API and `cleanup`. Wine accepts the token and
//! ACL calls without enforcing them, so nothing here checks that a write is denied: that is
//! `windows_enforcement.rs`, on real Windows.
#![cfg(windows)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests share palisade's state folder (and Wine's slow process start-up): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The variable that turns this test binary into a helper process (see `helper`).
const HELPER: &str = "PALISADE_TEST_HELPER";

/// Not a test of its own: when `PALISADE_TEST_HELPER` is set, this binary (started with
/// `--exact helper`) acts as a small program for the tests below.
///
/// * `spawn-writer:<path>:<ms>`: starts itself in the background as `write:<path>:<ms>` and
///   exits at once;
/// * `write:<path>:<ms>`: waits, then writes `late` to the file;
/// * `sleep:<ms>`: waits.
#[test]
#[ignore = "not a test: the helper process the tests start (with --ignored)"]
fn helper() {
    let Ok(mode) = std::env::var(HELPER) else { return };
    let mut parts = mode.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("spawn-writer"), Some(_), Some(_)) => {
            let rest = mode.trim_start_matches("spawn-writer:");
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "helper", "--ignored", "--nocapture", "--test-threads=1"])
                .env(HELPER, format!("write:{rest}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::process::exit(0);
        }
        (Some("write"), Some(_), Some(_)) => {
            // The path may hold a drive letter's colon: the wait is after the last colon.
            let rest = mode.trim_start_matches("write:");
            let (path, ms) = rest.rsplit_once(':').unwrap();
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            std::fs::write(path, "late").unwrap();
            std::process::exit(0);
        }
        (Some("sleep"), Some(ms), None) => {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            std::process::exit(0);
        }
        _ => panic!("unknown helper mode {mode}"),
    }
}

fn helper_command() -> Vec<String> {
    vec![
        std::env::current_exe().unwrap().display().to_string(),
        "--exact".into(),
        "helper".into(),
        "--ignored".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ]
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace { dir: tempfile::Builder::new().prefix("palisade-plumbing-").tempdir().unwrap() }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A profile and application-data folder of its own for every palisade the tests start, so that
/// neither the user's configuration nor the secrets folders of the machine's real profile
/// (`.ssh`, `.azure`, ... which the unelevated mode refuses to run with, since it cannot deny
/// reading them) change what the tests see.
fn fake_home() -> &'static Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let d = tempfile::Builder::new().prefix("palisade-home-").tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("AppData").join("Roaming")).unwrap();
        d
    })
    .path()
}

fn palisade() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_palisade"));
    c.env("USERPROFILE", fake_home()).env("APPDATA", fake_home().join("AppData").join("Roaming"));
    c
}

/// `palisade run --network on [extra...] -- <command>` in `ws`, with stdin from `input`.
fn run_in(ws: &Path, extra: &[&str], command: &[&str], input: Option<&str>) -> Output {
    let mut c = palisade();
    c.arg("run").arg("--workspace").arg(ws).args(["--network", "on"]).args(extra).arg("--").args(command);
    c.current_dir(ws);
    c.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("start palisade");
    if let Some(text) = input {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\n")
}

fn assert_one_palisade_line(out: &Output) {
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got {err:?}");
    assert!(lines[0].starts_with("palisade: "), "{err:?}");
}

#[test]
fn echo_reaches_stdout() {
    let _g = serial();
    let ws = Workspace::new();
    let out = run_in(ws.path(), &[], &["cmd", "/c", "echo hello"], None);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\n");
}

#[test]
fn stdin_is_relayed() {
    let _g = serial();
    let ws = Workspace::new();
    let out = run_in(ws.path(), &[], &["cmd", "/c", "set /p X= & call echo got %X%"], Some("piped\r\n"));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("got piped"), "{:?}", text(&out.stdout));
}

#[test]
fn exit_codes() {
    let _g = serial();
    let ws = Workspace::new();
    let out = run_in(ws.path(), &[], &["cmd", "/c", "exit 3"], None);
    assert_eq!(out.status.code(), Some(3));

    let out = run_in(ws.path(), &[], &["palisade-no-such-program"], None);
    assert_eq!(out.status.code(), Some(127), "stderr: {}", text(&out.stderr));
    assert_one_palisade_line(&out);
    assert!(text(&out.stderr).contains("not found"), "{}", text(&out.stderr));

    std::fs::create_dir(ws.path().join("a-folder")).unwrap();
    let out = run_in(ws.path(), &[], &[r".\a-folder"], None);
    assert_eq!(out.status.code(), Some(126), "stderr: {}", text(&out.stderr));
    assert_one_palisade_line(&out);

    std::fs::write(ws.path().join("notes.txt"), "not a program").unwrap();
    let out = run_in(ws.path(), &[], &[r".\notes.txt"], None);
    assert_eq!(out.status.code(), Some(126), "stderr: {}", text(&out.stderr));
    assert_one_palisade_line(&out);
}

#[test]
fn batch_files_get_their_arguments() {
    let _g = serial();
    let ws = Workspace::new();
    std::fs::write(ws.path().join("args.cmd"), "@echo off\r\necho [%1] [%2] [%3]\r\nexit /b 4\r\n").unwrap();
    let out = run_in(ws.path(), &[], &[r".\args", "a b", "c&d", "plain"], None);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#"["a b"] ["c&d"] [plain]"#);
    // `%` would be expanded by cmd.exe: refused rather than passed changed.
    let out = run_in(ws.path(), &[], &[r".\args", "100%"], None);
    assert_eq!(out.status.code(), Some(125));
    assert_one_palisade_line(&out);
}

#[test]
fn network_off_is_refused_in_one_line() {
    let _g = serial();
    let ws = Workspace::new();
    let out =
        palisade().arg("run").arg("--workspace").arg(ws.path()).args(["--", "cmd", "/c", "echo x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_one_palisade_line(&out);
    assert!(text(&out.stderr).contains("--network on"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

/// The network allowlist cannot be enforced by the unelevated mode (no firewall without
/// administrator rights): refused in one line naming the elevated mode, never run unfenced (the
/// unelevated mode would otherwise read "allow" as "not off").
#[test]
fn network_allow_is_refused_in_one_line() {
    let _g = serial();
    let ws = Workspace::new();
    let out = palisade()
        .arg("run")
        .arg("--workspace")
        .arg(ws.path())
        .args(["--allow-net", "example.com", "--", "cmd", "/c", "echo ran"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert_one_palisade_line(&out);
    assert!(text(&out.stderr).contains("network = allow"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("elevated"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "the command ran: {}", text(&out.stdout));
}

/// `%ProgramData%` is the caller's to set: pointing it at a folder with a managed file must not
/// move the administrator's file (it comes from the ProgramData known folder).
#[test]
fn the_managed_file_is_not_taken_from_the_environment() {
    let _g = serial();
    let ws = Workspace::new();
    let fake = ws.path().join("fake-programdata");
    std::fs::create_dir_all(fake.join("palisade")).unwrap();
    std::fs::write(fake.join("palisade").join("managed.toml"), "allowed_modes = [\"read-only\"]\n").unwrap();
    let out = palisade().env("ProgramData", &fake).arg("policy").arg("--workspace").arg(ws.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(!shown.contains(&fake.display().to_string()), "the managed file came from %ProgramData%: {shown}");
    assert!(shown.lines().any(|l| l.starts_with("mode") && l.contains("workspace-write")), "{shown}");
}

/// A user config in a private `%APPDATA%`.
fn with_user_config(ws: &Path, config: &str, args: &[&str]) -> Output {
    let appdata = ws.join("appdata");
    std::fs::create_dir_all(appdata.join("palisade")).unwrap();
    std::fs::write(appdata.join("palisade").join("config.toml"), config).unwrap();
    palisade().env("APPDATA", &appdata).args(args).output().unwrap()
}

#[test]
fn configuration_errors_exit_125_in_one_line() {
    let _g = serial();
    let ws = Workspace::new();
    let w = ws.path().display().to_string();
    let run = ["run", "--workspace", &w, "--network", "on", "--", "cmd", "/c", "echo x"];

    let out = with_user_config(ws.path(), "mode = \"bogus\"\n", &run);
    assert_eq!(out.status.code(), Some(125));
    assert_one_palisade_line(&out);
    assert!(text(&out.stderr).contains("config.toml:1:"), "{}", text(&out.stderr));

    let out = with_user_config(ws.path(), "[windows]\nmode = \"elevated\"\n", &run);
    assert_eq!(out.status.code(), Some(125));
    assert_one_palisade_line(&out);
    assert!(text(&out.stderr).contains("elevated"), "{}", text(&out.stderr));

    let out = palisade().args(["run", "--no-such-flag", "--", "cmd"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_one_palisade_line(&out);
}

#[test]
fn deny_read_that_exists_is_refused() {
    let _g = serial();
    let ws = Workspace::new();
    let secret = ws.path().join("secrets");
    std::fs::create_dir(&secret).unwrap();
    let w = ws.path().display().to_string();
    let config = format!("deny_read = ['{}']\n", secret.display());
    let out = with_user_config(
        ws.path(),
        &config,
        &["run", "--workspace", &w, "--network", "on", "--", "cmd", "/c", "echo x"],
    );
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert_one_palisade_line(&out);
    assert!(text(&out.stderr).contains("deny_read"), "{}", text(&out.stderr));
}

#[test]
fn private_temporary_folder() {
    let _g = serial();
    let ws = Workspace::new();
    let out = run_in(
        ws.path(),
        &[],
        &["cmd", "/c", "echo %TMP%& echo %TEMP%& echo %PALISADE_SANDBOX%& echo made> %TMP%\\f.txt"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 3, "{stdout:?}");
    assert_eq!(lines[0], lines[1]);
    assert!(lines[0].contains("palisade-"), "{stdout:?}");
    assert_eq!(lines[2], "1");
    // Removed with everything in it once the command ended.
    assert!(!Path::new(lines[0]).exists(), "{} is still there", lines[0]);
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    path.exists()
}

#[test]
fn the_job_ends_the_process_tree() {
    let _g = serial();
    let ws = Workspace::new();
    let marker = ws.path().join("late.txt");
    // The helper (the command) starts a grandchild that writes the marker later, and exits.
    let h = helper_command();
    let args: Vec<&str> = h.iter().map(String::as_str).collect();
    let mode = format!("spawn-writer:{}:1500", marker.display());
    let run = |extra: &[&str]| {
        let mut c = palisade();
        c.arg("run").arg("--workspace").arg(ws.path()).args(["--network", "on"]).args(extra).arg("--").args(&args);
        c.env(HELPER, &mode).stdin(Stdio::null()).output().unwrap()
    };

    // The control first: with --keep-processes the grandchild lives on and writes the marker;
    // how long that took here is how long the check below must wait at least, so that a slow
    // machine cannot make "no marker yet" pass for "ended".
    let start = Instant::now();
    let out = run(&["--keep-processes"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(wait_for(&marker, Duration::from_secs(30)), "control: the grandchild did not run with --keep-processes");
    let took = start.elapsed();
    std::fs::remove_file(&marker).unwrap();

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(!wait_for(&marker, (took * 3).max(Duration::from_secs(4))), "the grandchild outlived the command");
}

fn policy(ws: &Path) -> palisade::Policy {
    let mut p = palisade::Policy::new(ws, None);
    p.network = palisade::Network::On;
    p
}

#[test]
fn library_child_api() {
    let _g = serial();
    let ws = Workspace::new();
    let sandbox = palisade::Sandbox::new(policy(ws.path())).unwrap();
    assert!(sandbox.enforcement().layers.iter().any(|l| l.name == "job object" && l.active));

    let out = sandbox.command("cmd").args(["/c", "echo out& echo err 1>&2& exit 5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(text(&out.stdout).trim(), "out");
    assert_eq!(text(&out.stderr).trim(), "err");

    let h = helper_command();
    let mut child =
        sandbox.command(&h[0]).args(&h[1..]).env(HELPER, "sleep:30000").stdout(palisade::Stdio::Null).spawn().unwrap();
    assert!(child.id() != 0);
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(9), "{st}");
    assert_eq!(st.shell_code(), 137);

    let mut child =
        sandbox.command(&h[0]).args(&h[1..]).env(HELPER, "sleep:30000").stdout(palisade::Stdio::Null).spawn().unwrap();
    child.signal(15).unwrap();
    let start = Instant::now();
    let st = child.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20), "SIGTERM did not end the command");
    assert!(!st.success(), "{st}");

    match sandbox.command("palisade-no-such-program").status() {
        Err(palisade::Error::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn unchanged_policy_changes_no_acl_and_cleanup_removes_the_record() {
    let _g = serial();
    let ws = Workspace::new();
    // The first command applies the ACEs and creates placeholders for missing protected paths
    // (`.git`, `.vscode`, ... in this empty workspace); from then on nothing changes: an
    // unchanged policy costs no ACL change at all.
    let mut details = Vec::new();
    for _ in 0..3 {
        let s = palisade::Sandbox::new(policy(ws.path())).unwrap();
        let acls = s.enforcement().layers.iter().find(|l| l.name == "ACLs").expect("an ACLs layer").detail.clone();
        details.push(acls);
        assert_eq!(s.command("cmd").args(["/c", "exit 0"]).status().unwrap().code(), Some(0));
    }
    assert!(details[0].contains("to apply"), "{details:#?}");
    assert!(details[1].contains("unchanged") && details[2].contains("unchanged"), "{details:#?}");
    assert!(ws.path().join(".vscode").is_dir(), "no placeholder for .vscode");
    std::fs::write(ws.path().join(".claude").join("kept.txt"), "the user's").unwrap();

    let report = palisade::cleanup().unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    let state = state_dir();
    let rec = std::fs::read_to_string(state.join("acl.json")).unwrap();
    assert!(!rec.contains("\"trustee\""), "entries left after cleanup: {rec}");
    // Empty placeholders are gone; one the user put something into stays.
    assert!(!ws.path().join(".vscode").exists(), "the empty .vscode placeholder is still there");
    assert!(ws.path().join(".claude").join("kept.txt").exists());
    // Idempotent.
    let again = palisade::cleanup().unwrap();
    assert_eq!(again.removed, 0, "{again:?}");
    assert!(again.failed.is_empty(), "{again:?}");
}

fn state_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("LOCALAPPDATA").expect("LOCALAPPDATA")).join("Palisade")
}

#[test]
fn check_and_sandbox_creation_change_nothing_on_disk() {
    let _g = serial();
    let ws = Workspace::new();
    let out = palisade().args(["check", "--network", "on", "--workspace"]).arg(ws.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("to apply before the command"), "{}", text(&out.stdout));
    drop(palisade::Sandbox::new(policy(ws.path())).unwrap());
    let entries: Vec<_> = std::fs::read_dir(ws.path()).unwrap().collect();
    assert!(entries.is_empty(), "placeholders made before any command ran: {entries:?}");
}

#[test]
fn check_reports_the_host() {
    let _g = serial();
    let ws = Workspace::new();
    let out = palisade().args(["check", "--network", "on", "--json", "--workspace"]).arg(ws.path()).output().unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert!(json["host"]["wine"].is_string(), "{json}");
    let notes = json["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap_or("").contains("world-writable audit")), "{json}");
    let mech = json["mechanisms"].as_array().unwrap();
    assert!(mech.iter().any(|m| m["name"] == "job object" && m["available"] == true), "{json}");
}

/// `--status-fd N` on Windows: N is the value of an inheritable handle the caller passed (here
/// the write end of a pipe). The record arrives there and the command's own output does not; the
/// pipe ends when palisade does. A value that is no open handle is refused in one line with
/// 125 before anything runs.
#[test]
fn status_fd_takes_an_inherited_handle() {
    use std::io::Read;
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Foundation::{SetHandleInformation, HANDLE_FLAG_INHERIT};
    let _g = serial();
    let ws = Workspace::new();
    let (mut reader, writer) = std::io::pipe().unwrap();
    // SAFETY: the handle is the pipe's write end, open until `writer` drops.
    let ok = unsafe { SetHandleInformation(writer.as_raw_handle() as _, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) };
    assert_ne!(ok, 0, "SetHandleInformation: {}", std::io::Error::last_os_error());
    let value = (writer.as_raw_handle() as usize).to_string();
    let mut c = palisade();
    c.arg("run").arg("--workspace").arg(ws.path()).args(["--network", "on", "--status-fd", &value, "--"]);
    c.args(["cmd", "/c", "echo out-of-band & exit 7"]).current_dir(ws.path());
    let child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(writer);
    // Read while palisade runs: a pipe's buffer may be smaller than the record.
    let reading = std::thread::spawn(move || {
        let mut record = String::new();
        reader.read_to_string(&mut record).map(|_| record)
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    let record = reading.join().unwrap().unwrap();
    let r: serde_json::Value = serde_json::from_str(record.trim())
        .unwrap_or_else(|e| panic!("{e}: {record:?} (stderr {})", text(&out.stderr)));
    assert_eq!(r["exit_code"], 7, "{r}");
    assert!(!record.contains("out-of-band"), "the command's output reached the status handle: {record}");
    assert!(text(&out.stdout).contains("out-of-band"), "{}", text(&out.stdout));

    for bad in ["4000000", "0"] {
        let marker = ws.path().join("ran.txt");
        let mut c = palisade();
        c.arg("run").arg("--workspace").arg(ws.path()).args(["--network", "on", "--status-fd", bad, "--"]);
        let out =
            c.args(["cmd", "/c", "echo x> ran.txt"]).current_dir(ws.path()).stdin(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(125), "--status-fd {bad}: {}", text(&out.stderr));
        assert_one_palisade_line(&out);
        assert!(!marker.exists(), "--status-fd {bad} was refused but the command ran");
    }
}

/// `palisade mcp` on Windows: an MCP client's raw JSON-RPC over stdio, `initialize`, the tool
/// list, and a `run` call whose command's output and exit status come back; a widening call is
/// refused. (Enforcement is the unelevated mode's, shown by the enforcement tests.)
#[test]
fn mcp_server_runs_a_command() {
    use std::io::{BufRead, BufReader, Write};
    let _g = serial();
    let ws = Workspace::new();
    let mut child = palisade()
        .args(["mcp", "--workspace"])
        .arg(ws.path())
        .args(["--network", "on"])
        .current_dir(ws.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut call = |msg: serde_json::Value, reply: bool| -> serde_json::Value {
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
        if !reply {
            return serde_json::Value::Null;
        }
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the server closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let init = call(
        serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "wine", "version": "0"}}}),
        true,
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "palisade", "{init}");
    call(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), false);
    let tools = call(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), true);
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"run") && names.contains(&"policy"), "{tools}");
    let ran = call(
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "run", "arguments": {"command": ["cmd", "/c", "echo from-mcp& exit 5"]}}}),
        true,
    );
    let result = &ran["result"];
    let body: serde_json::Value = result
        .get("structuredContent")
        .cloned()
        .unwrap_or_else(|| serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap());
    assert_eq!(body["exit_code"], 5, "{ran}");
    assert!(body["stdout"].as_str().unwrap_or("").contains("from-mcp"), "{ran}");
    let widen = call(
        serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "run", "arguments": {"command": ["cmd", "/c", "exit 0"], "writable": ["C:\\"]}}}),
        true,
    );
    assert!(widen["error"]["message"].as_str().is_some(), "a widening call was not refused: {widen}");
    drop(stdin);
    let _ = child.wait();
}
