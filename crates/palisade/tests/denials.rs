//! Denial reports (`--report-denials`, `SandboxOptions::report_denials`): what the kernel refused
//! is reported with the rule that refuses it, nothing else is, the command sees the same
//! results as without reports, and an observer that stops makes watched calls fail rather
//! than pass. Every test that attempts a refused write also checks the host is unchanged.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::process::Output;

/// `palisade run --report-denials --status-file <f> <flags> -- sh -c <script>`, and its record.
fn run_reported(fx: &Fixture, flags: &[&str], script: &str) -> (Output, Value) {
    let status = fx.root.join("status.json");
    let mut all = vec!["--report-denials", "--status-file", status.to_str().unwrap()];
    all.extend_from_slice(flags);
    let o = fx.sh_flags(&all, script);
    let text = std::fs::read_to_string(&status).unwrap_or_else(|e| panic!("no status record ({e}): {}", show(&o)));
    let record: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    validate(&record);
    (o, record)
}

fn validate(record: &Value) {
    let schema_text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/status.schema.json"))
            .expect("reading docs/status.schema.json");
    let schema: Value = serde_json::from_str(&schema_text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let errors: Vec<String> =
        validator.iter_errors(record).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "the record does not match docs/status.schema.json: {errors:?}\n{record:#}");
}

fn denials(record: &Value) -> &Vec<Value> {
    record["denials"].as_array().expect("a denials list")
}

/// The record for `target` with `rule`, or a failure listing what there was.
fn find<'a>(record: &'a Value, kind: &str, target: &str, rule: &str) -> &'a Value {
    denials(record)
        .iter()
        .find(|d| d["kind"] == kind && d["target"] == target && d["rule"] == rule)
        .unwrap_or_else(|| panic!("no {kind} denial of {target} by {rule} in {:#}", record["denials"]))
}

/// The library's output in the shape the fixture's helpers show.
fn as_process_output(out: &palisade::Output) -> Output {
    use std::os::unix::process::ExitStatusExt;
    let raw = out.status.code().map_or(0, |c| c << 8);
    Output { status: std::process::ExitStatus::from_raw(raw), stdout: out.stdout.clone(), stderr: out.stderr.clone() }
}

fn summary_lines(o: &Output) -> Vec<String> {
    stderr(o).lines().filter(|l| l.contains(" refused ")).map(str::to_string).collect()
}

#[test]
fn a_write_outside_the_writable_roots_is_reported_with_its_rule_and_does_not_land() {
    let fx = Fixture::new();
    fx.require_visible();
    let before = Snapshot::take(&fx.outside);
    let victim = fx.outside.join("victim.txt");
    let script =
        format!("echo x > {v}; echo x >> {v}; mkdir {o}/newdir; true", v = victim.display(), o = fx.outside.display());
    let (o, record) = run_reported(&fx, &[], &script);
    assert_eq!(ran(&o), 0, "{}", show(&o));
    before.assert_unchanged("writes outside the writable roots", &o);
    let v = find(&record, "write", victim.to_str().unwrap(), "writable-roots");
    assert_eq!(v["syscall"], "openat");
    assert_eq!(v["count"], 2, "{v}");
    let d = find(&record, "write", fx.outside.join("newdir").to_str().unwrap(), "writable-roots");
    assert!(d["syscall"] == "mkdirat" || d["syscall"] == "mkdir", "{d}");
    let lines = summary_lines(&o);
    assert_eq!(lines.len(), 1, "one summary line: {}", show(&o));
    assert!(
        lines[0].starts_with("palisade: 3 writes refused outside the writable roots: ")
            && lines[0].contains(victim.to_str().unwrap()),
        "{}",
        lines[0]
    );
}

#[test]
fn a_write_to_a_protected_path_is_reported_as_protected() {
    let fx = Fixture::new();
    fx.require_visible();
    fx.git_init();
    let hook = fx.ws.join(".git/hooks/pre-commit");
    let (o, record) = run_reported(&fx, &[], "printf '#!/bin/sh\\necho pwned\\n' > .git/hooks/pre-commit; true");
    assert!(!hook.exists(), "SANDBOX ESCAPE: a hook was written: {}", show(&o));
    let d = find(&record, "write", hook.to_str().unwrap(), "protected");
    assert_eq!(d["syscall"], "openat");
    assert!(summary_lines(&o).iter().any(|l| l.contains("refused to protected paths")), "{}", show(&o));
}

#[test]
fn a_connection_with_the_network_off_is_reported() {
    let fx = Fixture::new();
    let py = require_tool("python3");
    let script = format!(
        "{} -c 'import socket\ns = socket.socket()\ntry:\n    s.connect((\"192.0.2.1\", 443))\nexcept OSError as e:\n    print(\"refused\", e.errno)\nelse:\n    print(\"CONNECTED\")'",
        py.display()
    );
    let (o, record) = run_reported(&fx, &[], &script);
    assert!(stdout(&o).starts_with("refused "), "{}", show(&o));
    let d = find(&record, "connect", "192.0.2.1:443", "network-off");
    assert_eq!(d["syscall"], "connect");
}

