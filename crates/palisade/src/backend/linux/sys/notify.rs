//! seccomp user notification: the observer filter's listener (installed in the child) and the
//! supervisor's side (receive a notification, check it is still live, let the kernel go on).

use super::{check, Errno};
use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Loads `program` as a seccomp filter with a new user-notification listener; returns the
/// listener. Async-signal-safe (one system call). no_new_privs must be set.
pub fn seccomp_set_filter_with_listener(program: &[seccompiler::sock_filter]) -> Result<RawFd, Errno> {
    let prog =
        libc::sock_fprog { len: program.len() as libc::c_ushort, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: prog points to the program (same layout as libc's sock_filter), which outlives
    // the call; the kernel copies it and returns a new descriptor.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        )
    })
    .map(|fd| fd as RawFd)
}

/// One notification: the calling thread, the system call and its raw arguments.
#[derive(Clone, Copy, Debug)]
pub struct Notification {
    pub id: u64,
    pub pid: u32,
    pub nr: i32,
    pub args: [u64; 6],
}

/// Waits for the next notification on `listener` (blocking). `ENOENT`: the caller was gone
/// before it could be read (try again).
pub fn notif_recv(listener: RawFd) -> Result<Notification, Errno> {
    // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed and fills it.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one seccomp_notif into `n`, which outlives the call.
    check(unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n as *mut libc::seccomp_notif) }
        as libc::c_long)?;
    Ok(Notification { id: n.id, pid: n.pid, nr: n.data.nr, args: n.data.args })
}

/// Whether notification `id` is still pending (its caller has not died or been interrupted):
/// then its pid still names that caller, and what was read from its memory is its own.
pub fn notif_id_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: the ioctl reads one u64 from `id`, which outlives the call.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id as *const u64) == 0 }
}

/// Lets the system call of notification `id` go on as if no filter had asked: the kernel runs
/// it with every other check in place (Landlock, mount flags, permissions). `ENOENT`: the
/// caller is gone.
pub fn notif_continue(listener: RawFd, id: u64) -> Result<(), Errno> {
    let mut resp =
        libc::seccomp_notif_resp { id, val: 0, error: 0, flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32 };
    // SAFETY: the ioctl reads one seccomp_notif_resp from `resp`, which outlives the call.
    check(unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp as *mut libc::seccomp_notif_resp) }
        as libc::c_long)
    .map(drop)
}

/// What `poll` said about a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    pub readable: bool,
    /// Hung up: for a listener, no process uses its filter any more.
    pub hung_up: bool,
}

/// Waits until one of `fds` is readable or hung up (no timeout); one answer per descriptor.
pub fn poll_readable<const N: usize>(fds: [RawFd; N]) -> Result<[Ready; N], Errno> {
    let mut p = fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
    loop {
        // SAFETY: p is an array of N pollfd, which outlives the call.
        match check(unsafe { libc::poll(p.as_mut_ptr(), N as libc::nfds_t, -1) } as libc::c_long) {
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    Ok(p.map(|p| Ready {
        readable: p.revents & libc::POLLIN != 0,
        hung_up: p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
    }))
}

/// Opens `path` (`/proc/PID/root`-relative, `dirfd` acting as the root: absolute links and `..`
/// cannot leave it) as an `O_PATH` descriptor.
pub fn open_in_root(root: RawFd, path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: open_how is plain data (non-exhaustive in libc: built from zeroes).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: path is NUL-terminated and `how` outlives the call; the kernel returns a new
    // descriptor, which becomes owned here.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: fd is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
