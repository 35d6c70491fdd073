//! Protected paths: locations inside every writable root that stay read-only even though their
//! parent is writable, whether or not they exist yet.
//!
//! # Patterns
//!
//! A pattern is relative to a writable root, uses `/` as its only separator, and may not contain
//! empty, `.` or `..` components (see [`validate_pattern`]). A component that is exactly `*`
//! matches exactly one path component; `*` anywhere else is an error. A trailing `/` marks the
//! pattern as a directory (this only matters for placeholders, see below).
//!
//! # Matching ([`matches()`], [`is_protected`])
//!
//! A relative path is protected when it is a protected path or lies beneath one. With
//! `case_insensitive = true` (what Windows callers pass), the path may also use `\` as a
//! separator, and every component is compared in its [`normalize_windows_component`] form, so
//! `.GiT\HOOKS\x`, `.git\config:stream` and `.git\CONFIG.` are all protected.
//!
//! # Resolution against a filesystem ([`resolve`])
//!
//! A backend cannot protect a pattern; it protects paths. [`resolve`] walks every pattern from a
//! writable root and says what to do with each path on the way, as [`Action`]s:
//!
//! * every existing directory on the way to a protected path is [`Action::Pin`]ned (it stays
//!   writable but cannot be renamed, so `mv .git .git-old` does not get around the protection);
//! * an existing protected path is [`Action::ReadOnly`];
//! * the first missing component on the way gets an [`Action::Placeholder`] so that it cannot be
//!   created. The placeholder is a directory unless it is the pattern's final component *and*
//!   that component looks like a file: see [`final_component_is_file`];
//! * a component that has to be a directory but is a regular file (`.vscode` is a file) is made
//!   [`Action::ReadOnly`] itself and the walk stops there;
//! * a `*` component expands to the existing entries of its directory (directories, and also
//!   files when `*` is the final component); if that directory is missing, it gets the
//!   placeholder;
//! * an existing symbolic link (or, on Windows, junction) anywhere on the way is an error
//!   ([`ProtectError::Symlink`]): a backend can neither pin nor protect through a link.
//!
//! ## Git indirection
//!
//! When `<root>/.git` is a file starting with `gitdir: <path>` (submodules, linked worktrees),
//! the file itself is read-only and every git pattern (one that starts with `.git/`) is applied
//! to the directory it names instead. If a git directory contains a `commondir` file (linked
//! worktrees), that file is read-only and the git patterns are applied to the common directory
//! too. The existing ancestors of such an indirect git directory are pinned as well (so that
//! renaming `.git/worktrees` cannot swap in another one). These paths may lie outside the root:
//! a backend keeps the actions [`within`] one of its writable roots and drops the rest, which
//! are read-only anyway.
//!
//! ## Submodules
//!
//! Patterns `.git/modules/*/<rest>` are not walked with their `*`: a submodule at `libs/foo`
//! keeps its git directory at `.git/modules/libs/foo`, and its own submodules' are in `modules/`
//! inside that. Every `modules` folder of a protected git directory is searched at any depth
//! (within [`MAX_MODULE_DEPTH`] levels and [`MAX_MODULE_DIRS`] folders, else
//! [`ProtectError::TooMany`]); each folder that looks like a git directory gets every git pattern
//! (with `<rest>` for the `modules/*` ones), its `commondir` followed and its own `modules`
//! searched; the folders on the way are pinned; a missing `modules` folder gets a placeholder.
//! The `.git` of every submodule work tree (named by a module's `core.worktree`, or a `path` in
//! the root's `.gitmodules`) is read-only if it is a file (the git directory it names protected,
//! or kept missing) and treated as a git directory if it is one; the folders on the way are
//! pinned.
//!
//! ## Included configuration
//!
//! Files a protected git directory's config includes (`include.path`, `includeIf.*.path`) that
//! lie in the root are read-only; a missing one gets a *file* placeholder (git reads an empty
//! file as an empty config, and refuses a folder).
//!
//! Limits: `resolve` sees the filesystem as it is when it runs; a `*` cannot protect entries
//! created later (a new `.git/modules/<name>` can still be made, but not inside a pinned or
//! read-only path), and a nested repository a command makes and registers as a gitlink is not
//! covered here. The root should be a canonical path: indirect git directories are
//! canonicalized through [`FsView::canonicalize`] so that backends can compare them with their
//! (canonical) writable roots.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The default patterns, relative to each writable root. `*` matches exactly one path
/// component. Matching is exact on Linux and case-insensitive on Windows.
///
/// The rule for what is here: a project-level file or folder that a tool the user runs later
/// (git, an agent, an editor, a shell hook) acts on by itself, without asking: it runs commands,
/// starts servers (MCP), loads plugins or sets hooks. Files that are only instructions to an
/// agent (`AGENTS.md`, `CLAUDE.md`, `GEMINI.md`, `.cursorrules`, `.windsurfrules`,
/// `.github/copilot-instructions.md`) are not protected: they are project content agents are
/// asked to edit, and what an agent then does with them goes through its own permission checks.
/// Files whose tool asks before acting on a changed version (neovim's `exrc`: `.nvim.lua`,
/// `.nvimrc`, `.exrc`, trusted by content) are not protected either. The README's "Protected
/// paths" table lists each entry with its tool; keep the two in step.
pub const DEFAULT_PATTERNS: &[&str] = &[
    // Git: hooks and configuration (which can name programs: `core.fsmonitor`, `core.pager`,
    // filters), per git directory. Submodules' git directories are found at any depth under
    // `.git/modules` and get the same (see `GitDirs`); the `modules/*` patterns say which.
    ".git/hooks",
    ".git/config",
    ".git/config.worktree",
    ".git/info/attributes",
    ".git/modules/*/config",
    ".git/modules/*/hooks",
    // Git follows `commondir` to find config and hooks: rewriting it redirects them.
    ".git/commondir",
    ".git/modules/*/commondir",
    ".git/worktrees/*/commondir",
    ".git/worktrees/*/config.worktree",
    // What hides changes from review on the host: an exclude list (`git status` stops showing
    // a planted file), replace refs (`git log -p` shows one commit, `git push` sends another)
    // and alternates (objects read from another repository). Git writes none of them in
    // ordinary work. (`info/grafts` is not here: git warns whenever the file exists, so a
    // placeholder would be noisy; the host-side check after each command quarantines it.)
    ".git/info/exclude",
    ".git/refs/replace",
    ".git/objects/info/alternates",
    // A `HEAD` at the root would let the root pass for a bare repository (with a planted
    // `config`) once `.git` is broken; the placeholder keeps it from being one.
    "HEAD",
    // Palisade's own project configuration (it chooses the policy of later runs).
    ".palisade",
    // Agents' project folders: settings with hooks, MCP servers, permissions, plugins.
    ".claude", // Claude Code: settings.json hooks and permissions, commands, agents
    ".mcp.json", // Claude Code (and others): project MCP servers, started as programs
    ".codex", // Codex: project config.toml (MCP servers, sandbox settings)
    ".agents", // shared agent skills and settings
    ".cursor", // Cursor: mcp.json, hooks.json
    ".gemini", // Gemini CLI: settings.json (MCP servers, hooks, tool settings)
    ".windsurf", // Windsurf: workflows, MCP
    ".continue", // Continue: config (MCP servers, context providers)
    "opencode.json", // opencode: MCP servers, plugins, commands
    "opencode.jsonc",
    ".opencode", // opencode: plugins (JavaScript loaded at start-up), commands, agents
    ".aider.conf.yml", // aider: `lint-cmd` / `test-cmd`, run automatically after edits
    ".kiro", // Kiro: agent hooks (commands run on file events), MCP settings
    ".amazonq", // Amazon Q Developer: workspace MCP servers (mcp.json), rules
    ".roo", // Roo Code: project MCP servers (mcp.json), rules
    ".clinerules", // Cline: rules and hooks (a file or a folder)
    ".junie", // JetBrains Junie: project MCP servers, guidelines
    // Editors: tasks run on folder open, language servers and formatters started from settings,
    // run configurations.
    ".vscode",
    ".idea",
    ".zed",
    // Dev containers: `initializeCommand` runs on the HOST when the container is built (and the
    // folder holds the scripts and compose files it uses).
    ".devcontainer",
    ".devcontainer.json",
    // Shell environment managers that act on `cd`: direnv (`.envrc`, sourced once allowed), mise
    // (hooks, `[env]` scripts and tasks, trusted by path: a trusted file stays trusted when
    // changed).
    ".envrc",
    "mise.toml",
    ".mise.toml",
    "mise.local.toml",
    ".mise.local.toml",
];

