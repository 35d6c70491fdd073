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
pub fn before_command(write_roots: &[PathBuf], workspace: &Path, memory: Arc<Memory>, placeholders: BTreeSet<PathBuf>) -> Before {
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
    let Ok(info) = dirfd::open_dir_at(gd, &c("objects")).and_then(|o| dirfd::open_dir_at(o.as_raw_fd(), &c("info"))) else { return };
    let graph = c("commit-graph");
    if dirfd::stat_at(info.as_raw_fd(), &graph).is_ok_and(|st| changed_since(&st, start)) {
        let _ = dirfd::unlink_at(info.as_raw_fd(), &graph);
    }
    if let Ok(chain) = dirfd::open_dir_at(info.as_raw_fd(), &c("commit-graphs")) {
        for (name, _) in dirfd::entries(chain.as_raw_fd()).unwrap_or_default() {
            let written = dirfd::stat_at(chain.as_raw_fd(), &name).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && changed_since(&st, start));
            if written {
                let _ = dirfd::unlink_at(chain.as_raw_fd(), &name);
            }
        }
    }
}

fn changed_since(st: &libc::stat, start: (i64, i64)) -> bool {
    (st.st_ctime, st.st_ctime_nsec) >= start
}

fn check_root(before: &Before, rb: &RootBefore, all_roots: &[PathBuf], walked: &mut Vec<PathBuf>, notices: &mut Vec<String>) {
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
fn walk_once(gd: &OwnedFd, gd_path: &Path, ws: &Path, start: (i64, i64), walked: &mut Vec<PathBuf>, notices: &mut Vec<String>) {
    let key = gd_path.canonicalize().unwrap_or_else(|_| gd_path.to_path_buf());
    if walked.iter().any(|w| key.starts_with(w)) {
        return;
    }
    remove_symlinks(gd, gd_path, ws, start, notices);
    walked.push(key);
}

// ---------------------------------------------------------------------------------------------
// Symbolic links in git directories

struct Walk<'a> {
    entries: usize,
    bound_hit: bool,
    start: (i64, i64),
    ws: &'a Path,
    notices: &'a mut Vec<String>,
}

fn remove_symlinks(gd: &OwnedFd, gd_path: &Path, ws: &Path, start: (i64, i64), notices: &mut Vec<String>) {
    let mut w = Walk { entries: 0, bound_hit: false, start, ws, notices };
    walk(&mut w, gd.as_raw_fd(), gd_path, 0, false);
    if w.bound_hit {
        w.notices.push(format!(
            "stopped looking for symbolic links in {} after {MAX_WALK_ENTRIES} entries or {MAX_WALK_DEPTH} levels: \
             check it yourself (`find {} -type l`) before running git there",
            shown(ws, gd_path),
            gd_path.display()
        ));
    }
}

fn walk(w: &mut Walk<'_>, dir: RawFd, path: &Path, depth: usize, in_objects: bool) {
    let Ok(entries) = dirfd::entries(dir) else { return };
    for (name, mut kind) in entries {
        w.entries += 1;
        if w.entries > MAX_WALK_ENTRIES {
            w.bound_hit = true;
            return;
        }
        if kind == libc::DT_UNKNOWN {
            kind = match dirfd::stat_at(dir, &name).map(|st| st.st_mode & libc::S_IFMT) {
                Ok(libc::S_IFLNK) => libc::DT_LNK,
                Ok(libc::S_IFDIR) => libc::DT_DIR,
                Ok(libc::S_IFIFO) => libc::DT_FIFO,
                Ok(libc::S_IFSOCK) => libc::DT_SOCK,
                _ => libc::DT_REG,
            };
        }
        let child = path.join(OsStr::from_bytes(name.to_bytes()));
        if matches!(kind, libc::DT_LNK | libc::DT_FIFO | libc::DT_SOCK) {
            remove_special(w, dir, &name, &child, kind);
            continue;
        }
        if kind != libc::DT_DIR {
            continue;
        }
        // Loose objects (objects/xx/, lfs/objects/xx/...) are many and only ever read: their
        // folders are checked as entries, their contents are not walked.
        if in_objects && name.to_bytes() != b"info" && name.to_bytes() != b"pack" {
            continue;
        }
        if depth + 1 > MAX_WALK_DEPTH {
            w.bound_hit = true;
            continue;
        }
        if let Ok(sub) = dirfd::open_dir_at(dir, &name) {
            walk(w, sub.as_raw_fd(), &child, depth + 1, name.to_bytes() == b"objects");
        }
    }
}

