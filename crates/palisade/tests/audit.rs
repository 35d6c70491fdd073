//! The audit log: one line per command from `palisade run` and `palisade sh` (valid against
//! docs/audit.schema.json, no environment values), `palisade log`, concurrent writers, the
//! refusals (a symbolic link at the log, a project file choosing its place), and a log the
//! administrator requires (root only: the managed file is swapped in a private mount namespace).
#![cfg(target_os = "linux")]

mod common;
use common::*;
use palisade::audit_log::AuditLog;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn validate(line: &serde_json::Value) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit.schema.json"))
        .expect("reading docs/audit.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let errors: Vec<String> = validator.iter_errors(line).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "the line does not match docs/audit.schema.json: {errors:?}\n{line:#}");
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn every_command_gets_one_valid_line_without_environment_values() {
    let fx = Fixture::new();
    let secret = format!("env-secret-{}", fx.m);
    let o = fx.run_cmd(&[], &["sh", "-c", "exit 3", "argv0", &fx.m]).env("PAL_AUDIT_SECRET", &secret).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let o = fx.palisade().args(["sh", "-c", "echo hi"]).env("PAL_AUDIT_SECRET", &secret).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let missing = format!("no-such-command-{}", fx.m);
    let o = fx.run(&[&missing]);
    assert_eq!(o.status.code(), Some(127), "{}", show(&o));

    let log = fx.audit_log();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&secret), "an environment value is in the log:\n{text}");
    let l = lines(&log);
    assert_eq!(l.len(), 3, "{text}");
    for line in &l {
        validate(line);
    }
    assert_eq!(l[0]["via"], "run");
    assert_eq!(l[0]["argv"], serde_json::json!(["sh", "-c", "exit 3", "argv0", fx.m]));
    assert_eq!((l[0]["exit_code"].as_i64(), l[0]["status"].as_i64()), (Some(3), Some(3)));
    assert_eq!(l[0]["cwd"], fx.ws.display().to_string());
    assert_eq!(l[0]["workspace"], fx.ws.display().to_string());
    assert!(!l[0]["layers"].as_array().unwrap().is_empty());
    assert_eq!(l[1]["via"], "sh");
    assert_eq!(l[1]["argv"], serde_json::json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(l[1]["exit_code"], 0);
    assert_eq!(l[2]["status"], 127);
    assert!(l[2]["error"].as_str().unwrap().contains(&missing), "{}", l[2]);

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(log.parent().unwrap()), 0o700);

    // --no-audit: nothing more.
    ok(&fx.run_flags(&["--no-audit"], &["true"]));
    assert_eq!(lines(&log).len(), 3);

    // palisade log: readable lines, raw lines, the path.
    let o = fx.palisade().args(["log"]).output().unwrap();
    ok(&o);
    let shown = stdout(&o);
    let rows: Vec<&str> = shown.lines().collect();
    assert_eq!(rows.len(), 3, "{shown}");
    assert!(rows[0].contains("exit 3") && rows[0].contains(&format!("sh -c 'exit 3' argv0 {}", fx.m)), "{shown}");
    assert!(rows[1].contains(" sh ") && rows[1].contains("exit 0"), "{shown}");
    assert!(
        rows[2].contains("refused 127") && rows[2].ends_with(&format!("(command not found: {missing})")),
        "{shown}"
    );
    let o = fx.palisade().args(["log", "-n", "2", "--json"]).output().unwrap();
    ok(&o);
    let raw: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(raw, l[1..].to_vec());
    let o = fx.palisade().args(["log", "--path"]).output().unwrap();
    assert_eq!(stdout(&o).trim(), log.display().to_string());
    // A damaged line is shown marked.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"time\": \"cut off\n"))
        .unwrap();
    let o = fx.palisade().args(["log", "-n", "1"]).output().unwrap();
    ok(&o);
    assert_eq!(stdout(&o), "(not a valid entry) {\"time\": \"cut off\n");
}

#[test]
fn a_symbolic_link_at_the_log_is_refused_and_the_command_still_runs() {
    let fx = Fixture::new();
    let log = fx.audit_log();
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let target = fx.outside.join("victim.txt");
    let before = std::fs::read(&target).unwrap();
    std::os::unix::fs::symlink(&target, &log).unwrap();
    let o = fx.sh("echo ran");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o), "ran\n");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("palisade: audit log: ") && err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), before, "the link's target changed");
}

