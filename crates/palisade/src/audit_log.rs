//! The audit log's file: one JSON line per command, appended so that concurrent commands never
//! interleave, size-capped with rotation, private to the user. The CLI decides what a line says
//! (`cli/audit.rs`); this module only stores and reads lines. The [`crate::Sandbox`] API does
//! not log by itself: a program embedding the library logs what it chooses.
//!
//! Writing a line: an exclusive advisory lock on `<log>.lock` (flock on Unix, LockFileEx on
//! Windows) is held across the size check, the rotation and the append, so that two commands
//! never rotate twice or write into a file being renamed; the line is one `write` on a file
//! opened for appending. Every file is opened without following a symbolic link at its own
//! name (Unix: `O_NOFOLLOW`; Windows: checked just before opening), must be a regular file
//! owned by the current user (Unix), and is created with mode 0600 (a looser mode is put back
//! to 0600); a missing folder is created with mode 0700.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// How many rotated files are kept beside the log (`audit.jsonl.1` is the newest).
pub const KEEP_ROTATED: u32 = 3;

/// `palisade log` reads at most this much of each file, from its end.
const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

/// A log file and its size cap.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
    max_bytes: u64,
}

impl AuditLog {
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64) -> AuditLog {
        AuditLog { path: path.into(), max_bytes }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `n`th rotated file (`<log>.n`).
    pub fn rotated(&self, n: u32) -> PathBuf {
        suffixed(&self.path, &n.to_string())
    }

    /// Whether a line could be appended now: the folder exists or can be made, and the lock
    /// file and the log can be opened as [`AuditLog::append`] opens them. Nothing is written.
    /// For a log that must be written, checked before the command starts.
    pub fn check_writable(&self) -> io::Result<()> {
        let _lock = self.lock()?;
        open_append(&self.path).map(drop)
    }

    /// Appends `line` (a newline is added if it has none), rotating first if the log would
    /// grow beyond its cap.
    pub fn append(&self, line: &str) -> io::Result<()> {
        let mut bytes = line.as_bytes().to_vec();
        if bytes.last() != Some(&b'\n') {
            bytes.push(b'\n');
        }
        let _lock = self.lock()?;
        let mut file = open_append(&self.path)?;
        let size = file.metadata()?.len();
        if size > 0 && size + bytes.len() as u64 > self.max_bytes {
            drop(file);
            self.rotate()?;
            file = open_append(&self.path)?;
        }
        // One write: with O_APPEND (and the lock) the line lands whole at the end.
        let n = file.write(&bytes)?;
        if n != bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write ({n} of {} bytes)", bytes.len()),
            ));
        }
        Ok(())
    }

    /// `<log>` → `.1` → `.2` ... → `.KEEP_ROTATED`, the oldest dropped. Called with the lock held.
    fn rotate(&self) -> io::Result<()> {
        for n in (1..KEEP_ROTATED).rev() {
            match std::fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    fn lock(&self) -> io::Result<FileLock> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", parent.display())))?;
        }
        let file = open_append(&suffixed(&self.path, "lock"))?;
        sys::lock_exclusive(&file)?;
        Ok(FileLock { _file: file })
    }

    /// The last `n` lines, oldest first, from the log and (when it has fewer) the rotated files.
    /// Lines are returned as stored, without their newline; a file that does not exist is
    /// skipped, and so is a file that is not the user's own regular file (with its reason in
    /// the second list).
    pub fn last_lines(&self, n: usize) -> io::Result<(Vec<String>, Vec<String>)> {
        let mut lines: Vec<String> = Vec::new();
        let mut skipped = Vec::new();
        let files = std::iter::once(self.path.clone()).chain((1..=KEEP_ROTATED).map(|i| self.rotated(i)));
        for path in files {
            if lines.len() >= n {
                break;
            }
            let text = match read_tail(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    skipped.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let mut older: Vec<String> = text.lines().map(str::to_string).collect();
            let keep = n - lines.len();
            if older.len() > keep {
                older.drain(..older.len() - keep);
            }
            older.append(&mut lines);
            lines = older;
        }
        Ok((lines, skipped))
    }
}

/// Held while the lock file is locked; closing it releases the lock.
struct FileLock {
    _file: File,
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The end of a file (at most [`MAX_READ_BYTES`], from a line start), as text; bytes that are
/// not UTF-8 are replaced, so that a damaged file is still shown.
fn read_tail(path: &Path) -> io::Result<String> {
    let mut file = sys::open_read(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(MAX_READ_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(MAX_READ_BYTES).read_to_end(&mut bytes)?;
    if start > 0 {
        let first_newline = bytes.iter().position(|&b| b == b'\n').map(|i| i + 1).unwrap_or(bytes.len());
        bytes.drain(..first_newline);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn open_append(path: &Path) -> io::Result<File> {
    sys::open_append(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(unix)]
mod sys {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    /// Opened for appending (created 0600), never through a symbolic link at `path` itself,
    /// never blocking on a FIFO; then checked to be a regular file of this user, mode 0600.
    pub(super) fn open_append(path: &Path) -> io::Result<File> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(symlink_said)?;
        check_own_regular(&file)?;
        let mode = file.metadata()?.mode();
        if mode & 0o7777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }

    pub(super) fn open_read(path: &Path) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(symlink_said)?;
        check_own_regular(&file)?;
        Ok(file)
    }

    fn symlink_said(e: io::Error) -> io::Error {
        if e.raw_os_error() == Some(libc::ELOOP) {
            return io::Error::new(io::ErrorKind::InvalidInput, "it is a symbolic link, which is refused");
        }
        e
    }

    fn check_own_regular(file: &File) -> io::Result<()> {
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        let euid = geteuid();
        if meta.uid() != euid {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("owned by user {}, not by this user ({euid})", meta.uid()),
            ));
        }
        Ok(())
    }

    fn geteuid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    pub(super) fn lock_exclusive(file: &File) -> io::Result<()> {
        loop {
            // SAFETY: flock on a descriptor `file` owns; the lock is released when it closes.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

#[cfg(windows)]
mod sys {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::windows::io::AsRawHandle;
    use std::path::Path;

    fn refuse_link(path: &Path) -> io::Result<()> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "it is a symbolic link, which is refused"))
            }
            Ok(m) if !m.is_file() => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")),
            _ => Ok(()),
        }
    }

