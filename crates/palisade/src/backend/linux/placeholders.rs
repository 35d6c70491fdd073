//! Placeholders for protected paths that do not exist yet.
//!
//! A mount can only cover something that exists, so Palisade creates an empty directory where a
//! missing protected path would go (a file for `commondir`, see [`placeholder_file_content`])
//! and binds it read-only inside the sandbox. Placeholders live as long as the [`Sandbox`]
//! (the library creates them at its first command and removes them when it is dropped; the CLI,
//! one command per process, around that command), but only the last sandbox using a workspace
//! removes them: removing a mount point from outside detaches the mount in every namespace,
//! which would lift the protection of a sandbox that is still running. Each sandbox holds a
//! shared lock on the workspace's lock file; whoever gets the exclusive lock at the end removes
//! the recorded placeholders (if they are still as created), the record and the lock file, which
//! also recovers from a run that was killed before it could clean up; `palisade cleanup` does the
//! same for every workspace nobody holds ([`remove_stale`]).
//!
//! While placeholders exist, [`PlaceholderAwareFs`] reports them as missing to the protected-path
//! resolution, so that a sandbox never mistakes another sandbox's placeholder directory for a
//! real (pinned, writable) one.
//!
//! [`Sandbox`]: crate::Sandbox

use palisade_policy::protected::{FsView, Kind, RealFs};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Placeholders are empty directories (git ignores those, so none shows up as a file a command
/// could commit), except where git reads a file whatever it is: a `commondir` placeholder is a
/// file naming the git directory itself ("."), which git treats as no redirection at all, and
/// `info/exclude` and `objects/info/alternates` placeholders are empty files (git warns about a
/// folder there; an empty file excludes nothing and names no alternate).
pub fn placeholder_file_content(path: &Path) -> Option<&'static [u8]> {
    match path.file_name()?.to_str()? {
        "commondir" => Some(b".\n".as_slice()),
        "exclude" | "alternates" => Some(b"".as_slice()),
        _ => None,
    }
}

/// Whether `path` is still exactly as a placeholder was created (an empty directory, or a file
/// with the placeholder content).
fn still_placeholder(path: &Path) -> bool {
    match placeholder_file_content(path) {
        // Opening with O_DIRECTORY | O_NOFOLLOW refuses a file and a symbolic link by itself.
        None => super::sys::is_empty_dir_nofollow(path),
        Some(c) => {
            fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) && fs::read(path).ok().as_deref() == Some(c)
        }
    }
}

pub struct WorkspaceLock {
    lock: File,
    lock_path: PathBuf,
    record: PathBuf,
    /// Every placeholder recorded for this workspace (by any sandbox, live or crashed).
    known: BTreeSet<PathBuf>,
    /// Mount namespaces (by inode) of sandboxes whose processes may outlive their command
    /// (`keep_processes`): while any process is still in one, the placeholders stay.
    kept_namespaces: BTreeSet<u64>,
    /// Set once the release ran, so that dropping does not run it again.
    released: bool,
}

fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), op) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Opens `path` (creating it) and takes `op` on it. The last sandbox of a workspace deletes the
/// lock file while holding it exclusively, so a lock taken on a file that is no longer at `path`
/// guards nothing: open again. `Ok(None)`: `op` has `LOCK_NB` and someone else holds the lock.
fn open_locked(path: &Path, op: libc::c_int) -> io::Result<Option<File>> {
    loop {
        let f = OpenOptions::new().create(true).truncate(false).read(true).write(true).mode(0o600).open(path)?;
        match flock(&f, op) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e),
        }
        let held = f.metadata()?;
        if fs::symlink_metadata(path).is_ok_and(|m| m.ino() == held.ino() && m.dev() == held.dev()) {
            return Ok(Some(f));
        }
    }
}

/// Palisade's per-user runtime folder, created private to the user.
pub fn state_dir() -> io::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .map(|p| p.join("palisade"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/palisade-{}", super::sys::geteuid())));
    match fs::DirBuilder::new().mode(0o700).create(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(&base)?;
    if !meta.is_dir() || meta.uid() != super::sys::geteuid() || meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "{} is not a private directory owned by this user; remove it",
            base.display()
        )));
    }
    Ok(base)
}

