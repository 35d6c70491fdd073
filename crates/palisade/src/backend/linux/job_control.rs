//! A command run as the terminal's foreground job ([`crate::Command::job_control`], which
//! `palisade run` asks for), so that an interactive shell, an editor or a REPL inside works as
//! it does under `sh`.
//!
//! Why it is needed: the caller's process group is outside the sandbox's pid namespace, so
//! inside it has no number (getpgrp and tcgetpgrp give 0). A shell that records the terminal's
//! foreground group to give it back on exit cannot name it again (dash exits 2 with "Cannot set
//! tty process group"). So the sandbox gets a group of its own, init's, which the command and
//! everything it starts join, and that group is made the terminal's foreground group while the
//! command runs, as a shell does for a job:
//!
//! * init makes its group (setpgid; this process does too, for whichever runs first) and waits
//!   for one byte on the job channel before it starts the command; this process hands the
//!   terminal over (tcsetpgrp) first, and only if its own group is the foreground one: run in
//!   the background of the user's shell (`palisade run -- cat &`), it never takes the terminal.
//!   The kernel enforces that too: tcsetpgrp from a background group stops it with SIGTTOU;
//! * the stop signals init's group gets (Ctrl-Z, or SIGTTIN/SIGTTOU for a background read or
//!   mode change, or a program such as vim suspending itself with `kill(0, SIGTSTP)`) reach
//!   init, which reports them here. This process then stops its own group (the user's job) with
//!   the same signal, as the terminal would have had the job been one group, and the user's
//!   shell sees the job stopped. Once continued (`fg`), it hands the terminal over again if its
//!   group is the foreground one, and continues the sandbox's group (`bg`: continued in the
//!   background, where touching the terminal stops the job again). A SIGTTIN/SIGTTOU while
//!   this process's group is already the foreground one (a job started in the background, then
//!   brought to the foreground) only hands the terminal over;
//! * when the command has ended (the sandbox is empty), the foreground group goes back to this
//!   process's group if it is still the sandbox's (or another group with no process left, as
//!   an inner shell's last job), with the terminal's modes as they were if the command was
//!   killed by a signal (a shell restores them for a job killed that way; this process itself
//!   exits normally). If this process is killed (SIGKILL), the sandbox dies with it
//!   (kill_on_parent_death) and the user's interactive shell takes the terminal back itself, as
//!   it does after every foreground job.
//!
//! Only when the command's stdin and stdout are both this process's controlling terminal: in
//! `palisade run -- cmd | less`, less (in the caller's group) must keep the terminal.

use super::sys;
use crate::spec::{CommandSpec, Stdio};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The signals the sandbox's init reports on the job channel.
pub const STOP_SIGNALS: &[libc::c_int] = &[libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];

/// Prepared before the clone: the job channel and the terminal.
pub struct Setup {
    channel: OwnedFd,
    child_end: OwnedFd,
    terminal: Terminal,
}

struct Terminal {
    fd: OwnedFd,
    /// This process's group (the user's job), which gets the terminal back.
    own_group: libc::pid_t,
    /// The terminal's modes before the command ran.
    modes: Option<libc::termios>,
}

impl Setup {
    /// A job channel when the command runs as the terminal's foreground job: asked for, with a
    /// pid namespace (init makes the group), and stdin and stdout are this process's
    /// controlling terminal.
    pub fn open(spec: &CommandSpec, pid_namespace: bool) -> io::Result<Option<Setup>> {
        if !spec.job_control || !pid_namespace || spec.stdin != Stdio::Inherit || spec.stdout != Stdio::Inherit {
            return Ok(None);
        }
        let Some(fd) = controlling_terminal() else { return Ok(None) };
        let (channel, child_end) = sys::socketpair()?;
        let modes = sys::tcgetattr(fd.as_raw_fd()).ok();
        Ok(Some(Setup { channel, child_end, terminal: Terminal { fd, own_group: sys::getpgrp(), modes } }))
    }

    /// Init's end of the channel.
    pub fn child_fd(&self) -> RawFd {
        self.child_end.as_raw_fd()
    }

    /// This process's descriptors, which the child closes right away.
    pub fn parent_fds(&self) -> [RawFd; 2] {
        [self.channel.as_raw_fd(), self.terminal.fd.as_raw_fd()]
    }

    /// Once init (`init`) is cloned: its group, the terminal handed over if this process is in
    /// the foreground, the go-ahead for the command, and the thread that relays stops.
    /// A failed step here means init is gone already (its status says why): none is an error.
    pub fn start(self, init: libc::pid_t) -> JobControl {
        let Setup { channel, child_end, terminal } = self;
        drop(child_end);
        let _ = sys::setpgid(init, init); // init does the same: whichever runs first
        let job = Arc::new(Job { terminal, sandbox_group: init });
        job.hand_over_if_foreground();
        let _ = sys::send_byte(channel.as_raw_fd(), 0);
        let relay = job.clone();
        // Without the thread (no resources left), stops are not relayed: Ctrl-Z then stops
        // the command alone, and `kill -CONT` of this process continues nothing.
        let thread =
            std::thread::Builder::new().name("palisade-job".into()).spawn(move || relay.relay_stops(channel)).ok();
        JobControl { job, thread, killed_by_signal: false }
    }
}

