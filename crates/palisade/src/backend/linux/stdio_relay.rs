//! Inherited standard streams, so that the command can write to them but not change them.
//!
//! A descriptor the command inherits names a host inode, and the calls that change an inode's
//! metadata through a descriptor (fchmod, fchown, futimens, fsetxattr, ftruncate) check the
//! descriptor's own mount, the host's writable one, not the sandbox's read-only view. So the
//! command never gets such a descriptor:
//!
//! * pipes and sockets (private inodes of pipefs and sockfs) are passed as they are;
//! * /dev/null is opened again inside the sandbox, where it is a read-only bind (as root,
//!   `chmod 000 /proc/self/fd/0` would otherwise break the host's /dev/null for everyone);
//! * the caller's terminal, which the sandbox shows at /dev/console (a read-only bind too), is
//!   opened again there; if that open fails (root running on another user's terminal cannot
//!   open it in its user namespace), the inherited descriptor stays, and [`TerminalGuard`]
//!   puts back a mode or owner the command changed once it ends;
//! * a regular file given as stdin (`< input.txt`, read-only) is opened again by its path inside
//!   the sandbox, where that path is on a read-only mount, at the inherited offset (if the path
//!   still names the same file; otherwise, e.g. a file in the host's /tmp, the descriptor stays
//!   as it is). Relaying it would read it ahead: in `while read f; do palisade run …; done <
//!   list`, the first run would swallow the whole list. The command's reads no longer move the
//!   caller's offset;
//! * anything else (a regular file such as `>> out.log`, a directory, a named FIFO, another
//!   device) is replaced by a pipe that a thread of this process relays to the original
//!   descriptor: writes keep the original's O_APPEND and position, the command cannot
//!   truncate, chmod or touch the file. stdout and stderr that are one open file description
//!   (`>> f 2>&1`) share one pipe, so their interleaving is kept.
//!
//! Terminals other than the caller's console (say, stderr on a second pty) are passed as they
//! are, under the guard. With `keep_processes`, output relays are not waited for (processes
//! outliving the command may hold their pipes); what survivors write after palisade exits is
//! lost.

use super::child::StdioFd;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

/// How one inherited stream reaches the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Pass,
    DevNull { flags: libc::c_int },
    Console { flags: libc::c_int },
    InputFile,
    Relay,
}

/// What the command gets for its three standard streams, and the relays to start once it runs.
pub struct InheritedStdio {
    /// Per stream: `None` (not inherited, or passed as it is) or what the child does instead.
    child: [Option<StdioFd>; 3],
    /// The command's ends of the relay pipes (closed here once the command has its copies).
    child_ends: Vec<OwnedFd>,
    /// Paths the child opens again (`StdioFd::ReopenInput` points into them): kept until the
    /// command has started.
    paths: Vec<std::ffi::CString>,
    /// (from, to) pairs for the relay threads.
    pumps: Vec<Pump>,
    guard: TerminalGuard,
}

struct Pump {
    from: OwnedFd,
    to: OwnedFd,
    output: bool,
}

impl InheritedStdio {
    /// Decides, for each inherited stream (`inherited[i]`), how the command gets it.
    /// `console_rdev`: the device number of the caller's terminal when the sandbox binds it at
    /// /dev/console. `confine`: whether to reroute at all (not in full-access mode).
    pub fn prepare(
        inherited: [bool; 3],
        console_rdev: Option<libc::dev_t>,
        confine: bool,
    ) -> io::Result<InheritedStdio> {
        let mut me = InheritedStdio {
            child: [None; 3],
            child_ends: Vec::new(),
            paths: Vec::new(),
            pumps: Vec::new(),
            guard: TerminalGuard::default(),
        };
        let mut routes = [Route::Pass; 3];
        for fd in 0..3 {
            if !inherited[fd] {
                continue;
            }
            let Ok(st) = ffi::fstat(fd as RawFd) else { continue }; // closed: nothing to protect
            if ffi::isatty(fd as RawFd) {
                me.guard.record(fd as RawFd, &st);
            }
            if confine {
                routes[fd] = route(fd as RawFd, &st, console_rdev)?;
            }
        }
        for fd in 0..3 {
            me.child[fd] = match routes[fd] {
                Route::Pass => None,
                Route::DevNull { flags } => Some(StdioFd::Reopen { path: c"/dev/null", flags, or_inherit: false }),
                Route::Console { flags } => Some(StdioFd::Reopen { path: c"/dev/console", flags, or_inherit: true }),
                Route::InputFile => me.reopen_input(fd as RawFd),
                Route::Relay => {
                    // stderr into the same open file description as stdout: the same pipe.
                    if fd == 2 && routes[1] == Route::Relay && ffi::same_description(1, 2) {
                        me.child[1]
                    } else {
                        Some(me.relay(fd as RawFd)?)
                    }
                }
            };
        }
        Ok(me)
    }

