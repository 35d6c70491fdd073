//! Placeholders for protected paths that do not exist yet.
//!
//! A mount can only cover something that exists, so before a command starts Palisade creates an
//! empty file or directory where a missing protected path would go and binds it read-only inside
//! the sandbox. Afterwards the placeholders are removed again, but only by the last sandbox still
//! using that workspace: removing a mount point from outside detaches the mount in every
//! namespace, which would lift the protection of a sandbox that is still running. Each run holds a
//! shared lock on the workspace's lock file; whoever gets the exclusive lock at the end removes
//! the placeholders listed in the record (if they are still empty) and clears it, which also
//! recovers from a run that was killed before it could clean up.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Placeholders are empty directories (git ignores those, so none shows up as a file a command
/// could commit), except where git reads a file whatever it is: a `commondir` placeholder is a
/// file naming the git directory itself ("."), which git treats as no redirection at all.
pub fn placeholder_file_content(path: &Path) -> Option<&'static [u8]> {
    (path.file_name()? == "commondir").then_some(b".\n".as_slice())
}

pub struct WorkspaceLock {
    lock: File,
    record: PathBuf,
}

fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), op) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
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
    /// Takes the shared lock for a run in `workspace`.
    pub fn acquire(workspace: &Path) -> io::Result<WorkspaceLock> {
        let dir = state_dir()?;
        let k = key(workspace);
        let lock = OpenOptions::new().create(true).read(true).write(true).mode(0o600).open(dir.join(format!("{k}.lock")))?;
        flock(&lock, libc::LOCK_SH)?;
        Ok(WorkspaceLock { lock, record: dir.join(format!("{k}.placeholders")) })
    }

    /// Creates the placeholder and records it (under the shared lock; appends are atomic lines).
    /// Something that appeared in the meantime is left alone and not recorded.
    pub fn create_placeholder(&self, path: &Path) -> io::Result<()> {
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
                let mut rec = OpenOptions::new().create(true).append(true).mode(0o600).open(&self.record)?;
                writeln!(rec, "{}", path.display())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Ends this run: if no other run holds the workspace, removes the recorded placeholders
    /// that are still empty.
    pub fn release(self) {
        let _ = flock(&self.lock, libc::LOCK_UN);
        if flock(&self.lock, libc::LOCK_EX | libc::LOCK_NB).is_err() {
            return; // another sandbox is still running here; the last one cleans up
        }
        let mut text = String::new();
        if File::open(&self.record).and_then(|mut f| f.read_to_string(&mut text)).is_err() {
            return;
        }
        // Deepest first, so a placeholder directory is empty when its own turn comes.
        let mut paths: Vec<&str> = text.lines().collect();
        paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
        paths.dedup();
        for p in paths {
            let p = Path::new(p);
            match fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => {
                    let _ = fs::remove_dir(p); // fails (and keeps it) unless empty
                }
                Ok(m) if m.is_file() && fs::read(p).ok().as_deref() == placeholder_file_content(p) => {
                    let _ = fs::remove_file(p);
                }
                _ => {}
            }
        }
        let _ = fs::remove_file(&self.record);
    }
}