/// A symbolic link (git writes through it), FIFO or socket (git blocks on it) in a git
/// directory: removed if the command made it, reported either way. Git never makes them, except
/// a symbolic `HEAD`-style ref (`core.preferSymlinkRefs`), which points into the git directory
/// itself and is left alone.
fn remove_special(w: &mut Walk<'_>, dir: RawFd, name: &CStr, child: &Path, kind: u8) {
    let (what, arrow) = match kind {
        libc::DT_LNK => {
            let target = dirfd::read_link_at(dir, name).map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_else(|_| "?".into());
            let own_symref = target.starts_with("refs/") && !target.split('/').any(|c| c == ".." || c == "." || c.is_empty());
            if own_symref {
                return;
            }
            ("symbolic link", format!(" -> {target}"))
        }
        libc::DT_FIFO => ("FIFO", String::new()),
        _ => ("socket", String::new()),
    };
    let shown_c = shown(w.ws, child);
    let why = if kind == libc::DT_LNK { "git would have written through it" } else { "git would block on it" };
    // Only what this command made is removed: one that was there before it started (the
    // user's own, or one made while no check ran) is reported at every command.
    let made_now = dirfd::stat_at(dir, name).map_or(true, |st| changed_since(&st, w.start));
    if !made_now {
        w.notices.push(format!(
            "there is a {what} in .git: {shown_c}{arrow} ({why}): remove it unless you made it on purpose"
        ));
        return;
    }
    match dirfd::unlink_at(dir, name) {
        Ok(()) => w.notices.push(format!("removed a {what} the command left in .git: {shown_c}{arrow} ({why})")),
        Err(e) => w.notices.push(format!(
            "could not remove the {what} {shown_c}{arrow} the command left in .git ({}; {why}): remove it before running git there",
            std::io::Error::from_raw_os_error(e)
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Files that hide changes from review

fn report_hiding_files(gd: &OwnedFd, gd_path: &Path, ws: &Path, start: (i64, i64), notices: &mut Vec<String>) {
    let fd = gd.as_raw_fd();
    // An empty file says nothing (and is what Palisade's placeholder for a missing one is).
    let changed = |parent: &str, name: &str| -> bool {
        let Ok(p) = dirfd::open_dir_at(fd, &c(parent)) else { return false };
        dirfd::stat_at(p.as_raw_fd(), &c(name)).is_ok_and(|st| st.st_size > 0 && changed_since(&st, start))
    };
    // Grafts rewrite history as git log shows it (git push sends the real one). Git never
    // writes the file itself, and a read-only placeholder would make git warn at every command,
    // so one the command made or changed is set aside instead (renamed, not deleted).
    if let Ok(info) = dirfd::open_dir_at(fd, &c("info")) {
        let grafts = c("grafts");
        if dirfd::stat_at(info.as_raw_fd(), &grafts).is_ok_and(|st| changed_since(&st, start)) {
            let shown_g = shown(ws, &gd_path.join("info/grafts"));
            let to = c("grafts.palisade-quarantine");
            match dirfd::rename_noreplace_at(info.as_raw_fd(), &grafts, &to) {
                Ok(()) => notices.push(format!(
                    "the command wrote {shown_g}, which makes git log show a different history than git push sends: \
                     renamed it to {shown_g}.palisade-quarantine (nothing deleted); review it"
                )),
                Err(e) => notices.push(format!(
                    "the command wrote {shown_g}, which makes git log show a different history than git push sends, and it \
                     could not be set aside ({}): remove it before you trust git log",
                    std::io::Error::from_raw_os_error(e)
                )),
            }
        }
    }
    for (parent, name, what) in [
        ("info", "exclude", "makes git status ignore files"),
        ("objects/info", "alternates", "makes git read objects from another repository"),
        // A shallow boundary git log stops at (`git fetch --depth` writes it too, so it stays
        // writable): commits below it disappear from the history you review.
        (".", "shallow", "makes git log stop at the commits it names, hiding older history"),
    ] {
        if changed(parent, name) {
            notices.push(format!(
                "the command changed {}: it {what}; review it",
                shown(ws, &if parent == "." { gd_path.join(name) } else { gd_path.join(parent).join(name) })
            ));
        }
    }
    remove_written_commit_graphs(fd, start);
    // Replace refs: loose (refs/replace/*) or packed.
    if let Ok(refs) = dirfd::open_dir_at(fd, &c("refs")) {
        if let Ok(replace) = dirfd::open_dir_at(refs.as_raw_fd(), &c("replace")) {
            let any = dirfd::entries(replace.as_raw_fd()).is_ok_and(|e| !e.is_empty());
            let st = dirfd::stat_at(replace.as_raw_fd(), &c(""));
            if any && st.is_ok_and(|st| changed_since(&st, start)) {
                notices.push(format!(
                    "the command added replace refs ({}): git log shows the replacement while git push sends the original; \
                     review with `git replace -l`",
                    shown(ws, &gd_path.join("refs/replace"))
                ));
            }
        }
    }
    if dirfd::stat_at(fd, &c("packed-refs")).is_ok_and(|st| changed_since(&st, start)) {
        let text = read_small(fd, &c("packed-refs"), 64 << 20).unwrap_or_default();
        if text.windows(14).any(|w| w == b" refs/replace/") {
            notices.push(format!(
                "{} names replace refs: git log shows the replacement while git push sends the original; review with `git replace -l`",
                shown(ws, &gd_path.join("packed-refs"))
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The index: gitlinks and hidden entries

fn object_format(gd: RawFd) -> Result<ObjectFormat, String> {
    let text = read_small(gd, &c("config"), 1 << 20).unwrap_or_default();
    let keys = git_config_keys::parse(&text).map_err(|e| format!("its config cannot be read ({e})"))?;
    let v = git_config_keys::value(&keys, "extensions", "objectformat");
    ObjectFormat::from_config(v.as_deref()).ok_or_else(|| format!("unknown extensions.objectformat {v:?}"))
}

/// Reads the index through a small buffer (a large index is never held whole: touching
/// megabytes of fresh memory would cost more than parsing them). A split index (`git
/// update-index --split-index`) keeps most entries in `sharedindex.<id>` next to it (`gd`):
/// those are read too.
fn summarize(file: &File, size: i64, format: ObjectFormat, gd: RawFd) -> Result<IndexSummary, String> {
    let mut s = IndexSummary::default();
    let shared = read_entries(file, size, format, &mut s)?;
    if let Some(name) = shared {
        let fd = dirfd::open_file_at(gd, &c(&name)).map_err(|e| format!("its shared index {name}: {}", std::io::Error::from_raw_os_error(e)))?;
        let st = dirfd::stat_at(fd.as_raw_fd(), &c("")).map_err(|e| std::io::Error::from_raw_os_error(e).to_string())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(format!("its shared index {name} is not a regular file"));
        }
        if read_entries(&File::from(fd), st.st_size, format, &mut s)?.is_some() {
            return Err(format!("its shared index {name} is itself split"));
        }
    }
    Ok(s)
}

/// Adds one index file's gitlinks and hidden entries to `s`; returns the shared index a split
/// index names.
fn read_entries(file: &File, size: i64, format: ObjectFormat, s: &mut IndexSummary) -> Result<Option<String>, String> {
    use std::os::unix::fs::FileExt;
    if size < 0 || size as u64 > MAX_INDEX_BYTES {
        return Err(format!("it is larger than {} MiB", MAX_INDEX_BYTES >> 20));
    }
    let mut v = git_index::Visitor::new(format);
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut filled, mut offset) = (0usize, 0u64);
    let mut replaced_by_gitlink = false;
    while !v.done() {
        if filled == buf.len() {
            // One entry larger than the buffer (a very long path): grow, within the bound.
            if buf.len() as u64 >= MAX_INDEX_BYTES {
                return Err("an index entry is too large".into());
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read_at(&mut buf[filled..], offset).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        filled += n;
        let used = v.feed(&buf[..filled], |e| {
            if e.path.is_empty() {
                // A split index's replacement of a shared entry: its path is in the shared
                // index, by position (not worth decoding: git never replaces an entry by a
                // gitlink this way in ordinary work; `git add` of a new path adds a named entry).
                replaced_by_gitlink |= e.is_gitlink();
                return;
            }
            if e.is_gitlink() {
                s.gitlinks.insert(e.path.to_vec());
            }
            if e.skip_worktree || e.assume_valid {
                s.hidden.insert(e.path.to_vec());
            }
        })?;
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
    v.finish()?;
    let entries_end = offset - filled as u64;
    let exts = git_index::extensions(size as u64, entries_end, format, |at, b| file.read_exact_at(b, at).is_ok())?;
    let mut shared = None;
    for (sig, at, len) in exts {
        if &sig == b"link" {
            let mut data = vec![0u8; (len as usize).min(4096)];
            file.read_exact_at(&mut data, at).map_err(|e| e.to_string())?;
            shared = Some(git_index::split_index_link(&data, format).ok_or("its split-index link is cut short")?);
        }
    }
    if replaced_by_gitlink {
        return Err("it is a split index that turns an entry into a submodule without naming its path; make it whole with \
                    `git update-index --no-split-index`"
            .into());
    }
    Ok(shared)
}

fn name_paths<'a>(paths: impl Iterator<Item = &'a Vec<u8>>) -> String {
    let all: Vec<String> = paths.map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let mut s = all.iter().take(NAMED_PATHS).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > NAMED_PATHS {
        s.push_str(&format!(" and {} more", all.len() - NAMED_PATHS));
    }
    s
}

fn check_index(before: &Before, rb: &RootBefore, gd: &OwnedFd, gd_path: &Path, config_dir: RawFd, notices: &mut Vec<String>) {
    let ws = &before.workspace;
    let Ok(fd) = dirfd::open_file_at(gd.as_raw_fd(), &c("index")) else { return };
    let Ok(st) = dirfd::stat_at(fd.as_raw_fd(), &c("")) else { return };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return;
    }
    let now = stamp(&st);
    let changed = rb.index.as_ref().is_none_or(|(_, s)| *s != now);
    let cached = before.memory.indexes.lock().unwrap_or_else(|e| e.into_inner()).get(&rb.root).cloned();
    let after = match cached {
        Some((s, summary)) if s == now => summary,
        _ => {
            let parsed = object_format(config_dir).and_then(|f| summarize(&File::from(fd), st.st_size, f, gd.as_raw_fd()).map(|s| (s, f)));
            match parsed {
                Ok((s, _)) => {
                    let s = Arc::new(s);
                    before.memory.indexes.lock().unwrap_or_else(|e| e.into_inner()).insert(rb.root.clone(), (now, s.clone()));
                    s
                }
                Err(e) => {
                    notices.push(format!(
                        "could not read {} ({e}), so its submodules were not checked: do not run git there before \
                         you have looked at it (`git -c core.fsmonitor= -c submodule.recurse=false status --ignore-submodules=all`)",
                        shown(ws, &gd_path.join("index"))
                    ));
                    return;
                }
            }
        }
    };
    // The index as it was before the command, when it can be trusted: git replaces the index by
    // renaming (the old inode, held open, is intact); one rewritten in place is not known.
    let before_summary: Option<IndexSummary> = if !changed {
        Some((*after).clone())
    } else {
        rb.index.as_ref().and_then(|(f, s)| {
            let st_old = dirfd::stat_at(f.as_raw_fd(), &c("")).ok()?;
            // Unlinking the old index (git renames the new one over it) changes its ctime, so
            // the ctime is compared only while it is still linked. (A command that rewrote it in
            // place and reset its mtime before replacing it would go unnoticed here; its new
            // gitlinks are then checked only if their git directory changed.)
            let same = (st_old.st_dev, st_old.st_ino, st_old.st_size, st_old.st_mtime, st_old.st_mtime_nsec) == (s.0, s.1, s.2, s.3, s.4);
            let ctime_ok = st_old.st_nlink == 0 || (st_old.st_ctime, st_old.st_ctime_nsec) == (s.5, s.6);
            if !same || !ctime_ok || st_old.st_ino == st.st_ino {
                return None;
            }
            let format = object_format(config_dir).ok()?;
            summarize(f, st_old.st_size, format, gd.as_raw_fd()).ok()
        })
    };
    if changed {
        let newly_hidden: Vec<&Vec<u8>> =
            after.hidden.iter().filter(|p| before_summary.as_ref().is_none_or(|b| !b.hidden.contains(*p))).collect();
        if !newly_hidden.is_empty() {
            notices.push(format!(
                "the command marked {} index entr{} skip-worktree or assume-unchanged ({}): git status and git diff no longer \
                 show changes to them; review with `git ls-files -v | grep -v '^H'` and undo with \
                 `git update-index --no-skip-worktree --no-assume-unchanged <path>`",
                newly_hidden.len(),
                if newly_hidden.len() == 1 { "y" } else { "ies" },
                name_paths(newly_hidden.into_iter())
            ));
        }
    }
    let root_git_dir = gd_path.canonicalize().unwrap_or_else(|_| gd_path.to_path_buf());
    for link in &after.gitlinks {
        let new = before_summary.as_ref().is_none_or(|b| !b.gitlinks.contains(link));
        check_gitlink(before, &rb.root, &root_git_dir, link, new, notices);
    }
}

/// Opens `rel` (a plain relative path) below `root` one component at a time, refusing links.
/// Git follows a link on the way to a gitlink's folder (an index written by hand can name
/// `link/sub`), so where a component is a link the folder is opened where it really is, if that
/// lies in a writable root (elsewhere the command could not have made its `.git`).
fn open_below(root: &Path, rel: &[u8], write_roots: &[PathBuf]) -> Option<OwnedFd> {
    let mut fd = dirfd::open_dir(&cpath(root)?).ok()?;
    for comp in rel.split(|&b| b == b'/') {
        match dirfd::open_dir_at(fd.as_raw_fd(), &CString::new(comp).ok()?) {
            Ok(next) => fd = next,
            Err(libc::ELOOP | libc::ENOTDIR) => {
                let real = root.join(OsStr::from_bytes(rel)).canonicalize().ok()?;
                if !write_roots.iter().any(|r| real.starts_with(r)) {
                    return None;
                }
                return dirfd::open_dir(&cpath(&real)?).ok();
            }
            Err(_) => return None,
        }
    }
    Some(fd)
}

fn check_gitlink(before: &Before, root: &Path, root_git_dir: &Path, rel: &[u8], new: bool, notices: &mut Vec<String>) {
    if !git_index::is_plain_relative_path(rel) {
        return;
    }
    let ws = &before.workspace;
    let p_path = root.join(OsStr::from_bytes(rel));
    let write_roots: Vec<PathBuf> = before.roots.iter().map(|r| r.root.clone()).collect();
    let Some(p) = open_below(root, rel, &write_roots) else { return };
    let dotgit = c(".git");
    let Ok(st_dotgit) = dirfd::stat_at(p.as_raw_fd(), &dotgit) else { return };
    let start = before.start;
    // Changed during the command: new in the index, `.git` (re)made or renamed in, or (below)
    // the config, hooks or commondir of its git directory. A move of the whole work tree `P`
    // changes only P's own ctime, which also changes whenever a file in P is saved: it counts
    // only where the git directory is not a `modules/` folder of the root's own git directory
    // (whose config and hooks the sandbox keeps read-only).
    let mut changed = new || changed_since(&st_dotgit, start);
    let p_moved = dirfd::stat_at(p.as_raw_fd(), &c("")).is_ok_and(|st| changed_since(&st, start));
    let mut findings: Vec<String> = Vec::new();
    let kind = st_dotgit.st_mode & libc::S_IFMT;
    // The git directory a `.git` file names, when it is one of the root's `modules/`:
    // quarantined with `.git` (git submodule update would otherwise reuse it).
    let mut named_dir: Option<PathBuf> = None;
    // The git directory's path, to tell Palisade's placeholders in it from the command's doing.
    let mut gd_path: Option<PathBuf> = None;
    let gd = if kind == libc::S_IFLNK {
        findings.push(".git is a symbolic link".into());
        changed |= p_moved;
        None
    } else if kind == libc::S_IFDIR {
        changed |= p_moved;
        gd_path = Some(p_path.join(".git"));
        dirfd::open_dir_at(p.as_raw_fd(), &dotgit).ok()
    } else if kind == libc::S_IFREG {
        let target = read_gitfile(p.as_raw_fd(), &dotgit, &p_path).and_then(|t| t.canonicalize().ok());
        let in_modules = target.as_ref().is_some_and(|t| t.starts_with(root_git_dir.join("modules")));
        changed |= p_moved && !in_modules;
        // Only a folder strictly inside the root's `modules/` (what git submodule update
        // reuses), never the root's own git directory or anything holding it.
        let modules = root_git_dir.join("modules");
        named_dir = target.clone().filter(|t| t.starts_with(&modules) && *t != modules && !root_git_dir.starts_with(t));
        gd_path = target.clone();
        target.and_then(|t| dirfd::open_dir(&cpath(&t)?).ok())
    } else {
        None
    };
    if let Some(gd) = &gd {
        let fd = gd.as_raw_fd();
        for name in ["config", "hooks", "commondir"] {
            if gd_path.as_ref().is_some_and(|g| before.placeholders.contains(&g.join(name))) {
                continue;
            }
            if dirfd::stat_at(fd, &c(name)).is_ok_and(|st| changed_since(&st, start)) {
                changed = true;
            }
        }
        if !changed {
            return;
        }
        match read_small(fd, &c("config"), 1 << 20) {
            Some(text) => match git_config_keys::disallowed_keys(&text) {
                Ok(keys) if keys.is_empty() => {}
                Ok(keys) => findings.push(format!("its config sets {}", keys.join(", "))),
                Err(e) => findings.push(format!("its config cannot be read safely ({e})")),
            },
            // An empty folder is Palisade's placeholder for a missing config: git reads nothing.
            None if dirfd::open_dir_at(fd, &c("config")).is_ok_and(|d| dirfd::entries(d.as_raw_fd()).is_ok_and(|e| e.is_empty())) => {}
            None if dirfd::stat_at(fd, &c("config")).is_ok() => findings.push("its config is not a regular file".into()),
            None => {}
        }
        if let Ok(hooks) = dirfd::open_dir_at(fd, &c("hooks")) {
            let active: Vec<Vec<u8>> = dirfd::entries(hooks.as_raw_fd())
                .unwrap_or_default()
                .into_iter()
                .map(|(n, _)| n.into_bytes())
                .filter(|n| !n.ends_with(b".sample"))
                .collect();
            if !active.is_empty() {
                findings.push(format!("it has hooks ({})", name_paths(active.iter())));
            }
        } else if dirfd::stat_at(fd, &c("hooks")).is_ok() {
            findings.push("its hooks entry is not a plain folder".into());
        }
        // Palisade's own placeholder for a missing commondir names the git directory itself.
        let commondir = dirfd::stat_at(fd, &c("commondir")).ok().map(|_| read_small(fd, &c("commondir"), 4096));
        if let Some(text) = commondir {
            if text.as_deref().map(|t| String::from_utf8_lossy(t).trim().to_string()).as_deref() != Some(".") {
                findings.push("it has a commondir (config and hooks come from elsewhere)".into());
            }
        }
    } else if !changed {
        return;
    }
    if findings.is_empty() {
        return;
    }
    let shown_p = shown(ws, &p_path);
    let quarantined = rename_aside(p.as_raw_fd(), &dotgit, QUARANTINE_NAME);
    let why = findings.join("; ");
    match quarantined {
        Ok(to) => {
            let mut also = String::new();
            if let Some(dir) = &named_dir {
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let parent = dir.parent().and_then(|p| dirfd::open_dir(&cpath(p)?).ok());
                let aside = match (parent, CString::new(name.clone())) {
                    (Some(parent), Ok(cname)) => rename_aside(parent.as_raw_fd(), &cname, &format!("{name}.palisade-quarantine")),
                    _ => Err(libc::ENOENT),
                };
                let shown_d = shown(ws, dir);
                also = match aside {
                    Ok(to_d) => format!(", and the git directory it names, {shown_d}, to {}", shown(ws, &dir.with_file_name(to_d))),
                    Err(e) => format!(
                        "; the git directory it names, {shown_d}, could not be set aside ({}): remove it before `git submodule update`",
                        std::io::Error::from_raw_os_error(e)
                    ),
                };
            }
            notices.push(format!(
                "quarantined the nested repository {shown_p}: it is a submodule in the index that git would enter, the command \
                 created or changed its git directory, and {why}. Renamed {shown_p}/.git to {shown_p}/{to}{also} (nothing \
                 deleted); inspect it, and restore with `mv {shown_p}/{to} {shown_p}/.git` only if you trust it"
            ))
        }
        Err(e) => notices.push(format!(
            "DANGER: the nested repository {shown_p} is a submodule in the index that git would enter, and {why}; it could not \
             be quarantined ({}). Do not run git in this workspace before you have removed {shown_p}/.git",
            std::io::Error::from_raw_os_error(e)
        )),
    }
}

/// Renames `name` in `dir` to `base` (or `base.1` ... `base.9` if taken), never replacing
/// anything; returns the name used.
fn rename_aside(dir: RawFd, name: &CStr, base: &str) -> Result<String, i32> {
    for i in 0..10 {
        let to = if i == 0 { base.to_string() } else { format!("{base}.{i}") };
        match dirfd::rename_noreplace_at(dir, name, &c(&to)) {
            Ok(()) => return Ok(to),
            Err(libc::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(libc::EEXIST)
}
