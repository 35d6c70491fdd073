//! Letting go of placeholders: releasing a root when a sandbox ends (only the last holder
//! removes anything), and [`remove_stale`] for what killed runs left.

use super::*;

impl PlaceholderLocks {
    /// Records that the processes of the sandbox in mount namespace `ino` may outlive their
    /// command: the placeholders they rely on must stay while any of them runs (removing a
    /// placeholder from outside would detach its read-only mount in their namespace).
    pub fn keep_for_namespace(&mut self, ino: u64) -> io::Result<()> {
        for r in &self.roots {
            self.state.append(&r.key, &r.path, &record::namespace_line(ino))?;
        }
        Ok(())
    }
}

/// Whether any process (that this user may inspect) is still in one of these mount namespaces.
fn any_process_in(namespaces: &BTreeSet<u64>) -> bool {
    let Ok(procs) = fs::read_dir("/proc") else { return true };
    procs.flatten().any(|e| {
        e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && fs::metadata(e.path().join("ns/mnt")).is_ok_and(|m| namespaces.contains(&m.ino()))
    })
}

/// What releasing a root did.
#[derive(Debug, PartialEq, Eq)]
pub enum Release {
    /// Another sandbox still runs with this root; it cleans up when it ends.
    InUse,
    /// A `keep_processes` leftover still relies on the placeholders.
    Kept,
    /// The placeholders still as made were removed (this many), with the record and lock file.
    Removed(usize),
}

/// Removes, by handle beneath `root`, what `rec` says Palisade made and is still exactly that:
/// placeholders with the recorded device and inode (a directory only if empty, a file only with
/// the placeholder content), and temporaries of an interrupted creation. Returns how many
/// went.
fn remove_recorded(root: &OwnedFd, rec: &Record) -> usize {
    let mut removed = 0;
    // Deepest first, so a placeholder directory is empty when its own turn comes.
    let mut made: Vec<(&PathBuf, &(u64, u64))> = rec.made.iter().collect();
    made.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (rel, id) in made {
        let (Some(dir), Some(name)) = (rel.parent(), rel.file_name()) else { continue };
        let Ok(parent) = dirfd::open_dir_beneath(root.as_fd(), dir) else { continue };
        if remove_if_made(&parent, name, Some(*id), placeholder_file_content(rel)) {
            removed += 1;
        }
    }
    for (rel, temp) in &rec.intents {
        let Some(dir) = rel.parent() else { continue };
        let Ok(parent) = dirfd::open_dir_beneath(root.as_fd(), dir) else { continue };
        if remove_if_made(&parent, temp, None, placeholder_file_content(rel)) {
            removed += 1;
        }
    }
    removed
}

/// Removes `name` in `parent` if it is what Palisade made: the identity `id` when known (a
/// temporary may have been killed before its identity was recorded: its random name is the
/// mark then), an empty directory, or a file holding (a start of, for a temporary) `content`
/// (what a placeholder file of that name holds; the record does not keep the kind).
fn remove_if_made(parent: &OwnedFd, name: &OsStr, id: Option<(u64, u64)>, content: &[u8]) -> bool {
    let dir = parent.as_fd();
    let Ok(st) = dirfd::stat_at(dir, name) else { return false };
    if id.is_some_and(|id| id != (st.st_dev, st.st_ino)) {
        return false;
    }
    let c = content;
    match () {
        // Removing a directory fails unless it is empty.
        () if dirfd::is_dir(&st) => dirfd::unlink_at(dir, name, true).is_ok(),
        () if dirfd::is_file(&st) && st.st_size as usize <= c.len() => {
            let mut got = Vec::new();
            let Ok(mut f) = dirfd::open_read_at(dir, name) else { return false };
            let same = dirfd::stat_fd(f.as_fd()).is_ok_and(|s| (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino));
            let ok = same && f.read_to_end(&mut got).is_ok() && (got == c || (id.is_none() && c.starts_with(&got)));
            ok && dirfd::unlink_at(dir, name, false).is_ok()
        }
        _ => false,
    }
}

