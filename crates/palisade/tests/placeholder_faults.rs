//! Placeholders under faults: a run killed at any point of making them, records holding hostile
//! names, two runs reaching one writable root through different workspaces or environments, a
//! lock held by someone else, and a link planted where a protected path goes.
//!
//! Everything is asserted on the host: the workspace (and `.git`) compared with a [`Snapshot`]
//! taken before, the host's own `git status`, files outside the workspace.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `palisade cleanup` acts on every writable root of this user: tests that use it (or that
/// need leftovers to stay until they look) take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A snapshot in which folders' times do not count: making and removing a placeholder changes
/// its folder's modification time, and nothing else may differ.
fn settled(root: &Path) -> Snapshot {
    let mut s = Snapshot::take(root);
    for e in s.entries.values_mut() {
        if e.kind == "dir" {
            e.mtime = (0, 0);
            e.ctime = (0, 0);
        }
    }
    s
}

fn assert_same(before: &Snapshot, what: &str) {
    let d = before.diff(&settled(&before.root));
    assert!(d.is_empty(), "{what}: {} differs from before:\n  {}", before.root.display(), d.join("\n  "));
}

/// `palisade cleanup`, again while it finds a root in use: a killed palisade's sandbox (which
/// holds the lock too) gets its parent-death signal, but needs a moment to die (bounded).
fn cleanup(fx: &Fixture, cwd: &Path) -> std::process::Output {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = fx.palisade().current_dir(cwd).arg("cleanup").output().unwrap();
        ok(&o);
        if !stdout(&o).contains("in use") || std::time::Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn host_git_works(fx: &Fixture, what: &str) {
    // Without optional locks: a plain `git status` refreshes (rewrites) the index.
    let o = fx.git(&["--no-optional-locks", "status", "--porcelain"]);
    assert!(o.status.success(), "{what}: the host's git is broken: {}", show(&o));
}

/// Starts `palisade run` with a script that prints `ready`, then waits for a line on stdin
/// before doing `then`; returns once it is ready.
fn start_waiting(mut cmd: Command, then: &str) -> (Child, BufReader<std::process::ChildStdout>) {
    let script = format!("echo ready; read _go; {then}");
    cmd.args(["sh", "-c", &script]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        panic!("the sandboxed command did not start: {}", show(&o));
    }
    (child, out)
}

/// Lets a command started by [`start_waiting`] go on, and returns what it printed after.
fn finish(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (std::process::ExitStatus, String, String) {
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    drop(child.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (child.wait().unwrap(), rest, err)
}

/// `palisade run` beginning with the fixture's environment, without the `--` and command.
fn run_prefix(fx: &Fixture, workspace: &Path, flags: &[&str]) -> Command {
    let mut c = fx.palisade();
    c.current_dir(workspace).arg("run").arg("--workspace").arg(workspace).args(flags).arg("--");
    c
}

/// The brief's reproduction: SIGKILL at the moment `.git/commondir` would be written. The
/// placeholder must never exist half-made (an empty `commondir` breaks every git command).
#[test]
fn a_kill_at_the_commondir_write_leaves_git_working() {
    let strace = require_tool("strace");
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    assert!(!fx.ws.join(".git/commondir").exists());
    let before = settled(&fx.ws);
    let commondir = fx.ws.join(".git/commondir");
    let o = Command::new(&strace)
        .args(["-f", "-o", "/dev/null", "-P"])
        .arg(&commondir)
        .args(["-e", "trace=write", "-e", "inject=write:signal=KILL", BIN, "run", "--workspace"])
        .arg(&fx.ws)
        .args(["--", "true"])
        .current_dir(&fx.ws)
        .envs(fx.env())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!stderr(&o).contains("strace: "), "strace could not trace palisade: {}", show(&o));
    host_git_works(&fx, "after a run killed while writing .git/commondir");
    if let Ok(c) = fs::read(&commondir) {
        assert_eq!(c, b".\n", "a half-made .git/commondir is visible on the host");
    }
    cleanup(&fx, &fx.ws);
    assert_same(&before, "after the killed run and `palisade cleanup`");
}

/// SIGKILL at the Nth directory made by a run (its private /tmp first, then the placeholders):
/// whatever the run made in the workspace is recorded before it exists, so `palisade cleanup`
/// leaves the workspace exactly as before, and nothing the user owns goes.
#[test]
fn a_kill_at_any_directory_creation_leaves_nothing_after_cleanup() {
    let strace = require_tool("strace");
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    let before = settled(&fx.ws);
    for n in [4, 5, 6, 8, 12, 20] {
        let o = Command::new(&strace)
            .args(["-f", "-o", "/dev/null", "-e", "trace=mkdir,mkdirat", "-e"])
            .arg(format!("inject=mkdir,mkdirat:signal=KILL:when={n}"))
            .args([BIN, "run", "--workspace"])
            .arg(&fx.ws)
            .args(["--", "true"])
            .current_dir(&fx.ws)
            .envs(fx.env())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!stderr(&o).contains("strace: "), "strace could not trace palisade: {}", show(&o));
        host_git_works(&fx, &format!("killed at directory {n}"));
        cleanup(&fx, &fx.ws);
        assert_same(&before, &format!("killed at directory {n}, then `palisade cleanup`"));
    }
}

/// SIGKILL at random moments early in a run (while its placeholders are being recorded, made
/// and moved into place): the host's git works after every kill, and after `palisade cleanup`
/// the workspace and its `.git` are exactly as before (nothing left, nothing removed).
#[test]
fn kills_at_random_points_leave_nothing_after_cleanup() {
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    // A user's own empty folder where a placeholder's temporary might go: it must stay.
    fs::create_dir(fx.ws.join("keep-me")).unwrap();
    let before = settled(&fx.ws);
    let (mut killed_with_leftovers, mut half_made) = (0, 0);
    const ROUNDS: usize = 200;
    for round in 0..ROUNDS {
        let mut child = fx.run_cmd(&[], &["true"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Up to 20 ms; every other round within the first 5, where the placeholders are made.
        let range = if round % 2 == 0 { 5_000 } else { 20_000 };
        std::thread::sleep(Duration::from_micros(random_u64() % range));
        let _ = child.kill();
        child.wait().unwrap();
        host_git_works(&fx, &format!("round {round}, after SIGKILL"));
        let d = before.diff(&settled(&fx.ws));
        if !d.is_empty() {
            killed_with_leftovers += 1;
            half_made += d.iter().any(|l| l.contains(".palisade-new-")) as usize;
        }
        if round % 20 == 19 {
            cleanup(&fx, &fx.ws);
            assert_same(&before, &format!("round {round}, after `palisade cleanup`"));
        }
    }
    // Not an assertion on timing: only a note when no kill hit the interesting window.
    eprintln!("{killed_with_leftovers} of {ROUNDS} kills left placeholders for cleanup to remove, {half_made} of them temporaries");
}

/// A submodule git directory whose name holds a newline (`x\nvictim`): with a line-based
/// record, its placeholders' paths split into `victim/hooks` and friends, which cleanup then
/// removed relative to its working directory. The record must keep the name whole.
#[test]
fn a_newline_in_a_path_cannot_make_cleanup_remove_anything_outside() {
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    // A module git directory (what the protected-path search looks for): hooks missing.
    fs::create_dir_all(fx.ws.join(".git/modules/x\nvictim/objects")).unwrap();
    fs::write(fx.ws.join(".git/modules/x\nvictim/HEAD"), "ref: refs/heads/main\n").unwrap();
    // What the split lines would name, relative to cleanup's working directory (`outside`) and
    // to the root: exactly what a placeholder looks like (empty folders, a "." commondir).
    for base in [fx.outside.clone(), fx.ws.clone(), PathBuf::from(&fx.root)] {
        fs::create_dir_all(base.join("victim/hooks")).unwrap();
        fs::create_dir_all(base.join("victim/config")).unwrap();
        fs::write(base.join("victim/commondir"), ".\n").unwrap();
    }
    let outside_before = settled(&fx.outside);
    let ws_before = settled(&fx.ws);
    let nap = sleep_marker().to_string();
    let _reap = KillOnDrop(nap.clone());
    let mut run = fx
        .run_cmd(&[], &["sh", "-c", &format!("echo ready; exec sleep {nap}")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(run.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(
        fx.ws.join(".git/modules/x\nvictim/hooks").is_dir(),
        "no placeholder in the newline-named folder: this test proves nothing"
    );
    run.kill().unwrap(); // the record stays for cleanup
    run.wait().unwrap();
    assert_eq!(survivors(&nap), Vec::<i32>::new());
    cleanup(&fx, &fx.outside);
    assert_same(&outside_before, "`palisade cleanup` run from the outside folder");
    assert_same(&ws_before, "the workspace after `palisade cleanup`");
    for base in [&fx.root, &fx.ws] {
        assert!(
            base.join("victim/hooks").is_dir() && base.join("victim/commondir").is_file(),
            "cleanup removed {}/victim/*",
            base.display()
        );
    }
}

/// A folder holding placeholders swapped for a symbolic link before the clean-up (what a
/// command of another run could do in a pinned, writable `.git/modules`): removal works by
/// handle, never through the link, so what the link points to stays.
#[test]
fn cleanup_never_follows_a_folder_swapped_for_a_link() {
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    let evil = fx.ws.join(".git/modules/evil");
    // A module git directory (what the protected-path search looks for): hooks missing.
    fs::create_dir_all(evil.join("objects")).unwrap();
    fs::write(evil.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    let victim = fx.outside.join("victim");
    fs::create_dir_all(victim.join("hooks")).unwrap();
    fs::create_dir_all(victim.join("config")).unwrap();
    fs::write(victim.join("commondir"), ".\n").unwrap();
    let outside_before = settled(&fx.outside);
    let nap = sleep_marker().to_string();
    let _reap = KillOnDrop(nap.clone());
    let mut run = fx
        .run_cmd(&[], &["sh", "-c", &format!("echo ready; exec sleep {nap}")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(run.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(evil.join("hooks").is_dir(), "no placeholder in .git/modules/evil: this test proves nothing");
    run.kill().unwrap(); // the record stays for cleanup
    run.wait().unwrap();
    assert_eq!(survivors(&nap), Vec::<i32>::new());
    fs::rename(&evil, fx.ws.join(".git/modules/evil-old")).unwrap();
    std::os::unix::fs::symlink(&victim, &evil).unwrap();
    cleanup(&fx, &fx.ws);
    assert_same(&outside_before, "`palisade cleanup` after .git/modules/evil became a link to outside");
}

/// Two runs protecting the same writable root, which the first reaches as its workspace and
/// the second through `--writable` from another workspace: when the first ends, the
/// placeholders the second relies on must stay, or its command could create
/// `.vscode/tasks.json` (a task the editor runs) in that root.
#[test]
fn a_root_shared_through_writable_keeps_its_placeholders_until_the_last_run_ends() {
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    let other_ws = fx.root.join("ws2");
    fs::create_dir(&other_ws).unwrap();
    let tasks = fx.ws.join(".vscode/tasks.json");
    let (first, first_out) = start_waiting(run_prefix(&fx, &fx.ws, &[]), "true");
    assert!(fx.ws.join(".vscode").is_dir(), "no .vscode placeholder: this test needs updating");
    let attempt =
        "mkdir -p \"$PAL_WS/.vscode\" 2>/dev/null; echo '{\"tasks\":[]}' > \"$PAL_WS/.vscode/tasks.json\"; echo tried";
    let ws = fx.ws.to_str().unwrap();
    let (second, second_out) = start_waiting(run_prefix(&fx, &other_ws, &["--writable", ws]), attempt);
    let (st, _, err) = finish(first, first_out);
    assert!(st.success(), "the first run failed: {err}");
    assert!(fx.ws.join(".vscode").is_dir(), "the first run removed the .vscode placeholder the second run relies on");
    let (_, rest, err) = finish(second, second_out);
    assert!(rest.contains("tried"), "the second command did not get to its attempt: {rest}{err}");
    assert!(
        !tasks.exists(),
        "SANDBOX ESCAPE: .vscode/tasks.json was created in the shared root after the first run ended"
    );
    assert!(!fx.ws.join(".vscode").exists(), "the last run left the .vscode placeholder behind");
}

/// Nested roots: a run of `ws` with `--writable ws/sub` makes `ws/sub/.vscode` (recorded with
/// its outer root), then a run whose workspace is `ws/sub` relies on it. When the first ends,
/// the placeholder must stay until the second has ended too.
#[test]
fn a_placeholder_in_a_nested_root_stays_while_a_run_of_that_root_lives() {
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    let sub = fx.ws.join("sub");
    fs::create_dir(&sub).unwrap();
    // A repository of its own: a writable root that is neither the workspace nor a repository
    // gets no placeholders.
    fx.git_in(&sub, &["init", "-q"]);
    let (first, first_out) = start_waiting(run_prefix(&fx, &fx.ws, &["--writable", sub.to_str().unwrap()]), "true");
    assert!(sub.join(".vscode").is_dir(), "no sub/.vscode placeholder: this test needs updating");
    let attempt = "mkdir -p .vscode 2>/dev/null; echo '{\"tasks\":[]}' > .vscode/tasks.json; echo tried";
    let (second, second_out) = start_waiting(run_prefix(&fx, &sub, &[]), attempt);
    let (st, _, err) = finish(first, first_out);
    assert!(st.success(), "the first run failed: {err}");
    assert!(sub.join(".vscode").is_dir(), "the first run removed the sub/.vscode placeholder the second run relies on");
    let (_, rest, err) = finish(second, second_out);
    assert!(rest.contains("tried"), "the second command did not get to its attempt: {rest}{err}");
    assert!(
        !sub.join(".vscode/tasks.json").exists(),
        "SANDBOX ESCAPE: sub/.vscode/tasks.json was created after the first run ended"
    );
    // The second run does not own the first one's record: `palisade cleanup` removes it.
    cleanup(&fx, &fx.ws);
    assert!(!sub.join(".vscode").exists(), "the sub/.vscode placeholder was left behind after cleanup");
}

/// The same with one run under `XDG_RUNTIME_DIR` and one without: both must find the same lock.
#[test]
fn runs_with_and_without_xdg_runtime_dir_share_the_lock() {
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    let runtime = fx.root.join("runtime");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut with = run_prefix(&fx, &fx.ws, &[]);
    with.env("XDG_RUNTIME_DIR", &runtime);
    let (first, first_out) = start_waiting(with, "true");
    let attempt = "mkdir -p .vscode 2>/dev/null; echo '{\"tasks\":[]}' > .vscode/tasks.json; echo tried";
    let mut without = run_prefix(&fx, &fx.ws, &[]);
    without.env_remove("XDG_RUNTIME_DIR");
    let (second, second_out) = start_waiting(without, attempt);
    let (st, _, err) = finish(first, first_out);
    assert!(st.success(), "the first run failed: {err}");
    let (_, rest, err) = finish(second, second_out);
    assert!(rest.contains("tried"), "the second command did not get to its attempt: {rest}{err}");
    assert!(
        !fx.ws.join(".vscode/tasks.json").exists(),
        "SANDBOX ESCAPE: .vscode/tasks.json was created after the first run ended"
    );
    assert!(!fx.ws.join(".vscode").exists(), "the last run left the .vscode placeholder behind");
}

/// A run that finds a writable root's lock held exclusively (another run removing its
/// placeholders, or anything else holding it) says so on stderr, and a SIGTERM ends it at once
/// (it does not wait for the holder, which here would hold it for ten minutes).
#[test]
fn a_lock_wait_is_announced_and_ends_on_sigterm() {
    let _turn = turn();
    let fx = Fixture::new();
    fx.git_init();
    let before = settled(&fx.ws);
    let st = fs::metadata(&fx.ws).unwrap();
    // SAFETY: geteuid has no preconditions.
    let state = PathBuf::from(format!("/tmp/palisade-{}", unsafe { libc::geteuid() }));
    if !state.exists() {
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    let lock_path = state.join(format!("root-{:x}-{:x}.lock", st.dev(), st.ino()));
    let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut run = fx.run_cmd(&[], &["true"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(run.stderr.take().unwrap());
    let mut line = String::new();
    // Ends at palisade's own limit at the latest (it closes stderr when it exits).
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains("waiting for") && line.contains(lock_path.to_str().unwrap()),
        "no line saying what the run waits for: {line:?}"
    );
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = run.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "palisade did not end on SIGTERM while waiting: {status}\n{rest}"
    );
    assert!(rest.contains("interrupted while waiting"), "{rest}");
    drop(lock);
    let _ = fs::remove_file(&lock_path);
    assert_same(&before, "a run interrupted while waiting for the lock");
}

/// A symbolic link where a protected path's folder goes (here a submodule git directory, which a
/// command can make when `.git/modules` exists) makes the next run refuse: the message names
/// the link and says to remove or replace it, and never suggests weakening protected_paths.
#[test]
fn a_planted_link_is_refused_with_advice_about_the_link() {
    let fx = Fixture::new();
    fx.git_init();
    fs::create_dir_all(fx.ws.join(".git/modules")).unwrap();
    let link = fx.ws.join(".git/modules/zz");
    std::os::unix::fs::symlink(&fx.outside, &link).unwrap();
    let o = fx.run(&["true"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    let e = stderr(&o);
    assert!(e.contains(link.to_str().unwrap()), "the message does not name the link: {e}");
    assert!(e.contains("remove the link"), "the message does not say to remove the link: {e}");
    assert!(!e.contains("protected_paths"), "the message suggests weakening the protection: {e}");
}

/// With `/tmp` writable (`--writable /tmp`), Palisade's own folder of locks and records in it
/// stays read-only inside: a command could otherwise forge a record or remove another run's
/// lock.
#[test]
fn the_lock_folder_stays_read_only_in_a_writable_tmp() {
    let fx = Fixture::new();
    // SAFETY: geteuid has no preconditions.
    let state = PathBuf::from(format!("/tmp/palisade-{}", unsafe { libc::geteuid() }));
    let sentinel = state.join(format!("root-0-{}.lock", &fx.m[3..]));
    ok(&fx.run(&["true"])); // makes the folder if this user has none yet
    fs::write(&sentinel, "").unwrap();
    let forged = state.join(format!("root-1-{}.record", &fx.m[3..]));
    let script = format!("echo palisade-placeholders 1 > '{}'; rm -f '{}'; true", forged.display(), sentinel.display());
    let o = fx.sh_flags(&["--writable", "/tmp"], &script);
    let kept = sentinel.exists();
    let _ = fs::remove_file(&sentinel);
    let made = forged.exists();
    let _ = fs::remove_file(&forged);
    assert!(kept, "SANDBOX ESCAPE: a command removed a lock file in {}: {}", state.display(), show(&o));
    assert!(!made, "SANDBOX ESCAPE: a command wrote a record in {}: {}", state.display(), show(&o));
}