#[test]
fn a_project_file_cannot_choose_the_log() {
    let fx = Fixture::new();
    let project = fx.ws.join(".palisade/config.toml");
    std::fs::create_dir_all(project.parent().unwrap()).unwrap();
    let elsewhere = fx.outside.join("planted.jsonl");
    std::fs::write(&project, format!("# repo config\n[audit]\npath = \"{}\"\n", elsewhere.display())).unwrap();
    let o = fx.sh("touch ran");
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "palisade: {}:3: audit.path: the audit log is set in the user config or the managed file, never in a project file\n",
            project.display()
        )
    );
    assert!(!fx.ws.join("ran").exists());
    assert!(!elsewhere.exists());
}

// --- concurrent writers ---------------------------------------------------------------------

const WRITERS: usize = 8;
const LINES_PER_WRITER: usize = 200;

/// Not a test of its own: the body of each writer process `concurrent_writers_*` starts.
#[test]
fn writer_child() {
    let (Some(path), Some(id), Some(max)) = (
        std::env::var_os("PAL_AUDIT_CHILD_LOG"),
        std::env::var("PAL_AUDIT_CHILD_ID").ok(),
        std::env::var("PAL_AUDIT_CHILD_MAX").ok(),
    ) else {
        return;
    };
    let log = AuditLog::new(path, max.parse().unwrap());
    let pad = "x".repeat(300);
    for seq in 0..LINES_PER_WRITER {
        log.append(&serde_json::json!({"writer": id, "seq": seq, "pad": pad}).to_string()).unwrap();
    }
}

fn start_writers(path: &Path, max: u64) {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|id| {
            Command::new(&exe)
                .args(["--exact", "writer_child", "--test-threads=1", "--quiet"])
                .env("PAL_AUDIT_CHILD_LOG", path)
                .env("PAL_AUDIT_CHILD_ID", id.to_string())
                .env("PAL_AUDIT_CHILD_MAX", max.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
}

#[test]
fn concurrent_writers_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    start_writers(&path, 1 << 30);
    let l = lines(&path);
    assert_eq!(l.len(), WRITERS * LINES_PER_WRITER);
    let mut seen = std::collections::BTreeSet::new();
    for v in &l {
        assert!(seen.insert((v["writer"].as_str().unwrap().to_string(), v["seq"].as_u64().unwrap())), "twice: {v}");
    }
}

#[test]
fn concurrent_writers_rotate_once_each_time_and_keep_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let max = 64 * 1024;
    start_writers(&path, max);
    let log = AuditLog::new(&path, max);
    let longest = 400; // each line is about 340 bytes
    for (i, p) in [path.clone(), log.rotated(1), log.rotated(2), log.rotated(3)].iter().enumerate() {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= max, "{} is over the cap: {len}", p.display());
        // A rotated file was full: two rotations at once would leave a nearly empty one.
        if i > 0 {
            assert!(len > max - longest, "{} was rotated early: {len} bytes", p.display());
        }
        lines(p);
    }
    assert!(!log.rotated(4).exists());
}

// --- a log the administrator requires ---------------------------------------------------------

/// Runs `script` (sh) in a private mount namespace where /etc/palisade holds `managed`; None
/// (with the reason said) when this host cannot.
fn with_managed(fx: &Fixture, managed: &str, script: &str) -> Option<Output> {
    if !is_root() {
        skip_expected("the managed file can only be swapped in a private mount namespace as root");
        return None;
    }
    if tool("unshare").is_none() {
        skip("unshare(1) is missing");
        return None;
    }
    let dir = fx.root.join("managed");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("managed.toml"), managed).unwrap();
    // The mount point must exist; an empty /etc/palisade is what "no managed file" looks like.
    std::fs::create_dir_all("/etc/palisade").unwrap();
    let inner = format!("mount --bind \"$PAL_MANAGED_DIR\" /etc/palisade && {script}");
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &inner])
        .current_dir(&fx.ws)
        .envs(fx.env())
        .env("BIN", BIN)
        .env("PAL_MANAGED_DIR", &dir)
        .output()
        .unwrap();
    Some(o)
}

