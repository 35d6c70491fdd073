//! Submodules: module git directories at any depth, their work trees' `.git` files, includes.

use super::*;

/// A module git directory as `git submodule add` makes it.
fn module(fs: Fixture, dir: &str, worktree: Option<&str>) -> Fixture {
    let config = match worktree {
        Some(w) => format!("[core]\n\tbare = false\n\tworktree = {w}\n"),
        None => "[core]\n\tbare = false\n".into(),
    };
    fs.file(&format!("{dir}/HEAD"), "ref: refs/heads/main\n")
        .file(&format!("{dir}/config"), &config)
        .dir(&format!("{dir}/hooks"))
        .dir(&format!("{dir}/objects/pack"))
        .dir(&format!("{dir}/refs/heads"))
        .dir(&format!("{dir}/info"))
}

/// The module git patterns a module git directory at `dir` gets (with the defaults).
fn module_protection(dir: &str) -> Vec<Action> {
    vec![
        ro(&format!("{dir}/config")),
        ro(&format!("{dir}/hooks")),
        ph_file(&format!("{dir}/commondir")),
        ph_file(&format!("{dir}/config.worktree")),
        ph_file(&format!("{dir}/info/attributes")),
        ph_dir(&format!("{dir}/worktrees")),
    ]
}

/// Red-team report: a submodule at `libs/foo` keeps its git directory at
/// `.git/modules/libs/foo`, which `.git/modules/*/config` does not match; its submodules' are
/// in `modules/` inside it.
#[test]
fn module_git_dirs_are_found_at_any_depth() {
    let fs = module(Fixture::new().file("/w/.git/HEAD", "ref: refs/heads/main\n"), "/w/.git/modules/libs/foo", None);
    let fs = module(fs, "/w/.git/modules/libs/foo/modules/vendor/bar", None);
    let got = resolve_w(&fs, &defaults());
    for want in module_protection("/w/.git/modules/libs/foo")
        .into_iter()
        .chain(module_protection("/w/.git/modules/libs/foo/modules/vendor/bar"))
    {
        assert!(got.contains(&want), "missing {want:?} in {got:#?}");
    }
    for dir in [
        "/w/.git/modules",
        "/w/.git/modules/libs",
        "/w/.git/modules/libs/foo",
        "/w/.git/modules/libs/foo/modules",
        "/w/.git/modules/libs/foo/modules/vendor",
        "/w/.git/modules/libs/foo/modules/vendor/bar",
    ] {
        assert!(got.contains(&pin(dir)), "{dir} is not pinned: {got:#?}");
    }
    // `libs` is not a git directory: no placeholders in it; the git-made folders of a
    // module (`objects`, `refs`) are not searched.
    assert!(
        !got.iter().any(|a| a.path().starts_with("/w/.git/modules/libs/config")
            || a.path().starts_with("/w/.git/modules/libs/hooks")),
        "{got:#?}"
    );
    // (Only the fixed way to `objects/info/alternates`, a protected path, is there.)
    let alternates =
        ["objects", "objects/info", "objects/info/alternates"].map(|p| Path::new("/w/.git/modules/libs/foo").join(p));
    assert!(
        !got.iter()
            .any(|a| a.path().starts_with("/w/.git/modules/libs/foo/objects")
                && !alternates.iter().any(|p| p == a.path())),
        "{got:#?}"
    );
    assert!(got.contains(&ph_dir("/w/.git/modules/libs/foo/modules/vendor/bar/modules")));
    // Other folders in a module git directory (a rebase in progress) are not pinned.
    // Nor are the folders git or tools make there searched: `logs` (with its `HEAD`),
    // git-annex's thousands of folders.
    let mut fs = fs
        .dir("/w/.git/modules/libs/foo/rebase-merge/x")
        .dir("/w/.git/modules/empty")
        .file("/w/.git/modules/libs/foo/logs/HEAD", "");
    for i in 0..=MAX_MODULE_DIRS {
        fs = fs.dir(&format!("/w/.git/modules/libs/foo/annex/objects/{i}"));
    }
    let got = resolve_w(&fs, &defaults());
    for skipped in ["rebase-merge", "logs", "annex"] {
        assert!(
            !got.iter().any(|a| a.path().starts_with(Path::new("/w/.git/modules/libs/foo").join(skipped))),
            "{skipped}: {got:#?}"
        );
    }
    assert!(!got.iter().any(|a| a.path().starts_with("/w/.git/modules/empty")), "{got:#?}");
}

