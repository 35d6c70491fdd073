//! Protected paths: locations inside every writable root that stay read-only even though their
//! parent is writable, whether or not they exist yet.
//!
//! (Skeleton: the resolution against a filesystem view is being written; see `resolve`.)

use std::path::{Path, PathBuf};

/// The default patterns, relative to each writable root. `*` matches exactly one path
/// component. Matching is exact on Linux and case-insensitive on Windows.
pub const DEFAULT_PATTERNS: &[&str] = &[
    ".git/hooks",
    ".git/config",
    ".git/config.worktree",
    ".git/info/attributes",
    ".git/modules/*/config",
    ".git/modules/*/hooks",
    ".palisade",
    ".codex",
    ".agents",
    ".claude",
    ".envrc",
    ".mcp.json",
    ".vscode",
    ".idea",
];

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
