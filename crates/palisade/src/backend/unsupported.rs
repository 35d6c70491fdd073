//! Platforms without an enforcing backend yet: every spawn is refused (fail closed), so the
//! library and CLI still build and report clearly what is missing.

use super::contract::{Backend, BackendChild};
use crate::error::Error;
use crate::report::{CleanupReport, Enforcement, HostReport};
use crate::spec::{CommandSpec, SandboxOptions};
use crate::status::ExitStatus;
use palisade_policy::Policy;
use std::fs::File;
use std::io;

pub struct Prepared {
    policy: Policy,
    enforcement: Enforcement,
}

fn refuse() -> Error {
    Error::Unenforceable {
        what: "the sandbox".into(),
        why: format!("Palisade has no enforcing backend for {} yet", std::env::consts::OS),
        fix: "run on Linux, or follow the project's issues for this platform".into(),
    }
}

impl Backend for Prepared {
    type Child = ChildInner;

    fn prepare(_policy: Policy, _options: &SandboxOptions) -> Result<Prepared, Error> {
        Err(refuse())
    }
    fn policy(&self) -> &Policy {
        &self.policy
    }
    fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }
    fn spawn(&self, _spec: &CommandSpec) -> Result<ChildInner, Error> {
        Err(refuse())
    }
    fn host_report() -> HostReport {
        let mut r = HostReport::default();
        r.notes.push(format!("no enforcing backend for {} yet", std::env::consts::OS));
        r
    }
    /// Backends that keep nothing on disk between commands have nothing to clean up.
    fn cleanup() -> Result<CleanupReport, Error> {
        let mut r = CleanupReport::default();
        r.notes.push(format!(
            "nothing to clean up on {}: palisade keeps no permissions on disk here",
            std::env::consts::OS
        ));
        Ok(r)
    }
}

pub struct ChildInner {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

impl BackendChild for ChildInner {
    fn id(&self) -> u32 {
        0
    }
    fn signal(&self, _sig: i32) -> io::Result<()> {
        Err(io::Error::other("no backend"))
    }
    fn kill(&mut self) -> io::Result<()> {
        Err(io::Error::other("no backend"))
    }
    fn wait(&mut self) -> io::Result<ExitStatus> {
        Err(io::Error::other("no backend"))
    }
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Err(io::Error::other("no backend"))
    }
    fn take_stdio(&mut self) -> (Option<File>, Option<File>, Option<File>) {
        (self.stdin.take(), self.stdout.take(), self.stderr.take())
    }
}

/// Signals sent to the caller are not passed on: no command ever runs here.
pub struct SignalForwarder;

impl SignalForwarder {
    pub fn install() -> SignalForwarder {
        SignalForwarder
    }
    pub fn pending(&self) -> Option<i32> {
        None
    }
    pub fn forward_to(&self, _pid: u32) {}
    pub fn wait(&self, child: &mut impl BackendChild) -> io::Result<ExitStatus> {
        child.wait()
    }
}