/// A command may delete a module's `HEAD` (it is not protected) or plant one in a folder on
/// the way: neither hides a module git directory from the next run's search.
#[test]
fn module_search_is_not_fooled_by_planted_or_removed_markers() {
    let fs = module(Fixture::new().dir("/w/.git"), "/w/.git/modules/libs/foo", None)
        .file("/w/.git/modules/libs/HEAD", "ref: refs/heads/main\n");
    let got = resolve_w(&fs, &defaults());
    assert!(got.contains(&ro("/w/.git/modules/libs/foo/config")), "{got:#?}");
    let fs = Fixture::new()
        .dir("/w/.git")
        .file("/w/.git/modules/libs/foo/config", "[core]\n")
        .dir("/w/.git/modules/libs/foo/objects");
    let got = resolve_w(&fs, &defaults());
    assert!(got.contains(&ro("/w/.git/modules/libs/foo/config")), "{got:#?}");
    assert!(got.contains(&ph_dir("/w/.git/modules/libs/foo/hooks")), "{got:#?}");
    // A module named like a folder git makes (`libs/objects`) is still found.
    let fs = module(
        module(Fixture::new().dir("/w/.git"), "/w/.git/modules/libs", None),
        "/w/.git/modules/libs/objects",
        None,
    );
    let got = resolve_w(&fs, &defaults());
    assert!(got.contains(&ro("/w/.git/modules/libs/objects/config")), "{got:#?}");
}

#[test]
fn module_search_refuses_past_its_bounds() {
    let mut deep = String::from("/w/.git/modules");
    for i in 0..=MAX_MODULE_DEPTH {
        deep.push_str(&format!("/d{i}"));
    }
    let fs = module(Fixture::new().dir("/w/.git"), &deep, None);
    let err = resolve(Path::new("/w"), &defaults(), &fs).unwrap_err();
    assert!(matches!(err, ProtectError::TooMany { .. }), "{err:?}");
    assert!(err.to_string().contains("levels deep") && !err.to_string().contains('\n'), "{err}");
    // One level less is fine.
    let shallower = deep.rsplit_once('/').unwrap().0;
    assert!(resolve(Path::new("/w"), &defaults(), &module(Fixture::new().dir("/w/.git"), shallower, None)).is_ok());

    let mut fs = Fixture::new().dir("/w/.git");
    for i in 0..=MAX_MODULE_DIRS {
        fs = fs.dir(&format!("/w/.git/modules/m{i}"));
    }
    let err = resolve(Path::new("/w"), &defaults(), &fs).unwrap_err();
    assert!(matches!(err, ProtectError::TooMany { .. }), "{err:?}");

    let mut text = String::new();
    for i in 0..=MAX_MODULE_DIRS {
        text.push_str(&format!("[submodule \"m{i}\"]\n\tpath = m{i}\n"));
    }
    let fs = Fixture::new().dir("/w/.git").file("/w/.gitmodules", &text);
    assert!(matches!(resolve(Path::new("/w"), &defaults(), &fs), Err(ProtectError::TooMany { .. })));
}

