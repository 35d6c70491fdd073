//! Protected paths inside the workspace: git hooks and config, agent and editor folders. The
//! workspace is a real repository (`git init` and a commit done on the host first); every check
//! is made on the host afterwards, with the host's own git where it matters.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::fs;
use std::path::Path;

/// The workspace's entries (names only, sorted).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn repo() -> Fixture {
    let fx = Fixture::new();
    fx.git_init();
    fx
}

/// What the host's git must still see after a sandboxed run: the same git dir, the same HEAD
/// commit, no config key injected, no hooks path.
fn assert_host_git_intact(fx: &Fixture, head_before: &str, o: &std::process::Output) {
    let git_dir = fx.git(&["rev-parse", "--absolute-git-dir"]);
    assert_eq!(
        stdout(&git_dir).trim(),
        s(&fx.ws.join(".git")),
        "SANDBOX ESCAPE: the host's git no longer uses <workspace>/.git (stderr: {})\nrun: {}",
        stderr(&git_dir),
        show(o)
    );
    let head = fx.git(&["rev-parse", "HEAD"]);
    assert_eq!(
        stdout(&head).trim(),
        head_before,
        "the repository's HEAD is broken on the host (stderr: {})\nrun: {}",
        stderr(&head),
        show(o)
    );
    for key in ["palisade.injected", "core.hooksPath", "core.fsmonitor"] {
        let v = fx.git(&["config", "--get", key]);
        assert!(
            stdout(&v).trim().is_empty(),
            "SANDBOX ESCAPE: the host's git now sees {key} = {:?}\nrun: {}",
            stdout(&v).trim(),
            show(o)
        );
    }
}

/// The security property when a command wrecks `.git`'s unprotected contents (objects, refs,
/// HEAD: data inside the writable workspace, which the command may delete like any file): the
/// host's git must not end up reading configuration or hooks the command planted. It may fail
/// ("not a git repository"), but it must not treat the workspace itself as a repository, nor see
/// an injected key.
fn assert_no_git_takeover(fx: &Fixture, o: &std::process::Output) {
    let git_dir = fx.git(&["rev-parse", "--absolute-git-dir"]);
    let dir = stdout(&git_dir).trim().to_string();
    // Empty (no repository), the workspace's own .git, or a repository above the workspace
    // (the host's, found by git's upward search) are all fine; the workspace or anything else
    // inside it would be the command's.
    assert!(
        dir.is_empty() || dir == s(&fx.ws.join(".git")) || !Path::new(&dir).starts_with(&fx.ws),
        "SANDBOX ESCAPE: the host's git now uses {dir:?} as the repository of the workspace\nrun: {}",
        show(o)
    );
    for key in ["palisade.injected", "core.hooksPath", "core.fsmonitor"] {
        let v = fx.git(&["config", "--get", key]);
        assert!(
            stdout(&v).trim().is_empty(),
            "SANDBOX ESCAPE: the host's git now sees {key} = {:?}\nrun: {}",
            stdout(&v).trim(),
            show(o)
        );
    }
}

