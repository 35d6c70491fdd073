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
//!
//! The files: `pattern.rs` (pattern syntax and matching), `plan.rs` (the actions decided so far
//! and the walk of one pattern), `git_dirs.rs` (git directories and submodules), `git_text.rs`
//! (values read from git configuration files), `resolve.rs` ([`resolve`] itself) and
//! `real_fs.rs` ([`RealFs`]).

mod git_dirs;
mod git_text;
mod pattern;
mod plan;
mod real_fs;
mod resolve;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use pattern::{
    final_component_is_file, is_protected, matches, normalize_lexically, normalize_windows_component, validate_pattern,
    within,
};
pub use real_fs::RealFs;
pub use resolve::{resolve, resolve_with_git_configs};

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
    ".claude",       // Claude Code: settings.json hooks and permissions, commands, agents
    ".mcp.json",     // Claude Code (and others): project MCP servers, started as programs
    ".codex",        // Codex: project config.toml (MCP servers, sandbox settings)
    ".agents",       // shared agent skills and settings
    ".cursor",       // Cursor: mcp.json, hooks.json
    ".gemini",       // Gemini CLI: settings.json (MCP servers, hooks, tool settings)
    ".windsurf",     // Windsurf: workflows, MCP
    ".continue",     // Continue: config (MCP servers, context providers)
    "opencode.json", // opencode: MCP servers, plugins, commands
    "opencode.jsonc",
    ".opencode",       // opencode: plugins (JavaScript loaded at start-up), commands, agents
    ".aider.conf.yml", // aider: `lint-cmd` / `test-cmd`, run automatically after edits
    ".kiro",           // Kiro: agent hooks (commands run on file events), MCP settings
    ".amazonq",        // Amazon Q Developer: workspace MCP servers (mcp.json), rules
    ".roo",            // Roo Code: project MCP servers (mcp.json), rules
    ".clinerules",     // Cline: rules and hooks (a file or a folder)
    ".junie",          // JetBrains Junie: project MCP servers, guidelines
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

/// How many directory levels below a `.git/modules` folder (nested `modules` included) are
/// searched for submodule git directories, and how many directories (and `.gitmodules` entries)
/// at most: past either bound, resolution refuses rather than leave some unprotected.
pub const MAX_MODULE_DEPTH: usize = 16;
pub const MAX_MODULE_DIRS: usize = 1024;
/// How much of a git config or `.gitmodules` [`RealFs`] reads (more is refused, see
/// [`ProtectError::TooMany`]).
pub const MAX_SMALL_FILE: usize = 1 << 20;
