//! Git directories: the git patterns under each, `gitdir:` and `commondir` indirection, submodules'
//! git directories at any depth and the `.git` files of their work trees.

use std::path::{Path, PathBuf};

use super::git_text::{git_config_value, gitmodules_paths};
use super::plan::{Decision, Plan, Walk};
use super::{normalize_lexically, FsView, Kind, ProtectError, MAX_MODULE_DEPTH, MAX_MODULE_DIRS, MAX_SMALL_FILE};

/// The path named by the first line of a `.git` file (`gitdir: <path>`) or a `commondir` file
/// (`<path>`), resolved against `base` and lexically normalized.
pub(super) fn pointer(fs: &dyn FsView, file: &Path, prefix: &str, base: &Path) -> Option<PathBuf> {
    let text = fs.read_small(file)?;
    let line = text.trim_start_matches('\u{feff}').lines().next()?;
    let target = line.strip_prefix(prefix)?.trim();
    if target.is_empty() {
        return None;
    }
    Some(normalize_lexically(&base.join(target)))
}

/// `path` with symbolic links in its existing part resolved (as far as `fs` can tell).
fn real_path(fs: &dyn FsView, path: &Path) -> PathBuf {
    for existing in path.ancestors() {
        if fs.kind(existing) == Kind::Missing {
            continue;
        }
        let Some(real) = fs.canonicalize(existing) else {
            return path.to_path_buf();
        };
        return match path.strip_prefix(existing) {
            Ok(rest) if rest.as_os_str().is_empty() => real,
            Ok(rest) => real.join(rest),
            Err(_) => path.to_path_buf(),
        };
    }
    path.to_path_buf()
}

/// A git pattern (`.git/...`), applied under some git directory.
pub(super) struct GitPattern<'a> {
    pub(super) walk: Walk<'a>,
    pub(super) rest: Vec<&'a str>,
}

impl GitPattern<'_> {
    /// A pattern about submodule git directories (`.git/modules/*/<rest>`): applied to every
    /// module git directory found at any depth (see [`GitDirs::protect_modules`]) rather than
    /// walked with its `*`, which would match `libs` for a submodule at `libs/foo`.
    fn module_tail(&self) -> Option<&[&str]> {
        match self.rest.as_slice() {
            ["modules", "*", tail @ ..] if !tail.is_empty() => Some(tail),
            _ => None,
        }
    }
}

/// Protects git directories: the git patterns under each, their `commondir`, their submodules'
/// git directories at any depth, and the `.git` files of their submodules' work trees.
pub(super) struct GitDirs<'a, 'p> {
    pub(super) git: &'a [GitPattern<'p>],
    pub(super) fs: &'a dyn FsView,
    pub(super) root: &'a Path,
    /// Every git directory protected so far (so that loops through `commondir` or `gitdir:`
    /// end), in the order found.
    pub(super) seen: Vec<PathBuf>,
    /// The git directories protected as a repository's own (not found as a submodule's):
    /// theirs is the configuration whose relative `core.hooksPath` names a folder of the root.
    pub(super) top_level: Vec<PathBuf>,
    /// Directories looked at under `modules` folders, against [`MAX_MODULE_DIRS`].
    pub(super) visited: usize,
}

impl GitDirs<'_, '_> {
    pub(super) fn symlink(&self, path: PathBuf) -> ProtectError {
        match self.git.first() {
            Some(g) => g.walk.symlink(path),
            None => ProtectError::Symlink { path, pattern: ".git/*".into() },
        }
    }

    /// A symbolic link found while searching for submodule git directories: the error names a
    /// `modules/*` pattern, the one to remove to stop the search.
    fn module_symlink(&self, path: PathBuf) -> ProtectError {
        match self.git.iter().find(|g| g.module_tail().is_some()) {
            Some(g) => g.walk.symlink(path),
            None => self.symlink(path),
        }
    }

    fn too_many(&self, path: &Path, what: &str) -> ProtectError {
        ProtectError::TooMany { path: path.to_path_buf(), what: what.to_string() }
    }

    fn has_module_patterns(&self) -> bool {
        self.git.iter().any(|g| g.module_tail().is_some())
    }

    /// Applies the git patterns under the existing git directory `dir` (already pinned), then
    /// protects its common directory and its submodules' git directories.
    pub(super) fn protect_contents(&mut self, dir: &Path, depth: usize, plan: &mut Plan) -> Result<(), ProtectError> {
        if self.seen.iter().any(|d| d == dir) {
            return Ok(());
        }
        self.seen.push(dir.to_path_buf());
        if depth == 0 {
            self.top_level.push(dir.to_path_buf());
        }
        for g in self.git {
            let rest = if depth == 0 { &g.rest[..] } else { g.module_tail().unwrap_or(&g.rest) };
            if depth == 0 && g.module_tail().is_some() {
                continue;
            }
            g.walk.walk(dir, rest, self.fs, plan)?;
        }
        self.protect_common_dir(dir, plan)?;
        self.protect_modules(dir, depth, plan)
    }