    /// Opened for appending; the file inherits the ACL of its folder (under the user's profile
    /// by default, which only the user and administrators can read).
    pub(super) fn open_append(path: &Path) -> io::Result<File> {
        refuse_link(path)?;
        OpenOptions::new().append(true).create(true).open(path)
    }

    pub(super) fn open_read(path: &Path) -> io::Result<File> {
        refuse_link(path)?;
        OpenOptions::new().read(true).open(path)
    }

    pub(super) fn lock_exclusive(file: &File) -> io::Result<()> {
        use windows_sys::Win32::Storage::FileSystem::{LockFileEx, LOCKFILE_EXCLUSIVE_LOCK};
        use windows_sys::Win32::System::IO::OVERLAPPED;
        // SAFETY: OVERLAPPED is plain data; all zero locks from offset 0.
        let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
        // SAFETY: a valid handle `file` owns, opened synchronously; the lock (one byte at
        // offset 0) is released when the handle closes.
        let ok = unsafe { LockFileEx(file.as_raw_handle() as _, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &mut overlapped) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(any(unix, windows)))]
mod sys {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::path::Path;

    pub(super) fn open_append(path: &Path) -> io::Result<File> {
        OpenOptions::new().append(true).create(true).open(path)
    }

    pub(super) fn open_read(path: &Path) -> io::Result<File> {
        File::open(path)
    }

    pub(super) fn lock_exclusive(_: &File) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "file locking is not available on this system"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn appends_whole_lines_with_mode_0600_in_a_0700_folder() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("state/palisade/audit.jsonl"), 1 << 20);
        log.append("{\"a\":1}").unwrap();
        log.append("{\"a\":2}\n").unwrap();
        assert_eq!(std::fs::read_to_string(log.path()).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(log.path()), 0o600);
        assert_eq!(mode(log.path().parent().unwrap()), 0o700);
        // A looser mode (an umask, a chmod) is put back.
        std::fs::set_permissions(log.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        log.append("{}").unwrap();
        assert_eq!(mode(log.path()), 0o600);
    }

    #[test]
    fn rotation_keeps_the_cap_and_three_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"), 1000);
        let line = format!("{{\"x\":\"{}\"}}", "y".repeat(90)); // 99 bytes + newline
        for _ in 0..100 {
            log.append(&line).unwrap();
        }
        for p in [log.path().to_path_buf(), log.rotated(1), log.rotated(2), log.rotated(3)] {
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len <= 1000 && len > 0, "{}: {len}", p.display());
        }
        assert!(!log.rotated(4).exists());
        // 10 lines per file: the newest 40 are kept.
        let (lines, skipped) = log.last_lines(1000).unwrap();
        assert_eq!((lines.len(), skipped.len()), (40, 0));
        assert_eq!(log.last_lines(15).unwrap().0.len(), 15);
    }

    /// The lock is taken per open file, so threads of one process exclude each other too (this
    /// runs on Windows under Wine as well; tests/audit.rs has the one with processes).
    #[test]
    fn threads_appending_at_once_rotate_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let max = 8 * 1024;
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = AuditLog::new(&path, max);
                std::thread::spawn(move || {
                    for i in 0..100 {
                        log.append(&format!("{{\"t\":{t},\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(80))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let log = AuditLog::new(&path, max);
        for (n, p) in [path.clone(), log.rotated(1), log.rotated(2), log.rotated(3)].iter().enumerate() {
            let text = std::fs::read_to_string(p).unwrap();
            assert!(text.len() as u64 <= max, "{}: {}", p.display(), text.len());
            if n > 0 {
                assert!(text.len() as u64 > max - 200, "{} rotated early: {}", p.display(), text.len());
            }
            for l in text.lines() {
                assert!(l.starts_with("{\"t\":") && l.ends_with("\"}"), "a mixed line: {l}");
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_at_the_log_is_refused_and_its_target_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious\n").unwrap();
        let path = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let log = AuditLog::new(&path, 1 << 20);
        let e = log.append("{}").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(log.check_writable().is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        // The lock file too.
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(suffixed(&path, "lock")).unwrap();
        std::os::unix::fs::symlink(&target, suffixed(&path, "lock")).unwrap();
        assert!(log.append("{}").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_at_the_log_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
        assert!(AuditLog::new(&path, 1 << 20).append("{}").is_err());
    }

    #[test]
    fn last_lines_shows_damaged_text_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"), 1 << 20);
        std::fs::write(log.rotated(1), "{\"old\":1}\n").unwrap();
        std::fs::write(log.path(), b"{\"a\":1}\n{\"trunc\n\xff\xfe\n").unwrap();
        let (lines, _) = log.last_lines(10).unwrap();
        assert_eq!(lines, vec!["{\"old\":1}", "{\"a\":1}", "{\"trunc", "\u{fffd}\u{fffd}"]);
    }
}