/// Final pattern components without an extension that are nevertheless files (see
/// [`final_component_is_file`]).
pub const FILE_NAMES: &[&str] = &["config", "attributes", ".envrc", "commondir", "HEAD", "exclude", "alternates"];

/// What kind of thing is at a path (without following a final symlink).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Dir,
    Symlink,
}

/// A read-only view of the filesystem, so that resolution is testable with fixtures.
pub trait FsView {
    fn kind(&self, path: &Path) -> Kind;
    /// Names of the entries of a directory (empty if it is not one).
    fn list_dir(&self, path: &Path) -> Vec<String>;
    /// The text of a small file (`.git` files, `commondir`, git configs, `.gitmodules`; at most
    /// [`MAX_SMALL_FILE`] bytes and a little), if it is one.
    fn read_small(&self, path: &Path) -> Option<String>;
    /// The path of an existing file or directory with every symbolic link resolved, if the
    /// view can tell. The default (for fixtures) cannot, and paths are used as they are.
    fn canonicalize(&self, _path: &Path) -> Option<PathBuf> {
        None
    }
}

/// One thing a backend must do so that protected paths stay protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// An existing directory on the way to a protected path: it stays writable, but must not be
    /// renamed or removed (so that `mv .git .git-old` cannot get around the protection).
    Pin(PathBuf),
    /// An existing file or directory that must be read-only (and not renamed or removed).
    ReadOnly(PathBuf),
    /// A missing path (the first missing component on the way to a protected path) that must not
    /// be created: the backend puts an empty read-only placeholder there.
    Placeholder { path: PathBuf, dir: bool },
}

impl Action {
    /// The path the action is about.
    pub fn path(&self) -> &Path {
        match self {
            Action::Pin(p) | Action::ReadOnly(p) => p,
            Action::Placeholder { path, .. } => path,
        }
    }
}

/// Why protected paths cannot be resolved (and so cannot be enforced).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtectError {
    #[error(
        "{} is a symbolic link on the way to protected path `{pattern}` (a command of an earlier run may have made it), and a path cannot be kept read-only through a link, so palisade refuses to run: look at where it points, then remove the link or replace it with a real directory or file",
        path.display()
    )]
    Symlink { path: PathBuf, pattern: String },
    #[error("protected path pattern `{pattern}`: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("{}: {what}; palisade stops there rather than leave some of them unprotected", path.display())]
    TooMany { path: PathBuf, what: String },
}

/// Checks a pattern's syntax (see the module documentation); the error says what is wrong.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    split_pattern(pattern).map(|_| ())
}

/// A pattern's components, and whether it ends with `/`.
fn split_pattern(pattern: &str) -> Result<(Vec<&str>, bool), String> {
    if pattern.is_empty() {
        return Err("is empty".into());
    }
    if pattern.contains('\\') {
        return Err("use `/` as the separator".into());
    }
    if pattern.starts_with('/') || pattern.as_bytes().get(1) == Some(&b':') {
        return Err("must be relative to the writable root".into());
    }
    let trailing_slash = pattern.ends_with('/');
    let body = pattern.strip_suffix('/').unwrap_or(pattern);
    let mut comps = Vec::new();
    for c in body.split('/') {
        match c {
            "" => return Err("has an empty component".into()),
            "." | ".." => return Err(format!("may not contain a `{c}` component")),
            _ if c.contains('*') && c != "*" => {
                return Err("`*` must be a whole component".into());
            }
            _ if c.contains('\0') => return Err("contains a NUL character".into()),
            _ => comps.push(c),
        }
    }
    Ok((comps, trailing_slash))
}

/// Whether a pattern's final component names a file, which decides whether a placeholder for a
/// missing final component is a file or a directory.
///
/// The rule: a pattern ending in `/` is a directory; otherwise its final component is a file
/// when it has an extension (a `.` after its first character: `.mcp.json`, `config.worktree`,
/// `settings.json`) or is one of [`FILE_NAMES`] (`config`, `attributes`, `.envrc`). Everything
/// else (`.git/hooks`, `.vscode`, `.palisade`, `*`) is a directory.
pub fn final_component_is_file(pattern: &str) -> bool {
    if pattern.ends_with('/') {
        return false;
    }
    let last = pattern.rsplit('/').next().unwrap_or(pattern);
    last != "*" && (last.char_indices().any(|(i, c)| i > 0 && c == '.') || FILE_NAMES.contains(&last))
}

