//! The contract every backend implements (Linux, Windows unelevated and elevated, unsupported
//! platforms, and macOS next). The facade in `lib.rs` reaches a backend only through these two
//! traits, so the compiler checks that each backend provides all of it with the same types.

use std::fs::File;
use std::io;

use crate::error::Error;
use crate::report::{CleanupReport, Enforcement, HostReport};
use crate::spec::{CommandSpec, SandboxOptions};
use crate::status::ExitStatus;
use palisade_policy::Policy;

/// A policy made ready for this host: everything that can be decided and prepared once, before
/// any command, so that each spawn only does per-command work.
pub(crate) trait Backend: Sized {
    /// A running command.
    type Child: BackendChild;

    /// Checks that this host can enforce `policy` (refusing with [`Error::Unenforceable`] when
    /// a protection it asks for cannot be) and prepares it.
    fn prepare(policy: Policy, options: &SandboxOptions) -> Result<Self, Error>;
    /// The policy this sandbox enforces.
    fn policy(&self) -> &Policy;
    /// Whether commands' refused calls are observed (SandboxOptions::report_denials, where the
    /// backend has a kernel-side source for them).
    fn reports_denials(&self) -> bool {
        false
    }
    /// The enforcement layers this sandbox uses, for the caller to show.
    fn enforcement(&self) -> &Enforcement;
    /// Starts one command under the policy.
    fn spawn(&self, spec: &CommandSpec) -> Result<Self::Child, Error>;

    /// What `palisade check` reports about this host.
    fn host_report() -> HostReport;
    /// Removes what this backend's sandboxes keep on disk between commands (`palisade cleanup`).
    fn cleanup() -> Result<CleanupReport, Error>;
}

/// A command started by [`Backend::spawn`].
pub(crate) trait BackendChild {
    /// The command's process id as the caller's system sees it.
    fn id(&self) -> u32;
    /// Sends `sig` (a Unix signal number; Windows maps the ones it can) to the command.
    fn signal(&self, sig: i32) -> io::Result<()>;
    /// Ends the command and everything it started.
    fn kill(&mut self) -> io::Result<()>;
    /// Waits for the command to end (and for the backend's clean-up after it).
    fn wait(&mut self) -> io::Result<ExitStatus>;
    /// Returns the status if the command has ended, without blocking.
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>>;
    /// What the backend's host-side check found and did once the command ended, one line each.
    fn notices(&self) -> &[String] {
        &[]
    }
    /// The command's connections through the network proxy (network = allow), once it ended.
    fn network_records(&self) -> &[crate::status::NetworkRecord] {
        &[]
    }
    /// The calls the kernel refused that the denial observer saw (--report-denials), once the
    /// command ended; empty where there is no observer.
    fn denials(&self) -> &[crate::status::DenialRecord] {
        &[]
    }
    /// Closes the denial observer's listener while the command runs (tests of fail-closed).
    fn stop_denial_observer(&mut self) {}
    /// The caller's ends of the piped standard streams (each `Some` once, for `Stdio::Piped`).
    fn take_stdio(&mut self) -> (Option<File>, Option<File>, Option<File>);
}
