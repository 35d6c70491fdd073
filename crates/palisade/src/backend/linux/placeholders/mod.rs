//! Placeholders for protected paths that do not exist yet.
//!
//! A mount can only cover something that exists, so Palisade creates an empty directory where a
//! missing protected path would go (a file for `commondir`, see [`placeholder_file_content`])
//! and binds it read-only inside the sandbox. Placeholders live as long as the [`Sandbox`]
//! (the library creates them at its first command and removes them when it is dropped; the CLI,
//! one command per process, around that command), but only the last sandbox using a writable
//! root removes that root's placeholders: removing a mount point from outside detaches the
//! mount in every namespace, which would lift the protection of a sandbox that is still running.
//!
//! Locks and records are per writable root, named by the root's device and inode (however the
//! root was reached, whichever workspace it belongs to), in one per-user folder that does not
//! depend on the environment ([`state_dir`]). Each sandbox holds a shared lock on every root it
//! protects; whoever gets the exclusive lock on a root at the end removes the placeholders its
//! record names that are still exactly what Palisade made (same device and inode, still empty),
//! then the record and the lock file, which also recovers from a run that was killed before it
//! could clean up; `palisade cleanup` does the same for every root nobody holds
//! ([`remove_stale`]).
//!
//! Making a placeholder never leaves anything unrecorded or half-made (see
//! [`PlaceholderLocks::create_placeholders`]): the intent is recorded first, the placeholder is
//! made whole under a temporary name in its own folder, its identity is recorded, and only then
//! is it moved into place without replacing anything. Everything on the host is done by handle
//! (relative to directory descriptors reached without following a link), so a command that
//! swaps a folder for a symbolic link cannot send a creation or a removal elsewhere.
//!
//! While placeholders exist, [`PlaceholderAwareFs`] reports them as missing to the protected-path
//! resolution, so that a sandbox never mistakes another sandbox's placeholder directory for a
//! real (pinned, writable) one.
//!
//! [`Sandbox`]: crate::Sandbox

use super::dirfd;
use super::placeholder_record::{self as record, Record};
use palisade_policy::protected::{FsView, Kind, RealFs};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod aware_fs;
mod release;

pub use aware_fs::PlaceholderAwareFs;
pub use release::remove_stale;

/// What a placeholder FILE holds (the policy says whether a placeholder is a file or a
/// directory: in the work tree always a directory, inside `.git` by its name, a missing
/// `include.path` target a file): nothing, except where git reads the content: a `commondir`
/// placeholder names the git directory itself ("."), which git treats as no redirection at all.
pub fn placeholder_file_content(path: &Path) -> &'static [u8] {
    if path.file_name().is_some_and(|n| n == "commondir") {
        b".\n"
    } else {
        b""
    }
}

/// Whether `path` is still exactly the placeholder Palisade made (`made`: its device and
/// inode): an empty directory, or a file with the placeholder content.
fn still_placeholder(path: &Path, made: (u64, u64)) -> bool {
    let Ok(m) = fs::symlink_metadata(path) else { return false };
    if (m.dev(), m.ino()) != made {
        return false;
    }
    if m.is_dir() {
        // Opening with O_DIRECTORY | O_NOFOLLOW refuses a file and a symbolic link by itself.
        return super::sys::is_empty_dir_nofollow(path);
    }
    let c = placeholder_file_content(path);
    m.is_file() && m.len() == c.len() as u64 && (c.is_empty() || fs::read(path).ok().as_deref() == Some(c))
}

/// How long a run waits for another one to finish with a writable root's placeholders before
/// saying so, and before giving up.
const WAIT_NOTICE: Duration = Duration::from_secs(2);
const WAIT_LIMIT: Duration = Duration::from_secs(60);
const WAIT_POLL: Duration = Duration::from_millis(50);

/// Set by [`interrupt_lock_waits`]: a run waiting for a lock gives up at once.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes a wait for another run's placeholder lock (now or later in this process) end at once
/// with an error instead of at its time limit: for a signal that should end the process while
/// it has not started its command yet.
pub fn interrupt_lock_waits() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Palisade's per-user runtime folder (`/tmp/palisade-<uid>`), opened by handle.
///
/// Always this one place, whatever the environment says (`XDG_RUNTIME_DIR` set or not, a login
/// session's `/run/user/<uid>` present or not), so that every run of this user finds every other
/// run's locks. It must be a directory owned by this user and private to them: another user who
/// made it first (`/tmp` is shared) gets a refusal, never a say in our locks.
pub struct StateDir {
    fd: OwnedFd,
    pub path: PathBuf,
}