    /// Protects an indirect git directory (named by a `.git` file or a `commondir` file): pins
    /// it and its existing ancestors and protects its contents.
    pub(super) fn protect_git_dir(&mut self, dir: &Path, plan: &mut Plan) -> Result<(), ProtectError> {
        if self.git.is_empty() {
            return Ok(());
        }
        match self.fs.kind(dir) {
            Kind::Symlink => Err(self.symlink(dir.to_path_buf())),
            Kind::Missing => {
                plan.add(dir.to_path_buf(), Decision::Placeholder { dir: true });
                Ok(())
            }
            Kind::File => {
                plan.add(dir.to_path_buf(), Decision::ReadOnly);
                Ok(())
            }
            Kind::Dir => {
                let real = real_path(self.fs, dir);
                for ancestor in real.ancestors().skip(1) {
                    if ancestor.parent().is_some() && self.fs.kind(ancestor) == Kind::Dir {
                        plan.add(ancestor.to_path_buf(), Decision::Pin);
                    }
                }
                plan.add(real.clone(), Decision::Pin);
                self.protect_contents(&real, 0, plan)
            }
        }
    }

    /// If `git_dir` has a `commondir` file, makes that file read-only and protects the common
    /// directory it names.
    fn protect_common_dir(&mut self, git_dir: &Path, plan: &mut Plan) -> Result<(), ProtectError> {
        let file = git_dir.join("commondir");
        match self.fs.kind(&file) {
            Kind::Missing => Ok(()),
            Kind::Symlink => Err(self.symlink(file)),
            Kind::Dir | Kind::File => {
                plan.add(file.clone(), Decision::ReadOnly);
                match pointer(self.fs, &file, "", git_dir) {
                    Some(common) => self.protect_git_dir(&common, plan),
                    None => Ok(()),
                }
            }
        }
    }

    /// Submodules keep their git directories in `<git dir>/modules/<path of the submodule>`
    /// (`.git/modules/libs/foo` for `libs/foo`), and theirs in turn in `modules/` inside it: every
    /// git directory found there, at any depth, gets the git patterns. The directories on the
    /// way are pinned; a missing `modules` folder gets a placeholder (no submodule git directory
    /// can appear there while the command runs).
    fn protect_modules(&mut self, git_dir: &Path, depth: usize, plan: &mut Plan) -> Result<(), ProtectError> {
        if !self.has_module_patterns() {
            return Ok(());
        }
        let modules = git_dir.join("modules");
        match self.fs.kind(&modules) {
            Kind::Missing => plan.add(modules, Decision::Placeholder { dir: true }),
            Kind::Symlink => return Err(self.module_symlink(modules)),
            Kind::File => plan.add(modules, Decision::ReadOnly),
            Kind::Dir => {
                plan.add(modules.clone(), Decision::Pin);
                self.find_modules(&modules, depth + 1, false, plan)?;
            }
        }
        Ok(())
    }

