//! Thin wrappers for working on directories by handle for the host-side git check, returning
//! the raw errno (`dirfd.rs` has the `io::Result` set the placeholders use; the two are to become
//! one, with `remove_tree.rs`'s, in the restructuring of the backend): every
//! call is relative to a directory descriptor and never follows a final symbolic link, so a
//! command that swaps a folder for a link between two calls cannot redirect them.

use super::sys::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn errno() -> Errno {
    super::sys::errno_now()
}

fn owned(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory by path (following links: for paths Palisade was given or checked).
pub fn open_dir(path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: path is NUL-terminated.
    owned(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })
}

/// Opens the directory `name` in `dir`, refusing a symbolic link.
pub fn open_dir_at(dir: RawFd, name: &CStr) -> Result<OwnedFd, Errno> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: name is NUL-terminated.
    owned(unsafe { libc::openat(dir, name.as_ptr(), flags) })
}

/// Opens the file `name` in `dir` for reading, refusing a symbolic link and never blocking on
/// a FIFO.
pub fn open_file_at(dir: RawFd, name: &CStr) -> Result<OwnedFd, Errno> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;
    // SAFETY: name is NUL-terminated.
    owned(unsafe { libc::openat(dir, name.as_ptr(), flags) })
}

/// `fstatat` without following a final link (`name` empty: the descriptor itself).
pub fn stat_at(dir: RawFd, name: &CStr) -> Result<libc::stat, Errno> {
    // SAFETY: stat is plain data the kernel fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW | if name.is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    // SAFETY: name is NUL-terminated and st is a valid buffer.
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) } < 0 {
        return Err(errno());
    }
    Ok(st)
}

/// The entries of a directory (without `.` and `..`) with their `d_type`.
pub fn entries(dir: RawFd) -> Result<Vec<(CString, u8)>, Errno> {
    // fdopendir takes ownership of the descriptor it is given (closedir closes it): a duplicate.
    // SAFETY: dup of a valid descriptor.
    let dup = owned(unsafe { libc::fcntl(dir, libc::F_DUPFD_CLOEXEC, 0) })?;
    // Read from the start even if the descriptor was read before.
    // SAFETY: lseek on a descriptor we own.
    unsafe { libc::lseek(dup.as_raw_fd(), 0, libc::SEEK_SET) };
    // SAFETY: dup is a valid directory descriptor; on success the stream owns it.
    let stream = unsafe { libc::fdopendir(dup.as_raw_fd()) };
    if stream.is_null() {
        return Err(errno());
    }
    std::mem::forget(dup);
    let mut out = Vec::new();
    loop {
        // SAFETY: stream is a valid open stream; errno is reset to tell the end from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: as above; the returned entry is valid until the next readdir on this stream.
        let ent = unsafe { libc::readdir64(stream) };
        if ent.is_null() {
            let e = errno();
            // SAFETY: closes the stream (and its descriptor) once.
            unsafe { libc::closedir(stream) };
            return if e == 0 { Ok(out) } else { Err(e) };
        }
        // SAFETY: d_name is a NUL-terminated name inside the entry.
        let (name, kind) = unsafe { (CStr::from_ptr((*ent).d_name.as_ptr()), (*ent).d_type) };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            out.push((name.to_owned(), kind));
        }
    }
}

/// The target of the symbolic link `name` in `dir` (at most 4 KiB of it).
pub fn read_link_at(dir: RawFd, name: &CStr) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: readlinkat writes at most buf.len() bytes into buf.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Removes the non-directory entry `name` of `dir` (a symbolic link itself, never its target).
pub fn unlink_at(dir: RawFd, name: &CStr) -> Result<(), Errno> {
    // SAFETY: name is NUL-terminated.
    if unsafe { libc::unlinkat(dir, name.as_ptr(), 0) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// Renames `from` to `to` inside `dir`, failing (EEXIST) rather than replacing an entry.
pub fn rename_noreplace_at(dir: RawFd, from: &CStr, to: &CStr) -> Result<(), Errno> {
    // SAFETY: both names are NUL-terminated; renameat2 by number (older C libraries lack it).
    let rc = unsafe {
        libc::syscall(libc::SYS_renameat2, dir, from.as_ptr(), dir, to.as_ptr(), libc::RENAME_NOREPLACE as libc::c_uint)
    };
    if rc < 0 {
        return Err(errno());
    }
    Ok(())
}

/// The wall clock as file timestamps use it (the coarse clock the kernel stamps inodes with), so
/// that anything changed after this moment has a ctime at or after it.
pub fn coarse_now() -> (i64, i64) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into ts; CLOCK_REALTIME_COARSE exists since Linux 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}