/// Where [`state_dir`] is.
pub fn state_dir_path() -> PathBuf {
    PathBuf::from(format!("/tmp/palisade-{}", super::sys::geteuid()))
}

pub fn state_dir() -> io::Result<StateDir> {
    let euid = super::sys::geteuid();
    let name = format!("palisade-{euid}");
    let path = state_dir_path();
    let tmp = dirfd::open_dir(Path::new("/tmp"))?;
    match dirfd::mkdir_at(tmp.as_fd(), OsStr::new(&name), 0o700) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
    let refuse = || {
        io::Error::other(format!(
            "{} is not a private directory owned by this user (uid {euid}); remove it (another user may have made it)",
            path.display()
        ))
    };
    let fd = dirfd::open_dir_at(tmp.as_fd(), OsStr::new(&name)).map_err(|_| refuse())?;
    let st = dirfd::stat_fd(fd.as_fd())?;
    if st.st_uid != euid || st.st_mode & 0o077 != 0 {
        return Err(refuse());
    }
    Ok(StateDir { fd, path })
}

/// A random 64-bit number (std's per-process hashing keys are seeded from the kernel).
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

fn key_of(st: &libc::stat) -> String {
    format!("{:x}-{:x}", st.st_dev, st.st_ino)
}

fn lock_name(key: &str) -> OsString {
    format!("root-{key}.lock").into()
}

fn record_name(key: &str) -> OsString {
    format!("root-{key}.record").into()
}