/// The form in which Windows compares a path component: without an alternate data stream
/// suffix (`config:stream` and `config::$DATA` are the file `config`), without the trailing dots
/// and spaces Windows ignores (`config. ` is `config`), and lowercased.
///
/// `.` and `..` normalize to the empty string; callers handle them before normalizing.
pub fn normalize_windows_component(component: &str) -> String {
    let base = match component.find(':') {
        Some(i) => &component[..i],
        None => component,
    };
    base.trim_end_matches(['.', ' ']).chars().flat_map(char::to_lowercase).collect()
}

/// The components of a relative path, lexically normalized (`.` dropped, `..` removes the
/// previous component). `None` if the path climbs above its start.
fn rel_components(rel: &Path, case_insensitive: bool) -> Option<Vec<String>> {
    let text = rel.to_string_lossy();
    let mut out: Vec<String> = Vec::new();
    let separators: &[char] = if case_insensitive { &['/', '\\'] } else { &['/'] };
    for raw in text.split(separators) {
        if case_insensitive {
            // Windows drops trailing spaces before it looks at `.` and `..`.
            if raw.trim_end_matches(' ') == ".." {
                out.pop()?;
                continue;
            }
            let n = normalize_windows_component(raw);
            if !n.is_empty() {
                out.push(n);
            }
        } else {
            match raw {
                "" | "." => {}
                ".." => {
                    out.pop()?;
                }
                _ => out.push(raw.to_string()),
            }
        }
    }
    Some(out)
}

/// Whether `rel` (relative to a writable root) is the protected path `pattern` or lies beneath
/// it. `case_insensitive` selects Windows semantics: `\` is a separator too, and components are
/// compared in their [`normalize_windows_component`] form. An invalid pattern matches nothing
/// (configuration loading rejects invalid patterns); a path that climbs out of the root with
/// `..` matches nothing.
pub fn matches(pattern: &str, rel: &Path, case_insensitive: bool) -> bool {
    let Ok((pattern, _)) = split_pattern(pattern) else {
        return false;
    };
    let Some(rel) = rel_components(rel, case_insensitive) else {
        return false;
    };
    rel.len() >= pattern.len()
        && pattern.iter().zip(&rel).all(|(p, r)| {
            *p == "*"
                || if case_insensitive {
                    normalize_windows_component(p) == *r
                } else {
                    p == r
                }
        })
}

/// Whether `rel` matches any of the patterns (see [`matches()`]).
pub fn is_protected(patterns: &[String], rel: &Path, case_insensitive: bool) -> bool {
    patterns.iter().any(|p| matches(p, rel, case_insensitive))
}

/// Removes `.` components and resolves `..` against the previous component, without looking at
/// the filesystem (`..` at the root stays at the root; a leading `..` of a relative path stays).
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

/// Whether `path` is `root` or lies beneath it, comparing lexically normalized components (no
/// filesystem access, case-sensitive).
pub fn within(path: &Path, root: &Path) -> bool {
    normalize_lexically(path).starts_with(normalize_lexically(root))
}

/// What [`resolve`] has decided for one path so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Pin,
    Placeholder { dir: bool },
    ReadOnly,
}

#[derive(Default)]
struct Plan(BTreeMap<PathBuf, Decision>);

impl Plan {
    fn add(&mut self, path: PathBuf, d: Decision) {
        use Decision::*;
        let merged = match (self.0.get(&path).copied(), d) {
            (None, d) => d,
            (Some(ReadOnly), _) | (_, ReadOnly) => ReadOnly,
            // A file placeholder blocks both the file and anything beneath it.
            (Some(Placeholder { dir: a }), Placeholder { dir: b }) => Placeholder { dir: a && b },
            (Some(Placeholder { dir }), Pin) | (Some(Pin), Placeholder { dir }) => Placeholder { dir },
            (Some(Pin), Pin) => Pin,
        };
        self.0.insert(path, merged);
    }

    fn into_actions(self) -> Vec<Action> {
        // Anything beneath a read-only path or a placeholder is covered by it. Paths are
        // ordered component by component, so everything beneath a path directly follows it:
        // one pass, remembering the last covering path kept.
        let mut actions: Vec<Action> = Vec::with_capacity(self.0.len());
        let mut cover: Option<PathBuf> = None;
        for (p, d) in self.0 {
            if cover.as_ref().is_some_and(|c| p.starts_with(c)) {
                continue;
            }
            if !matches!(d, Decision::Pin) {
                cover = Some(p.clone());
            }
            actions.push(match d {
                Decision::Pin => Action::Pin(p),
                Decision::ReadOnly => Action::ReadOnly(p),
                Decision::Placeholder { dir } => Action::Placeholder { path: p, dir },
            });
        }
        // Shallow first; a stable sort keeps the path order among paths of the same depth.
        actions.sort_by_cached_key(|a| a.path().components().count());
        actions
    }
}

/// One pattern being walked.
struct Walk<'a> {
    pattern: &'a str,
    file_like: bool,
}

impl Walk<'_> {
    fn symlink(&self, path: PathBuf) -> ProtectError {
        ProtectError::Symlink { path, pattern: self.pattern.to_string() }
    }

    /// Walks `comps` from the existing directory `base`.
    fn walk(&self, base: &Path, comps: &[&str], fs: &dyn FsView, plan: &mut Plan) -> Result<(), ProtectError> {
        let Some((first, rest)) = comps.split_first() else {
            return Ok(());
        };
        let last = rest.is_empty();
        if *first == "*" {
            let mut names = fs.list_dir(base);
            names.sort();
            names.dedup();
            for name in names {
                if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
                    continue;
                }
                let path = base.join(&name);
                match fs.kind(&path) {
                    Kind::Symlink => return Err(self.symlink(path)),
                    Kind::Missing => {}
                    // A file cannot hold the rest of the pattern; it protects nothing.
                    Kind::File if !last => {}
                    Kind::File => plan.add(path, Decision::ReadOnly),
                    Kind::Dir if last => plan.add(path, Decision::ReadOnly),
                    Kind::Dir => {
                        plan.add(path.clone(), Decision::Pin);
                        self.walk(&path, rest, fs, plan)?;
                    }
                }
            }
            return Ok(());
        }
        let path = base.join(first);
        match fs.kind(&path) {
            Kind::Symlink => Err(self.symlink(path)),
            Kind::Missing => {
                plan.add(path, Decision::Placeholder { dir: !(last && self.file_like) });
                Ok(())
            }
            Kind::File => {
                plan.add(path, Decision::ReadOnly);
                Ok(())
            }
            Kind::Dir if last => {
                plan.add(path, Decision::ReadOnly);
                Ok(())
            }
            Kind::Dir => {
                plan.add(path.clone(), Decision::Pin);
                self.walk(&path, rest, fs, plan)
            }
        }
    }
}