#[test]
fn reads_and_allowed_writes_give_no_records_and_no_summary() {
    let fx = Fixture::new();
    fx.require_visible();
    let script = format!(
        "cat {o}/victim.txt > /dev/null; ls {o} > /dev/null; echo a > inside.txt; mkdir -p d/e; mv inside.txt d/; \
         echo t > /tmp/t; rm /tmp/t; echo n > /dev/null; touch d/e/f; chmod 600 d/e/f",
        o = fx.outside.display()
    );
    let (o, record) = run_reported(&fx, &[], &script);
    assert_eq!(ran(&o), 0, "{}", show(&o));
    assert!(fx.ws.join("d/inside.txt").exists(), "{}", show(&o));
    assert!(denials(&record).is_empty(), "{:#}", record["denials"]);
    assert!(summary_lines(&o).is_empty(), "{}", show(&o));
    assert!(!stderr(&o).contains("palisade:"), "{}", show(&o));
}

#[test]
fn the_observer_changes_neither_the_exit_status_nor_the_errors_the_command_sees() {
    let fx = Fixture::new();
    fx.require_visible();
    let script = format!(
        "echo x > {o}/victim.txt; echo \"write $?\"; mkdir {o}/n 2>&1; echo \"mkdir $?\"; rm {o}/victim.txt 2>&1; \
         echo \"rm $?\"; echo ok > in.txt; echo \"inside $?\"; exit 3",
        o = fx.outside.display()
    );
    let before = Snapshot::take(&fx.outside);
    let plain = fx.sh(&script);
    let (reported, record) = run_reported(&fx, &[], &script);
    before.assert_unchanged("writes outside, with and without reports", &reported);
    assert_eq!(ran(&plain), 3, "{}", show(&plain));
    assert_eq!(ran(&reported), ran(&plain), "{}", show(&reported));
    assert_eq!(stdout(&reported), stdout(&plain), "with reports:\n{}\nwithout:\n{}", show(&reported), show(&plain));
    assert!(stdout(&plain).contains("write 2") || stdout(&plain).contains("write 1"), "{}", show(&plain));
    assert!(stdout(&plain).contains("inside 0"), "{}", show(&plain));
    assert!(denials(&record).len() >= 3, "{:#}", record["denials"]);
}

#[test]
fn quiet_drops_the_summary_but_not_the_record() {
    let fx = Fixture::new();
    fx.require_visible();
    let script = format!("echo x > {}/victim.txt; true", fx.outside.display());
    let (o, record) = run_reported(&fx, &["--quiet"], &script);
    assert!(summary_lines(&o).is_empty(), "{}", show(&o));
    find(&record, "write", fx.outside.join("victim.txt").to_str().unwrap(), "writable-roots");
}

#[test]
fn without_the_flag_nothing_is_observed() {
    let fx = Fixture::new();
    fx.require_visible();
    let status = fx.root.join("status.json");
    let script = format!("echo x > {}/victim.txt; true", fx.outside.display());
    let o = fx.sh_flags(&["--status-file", status.to_str().unwrap()], &script);
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&status).unwrap()).unwrap();
    validate(&record);
    assert!(denials(&record).is_empty());
    assert!(record["denials_note"].as_str().unwrap().contains("not asked for"), "{record:#}");
    assert!(summary_lines(&o).is_empty(), "{}", show(&o));
}