    /// Looks for submodule git directories in `dir` (a folder beneath a `modules` folder,
    /// `depth` levels down from the first one; itself a git directory if `in_git_dir`).
    ///
    /// Every folder that is not a git directory is searched, and the git directories inside a
    /// git directory: a module named `libs` does not hide one named `libs/foo`, and a command
    /// that plants a `HEAD` in `.git/modules/libs` does not make `libs/foo` disappear from the
    /// search. Inside a git directory, only folders with a `config` count (every module git
    /// directory has one, read-only): the folders git makes there (`objects`, `logs`, whose
    /// `logs/HEAD` is no git directory's; `rebase-merge`) and tools make (git-annex's `annex`,
    /// thousands of folders) are not searched. A folder is pinned only if a git directory was
    /// found in it or beneath it (pinning a module's `rebase-merge` would keep git from removing
    /// it). Returns whether one was.
    fn find_modules(
        &mut self,
        dir: &Path,
        depth: usize,
        in_git_dir: bool,
        plan: &mut Plan,
    ) -> Result<bool, ProtectError> {
        let mut found = false;
        let mut names = self.fs.list_dir(dir);
        names.sort();
        names.dedup();
        for name in names {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
                continue;
            }
            let path = dir.join(&name);
            match self.fs.kind(&path) {
                Kind::Symlink => return Err(self.module_symlink(path)),
                Kind::Missing | Kind::File => continue,
                Kind::Dir => {}
            }
            if in_git_dir && self.fs.kind(&path.join("config")) != Kind::File {
                continue;
            }
            let looks_like_git_dir = is_git_dir(self.fs, &path);
            self.visited += 1;
            if self.visited > MAX_MODULE_DIRS {
                return Err(self.too_many(
                    &path,
                    &format!("more than {MAX_MODULE_DIRS} folders to search for submodule git directories"),
                ));
            }
            if depth > MAX_MODULE_DEPTH {
                return Err(self.too_many(
                    &path,
                    &format!("submodule git directories nested more than {MAX_MODULE_DEPTH} levels deep"),
                ));
            }
            if looks_like_git_dir {
                self.protect_contents(&path, depth, plan)?;
            }
            if self.find_modules(&path, depth + 1, looks_like_git_dir, plan)? || looks_like_git_dir {
                plan.add(path, Decision::Pin);
                found = true;
            }
        }
        Ok(found)
    }

    /// The `.git` of a submodule's work tree (`dot_git`, inside the root): read-only if it is a
    /// `gitdir:` file (and the git directory it names protected), protected like a git directory
    /// if it is one (a submodule that was not absorbed). The existing folders on the way from
    /// the root are pinned. A missing one is left alone (a new nested repository is checked
    /// after the command, not here).
    fn protect_work_tree_git(&mut self, dot_git: &Path, plan: &mut Plan) -> Result<(), ProtectError> {
        let Ok(rel) = dot_git.strip_prefix(self.root) else { return Ok(()) };
        let mut path = self.root.to_path_buf();
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            path.push(c);
            match self.fs.kind(&path) {
                Kind::Symlink => return Err(self.symlink(path)),
                Kind::Missing => return Ok(()),
                Kind::File if i + 1 == comps.len() => {
                    plan.add(path.clone(), Decision::ReadOnly);
                    if let Some(target) = pointer(self.fs, &path, "gitdir:", path.parent().unwrap_or(self.root)) {
                        // A missing one must stay missing: the command could make it, with a
                        // config of its own, for the host's git to use in that submodule.
                        match first_missing(self.fs, &target) {
                            Some(missing) => plan.add(missing, Decision::Placeholder { dir: true }),
                            None => self.protect_git_dir(&target, plan)?,
                        }
                    }
                    return Ok(());
                }
                Kind::File => return Ok(()),
                Kind::Dir if i + 1 == comps.len() => return self.protect_git_dir(&path, plan),
                Kind::Dir => plan.add(path.clone(), Decision::Pin),
            }
        }
        Ok(())
    }

    /// The work trees of the submodules known so far (`core.worktree` in each module git
    /// directory's config) and those `.gitmodules` lists: their `.git` is protected.
    pub(super) fn protect_submodule_work_trees(&mut self, plan: &mut Plan) -> Result<(), ProtectError> {
        let mut dot_gits: Vec<PathBuf> = Vec::new();
        for dir in self.seen.clone() {
            let Some(text) = self.fs.read_small(&dir.join("config")) else { continue };
            if let Some(wt) = git_config_value(&text, "core", "worktree") {
                dot_gits.push(normalize_lexically(&dir.join(wt).join(".git")));
            }
        }
        let text = self.fs.read_small(&self.root.join(".gitmodules")).unwrap_or_default();
        if text.len() > MAX_SMALL_FILE {
            return Err(self.too_many(&self.root.join(".gitmodules"), &format!("larger than {MAX_SMALL_FILE} bytes")));
        }
        let listed = gitmodules_paths(&text);
        if listed.len() > MAX_MODULE_DIRS {
            return Err(
                self.too_many(&self.root.join(".gitmodules"), &format!("more than {MAX_MODULE_DIRS} submodules"))
            );
        }
        for p in listed {
            let path = normalize_lexically(&self.root.join(&p));
            if path.starts_with(self.root) && path != self.root {
                dot_gits.push(path.join(".git"));
            }
        }
        dot_gits.sort();
        dot_gits.dedup();
        let own = self.root.join(".git");
        for dot_git in dot_gits.into_iter().filter(|d| *d != own) {
            self.protect_work_tree_git(&dot_git, plan)?;
        }
        Ok(())
    }
}

/// The shortest ancestor of `path` (or `path` itself) that is missing, if any part of it is.
fn first_missing(fs: &dyn FsView, path: &Path) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = path.ancestors().collect();
    ancestors.reverse();
    ancestors.into_iter().find(|a| fs.kind(a) == Kind::Missing).map(Path::to_path_buf)
}

/// The entries that make a folder under `.git/modules` look like a git directory.
const GIT_DIR_MARKERS: &[&str] = &["HEAD", "config", "objects", "refs", "commondir", "index", "packed-refs"];

/// Whether `dir` looks like a git directory (or the remains of one): any of
/// [`GIT_DIR_MARKERS`]. Broader than git's own test (`HEAD`, `objects` and `refs`), so that a
/// command that deletes a module's `HEAD` (which it may: only config and hooks are read-only)
/// does not get its config unprotected on the next run, and recreate `HEAD` then.
fn is_git_dir(fs: &dyn FsView, dir: &Path) -> bool {
    GIT_DIR_MARKERS.iter().any(|m| fs.kind(&dir.join(m)) != Kind::Missing)
}
