//! The per-command private temporary folder (`palisade-*` on /dev/shm or in /tmp): always
//! removed after the command, whatever it left inside; recorded, so that what a killed run left
//! is found and removed (by `palisade cleanup`, or a later run) while a live run's folder is
//! never touched; and the folders Palisade hides offline never hide the workspace, whatever
//! folder it or `$XDG_RUNTIME_DIR` lies in.
//!
//! Each test has its own `XDG_RUNTIME_DIR` (so its own records): tests running beside it, in
//! this process or others, never see its runs.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// When a test ends, passed or not: kills what is left of its command (by its sleep marker,
/// which palisade's own command line holds too), then removes what that left (with the test's
/// runtime folder, before the fixture goes).
struct Reaper {
    nap: String,
    run: PathBuf,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        kill_all_with(&self.nap);
        for _ in 0..50 {
            let _ = with_runtime(Command::new(BIN), &self.run).arg("cleanup").stdout(Stdio::null()).status();
            if records(&self.run).is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// A private runtime folder for one test's runs.
fn runtime_dir(fx: &Fixture) -> PathBuf {
    let d = fx.root.join("run");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn with_runtime(mut c: Command, run: &Path) -> Command {
    c.env("XDG_RUNTIME_DIR", run);
    c
}

/// The records of private temporary folders in runtime folder `run`.
fn records(run: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(run.join("palisade/tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("palisade-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The folder the only record in `run` names.
fn recorded_folder(run: &Path) -> PathBuf {
    let recs = records(run);
    assert_eq!(recs.len(), 1, "expected one record of a private temporary folder: {recs:?}");
    let text = fs::read_to_string(&recs[0]).unwrap();
    let dir =
        text.lines().find_map(|l| l.strip_prefix("dir ")).unwrap_or_else(|| panic!("no folder in the record: {text}"));
    PathBuf::from(dir)
}

/// Starts `script` under palisade and waits for its "ready" line.
fn start_until_ready(fx: &Fixture, run: &Path, script: &str) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = with_runtime(fx.run_cmd(&[], &["sh", "-c", script]), run)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the command did not get ready");
    (child, out)
}

/// What a command leaves in its /tmp and /dev/shm that an ordinary recursive removal trips
/// over: folders without permissions, read-only nested folders, a FIFO, a deep tree, and links
/// to a file and a folder outside (which must survive).
fn awkward_tree_script() -> String {
    "set -e; head -c 300000 /dev/zero > /tmp/big; echo x > /dev/shm/s; \
     mkdir -p /tmp/keep/a/b; echo f > /tmp/keep/a/b/f; chmod 000 /tmp/keep/a /tmp/keep; \
     mkdir -p /dev/shm/ro/sub; echo g > /dev/shm/ro/sub/g; chmod 500 /dev/shm/ro/sub /dev/shm/ro; \
     mkfifo /tmp/fifo; ln -s \"$PAL_OUT/victim.txt\" /tmp/link; ln -s \"$PAL_OUT\" /tmp/dirlink; \
     d=/tmp/deep; i=0; while [ $i -lt 120 ]; do d=$d/d; i=$((i+1)); done; mkdir -p $d; echo leaf > $d/leaf; \
     chmod 000 /tmp/deep/d/d; chmod 0 /tmp"
        .into()
}

#[test]
fn a_killed_runs_folder_is_removed_by_cleanup_which_reports_it_with_its_size() {
    let fx = Fixture::new();
    fx.require_visible();
    let run = runtime_dir(&fx);
    let outside = Snapshot::take(&fx.outside);
    let nap = sleep_marker().to_string();
    let _reaper = Reaper { nap: nap.clone(), run: run.clone() };
    let (mut child, _out) =
        start_until_ready(&fx, &run, &format!("{}; echo ready; exec sleep {nap}", awkward_tree_script()));
    let folder = recorded_folder(&run);
    // (Its /tmp is mode 000 now: look at its /dev/shm.)
    assert!(folder.join("shm/s").is_file(), "the command's /dev/shm file is not in {}", folder.display());
    child.kill().unwrap(); // SIGKILL: palisade cannot remove anything
    child.wait().unwrap();
    // The command dies with palisade (it is not asked to outlive it); wait for that, bounded.
    for _ in 0..100 {
        if survivors(&nap).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(survivors(&nap), Vec::<i32>::new(), "the command outlived palisade's SIGKILL");
    assert!(folder.join("shm/s").is_file(), "the killed run's folder is already gone: this test proves nothing");

    let check = with_runtime(fx.palisade(), &run).arg("check").output().unwrap();
    assert!(
        stdout(&check).contains(&folder.display().to_string()) && stdout(&check).contains("palisade cleanup"),
        "`palisade check` does not mention the leftover folder {}: {}",
        folder.display(),
        show(&check)
    );
    let o = with_runtime(fx.palisade(), &run).arg("cleanup").output().unwrap();
    ok(&o);
    let line = stdout(&o).lines().find(|l| l.contains(&folder.display().to_string())).map(str::to_string);
    let line = line
        .unwrap_or_else(|| panic!("`palisade cleanup` does not report removing {}: {}", folder.display(), show(&o)));
    assert!(line.contains("kB") || line.contains("MB"), "no size in the report line: {line}");
    assert!(!folder.exists(), "`palisade cleanup` left the killed run's folder {}: {}", folder.display(), show(&o));
    assert_eq!(records(&run), Vec::<PathBuf>::new(), "the record stays after its folder was removed");
    outside.assert_unchanged("the targets of links the command left in its /tmp", &o);
    // Nothing left: a second cleanup reports nothing removed, and check is quiet.
    let again = with_runtime(fx.palisade(), &run).arg("cleanup").output().unwrap();
    ok(&again);
    assert!(stdout(&again).contains("no private temporary folders left"), "{}", show(&again));
}

#[test]
fn a_later_run_removes_a_killed_runs_folder() {
    let fx = Fixture::new();
    fx.require_visible();
    let run = runtime_dir(&fx);
    let nap = sleep_marker().to_string();
    let _reaper = Reaper { nap: nap.clone(), run: run.clone() };
    let (mut child, _out) = start_until_ready(&fx, &run, &format!("echo data > /tmp/f; echo ready; exec sleep {nap}"));
    let folder = recorded_folder(&run);
    child.kill().unwrap();
    child.wait().unwrap();
    // The killed run's sandbox may take a moment to go; until then its folder counts as live.
    let mut removed = false;
    for _ in 0..100 {
        let o = with_runtime(fx.run_cmd(&[], &["true"]), &run).output().unwrap();
        ok(&o);
        if !folder.exists() {
            removed = true;
            break;
        }
        // The next run looks again only after a while (ten minutes): make it due again.
        let _ = fs::remove_file(run.join("palisade/tmp/.swept"));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(removed, "a later run did not remove the killed run's folder {}", folder.display());
    assert_eq!(records(&run), Vec::<PathBuf>::new());
}

#[test]
fn cleanup_never_touches_a_running_commands_folder() {
    let fx = Fixture::new();
    fx.require_visible();
    let run = runtime_dir(&fx);
    let (mut child, mut out) = start_until_ready(
        &fx,
        &run,
        "echo kept-data > /tmp/f; echo shm > /dev/shm/g; echo ready; read _go; cat /tmp/f /dev/shm/g",
    );
    let folder = recorded_folder(&run);
    let o = with_runtime(fx.palisade(), &run).arg("cleanup").output().unwrap();
    ok(&o);
    assert!(folder.join("tmp/f").is_file(), "`palisade cleanup` removed a running command's /tmp: {}", show(&o));
    assert!(!stdout(&o).contains(&folder.display().to_string()), "{}", show(&o));
    assert!(stdout(&o).contains("of running commands stay"), "{}", show(&o));
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    drop(child.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "kept-data\nshm\n");
    assert!(!folder.exists(), "the folder stays after the run: {}", folder.display());
    assert_eq!(records(&run), Vec::<PathBuf>::new());
}

/// As an ordinary user `chmod 000` inside once made the removal fail and leave the folder (with
/// whatever the command wrote) in /dev/shm; links inside must never be followed.
#[test]
fn the_folder_is_removed_after_the_command_whatever_it_left_inside() {
    let fx = Fixture::new();
    fx.require_visible();
    let run = runtime_dir(&fx);
    let outside = Snapshot::take(&fx.outside);
    let (mut child, mut out) =
        start_until_ready(&fx, &run, &format!("{}; echo ready; read _go", awkward_tree_script()));
    let folder = recorded_folder(&run);
    assert!(folder.join("tmp").exists());
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    drop(child.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!folder.exists(), "the private temporary folder {} outlived the run", folder.display());
    assert_eq!(records(&run), Vec::<PathBuf>::new(), "the record outlived the run");
    let o = fx.run(&["true"]);
    outside.assert_unchanged("the targets of links the command left in its /tmp", &o);
}

fn xdg_under(base: &str) -> PathBuf {
    let d = PathBuf::from(base).join(format!("runtime-{}", marker()));
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// `XDG_RUNTIME_DIR=/tmp/runtime-root` is common in containers and CI: every offline run failed
/// trying to hide it (it no longer exists under the private /tmp); under /var/tmp, read-only
/// runs failed hiding it inside the already hidden /var/tmp.
#[test]
fn runs_work_with_the_runtime_folder_under_tmp_or_var_tmp() {
    let fx = Fixture::new();
    fx.require_visible();
    for base in ["/tmp", "/var/tmp"] {
        let xdg = xdg_under(base);
        for mode in ["workspace-write", "read-only"] {
            let o = with_runtime(
                fx.run_cmd(&["--mode", mode, "--network", "off"], &["sh", "-c", "cat \"$PAL_OUT/victim.txt\""]),
                &xdg,
            )
            .output()
            .unwrap();
            ok(&o);
            assert!(stdout(&o).starts_with("original-"), "{}", show(&o));
        }
        // The runtime folder's sockets stay out of reach offline.
        let script = format!("ls -A '{}' | wc -l", xdg.display());
        let o = with_runtime(fx.run_cmd(&[], &["sh", "-c", &script]), &xdg).output().unwrap();
        ok(&o);
        assert!(
            fs::read_dir(xdg.join("palisade")).is_ok(),
            "palisade did not use {} as its runtime folder",
            xdg.display()
        );
        assert_eq!(stdout(&o).trim(), "0", "the runtime folder {} is visible inside: {}", xdg.display(), show(&o));
        fs::remove_dir_all(&xdg).unwrap();
    }
}

/// Read-only mode must work wherever workspace-write mode does: a workspace under /var/tmp was
/// hidden with the socket folders offline, and one under /tmp was covered by the private /tmp.
#[test]
fn read_only_runs_work_with_the_workspace_under_tmp_or_var_tmp() {
    let m = marker();
    for base in ["/var/tmp", "/tmp"] {
        let root = tempfile::Builder::new().prefix("palisade-test-").tempdir_in(base).unwrap();
        let ws = root.path().canonicalize().unwrap().join("ws");
        fs::create_dir(&ws).unwrap();
        fs::write(ws.join("data.txt"), format!("data-{m}\n")).unwrap();
        for mode in ["read-only", "workspace-write"] {
            let o = Command::new(BIN)
                .current_dir(&ws)
                .env("XDG_CONFIG_HOME", root.path())
                .args(["run", "--mode", mode, "--network", "off", "--", "sh", "-c", "pwd; cat data.txt"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            ok(&o);
            assert_eq!(stdout(&o), format!("{}\ndata-{m}\n", ws.display()), "{mode} in {base}: {}", show(&o));
            // Through the library, from another working directory: the workspace itself stays
            // visible (not only the working directory).
            let mut policy = Policy::new(&ws, None);
            policy.mode = if mode == "read-only" { palisade::Mode::ReadOnly } else { palisade::Mode::WorkspaceWrite };
            policy.network = palisade::Network::Off;
            let sandbox = Sandbox::new(policy).unwrap();
            let out = sandbox
                .command("cat")
                .arg(ws.join("data.txt"))
                .current_dir("/")
                .output()
                .unwrap_or_else(|e| panic!("{mode} in {base}, from /: {e}"));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("data-{m}\n"),
                "{mode} in {base}, from /: {out:?}"
            );
        }
        // Read-only means read-only there too.
        let before = Snapshot::take(&ws);
        let o = Command::new(BIN)
            .current_dir(&ws)
            .env("XDG_CONFIG_HOME", root.path())
            .args(["run", "--mode", "read-only", "--", "sh", "-c", "echo changed > data.txt; echo new > new.txt; true"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ok(&o);
        before.assert_unchanged("a read-only workspace under a private or hidden folder", &o);
    }
}

/// A failed set-up step names the path it worked on, not an index.
#[test]
fn a_failed_setup_step_names_its_path() {
    let fx = Fixture::new();
    let missing = fx.ws.join(format!("missing-{}", fx.m));
    let err = fx.sandbox().command("true").current_dir(&missing).status().expect_err("a missing working directory");
    let msg = err.to_string();
    assert!(msg.contains(&missing.display().to_string()) && !msg.contains("(#"), "{msg}");
}

/// A full runtime folder: the error names the file Palisade could not write, and nothing is made
/// unrecorded. (A small tmpfs as the runtime folder, in a user and mount namespace of its own.)
#[test]
fn a_full_runtime_folder_is_named_in_the_error() {
    let unshare = require_tool("unshare");
    let fx = Fixture::new();
    fx.require_visible();
    let rt = fx.root.join("rt");
    fs::create_dir(&rt).unwrap();
    let script = format!(
        "set -e; mount -t tmpfs -o size=64k,mode=700 none '{rt}'; mkdir -p '{rt}/palisade/tmp'; chmod 700 '{rt}/palisade' '{rt}/palisade/tmp'; \
         dd if=/dev/zero of='{rt}/fill' bs=4k 2>/dev/null || true; \
         cd '{ws}'; set +e; XDG_RUNTIME_DIR='{rt}' '{bin}' run -- true; echo \"rc=$?\"",
        rt = rt.display(),
        ws = fx.ws.display(),
        bin = BIN
    );
    let o =
        Command::new(unshare).args(["-rm", "sh", "-c", &script]).envs(fx.env()).stdin(Stdio::null()).output().unwrap();
    let err = stderr(&o);
    assert!(stdout(&o).contains("rc=125"), "{}", show(&o));
    assert!(
        err.contains(&format!("{}/palisade/tmp/palisade-", rt.display())) && err.contains("No space left on device"),
        "the error does not name the file that could not be written: {}",
        show(&o)
    );
}

/// With `--keep-processes`, a process left running still has its /tmp after `palisade run`
/// returns; once it is gone, cleanup removes the folder.
#[test]
fn a_kept_process_keeps_its_tmp_until_it_ends() {
    let fx = Fixture::new();
    fx.require_visible();
    let run = runtime_dir(&fx);
    let nap = sleep_marker().to_string();
    let _reaper = Reaper { nap: nap.clone(), run: run.clone() };
    let script = format!(
        "echo kept > /tmp/k; (: {nap}; while [ ! -e \"$PAL_WS/go\" ]; do sleep 0.05; done; cat /tmp/k > \"$PAL_WS/out\"; : last) >/dev/null 2>&1 &"
    );
    let o = with_runtime(fx.run_cmd(&["--keep-processes"], &["sh", "-c", &script]), &run).output().unwrap();
    ok(&o);
    let folder = recorded_folder(&run);
    assert!(folder.join("tmp/k").is_file(), "the kept process's /tmp was removed when the command returned");
    let c = with_runtime(fx.palisade(), &run).arg("cleanup").output().unwrap();
    ok(&c);
    assert!(folder.join("tmp/k").is_file(), "cleanup removed the /tmp of a kept process: {}", show(&c));
    fs::write(fx.ws.join("go"), "").unwrap();
    for _ in 0..200 {
        // The subshell (which carries the marker) ends only after `cat` has written the file: a
        // trailing builtin keeps the shell from exec'ing `cat` in its place.
        if survivors(&nap).is_empty() && fs::read_to_string(fx.ws.join("out")).is_ok_and(|t| !t.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        fs::read_to_string(fx.ws.join("out")).unwrap_or_default(),
        "kept\n",
        "the kept process did not read its /tmp file"
    );
    assert_eq!(survivors(&nap), Vec::<i32>::new(), "the kept process did not end");
    let c = with_runtime(fx.palisade(), &run).arg("cleanup").output().unwrap();
    ok(&c);
    assert!(!folder.exists(), "cleanup left the folder of a kept process that ended: {}", show(&c));
    assert!(stdout(&c).contains(&folder.display().to_string()), "{}", show(&c));
}

/// Removal never enters another mount found inside a folder (another filesystem, or a bind
/// mount of the same one): what is mounted there survives `palisade cleanup`. (The mounts are
/// made in a user and mount namespace of their own, where cleanup then runs.)
#[test]
fn cleanup_never_enters_a_mount_inside_a_leftover_folder() {
    let unshare = require_tool("unshare");
    let fx = Fixture::new();
    fx.require_visible();
    let run = runtime_dir(&fx);
    let nap = sleep_marker().to_string();
    let _reaper = Reaper { nap: nap.clone(), run: run.clone() };
    let (mut child, _out) = start_until_ready(
        &fx,
        &run,
        &format!("mkdir /tmp/other /tmp/same; echo x > /tmp/x; echo ready; exec sleep {nap}"),
    );
    let folder = recorded_folder(&run);
    child.kill().unwrap();
    child.wait().unwrap();
    for _ in 0..100 {
        if survivors(&nap).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A folder on the same filesystem as the leftover (a bind mount keeps its device number).
    let same_fs = folder.parent().unwrap().join(format!("palisade-test-victim-{}", fx.m));
    fs::create_dir(&same_fs).unwrap();
    fs::write(same_fs.join("victim.txt"), "keep").unwrap();
    let outside = Snapshot::take(&fx.outside);
    let script = format!(
        "mount --bind '{out}' '{f}/tmp/other' && mount --bind '{same}' '{f}/tmp/same' && XDG_RUNTIME_DIR='{run}' '{bin}' cleanup; echo \"rc=$?\"",
        out = fx.outside.display(),
        same = same_fs.display(),
        f = folder.display(),
        run = run.display(),
        bin = BIN
    );
    let o = Command::new(unshare).args(["-rm", "sh", "-c", &script]).stdin(Stdio::null()).output().unwrap();
    let same_kept = fs::read_to_string(same_fs.join("victim.txt")).ok();
    let _ = fs::remove_dir_all(&same_fs);
    assert!(stdout(&o).contains("rc="), "the mounts could not be made: {}", show(&o));
    outside.assert_unchanged("another filesystem mounted inside a leftover folder", &o);
    assert_eq!(
        same_kept.as_deref(),
        Some("keep"),
        "cleanup entered a bind mount inside a leftover folder: {}",
        show(&o)
    );
    assert!(text(&o).contains("not entered"), "cleanup does not say what it left: {}", show(&o));
    // Outside that namespace the mounts are gone: now it goes.
    let c = with_runtime(fx.palisade(), &run).arg("cleanup").output().unwrap();
    ok(&c);
    assert!(!folder.exists(), "{}", show(&c));
}

/// Only what Palisade made is removed: a folder that took a recorded folder's name since (same
/// path, another directory) stays, with what is in it.
#[test]
fn cleanup_leaves_a_folder_that_is_not_the_recorded_one() {
    let fx = Fixture::new();
    fx.require_visible();
    let run = runtime_dir(&fx);
    let nap = sleep_marker().to_string();
    let _reaper = Reaper { nap: nap.clone(), run: run.clone() };
    let (mut child, _out) = start_until_ready(&fx, &run, &format!("echo x > /tmp/x; echo ready; exec sleep {nap}"));
    let folder = recorded_folder(&run);
    child.kill().unwrap();
    child.wait().unwrap();
    for _ in 0..100 {
        if survivors(&nap).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let moved = folder.with_file_name(format!("moved-{}", fx.m));
    fs::rename(&folder, &moved).unwrap();
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("someone-elses.txt"), "keep").unwrap();
    // The killed run's processes may still be on their way out on a busy machine (its record
    // counts as running until then): ask again until it no longer does.
    let mut o = with_runtime(fx.palisade(), &run).arg("cleanup").output().unwrap();
    for _ in 0..50 {
        if !stdout(&o).contains("of running commands stay") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        o = with_runtime(fx.palisade(), &run).arg("cleanup").output().unwrap();
    }
    let kept = fs::read_to_string(folder.join("someone-elses.txt")).ok();
    let _ = fs::remove_dir_all(&folder);
    let _ = fs::remove_dir_all(&moved);
    ok(&o);
    assert_eq!(kept.as_deref(), Some("keep"), "cleanup removed a folder palisade did not make: {}", show(&o));
    assert!(stdout(&o).contains("left alone"), "{}", show(&o));
    assert_eq!(records(&run), Vec::<PathBuf>::new(), "the record of a folder that is gone stays");
}