/// Red-team report: `top/.git` (a `gitdir:` file) was writable, so a command pointed it at a
/// copy of the module git directory with `core.fsmonitor` added. The `.git` files of the
/// submodules' work trees (from each module's `core.worktree`, and from `.gitmodules`) are
/// read-only, the folders on the way pinned, and what they name protected.
#[test]
fn submodule_git_files_are_read_only() {
    let fs = module(Fixture::new().dir("/w/.git"), "/w/.git/modules/libs/foo", Some("../../../../libs/foo"))
        .file("/w/libs/foo/.git", "gitdir: ../../.git/modules/libs/foo\n")
        .file("/w/libs/foo/src.c", "");
    let got = resolve_w(&fs, &defaults());
    for want in [pin("/w/libs"), pin("/w/libs/foo"), ro("/w/libs/foo/.git")] {
        assert!(got.contains(&want), "missing {want:?} in {got:#?}");
    }
    // Listed in .gitmodules: `top`, its git dir elsewhere (pointed at from its .git file);
    // `vendor/x`, not absorbed (a real .git directory in its work tree); `gone`, missing.
    let fs = module(Fixture::new().dir("/w/.git"), "/w/store/top.git", None)
        .file("/w/.gitmodules", "[submodule \"top\"]\n\tpath = top\n\turl = ../top\n[submodule \"x\"]\n\tpath = \"vendor/x\"\n[submodule \"g\"]\n\tpath = gone\n[submodule \"evil\"]\n\tpath = ../../etc\n")
        .file("/w/top/.git", "gitdir: ../store/top.git\n");
    let fs = module(fs, "/w/vendor/x/.git", None);
    let got = resolve_w(&fs, &defaults());
    for want in
        [ro("/w/top/.git"), pin("/w/store/top.git"), pin("/w/vendor"), pin("/w/vendor/x"), pin("/w/vendor/x/.git")]
            .into_iter()
            .chain(module_protection("/w/store/top.git"))
            .chain(module_protection("/w/vendor/x/.git"))
    {
        assert!(got.contains(&want), "missing {want:?} in {got:#?}");
    }
    assert!(!got.iter().any(|a| a.path().starts_with("/w/gone") || a.path().starts_with("/etc")), "{got:#?}");
    // A submodule's .git file naming a git directory that is missing: it stays missing.
    let fs = Fixture::new()
        .dir("/w/.git")
        .file("/w/.gitmodules", "[submodule \"s\"]\n\tpath = s\n")
        .file("/w/s/.git", "gitdir: ../.git/modules/s\n");
    let got = resolve_w(&fs, &defaults());
    assert!(got.contains(&ro("/w/s/.git")) && got.contains(&ph_dir("/w/.git/modules")), "{got:#?}");
}

/// A submodule's relative `core.hooksPath` (husky in the submodule) names a folder of the
/// submodule's work tree; the user's global one applies there too.
#[test]
#[cfg_attr(windows, ignore = "the fixture's Unix-style worktree path does not resolve on Windows (joined with `\\`)")]
fn submodule_hooks_path_is_relative_to_its_work_tree() {
    let fs = module(Fixture::new().dir("/w/.git"), "/w/.git/modules/s", Some("../../../s"))
        .file("/w/.git/modules/s/config", "[core]\n\tworktree = ../../../s\n\thooksPath = .husky/_\n")
        .file("/w/s/.git", "gitdir: ../.git/modules/s\n")
        .dir("/w/s/.husky/_");
    let got =
        resolve_with_git_configs(Path::new("/w"), &defaults(), &fs, &["[core]\n\thooksPath = .githooks\n".into()], &[])
            .unwrap();
    // Joined paths use the platform's separator (`\` on Windows): compare with `/`.
    let got: Vec<Action> = got.into_iter().map(slashed).collect();
    for want in [ro("/w/s/.husky/_"), ph_dir("/w/s/.githooks"), ph_dir("/w/.githooks")] {
        assert!(got.contains(&want), "missing {want:?} in {got:#?}");
    }
}

/// Red-team report: `include.path = ../.gitconfig.local` naming a file that does not exist
/// yet: the command created it with `core.fsmonitor`. A missing include target gets a file
/// placeholder (the first missing folder on the way gets a folder one).
#[test]
#[cfg_attr(windows, ignore = "the Windows backend would make the placeholder a folder, which git refuses")]
fn missing_include_targets_get_file_placeholders() {
    let fs = Fixture::new()
        .file("/w/.git/config", "[include]\n\tpath = ../.gitconfig.local\n[includeIf \"gitdir:/w/\"]\n\tpath = ../conf/git.inc\n[include]\n\tpath = ~/x\n\tpath = /elsewhere/x\n")
        .file("/w/.gitconfig.present", "");
    let got = resolve_w(&fs, &pats(&[".git/config"]));
    assert_eq!(got, vec![pin("/w/.git"), ph_file("/w/.gitconfig.local"), ph_dir("/w/conf"), ro("/w/.git/config")]);
    let fs = fs.dir("/w/conf");
    assert!(resolve_w(&fs, &pats(&[".git/config"])).contains(&ph_file("/w/conf/git.inc")));
    // In a submodule's config too.
    let fs = module(Fixture::new().dir("/w/.git"), "/w/.git/modules/s", None)
        .file("/w/.git/modules/s/config", "[include]\n\tpath = ../../../s.inc\n");
    assert!(resolve_w(&fs, &defaults()).contains(&ph_file("/w/s.inc")));
}
