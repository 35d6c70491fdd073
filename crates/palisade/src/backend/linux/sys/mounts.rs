//! Mount system calls of the sandbox's setup (`mount`, `mount_setattr`, `open_tree`,
//! `move_mount`, `openat2`): used in the child between clone and execve, so each makes one
//! system call, allocates nothing and returns the raw errno.

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::{check, check_int, Errno};

pub fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is either null or a valid NUL-terminated string.
    check_int(unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast()) }).map(drop)
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets (or clears) the read-only flag on the mount at `path`, and on every mount beneath it if
/// `recursive`.
pub fn set_mount_readonly(path: &CStr, readonly: bool, recursive: bool) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: if readonly { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if readonly { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: path is NUL-terminated and attr is a valid mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` as an `O_PATH` handle, refusing symbolic links in any component, so that a
/// path swapped for a link (by a command running in another sandbox) cannot redirect a mount.
pub fn open_path_nofollow(path: &CStr) -> Result<RawFd, Errno> {
    let how = OpenHow { flags: (libc::O_PATH | libc::O_CLOEXEC) as u64, mode: 0, resolve: RESOLVE_NO_SYMLINKS };
    // SAFETY: path is NUL-terminated and how is a valid open_how of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
    .map(|fd| fd as RawFd)
}

/// A detached copy of the mount tree at the handle `at` (recursively, with submounts).
pub fn clone_tree_at(at: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: the empty path with AT_EMPTY_PATH names the handle itself.
    check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            at,
            c"".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint,
        )
    })
    .map(|fd| fd as RawFd)
}

/// Makes a (detached) mount tree read-only, every mount in it.
pub fn set_tree_readonly(tree: RawFd) -> Result<(), Errno> {
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: the empty path with AT_EMPTY_PATH names the tree; attr is a valid mount_attr.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            c"".as_ptr(),
            AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Attaches a detached mount tree onto the location the handle `target` names.
pub fn attach_tree_at(tree: RawFd, target: RawFd) -> Result<(), Errno> {
    // SAFETY: both empty paths name the descriptors themselves.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            target,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// `/proc/self/fd/<fd>` in a caller-provided buffer (no allocation), for mount(2) targets.
pub fn fd_path(fd: RawFd, buf: &mut [u8; 32]) -> &CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.max(0) as u32, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/proc/self/fd/")
}

/// A detached copy of the mount tree at `path` (with its submounts), as a descriptor.
pub fn clone_mount_tree(path: &CStr) -> Result<RawFd, Errno> {
    // SAFETY: path is NUL-terminated; the flags ask for a new detached tree.
    check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
        )
    })
    .map(|fd| fd as RawFd)
}

/// Attaches a detached mount tree (from [`clone_mount_tree`]) at `target`.
pub fn attach_mount_tree(tree: RawFd, target: &CStr) -> Result<(), Errno> {
    // SAFETY: the empty path with MOVE_MOUNT_F_EMPTY_PATH names the tree descriptor itself.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}
