//! The host-side git check after each command.
//!
//! Inside the sandbox most of a writable root's `.git` is writable; what matters is what the
//! HOST's git does later with what the command left there:
//!
//! * A symbolic link in a git directory (`.git/COMMIT_EDITMSG -> ~/.bashrc`, `FETCH_HEAD`,
//!   `logs/HEAD`) makes the host's git write through it, outside the workspace. Git itself never
//!   creates symbolic links in a git directory, so every one the command made (ctime since its
//!   start) is removed (the link, never its target) and reported; an older one is reported.
//! * A nested repository registered as a gitlink in the index is entered by the host's plain
//!   `git status`, which runs its `core.fsmonitor`. A gitlink whose git directory is new to the
//!   index or changed during the command, and whose config holds a key git does not write
//!   itself, or which has hooks or a `commondir`, is quarantined: `P/.git` is renamed to
//!   `P/.git.palisade-quarantine` (nothing is deleted) and reported.
//! * Changes that hide work from review (skip-worktree / assume-valid entries, replace refs,
//!   `info/exclude`, `info/grafts`, `objects/info/alternates`) are reported.
//!
//! Cost per command: one open and stat of each root's index before the command; after it a walk
//! of each git directory without the loose objects (names and types from `getdents`, no stat per
//! entry), the index parsed only when it changed (or, for a library sandbox, once), and a few
//! stats per gitlink. Everything works by handle (`openat` with `O_NOFOLLOW` from the parent's
//! descriptor), so links the command planted are never followed.

use super::dirfd_raw::{self as dirfd, coarse_now};
use palisade_policy::git_config_keys;
use palisade_policy::git_index::{self, ObjectFormat};
use std::collections::{BTreeSet, HashMap};
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

mod hiding;
mod index;
mod links;

use hiding::report_hiding_files;
use index::check_index;
use links::remove_symlinks;

/// Bounds of the symbolic-link walk of one git directory (a run past them is reported).
const MAX_WALK_ENTRIES: usize = 200_000;
const MAX_WALK_DEPTH: usize = 24;
/// An index larger than this is not read (reported instead).
const MAX_INDEX_BYTES: u64 = 256 << 20;
/// The buffer the index is read through.
const READ_CHUNK: usize = 256 << 10;
/// How many paths a notice names before it says "and N more".
const NAMED_PATHS: usize = 3;
/// What a quarantined `.git` is renamed to (with a number appended if that exists).
pub const QUARANTINE_NAME: &str = ".git.palisade-quarantine";

/// (dev, ino, size, mtime, ctime) of a file: equal stamps mean unchanged.
type Stamp = (u64, u64, i64, i64, i64, i64, i64);

fn stamp(st: &libc::stat) -> Stamp {
    (st.st_dev, st.st_ino, st.st_size, st.st_mtime, st.st_mtime_nsec, st.st_ctime, st.st_ctime_nsec)
}

fn c(name: &str) -> CString {
    CString::new(name).expect("a constant name without NUL")
}

fn cpath(p: &Path) -> Option<CString> {
    CString::new(p.as_os_str().as_bytes()).ok()
}

/// What the index said, kept between commands of a library sandbox (keyed by its stamp), so an
/// unchanged index is not parsed again.
#[derive(Clone, Debug, Default)]
struct IndexSummary {
    gitlinks: BTreeSet<Vec<u8>>,
    hidden: BTreeSet<Vec<u8>>,
}

/// Per-sandbox memory of parsed indexes.
#[derive(Default)]
pub struct Memory {
    indexes: Mutex<HashMap<PathBuf, (Stamp, Arc<IndexSummary>)>>,
}

/// What was recorded just before a command started.
pub struct Before {
    start: (i64, i64),
    roots: Vec<RootBefore>,
    workspace: PathBuf,
    memory: Arc<Memory>,
    /// Palisade's own placeholders (absolute paths): made for this sandbox, so never evidence
    /// of what the command did (a module's `commondir` placeholder is new, for one).
    placeholders: BTreeSet<PathBuf>,
}

