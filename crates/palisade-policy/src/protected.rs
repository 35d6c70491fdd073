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
//! Limits: `resolve` sees the filesystem as it is when it runs; a `*` cannot protect entries
//! created later (a new `.git/modules/<name>` can still be made, but not inside a pinned or
//! read-only path). The root should be a canonical path: indirect git directories are
//! canonicalized through [`FsView::canonicalize`] so that backends can compare them with their
//! (canonical) writable roots.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The default patterns, relative to each writable root. `*` matches exactly one path
/// component. Matching is exact on Linux and case-insensitive on Windows.
pub const DEFAULT_PATTERNS: &[&str] = &[
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
    ".palisade",
    ".codex",
    ".agents",
    ".claude",
    ".envrc",
    ".mcp.json",
    ".vscode",
    ".idea",
    // Other agents' and editors' project folders whose settings start programs on their own
    // (MCP servers in `.cursor/mcp.json`, `.gemini/settings.json`, `.continue/`, opencode's
    // `opencode.json`; Zed's tasks and language servers).
    ".cursor",
    ".gemini",
    ".windsurf",
    ".continue",
    ".zed",
    "opencode.json",
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
    /// The start of a small text file (for `.git` files and `commondir`), if it is one.
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
        "{} is a symbolic link on the way to protected path `{pattern}`, and palisade cannot protect a path through a link: replace the link with a real directory or file, or remove `{pattern}` from protected_paths",
        path.display()
    )]
    Symlink { path: PathBuf, pattern: String },
    #[error("protected path pattern `{pattern}`: {reason}")]
    Pattern { pattern: String, reason: String },
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