fn key(workspace: &Path) -> String {
    // FNV-1a: a stable, dependency-free name for the workspace's lock and record files.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in workspace.as_os_str().as_encoded_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl WorkspaceLock {
    /// Takes the shared lock for a sandbox in `workspace` and reads the record.
    pub fn acquire(workspace: &Path) -> io::Result<WorkspaceLock> {
        let dir = state_dir()?;
        let k = key(workspace);
        let mut w = WorkspaceLock::lock(&dir, &k, libc::LOCK_SH)?
            .ok_or_else(|| io::Error::other(format!("{}: the lock was not granted", dir.join(&k).display())))?;
        w.reload();
        Ok(w)
    }

    /// Takes `op` on the lock file of workspace key `k` in `dir` (the record not read yet);
    /// `None` if `op` has `LOCK_NB` and someone else holds it.
    fn lock(dir: &Path, k: &str, op: libc::c_int) -> io::Result<Option<WorkspaceLock>> {
        let lock_path = dir.join(format!("{k}.lock"));
        let Some(lock) = open_locked(&lock_path, op)? else { return Ok(None) };
        Ok(Some(WorkspaceLock {
            lock,
            lock_path,
            record: dir.join(format!("{k}.placeholders")),
            known: BTreeSet::new(),
            kept_namespaces: BTreeSet::new(),
            released: false,
        }))
    }

    fn reload(&mut self) {
        let mut text = String::new();
        if File::open(&self.record).and_then(|mut f| f.read_to_string(&mut text)).is_ok() {
            for line in text.lines() {
                match line.strip_prefix(NAMESPACE_PREFIX) {
                    Some(ino) => self.kept_namespaces.extend(ino.parse::<u64>().ok()),
                    None => {
                        self.known.insert(PathBuf::from(line));
                    }
                }
            }
        }
    }

    /// A filesystem view for protected-path resolution in which recorded placeholders that are
    /// still as created count as missing. It remembers what it saw: use one view for one
    /// command's resolution (a snapshot), never across commands.
    pub fn view(&self) -> PlaceholderAwareFs<'_> {
        PlaceholderAwareFs { known: &self.known, seen: Default::default() }
    }

    /// Creates the missing placeholders and records them in one append (atomic under the
    /// shared lock). A placeholder that is already there is reused; something else that
    /// appeared in the meantime is left alone and not recorded. `intact`: recorded
    /// placeholders that this command's resolution just found still as created (from
    /// [`PlaceholderAwareFs::intact_placeholders`]), not checked again.
    pub fn create_placeholders<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a Path>,
        intact: &BTreeSet<PathBuf>,
    ) -> io::Result<()> {
        let mut new = String::new();
        for path in paths {
            if self.known.contains(path) && (intact.contains(path) || still_placeholder(path)) {
                continue;
            }
            let created = match placeholder_file_content(path) {
                None => fs::DirBuilder::new().mode(0o755).create(path),
                Some(content) => OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(path)
                    .and_then(|mut f| f.write_all(content)),
            };
            match created {
                Ok(()) => {
                    new.push_str(&path.display().to_string());
                    new.push('\n');
                    self.known.insert(path.to_path_buf());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            }
        }
        if !new.is_empty() {
            OpenOptions::new().create(true).append(true).mode(0o600).open(&self.record)?.write_all(new.as_bytes())?;
        }
        Ok(())
    }
}

/// Record lines naming a kept mount namespace (paths are absolute, so they never start so).
const NAMESPACE_PREFIX: &str = "mntns:";

impl WorkspaceLock {
    /// Records that the processes of the sandbox in mount namespace `ino` may outlive their
    /// command: the placeholders they rely on must stay while any of them runs (removing a
    /// placeholder from outside would detach its read-only mount in their namespace).
    pub fn keep_for_namespace(&mut self, ino: u64) -> io::Result<()> {
        self.kept_namespaces.insert(ino);
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.record)?
            .write_all(format!("{NAMESPACE_PREFIX}{ino}\n").as_bytes())
    }
}

/// Whether any process (that this user may inspect) is still in one of these mount namespaces.
fn any_process_in(namespaces: &BTreeSet<u64>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(procs) = fs::read_dir("/proc") else { return true };
    procs.flatten().any(|e| {
        e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && fs::metadata(e.path().join("ns/mnt")).is_ok_and(|m| namespaces.contains(&m.ino()))
    })
}

/// What [`WorkspaceLock::remove_placeholders_if_last`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Release {
    /// Another sandbox still runs in the workspace; it cleans up when it ends.
    InUse,
    /// A `keep_processes` leftover still relies on the placeholders.
    Kept,
    /// The placeholders still as created were removed (this many), with the record and lock file.
    Removed(usize),
}