struct RootBefore {
    root: PathBuf,
    /// The index as it was: kept open, since git replaces it by renaming a new file over it.
    index: Option<(File, Stamp)>,
}

/// Records, before the command starts, when it started and each root's index.
pub fn before_command(
    write_roots: &[PathBuf],
    workspace: &Path,
    memory: Arc<Memory>,
    placeholders: BTreeSet<PathBuf>,
) -> Before {
    let start = coarse_now();
    let roots = write_roots
        .iter()
        .map(|root| {
            let index = git_dir_of(root, write_roots).and_then(|(gd, _)| {
                let fd = dirfd::open_file_at(gd.as_raw_fd(), &c("index")).ok()?;
                let st = dirfd::stat_at(fd.as_raw_fd(), &c("")).ok()?;
                Some((File::from(fd), stamp(&st)))
            });
            RootBefore { root: root.clone(), index }
        })
        .collect();
    Before { start, roots, workspace: workspace.to_path_buf(), memory, placeholders }
}

/// The check after the command ended: fixes what it can, and returns one line per finding.
pub fn after_command(before: Before) -> Vec<String> {
    let mut notices = Vec::new();
    let all_roots: Vec<PathBuf> = before.roots.iter().map(|r| r.root.clone()).collect();
    let mut walked = Vec::new();
    for rb in &before.roots {
        check_root(&before, rb, &all_roots, &mut walked, &mut notices);
    }
    notices
}

/// How a path is named in notices: relative to the workspace when inside it.
fn shown(ws: &Path, p: &Path) -> String {
    match p.strip_prefix(ws) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => p.display().to_string(),
    }
}

/// The git directory of a root (its `.git` folder, or the folder a `.git` file names when that
/// lies in a writable root), opened, with its path.
fn git_dir_of(root: &Path, write_roots: &[PathBuf]) -> Option<(OwnedFd, PathBuf)> {
    let rootfd = dirfd::open_dir(&cpath(root)?).ok()?;
    match dirfd::open_dir_at(rootfd.as_raw_fd(), &c(".git")) {
        Ok(fd) => Some((fd, root.join(".git"))),
        Err(_) => {
            let target = read_gitfile(rootfd.as_raw_fd(), &c(".git"), root)?;
            let target = target.canonicalize().ok()?;
            if !write_roots.iter().any(|r| target.starts_with(r)) {
                return None;
            }
            Some((dirfd::open_dir(&cpath(&target)?).ok()?, target))
        }
    }
}

/// The folder a `.git` file (`gitdir: <path>`) names, relative to `base` if relative.
fn read_gitfile(dir: RawFd, name: &CStr, base: &Path) -> Option<PathBuf> {
    let text = read_small(dir, name, 4096)?;
    let text = String::from_utf8(text).ok()?;
    let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
    if target.is_empty() {
        return None;
    }
    Some(base.join(target))
}

/// A regular file's first `limit` bytes (`None` if it is not a regular file).
fn read_small(dir: RawFd, name: &CStr, limit: u64) -> Option<Vec<u8>> {
    let fd = dirfd::open_file_at(dir, name).ok()?;
    let st = dirfd::stat_at(fd.as_raw_fd(), &c("")).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let mut buf = Vec::new();
    File::from(fd).take(limit).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// The commit-graph is a cache of parents that git trusts without checking (only `git
/// commit-graph verify` reads its checksum): one the command wrote can drop parents, so that
/// the host's `git log` shows a short history while `git push` sends the whole one. Git works
/// without it and writes it again at its next `gc`, so one written during the command (the
/// single file, or the files of a split chain) is removed. Quietly: an ordinary `git gc` inside
/// writes one too, and a line after every gc would teach users to ignore the warnings.
fn remove_written_commit_graphs(gd: RawFd, start: (i64, i64)) {
    let Ok(info) = dirfd::open_dir_at(gd, &c("objects")).and_then(|o| dirfd::open_dir_at(o.as_raw_fd(), &c("info")))
    else {
        return;
    };
    let graph = c("commit-graph");
    if dirfd::stat_at(info.as_raw_fd(), &graph).is_ok_and(|st| changed_since(&st, start)) {
        let _ = dirfd::unlink_at(info.as_raw_fd(), &graph);
    }
    if let Ok(chain) = dirfd::open_dir_at(info.as_raw_fd(), &c("commit-graphs")) {
        for (name, _) in dirfd::entries(chain.as_raw_fd()).unwrap_or_default() {
            let written = dirfd::stat_at(chain.as_raw_fd(), &name)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && changed_since(&st, start));
            if written {
                let _ = dirfd::unlink_at(chain.as_raw_fd(), &name);
            }
        }
    }
}