/// The path named by the first line of a `.git` file (`gitdir: <path>`) or a `commondir` file
/// (`<path>`), resolved against `base` and lexically normalized.
fn pointer(fs: &dyn FsView, file: &Path, prefix: &str, base: &Path) -> Option<PathBuf> {
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
struct GitPattern<'a> {
    walk: Walk<'a>,
    rest: Vec<&'a str>,
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

/// How many directory levels below a `.git/modules` folder (nested `modules` included) are
/// searched for submodule git directories, and how many directories (and `.gitmodules` entries)
/// at most: past either bound, resolution refuses rather than leave some unprotected.
pub const MAX_MODULE_DEPTH: usize = 16;
pub const MAX_MODULE_DIRS: usize = 1024;
/// How much of a git config or `.gitmodules` [`RealFs`] reads (more is refused, see
/// [`ProtectError::TooMany`]).
pub const MAX_SMALL_FILE: usize = 1 << 20;

/// Protects git directories: the git patterns under each, their `commondir`, their submodules'
/// git directories at any depth, and the `.git` files of their submodules' work trees.
struct GitDirs<'a, 'p> {
    git: &'a [GitPattern<'p>],
    fs: &'a dyn FsView,
    root: &'a Path,
    /// Every git directory protected so far (so that loops through `commondir` or `gitdir:`
    /// end), in the order found.
    seen: Vec<PathBuf>,
    /// The git directories protected as a repository's own (not found as a submodule's):
    /// theirs is the configuration whose relative `core.hooksPath` names a folder of the root.
    top_level: Vec<PathBuf>,
    /// Directories looked at under `modules` folders, against [`MAX_MODULE_DIRS`].
    visited: usize,
}

