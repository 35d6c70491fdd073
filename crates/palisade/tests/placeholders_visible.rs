//! Exactly which entries a command sees in a fresh repository that the user did not make (the
//! placeholders that keep missing protected paths missing), pinned here and listed in the
//! README ("What a command sees that you did not make"); and none in a writable root that is
//! neither the workspace nor a repository (a cache).
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::fs;

/// The workspace root's placeholders in a fresh repository (`git init` + one file).
const ROOT: &[&str] = &[
    ".agents",
    ".aider.conf.yml",
    ".amazonq",
    ".claude",
    ".clinerules",
    ".codex",
    ".continue",
    ".cursor",
    ".devcontainer",
    ".devcontainer.json",
    ".envrc",
    ".gemini",
    ".idea",
    ".junie",
    ".kiro",
    ".mcp.json",
    ".mise.local.toml",
    ".mise.toml",
    ".opencode",
    ".palisade",
    ".roo",
    ".vscode",
    ".windsurf",
    ".zed",
    "HEAD",
    "mise.local.toml",
    "mise.toml",
    "opencode.json",
    "opencode.jsonc",
];

/// Inside `.git`, on top of what `git init` made.
const GIT: &[&str] = &["commondir", "config.worktree", "modules", "worktrees"];

fn listing(o: &std::process::Output, label: &str) -> Vec<String> {
    let line = stdout(o).lines().find_map(|l| l.strip_prefix(label).map(str::to_string)).unwrap_or_default();
    let mut v: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    v.sort();
    v
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn what_a_command_sees_that_the_user_did_not_make_is_pinned() {
    let fx = Fixture::new();
    fx.require_visible();
    fx.git_init();
    let cache = fx.outside.join("cache");
    fs::create_dir(&cache).unwrap();
    fs::write(cache.join("blob"), "x").unwrap();
    let (root_before, git_before, cache_before) = (names(&fx.ws), names(&fx.ws.join(".git")), names(&cache));
    let o = fx.sh_flags(
        &["--writable", s(&cache)],
        "echo ROOT: $(ls -A); echo GIT: $(ls -A .git); echo CACHE: $(ls -A \"$PAL_OUT/cache\")",
    );
    let added =
        |now: Vec<String>, before: &[String]| now.into_iter().filter(|n| !before.contains(n)).collect::<Vec<_>>();
    let mut want_root: Vec<String> = ROOT.iter().map(|s| s.to_string()).collect();
    want_root.sort();
    assert_eq!(
        added(listing(&o, "ROOT: "), &root_before),
        want_root,
        "the workspace's placeholders changed: update ROOT and the README\n{}",
        show(&o)
    );
    assert_eq!(
        added(listing(&o, "GIT: "), &git_before),
        GIT,
        "the .git placeholders changed: update GIT and the README\n{}",
        show(&o)
    );
    assert_eq!(listing(&o, "CACHE: "), cache_before, "a writable cache got placeholders\n{}", show(&o));
    // None of it stays on the host, and git never saw any of it.
    assert_eq!(names(&fx.ws), root_before, "placeholders left in the workspace");
    assert_eq!(fx.git_ok(&["status", "--porcelain"]), "", "git status shows something after the run");
}
