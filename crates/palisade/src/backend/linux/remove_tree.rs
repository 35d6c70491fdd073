//! Removing a directory tree that a sandboxed command had write access to, by handle.
//!
//! The command owned the tree: it may have left directories without permissions (`chmod 000`),
//! read-only nested directories, symbolic links pointing anywhere, FIFOs, very deep trees, and
//! (as a process that outlived its command) it may even be changing the tree while it goes.
//! Every step here works relative to an open directory descriptor, opens with `O_NOFOLLOW`
//! (a link is removed, never followed), never enters another filesystem (device), and gives
//! each directory back `u+rwx` before emptying it. Only a bounded number of descriptors stays
//! open however deep the tree: deeper ancestors are closed and found again through `..`,
//! checked to be the same directory (device and inode).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC)`.
pub fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: openat with a NUL-terminated name; the new descriptor is ours alone.
    let fd = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; the descriptor itself when `name` is empty.
pub fn stat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    let flags = if name.is_empty() { libc::AT_EMPTY_PATH } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: st is plain data the kernel fills; name is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

/// `unlinkat(dir, name, flags)`.
pub fn unlink_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unlinkat with a NUL-terminated name.
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

/// Sets the mode of the directory `fd` names (an `O_PATH` descriptor works too: through its
/// /proc/self/fd link, which names exactly that inode and is not a path that could be swapped).
fn chmod_fd(fd: RawFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: fchmod on a descriptor we hold.
    if unsafe { libc::fchmod(fd, mode) } == 0 {
        return Ok(());
    }
    let path = CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL");
    // SAFETY: chmod on a NUL-terminated path.
    cvt(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

/// The names in directory `dir` (without `.` and `..`), read through a descriptor of its own.
fn read_names(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    Ok(super::dirfd::entries(dir)?.into_iter().map(|(name, _)| name).collect())
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Opens directory `name` in `parent` for reading and gives it `u+rwx` (so that it can be
/// listed and emptied), also when the command left it without any permission.
pub fn open_dir_for_removal(parent: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    let fd = match open_at(parent, name, libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            // No read permission: fix the mode through a handle that needs none.
            let handle = open_at(parent, name, libc::O_PATH | libc::O_DIRECTORY)?;
            let st = stat_at(handle.as_raw_fd(), c"")?;
            chmod_fd(handle.as_raw_fd(), (st.st_mode & 0o7777) | 0o700)?;
            open_at(handle.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY)?
        }
        Err(e) => return Err(e),
    };
    let st = stat_at(fd.as_raw_fd(), c"")?;
    if st.st_mode & 0o700 != 0o700 {
        // A directory we cannot change (another user's) is reported when emptying it fails.
        let _ = chmod_fd(fd.as_raw_fd(), (st.st_mode & 0o7777) | 0o700);
    }
    Ok(fd)
}

/// What removing a tree did.
#[derive(Debug, Default)]
pub struct Removed {
    /// Bytes the removed files used (their blocks).
    pub bytes: u64,
    /// What could not be removed, one line each (the tree stays, partly).
    pub left: Vec<String>,
}

/// Descriptors kept open on the way down; deeper ancestors are reopened through `..`.
const OPEN_ANCESTORS: usize = 32;

struct Frame {
    fd: Option<OwnedFd>,
    dev: u64,
    ino: u64,
    /// The name in the parent directory.
    name: CString,
    pending: Vec<CString>,
}

/// Removes everything inside the directory `top` (which stays), never leaving its filesystem.
/// `label` names `top` in the lines of [`Removed::left`].
pub fn remove_contents(top: OwnedFd, label: &Path) -> Removed {
    let mut out = Removed::default();
    let st = match stat_at(top.as_raw_fd(), c"") {
        Ok(st) => st,
        Err(e) => {
            out.left.push(format!("{}: {e}", label.display()));
            return out;
        }
    };
    let dev = st.st_dev;
    // A bind mount from the same filesystem has the same device: compare mount ids too (where
    // the kernel has them, 5.8+).
    let mount = super::sys::identity(top.as_raw_fd(), c"").ok().and_then(|i| i.mount);
    let pending = match read_names(top.as_fd()) {
        Ok(p) => p,
        Err(e) => {
            out.left.push(format!("{}: {e}", label.display()));
            return out;
        }
    };
    let mut stack = vec![Frame { fd: Some(top), dev, ino: st.st_ino, name: CString::default(), pending }];
    let path_of = |stack: &[Frame], name: &CStr| -> PathBuf {
        let mut p = label.to_path_buf();
        for f in &stack[1..] {
            p.push(std::ffi::OsStr::from_bytes(f.name.as_bytes()));
        }
        p.join(std::ffi::OsStr::from_bytes(name.to_bytes()))
    };
    loop {
        let depth = stack.len();
        let frame = stack.last_mut().expect("the top frame stays until the end");
        let dir = frame.fd.as_ref().expect("the current frame is open").as_raw_fd();
        if let Some(name) = frame.pending.pop() {
            let st = match stat_at(dir, &name) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => {
                    out.left.push(format!("{}: {e}", path_of(&stack, &name).display()));
                    continue;
                }
            };
            if is_dir(&st) {
                if st.st_dev != dev {
                    out.left.push(format!(
                        "{}: another filesystem is mounted there; not entered",
                        path_of(&stack, &name).display()
                    ));
                    continue;
                }
                let child = open_dir_for_removal(dir, &name).and_then(|fd| {
                    let now = stat_at(fd.as_raw_fd(), c"")?;
                    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
                        return Err(io::Error::other("it was replaced while being removed"));
                    }
                    if mount.is_some() && super::sys::identity(fd.as_raw_fd(), c"").ok().and_then(|i| i.mount) != mount
                    {
                        return Err(io::Error::other("another mount is there; not entered"));
                    }
                    let names = read_names(fd.as_fd())?;
                    Ok((fd, names))
                });
                match child {
                    Ok((fd, pending)) => {
                        if depth >= OPEN_ANCESTORS {
                            stack[depth - OPEN_ANCESTORS + 1].fd = None;
                        }
                        stack.push(Frame { fd: Some(fd), dev: st.st_dev, ino: st.st_ino, name, pending });
                    }
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                        // Swapped for a link or a file since: remove that instead.
                        if let Err(e) = unlink_at(dir, &name, 0) {
                            out.left.push(format!("{}: {e}", path_of(&stack, &name).display()));
                        }
                    }
                    Err(e) => out.left.push(format!("{}: {e}", path_of(&stack, &name).display())),
                }
                continue;
            }
            // A file, link, FIFO, socket or device node: the entry goes, never its target.
            match unlink_at(dir, &name, 0) {
                Ok(()) => out.bytes += st.st_blocks as u64 * 512,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => out.left.push(format!("{}: {e}", path_of(&stack, &name).display())),
            }
            continue;
        }
        // This directory is done: remove it from its parent (the top stays for the caller).
        if stack.len() == 1 {
            return out;
        }
        let done = stack.pop().expect("more than one frame");
        let parent = stack.last_mut().expect("more than one frame");
        if parent.fd.is_none() {
            let up = open_at(done.fd.as_ref().expect("open").as_raw_fd(), c"..", libc::O_RDONLY | libc::O_DIRECTORY)
                .and_then(|fd| stat_at(fd.as_raw_fd(), c"").map(|st| (fd, st)));
            match up {
                Ok((fd, st)) if (st.st_dev, st.st_ino) == (parent.dev, parent.ino) => parent.fd = Some(fd),
                _ => {
                    out.left.push(format!("{}: the tree was moved while being removed; stopped", label.display()));
                    return out;
                }
            }
        }
        let pfd = parent.fd.as_ref().expect("reopened").as_raw_fd();
        match unlink_at(pfd, &done.name, libc::AT_REMOVEDIR) {
            Ok(()) => {}
            // Not empty: what it still holds is reported already.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTEMPTY)) => {}
            Err(e) => out.left.push(format!("{}: {e}", path_of(&stack, &done.name).display())),
        }
    }
}

