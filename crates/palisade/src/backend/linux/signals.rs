//! Passing the signals sent to the calling program on to its command (see
//! [`crate::signals::Forwarder`]): the signals are blocked in the calling thread and a thread of
//! their own waits for them, so no handler runs at an arbitrary point of the program.

use super::sys;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};

pub(super) const FORWARDED: &[libc::c_int] =
    &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];

/// The signals that also end a wait for another run's lock (see [`crate::interrupt_lock_waits`]).
const ENDING: &[libc::c_int] = &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The command's pid once it runs (0 before), and a signal that arrived before it did.
#[derive(Default)]
struct State {
    pid: libc::pid_t,
    pending: Option<libc::c_int>,
}

pub struct Forwarder {
    state: Arc<Mutex<State>>,
}

/// Whether a standard stream of the calling program (which the command inherits) is a terminal.
fn any_terminal() -> bool {
    std::io::stdin().is_terminal() || std::io::stdout().is_terminal() || std::io::stderr().is_terminal()
}

/// Whether the command (the sandbox's init) runs in a process group other than this process's.
fn in_own_group(pid: libc::pid_t) -> bool {
    sys::getpgid(pid).is_ok_and(|g| g != sys::getpgrp())
}

fn send(pid: libc::pid_t, sig: libc::c_int) {
    // The command may have ended already: nothing is left to tell.
    let _ = sys::kill(pid, sig);
}

impl Forwarder {
    /// Blocks the forwarded signals in this thread (the command's own mask is reset before it
    /// execs) and starts a thread that waits for them.
    pub fn install() -> Forwarder {
        let state = Arc::new(Mutex::new(State::default()));
        let set = sys::sigset_of(FORWARDED);
        sys::block_signals(&set);
        let shared = state.clone();
        std::thread::spawn(move || loop {
            let (sig, code) = sys::wait_signal(&set);
            let mut st = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if st.pid == 0 {
                // Not started yet (the terminal could not have reached it either): keep the
                // signal for the moment it starts rather than lose it; one that ends processes
                // also ends a wait for another run's lock, so that the caller ends promptly
                // instead.
                st.pending = Some(sig);
                if ENDING.contains(&sig) {
                    super::interrupt_lock_waits();
                }
            } else if code != libc::SI_KERNEL || !any_terminal() || in_own_group(st.pid) {
                // A signal the terminal generated already reached the command through the
                // process group; only pass on those another process sent to the caller. Without
                // a terminal on any standard stream the command runs in its own session (no
                // controlling terminal to read from), so pass those on too; and when it runs
                // in a process group of its own (as the terminal's foreground job, see
                // job_control.rs), the terminal signalled this process's group, not the
                // command's.
                send(st.pid, sig);
            }
        });
        Forwarder { state }
    }

    /// A signal that arrived before the command started and is still to be passed on.
    pub fn pending(&self) -> Option<i32> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).pending
    }

    /// From now on signals go to `pid`, starting with the one that arrived before it ran.
    pub fn forward_to(&self, pid: u32) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.pid = pid as libc::pid_t;
        if let Some(sig) = st.pending.take() {
            send(st.pid, sig);
        }
    }

    /// Waits for the command; the forwarding thread does the rest.
    pub fn wait(
        &self,
        child: &mut impl crate::backend::contract::BackendChild,
    ) -> std::io::Result<crate::status::ExitStatus> {
        child.wait()
    }
}