impl StateDir {
    /// Opens the lock file `name` (creating it) and takes `op` on it. The last sandbox of a root
    /// deletes the lock file while holding it exclusively, so a lock taken on a file that is no
    /// longer at `name` guards nothing: open again. `Ok(None)`: someone else holds it (`op`
    /// must have `LOCK_NB`).
    fn lock(&self, name: &OsStr, op: libc::c_int) -> io::Result<Option<File>> {
        loop {
            let f = dirfd::open_file_at(self.fd.as_fd(), name, true, false).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("opening palisade's lock file {}: {e}", self.path.join(name).display()),
                )
            })?;
            match dirfd::flock(&f, op | libc::LOCK_NB) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e),
            }
            let held = dirfd::stat_fd(f.as_fd())?;
            if dirfd::stat_at(self.fd.as_fd(), name).is_ok_and(|s| (s.st_dev, s.st_ino) == (held.st_dev, held.st_ino)) {
                return Ok(Some(f));
            }
        }
    }

    /// The shared lock on a root's lock file, waiting (polling, so that signals are never held
    /// back) while another run removes that root's placeholders: one line on stderr after
    /// [`WAIT_NOTICE`], an error naming the lock and its holder after [`WAIT_LIMIT`] or when
    /// [`interrupt_lock_waits`] is called.
    fn lock_shared_waiting(&self, key: &str, root: &Path) -> io::Result<File> {
        let name = lock_name(key);
        let lock_path = self.path.join(&name);
        let start = Instant::now();
        let mut told = false;
        loop {
            if let Some(f) = self.lock(&name, libc::LOCK_SH)? {
                return Ok(f);
            }
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    format!(
                        "interrupted while waiting for {} (the placeholder lock of {})",
                        lock_path.display(),
                        root.display()
                    ),
                ));
            }
            let waited = start.elapsed();
            if waited >= WAIT_LIMIT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "gave up after {} s waiting for {} (the placeholder lock of {}), held by {}: end that process if it is stuck",
                        WAIT_LIMIT.as_secs(),
                        lock_path.display(),
                        root.display(),
                        self.holder(&name)
                    ),
                ));
            }
            if waited >= WAIT_NOTICE && !told {
                told = true;
                // Never a panic on a closed stderr (a message is all this is).
                let _ = writeln!(
                    io::stderr(),
                    "palisade: waiting for {} to release {} (the placeholder lock of {}); giving up after {} s",
                    self.holder(&name),
                    lock_path.display(),
                    root.display(),
                    WAIT_LIMIT.as_secs()
                );
            }
            std::thread::sleep(WAIT_POLL);
        }
    }

    /// Who holds the lock file `name` exclusively, from the kernel's list of locks.
    fn holder(&self, name: &OsStr) -> String {
        let Ok(st) = dirfd::stat_at(self.fd.as_fd(), name) else { return "another process".into() };
        let id = format!("{:02x}:{:02x}:{}", libc::major(st.st_dev), libc::minor(st.st_dev), st.st_ino);
        let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
        let pid = locks.lines().filter(|l| !l.contains("->")).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6 && f[3] == "WRITE" && f[5] == id).then(|| f[4].to_string())
        });
        match pid {
            Some(pid) => {
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd: Vec<String> = cmd
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                if cmd.is_empty() {
                    format!("process {pid}")
                } else {
                    format!("process {pid} ({})", cmd.join(" "))
                }
            }
            None => "another process".into(),
        }
    }

    fn read_record(&self, key: &str) -> Option<Record> {
        let mut bytes = Vec::new();
        dirfd::open_read_at(self.fd.as_fd(), &record_name(key)).ok()?.read_to_end(&mut bytes).ok()?;
        record::parse(&bytes)
    }

    /// Appends `lines` to the record of `key` in one write (appends of other sandboxes holding
    /// the shared lock never interleave with it), creating the record with its header first if
    /// it does not exist (made whole under a temporary name, then linked into place).
    /// Appends to the record of `key` (made whole first if missing). An error names the file
    /// (a full runtime folder must say which file it could not write).
    fn append(&self, key: &str, root: &Path, lines: &str) -> io::Result<()> {
        let name = record_name(key);
        self.append_to(&name, root, lines).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("writing palisade's placeholder record {}: {e}", self.path.join(&name).display()),
            )
        })
    }

    fn append_to(&self, name: &OsStr, root: &Path, lines: &str) -> io::Result<()> {
        let name = name.to_os_string();
        let mut f = match dirfd::open_file_at(self.fd.as_fd(), &name, false, true) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let temp = OsString::from(format!(".new-{:016x}", random_u64()));
                let mut t = dirfd::create_file_at(self.fd.as_fd(), &temp, 0o600)?;
                let made = t.write_all(record::header(root).as_bytes()).and_then(|()| {
                    match dirfd::link_at(self.fd.as_fd(), &temp, &name) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
                        _ => Ok(()),
                    }
                });
                let _ = dirfd::unlink_at(self.fd.as_fd(), &temp, false);
                made?;
                dirfd::open_file_at(self.fd.as_fd(), &name, false, true)?
            }
            Err(e) => return Err(e),
        };
        f.write_all(lines.as_bytes())
    }

    /// Removes the record and the lock file of `key` (the caller holds the lock exclusively:
    /// whoever opened the old lock file retries, see [`StateDir::lock`]).
    fn forget(&self, key: &str) {
        let _ = dirfd::unlink_at(self.fd.as_fd(), &record_name(key), false);
        let _ = dirfd::unlink_at(self.fd.as_fd(), &lock_name(key), false);
    }
}

/// One writable root: its handle (opened once), its key and this sandbox's shared lock on it.
struct RootLock {
    path: PathBuf,
    fd: OwnedFd,
    key: String,
    lock: Option<File>,
    /// The path names another folder now (the root was moved away and replaced between two
    /// commands): kept, locked, until the end, but no longer used for new placeholders.
    replaced: bool,
}

/// A sandbox's shared locks on its writable roots, and what their records say.
pub struct PlaceholderLocks {
    state: StateDir,
    roots: Vec<RootLock>,
    /// Every placeholder recorded in these roots (by any sandbox, live or crashed), with the
    /// device and inode it was made with.
    known: BTreeMap<PathBuf, (u64, u64)>,
    /// Set once the release ran, so that dropping does not run it again.
    released: bool,
}

/// One placeholder being made.
struct Making<'a> {
    path: &'a Path,
    root: usize,
    rel: PathBuf,
    parent: OwnedFd,
    name: OsString,
    temp: OsString,
    content: Option<&'static [u8]>,
    made: Option<(u64, u64)>,
}

impl PlaceholderLocks {
    /// Takes the shared lock on every writable root (waiting, within a bound, while another run
    /// removes placeholders there) and reads their records.
    pub fn acquire(roots: &[PathBuf]) -> io::Result<PlaceholderLocks> {
        let mut l =
            PlaceholderLocks { state: state_dir()?, roots: Vec::new(), known: BTreeMap::new(), released: false };
        l.follow(roots)?;
        Ok(l)
    }