#[test]
fn a_required_log_that_cannot_be_written_refuses_the_command() {
    let fx = Fixture::new();
    let blocker = fx.root.join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let managed = format!("[audit]\nrequired = true\npath = \"{}/audit.jsonl\"\n", blocker.display());
    let Some(o) = with_managed(&fx, &managed, "exec \"$BIN\" run -- touch \"$PAL_WS/ran\"") else { return };
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("palisade: audit log: "), "{err}");
    assert!(err.contains("audit.required = true), so the command was not run"), "{err}");
    assert!(!fx.ws.join("ran").exists(), "the command ran");
}

#[test]
fn a_required_log_cannot_be_switched_off_and_is_written() {
    let fx = Fixture::new();
    let admin_log = fx.root.join("admin/audit.jsonl");
    let managed = format!("[audit]\nrequired = true\npath = \"{}\"\n", admin_log.display());
    let Some(o) = with_managed(&fx, &managed, "exec \"$BIN\" run --no-audit -- touch \"$PAL_WS/ran\"") else { return };
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert_eq!(
        stderr(&o),
        "palisade: command line: --no-audit: switching the log off is forbidden by the administrator (/etc/palisade/managed.toml:2: audit.required = true)\n"
    );
    assert!(!fx.ws.join("ran").exists());
    std::fs::create_dir_all(fx.xdg.join("palisade")).unwrap();
    std::fs::write(fx.xdg.join("palisade/config.toml"), "[audit]\nenabled = false\n").unwrap();
    let o = with_managed(&fx, &managed, "exec \"$BIN\" run -- touch \"$PAL_WS/ran\"").unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(stderr(&o).contains("config.toml:2: audit.enabled: switching the log off is forbidden"), "{}", show(&o));
    std::fs::remove_file(fx.xdg.join("palisade/config.toml")).unwrap();
    let o = with_managed(&fx, &managed, "exec \"$BIN\" run -- touch \"$PAL_WS/ran\"").unwrap();
    ok(&o);
    let l = lines(&admin_log);
    assert_eq!(l.len(), 1);
    validate(&l[0]);
    assert_eq!(l[0]["config_layers"].as_array().unwrap().last().unwrap()["layer"], "managed");
    assert!(!fx.audit_log().exists(), "the user's own place was used");
}

#[test]
fn a_log_owned_by_another_user_is_refused_and_left_alone() {
    if !is_root() {
        skip_expected("needs root to give the log file to another user");
        return;
    }
    let fx = Fixture::new();
    let log = fx.audit_log();
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "theirs\n").unwrap();
    std::os::unix::fs::chown(&log, Some(65534), None).unwrap();
    let o = fx.sh("echo ran");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.starts_with("palisade: audit log: ") && err.contains("owned by user 65534"), "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "theirs\n");
}

/// With the state folder writable (`--writable` on it, as with a writable ~/.local), the command
/// cannot swap palisade's folder there for a link to another folder: palisade appends to and
/// rotates what it finds there after the command, so the line would land, and old logs be
/// renamed, wherever the link pointed.
#[test]
fn the_log_folder_cannot_be_swapped_for_a_link_by_a_command() {
    let fx = Fixture::new();
    let state = fx.root.join("state");
    std::fs::create_dir_all(state.join("palisade")).unwrap();
    let elsewhere = fx.outside.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let script = format!(
        "mv \"$XDG_STATE_HOME/palisade\" \"$XDG_STATE_HOME/moved\" 2>/dev/null; rm -rf \"$XDG_STATE_HOME/palisade\" 2>/dev/null; \
         ln -s {} \"$XDG_STATE_HOME/palisade\" 2>/dev/null; touch \"$XDG_STATE_HOME/other-ok\" && echo done",
        elsewhere.display()
    );
    let o = fx.run_cmd(&["--writable", state.to_str().unwrap()], &["sh", "-c", &script]).output().unwrap();
    assert!(stdout(&o).contains("done"), "the state folder was not writable at all: {}", show(&o));
    let landed: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(landed.is_empty(), "palisade wrote through a link the command planted: {landed:?}");
    assert!(state.join("palisade").is_dir() && !state.join("palisade").is_symlink(), "the folder was swapped");
    assert_eq!(lines(&fx.audit_log()).len(), 1);
}