#[test]
fn cannot_create_a_git_hook() {
    let fx = repo();
    let hooks = Snapshot::take(&fx.ws.join(".git/hooks"));
    let o = fx.sh(r#"printf '#!/bin/sh\necho pwned\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit;
           cp .git/hooks/pre-commit.sample .git/hooks/post-checkout; ln -s /bin/true .git/hooks/pre-push;
           mv .git/hooks/pre-commit.sample .git/hooks/pre-commit; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    hooks.assert_unchanged("creating a git hook", &o);
}

#[test]
fn cannot_overwrite_git_config() {
    let fx = repo();
    let before = fs::read(fx.ws.join(".git/config")).unwrap();
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let o = fx.sh(
        r#"printf '[core]\n\thooksPath = /tmp\n' > .git/config; printf '[palisade]\n\tinjected = yes\n' >> .git/config;
           true > .git/config; rm -f .git/config; mv .git/config .git/config.old; cp .git/config .git/config.new && mv -f .git/config.new .git/config;
           echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        fs::read(fx.ws.join(".git/config")).unwrap(),
        before,
        "SANDBOX ESCAPE: .git/config changed\nrun: {}",
        show(&o)
    );
    assert_host_git_intact(&fx, &head, &o);
}

#[test]
fn git_config_command_cannot_set_hooks_path() {
    let fx = repo();
    let before = fs::read(fx.ws.join(".git/config")).unwrap();
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let o = fx.sh(&format!(
        "{} git config core.hooksPath x; git config palisade.injected yes; git config core.fsmonitor 'echo pwned'; echo done",
        fx.git_env_script_prefix()
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        fs::read(fx.ws.join(".git/config")).unwrap(),
        before,
        "SANDBOX ESCAPE: .git/config changed\nrun: {}",
        show(&o)
    );
    assert!(!fx.ws.join(".git/config.lock").exists(), "git left .git/config.lock behind");
    assert_host_git_intact(&fx, &head, &o);
}

/// `mv .git .git-old; mkdir -p .git/hooks; ...`: the .git folder is pinned, so the swap fails.
#[test]
fn renaming_git_dir_away_does_not_unprotect() {
    let fx = repo();
    let hooks = Snapshot::take(&fx.ws.join(".git/hooks"));
    let config = fs::read(fx.ws.join(".git/config")).unwrap();
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let o = fx.sh(
        r#"mv .git .git-old; mkdir -p .git/hooks; printf '#!/bin/sh\necho pwned\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit;
           printf '[palisade]\n\tinjected = yes\n' > .git/config;
           mv .git/hooks .git/hooks-old; mkdir .git/hooks; mv .git/info .git/info-old; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(
        !fx.ws.join(".git-old").exists(),
        "SANDBOX ESCAPE: .git was renamed to .git-old on the host\nrun: {}",
        show(&o)
    );
    assert!(!fx.ws.join(".git/hooks-old").exists(), "SANDBOX ESCAPE: .git/hooks was renamed\nrun: {}", show(&o));
    assert!(!fx.ws.join(".git/info-old").exists(), "SANDBOX ESCAPE: .git/info was renamed\nrun: {}", show(&o));
    hooks.assert_unchanged("rename trick on .git", &o);
    assert_eq!(
        fs::read(fx.ws.join(".git/config")).unwrap(),
        config,
        "SANDBOX ESCAPE: .git/config changed\nrun: {}",
        show(&o)
    );
    assert_host_git_intact(&fx, &head, &o);
}

/// `rm -rf .git` must leave the repository intact: hooks and config unchanged, and still a
/// valid repository on the host (otherwise the host's git falls back to other repositories,
/// see `cannot_plant_an_implicit_bare_repository`).
#[test]
fn rm_rf_git_leaves_the_repository_intact() {
    let fx = repo();
    let hooks = Snapshot::take(&fx.ws.join(".git/hooks"));
    let config = fs::read(fx.ws.join(".git/config")).unwrap();
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let o = fx.sh("rm -rf .git; echo done");
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(fx.ws.join(".git").is_dir(), "SANDBOX ESCAPE: .git is gone on the host\nrun: {}", show(&o));
    hooks.assert_unchanged("rm -rf .git (hooks)", &o);
    assert_eq!(
        fs::read(fx.ws.join(".git/config")).unwrap(),
        config,
        "SANDBOX ESCAPE: .git/config changed\nrun: {}",
        show(&o)
    );
    let _ = head; // objects, refs and HEAD are workspace data the command may delete
    assert_no_git_takeover(&fx, &o);
}

/// `ln .git/config elsewhere` then write through the link: must not change .git/config.
#[test]
fn hardlinking_git_config_does_not_make_it_writable() {
    let fx = repo();
    let config = fs::read(fx.ws.join(".git/config")).unwrap();
    let hooks = Snapshot::take(&fx.ws.join(".git/hooks"));
    let o = fx.sh(
        r#"ln .git/config cfg-link; printf '[palisade]\n\tinjected = yes\n' >> cfg-link;
           ln .git/hooks/pre-commit.sample hook-link; echo 'echo pwned' >> hook-link;
           "$PAL_PY" -c 'import os; os.link(".git/config", "cfg-link2"); open("cfg-link2", "a").write("[palisade]\n\tinjected = yes\n")';
           echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        fs::read(fx.ws.join(".git/config")).unwrap(),
        config,
        "SANDBOX ESCAPE: .git/config changed through a hard link\nrun: {}",
        show(&o)
    );
    hooks.assert_unchanged("hard link to a hook", &o);
}

/// .git/info/attributes: protected when missing (placeholder, removed afterwards) and when it
/// exists.
#[test]
fn git_info_attributes_is_protected() {
    let fx = repo();
    let o = fx.sh(r#"echo '* filter=pwned' > .git/info/attributes; mkdir -p .git/info/attributes/x; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(
        !fx.ws.join(".git/info/attributes").exists(),
        "SANDBOX ESCAPE (or placeholder left behind): .git/info/attributes exists on the host after the run\nrun: {}",
        show(&o)
    );

    fs::write(fx.ws.join(".git/info/attributes"), "# mine\n").unwrap();
    let o = fx.sh(r#"echo '* filter=pwned' >> .git/info/attributes; rm -f .git/info/attributes; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        fs::read_to_string(fx.ws.join(".git/info/attributes")).unwrap(),
        "# mine\n",
        "SANDBOX ESCAPE: .git/info/attributes changed\nrun: {}",
        show(&o)
    );
}

/// Agent, editor and environment files that do not exist yet cannot be created, and nothing is
/// left behind on the host after the run (the placeholders are removed).
#[test]
fn agent_and_editor_files_cannot_be_created_and_no_placeholder_remains() {
    let fx = repo();
    let ws_before = names(&fx.ws);
    let git_before = names(&fx.ws.join(".git"));
    let info_before = names(&fx.ws.join(".git/info"));
    let o = fx.sh(
        r#"echo 'export PWNED=1' > .envrc; echo '{"mcpServers":{}}' > .mcp.json;
           mkdir -p .vscode; echo '{}' > .vscode/settings.json; mkdir -p .claude .codex .agents .palisade .idea;
           echo x > .claude/x; echo x > .codex/x; echo x > .agents/x; echo '[x]' > .palisade/config.toml; echo x > .idea/x;
           rmdir .envrc .vscode .claude; mv .codex .codex-old; echo x > .git/config.worktree; mkdir -p .git/modules/m && echo x > .git/modules/m/config;
           for p in .envrc .mcp.json .vscode/settings.json .claude/x .codex/x .agents/x .palisade/config.toml .idea/x; do
             [ -f "$p" ] && [ -s "$p" ] && echo "CREATED $p"; done; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(!stdout(&o).contains("CREATED"), "SANDBOX ESCAPE: protected files were created inside: {}", show(&o));
    assert_eq!(
        names(&fx.ws),
        ws_before,
        "the workspace's entries changed on the host (escape or placeholder left behind)\nrun: {}",
        show(&o)
    );
    assert_eq!(
        names(&fx.ws.join(".git")),
        git_before,
        ".git's entries changed on the host (escape or placeholder left behind)\nrun: {}",
        show(&o)
    );
    assert_eq!(
        names(&fx.ws.join(".git/info")),
        info_before,
        ".git/info's entries changed on the host\nrun: {}",
        show(&o)
    );
}

/// Same in a workspace that is not a git repository at all: no .git appears either.
#[test]
fn placeholders_are_removed_in_a_plain_workspace() {
    let fx = Fixture::new();
    fs::write(fx.ws.join("file.txt"), "x").unwrap();
    let o = fx.sh(r#"ls -a; echo x > .envrc; mkdir -p .git/hooks; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(names(&fx.ws), vec!["file.txt".to_string()], "entries left on the host\nrun: {}", show(&o));
}

/// When .git/hooks does not exist, it cannot be created (and nothing is left afterwards).
#[test]
fn missing_hooks_dir_cannot_be_created() {
    let fx = repo();
    fs::remove_dir_all(fx.ws.join(".git/hooks")).unwrap();
    let o = fx.sh(r#"mkdir -p .git/hooks; printf '#!/bin/sh\necho pwned\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(
        !fx.ws.join(".git/hooks").exists(),
        "SANDBOX ESCAPE (or placeholder left): .git/hooks exists on the host\nrun: {}",
        show(&o)
    );
}

/// A workspace whose `.git` is a FILE (`gitdir: <path inside the workspace>`): the file cannot
/// be rewritten, and the target's hooks and config stay protected.
#[test]
fn git_file_indirection_is_protected() {
    let fx = Fixture::new();
    // The real git dir lives inside the workspace, named by a .git file.
    fs::create_dir(fx.ws.join("gitstore")).unwrap();
    fx.git_ok(&["init", "-q", "-b", "main", "--separate-git-dir", s(&fx.ws.join("gitstore/repo.git")), "."]);
    fs::write(fx.ws.join("README"), "hello\n").unwrap();
    fx.git_ok(&["add", "README"]);
    fx.git_ok(&["commit", "-q", "-m", "initial"]);
    let dot_git = fs::read(fx.ws.join(".git")).unwrap();
    assert!(dot_git.starts_with(b"gitdir: "), "the fixture's .git is not a git file");
    let target = fx.ws.join("gitstore/repo.git");
    let config = fs::read(target.join("config")).unwrap();
    let hooks = Snapshot::take(&target.join("hooks"));
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let o = fx.sh(
        r#"mkdir -p evil/hooks; printf 'gitdir: evil\n' > .git; rm -f .git; mv .git .git.old;
           printf '#!/bin/sh\necho pwned\n' > gitstore/repo.git/hooks/pre-commit;
           printf '[palisade]\n\tinjected = yes\n' >> gitstore/repo.git/config;
           mv gitstore/repo.git gitstore/old.git; mv gitstore gitstore-old; mv gitstore/repo.git/hooks gitstore/repo.git/hooks.old; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        fs::read(fx.ws.join(".git")).unwrap(),
        dot_git,
        "SANDBOX ESCAPE: the .git file changed\nrun: {}",
        show(&o)
    );
    assert_eq!(
        fs::read(target.join("config")).unwrap(),
        config,
        "SANDBOX ESCAPE: the git dir's config changed\nrun: {}",
        show(&o)
    );
    hooks.assert_unchanged("hooks of a .git-file target", &o);
    let git_dir = fx.git(&["rev-parse", "--absolute-git-dir"]);
    assert_eq!(stdout(&git_dir).trim(), s(&target), "SANDBOX ESCAPE: the host's git dir changed\nrun: {}", show(&o));
    assert_eq!(fx.git_ok(&["rev-parse", "HEAD"]), head);
    assert!(
        fx.git(&["config", "--get", "palisade.injected"]).stdout.is_empty(),
        "SANDBOX ESCAPE: config injected\nrun: {}",
        show(&o)
    );
}

/// Creating `.git/commondir` makes the host's git take its config and hooks from another
/// folder (in the writable workspace): it must not be creatable.
#[test]
fn cannot_redirect_git_through_commondir() {
    let fx = repo();
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let o = fx.sh(r#"mkdir -p evil/hooks && cp -r .git/objects .git/refs .git/HEAD evil/ &&
           printf '[palisade]\n\tinjected = yes\n' > evil/config &&
           printf '#!/bin/sh\necho pwned\n' > evil/hooks/pre-commit && chmod +x evil/hooks/pre-commit;
           printf '../evil\n' > .git/commondir; echo done"#);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(
        !fx.ws.join(".git/commondir").exists(),
        "SANDBOX ESCAPE: .git/commondir was created; the host's git now reads config and hooks from <workspace>/evil\nrun: {}",
        show(&o)
    );
    assert_host_git_intact(&fx, &head, &o);
}

/// Breaking .git (deleting its unprotected objects/HEAD) and turning the workspace itself into
/// a bare repository makes the host's git read `<workspace>/config`: must not be possible.
#[test]
fn cannot_plant_an_implicit_bare_repository() {
    let fx = repo();
    let head = fx.git_ok(&["rev-parse", "HEAD"]);
    let o = fx.sh(&format!(
        r#"{} rm -rf .git/objects .git/HEAD .git/refs; git init -q --bare . ; printf '[palisade]\n\tinjected = yes\n' >> config; echo done"#,
        fx.git_env_script_prefix()
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    let _ = head;
    assert_no_git_takeover(&fx, &o);
}

/// Protected paths do not get in the way of ordinary git work: add, commit, branch, checkout;
/// the results are visible to the host's git afterwards.
#[test]
fn ordinary_git_works_inside() {
    let fx = repo();
    let branch = format!("feature-{}", fx.m);
    let o = fx.sh(&format!(
        r#"{} set -e; echo work > work.txt; git add work.txt; git commit -q -m "commit {m}"; git checkout -q -b {branch};
           echo more >> work.txt; git commit -q -am "second {m}"; git status --porcelain; git log --oneline | head -3"#,
        fx.git_env_script_prefix(),
        m = fx.m,
    ));
    ok(&o);
    assert!(!stderr(&o).to_lowercase().contains("warning"), "git warned inside the sandbox: {}", show(&o));
    let log = fx.git_ok(&["log", "--format=%s", &branch]);
    assert!(
        log.contains(&format!("second {}", fx.m)) && log.contains(&format!("commit {}", fx.m)),
        "host git log: {log}\nrun: {}",
        show(&o)
    );
    assert_eq!(fx.git_ok(&["rev-parse", "--abbrev-ref", "HEAD"]), branch);
    assert_eq!(fx.git_ok(&["status", "--porcelain"]), "", "the host sees a dirty tree (placeholders?)");
}

/// Submodule git dirs under .git/modules/<name>/ keep their config and hooks.
#[test]
fn submodule_git_dir_config_and_hooks_are_protected() {
    let fx = repo();
    let sub = fx.ws.join(".git/modules/lib");
    fs::create_dir_all(sub.join("hooks")).unwrap();
    fs::write(sub.join("config"), "[core]\n\tbare = false\n").unwrap();
    // The submodule's git directory itself may get a `commondir` placeholder while the sandbox
    // runs (its mtime changes); what must not change is its config and hooks, and it must stay
    // where it is.
    let config = Snapshot::take(&sub.join("config"));
    let hooks = Snapshot::take(&sub.join("hooks"));
    let o = fx.sh(
        r#"printf '[palisade]\n\tinjected = yes\n' >> .git/modules/lib/config; echo x > .git/modules/lib/hooks/pre-commit;
           printf '../evil\n' > .git/modules/lib/commondir;
           mv .git/modules/lib .git/modules/lib2; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    config.assert_unchanged(".git/modules/lib/config", &o);
    hooks.assert_unchanged(".git/modules/lib/hooks", &o);
    assert!(
        !fx.ws.join(".git/modules/lib2").exists(),
        "SANDBOX ESCAPE: the submodule's git dir was renamed\nrun: {}",
        show(&o)
    );
    assert!(!sub.join("commondir").exists(), "SANDBOX ESCAPE: a commondir redirect was planted\nrun: {}", show(&o));
}

/// With `--keep-processes`, a process left running after `palisade run` returns is still
/// sandboxed: it must not be able to create protected files once palisade has cleaned up the
/// placeholders (removing a placeholder from the host detaches its read-only mount in every
/// namespace, the leftover process's included). The test tells the leftover process when to try
/// (a `go` file, after palisade returned) and waits for its `bg-done` file, so nothing is timed.
#[test]
fn leftover_processes_cannot_create_protected_paths_after_cleanup() {
    let fx = repo();
    fs::remove_dir_all(fx.ws.join(".git/hooks")).unwrap();
    let tag = format!("leftover-{}", fx.m);
    let _guard = KillOnDrop(tag.clone());
    let script = format!(
        r#"( : {tag}; i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
             echo 'export PWNED=1' > .envrc; echo '{{}}' > .mcp.json; mkdir -p .vscode .claude .git/hooks;
             echo '{{}}' > .vscode/settings.json; echo x > .claude/settings.json;
             printf '#!/bin/sh\necho pwned\n' > .git/hooks/pre-commit; echo done > bg-done ) </dev/null >/dev/null 2>&1 &
           echo started"#
    );
    let o = fx.sh_flags(&["--keep-processes"], &script);
    ok(&o);
    fs::write(fx.ws.join("go"), "").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !fx.ws.join("bg-done").exists() {
        assert!(std::time::Instant::now() < deadline, "the leftover process never finished");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let created: Vec<&str> =
        [".envrc", ".mcp.json", ".vscode/settings.json", ".claude/settings.json", ".git/hooks/pre-commit"]
            .into_iter()
            // Written files: an empty placeholder (directory or file) left in place for the
            // leftover is fine.
            .filter(|p| fs::metadata(fx.ws.join(p)).is_ok_and(|m| m.is_file() && m.len() > 0))
            .collect();
    assert!(
        created.is_empty(),
        "SANDBOX ESCAPE: a --keep-processes leftover created {created:?} on the host after palisade removed the placeholders\nrun: {}",
        show(&o)
    );
}

/// husky and similar tools point `core.hooksPath` at a folder inside the working tree; git
/// runs what that folder holds, so it must be as protected as `.git/hooks`, whether it exists
/// yet or not.
#[test]
fn hooks_folder_named_by_core_hooks_path_is_protected() {
    for (hooks, exists, global) in [(".husky/_", true, false), (".githooks", false, false), (".hooks", false, true)] {
        let fx = repo();
        if global {
            // The user's ~/.gitconfig (the fixture's home, which host git uses too).
            fx.git_ok(&["config", "--global", "core.hooksPath", hooks]);
        } else {
            fx.git_ok(&["config", "core.hooksPath", hooks]);
        }
        if exists {
            fs::create_dir_all(fx.ws.join(hooks)).unwrap();
        }
        let pwned = fx.outside.join("pwned");
        let script = format!(
            "mv '{hooks}' moved-hooks; rm -rf '{hooks}'; mkdir -p '{hooks}'; \
             printf '#!/bin/sh\\necho hooked > {}\\n' > '{hooks}/pre-commit'; chmod +x '{hooks}/pre-commit'; echo done",
            s(&pwned)
        );
        let o = fx.sh(&script);
        assert!(stdout(&o).contains("done"), "{}", show(&o));
        assert!(
            !fx.ws.join(hooks).join("pre-commit").exists(),
            "SANDBOX ESCAPE: a hook was planted in {hooks} (core.hooksPath)\nrun: {}",
            show(&o)
        );
        fs::write(fx.ws.join("f"), "x").unwrap();
        fx.git_ok(&["add", "f"]);
        let _ = fx.git(&["commit", "-q", "-m", "c"]);
        assert!(
            !pwned.exists(),
            "SANDBOX ESCAPE: the host's git commit ran a hook the command planted in {hooks}\nrun: {}",
            show(&o)
        );
    }
}

/// A repository whose git directory is named by `GIT_DIR` (a bare "dotfiles"-style layout,
/// `meta.git` inside the work tree) rather than found as `.git`: with `GIT_DIR` set for
/// palisade (as it is for the user's later git commands), its hooks and config are protected.
#[test]
fn git_dir_named_by_the_environment_is_protected() {
    let fx = Fixture::new();
    let meta = fx.ws.join("meta.git");
    let git = |args: &[&str]| {
        let mut a = vec!["--git-dir", s(&meta), "--work-tree", s(&fx.ws)];
        a.extend_from_slice(args);
        fx.git(&a)
    };
    assert!(git(&["init", "-q"]).status.success());
    let config_before = fs::read(meta.join("config")).unwrap();
    let mut cmd = fx.run_cmd(
        &[],
        &["sh", "-c", "mkdir -p meta.git/hooks; printf '#!/bin/sh\\necho hooked\\n' > meta.git/hooks/pre-commit; chmod +x meta.git/hooks/pre-commit; \
           printf '[core]\\n\\tfsmonitor = echo pwned\\n' >> meta.git/config; echo done"],
    );
    cmd.env("GIT_DIR", &meta);
    let o = cmd.output().expect("running palisade");
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(
        !meta.join("hooks/pre-commit").exists(),
        "SANDBOX ESCAPE: a hook was planted in the GIT_DIR repository\n{}",
        show(&o)
    );
    assert_eq!(
        fs::read(meta.join("config")).unwrap(),
        config_before,
        "SANDBOX ESCAPE: the GIT_DIR repository's config changed\n{}",
        show(&o)
    );
}

/// A command makes a nested repository with `core.fsmonitor` in its config and registers it as
/// a gitlink in the (writable) index; the host's next plain `git status` in the workspace would
/// run `git status` in it, executing the fsmonitor command on the host. Protected paths cannot
/// cover git directories made later: the host-side check after the command quarantines it.
#[test]
fn nested_repository_config_does_not_run_on_host_git_status() {
    let fx = repo();
    let pwned = fx.outside.join("pwned");
    let script = format!(
        "{}mkdir sub && cd sub && git init -q . && git commit -q --allow-empty -m x && \
         git config core.fsmonitor 'echo ran > {}; false' && cd .. && \
         git update-index --add --cacheinfo 160000,$(git -C sub rev-parse HEAD),sub && echo done",
        fx.git_env_script_prefix(),
        s(&pwned)
    );
    let o = fx.sh(&script);
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    let _ = fx.git(&["status"]);
    assert!(
        !pwned.exists(),
        "SANDBOX ESCAPE: the host's git status ran a command the sandbox configured\n{}",
        show(&o)
    );
}

/// A repository config that includes a file of the work tree (`include.path = ../.gitconfig`,
/// a way projects share settings): the command must not add `core.fsmonitor` to it.
#[test]
fn git_config_included_from_the_work_tree_is_protected() {
    let fx = repo();
    fs::write(fx.ws.join(".gitconfig"), "[alias]\n\tst = status\n").unwrap();
    fx.git_ok(&["config", "include.path", "../.gitconfig"]);
    let o = fx.sh("printf '[core]\\n\\tfsmonitor = echo pwned\\n' >> .gitconfig; echo done");
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    let v = fx.git(&["config", "--get", "core.fsmonitor"]);
    assert!(
        stdout(&v).trim().is_empty(),
        "SANDBOX ESCAPE: the host's git now sees core.fsmonitor = {:?}\n{}",
        stdout(&v),
        show(&o)
    );
}

/// With the pre-commit framework's hook installed, `.pre-commit-config.yaml` says what the hook
/// runs: the command must not be able to change it. (The test's stand-in for the framework is a
/// hook with the framework's header that runs the config file's `entry:` line.)
#[test]
fn pre_commit_framework_config_is_protected_when_its_hook_is_installed() {
    let fx = repo();
    let hook = fx.ws.join(".git/hooks/pre-commit");
    fs::write(
        &hook,
        "#!/bin/sh\n# File generated by pre-commit: https://pre-commit.com\nsh -c \"$(sed -n 's/^ *entry: //p' .pre-commit-config.yaml)\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(fx.ws.join(".pre-commit-config.yaml"), "repos: []\n    entry: true\n").unwrap();
    let pwned = fx.outside.join("pwned");
    let o = fx.sh(&format!(
        "printf 'repos: []\\n    entry: echo ran > {}\\n' > .pre-commit-config.yaml; echo done",
        s(&pwned)
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    fs::write(fx.ws.join("f"), "x").unwrap();
    fx.git_ok(&["add", "f"]);
    let c = fx.git(&["commit", "-q", "-m", "c"]);
    // The commit went through the hook (its `entry: true` succeeded): the hook did run.
    assert!(c.status.success(), "the host's commit failed: {}", show(&c));
    assert!(
        !pwned.exists(),
        "SANDBOX ESCAPE: the host's git commit ran what the command wrote in .pre-commit-config.yaml\n{}",
        show(&o)
    );
    // Control: the same change made on the host does make the stand-in hook run it.
    fs::write(fx.ws.join(".pre-commit-config.yaml"), format!("repos: []\n    entry: echo ran > {}\n", s(&pwned)))
        .unwrap();
    fs::write(fx.ws.join("f"), "y").unwrap();
    fx.git_ok(&["add", "f"]);
    let c = fx.git(&["commit", "-q", "-m", "c2"]);
    assert!(pwned.exists(), "control: the stand-in pre-commit hook did not run its entry: {}", show(&c));
}

/// With a writable configuration folder (`--writable ~/.config`, the fixture's XDG_CONFIG_HOME),
/// the command must not write palisade's own user configuration: it would choose the next
/// run's policy (`mode = "full-access"`).
#[test]
fn palisade_user_config_is_protected_in_a_writable_config_folder() {
    let fx = Fixture::new();
    let o = fx.sh_flags(
        &["--writable", s(&fx.xdg)],
        "mkdir -p \"$XDG_CONFIG_HOME/palisade\"; printf 'mode = \"full-access\"\\nnetwork = \"on\"\\n' > \"$XDG_CONFIG_HOME/palisade/config.toml\"; \
         touch \"$XDG_CONFIG_HOME/other-ok\" && echo done",
    );
    assert!(stdout(&o).contains("done"), "the writable config folder is not writable at all: {}", show(&o));
    assert!(
        !fx.xdg.join("palisade/config.toml").exists(),
        "SANDBOX ESCAPE: the command wrote palisade's user configuration\n{}",
        show(&o)
    );
    let p = fx.palisade().arg("policy").output().unwrap();
    assert!(!stdout(&p).contains("full-access"), "SANDBOX ESCAPE: the next run's policy changed: {}", show(&p));
}

/// Other agents' project folders start programs from their settings (MCP servers in
/// `.cursor/mcp.json` and `.gemini/settings.json`): the command must not create them.
#[test]
fn other_agents_config_folders_cannot_be_created() {
    let fx = repo();
    let before = names(&fx.ws);
    let o = fx.sh(
        r#"for d in .cursor .gemini .windsurf .continue .zed; do mkdir -p $d; echo '{"mcpServers":{"x":{"command":"sh"}}}' > $d/mcp.json; done;
           echo '{}' > opencode.json; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        names(&fx.ws),
        before,
        "SANDBOX ESCAPE: an agent's config folder was created (or a placeholder left behind)\n{}",
        show(&o)
    );
}

/// A workspace with a real submodule checked out at `path` (its git directory absorbed into
/// `.git/modules/<path>`, as `git submodule add` makes it), from a local "remote" outside the
/// workspace. Returns the module git directory.
fn repo_with_submodule(fx: &Fixture, path: &str) -> std::path::PathBuf {
    fx.git_init();
    let remote = fx.outside.join(format!("remote-{}", path.replace('/', "-")));
    fs::create_dir_all(&remote).unwrap();
    assert!(fx.git_in(&remote, &["init", "-q", "-b", "main", "."]).status.success());
    fs::write(remote.join("lib.c"), "int x;\n").unwrap();
    assert!(fx.git_in(&remote, &["add", "lib.c"]).status.success());
    assert!(fx.git_in(&remote, &["commit", "-q", "-m", "lib"]).status.success());
    fx.git_ok(&["-c", "protocol.file.allow=always", "submodule", "add", "-q", s(&remote), path]);
    fx.git_ok(&["commit", "-q", "-m", "add submodule"]);
    let module = fx.ws.join(".git/modules").join(path);
    assert!(module.join("config").is_file(), "the fixture's submodule git dir is not at {}", module.display());
    assert!(
        fs::read_to_string(fx.ws.join(path).join(".git")).unwrap().starts_with("gitdir: "),
        "the fixture's submodule has no .git file"
    );
    module
}

/// The host's own git, run as the user would after the command: `git status` in the workspace
/// (which looks into every submodule) and in the submodule.
fn host_git_status_everywhere(fx: &Fixture, submodule: &str) {
    let _ = fx.git(&["status"]);
    let _ = fx.git(&["-c", "protocol.file.allow=always", "submodule", "status", "--recursive"]);
    let _ = fx.git_in(&fx.ws.join(submodule), &["status"]);
}

/// Red-team report: a submodule at `libs/foo` keeps its git directory at
/// `.git/modules/libs/foo`, which `.git/modules/*/config` did not match: the command set
/// `core.fsmonitor` there and the host's next `git status` ran it. Its config, hooks and `.git`
/// file must stay as they are, and the host's git must run nothing.
#[test]
fn nested_submodule_config_and_hooks_are_protected() {
    let fx = Fixture::new();
    let module = repo_with_submodule(&fx, "libs/foo");
    let config = Snapshot::take(&module.join("config"));
    let hooks = Snapshot::take(&module.join("hooks"));
    let dot_git = fs::read(fx.ws.join("libs/foo/.git")).unwrap();
    let pwned = fx.outside.join("pwned");
    let run = format!("echo ran > {}; false", s(&pwned));
    let o = fx.sh(&format!(
        r#"{prefix} git -C libs/foo config core.fsmonitor '{run}'; git -C libs/foo config core.hooksPath /tmp;
           printf '#!/bin/sh\n{run}\n' > .git/modules/libs/foo/hooks/post-checkout; chmod +x .git/modules/libs/foo/hooks/post-checkout;
           echo done"#,
        prefix = fx.git_env_script_prefix()
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    host_git_status_everywhere(&fx, "libs/foo");
    assert!(
        !pwned.exists(),
        "SANDBOX ESCAPE: the host's git status ran a command the sandbox configured in the submodule\n{}",
        show(&o)
    );
    let v = fx.git_in(&fx.ws.join("libs/foo"), &["config", "--get", "core.fsmonitor"]);
    assert!(
        stdout(&v).trim().is_empty(),
        "SANDBOX ESCAPE: the submodule's git now sees core.fsmonitor = {:?}\n{}",
        stdout(&v),
        show(&o)
    );
    config.assert_unchanged("the nested submodule's config (.git/modules/libs/foo/config)", &o);
    hooks.assert_unchanged("the nested submodule's hooks", &o);

    // Moving things out of the way, or repointing the work tree's .git file.
    let o = fx.sh(&format!(
        r#"mv .git/modules/libs/foo/hooks .git/modules/libs/foo/hooks-old; mv .git/modules/libs/foo .git/modules/libs/foo-old; mv .git/modules/libs .git/modules/libs-old;
           cp -r .git/modules/libs/foo evil && printf '[core]\n\tfsmonitor = {run}\n' >> evil/config;
           printf 'gitdir: ../../evil\n' > libs/foo/.git; rm -f libs/foo/.git; mv libs/foo/.git libs/foo/git-old; mv libs/foo libs/foo-old; mv libs libs-old;
           echo done"#
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        fs::read(fx.ws.join("libs/foo/.git")).unwrap_or_default(),
        dot_git,
        "SANDBOX ESCAPE: the submodule's .git file changed\n{}",
        show(&o)
    );
    for moved in [
        ".git/modules/libs/foo/hooks-old",
        ".git/modules/libs/foo-old",
        ".git/modules/libs-old",
        "libs/foo/git-old",
        "libs/foo-old",
        "libs-old",
    ] {
        assert!(
            !fx.ws.join(moved).exists(),
            "SANDBOX ESCAPE: {moved} exists: something on the submodule's way was renamed\n{}",
            show(&o)
        );
    }
    config.assert_unchanged("the nested submodule's config after the renames", &o);
    hooks.assert_unchanged("the nested submodule's hooks after the renames", &o);
    host_git_status_everywhere(&fx, "libs/foo");
    assert!(
        !pwned.exists(),
        "SANDBOX ESCAPE: the host's git status ran a command the sandbox configured in the submodule\n{}",
        show(&o)
    );
}

/// A submodule of a submodule (`.git/modules/top/modules/inner`) is protected the same way.
#[test]
fn submodule_of_a_submodule_is_protected() {
    let fx = Fixture::new();
    // `inner` is a submodule of the remote that becomes `top`.
    let inner = fx.outside.join("remote-inner");
    fs::create_dir_all(&inner).unwrap();
    assert!(fx.git_in(&inner, &["init", "-q", "-b", "main", "."]).status.success());
    assert!(fx.git_in(&inner, &["commit", "-q", "--allow-empty", "-m", "inner"]).status.success());
    let top = fx.outside.join("remote-top");
    fs::create_dir_all(&top).unwrap();
    assert!(fx.git_in(&top, &["init", "-q", "-b", "main", "."]).status.success());
    assert!(fx
        .git_in(&top, &["-c", "protocol.file.allow=always", "submodule", "add", "-q", s(&inner), "inner"])
        .status
        .success());
    assert!(fx.git_in(&top, &["commit", "-q", "-m", "top"]).status.success());
    fx.git_init();
    fx.git_ok(&["-c", "protocol.file.allow=always", "submodule", "add", "-q", s(&top), "top"]);
    fx.git_ok(&["-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init", "--recursive"]);
    fx.git_ok(&["commit", "-q", "-m", "add top"]);
    let module = fx.ws.join(".git/modules/top/modules/inner");
    assert!(module.join("config").is_file(), "the fixture has no nested module git dir at {}", module.display());
    let config = Snapshot::take(&module.join("config"));
    let pwned = fx.outside.join("pwned");
    let o = fx.sh(&format!(
        "{} git -C top/inner config core.fsmonitor 'echo ran > {}; false'; printf 'x' > .git/modules/top/modules/inner/hooks/post-checkout; echo done",
        fx.git_env_script_prefix(),
        s(&pwned)
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    host_git_status_everywhere(&fx, "top/inner");
    assert!(
        !pwned.exists(),
        "SANDBOX ESCAPE: the host's git status ran a command the sandbox configured\n{}",
        show(&o)
    );
    config.assert_unchanged("the nested-nested submodule's config", &o);
    assert!(
        !module.join("hooks/post-checkout").exists(),
        "SANDBOX ESCAPE: a hook was planted in the inner submodule\n{}",
        show(&o)
    );
}

/// Red-team report: `top/.git` (a `gitdir:` file) was writable: the command copied
/// `.git/modules/top` to `.git/evil`, added `core.fsmonitor`, and pointed `top/.git` at it;
/// the host's `git status` ran it and still said "working tree clean".
#[test]
fn submodule_git_file_cannot_be_repointed() {
    let fx = Fixture::new();
    repo_with_submodule(&fx, "top");
    let dot_git = fs::read(fx.ws.join("top/.git")).unwrap();
    let pwned = fx.outside.join("pwned");
    let o = fx.sh(&format!(
        r#"cp -r .git/modules/top .git/evil && printf '[core]\n\tfsmonitor = echo ran > {}; false\n' >> .git/evil/config;
           printf 'gitdir: ../.git/evil\n' > top/.git; printf 'gitdir: ../.git/evil\n' > top/.git.new && mv -f top/.git.new top/.git; echo done"#,
        s(&pwned)
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    host_git_status_everywhere(&fx, "top");
    assert!(
        !pwned.exists(),
        "SANDBOX ESCAPE: the host's git status ran the fsmonitor of a git dir the command made\n{}",
        show(&o)
    );
    assert_eq!(
        fs::read(fx.ws.join("top/.git")).unwrap_or_default(),
        dot_git,
        "SANDBOX ESCAPE: the submodule's .git file was repointed\n{}",
        show(&o)
    );
}

/// Red-team report: with `include.path = ../.gitconfig.local` naming a file that does not exist
/// yet, the command created it with `core.fsmonitor` and the host's `git status` ran it. The
/// same for `includeIf`. Git still works inside (the placeholder is an empty file).
#[test]
fn missing_git_include_target_cannot_be_created() {
    let fx = repo();
    fx.git_ok(&["config", "include.path", "../.gitconfig.local"]);
    fx.git_ok(&["config", &format!("includeIf.gitdir:{}/.path", s(&fx.ws)), "../conf/git.inc"]);
    let pwned = fx.outside.join("pwned");
    let o = fx.sh(&format!(
        r#"{} printf '[core]\n\tfsmonitor = echo ran > {p}; false\n' > .gitconfig.local; mkdir -p conf; printf '[core]\n\tfsmonitor = echo ran > {p}; false\n' > conf/git.inc;
           git status --porcelain >/dev/null && echo git-works; echo done"#,
        fx.git_env_script_prefix(),
        p = s(&pwned)
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert!(
        stdout(&o).contains("git-works"),
        "git fails inside the sandbox with a placeholder include target\n{}",
        show(&o)
    );
    let _ = fx.git(&["status"]);
    assert!(
        !pwned.exists(),
        "SANDBOX ESCAPE: the host's git status ran a command from a config include the command created\n{}",
        show(&o)
    );
    for p in [".gitconfig.local", "conf"] {
        assert!(
            !fx.ws.join(p).exists(),
            "SANDBOX ESCAPE (or placeholder left behind): {p} exists on the host\n{}",
            show(&o)
        );
    }
}

/// The project files agents, editors and dev containers act on by themselves (see the README's
/// protected-paths table): missing ones cannot be created, existing ones cannot be changed.
#[test]
fn agent_editor_and_devcontainer_files_are_protected() {
    let fx = repo();
    let before = names(&fx.ws);
    let files = [
        "opencode.jsonc",
        ".devcontainer.json",
        ".aider.conf.yml",
        "mise.toml",
        ".mise.toml",
        "mise.local.toml",
        ".mise.local.toml",
    ];
    let dirs = [".opencode", ".devcontainer", ".kiro", ".amazonq", ".roo", ".clinerules", ".junie"];
    let mut script = String::new();
    for f in files {
        script.push_str(&format!("echo '{{\"initializeCommand\":\"touch pwned\"}}' > {f}; "));
    }
    for d in dirs {
        script.push_str(&format!("mkdir -p {d}/sub; echo x > {d}/settings.json; "));
    }
    let o = fx.sh(&format!("{script} echo done"));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    assert_eq!(
        names(&fx.ws),
        before,
        "SANDBOX ESCAPE: an agent, editor or dev container file was created (or a placeholder left behind)\n{}",
        show(&o)
    );

    // Existing ones.
    fs::create_dir_all(fx.ws.join(".devcontainer")).unwrap();
    fs::write(fx.ws.join(".devcontainer/devcontainer.json"), "{}\n").unwrap();
    fs::create_dir_all(fx.ws.join(".opencode/plugin")).unwrap();
    fs::write(fx.ws.join("opencode.jsonc"), "{}\n").unwrap();
    fs::write(fx.ws.join(".aider.conf.yml"), "auto-lint: false\n").unwrap();
    let snaps: Vec<(&str, Snapshot)> = [".devcontainer", ".opencode", "opencode.jsonc", ".aider.conf.yml"]
        .into_iter()
        .map(|p| (p, Snapshot::take(&fx.ws.join(p))))
        .collect();
    let o = fx.sh(
        r#"echo '{"initializeCommand":"touch pwned"}' > .devcontainer/devcontainer.json; echo 'export default async () => {}' > .opencode/plugin/x.js;
           echo '{"mcp":{}}' > opencode.jsonc; echo 'lint-cmd: touch pwned' >> .aider.conf.yml; mv .devcontainer dc-old; rm -rf .opencode; echo done"#,
    );
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    for (p, snap) in &snaps {
        snap.assert_unchanged(p, &o);
    }
}

/// The submodule protection does not get in the way of ordinary work with submodules inside:
/// committing in the submodule, recording it in the superproject, `git status` everywhere.
#[test]
fn ordinary_submodule_work_inside() {
    let fx = Fixture::new();
    repo_with_submodule(&fx, "libs/foo");
    let o = fx.sh(&format!(
        r#"{} set -e; echo more >> libs/foo/lib.c; git -C libs/foo commit -q -am "sub work {m}"; git add libs/foo; git commit -q -m "bump {m}";
           git status --porcelain; git submodule status; git -C libs/foo log --oneline | head -1"#,
        fx.git_env_script_prefix(),
        m = fx.m
    ));
    ok(&o);
    assert!(stdout(&o).contains(&format!("sub work {}", fx.m)), "{}", show(&o));
    assert!(
        fx.git_ok(&["log", "-1", "--format=%s"]).contains(&format!("bump {}", fx.m)),
        "the host does not see the commit\n{}",
        show(&o)
    );
    assert_eq!(fx.git_ok(&["status", "--porcelain"]), "", "the host sees a dirty tree after the run\n{}", show(&o));
}

/// A submodule whose config sets a relative `core.hooksPath` (husky in the submodule): the
/// folder, in the submodule's work tree, is protected like `.git/hooks`, existing or not.
#[test]
fn submodule_hooks_path_folder_is_protected() {
    let fx = Fixture::new();
    repo_with_submodule(&fx, "libs/foo");
    let sub = fx.ws.join("libs/foo");
    assert!(fx.git_in(&sub, &["config", "core.hooksPath", ".githooks"]).status.success());
    let pwned = fx.outside.join("pwned");
    let o = fx.sh(&format!(
        "mkdir -p libs/foo/.githooks; printf '#!/bin/sh\\necho ran > {}\\n' > libs/foo/.githooks/pre-commit; chmod +x libs/foo/.githooks/pre-commit; echo done",
        s(&pwned)
    ));
    assert!(stdout(&o).contains("done"), "{}", show(&o));
    fs::write(sub.join("f"), "x").unwrap();
    let add = fx.git_in(&sub, &["add", "f"]);
    assert!(add.status.success(), "{}\nrun: {}", show(&add), show(&o));
    let _ = fx.git_in(&sub, &["commit", "-q", "-m", "c"]);
    assert!(
        !pwned.exists(),
        "SANDBOX ESCAPE: the host's git commit in the submodule ran a hook the command planted\n{}",
        show(&o)
    );
}
