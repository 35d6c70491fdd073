//! `palisade mcp` end to end: a real MCP client (the official Python SDK, installed once into
//! a virtual environment under target/) lists the tools, runs commands and sees refusals; raw
//! JSON-RPC from here checks bad input and a client that disconnects mid-command.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_client.py");

/// The virtual environment's python, with `mcp` from PyPI installed (once; kept under target/
/// for the next runs). No PyPI means a failure that says so, never a skip.
fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    PY.get_or_init(|| {
        let _held = LOCK.lock();
        let target = PathBuf::from(BIN).parent().and_then(|d| d.parent()).map(PathBuf::from).expect("target dir");
        let venv = target.join("mcp-venv");
        let py = venv.join("bin/python3");
        let ready = venv.join("palisade-mcp-installed");
        if ready.exists() {
            return py;
        }
        // The system's Python, not a per-user one (pyenv under /root): the unprivileged pass of
        // scripts/test.sh runs the venv the root pass made, so its interpreter must be one every
        // user can run.
        let system_python = Path::new("/usr/bin/python3");
        let base = if system_python.exists() { system_python } else { Path::new("python3") };
        let o = Command::new(base).args(["-m", "venv"]).arg(&venv).output().expect("running python3 -m venv");
        assert!(o.status.success(), "python3 -m venv failed (install python3-venv: scripts/deps.sh): {}", show(&o));
        let o = Command::new(&py).args(["-m", "pip", "install", "-q", "mcp>=2.3,<3"]).output().expect("running pip");
        assert!(
            o.status.success(),
            "pip install mcp failed: these tests need PyPI (the official MCP Python SDK) reachable: {}",
            show(&o)
        );
        std::fs::write(&ready, "").unwrap();
        py
    })
    .clone()
}

fn client(fx: &Fixture, action: &str, marker: &str) -> Command {
    let mut c = Command::new(python());
    c.arg(CLIENT)
        .arg(BIN)
        .arg(&fx.ws)
        .arg(fx.outside.join("victim.txt"))
        .arg(marker)
        .arg(action)
        .envs(fx.env())
        .current_dir(&fx.ws);
    c
}

#[test]
fn python_client_lists_runs_and_is_refused() {
    let fx = Fixture::new();
    let o = client(&fx, "tools", &fx.m).stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let out: Value = serde_json::from_str(stdout(&o).trim()).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    assert_eq!(out["tools"], json!(["check", "policy", "run"]), "{out}");
    assert_eq!(out["echo"]["exit_code"], 0, "{out}");
    assert_eq!(out["echo"]["stdout"], format!("hello-{}\n", fx.m), "{out}");
    assert_eq!(out["shell"]["stdout"], format!("in-{}x\n", fx.m), "{out}");
    // The write outside the workspace was refused by the sandbox, and the file is unchanged.
    assert_ne!(out["write_outside"]["exit_code"], 0, "{out}");
    assert_eq!(std::fs::read_to_string(fx.outside.join("victim.txt")).unwrap(), format!("original-{}\n", fx.m));
    // read_only narrowed the policy: the workspace write was refused.
    assert_ne!(out["read_only"]["exit_code"], 0, "{out}");
    assert!(!fx.ws.join(format!("ro-{}", fx.m)).exists(), "read_only: true let a workspace write through");
    let t = out["truncated"]["stdout"].as_str().unwrap();
    assert!(t.contains("[palisade: output truncated: the first 1000 of 100000 bytes"), "{t}");
    assert_eq!(out["truncated"]["stdout_bytes"], 100000, "{out}");
    assert_eq!(out["timeout"]["timed_out"], true, "{out}");
    assert!(out["timeout"]["duration_ms"].as_u64().unwrap() < 10_000, "{out}");
    for (key, needle) in
        [("widen_network", "widen"), ("widen_writable", "not inside"), ("unknown_tool", "unknown tool")]
    {
        let msg = out[key].as_str().unwrap_or_else(|| panic!("{key}: the call was not refused: {out}"));
        assert!(msg.contains(needle), "{key}: {msg}");
    }
    assert_eq!(out["policy"]["network"]["value"], "off", "{out}");
    assert_eq!(out["policy"]["workspace"], fx.ws.to_str().unwrap(), "{out}");
    // Every command the run tool started has its audit line, with the narrowed mode; the
    // command's input and output are not in it.
    // (The Python SDK starts the server with a few variables only, HOME among them but not
    // XDG_STATE_HOME: the log is in the default place under the fixture's home.)
    let audit = std::fs::read_to_string(fx.home.join(".local/state/palisade/audit.jsonl")).expect("the audit log");
    assert!(!audit.contains(&format!("in-{}", fx.m)), "stdin or output in the audit log:\n{audit}");
    let lines: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().all(|l| l["via"] == "mcp"), "{audit}");
    let echo = lines.iter().find(|l| l["argv"] == json!(["echo", format!("hello-{}", fx.m)])).expect("the echo line");
    assert_eq!(echo["exit_code"], 0, "{echo}");
    let ro = lines.iter().find(|l| l["argv"][2] == format!("echo x > ro-{}", fx.m)).expect("the read_only line");
    assert_eq!(ro["mode"], "read-only", "{ro}");
}