fn changed_since(st: &libc::stat, start: (i64, i64)) -> bool {
    (st.st_ctime, st.st_ctime_nsec) >= start
}

fn check_root(
    before: &Before,
    rb: &RootBefore,
    all_roots: &[PathBuf],
    walked: &mut Vec<PathBuf>,
    notices: &mut Vec<String>,
) {
    let Some((gd, gd_path)) = git_dir_of(&rb.root, all_roots) else { return };
    let ws = &before.workspace;
    walk_once(&gd, &gd_path, ws, before.start, walked, notices);
    // A linked worktree's git directory names the main one (`commondir`), where the host's git
    // writes refs, logs and packed-refs: walked too when it lies in a writable root.
    let common = read_small(gd.as_raw_fd(), &c("commondir"), 4096)
        .and_then(|t| String::from_utf8(t).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && t != ".")
        .and_then(|t| gd_path.join(t).canonicalize().ok());
    let common_fd = common.as_ref().and_then(|p| dirfd::open_dir(&cpath(p)?).ok());
    if let (Some(common), Some(fd)) = (&common, &common_fd) {
        if all_roots.iter().any(|r| common.starts_with(r)) {
            walk_once(fd, common, ws, before.start, walked, notices);
        }
    }
    report_hiding_files(&gd, &gd_path, ws, before.start, notices);
    report_stale_index_lock(&gd, &gd_path, ws, before.start, notices);
    // The repository's config (for its object format) is in the common directory.
    let config_dir = common_fd.as_ref().unwrap_or(&gd).as_raw_fd();
    check_index(before, rb, &gd, &gd_path, config_dir, notices);
}

/// An `index.lock` made during the command and still there when every process of the sandbox
/// has ended: a git command inside was killed mid-operation (a timeout, palisade itself killed),
/// and every later git command would fail with "Unable to create ... index.lock: File exists".
/// Reported, not removed: a git of the user's own running at the same time may hold it.
fn report_stale_index_lock(gd: &OwnedFd, gd_path: &Path, ws: &Path, start: (i64, i64), notices: &mut Vec<String>) {
    if dirfd::stat_at(gd.as_raw_fd(), &c("index.lock")).is_ok_and(|st| changed_since(&st, start)) {
        let lock = shown(ws, &gd_path.join("index.lock"));
        notices.push(format!(
            "the command left {lock} behind (a git command inside was ended mid-operation): if no git of yours is running, remove it, or git will refuse to work here"
        ));
    }
}

/// Walks a git directory unless it (or a folder holding it) was walked already.
fn walk_once(
    gd: &OwnedFd,
    gd_path: &Path,
    ws: &Path,
    start: (i64, i64),
    walked: &mut Vec<PathBuf>,
    notices: &mut Vec<String>,
) {
    let key = gd_path.canonicalize().unwrap_or_else(|_| gd_path.to_path_buf());
    if walked.iter().any(|w| key.starts_with(w)) {
        return;
    }
    remove_symlinks(gd, gd_path, ws, start, notices);
    walked.push(key);
}
