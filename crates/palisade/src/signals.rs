//! Passing the signals sent to a program that runs one sandboxed command in the foreground (as
//! `palisade run` does) on to that command, so that `kill <palisade>` or a service manager's
//! stop reaches it and the program can still report the command's own status.
//!
//! ```no_run
//! # fn demo(sandbox: &palisade::Sandbox) -> Result<(), Box<dyn std::error::Error>> {
//! let forwarder = palisade::signals::Forwarder::install();
//! let mut child = sandbox.command("make").spawn()?;
//! forwarder.forward_to(&child);
//! let status = forwarder.wait(&mut child)?;
//! # let _ = status; Ok(()) }
//! ```

use crate::{backend, Child, ExitStatus};

/// Forwards the signals the calling program receives to its command.
///
/// Linux: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are blocked in the calling
/// thread (install it before starting other threads, which inherit the mask) and waited for by
/// a thread of their own. Those another process sends are passed on; those the terminal
/// generates already reached the command through its process group and are passed on only when
/// no standard stream is a terminal (the command then runs in its own session). One that
/// arrives before the command started is kept for it (see [`Forwarder::pending`]) and also
/// ends a wait for another run's lock ([`crate::interrupt_lock_waits`]).
///
/// Windows: the command runs in its own console process group, so a Ctrl-C or Ctrl-Break
/// reaches only the calling program; [`Forwarder::wait`] passes each on as the command's
/// Ctrl-Break.
pub struct Forwarder {
    inner: backend::SignalForwarder,
}

impl Forwarder {
    /// Starts catching the signals to forward, for the rest of the process's life.
    pub fn install() -> Forwarder {
        Forwarder { inner: backend::SignalForwarder::install() }
    }

    /// A signal that arrived before the command started and is still to be passed on (Linux):
    /// if spawning fails, the caller ends with the status that signal would give.
    pub fn pending(&self) -> Option<i32> {
        self.inner.pending()
    }

    /// Forwards from now on to `child`, starting with a [pending](Forwarder::pending) signal.
    pub fn forward_to(&self, child: &Child) {
        self.inner.forward_to(child.id())
    }

    /// Waits for `child`, forwarding what arrives meanwhile.
    pub fn wait(&self, child: &mut Child) -> std::io::Result<ExitStatus> {
        // As `Child::wait`: the command sees the end of its input first.
        drop(child.stdin.take());
        self.inner.wait(&mut child.inner)
    }
}