#[test]
fn python_client_exiting_mid_command_leaves_nothing_running() {
    let fx = Fixture::new();
    let marker = sleep_marker().to_string();
    let _cleanup = KillOnDrop(marker.clone());
    let o = client(&fx, "disconnect", &marker).stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success() && stdout(&o).contains("started"), "{}", show(&o));
    assert_eq!(survivors(&marker), Vec::<i32>::new(), "the command outlived the client: {}", show(&o));
}

#[test]
fn python_client_gets_progress_notifications_for_a_long_command() {
    let fx = Fixture::new();
    let o = client(&fx, "progress", &fx.m).stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let out: Value = serde_json::from_str(stdout(&o).trim()).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    assert_eq!(out["result"]["stdout"], format!("done-{}\n", fx.m), "{out}");
    // One every 5 s while the command runs: a 6 s command gets one, saying how long so far.
    let seen = out["notifications"].as_array().unwrap();
    assert!(!seen.is_empty(), "no progress notification during a 6 s command: {out}");
    assert!(seen[0]["progress"].as_f64().unwrap() >= 4.0, "{out}");
    assert!(seen[0]["message"].as_str().unwrap().starts_with("running for "), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Raw JSON-RPC

struct Raw {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Raw {
    fn start(fx: &Fixture) -> Raw {
        let mut child = fx
            .palisade()
            .args(["mcp", "--workspace"])
            .arg(&fx.ws)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut raw = Raw { child, stdin, stdout };
        raw.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}));
        let init = raw.reply();
        assert!(init["result"]["serverInfo"]["name"] == "palisade", "{init}");
        raw.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        raw
    }
    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }
    fn send(&mut self, v: &Value) {
        self.send_line(&v.to_string());
    }
    /// The next message from the server (notifications included).
    fn reply(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "the server closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
    /// The response to request `id`, skipping notifications.
    fn response(&mut self, id: i64) -> Value {
        loop {
            let v = self.reply();
            if v["id"] == id {
                return v;
            }
        }
    }
    fn call(&mut self, id: i64, name: &str, arguments: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}}));
        self.response(id)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn bad_input_gets_json_rpc_errors_and_the_server_keeps_serving() {
    let fx = Fixture::new();
    let mut raw = Raw::start(&fx);
    // Not JSON at all: no id to answer (rmcp ignores it, as the other official SDKs do); the
    // server must still be alive and answer what follows.
    raw.send_line("{this is not json");
    // JSON that is not a JSON-RPC message: "Invalid request".
    raw.send(&json!({"jsonrpc": "2.0", "id": "x", "params": 5}));
    let v = raw.reply();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    let v = raw.call(2, "no-such-tool", json!({}));
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("unknown tool"), "{v}");
    let v = raw.call(3, "run", json!({"command": ["true"], "readonly": true}));
    assert_eq!(v["error"]["code"], -32602, "a misspelt narrowing must be refused: {v}");
    let v = raw.call(4, "run", json!({"command": 7}));
    assert_eq!(v["error"]["code"], -32602, "{v}");
    let v = raw.call(5, "run", json!({"command": ["cat"], "stdin": "a".repeat(2 * 1024 * 1024)}));
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("too large"), "{v}");
    let v = raw.call(6, "run", json!({"command": ["pwd"], "cwd": "/"}));
    assert_eq!(v["error"]["code"], -32602, "a working directory outside the workspace: {v}");
    let v = raw.call(7, "run", json!({"command": ["echo", "alive"]}));
    assert_eq!(v["result"]["structuredContent"]["stdout"], "alive\n", "{v}");
}

#[test]
fn closing_the_connection_mid_command_ends_it() {
    let fx = Fixture::new();
    let marker = sleep_marker().to_string();
    let _cleanup = KillOnDrop(marker.clone());
    let mut raw = Raw::start(&fx);
    raw.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "run", "arguments": {"command": ["sleep", marker]}}}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // No signal: only the end of the server's input, as when a client goes away.
    drop(raw.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(15);
    while raw.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server did not exit after its input closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(survivors(&marker), Vec::<i32>::new(), "the command outlived the connection");
}