    /// `ReopenInput` for a regular file open for reading, or `None` (inherited as it is) when
    /// its path cannot be told.
    fn reopen_input(&mut self, fd: RawFd) -> Option<StdioFd> {
        use std::os::unix::ffi::OsStrExt;
        let st = ffi::fstat(fd).ok()?;
        let path = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok().filter(|p| p.is_absolute())?;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: lseek has no memory effects.
        let offset = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
        if offset < 0 {
            return None;
        }
        let ptr = path.as_ptr();
        self.paths.push(path); // moving the CString does not move its heap buffer
        Some(StdioFd::ReopenInput { path: ptr, dev: st.st_dev, ino: st.st_ino, offset })
    }

    fn relay(&mut self, fd: RawFd) -> io::Result<StdioFd> {
        let original = ffi::dup_cloexec(fd)?;
        let (r, w) = super::sys::pipe()?;
        let (from, to, child_end, output) = if fd == 0 { (original, w, r, false) } else { (r, original, w, true) };
        let raw = child_end.as_raw_fd();
        self.child_ends.push(child_end);
        self.pumps.push(Pump { from, to, output });
        Ok(StdioFd::Fd(raw))
    }

    /// What the child does for stream `i` instead of inheriting it, if anything.
    pub fn child_stdio(&self, i: usize) -> Option<StdioFd> {
        self.child[i]
    }

    /// This process's relay ends, which the child must close.
    pub fn parent_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.pumps.iter().flat_map(|p| [p.from.as_raw_fd(), p.to.as_raw_fd()]).chain(self.guard.raw_fds())
    }

    /// Once the command has its copies: closes the command's ends here and starts the relays.
    pub fn start(self) -> io::Result<Relays> {
        drop(self.child_ends);
        let mut outputs = Vec::new();
        for p in self.pumps {
            let output = p.output;
            let h = std::thread::Builder::new().name("palisade-stdio".into()).spawn(move || pump(p.from, p.to))?;
            // An input relay may block reading a FIFO or a slow device: it is never waited
            // for, and ends when the command closes its stdin (EPIPE) or at end of input.
            if output {
                outputs.push(h);
            }
        }
        Ok(Relays { outputs, guard: self.guard })
    }
}

fn route(fd: RawFd, st: &libc::stat, console_rdev: Option<libc::dev_t>) -> io::Result<Route> {
    let kind = st.st_mode & libc::S_IFMT;
    let access = ffi::status_flags(fd)? & libc::O_ACCMODE;
    Ok(match kind {
        libc::S_IFSOCK => Route::Pass,
        libc::S_IFIFO if ffi::is_anonymous_pipe(fd) => Route::Pass,
        libc::S_IFCHR if st.st_rdev == libc::makedev(1, 3) => Route::DevNull { flags: access },
        libc::S_IFCHR if Some(st.st_rdev) == console_rdev => Route::Console { flags: access | libc::O_NOCTTY },
        // Another terminal: relaying would take away what makes it one (isatty, job control).
        libc::S_IFCHR if ffi::isatty(fd) => Route::Pass,
        libc::S_IFREG if fd == 0 && access == libc::O_RDONLY => Route::InputFile,
        _ => Route::Relay,
    })
}