/// Protects an indirect git directory (named by a `.git` file or a `commondir` file): pins it
/// and its existing ancestors and applies the git patterns under it.
fn protect_git_dir(
    dir: &Path,
    git: &[GitPattern<'_>],
    fs: &dyn FsView,
    plan: &mut Plan,
) -> Result<Option<PathBuf>, ProtectError> {
    let Some(first) = git.first() else {
        return Ok(None);
    };
    match fs.kind(dir) {
        Kind::Symlink => Err(first.walk.symlink(dir.to_path_buf())),
        Kind::Missing => {
            plan.add(dir.to_path_buf(), Decision::Placeholder { dir: true });
            Ok(None)
        }
        Kind::File => {
            plan.add(dir.to_path_buf(), Decision::ReadOnly);
            Ok(None)
        }
        Kind::Dir => {
            let real = real_path(fs, dir);
            for ancestor in real.ancestors().skip(1) {
                if ancestor.parent().is_some() && fs.kind(ancestor) == Kind::Dir {
                    plan.add(ancestor.to_path_buf(), Decision::Pin);
                }
            }
            plan.add(real.clone(), Decision::Pin);
            for g in git {
                g.walk.walk(&real, &g.rest, fs, plan)?;
            }
            Ok(Some(real))
        }
    }
}

/// If `git_dir` (an existing git directory) has a `commondir` file, makes that file read-only and
/// protects the common directory it names.
fn protect_common_dir(git_dir: &Path, git: &[GitPattern<'_>], fs: &dyn FsView, plan: &mut Plan) -> Result<(), ProtectError> {
    let file = git_dir.join("commondir");
    match fs.kind(&file) {
        Kind::Missing => Ok(()),
        Kind::Symlink => Err(match git.first() {
            Some(g) => g.walk.symlink(file),
            None => ProtectError::Symlink { path: file, pattern: ".git/*".into() },
        }),
        Kind::Dir | Kind::File => {
            plan.add(file.clone(), Decision::ReadOnly);
            if let Some(common) = pointer(fs, &file, "", git_dir) {
                protect_git_dir(&common, git, fs, plan)?;
            }
            Ok(())
        }
    }
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
        let walk = Walk { pattern, file_like: final_component_is_file(pattern) };
        if comps.len() > 1 && comps[0] == ".git" {
            git.push(GitPattern { walk, rest: comps[1..].to_vec() });
            if git_file_target.is_some() {
                continue;
            }
            let g = git.last().expect("just pushed");
            g.walk.walk(root, &comps, fs, &mut plan)?;
        } else {
            walk.walk(root, &comps, fs, &mut plan)?;
        }
    }

    if git.is_empty() {
        return Ok(plan.into_actions());
    }
    let mut git_dirs = Vec::new();
    match (dot_git_kind, git_file_target) {
        (Kind::File, Some(target)) => {
            plan.add(dot_git, Decision::ReadOnly);
            if let Some(real) = protect_git_dir(&target, &git, fs, &mut plan)? {
                protect_common_dir(&real, &git, fs, &mut plan)?;
                git_dirs.push(real);
            }
        }
        (Kind::Dir, _) => {
            protect_common_dir(&dot_git, &git, fs, &mut plan)?;
            git_dirs.push(dot_git);
        }
        _ => {}
    }
    for dir in extra_git_dirs.iter().map(|d| normalize_lexically(d)) {
        if dir.starts_with(root) && dir != root && !git_dirs.contains(&dir) {
            if let Some(real) = protect_git_dir(&dir, &git, fs, &mut plan)? {
                protect_common_dir(&real, &git, fs, &mut plan)?;
                git_dirs.push(real);
            }
        }
    }
    // A hooks folder the (read-only) git config names elsewhere, e.g. husky's
    // `core.hooksPath = .husky/_`: inside the root it would be as writable as any file there,
    // and git runs what it holds on the host's next commit. It gets what `.git/hooks` gets.
    for dir in git_dirs.clone() {
        if let Some(common) = pointer(fs, &dir.join("commondir"), "", &dir) {
            git_dirs.push(common);
        }
    }
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
    // `core.hooksPath` there. Existing ones are made read-only (git fails on a placeholder
    // folder where it expects a file, so a missing one is left alone).
    for dir in &git_dirs {
        let Some(text) = fs.read_small(&dir.join("config")) else { continue };
        for inc in git_include_paths(&text) {
            if inc.starts_with('~') {
                continue;
            }
            let path = normalize_lexically(&dir.join(&inc));
            if path.starts_with(root) && path != root {
                match fs.kind(&path) {
                    Kind::File => plan.add(path, Decision::ReadOnly),
                    Kind::Symlink => return Err(ProtectError::Symlink { path, pattern: "include.path".into() }),
                    _ => {}
                }
            }
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

/// Every `path` value of `[include]` and `[includeIf "..."]` sections in a git config's text.
fn git_include_paths(text: &str) -> Vec<String> {
    let mut in_include = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split([']', ' ', '"']).next().unwrap_or("");
            in_include = name.eq_ignore_ascii_case("include") || name.eq_ignore_ascii_case("includeif");
            continue;
        }
        if !in_include {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim().eq_ignore_ascii_case("path") {
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
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
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
    fn non_git_placeholders() -> Vec<Action> {
        vec![
            ph_file("/w/.envrc"),
            ph_file("/w/.mcp.json"),
            ph_file("/w/HEAD"),
            ph_dir("/w/.agents"),
            ph_dir("/w/.claude"),
            ph_dir("/w/.codex"),
            ph_dir("/w/.idea"),
            ph_dir("/w/.palisade"),
            ph_dir("/w/.vscode"),
            ph_dir("/w/.cursor"),
            ph_dir("/w/.gemini"),
            ph_dir("/w/.windsurf"),
            ph_dir("/w/.continue"),
            ph_dir("/w/.zed"),
            ph_file("/w/opencode.json"),
        ]
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
    fn modules_star_expands_to_existing_submodules() {
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
                pin("/w/.git/modules/b"),
                ro("/w/.git/modules/a/config"),
                ro("/w/.git/modules/a/hooks"),
                ph_file("/w/.git/modules/b/config"),
                ph_dir("/w/.git/modules/b/hooks"),
            ]
        );
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
        assert!(msg.contains("replace the link with a real directory or file, or remove `.git/hooks`"), "{msg}");
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

    #[test]
    fn git_config_value_reads_the_last_core_setting() {
        let text = "[core]\n\tbare = false\n[remote \"core\"]\n\thooksPath = no\n[Core]\n  HooksPath = \".husky/_\" ; husky\n";
        assert_eq!(git_config_value(text, "core", "hookspath").as_deref(), Some(".husky/_"));
        assert_eq!(git_config_value("[core]\nhooksPath=a # x\nhookspath = b\n", "core", "hookspath").as_deref(), Some("b"));
        assert_eq!(git_config_value("[user]\nhooksPath = a\n", "core", "hookspath"), None);
    }
}
