//! What the unelevated Windows sandbox enforces, tried from inside it: writes outside the
//! writable roots, protected paths (letter case, alternate data streams, trailing dots,
//! renames and deletes), a junction pointing outside, child processes, read-only mode,
//! world-writable folders, privileges, administrative groups (deny-only from an elevated prompt),
//! and the process tree ending with the command.
//!
//! Only real Windows enforces tokens and ACLs. Wine accepts every call and enforces none, so
//! under Wine each test prints a `NOT RUN under Wine` line (on stderr, past the test
//! harness's output capture) and returns instead of passing silently.
#![cfg(windows)]

mod windows_common;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use windows_common::*;

#[test]
fn writes_inside_the_workspace_work() {
    let Some(_g) = on_real_windows("writes_inside_the_workspace_work") else {
        return;
    };
    let ws = tempdir("palisade-enf-");
    let out = cmd(
        ws.path(),
        &[],
        "mkdir sub && echo x> sub\\f.txt && ren sub\\f.txt g.txt && echo y> h.txt && del h.txt && echo t> %TMP%\\t.txt",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(ws.path().join("sub").join("g.txt").exists());
    assert!(!ws.path().join("h.txt").exists());
}

#[test]
fn writes_outside_the_writable_roots_are_denied() {
    let Some(_g) = on_real_windows("writes_outside_the_writable_roots_are_denied") else {
        return;
    };
    let ws = tempdir("palisade-enf-");
    let outside = tempdir("palisade-outside-");
    std::fs::write(outside.path().join("existing.txt"), "original").unwrap();
    let profile = PathBuf::from(std::env::var_os("USERPROFILE").unwrap());
    let probe = profile.join(format!("palisade-probe-{}.txt", std::process::id()));
    let line = format!(
        "echo x> \"{o}\\new.txt\" & echo x>> \"{o}\\existing.txt\" & del \"{o}\\existing.txt\" & mkdir \"{o}\\dir\" & echo x> \"{p}\" & cd .. & rmdir /s /q \"{w}\"",
        o = outside.path().display(),
        p = probe.display(),
        w = ws.path().display()
    );
    cmd(ws.path(), &[], &line);
    must_not_exist(&outside.path().join("new.txt"), "a new file outside");
    assert_eq!(std::fs::read_to_string(outside.path().join("existing.txt")).unwrap(), "original");
    assert!(!outside.path().join("dir").exists(), "a folder was made outside");
    must_not_exist(&probe, "a file in the profile");
    assert!(ws.path().exists(), "the workspace itself was removed");
}

/// Deleting needs `DELETE` on the file or `FILE_DELETE_CHILD` on its folder, and neither is in
/// the file type's generic write mapping: whether the write restriction covers them is exactly
/// what this checks (a folder the user has full control of grants both, as `%TEMP%` and the
/// profile's folders do).
#[test]
fn deletes_outside_the_writable_roots_are_denied() {
    let Some(_g) = on_real_windows("deletes_outside_the_writable_roots_are_denied") else {
        return;
    };
    let ws = tempdir("palisade-enf-");
    let outside = tempdir("palisade-outside-");
    let tree = outside.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub").join("leaf.txt"), "leaf").unwrap();
    std::fs::write(outside.path().join("file.txt"), "file").unwrap();
    let profile = PathBuf::from(std::env::var_os("USERPROFILE").unwrap());
    let probe = profile.join(format!("palisade-delete-probe-{}.txt", std::process::id()));
    std::fs::write(&probe, "keep me").unwrap();
    let line = format!(
        "del /f /q \"{o}\\file.txt\" & rmdir /s /q \"{t}\" & del /f /q \"{p}\"",
        o = outside.path().display(),
        t = tree.display(),
        p = probe.display()
    );
    cmd(ws.path(), &[], &line);
    let probe_left = probe.exists();
    let _ = std::fs::remove_file(&probe);
    assert!(probe_left, "a file in the profile was deleted from inside the sandbox");
    assert!(outside.path().join("file.txt").exists(), "a file outside was deleted");
    assert!(tree.join("sub").join("leaf.txt").exists(), "a tree outside was deleted bottom-up");
}

/// A workspace with a git directory (made by hand: no git needed).
fn git_workspace() -> tempfile::TempDir {
    let ws = tempdir("palisade-enf-git-");
    let git = ws.path().join(".git");
    std::fs::create_dir_all(git.join("hooks")).unwrap();
    std::fs::create_dir_all(git.join("objects")).unwrap();
    std::fs::write(git.join("config"), "[core]\n").unwrap();
    std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    ws
}

#[test]
fn protected_paths_stay_read_only() {
    let Some(_g) = on_real_windows("protected_paths_stay_read_only") else {
        return;
    };
    let ws = git_workspace();
    let line = [
        "echo x> .git\\hooks\\pre-commit",
        "echo x>> .git\\config",
        "echo x>> .GiT\\CONFIG",
        "echo x> .git\\config:stream",
        "echo x>> \".git\\config.\"",
        "echo x>> \".git\\config \"",
        "del /f .git\\config",
        "ren .git\\config config.old",
        "rmdir /s /q .git\\hooks",
        "ren .git git-old",
        "move .git git-moved",
        "mkdir .vscode\\x",
        "echo x> .vscode\\settings.json",
        "echo x> .envrc\\y",
        "mkdir .claude\\z",
        "echo ok> .git\\objects\\written",
    ]
    .join(" & ");
    cmd(ws.path(), &[], &line);
    let git = ws.path().join(".git");
    assert!(git.is_dir(), ".git was renamed or removed");
    assert_eq!(std::fs::read_to_string(git.join("config")).unwrap(), "[core]\n", ".git\\config was changed");
    assert!(std::fs::read(git.join("config:stream")).is_err(), "an alternate data stream was added to .git\\config");
    must_not_exist(&git.join("hooks").join("pre-commit"), "a hook");
    assert!(git.join("hooks").is_dir(), ".git\\hooks was removed");
    for p in [".vscode\\x", ".vscode\\settings.json", ".envrc\\y", ".claude\\z", "git-old", "git-moved"] {
        assert!(!ws.path().join(p).exists(), "{p} was created");
    }
    // The pinned .git stays writable inside.
    assert!(git.join("objects").join("written").exists(), ".git\\objects should stay writable");
}

#[test]
fn a_junction_pointing_outside_gives_no_write_access() {
    let Some(_g) = on_real_windows("a_junction_pointing_outside_gives_no_write_access") else {
        return;
    };
    let ws = tempdir("palisade-enf-junction-");
    let outside = tempdir("palisade-outside-");
    // Made before palisade first sees the workspace, so its grant is applied with the junction
    // in place (the grant must not follow it).
    let link = ws.path().join("link");
    let st = Command::new("cmd")
        .arg("/c")
        .arg(format!("mklink /J \"{}\" \"{}\"", link.display(), outside.path().display()))
        .output()
        .unwrap();
    assert!(st.status.success(), "mklink /J failed: {}", text(&st.stderr));
    cmd(ws.path(), &[], "echo x> link\\through.txt & mkdir link\\sub");
    must_not_exist(&outside.path().join("through.txt"), "a file through the junction");
    assert!(!outside.path().join("sub").exists(), "a folder through the junction");
}

#[test]
fn child_processes_are_confined_too() {
    let Some(_g) = on_real_windows("child_processes_are_confined_too") else {
        return;
    };
    let ws = tempdir("palisade-enf-");
    let outside = tempdir("palisade-outside-");
    let line = format!(
        "cmd /d /c \"echo x> \"{o}\\child.txt\"\" & start \"\" /wait /b cmd /d /c echo x^> \"{o}\\started.txt\"",
        o = outside.path().display()
    );
    cmd(ws.path(), &[], &line);
    must_not_exist(&outside.path().join("child.txt"), "a child's write");
    must_not_exist(&outside.path().join("started.txt"), "a started process's write");
}

#[test]
fn read_only_mode_writes_only_the_private_temporary_folder() {
    let Some(_g) = on_real_windows("read_only_mode_writes_only_the_private_temporary_folder") else {
        return;
    };
    let ws = tempdir("palisade-enf-ro-");
    let out = cmd(ws.path(), &["--mode", "read-only"], "echo x> ws.txt & echo t> %TMP%\\t.txt && type %TMP%\\t.txt");
    must_not_exist(&ws.path().join("ws.txt"), "a workspace write in read-only mode");
    assert!(text(&out.stdout).contains('t'), "the private temporary folder is not writable: {}", text(&out.stdout));
}

#[test]
fn a_folder_everyone_may_write_is_denied_to_the_sandbox() {
    let Some(_g) = on_real_windows("a_folder_everyone_may_write_is_denied_to_the_sandbox") else {
        return;
    };
    let ws = tempdir("palisade-enf-");
    let open = tempdir("palisade-world-");
    let st = Command::new("icacls").arg(open.path()).args(["/grant", "*S-1-1-0:(OI)(CI)F"]).output().unwrap();
    assert!(st.status.success(), "icacls failed: {}", text(&st.stdout));
    // On PATH, so the audit looks at it.
    let path = format!("{};{}", open.path().display(), std::env::var("PATH").unwrap_or_default());
    let mut c = palisade();
    c.arg("run").arg("--workspace").arg(ws.path()).args(["--network", "on", "--", "cmd", "/d", "/c"]);
    c.arg(format!("echo x> \"{}\\planted.exe\"", open.path().display())).env("PATH", path).stdin(Stdio::null());
    let out = c.output().unwrap();
    assert!(!text(&out.stderr).contains("palisade:"), "{}", text(&out.stderr));
    must_not_exist(&open.path().join("planted.exe"), "a program planted in a world-writable PATH folder");
}

#[test]
fn the_token_keeps_no_privileges() {
    let Some(_g) = on_real_windows("the_token_keeps_no_privileges") else {
        return;
    };
    let ws = tempdir("palisade-enf-");
    let out = cmd(ws.path(), &[], "whoami /priv");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("SeChangeNotifyPrivilege"), "{stdout}");
    for p in [
        "SeShutdownPrivilege",
        "SeUndockPrivilege",
        "SeIncreaseWorkingSetPrivilege",
        "SeTimeZonePrivilege",
        "SeDebugPrivilege",
    ] {
        assert!(!stdout.contains(p), "{p} is still in the token:\n{stdout}");
    }
}