/// This process's controlling terminal, if its stdin and stdout are both that terminal.
fn controlling_terminal() -> Option<OwnedFd> {
    let same = |fd: RawFd| sys::tcgetsid(fd).is_ok_and(|sid| sid == sys::getsid());
    let rdev = |fd: RawFd| sys::fstat_rdev(fd).ok();
    if !(same(0) && same(1) && rdev(0).is_some() && rdev(0) == rdev(1)) {
        return None;
    }
    sys::dup_cloexec(0).ok()
}

struct Job {
    terminal: Terminal,
    /// Init's pid, the number of the sandbox's process group.
    sandbox_group: libc::pid_t,
}

impl Job {
    fn term(&self) -> RawFd {
        self.terminal.fd.as_raw_fd()
    }

    fn we_are_foreground(&self) -> bool {
        sys::tcgetpgrp(self.term()) == Ok(self.terminal.own_group)
    }

    /// Makes the sandbox's group the foreground one, if this process's group is. Without
    /// blocking SIGTTOU: should the user's shell take the terminal back in between, the kernel
    /// stops this process's group instead.
    fn hand_over_if_foreground(&self) {
        if self.we_are_foreground() {
            let _ = sys::tcsetpgrp(self.term(), self.sandbox_group);
        }
    }

    /// Reads the stop signals init reports until the sandbox is gone (end of file).
    fn relay_stops(&self, channel: OwnedFd) {
        // Another thread takes the stop signals this one sends (see stop_own_group).
        sys::block_signals(&sys::sigset_of(STOP_SIGNALS));
        let mut byte = [0u8; 1];
        while sys::read_full(channel.as_raw_fd(), &mut byte) == Ok(1) {
            let sig = libc::c_int::from(byte[0]);
            if STOP_SIGNALS.contains(&sig) {
                self.stopped(sig);
            }
        }
    }

    fn stopped(&self, sig: libc::c_int) {
        if sig != libc::SIGTSTP && self.we_are_foreground() {
            // The sandbox touched the terminal from the background while the user's job is in
            // the foreground (started in the background, then brought forward while running).
            self.hand_over_if_foreground();
        } else {
            stop_own_group(sig);
            self.hand_over_if_foreground();
        }
        let _ = sys::kill(-self.sandbox_group, libc::SIGCONT);
    }
}

/// Stops this process's group (the user's job, with a calling script) with `sig`, as the
/// terminal stops its foreground group, and returns once this process is continued. This
/// thread blocks `sig`: another takes it and stops the process, all threads at their next
/// system call, in the same step that takes it off the pending set; so once this thread sees it
/// gone, the stop has come and gone. An orphaned group (no parent shell to continue it) is not
/// stopped (the kernel discards the signal), nor is a process that ignores `sig`.
fn stop_own_group(sig: libc::c_int) {
    if sys::kill(0, sig).is_err() {
        return;
    }
    // Bounded, should every thread block `sig` (an embedding program's choice).
    for _ in 0..5000 {
        if !sys::is_pending(sig) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Job control for one running command.
pub struct JobControl {
    job: Arc<Job>,
    thread: Option<JoinHandle<()>>,
    killed_by_signal: bool,
}

impl JobControl {
    /// Init's pid: the sandbox's process group.
    pub fn sandbox_group(&self) -> libc::pid_t {
        self.job.sandbox_group
    }

    /// The command ended with wait status `status` (and the sandbox is empty): the terminal
    /// goes back (see Drop).
    pub fn finish(mut self, status: libc::c_int) {
        self.killed_by_signal = libc::WIFSIGNALED(status);
    }
}

impl Drop for JobControl {
    /// Gives the terminal back once the sandbox is empty (not while a command dropped without
    /// waiting still runs in it).
    fn drop(&mut self) {
        if sys::kill(-self.job.sandbox_group, 0) != Err(libc::ESRCH) {
            return;
        }
        if let Some(t) = self.thread.take() {
            // Ends at end of file: init, the channel's other end, has exited.
            let _ = t.join();
        }
        let term = self.job.term();
        let own = self.job.terminal.own_group;
        let Ok(fg) = sys::tcgetpgrp(term) else { return };
        let sandboxs = fg == self.job.sandbox_group || (fg != own && sys::kill(-fg, 0) == Err(libc::ESRCH));
        if !sandboxs {
            return;
        }
        // This process may be in the background now (the terminal is the sandbox's): taking
        // the terminal back must not stop it, as a shell does for a finished job.
        let old = sys::block_signals(&sys::sigset_of(&[libc::SIGTTOU]));
        if sys::tcsetpgrp(term, own).is_ok() && self.killed_by_signal {
            if let Some(modes) = self.job.terminal.modes.as_ref() {
                let _ = sys::tcsetattr(term, modes);
            }
        }
        sys::set_signal_mask(&old);
    }
}
