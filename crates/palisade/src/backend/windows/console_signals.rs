//! Passing the console's Ctrl-C on to the command (see [`crate::signals::Forwarder`]). The
//! command runs in its own console process group, so Ctrl-C and Ctrl-Break reach only the
//! calling program: a handler notes them, and the waiting loop passes each on as the command's
//! Ctrl-Break (`Child::signal(SIGINT)`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use windows_sys::Win32::System::Console::{SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT};

/// Set by the console handler, cleared by the waiting loop that passes it on.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How often the waiting loop looks at the command and at [`INTERRUPTED`].
const POLL: Duration = Duration::from_millis(20);

/// The console control handler; Windows runs it on a thread of its own.
unsafe extern "system" fn on_console_event(event: u32) -> windows_sys::core::BOOL {
    if event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT {
        INTERRUPTED.store(true, Ordering::SeqCst);
        1 // handled: the caller stays to pass it on and report the command's status
    } else {
        0
    }
}

pub struct Forwarder;

impl Forwarder {
    pub fn install() -> Forwarder {
        // SAFETY: registers a handler with the signature the API expects; it only stores to an
        // atomic, and stays valid for the whole process (a static function).
        unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) };
        Forwarder
    }

    /// A Ctrl-C before the command started is passed on by [`Forwarder::wait`] like any other.
    pub fn pending(&self) -> Option<i32> {
        None
    }

    pub fn forward_to(&self, _pid: u32) {}

    /// Waits for the command, passing each Ctrl-C or Ctrl-Break on as it arrives.
    pub fn wait(
        &self,
        child: &mut impl crate::backend::contract::BackendChild,
    ) -> std::io::Result<crate::status::ExitStatus> {
        const SIGINT: i32 = 2;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if INTERRUPTED.swap(false, Ordering::SeqCst) {
                child.signal(SIGINT)?;
            }
            std::thread::sleep(POLL);
        }
    }
}