    /// Locks every root that is not locked yet as the folder its path names now (at the first
    /// command: all of them; later, one that was moved away and replaced), and rereads the
    /// records. One `stat` per root when nothing changed.
    fn follow(&mut self, roots: &[PathBuf]) -> io::Result<()> {
        let mut changed = false;
        for path in roots {
            let current = fs::metadata(path).ok().map(|m| format!("{:x}-{:x}", m.dev(), m.ino()));
            if self.roots.iter().any(|r| !r.replaced && &r.path == path && Some(&r.key) == current.as_ref()) {
                continue;
            }
            let fd = dirfd::open_dir(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let key = key_of(&dirfd::stat_fd(fd.as_fd())?);
            for r in self.roots.iter_mut().filter(|r| &r.path == path) {
                r.replaced = true;
            }
            changed = true;
            if let Some(r) = self.roots.iter_mut().find(|r| r.key == key) {
                // The same folder under another of the sandbox's paths, or back at its path.
                r.replaced = false;
                continue;
            }
            let lock = self.state.lock_shared_waiting(&key, path)?;
            self.roots.push(RootLock { path: path.clone(), fd, key, lock: Some(lock), replaced: false });
        }
        if changed {
            self.reload();
        }
        Ok(())
    }

    fn reload(&mut self) {
        self.known.clear();
        for r in self.roots.iter().filter(|r| !r.replaced) {
            if let Some(rec) = self.state.read_record(&r.key) {
                self.known.extend(rec.made.into_iter().map(|(rel, id)| (r.path.join(rel), id)));
            }
        }
    }

    /// A filesystem view for protected-path resolution in which recorded placeholders that are
    /// still as created count as missing. It remembers what it saw: use one view for one
    /// command's resolution (a snapshot), never across commands.
    ///
    /// `roots`: the sandbox's writable roots; one that names another folder than at the last
    /// command is locked anew first.
    pub fn view(&mut self, roots: &[PathBuf]) -> io::Result<PlaceholderAwareFs<'_>> {
        self.follow(roots)?;
        Ok(PlaceholderAwareFs { known: &self.known, seen: Default::default() })
    }