/// Takes the exclusive lock of `key` if nobody holds it and, unless a kept process still relies
/// on them, removes its recorded placeholders beneath `root` (found by the recorded path when
/// not given), then the record and the lock file.
fn release_root(state: &StateDir, key: &str, root: Option<(&Path, &OwnedFd)>) -> io::Result<Release> {
    let Some(_exclusive) = state.lock(&lock_name(key), libc::LOCK_EX)? else { return Ok(Release::InUse) };
    let Some(rec) = state.read_record(key) else {
        // No record (or one this version cannot read, which is left alone): only the lock file.
        if dirfd::stat_at(state.fd.as_fd(), &record_name(key)).is_err() {
            state.forget(key);
        }
        return Ok(Release::Removed(0));
    };
    if !rec.namespaces.is_empty() && any_process_in(&rec.namespaces) {
        return Ok(Release::Kept);
    }
    // `palisade cleanup` finds the root by its recorded path, and acts only if that is still
    // the same directory (device and inode: the key).
    let opened;
    let root = match root {
        Some(r) => Some(r),
        None => {
            opened = rec.root.as_deref().and_then(|p| Some((p, dirfd::open_dir(p).ok()?)));
            opened
                .as_ref()
                .filter(|(_, fd)| dirfd::stat_fd(fd.as_fd()).is_ok_and(|st| key_of(&st) == key))
                .map(|(p, fd)| (*p, fd))
        }
    };
    let removed = match root {
        Some((path, fd)) => {
            let Some(_held) = other_roots_free(state, key, path, fd, &rec) else { return Ok(Release::InUse) };
            remove_recorded(fd, &rec)
        }
        None => 0,
    };
    state.forget(key);
    Ok(Release::Removed(removed))
}

/// Another sandbox may protect these placeholders through a writable root of its own that
/// holds them without being this root: one of its ancestors, or a folder on the way inside it
/// (`--writable ws/sub` beside a sandbox of `ws`). The exclusive locks of those that have a
/// lock file (a sandbox makes its root's before locking it), held until the removal is done
/// (a sandbox starting there waits meanwhile); `None` if one is in use. Each is retried for a
/// moment: another run's removal holds it only briefly.
fn other_roots_free(state: &StateDir, key: &str, path: &Path, fd: &OwnedFd, rec: &Record) -> Option<Vec<File>> {
    let mut keys = BTreeSet::new();
    for a in path.ancestors().skip(1) {
        if let Ok(m) = fs::metadata(a) {
            keys.insert(format!("{:x}-{:x}", m.dev(), m.ino()));
        }
    }
    for rel in rec.made.keys().chain(rec.intents.iter().map(|(p, _)| p)) {
        for dir in rel.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(st) = dirfd::open_dir_beneath(fd.as_fd(), dir).and_then(|d| dirfd::stat_fd(d.as_fd())) {
                keys.insert(key_of(&st));
            }
        }
    }
    keys.remove(key);
    let mut held = Vec::new();
    for k in keys {
        let Ok(f) = dirfd::open_file_at(state.fd.as_fd(), &lock_name(&k), false, false) else { continue };
        let deadline = Instant::now() + Duration::from_millis(300);
        loop {
            match dirfd::flock(&f, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return None,
            }
        }
        held.push(f);
    }
    Some(held)
}

impl PlaceholderLocks {
    /// Ends this sandbox's use of its roots: for every root that no other sandbox holds and no
    /// kept process relies on, removes the recorded placeholders still as made, the record and
    /// the lock file.
    fn remove_placeholders_if_last(&mut self) {
        self.released = true;
        for r in &mut self.roots {
            // Closing the file drops our shared lock.
            r.lock.take();
        }
        for r in &self.roots {
            let _ = release_root(&self.state, &r.key, Some((&r.path, &r.fd)));
        }
    }
}

impl Drop for PlaceholderLocks {
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
    /// Roots whose placeholders stay because a sandbox or a kept process still uses them.
    pub in_use: usize,
}

/// Removes what killed runs left: for every root with a record that no sandbox holds, its
/// placeholders still as made, the record and the lock file; lock files of roots without a
/// record that nobody holds go too.
pub fn remove_stale() -> io::Result<StaleReport> {
    let state = state_dir()?;
    let mut report = StaleReport::default();
    let mut keys = BTreeSet::new();
    for e in fs::read_dir(&state.path)? {
        let e = e?;
        let name = e.file_name();
        // A record being made when its run was killed (an append in progress is far younger).
        if name.as_encoded_bytes().starts_with(b".new-")
            && e.metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > WAIT_LIMIT)
        {
            let _ = dirfd::unlink_at(state.fd.as_fd(), &name, false);
            continue;
        }
        let name = name.to_string_lossy();
        let key =
            name.strip_prefix("root-").and_then(|n| n.strip_suffix(".lock").or_else(|| n.strip_suffix(".record")));
        if let Some(k) = key {
            if k.split_once('-').is_some_and(|(d, i)| {
                [d, i].iter().all(|x| !x.is_empty() && x.len() <= 16 && x.bytes().all(|b| b.is_ascii_hexdigit()))
            }) {
                keys.insert(k.to_string());
            }
        }
    }
    for k in keys {
        match release_root(&state, &k, None)? {
            Release::Removed(n) => report.removed += n,
            Release::InUse | Release::Kept => report.in_use += 1,
        }
    }
    Ok(report)
}
