//! [`resolve`]: every pattern walked from a writable root, git directories protected, and the
//! hooks folders, hook managers' files and included configs the repository's git config names.

use std::path::{Path, PathBuf};

use super::git_dirs::{pointer, GitDirs, GitPattern};
use super::git_text::{git_config_value, git_include_paths};
use super::pattern::split_pattern;
use super::plan::{Decision, Plan, Walk};
use super::{final_component_is_file, normalize_lexically, Action, FsView, Kind, ProtectError};

/// The actions that keep `patterns` protected under the writable root `root` (absolute, ideally
/// canonical), sorted so that a parent's action comes before its children's (by depth, then
/// path), without duplicates. See the module documentation for the rules.
pub fn resolve(root: &Path, patterns: &[String], fs: &dyn FsView) -> Result<Vec<Action>, ProtectError> {
    resolve_with_git_configs(root, patterns, fs, &[], &[])
}

/// [`resolve`], with the text of git configuration files that apply besides the repository's
/// own (the user's `~/.gitconfig`, the system's): a relative `core.hooksPath` there names a
/// folder in every work tree, and is protected like one the repository's config names. Git
/// directories named another way (the `GIT_DIR` the user's git runs with) that lie inside
/// `root` get the git patterns too, like one a `.git` file names.
pub fn resolve_with_git_configs(
    root: &Path,
    patterns: &[String],
    fs: &dyn FsView,
    global_configs: &[String],
    extra_git_dirs: &[PathBuf],
) -> Result<Vec<Action>, ProtectError> {
    let mut plan = Plan::default();
    let dot_git = root.join(".git");
    let dot_git_kind = fs.kind(&dot_git);
    let git_file_target = match dot_git_kind {
        Kind::File => pointer(fs, &dot_git, "gitdir:", root),
        _ => None,
    };

    let mut git = Vec::new();
    for pattern in patterns {
        let (comps, _) =
            split_pattern(pattern).map_err(|reason| ProtectError::Pattern { pattern: pattern.clone(), reason })?;
        // A missing file of the work tree gets a directory placeholder all the same: git does
        // not see empty directories, while an empty file would show up in `git status` and be
        // committed by the next `git add -A` (a tool that reads every `*.json` it finds meeting
        // a directory named `opencode.json` is the lesser harm). Inside a git directory, which
        // git never lists, the placeholder has the kind its name implies.
        let in_git_dir = comps.len() > 1 && comps[0] == ".git";
        let walk = Walk { pattern, file_like: in_git_dir && final_component_is_file(pattern) };
        if in_git_dir {
            git.push(GitPattern { walk, rest: comps[1..].to_vec() });
        } else {
            walk.walk(root, &comps, fs, &mut plan)?;
        }
    }

    if git.is_empty() {
        return Ok(plan.into_actions());
    }
    let mut dirs = GitDirs { git: &git, fs, root, seen: Vec::new(), top_level: Vec::new(), visited: 0 };
    match (dot_git_kind, git_file_target) {
        (Kind::File, Some(target)) => {
            plan.add(dot_git, Decision::ReadOnly);
            dirs.protect_git_dir(&target, &mut plan)?;
        }
        (Kind::Dir, _) => {
            plan.add(dot_git.clone(), Decision::Pin);
            dirs.protect_contents(&dot_git, 0, &mut plan)?;
        }
        (Kind::Symlink, _) => return Err(dirs.symlink(dot_git)),
        (Kind::File, None) => plan.add(dot_git, Decision::ReadOnly),
        (Kind::Missing, _) => plan.add(dot_git, Decision::Placeholder { dir: true }),
    }
    for dir in extra_git_dirs.iter().map(|d| normalize_lexically(d)) {
        if dir.starts_with(root) && dir != root && !dirs.seen.contains(&dir) {
            dirs.protect_git_dir(&dir, &mut plan)?;
        }
    }
    // The git directories whose relative `core.hooksPath` is relative to this root (those of
    // submodules are relative to the submodule's work tree).
    let git_dirs = dirs.top_level.clone();
    dirs.protect_submodule_work_trees(&mut plan)?;
    let all_git_dirs = dirs.seen.clone();
    // A submodule's relative `core.hooksPath` (its own, or the user's/system's) is relative to
    // the submodule's work tree: protected there like the root's.
    for dir in all_git_dirs.iter().filter(|d| !git_dirs.contains(d)) {
        let Some(text) = fs.read_small(&dir.join("config")) else { continue };
        let Some(wt) = git_config_value(&text, "core", "worktree") else { continue };
        let work_tree = normalize_lexically(&dir.join(wt));
        if work_tree == root || !work_tree.starts_with(root) || fs.kind(&work_tree) != Kind::Dir {
            continue;
        }
        let own = git_config_value(&text, "core", "hookspath");
        let global = global_configs.iter().rev().find_map(|t| git_config_value(t, "core", "hookspath"));
        for hooks in own.into_iter().chain(global).filter(|h| !h.starts_with('~')) {
            let path = normalize_lexically(&work_tree.join(&hooks));
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let pattern = rel.to_string_lossy().into_owned();
            if let Ok((comps, _)) = split_pattern(&pattern) {
                Walk { pattern: &pattern, file_like: false }.walk(root, &comps, fs, &mut plan)?;
            }
        }
    }
    // A hooks folder the (read-only) git config names elsewhere, e.g. husky's
    // `core.hooksPath = .husky/_`: inside the root it would be as writable as any file there,
    // and git runs what it holds on the host's next commit. It gets what `.git/hooks` gets.
    let mut configs: Vec<String> = if git_dirs.is_empty() { Vec::new() } else { global_configs.to_vec() };
    configs.extend(git_dirs.iter().filter_map(|d| fs.read_small(&d.join("config"))));
    for text in &configs {
        let Some(hooks) = git_config_value(text, "core", "hookspath") else {
            continue;
        };
        if hooks.starts_with('~') {
            continue; // the home directory is not writable
        }
        let path = normalize_lexically(&root.join(&hooks));
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let pattern = rel.to_string_lossy().into_owned();
        if let Ok((comps, _)) = split_pattern(&pattern) {
            Walk { pattern: &pattern, file_like: false }.walk(root, &comps, fs, &mut plan)?;
        }
    }
    // Hook managers whose installed hook runs what a work-tree file says: the pre-commit
    // framework (`.pre-commit-config.yaml`) and lefthook (`lefthook.yml` and its local
    // override). With their hook in place, writing that file is as good as writing the hook.
    let mut hook_dirs: Vec<PathBuf> = git_dirs.iter().map(|d| d.join("hooks")).collect();
    for text in &configs {
        if let Some(h) = git_config_value(text, "core", "hookspath").filter(|h| !h.starts_with('~')) {
            hook_dirs.push(normalize_lexically(&root.join(h)));
        }
    }
    let mut managed: Vec<&str> = Vec::new();
    for dir in &hook_dirs {
        // Git runs a hook only under the hook's own name: its `*.sample` templates (a dozen in
        // every fresh repository) never run, and reading them would cost a dozen file reads
        // per command.
        for name in fs.list_dir(dir).into_iter().filter(|n| !n.ends_with(".sample")) {
            let Some(text) = fs.read_small(&dir.join(&name)) else { continue };
            if text.contains("pre-commit.com") || text.contains("File generated by pre-commit") {
                managed.extend(PRE_COMMIT_FILES);
            }
            if text.contains("lefthook") {
                managed.extend(LEFTHOOK_FILES);
            }
        }
    }
    managed.sort_unstable();
    managed.dedup();
    for name in managed {
        // Existing ones only: a placeholder folder would break the hook manager (inside too),
        // and a placeholder file would show up in `git status` for a command to commit.
        let path = root.join(name);
        match fs.kind(&path) {
            Kind::File => plan.add(path, Decision::ReadOnly),
            Kind::Symlink => return Err(ProtectError::Symlink { path, pattern: name.to_string() }),
            _ => {}
        }
    }
    // Files a repository's config includes (`include.path`, `includeIf.<cond>.path`; relative
    // to the git directory) that lie inside the root: a command could add `core.fsmonitor` or
    // `core.hooksPath` there. Existing ones are made read-only; a missing one gets a FILE
    // placeholder (an empty file, which git reads as an empty config; git fails on a folder),
    // so that the command cannot create it either. Submodules' git directories count too.
    for dir in &all_git_dirs {
        let Some(text) = fs.read_small(&dir.join("config")) else { continue };
        for inc in git_include_paths(&text) {
            if inc.starts_with('~') {
                continue; // the home directory is not writable
            }
            let path = normalize_lexically(&dir.join(&inc));
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let rel = rel.to_string_lossy().into_owned();
            let Ok((comps, _)) = split_pattern(&rel) else { continue };
            // The Windows backend makes work-tree placeholders folders (so that none shows up as
            // an untracked file), and git refuses a folder as an include: there a missing one is
            // left alone, as before (a known gap on Windows).
            if cfg!(windows) && fs.kind(&path) == Kind::Missing {
                continue;
            }
            Walk { pattern: "include.path", file_like: true }.walk(root, &comps, fs, &mut plan)?;
        }
    }
    Ok(plan.into_actions())
}

/// The work-tree files the pre-commit framework's installed hook runs.
const PRE_COMMIT_FILES: &[&str] = &[".pre-commit-config.yaml", ".pre-commit-config.yml"];
/// The work-tree files lefthook's installed hooks read (the main file and the local override).
const LEFTHOOK_FILES: &[&str] = &[
    "lefthook.yml",
    "lefthook.yaml",
    ".lefthook.yml",
    ".lefthook.yaml",
    "lefthook-local.yml",
    "lefthook-local.yaml",
    ".lefthook-local.yml",
    ".lefthook-local.yaml",
];
