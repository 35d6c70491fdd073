//! Thin wrappers for working on the host by directory handle (the `*at` system calls), for the
//! placeholders, the private temp folders' removal and the host-side git check: everything is
//! created, read and removed relative to a directory descriptor that was reached without
//! following a symbolic link, so a command that swaps a folder for a link between two of our
//! steps cannot send a creation or a removal outside its writable root. (`dirfd_raw.rs` adapts
//! these to raw descriptors and errno values for the git check.)

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path contains a NUL byte"))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A single, ordinary path component (not empty, `.`, `..`, and without `/`).
pub fn is_plain_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

fn open_at(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: name is NUL-terminated; the descriptor returned is new and owned by the caller.
    let fd =
        check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })?;
    // SAFETY: fd was just returned by openat and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory by path (following links: for the writable root itself, which the
/// command cannot rename, and for Palisade's own runtime folder, checked afterwards).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: c is NUL-terminated; the descriptor returned is new and owned by the caller.
    let fd = check(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
    // SAFETY: fd was just returned by open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `name` in `dir`, refusing a symbolic link.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    open_at(dir, &cstr(name)?, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
}

/// Opens the directory `rel` beneath `root`, one component at a time without following a
/// link (`rel` must be relative and plain: no `.` or `..`).
pub fn open_dir_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let mut cur = root.try_clone_to_owned()?;
    for c in rel.components() {
        match c {
            Component::Normal(name) if is_plain_name(name) => {
                use std::os::fd::AsFd;
                cur = open_dir_at(cur.as_fd(), name)?;
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("not a plain relative path: {}", rel.display()),
                ))
            }
        }
    }
    Ok(cur)
}

/// Creates a new file `name` in `dir` (never an existing one, never through a link).
pub fn create_file_at(dir: BorrowedFd<'_>, name: &OsStr, mode: libc::mode_t) -> io::Result<File> {
    let fd = open_at(dir, &cstr(name)?, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, mode)?;
    Ok(File::from(fd))
}

/// Opens (creating if missing) a file for reading and writing in `dir`, refusing a link.
pub fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr, create: bool, append: bool) -> io::Result<File> {
    let mut flags = libc::O_RDWR | libc::O_NOFOLLOW;
    if create {
        flags |= libc::O_CREAT;
    }
    if append {
        flags |= libc::O_APPEND;
    }
    Ok(File::from(open_at(dir, &cstr(name)?, flags, 0o600)?))
}

/// Opens an existing regular file `name` in `dir` for reading, refusing a link (and a FIFO:
/// non-blocking, so opening one never waits for a writer).
pub fn open_read_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    Ok(File::from(open_at(
        dir,
        &cstr(name)?,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )?))
}

pub fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr, mode: libc::mode_t) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: c is NUL-terminated.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) }).map(drop)
}

/// What `name` in `dir` is, without following a link.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    // SAFETY: stat is plain data the kernel fills; c is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// What a descriptor names.
pub fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: stat is plain data the kernel fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// Moves `from` to `to` within `dir` unless `to` exists (`EEXIST`); `EINVAL` where the
/// filesystem cannot do this atomically.
pub fn rename_noreplace_at(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both names are NUL-terminated; renameat2 takes no other memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dir.as_raw_fd(),
            f.as_ptr(),
            dir.as_raw_fd(),
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    check(rc as libc::c_int).map(drop)
}

/// A second name `to` for the file `from` in `dir`; never replaces an existing `to`.
pub fn link_at(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both names are NUL-terminated.
    check(unsafe { libc::linkat(dir.as_raw_fd(), f.as_ptr(), dir.as_raw_fd(), t.as_ptr(), 0) }).map(drop)
}

/// Removes `name` from `dir` (`rmdir` if `is_dir`: refused unless empty).
pub fn unlink_at(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> io::Result<()> {
    let c = cstr(name)?;
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: c is NUL-terminated.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) }).map(drop)
}

pub fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own.
    check(unsafe { libc::flock(f.as_raw_fd(), op) }).map(drop)
}

pub fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub fn is_file(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// The entries of directory `dir` (without `.` and `..`) with their `d_type`, read from the
/// start through a descriptor of their own (`dir` itself is left as it is).
pub fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<(CString, u8)>> {
    let own = open_at(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    // SAFETY: fdopendir takes over the descriptor (closed by closedir below) when it succeeds.
    let stream = unsafe { libc::fdopendir(own.as_raw_fd()) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(own);
    let mut out = Vec::new();
    loop {
        // SAFETY: resets errno so that the end of the stream is told from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: stream is a valid directory stream; the entry stays valid until the next call.
        let e = unsafe { libc::readdir64(stream) };
        if e.is_null() {
            let err = io::Error::last_os_error();
            // SAFETY: closes the stream (and its descriptor) once.
            unsafe { libc::closedir(stream) };
            return if err.raw_os_error() == Some(0) { Ok(out) } else { Err(err) };
        }
        // SAFETY: d_name is a NUL-terminated name inside the entry.
        let (name, kind) = unsafe { (CStr::from_ptr((*e).d_name.as_ptr()), (*e).d_type) };
        if name != c"." && name != c".." {
            out.push((name.to_owned(), kind));
        }
    }
}

/// The target of the symbolic link `name` in `dir` (at most 4 KiB of it).
pub fn read_link_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: readlinkat writes at most buf.len() bytes into buf; c is NUL-terminated.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The wall clock as file timestamps use it (the coarse clock the kernel stamps inodes with), so
/// that anything changed after this moment has a ctime at or after it.
pub fn coarse_now() -> (i64, i64) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into ts; CLOCK_REALTIME_COARSE exists since Linux 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}