impl WorkspaceLock {
    /// Ends this sandbox's use of the workspace: if no other sandbox holds it and no kept
    /// process relies on them, removes the recorded placeholders that are still as created, the
    /// record and the lock file.
    fn remove_placeholders_if_last(&mut self) -> Release {
        self.released = true;
        let _ = flock(&self.lock, libc::LOCK_UN);
        match open_locked(&self.lock_path, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(Some(l)) => self.lock = l,
            _ => return Release::InUse, // another sandbox is still running here; the last one cleans up
        }
        self.reload();
        if !self.kept_namespaces.is_empty() && any_process_in(&self.kept_namespaces) {
            return Release::Kept; // a kept process still relies on them; a later sandbox cleans up
        }
        // Deepest first, so a placeholder directory is empty when its own turn comes.
        let mut paths: Vec<&PathBuf> = self.known.iter().collect();
        paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        let mut removed = 0;
        for p in paths {
            if still_placeholder(p) && (if p.is_dir() { fs::remove_dir(p) } else { fs::remove_file(p) }).is_ok() {
                removed += 1;
            }
        }
        let _ = fs::remove_file(&self.record);
        // Still holding it exclusively: whoever opened the old file retries (see `open_locked`).
        let _ = fs::remove_file(&self.lock_path);
        Release::Removed(removed)
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        if !self.released {
            self.remove_placeholders_if_last();
        }
    }
}

/// What `palisade cleanup` found in the runtime folder.
#[derive(Debug, Default)]
pub struct StaleReport {
    /// Placeholders removed (left by runs that were killed before they could clean up).
    pub removed: usize,
    /// Workspaces whose placeholders stay because a sandbox or a kept process still uses them.
    pub in_use: usize,
}

/// Removes what killed runs left: for every workspace with a record that no sandbox holds, its
/// placeholders still as created, the record and the lock file; lock files of workspaces without
/// a record that nobody holds go too.
pub fn remove_stale() -> io::Result<StaleReport> {
    let dir = state_dir()?;
    let mut report = StaleReport::default();
    let mut keys = BTreeSet::new();
    for e in fs::read_dir(&dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(k) = name.strip_suffix(".lock").or_else(|| name.strip_suffix(".placeholders")) {
            if k.len() == 16 && k.bytes().all(|b| b.is_ascii_hexdigit()) {
                keys.insert(k.to_string());
            }
        }
    }
    for k in keys {
        let Some(mut w) = WorkspaceLock::lock(&dir, &k, libc::LOCK_EX | libc::LOCK_NB)? else {
            report.in_use += 1;
            continue;
        };
        match w.remove_placeholders_if_last() {
            Release::Removed(n) => report.removed += n,
            Release::InUse | Release::Kept => report.in_use += 1,
        }
    }
    Ok(report)
}

/// [`RealFs`], except that recorded placeholders still as created are reported missing.
///
/// Resolution asks about the same paths many times (`.git` once per git pattern, each
/// placeholder once per pattern that reaches it): every answer is remembered for the life of
/// the view, which is one command's resolution, so it is a snapshot taken once per command and
/// never goes stale across commands.
pub struct PlaceholderAwareFs<'a> {
    known: &'a BTreeSet<PathBuf>,
    seen: RefCell<Seen>,
}

#[derive(Default)]
struct Seen {
    kinds: HashMap<PathBuf, Kind>,
    dirs: HashMap<PathBuf, Vec<String>>,
    texts: HashMap<PathBuf, Option<String>>,
    real: HashMap<PathBuf, Option<PathBuf>>,
    /// Recorded placeholders found still as created.
    intact: BTreeSet<PathBuf>,
}

impl PlaceholderAwareFs<'_> {
    /// The recorded placeholders this view found still as created.
    pub fn intact_placeholders(self) -> BTreeSet<PathBuf> {
        self.seen.into_inner().intact
    }
}

impl FsView for PlaceholderAwareFs<'_> {
    fn kind(&self, path: &Path) -> Kind {
        if let Some(k) = self.seen.borrow().kinds.get(path) {
            return *k;
        }
        let k = if self.known.contains(path) && still_placeholder(path) {
            self.seen.borrow_mut().intact.insert(path.to_path_buf());
            Kind::Missing
        } else {
            RealFs.kind(path)
        };
        self.seen.borrow_mut().kinds.insert(path.to_path_buf(), k);
        k
    }
    fn list_dir(&self, path: &Path) -> Vec<String> {
        if let Some(d) = self.seen.borrow().dirs.get(path) {
            return d.clone();
        }
        let d = RealFs.list_dir(path);
        self.seen.borrow_mut().dirs.insert(path.to_path_buf(), d.clone());
        d
    }
    fn read_small(&self, path: &Path) -> Option<String> {
        if let Some(t) = self.seen.borrow().texts.get(path) {
            return t.clone();
        }
        let t = RealFs.read_small(path);
        self.seen.borrow_mut().texts.insert(path.to_path_buf(), t.clone());
        t
    }
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        if let Some(r) = self.seen.borrow().real.get(path) {
            return r.clone();
        }
        let r = RealFs.canonicalize(path);
        self.seen.borrow_mut().real.insert(path.to_path_buf(), r.clone());
        r
    }
}