impl GitDirs<'_, '_> {
    fn symlink(&self, path: PathBuf) -> ProtectError {
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
    fn protect_contents(&mut self, dir: &Path, depth: usize, plan: &mut Plan) -> Result<(), ProtectError> {
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
    fn protect_git_dir(&mut self, dir: &Path, plan: &mut Plan) -> Result<(), ProtectError> {
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
    fn find_modules(&mut self, dir: &Path, depth: usize, in_git_dir: bool, plan: &mut Plan) -> Result<bool, ProtectError> {
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
                return Err(self.too_many(&path, &format!("more than {MAX_MODULE_DIRS} folders to search for submodule git directories")));
            }
            if depth > MAX_MODULE_DEPTH {
                return Err(self.too_many(&path, &format!("submodule git directories nested more than {MAX_MODULE_DEPTH} levels deep")));
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
    fn protect_submodule_work_trees(&mut self, plan: &mut Plan) -> Result<(), ProtectError> {
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
            return Err(self.too_many(&self.root.join(".gitmodules"), &format!("more than {MAX_MODULE_DIRS} submodules")));
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
        let (comps, _) = split_pattern(pattern)
            .map_err(|reason| ProtectError::Pattern { pattern: pattern.clone(), reason })?;
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

/// Every `path` value of the `[submodule "..."]` sections of a `.gitmodules` file's text.
fn gitmodules_paths(text: &str) -> Vec<String> {
    section_values(text, &["submodule"], "path")
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

/// Every `path` value of `[include]` and `[includeIf "..."]` sections in a git config's text.
fn git_include_paths(text: &str) -> Vec<String> {
    section_values(text, &["include", "includeif"], "path")
}

/// Every value of `key` in sections named one of `sections` (with or without a subsection;
/// names compared case-insensitively, quotes and trailing comments removed).
fn section_values(text: &str, sections: &[&str], key: &str) -> Vec<String> {
    let mut in_section = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split([']', ' ', '"']).next().unwrap_or("");
            in_section = sections.iter().any(|s| name.eq_ignore_ascii_case(s));
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim().eq_ignore_ascii_case(key) {
                let v = v.trim();
                let v = match v.strip_prefix('"') {
                    Some(q) => q.split('"').next().unwrap_or(""),
                    None => v.split([';', '#']).next().unwrap_or("").trim(),
                };
                if !v.is_empty() {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

/// The last value of `section.key` in a git config file's text (names compared
/// case-insensitively, surrounding quotes removed), if it is set there.
fn git_config_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split([']', ' ', '"']).next().unwrap_or("");
            in_section = name.eq_ignore_ascii_case(section) && !rest.contains('"');
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        if !k.trim().eq_ignore_ascii_case(key) {
            continue;
        }
        let v = v.trim();
        let v = match v.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or(""),
            None => v.split([';', '#']).next().unwrap_or("").trim(),
        };
        found = Some(v.to_string());
    }
    found.filter(|v| !v.is_empty())
}

/// The real filesystem, through `std::fs` (links are never followed at the final component).
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl FsView for RealFs {
    fn kind(&self, path: &Path) -> Kind {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => Kind::Symlink,
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(_) => Kind::File,
            Err(_) => Kind::Missing,
        }
    }

    fn list_dir(&self, path: &Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(path) else {
            return Vec::new();
        };
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    fn read_small(&self, path: &Path) -> Option<String> {
        if !std::fs::symlink_metadata(path).ok()?.is_file() {
            return None;
        }
        let mut f = std::fs::File::open(path).ok()?;
        // Into a fixed buffer (read_to_end would grow it from 32 bytes, one read each time).
        let mut buf = [0u8; 4096];
        let mut len = 0;
        while len < buf.len() {
            match f.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        if len < buf.len() {
            return Some(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        // A git config with many remotes and branches, or a long `.gitmodules`: a setting past
        // the first 4 KiB (an `[include]` at the end) must not go unseen.
        let mut all = buf.to_vec();
        (&mut f).take(MAX_SMALL_FILE as u64).read_to_end(&mut all).ok()?;
        Some(String::from_utf8_lossy(&all).into_owned())
    }

    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    enum Node {
        Dir,
        File(String),
        Symlink,
    }

    /// An in-memory filesystem: absolute paths to nodes; parents are created as directories.
    #[derive(Default)]
    struct Fixture(BTreeMap<PathBuf, Node>);

    impl Fixture {
        fn new() -> Fixture {
            Fixture::default().dir("/w")
        }
        fn put(mut self, path: &str, node: Node) -> Fixture {
            let path = PathBuf::from(path);
            for a in path.ancestors().skip(1) {
                self.0.entry(a.to_path_buf()).or_insert(Node::Dir);
            }
            self.0.insert(path, node);
            self
        }
        fn dir(self, path: &str) -> Fixture {
            self.put(path, Node::Dir)
        }
        fn file(self, path: &str, content: &str) -> Fixture {
            self.put(path, Node::File(content.into()))
        }
        fn link(self, path: &str) -> Fixture {
            self.put(path, Node::Symlink)
        }
    }

    impl FsView for Fixture {
        fn kind(&self, path: &Path) -> Kind {
            match self.0.get(path) {
                None => Kind::Missing,
                Some(Node::Dir) => Kind::Dir,
                Some(Node::File(_)) => Kind::File,
                Some(Node::Symlink) => Kind::Symlink,
            }
        }
        fn list_dir(&self, path: &Path) -> Vec<String> {
            self.0
                .keys()
                .filter(|p| p.parent() == Some(path))
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        }
        fn read_small(&self, path: &Path) -> Option<String> {
            match self.0.get(path) {
                Some(Node::File(s)) => Some(s.clone()),
                _ => None,
            }
        }
    }

    fn defaults() -> Vec<String> {
        DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect()
    }

    fn pats(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    fn pin(p: &str) -> Action {
        Action::Pin(p.into())
    }
    fn ro(p: &str) -> Action {
        Action::ReadOnly(p.into())
    }
    fn ph_dir(p: &str) -> Action {
        Action::Placeholder { path: p.into(), dir: true }
    }
    fn ph_file(p: &str) -> Action {
        Action::Placeholder { path: p.into(), dir: false }
    }

    fn resolve_w(fs: &Fixture, patterns: &[String]) -> Vec<Action> {
        resolve(Path::new("/w"), patterns, fs).unwrap()
    }

    /// The placeholders for the non-git default patterns in an empty workspace.
    /// `a` with its path written with `/` only.
    fn slashed(a: Action) -> Action {
        let fix = |p: &Path| PathBuf::from(p.to_string_lossy().replace('\\', "/"));
        match a {
            Action::Pin(p) => Action::Pin(fix(&p)),
            Action::ReadOnly(p) => Action::ReadOnly(fix(&p)),
            Action::Placeholder { path, dir } => Action::Placeholder { path: fix(&path), dir },
        }
    }

    fn non_git_placeholders() -> Vec<Action> {
        DEFAULT_PATTERNS
            .iter()
            .filter(|p| !p.starts_with(".git/"))
            .map(|p| Action::Placeholder { path: PathBuf::from(format!("/w/{p}")), dir: true })
            .collect()
    }

    /// In the work tree every placeholder is a directory (invisible to `git status`, so never
    /// committed by `git add -A`), file names included; inside the git directory the kind
    /// follows the name.
    #[test]
    fn work_tree_placeholders_are_directories_git_ones_follow_the_name() {
        let fs = Fixture::new().dir("/w/.git");
        let got = resolve_w(&fs, &defaults());
        for f in [".mcp.json", "opencode.json", "opencode.jsonc", ".devcontainer.json", ".envrc", "mise.toml", "HEAD"] {
            assert!(got.contains(&ph_dir(&format!("/w/{f}"))), "{f}: {got:#?}");
        }
        assert!(got.contains(&ph_file("/w/.git/config")) && got.contains(&ph_dir("/w/.git/hooks")), "{got:#?}");
    }

    fn sorted(mut v: Vec<Action>) -> Vec<Action> {
        v.sort_by(|a, b| {
            let (a, b) = (a.path(), b.path());
            a.components().count().cmp(&b.components().count()).then_with(|| a.cmp(b))
        });
        v
    }

    #[test]
    fn missing_git_gets_a_directory_placeholder() {
        let fs = Fixture::new();
        let mut want = non_git_placeholders();
        want.push(ph_dir("/w/.git"));
        assert_eq!(resolve_w(&fs, &defaults()), sorted(want));
    }

    #[test]
    fn git_dir_without_hooks() {
        let fs = Fixture::new().file("/w/.git/HEAD", "ref: refs/heads/main\n").file("/w/.git/config", "");
        let got = resolve_w(&fs, &pats(&[".git/hooks", ".git/config", ".git/config.worktree", ".git/info/attributes"]));
        assert_eq!(
            got,
            vec![
                pin("/w/.git"),
                ro("/w/.git/config"),
                ph_file("/w/.git/config.worktree"),
                ph_dir("/w/.git/hooks"),
                ph_dir("/w/.git/info"),
            ]
        );
    }

    /// Covered paths are dropped whatever their depth, siblings that only share a name prefix
    /// are kept, and the result is shallow first, then by path.
    #[test]
    fn covered_paths_are_dropped_and_the_rest_ordered_by_depth() {
        let mut plan = Plan::default();
        for (p, d) in [
            ("/w/a/b", Decision::ReadOnly),
            ("/w/a", Decision::ReadOnly),
            ("/w/a/c/d", Decision::Pin),
            ("/w/b", Decision::Pin),
            ("/w/b/c", Decision::Placeholder { dir: true }),
            ("/w/b/c/d", Decision::Pin),
            ("/w/ab", Decision::Pin),
            ("/w/b/e", Decision::Pin),
            ("/w/b-x/y", Decision::ReadOnly),
        ] {
            plan.add(p.into(), d);
        }
        assert_eq!(plan.into_actions(), vec![ro("/w/a"), pin("/w/ab"), pin("/w/b"), ph_dir("/w/b/c"), pin("/w/b/e"), ro("/w/b-x/y")]);
    }

    /// Only hooks git runs count: a `.sample` template that mentions pre-commit (git never
    /// runs it) does not make `.pre-commit-config.yaml` protected; the installed hook does.
    #[test]
    fn hook_managers_are_recognised_by_installed_hooks_not_samples() {
        let cfg = "/w/.pre-commit-config.yaml";
        let sample = Fixture::new()
            .file("/w/.git/hooks/pre-commit.sample", "# File generated by pre-commit: https://pre-commit.com\n")
            .file("/w/.git/config", "")
            .file(cfg, "repos: []\n");
        assert!(!resolve_w(&sample, &defaults()).contains(&ro(cfg)));
        let installed = sample.file("/w/.git/hooks/pre-commit", "# File generated by pre-commit: https://pre-commit.com\n");
        assert!(resolve_w(&installed, &defaults()).contains(&ro(cfg)));
    }

    #[test]
    fn git_dir_with_hooks_and_everything() {
        let fs = Fixture::new()
            .dir("/w/.git/hooks")
            .file("/w/.git/hooks/pre-commit.sample", "")
            .file("/w/.git/config", "")
            .file("/w/.git/info/attributes", "")
            .dir("/w/.vscode")
            .file("/w/.envrc", "");
        let got = resolve_w(&fs, &defaults());
        let mut want = vec![
            pin("/w/.git"),
            ro("/w/.vscode"),
            ro("/w/.envrc"),
            ro("/w/.git/hooks"),
            ro("/w/.git/config"),
            ph_file("/w/.git/config.worktree"),
            pin("/w/.git/info"),
            ro("/w/.git/info/attributes"),
            ph_file("/w/.git/info/exclude"),
            ph_dir("/w/.git/modules"),
            ph_file("/w/.git/commondir"),
            ph_dir("/w/.git/worktrees"),
            // A git directory without them: the first missing component of `refs/replace` and
            // `objects/info/alternates`.
            ph_dir("/w/.git/refs"),
            ph_dir("/w/.git/objects"),
        ];
        want.extend(non_git_placeholders().into_iter().filter(|a| !matches!(a.path().to_str(), Some("/w/.envrc" | "/w/.vscode"))));
        assert_eq!(got, sorted(want));
    }

    /// What hides changes from review: the exclude list and alternates are file placeholders
    /// (empty files on Linux), replace refs a folder one.
    #[test]
    fn review_hiding_git_paths_are_protected() {
        let fs = Fixture::new().dir("/w/.git/info").dir("/w/.git/objects/info").dir("/w/.git/refs/heads");
        let got = resolve_w(&fs, &defaults());
        for want in [ph_file("/w/.git/info/exclude"), ph_file("/w/.git/objects/info/alternates"), ph_dir("/w/.git/refs/replace")] {
            assert!(got.contains(&want), "{want:?} missing from {got:?}");
        }
        let fs = fs.file("/w/.git/info/exclude", "# mine\n").file("/w/.git/objects/info/alternates", "/x\n");
        let got = resolve_w(&fs, &defaults());
        assert!(got.contains(&ro("/w/.git/info/exclude")) && got.contains(&ro("/w/.git/objects/info/alternates")), "{got:?}");
    }

    #[test]
    fn actions_are_sorted_parents_first_and_unique() {
        let fs = Fixture::new().dir("/w/.git/hooks").dir("/w/.git/modules/a/hooks");
        let got = resolve_w(&fs, &defaults());
        for (i, a) in got.iter().enumerate() {
            for b in &got[i + 1..] {
                assert_ne!(a.path(), b.path(), "duplicate");
                assert!(!a.path().starts_with(b.path()), "{a:?} before its parent {b:?}");
            }
        }
    }

    #[test]
    fn modules_star_applies_to_module_git_dirs() {
        let fs = Fixture::new()
            .dir("/w/.git/hooks")
            .file("/w/.git/config", "")
            .dir("/w/.git/modules/a/hooks")
            .file("/w/.git/modules/a/config", "")
            .dir("/w/.git/modules/b")
            .file("/w/.git/modules/README", "");
        let got = resolve_w(&fs, &pats(&[".git/modules/*/config", ".git/modules/*/hooks"]));
        assert_eq!(
            got,
            vec![
                pin("/w/.git"),
                pin("/w/.git/modules"),
                pin("/w/.git/modules/a"),
                ro("/w/.git/modules/a/config"),
                ro("/w/.git/modules/a/hooks"),
                ph_dir("/w/.git/modules/a/modules"),
            ]
        );
    }

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
        for want in module_protection("/w/.git/modules/libs/foo").into_iter().chain(module_protection("/w/.git/modules/libs/foo/modules/vendor/bar")) {
            assert!(got.contains(&want), "missing {want:?} in {got:#?}");
        }
        for dir in ["/w/.git/modules", "/w/.git/modules/libs", "/w/.git/modules/libs/foo", "/w/.git/modules/libs/foo/modules", "/w/.git/modules/libs/foo/modules/vendor", "/w/.git/modules/libs/foo/modules/vendor/bar"] {
            assert!(got.contains(&pin(dir)), "{dir} is not pinned: {got:#?}");
        }
        // `libs` is not a git directory: no placeholders in it; the git-made folders of a
        // module (`objects`, `refs`) are not searched.
        assert!(!got.iter().any(|a| a.path().starts_with("/w/.git/modules/libs/config") || a.path().starts_with("/w/.git/modules/libs/hooks")), "{got:#?}");
        // (Only the fixed way to `objects/info/alternates`, a protected path, is there.)
        let alternates = ["objects", "objects/info", "objects/info/alternates"].map(|p| Path::new("/w/.git/modules/libs/foo").join(p));
        assert!(
            !got.iter().any(|a| a.path().starts_with("/w/.git/modules/libs/foo/objects") && !alternates.iter().any(|p| p == a.path())),
            "{got:#?}"
        );
        assert!(got.contains(&ph_dir("/w/.git/modules/libs/foo/modules/vendor/bar/modules")));
        // Other folders in a module git directory (a rebase in progress) are not pinned.
        // Nor are the folders git or tools make there searched: `logs` (with its `HEAD`),
        // git-annex's thousands of folders.
        let mut fs = fs.dir("/w/.git/modules/libs/foo/rebase-merge/x").dir("/w/.git/modules/empty").file("/w/.git/modules/libs/foo/logs/HEAD", "");
        for i in 0..=MAX_MODULE_DIRS {
            fs = fs.dir(&format!("/w/.git/modules/libs/foo/annex/objects/{i}"));
        }
        let got = resolve_w(&fs, &defaults());
        for skipped in ["rebase-merge", "logs", "annex"] {
            assert!(!got.iter().any(|a| a.path().starts_with(Path::new("/w/.git/modules/libs/foo").join(skipped))), "{skipped}: {got:#?}");
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
        let fs = Fixture::new().dir("/w/.git").file("/w/.git/modules/libs/foo/config", "[core]\n").dir("/w/.git/modules/libs/foo/objects");
        let got = resolve_w(&fs, &defaults());
        assert!(got.contains(&ro("/w/.git/modules/libs/foo/config")), "{got:#?}");
        assert!(got.contains(&ph_dir("/w/.git/modules/libs/foo/hooks")), "{got:#?}");
        // A module named like a folder git makes (`libs/objects`) is still found.
        let fs = module(module(Fixture::new().dir("/w/.git"), "/w/.git/modules/libs", None), "/w/.git/modules/libs/objects", None);
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
        for want in [ro("/w/top/.git"), pin("/w/store/top.git"), pin("/w/vendor"), pin("/w/vendor/x"), pin("/w/vendor/x/.git")]
            .into_iter()
            .chain(module_protection("/w/store/top.git"))
            .chain(module_protection("/w/vendor/x/.git"))
        {
            assert!(got.contains(&want), "missing {want:?} in {got:#?}");
        }
        assert!(!got.iter().any(|a| a.path().starts_with("/w/gone") || a.path().starts_with("/etc")), "{got:#?}");
        // A submodule's .git file naming a git directory that is missing: it stays missing.
        let fs = Fixture::new().dir("/w/.git").file("/w/.gitmodules", "[submodule \"s\"]\n\tpath = s\n").file("/w/s/.git", "gitdir: ../.git/modules/s\n");
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
        let got = resolve_with_git_configs(Path::new("/w"), &defaults(), &fs, &["[core]\n\thooksPath = .githooks\n".into()], &[]).unwrap();
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

    #[test]
    fn missing_parent_of_a_star_gets_a_directory_placeholder() {
        let fs = Fixture::new().dir("/w/.git/hooks");
        let got = resolve_w(&fs, &pats(&[".git/modules/*/config"]));
        assert_eq!(got, vec![pin("/w/.git"), ph_dir("/w/.git/modules")]);
    }

    #[test]
    fn final_star_protects_files_and_directories() {
        let fs = Fixture::new().file("/w/keys/a.pem", "").dir("/w/keys/sub");
        let got = resolve_w(&fs, &pats(&["keys/*"]));
        assert_eq!(got, vec![pin("/w/keys"), ro("/w/keys/a.pem"), ro("/w/keys/sub")]);
    }

    #[test]
    #[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
    fn symlinked_hooks_is_an_error_naming_the_path() {
        let fs = Fixture::new().link("/w/.git/hooks");
        let err = resolve(Path::new("/w"), &defaults(), &fs).unwrap_err();
        assert_eq!(err, ProtectError::Symlink { path: "/w/.git/hooks".into(), pattern: ".git/hooks".into() });
        let msg = err.to_string();
        assert!(msg.starts_with("/w/.git/hooks is a symbolic link"), "{msg}");
        assert!(msg.contains("remove the link or replace it with a real directory or file"), "{msg}");
        assert!(!msg.contains("protected_paths"), "never advise weakening the protection: {msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn symlink_on_the_way_or_under_a_star_is_an_error() {
        let fs = Fixture::new().link("/w/.git");
        assert!(matches!(resolve(Path::new("/w"), &defaults(), &fs), Err(ProtectError::Symlink { path, .. }) if path == Path::new("/w/.git")));
        let fs = Fixture::new().dir("/w/.git").link("/w/.git/modules/x");
        assert!(matches!(resolve(Path::new("/w"), &defaults(), &fs), Err(ProtectError::Symlink { path, .. }) if path == Path::new("/w/.git/modules/x")));
        let fs = Fixture::new().link("/w/.claude");
        assert!(resolve(Path::new("/w"), &defaults(), &fs).is_err());
    }

    #[test]
    fn vscode_as_a_file_is_read_only() {
        let fs = Fixture::new().file("/w/.vscode", "");
        let got = resolve_w(&fs, &pats(&[".vscode", ".vscode/settings.json"]));
        assert_eq!(got, vec![ro("/w/.vscode")]);
    }

    #[test]
    fn a_file_where_a_directory_is_needed_is_read_only() {
        let fs = Fixture::new().file("/w/.git", "not a pointer\n");
        let got = resolve_w(&fs, &pats(&[".git/hooks", ".git/config"]));
        assert_eq!(got, vec![ro("/w/.git")]);
    }

    #[test]
    fn read_only_directory_covers_what_lies_beneath() {
        let fs = Fixture::new().dir("/w/.claude/commands");
        let got = resolve_w(&fs, &pats(&[".claude/commands", ".claude"]));
        assert_eq!(got, vec![ro("/w/.claude")]);
    }

    #[test]
    fn git_file_with_relative_gitdir() {
        // A submodule checked out at /w/sub whose git directory lives in the superproject.
        let fs = Fixture::new()
            .file("/w/sub/.git", "gitdir: ../.git/modules/sub\n")
            .dir("/w/.git/modules/sub/hooks")
            .file("/w/.git/modules/sub/config", "");
        let got = resolve(Path::new("/w/sub"), &pats(&[".git/hooks", ".git/config", ".git/info/attributes", ".vscode"]), &fs).unwrap();
        assert_eq!(
            got,
            vec![
                pin("/w"),
                pin("/w/.git"),
                pin("/w/.git/modules"),
                ro("/w/sub/.git"),
                ph_dir("/w/sub/.vscode"),
                pin("/w/.git/modules/sub"),
                ro("/w/.git/modules/sub/config"),
                ro("/w/.git/modules/sub/hooks"),
                ph_dir("/w/.git/modules/sub/info"),
            ]
        );
    }

    #[test]
    fn git_file_with_absolute_gitdir() {
        let fs = Fixture::new().file("/w/.git", "gitdir: /elsewhere/repo.git\r\n").dir("/elsewhere/repo.git/hooks");
        let got = resolve_w(&fs, &pats(&[".git/hooks", ".git/config"]));
        assert_eq!(
            got,
            vec![
                pin("/elsewhere"),
                pin("/elsewhere/repo.git"),
                ro("/w/.git"),
                ph_file("/elsewhere/repo.git/config"),
                ro("/elsewhere/repo.git/hooks"),
            ]
        );
        // Only what lies in the writable root matters to a backend with that single root.
        let inside: Vec<_> = got.iter().filter(|a| within(a.path(), Path::new("/w"))).cloned().collect();
        assert_eq!(inside, vec![ro("/w/.git")]);
    }

    #[test]
    fn git_file_pointing_nowhere_gets_a_placeholder() {
        let fs = Fixture::new().file("/w/.git", "gitdir: /gone\n");
        let got = resolve_w(&fs, &pats(&[".git/hooks"]));
        assert_eq!(got, vec![ph_dir("/gone"), ro("/w/.git")]);
    }

    #[test]
    fn git_file_with_symlinked_gitdir_is_an_error() {
        let fs = Fixture::new().file("/w/.git", "gitdir: /r/.git\n").link("/r/.git");
        let err = resolve(Path::new("/w"), &pats(&[".git/hooks"]), &fs).unwrap_err();
        assert!(matches!(err, ProtectError::Symlink { ref path, .. } if path == Path::new("/r/.git")), "{err}");
    }

    #[test]
    fn linked_worktree_protects_the_common_dir() {
        let fs = Fixture::new()
            .file("/w/.git", "gitdir: /main/.git/worktrees/w\n")
            .file("/main/.git/worktrees/w/commondir", "../..\n")
            .file("/main/.git/worktrees/w/gitdir", "/w/.git\n")
            .dir("/main/.git/hooks")
            .file("/main/.git/config", "");
        let got = resolve_w(&fs, &pats(&[".git/hooks", ".git/config", ".git/config.worktree"]));
        assert_eq!(
            got,
            vec![
                pin("/main"),
                pin("/main/.git"),
                ro("/w/.git"),
                ro("/main/.git/config"),
                ph_file("/main/.git/config.worktree"),
                ro("/main/.git/hooks"),
                pin("/main/.git/worktrees"),
                pin("/main/.git/worktrees/w"),
                ro("/main/.git/worktrees/w/commondir"),
                ph_file("/main/.git/worktrees/w/config"),
                ph_file("/main/.git/worktrees/w/config.worktree"),
                ph_dir("/main/.git/worktrees/w/hooks"),
            ]
        );
    }

    #[test]
    fn invalid_patterns_are_errors() {
        for (p, why) in [
            ("", "is empty"),
            ("/etc", "must be relative"),
            (".git\\hooks", "separator"),
            ("a//b", "empty component"),
            ("../x", "`..`"),
            ("a/./b", "`.`"),
            ("a*/b", "whole component"),
        ] {
            let err = validate_pattern(p).unwrap_err();
            assert!(err.contains(why), "{p}: {err}");
            assert!(resolve(Path::new("/w"), &pats(&[p]), &Fixture::new()).is_err());
            assert!(!matches(p, Path::new("x"), false));
        }
        for p in DEFAULT_PATTERNS {
            validate_pattern(p).unwrap();
        }
    }

    #[test]
    fn file_like_rule() {
        for p in [".envrc", ".mcp.json", ".git/config", ".git/config.worktree", ".git/info/attributes", ".vscode/settings.json"] {
            assert!(final_component_is_file(p), "{p}");
        }
        for p in [".git/hooks", ".vscode", ".palisade", ".idea", ".git/modules/*", "build.d/", ".git"] {
            assert!(!final_component_is_file(p), "{p}");
        }
    }

    #[test]
    fn matching_is_exact_on_linux() {
        let d = defaults();
        for p in [".git/hooks", ".git/hooks/pre-commit", ".git/config", ".git/modules/x/hooks/post-checkout", ".envrc", ".vscode/settings.json", "./.git/./hooks", "src/../.git/config"] {
            assert!(is_protected(&d, Path::new(p), false), "{p}");
        }
        for p in ["src/main.rs", ".github/x", ".gitignore", ".git", ".git/HEAD", ".git/modules/x", ".GIT/hooks", ".git/config.", ".git\\hooks", "../w/.git/hooks", ".git/configs", "x/.git/hooks"] {
            assert!(!is_protected(&d, Path::new(p), false), "{p}");
        }
    }

    #[test]
    fn matching_on_windows_is_case_insensitive_and_normalized() {
        let d = defaults();
        for p in [
            ".GiT/HOOKS",
            ".GiT\\hooks\\x",
            ".git\\config:stream",
            ".git\\config::$DATA",
            ".git\\CONFIG.",
            ".git\\config. . ",
            ".git::$INDEX_ALLOCATION\\hooks",
            ".VSCode\\settings.json",
            ".git\\modules\\Sub\\Hooks\\pre-commit",
            "src\\..\\.git\\config",
        ] {
            assert!(is_protected(&d, Path::new(p), true), "{p}");
        }
        for p in ["src\\main.rs", ".github\\x", ".gitignore", ".git", ".git\\HEAD", "..\\.git\\hooks"] {
            assert!(!is_protected(&d, Path::new(p), true), "{p}");
        }
    }

    #[test]
    fn windows_component_normalization() {
        assert_eq!(normalize_windows_component("config:stream"), "config");
        assert_eq!(normalize_windows_component("config::$DATA"), "config");
        assert_eq!(normalize_windows_component("CONFIG. "), "config");
        assert_eq!(normalize_windows_component(".Git"), ".git");
        assert_eq!(normalize_windows_component(".."), "");
    }

    #[test]
    fn within_is_lexical_and_component_wise() {
        assert!(within(Path::new("/w/.git/hooks"), Path::new("/w")));
        assert!(within(Path::new("/w"), Path::new("/w")));
        assert!(within(Path::new("/w/./a"), Path::new("/w/")));
        assert!(!within(Path::new("/wx/a"), Path::new("/w")));
        assert!(!within(Path::new("/w/../etc"), Path::new("/w")));
    }

    #[test]
    fn real_fs_resolves_a_temporary_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        std::fs::write(root.join(".git/config"), "").unwrap();
        std::fs::write(root.join(".envrc"), "").unwrap();
        let got = resolve(&root, &pats(&[".git/hooks", ".git/config", ".envrc", ".vscode"]), &RealFs).unwrap();
        assert_eq!(
            got,
            vec![
                Action::ReadOnly(root.join(".envrc")),
                Action::Pin(root.join(".git")),
                Action::Placeholder { path: root.join(".vscode"), dir: true },
                Action::ReadOnly(root.join(".git/config")),
                Action::ReadOnly(root.join(".git/hooks")),
            ]
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join(".git/hooks"), root.join(".claude")).unwrap();
            assert!(matches!(resolve(&root, &pats(&[".claude"]), &RealFs), Err(ProtectError::Symlink { .. })));
        }
    }

    /// A setting past the first 4 KiB of a git config (many remotes, then an `[include]`) is
    /// seen too.
    #[test]
    fn real_fs_reads_a_long_config_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        let mut config = String::new();
        for i in 0..200 {
            config.push_str(&format!("[remote \"r{i}\"]\n\turl = https://example.invalid/{i}.git\n"));
        }
        config.push_str("[include]\n\tpath = ../.gitconfig.local\n");
        assert!(config.len() > 8192);
        std::fs::write(root.join(".git/config"), &config).unwrap();
        assert_eq!(RealFs.read_small(&root.join(".git/config")).unwrap(), config);
        let got = resolve(&root, &pats(&[".git/config"]), &RealFs).unwrap();
        assert!(got.contains(&Action::Placeholder { path: root.join(".gitconfig.local"), dir: false }) || cfg!(windows), "{got:#?}");
    }

    #[test]
    fn git_config_value_reads_the_last_core_setting() {
        let text = "[core]\n\tbare = false\n[remote \"core\"]\n\thooksPath = no\n[Core]\n  HooksPath = \".husky/_\" ; husky\n";
        assert_eq!(git_config_value(text, "core", "hookspath").as_deref(), Some(".husky/_"));
        assert_eq!(git_config_value("[core]\nhooksPath=a # x\nhookspath = b\n", "core", "hookspath").as_deref(), Some("b"));
        assert_eq!(git_config_value("[user]\nhooksPath = a\n", "core", "hookspath"), None);
    }
}
