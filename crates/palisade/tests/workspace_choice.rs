//! Which directory is the workspace without `--workspace`: the nearest enclosing project (a
//! `.palisade/config.toml` or a git working tree's top level), never the home directory; the
//! command still starts in the current directory.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::fs;

#[test]
fn from_a_subdirectory_the_repository_is_the_workspace() {
    let fx = Fixture::new();
    fx.require_visible();
    fx.git_init();
    let src = fx.ws.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("b.txt"), "b\n").unwrap();
    let o = fx
        .palisade()
        .current_dir(&src)
        .args(["run", "--", "sh", "-c", "pwd; git add b.txt && echo added"])
        .output()
        .unwrap();
    assert!(stdout(&o).contains("added"), "git add from a subdirectory failed: {}", show(&o));
    let pwd = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert_eq!(
        fs::canonicalize(&pwd).ok(),
        fs::canonicalize(&src).ok(),
        "the command did not start in the current directory: {}",
        show(&o)
    );
    // From the host: the index really holds the file.
    assert!(fx.git_ok(&["ls-files", "--stage"]).contains("src/b.txt"), "the host's index does not list src/b.txt");
    let o = fx.palisade().current_dir(&src).arg("policy").output().unwrap();
    let ws = fs::canonicalize(&fx.ws).unwrap();
    assert!(
        stdout(&o).lines().any(|l| l.starts_with("workspace") && l.ends_with(&ws.display().to_string())),
        "{}",
        show(&o)
    );
    assert!(stdout(&o).contains("git working tree's top level"), "policy does not say why: {}", show(&o));
}

#[test]
fn from_a_subdirectory_the_project_file_applies() {
    let fx = Fixture::new();
    fx.require_visible();
    fs::create_dir_all(fx.ws.join(".palisade")).unwrap();
    fs::write(fx.ws.join(".palisade/config.toml"), "mode = \"read-only\"\n").unwrap();
    let sub = fx.ws.join("a/b");
    fs::create_dir_all(&sub).unwrap();
    let o = fx
        .palisade()
        .current_dir(&sub)
        .args(["run", "--", "sh", "-c", "echo x > here.txt; echo ran"])
        .output()
        .unwrap();
    assert!(stdout(&o).contains("ran"), "{}", show(&o));
    assert!(
        !sub.join("here.txt").exists(),
        "the project's read-only mode was skipped from a subdirectory: {}",
        show(&o)
    );
    let o = fx.palisade().current_dir(&sub).args(["policy", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    assert_eq!(v["mode"]["value"], "read-only", "{v}");
    assert_eq!(v["workspace_rule"]["rule"], "project-config", "{v}");
}

#[test]
fn without_a_project_above_the_current_directory_is_the_workspace() {
    let fx = Fixture::new();
    fx.require_visible();
    let dir = fx.ws.join("plain");
    fs::create_dir(&dir).unwrap();
    let dir = fs::canonicalize(&dir).unwrap();
    if let Some(marked) = dir.ancestors().find(|a| a.join(".git").exists() || a.join(".palisade/config.toml").exists())
    {
        skip(&format!(
            "the scratch folder lies inside a project ({}): set PALISADE_TEST_DIR outside it",
            marked.display()
        ));
        return;
    }
    let o = fx.palisade().current_dir(&dir).args(["policy", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    // The fixture's workspace has no marker either, and its parents are scratch folders.
    assert_eq!(v["workspace_rule"]["rule"], "current-directory", "{v}");
    assert_eq!(v["workspace"], fs::canonicalize(&dir).unwrap().display().to_string(), "{v}");
}

#[test]
fn the_home_directory_is_refused_with_a_hint() {
    let fx = Fixture::new();
    let o = fx.palisade().current_dir(&fx.home).args(["run", "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", show(&o));
    assert!(stderr(&o).contains("--workspace"), "the refusal does not name --workspace: {}", show(&o));
    // A dotfiles repository in the home directory does not make it the workspace either.
    fx.git_in(&fx.home, &["init", "-q"]);
    let notes = fx.home.join("notes");
    fs::create_dir(&notes).unwrap();
    let o = fx.palisade().current_dir(&notes).args(["policy", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    assert_eq!(v["workspace"], fs::canonicalize(&notes).unwrap().display().to_string(), "{v}");
}

/// A linked worktree (`git worktree add`) keeps its index lock, objects and refs in the main
/// repository's git directory: palisade says so, with the flag that lets git commit; with it,
/// a commit inside works.
#[test]
fn a_linked_worktree_gets_a_warning_naming_the_flag_that_lets_git_commit() {
    let fx = Fixture::new();
    fx.require_visible();
    let main = fx.outside.join("main");
    fs::create_dir(&main).unwrap();
    fx.git_in(&main, &["init", "-q", "-b", "main"]);
    fs::write(main.join("a"), "a\n").unwrap();
    fx.git_in(&main, &["add", "a"]);
    assert!(fx.git_in(&main, &["commit", "-qm", "a"]).status.success());
    let wt = fx.root.join("wt");
    assert!(fx.git_in(&main, &["worktree", "add", "-q", "-b", "feature", wt.to_str().unwrap()]).status.success());
    fs::write(wt.join("w.txt"), "w\n").unwrap();
    let commit = format!("{}git add w.txt && git commit -qm w && echo committed", fx.git_env_script_prefix());
    let o = fx.palisade().current_dir(&wt).args(["run", "--", "sh", "-c", &commit]).output().unwrap();
    let common = fs::canonicalize(main.join(".git")).unwrap();
    assert!(!stdout(&o).contains("committed"), "git committed without the repository writable: {}", show(&o));
    assert!(
        stderr(&o).contains(&format!("add --writable {}", common.display())),
        "no warning naming the flag: {}",
        show(&o)
    );
    let o = fx
        .palisade()
        .current_dir(&wt)
        .args(["run", "--writable"])
        .arg(&common)
        .args(["--", "sh", "-c", &commit])
        .output()
        .unwrap();
    assert!(stdout(&o).contains("committed"), "git could not commit with the repository writable: {}", show(&o));
    assert!(!stderr(&o).contains("linked git worktree"), "warned although the repository is writable: {}", show(&o));
    assert_eq!(fx.git_in(&wt, &["log", "-1", "--format=%s"]).stdout, b"w\n");
}