/// Copies until end of file or an error on either side, then closes both (a command writing
/// to a closed relay gets EPIPE, as it would writing to the closed reader itself).
fn pump(from: OwnedFd, to: OwnedFd) {
    // A reader that went away must give EPIPE here, not kill the whole process.
    ffi::block_sigpipe_in_this_thread();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match ffi::read(from.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if ffi::write_all_waiting(to.as_raw_fd(), &buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// The running relays of one command.
pub struct Relays {
    outputs: Vec<JoinHandle<()>>,
    guard: TerminalGuard,
}

impl Relays {
    /// After the command (and everything in its sandbox) ended: waits until all output has
    /// been relayed, unless processes may outlive the command; puts the terminal back.
    pub fn finish(self, wait_for_output: bool) {
        if wait_for_output {
            for h in self.outputs {
                let _ = h.join();
            }
        }
        self.guard.restore();
    }
}

/// The mode and owner of the terminals the command inherits, put back when it ends if it
/// changed them through a descriptor that is not the read-only /dev/console one (a terminal
/// other than the console, or root on another user's terminal). A backstop: while the command
/// runs, such a change holds.
#[derive(Default)]
struct TerminalGuard {
    /// A descriptor of each distinct terminal, with its mode, owner and group at the start.
    seen: Vec<(OwnedFd, libc::dev_t, libc::mode_t, libc::uid_t, libc::gid_t)>,
}

impl TerminalGuard {
    fn record(&mut self, fd: RawFd, st: &libc::stat) {
        if self.seen.iter().any(|s| s.1 == st.st_rdev) {
            return;
        }
        if let Ok(own) = ffi::dup_cloexec(fd) {
            self.seen.push((own, st.st_rdev, st.st_mode & 0o7777, st.st_uid, st.st_gid));
        }
    }

    fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.seen.iter().map(|s| s.0.as_raw_fd())
    }

    fn restore(&self) {
        for (fd, _, mode, uid, gid) in &self.seen {
            let Ok(now) = ffi::fstat(fd.as_raw_fd()) else { continue };
            let mut put_back = Vec::new();
            if (now.st_uid, now.st_gid) != (*uid, *gid) {
                put_back.push(match ffi::fchown(fd.as_raw_fd(), *uid, *gid) {
                    Ok(()) => "owner".to_string(),
                    Err(e) => format!("owner (FAILED: {e})"),
                });
            }
            // After chown, which may clear set-id bits; the mode is compared again.
            let now_mode = ffi::fstat(fd.as_raw_fd()).map_or(now.st_mode, |s| s.st_mode) & 0o7777;
            if now_mode != *mode {
                put_back.push(match ffi::fchmod(fd.as_raw_fd(), *mode) {
                    Ok(()) => format!("mode {now_mode:o} -> {mode:o}"),
                    Err(e) => format!("mode {now_mode:o} (FAILED to put back {mode:o}: {e})"),
                });
            }
            if !put_back.is_empty() {
                // Never a panic on a closed stderr (a message is all this is).
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("palisade: the command changed your terminal; put back: {}\n", put_back.join(", "))
                        .as_bytes(),
                );
            }
        }
    }
}

/// Thin wrappers over the system calls above (the module's only `unsafe`).
mod ffi {
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
        // SAFETY: st is plain data that fstat fills in; zeroed is a valid value for it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes into st, which lives for the call.
        if unsafe { libc::fstat(fd, &mut st) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }

    pub fn isatty(fd: RawFd) -> bool {
        // SAFETY: isatty only inspects the descriptor.
        unsafe { libc::isatty(fd) == 1 }
    }

    pub fn status_flags(fd: RawFd) -> io::Result<libc::c_int> {
        // SAFETY: F_GETFL reads the descriptor's status flags.
        let f = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if f < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f)
    }

    /// A pipe made by pipe(2) (pipefs), not a FIFO in a filesystem (whose inode is the host's).
    pub fn is_anonymous_pipe(fd: RawFd) -> bool {
        const PIPEFS_MAGIC: libc::c_long = 0x5049_5045;
        // SAFETY: sfs is plain data that fstatfs fills in; zeroed is a valid value for it.
        let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: fstatfs writes into sfs, which lives for the call.
        unsafe { libc::fstatfs(fd, &mut sfs) == 0 && sfs.f_type as libc::c_long == PIPEFS_MAGIC }
    }

    /// Whether two of our descriptors share one open file description (`>> f 2>&1`): kcmp
    /// where the kernel has it, else the same file, flags and position.
    pub fn same_description(a: RawFd, b: RawFd) -> bool {
        const KCMP_FILE: libc::c_long = 0;
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as libc::c_long;
        // SAFETY: kcmp only compares kernel objects of this process; no memory is passed.
        let r = unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a as libc::c_long, b as libc::c_long) };
        if r >= 0 {
            return r == 0;
        }
        let (Ok(x), Ok(y), Ok(fx), Ok(fy)) = (fstat(a), fstat(b), status_flags(a), status_flags(b)) else {
            return false;
        };
        // SAFETY: lseek on descriptor numbers with SEEK_CUR only reads the position.
        let (px, py) = unsafe { (libc::lseek(a, 0, libc::SEEK_CUR), libc::lseek(b, 0, libc::SEEK_CUR)) };
        (x.st_dev, x.st_ino, fx, px) == (y.st_dev, y.st_ino, fy, py)
    }

    pub fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if d < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: d was just returned by fcntl and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(d) })
    }

    pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: buf is a valid writable slice for its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                // The caller's descriptor may be non-blocking: wait for input.
                io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
                    // SAFETY: one pollfd, valid for the call.
                    unsafe { libc::poll(&mut p, 1, -1) };
                }
                _ => return Err(e),
            }
        }
    }

    /// Writes everything, waiting for room when the caller's descriptor is non-blocking.
    pub fn write_all_waiting(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            // SAFETY: buf is a valid readable slice for its length.
            let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            if n >= 0 {
                buf = &buf[n as usize..];
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
                    // SAFETY: one pollfd, valid for the call.
                    unsafe { libc::poll(&mut p, 1, -1) };
                }
                _ => return Err(e),
            }
        }
        Ok(())
    }

    pub fn block_sigpipe_in_this_thread() {
        // SAFETY: set is initialised by sigemptyset before use; pthread_sigmask only changes
        // this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
    }

    pub fn fchmod(fd: RawFd, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: fchmod on a descriptor number.
        if unsafe { libc::fchmod(fd, mode) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn fchown(fd: RawFd, uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
        // SAFETY: fchown on a descriptor number.
        if unsafe { libc::fchown(fd, uid, gid) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
