//! Process groups and the controlling terminal (job control; see job_control.rs). The ones the
//! sandbox's init calls make one system call each and allocate nothing.

use super::{check, check_int, Errno};
use std::os::fd::RawFd;

/// Puts process `pid` (0: this one) into the process group `pgid` (0: its own pid).
pub fn setpgid(pid: libc::pid_t, pgid: libc::pid_t) -> Result<(), Errno> {
    // SAFETY: setpgid has no memory effects.
    check_int(unsafe { libc::setpgid(pid, pgid) }).map(drop)
}

/// This process's group.
pub fn getpgrp() -> libc::pid_t {
    // SAFETY: getpgrp has no preconditions.
    unsafe { libc::getpgrp() }
}

/// The process group of `pid`.
pub fn getpgid(pid: libc::pid_t) -> Result<libc::pid_t, Errno> {
    // SAFETY: getpgid has no memory effects.
    check_int(unsafe { libc::getpgid(pid) })
}

/// The terminal's foreground process group (ENOTTY unless it is this process's controlling
/// terminal).
pub fn tcgetpgrp(fd: RawFd) -> Result<libc::pid_t, Errno> {
    // SAFETY: tcgetpgrp only reads the terminal's state.
    check_int(unsafe { libc::tcgetpgrp(fd) })
}

/// Makes `pgid` the terminal's foreground process group. The kernel checks that the terminal is
/// this process's controlling terminal, that the group is in its session, and, unless SIGTTOU
/// is blocked or ignored, that this process's group is in the foreground (otherwise it stops
/// the group with SIGTTOU and retries once it is continued).
pub fn tcsetpgrp(fd: RawFd, pgid: libc::pid_t) -> Result<(), Errno> {
    loop {
        // SAFETY: tcsetpgrp only changes the terminal's state.
        match check_int(unsafe { libc::tcsetpgrp(fd, pgid) }) {
            Err(libc::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// The session of the terminal (ENOTTY unless it is this process's controlling terminal).
pub fn tcgetsid(fd: RawFd) -> Result<libc::pid_t, Errno> {
    // SAFETY: tcgetsid only reads the terminal's state.
    check_int(unsafe { libc::tcgetsid(fd) })
}

/// This process's session.
pub fn getsid() -> libc::pid_t {
    // SAFETY: getsid(0) has no preconditions.
    unsafe { libc::getsid(0) }
}

pub fn tcgetattr(fd: RawFd) -> Result<libc::termios, Errno> {
    // SAFETY: termios is plain data; tcgetattr fills it in.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: t is a valid out pointer for the call.
    check_int(unsafe { libc::tcgetattr(fd, &mut t) })?;
    Ok(t)
}

pub fn tcsetattr(fd: RawFd, t: &libc::termios) -> Result<(), Errno> {
    // SAFETY: t is a valid termios read by the call.
    check_int(unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, t) }).map(drop)
}

/// Whether `sig` is pending for this thread or its process.
pub fn is_pending(sig: libc::c_int) -> bool {
    // SAFETY: set is plain data that sigpending fills in; sigismember reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set) == 0 && libc::sigismember(&set, sig) == 1
    }
}

/// Sends one byte without blocking and without SIGPIPE (a full or closed channel drops it).
pub fn send_byte(fd: RawFd, byte: u8) -> Result<(), Errno> {
    let b = [byte];
    // SAFETY: send reads one byte from b.
    check(unsafe { libc::send(fd, b.as_ptr().cast(), 1, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) } as libc::c_long)
        .map(drop)
}

/// The device number of what `fd` names (a terminal's).
pub fn fstat_rdev(fd: RawFd) -> Result<libc::dev_t, Errno> {
    // SAFETY: st is plain data that fstat fills in; zeroed is a valid value for it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out pointer for the call.
    check_int(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_rdev)
}

/// A close-on-exec copy of `fd`.
pub fn dup_cloexec(fd: RawFd) -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let d = check_int(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: d was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(d) })
}