    /// The root a placeholder belongs to: the outermost of this sandbox's roots that holds it
    /// (so that a sandbox whose only root is that outer one shares its lock), with the path
    /// relative to it.
    fn root_of(&self, path: &Path) -> Option<(usize, PathBuf)> {
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.replaced)
            .filter_map(|(i, r)| path.strip_prefix(&r.path).ok().map(|rel| (i, rel.to_path_buf())))
            .filter(|(_, rel)| record::is_plain_relative(rel))
            .min_by_key(|(i, _)| self.roots[*i].path.components().count())
    }
    /// Every placeholder made for these roots (absolute paths).
    pub fn placeholder_paths(&self) -> BTreeSet<PathBuf> {
        self.known.keys().cloned().collect()
    }

    /// Creates the missing placeholders. A placeholder that is already there is reused;
    /// something else that appeared in the meantime is left alone and not recorded. `intact`:
    /// recorded placeholders that this command's resolution just found still as created (from
    /// [`PlaceholderAwareFs::intact_placeholders`]), not checked again.
    ///
    /// Never half-made, never unrecorded: (1) the intent (path and temporary name) is appended
    /// to the root's record; (2) each placeholder is made whole under its temporary name in its
    /// own folder (reached by handle, without following a link); (3) what was made (device,
    /// inode) is recorded; (4) it is moved into place without replacing anything. A run killed
    /// at any point leaves at most recorded temporaries and recorded placeholders, which the
    /// next release or `palisade cleanup` removes if they are still exactly what was made. The
    /// record lives in the per-user runtime folder under `/tmp`, which a reboot usually
    /// empties, so it is written, not synced: ordering against a killed process is what counts.
    /// The `commondir` file is synced before it gets its name, so that its content is there
    /// even after a power loss (git cannot read an empty one).
    pub fn create_placeholders<'a>(
        &mut self,
        paths: impl IntoIterator<Item = (&'a Path, bool)>,
        intact: &BTreeSet<PathBuf>,
    ) -> io::Result<()> {
        let context = |path: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let mut making: Vec<Making<'a>> = Vec::new();
        let seed = random_u64();
        for (path, is_dir) in paths {
            if let Some(id) = self.known.get(path) {
                if intact.contains(path) || still_placeholder(path, *id) {
                    continue;
                }
            }
            if making.iter().any(|m| m.path == path) {
                continue;
            }
            let Some((root, rel)) = self.root_of(path) else {
                return Err(io::Error::other(format!("{}: not in a writable root", path.display())));
            };
            let (Some(dir), Some(name)) = (rel.parent(), rel.file_name()) else {
                return Err(io::Error::other(format!("{}: not a path in a writable root", path.display())));
            };
            let parent = dirfd::open_dir_beneath(self.roots[root].fd.as_fd(), dir).map_err(|e| context(path, e))?;
            let name = name.to_os_string();
            let temp = OsString::from(format!(".palisade-new-{:016x}", seed.wrapping_add(making.len() as u64)));
            let content = (!is_dir).then(|| placeholder_file_content(path));
            making.push(Making { path, root, rel, parent, name, temp, content, made: None });
        }
        if making.is_empty() {
            return Ok(());
        }
        // (1) Write-ahead: the intents, one append per root.
        self.append_per_root(&making, |m| record::intent_line(&m.rel, &m.temp))?;
        // (2) Made whole under the temporary names.
        for m in &mut making {
            let dir = m.parent.as_fd();
            let made = match m.content {
                None => dirfd::mkdir_at(dir, &m.temp, 0o755),
                Some(c) => dirfd::create_file_at(dir, &m.temp, 0o644).and_then(|mut f| {
                    f.write_all(c)?;
                    f.sync_data()
                }),
            };
            made.map_err(|e| context(m.path, e))?;
            let st = dirfd::stat_at(dir, &m.temp).map_err(|e| context(m.path, e))?;
            m.made = Some((st.st_dev, st.st_ino));
        }
        // (3) What was made, before it has its name.
        self.append_per_root(&making, |m| {
            let (dev, ino) = m.made.unwrap_or_default();
            record::made_line(&m.rel, dev, ino)
        })?;
        // (4) Into place, replacing nothing.
        let mut late: Vec<(usize, String)> = Vec::new();
        for m in &making {
            let dir = m.parent.as_fd();
            let made = m.made.unwrap_or_default();
            let moved = match m.content {
                None => match dirfd::rename_noreplace_at(dir, &m.temp, &m.name) {
                    // A filesystem without atomic no-replace renames: made in place, and recorded
                    // after the fact (a run killed in between leaves that one unrecorded).
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        let _ = dirfd::unlink_at(dir, &m.temp, true);
                        dirfd::mkdir_at(dir, &m.name, 0o755).and_then(|()| {
                            let st = dirfd::stat_at(dir, &m.name)?;
                            late.push((m.root, record::made_line(&m.rel, st.st_dev, st.st_ino)));
                            Ok((st.st_dev, st.st_ino))
                        })
                    }
                    other => other.map(|()| made),
                },
                // A second name for the same file: its identity is the one recorded.
                Some(_) => {
                    let linked = dirfd::link_at(dir, &m.temp, &m.name);
                    let _ = dirfd::unlink_at(dir, &m.temp, false);
                    linked.map(|()| made)
                }
            };
            match moved {
                Ok(id) => {
                    self.known.insert(m.path.to_path_buf(), id);
                }
                Err(e) => {
                    let _ = dirfd::unlink_at(dir, &m.temp, m.content.is_none());
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(context(m.path, e));
                    }
                }
            }
        }
        for (i, r) in self.roots.iter().enumerate() {
            let lines: String = late.iter().filter(|(root, _)| *root == i).map(|(_, l)| l.as_str()).collect();
            if !lines.is_empty() {
                self.state.append(&r.key, &r.path, &lines)?;
            }
        }
        Ok(())
    }

    fn append_per_root(&self, making: &[Making<'_>], line: impl Fn(&Making<'_>) -> String) -> io::Result<()> {
        for (i, r) in self.roots.iter().enumerate() {
            let lines: String = making.iter().filter(|m| m.root == i).map(&line).collect();
            if !lines.is_empty() {
                self.state.append(&r.key, &r.path, &lines)?;
            }
        }
        Ok(())
    }
}
