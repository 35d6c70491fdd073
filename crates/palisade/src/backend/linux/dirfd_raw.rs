//! The host-side git check's view of `dirfd.rs`: raw descriptors, NUL-terminated names and errno
//! values in and out, the same system calls underneath (one set of `*at` wrappers for the
//! backend). Every call is relative to a directory descriptor and never follows a final symbolic
//! link, so a command that swaps a folder for a link between two calls cannot redirect them.

use super::dirfd;
use super::sys::Errno;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use dirfd::coarse_now;

fn errno(e: io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn name(c: &CStr) -> &OsStr {
    OsStr::from_bytes(c.to_bytes())
}

/// `dir` borrowed for one call.
fn at<'a>(dir: RawFd) -> BorrowedFd<'a> {
    // SAFETY: every caller passes a descriptor it holds open for the whole call.
    unsafe { BorrowedFd::borrow_raw(dir) }
}

/// Opens a directory by path (following links: for paths Palisade was given or checked).
pub fn open_dir(path: &CStr) -> Result<OwnedFd, Errno> {
    dirfd::open_dir(Path::new(name(path))).map_err(errno)
}

/// Opens the directory `n` in `dir`, refusing a symbolic link.
pub fn open_dir_at(dir: RawFd, n: &CStr) -> Result<OwnedFd, Errno> {
    dirfd::open_dir_at(at(dir), name(n)).map_err(errno)
}

/// Opens the file `n` in `dir` for reading, refusing a symbolic link and never blocking on a
/// FIFO.
pub fn open_file_at(dir: RawFd, n: &CStr) -> Result<OwnedFd, Errno> {
    dirfd::open_read_at(at(dir), name(n)).map(OwnedFd::from).map_err(errno)
}

/// What `n` in `dir` is, without following a link (`n` empty: the descriptor itself).
pub fn stat_at(dir: RawFd, n: &CStr) -> Result<libc::stat, Errno> {
    if n.is_empty() {
        dirfd::stat_fd(at(dir)).map_err(errno)
    } else {
        dirfd::stat_at(at(dir), name(n)).map_err(errno)
    }
}

/// The entries of a directory (without `.` and `..`) with their `d_type`.
pub fn entries(dir: RawFd) -> Result<Vec<(CString, u8)>, Errno> {
    dirfd::entries(at(dir)).map_err(errno)
}

/// The target of the symbolic link `n` in `dir` (at most 4 KiB of it).
pub fn read_link_at(dir: RawFd, n: &CStr) -> Result<Vec<u8>, Errno> {
    dirfd::read_link_at(at(dir), name(n)).map_err(errno)
}

/// Removes the non-directory entry `n` of `dir` (a symbolic link itself, never its target).
pub fn unlink_at(dir: RawFd, n: &CStr) -> Result<(), Errno> {
    dirfd::unlink_at(at(dir), name(n), false).map_err(errno)
}

/// Renames `from` to `to` inside `dir`, failing (EEXIST) rather than replacing an entry.
pub fn rename_noreplace_at(dir: RawFd, from: &CStr, to: &CStr) -> Result<(), Errno> {
    dirfd::rename_noreplace_at(at(dir), name(from), name(to)).map_err(errno)
}