#[test]
fn keep_processes_is_refused_with_denial_reports() {
    let fx = Fixture::new();
    let o = fx.run_flags(&["--report-denials", "--keep-processes"], &["true"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(stderr(&o).contains("--keep-processes"), "{}", show(&o));
}

/// The library's view, and the observer stopped while the command runs: its watched calls
/// then fail (ENOSYS) instead of passing unobserved, inside the workspace as well as outside.
#[test]
fn a_stopped_observer_fails_closed() {
    let fx = Fixture::new();
    fx.require_visible();
    let before = Snapshot::take(&fx.outside);
    let options = palisade::SandboxOptions { report_denials: true, ..Default::default() };
    let sandbox = palisade::Sandbox::with_options(fx.policy(), options).unwrap_or_else(|e| panic!("{e}"));
    assert!(sandbox.reports_denials());
    let script = format!(
        "echo before > early.txt; read line; echo x > {o}/victim.txt; echo \"outside $?\"; echo y > late.txt; echo \"inside $?\"",
        o = fx.outside.display()
    );
    let mut child = sandbox
        .command("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&fx.ws)
        .stdin(palisade::Stdio::Piped)
        .stdout(palisade::Stdio::Piped)
        .stderr(palisade::Stdio::Piped)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    // The first write went through the observer before the command waits for its line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !fx.ws.join("early.txt").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(fx.ws.join("early.txt").exists(), "the command never wrote inside the workspace");
    child.stop_denial_observer();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let o = as_process_output(&out);
    before.assert_unchanged("a write outside after the observer stopped", &o);
    assert!(!fx.ws.join("late.txt").exists(), "a watched call passed unobserved after the observer stopped: {text}");
    assert!(text.contains("inside 2") || text.contains("inside 1"), "{text}");
    assert!(text.contains("not implemented"), "the kernel answers ENOSYS: {text}");
}

/// The library's `Output::denials`, and a command that loads seccomp filters of its own (an
/// allow-all one here, as sandboxing tools and browsers do) keeps working and keeps being
/// observed.
#[test]
fn commands_with_their_own_seccomp_filters_keep_working_and_are_observed() {
    let fx = Fixture::new();
    fx.require_visible();
    let py = require_tool("python3");
    let before = Snapshot::take(&fx.outside);
    let script = r#"
import ctypes, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
insn = struct.pack("HBBI", 6, 0, 0, 0x7fff0000)  # ret ALLOW
buf = ctypes.create_string_buffer(insn)
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(1, ctypes.cast(buf, ctypes.c_void_p))
if libc.syscall(317, 1, 0, ctypes.byref(prog)) != 0:  # seccomp(SET_MODE_FILTER)
    sys.exit("own filter: errno %d" % ctypes.get_errno())
open("mine.txt", "w").write("ok")
try:
    open(sys.argv[1], "w")
except OSError as e:
    print("refused", e.errno)
"#;
    if !cfg!(target_arch = "x86_64") {
        skip("the script's seccomp system call number is x86_64's");
        return;
    }
    let options = palisade::SandboxOptions { report_denials: true, ..Default::default() };
    let sandbox = palisade::Sandbox::with_options(fx.policy(), options).unwrap_or_else(|e| panic!("{e}"));
    let victim = fx.outside.join("victim.txt");
    let out = sandbox
        .command(&py)
        .arg("-c")
        .arg(script)
        .arg(&victim)
        .current_dir(&fx.ws)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}: {text}", out.status);
    let o = as_process_output(&out);
    before.assert_unchanged("a write outside from a command with its own filter", &o);
    assert_eq!(std::fs::read_to_string(fx.ws.join("mine.txt")).unwrap(), "ok");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("refused "), "{text}");
    let d = out.denials.iter().find(|d| Path::new(&d.target) == victim).unwrap_or_else(|| panic!("{:?}", out.denials));
    assert_eq!(d.kind, palisade::DenialKind::Write);
    assert_eq!(d.rule.as_str(), "writable-roots");
}

/// Without namespaces (Landlock and seccomp only), the same observer reports what Landlock
/// refuses, and the private temporary folder (a host path then) counts as writable.
#[test]
fn landlock_only_mode_reports_what_landlock_refuses() {
    let fx = Fixture::new();
    fx.require_visible();
    let before = Snapshot::take(&fx.outside);
    let Some(sandbox) = landlock_only_sandbox(fx.policy(), true) else {
        return;
    };
    let victim = fx.outside.join("victim.txt");
    let script = format!("echo x > {}; echo t > \"$TMPDIR/t\"; echo in > in.txt; true", victim.display());
    let out = sandbox.command("sh").arg("-c").arg(&script).current_dir(&fx.ws).output().unwrap();
    let o = as_process_output(&out);
    before.assert_unchanged("a write outside in Landlock-only mode", &o);
    assert!(out.status.success(), "{}", show(&o));
    assert!(fx.ws.join("in.txt").exists(), "{}", show(&o));
    assert_eq!(out.denials.len(), 1, "only the write outside: {:?}", out.denials);
    assert_eq!(Path::new(&out.denials[0].target), victim);
    assert_eq!(out.denials[0].rule.as_str(), "writable-roots");
}

/// A `Child` dropped while its command runs leaves the command running (as without reports):
/// the observer keeps answering it, so its later writes still work.
#[test]
fn a_command_whose_child_handle_is_dropped_keeps_writing() {
    let fx = Fixture::new();
    fx.require_visible();
    let options = palisade::SandboxOptions { report_denials: true, ..Default::default() };
    let sandbox = palisade::Sandbox::with_options(fx.policy(), options).unwrap_or_else(|e| panic!("{e}"));
    let child = sandbox
        .command("sh")
        .arg("-c")
        .arg("sleep 0.5; echo late > late.txt")
        .current_dir(&fx.ws)
        .stdin(palisade::Stdio::Null)
        .stdout(palisade::Stdio::Null)
        .stderr(palisade::Stdio::Null)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    drop(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !fx.ws.join("late.txt").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(fx.ws.join("late.txt")).ok().as_deref(), Some("late\n"));
}