/// Removes the directory `name` in `parent` and everything in it, if it is the directory
/// `expected` names (device, inode) and belongs to `uid`. `Ok(None)`: it was already gone.
pub fn remove_dir_tree(parent: &Path, name: &CStr, expected: (u64, u64), uid: u32) -> io::Result<Option<Removed>> {
    let label = parent.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
    let pdir = CString::new(parent.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in path"))?;
    // SAFETY: open on a NUL-terminated path; the descriptor is ours alone.
    let pfd = cvt(unsafe { libc::open(pdir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
    // SAFETY: pfd was just returned by open.
    let pfd = unsafe { OwnedFd::from_raw_fd(pfd) };
    let st = match stat_at(pfd.as_raw_fd(), name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !is_dir(&st) || (st.st_dev, st.st_ino) != expected || st.st_uid != uid {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not the folder palisade made (another one took its name); left alone", label.display()),
        ));
    }
    let top = open_dir_for_removal(pfd.as_raw_fd(), name)?;
    let now = stat_at(top.as_raw_fd(), c"")?;
    if (now.st_dev, now.st_ino) != expected {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} was replaced while being removed; left alone", label.display()),
        ));
    }
    let removed = remove_contents(top, &label);
    if removed.left.is_empty() {
        if let Err(e) = unlink_at(pfd.as_raw_fd(), name, libc::AT_REMOVEDIR) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(io::Error::new(e.kind(), format!("{}: {e}", label.display())));
            }
        }
    }
    Ok(Some(removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("palisade-rmtree-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    fn remove(base: &Path, name: &str) -> Removed {
        let m = fs::symlink_metadata(base.join(name)).unwrap();
        let c = CString::new(name).unwrap();
        remove_dir_tree(base, &c, (m.dev(), m.ino()), m.uid()).unwrap().unwrap()
    }

    #[test]
    fn removes_locked_deep_and_odd_trees_without_following_links() {
        let base = scratch("odd");
        let t = base.join("t");
        fs::create_dir_all(t.join("locked/inner")).unwrap();
        fs::write(t.join("locked/inner/f"), vec![7u8; 10000]).unwrap();
        fs::create_dir_all(t.join("ro/sub")).unwrap();
        fs::write(t.join("ro/sub/g"), "x").unwrap();
        let outside = base.join("outside.txt");
        fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, t.join("link")).unwrap();
        std::os::unix::fs::symlink(&base, t.join("dirlink")).unwrap();
        let fifo = CString::new(t.join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let mut deep = t.join("deep");
        for _ in 0..(OPEN_ANCESTORS * 3) {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("leaf"), "x").unwrap();
        fs::set_permissions(t.join("ro/sub"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(t.join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(t.join("locked/inner"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(t.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let r = remove(&base, "t");
        assert!(r.left.is_empty(), "{:?}", r.left);
        assert!(!t.exists());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        assert!(r.bytes >= 10000);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_a_folder_that_is_not_the_recorded_one() {
        let base = scratch("other");
        fs::create_dir(base.join("t")).unwrap();
        fs::write(base.join("t/f"), "x").unwrap();
        let m = fs::metadata(base.join("t")).unwrap();
        let c = CString::new("t").unwrap();
        assert!(remove_dir_tree(&base, &c, (m.dev(), m.ino() + 1), m.uid()).is_err());
        assert!(base.join("t/f").exists());
        assert!(remove_dir_tree(&base, &CString::new("gone").unwrap(), (0, 0), 0).unwrap().is_none());
        fs::remove_dir_all(&base).unwrap();
    }
}