#[test]
fn the_process_tree_ends_with_the_command() {
    let Some(_g) = on_real_windows("the_process_tree_ends_with_the_command") else {
        return;
    };
    let ws = tempdir("palisade-enf-");
    let marker = ws.path().join("late.txt");
    let late = "start \"\" /b cmd /d /c \"ping -n 4 127.0.0.1 >nul & echo late> late.txt\"";
    // The control first: with --keep-processes the background process lives on and writes the
    // marker; how long that took here bounds how long the check below waits (three times as
    // long), so a slow runner cannot make "no marker yet" pass for "ended".
    let start = Instant::now();
    cmd(ws.path(), &["--keep-processes"], late);
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "control: the background process never wrote its marker with --keep-processes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = start.elapsed();
    std::fs::remove_file(&marker).unwrap();
    cmd(ws.path(), &[], late);
    let start = Instant::now();
    while start.elapsed() < (took * 3).max(Duration::from_secs(6)) {
        assert!(!marker.exists(), "a background process outlived the command");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One line of `whoami /groups /fo csv /nh`, split into its quoted fields (name, type, SID,
/// attributes). Only the SID column is the same in every display language.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The attributes column of the group whose SID is `sid` in `whoami /groups /fo csv /nh` output.
fn group_attributes(whoami_csv: &str, sid: &str) -> Option<String> {
    whoami_csv.lines().map(csv_fields).find(|f| f.len() >= 4 && f[2].eq_ignore_ascii_case(sid)).map(|f| f[3].clone())
}

const ADMINISTRATORS: &str = "S-1-5-32-544";
/// `Mandatory Label\High Mandatory Level`: the integrity label of an elevated token.
const HIGH_INTEGRITY: &str = "S-1-16-12288";

/// The tests below are about a caller running elevated, which GitHub's Windows runners do:
/// they fail (never pass) when this process is not, so a runner that stopped being elevated
/// is noticed. Returns this process's `whoami /groups /fo csv /nh`.
fn require_elevated(test: &str) -> String {
    let out = Command::new("whoami").args(["/groups", "/fo", "csv", "/nh"]).output().unwrap();
    assert!(out.status.success(), "whoami /groups failed: {}", text(&out.stderr));
    let groups = text(&out.stdout);
    // By SID, not by name: names and attribute texts are translated.
    let elevated =
        group_attributes(&groups, HIGH_INTEGRITY).is_some() && group_attributes(&groups, ADMINISTRATORS).is_some();
    assert!(
        elevated,
        "{test}: this test needs an elevated caller (an administrator at high integrity, as on GitHub's Windows runners) and this one is not; run it from an elevated prompt. whoami /groups:\n{groups}"
    );
    groups
}

/// From an elevated prompt the command's token holds Administrators as deny-only (whoami says
/// so), and a folder only administrators may write (System32) stays closed to it.
///
/// The attribute text is read by the Administrators group's SID, which is the same in every
/// language; the attribute words themselves are translated, so the exact "Group used for deny
/// only" is asserted when Windows speaks English (GitHub's runners do), and otherwise only that
/// the attributes differ from the caller's, where the group is enabled.
#[test]
fn admin_groups_are_deny_only_from_an_elevated_prompt() {
    let Some(_g) = on_real_windows("admin_groups_are_deny_only_from_an_elevated_prompt") else {
        return;
    };
    let outside = require_elevated("admin_groups_are_deny_only_from_an_elevated_prompt");
    let outside_attrs = group_attributes(&outside, ADMINISTRATORS).unwrap();

    let ws = tempdir("palisade-enf-admin-");
    let out = cmd(ws.path(), &[], "whoami /groups /fo csv /nh");
    assert_eq!(out.status.code(), Some(0), "whoami in the sandbox: {}", text(&out.stderr));
    let inside = text(&out.stdout);
    let inside_attrs = group_attributes(&inside, ADMINISTRATORS)
        .unwrap_or_else(|| panic!("no Administrators group in the sandboxed token:\n{inside}"));
    assert_ne!(inside_attrs, outside_attrs, "Administrators is usable in the sandbox as it is outside:\n{inside}");
    if outside_attrs.contains("Enabled group") {
        assert_eq!(inside_attrs, "Group used for deny only", "{inside}");
    }

    // Administrators may create files in System32, Users may not: prove the first from here,
    // then try from inside.
    let system32 =
        PathBuf::from(std::env::var_os("SystemRoot").unwrap_or_else(|| "C:\\Windows".into())).join("System32");
    let name = format!("palisade-test-{}-{}", std::process::id(), rand_suffix());
    let probe = system32.join(format!("{name}-probe"));
    std::fs::write(&probe, "x").unwrap_or_else(|e| panic!("the elevated caller cannot write {}: {e}", probe.display()));
    std::fs::remove_file(&probe).unwrap();
    let file = system32.join(&name);
    let dir = system32.join(format!("{name}-dir"));
    cmd(ws.path(), &[], &format!("echo x> \"{}\" & mkdir \"{}\"", file.display(), dir.display()));
    let dir_written = dir.exists();
    let _ = std::fs::remove_dir_all(&dir);
    must_not_exist(&file, "a file in System32");
    assert!(!dir_written, "a folder in System32: {} was made from inside the sandbox", dir.display());
}

/// A file only Administrators and SYSTEM may read stays unreadable from the sandbox of an
/// elevated caller. This is what deny-only changes: without it the write-restricted token
/// (which checks reads with the normal groups only) reads the file through Administrators.
#[test]
fn admin_only_files_stay_unreadable_from_an_elevated_prompt() {
    let Some(_g) = on_real_windows("admin_only_files_stay_unreadable_from_an_elevated_prompt") else {
        return;
    };
    require_elevated("admin_only_files_stay_unreadable_from_an_elevated_prompt");
    let ws = tempdir("palisade-enf-");
    let vault = tempdir("palisade-adminonly-");
    // Only Administrators and SYSTEM (by SID: names are translated), nothing inherited, so
    // not the user either.
    let st = Command::new("icacls")
        .arg(vault.path())
        .args(["/inheritance:r", "/grant:r", "*S-1-5-32-544:(OI)(CI)F", "*S-1-5-18:(OI)(CI)F"])
        .output()
        .unwrap();
    assert!(st.status.success(), "icacls: {}", text(&st.stdout));
    let secret_text = format!("palisade-secret-{}", rand_suffix());
    let secret = vault.path().join("secret.txt");
    std::fs::write(&secret, &secret_text).unwrap();
    // Readable from here, through Administrators.
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), secret_text);

    let copy = ws.path().join("copy.txt");
    let out = cmd(
        ws.path(),
        &[],
        &format!("type \"{}\" & copy /y \"{}\" \"{}\"", secret.display(), secret.display(), copy.display()),
    );
    assert!(
        !text(&out.stdout).contains(&secret_text),
        "an administrator-only file was read from inside the sandbox: {}",
        text(&out.stdout)
    );
    must_not_exist(&copy, "a copy of an administrator-only file");
}
