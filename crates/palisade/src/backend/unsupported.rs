//! Platforms without an enforcing backend yet: every spawn is refused (fail closed), so the
//! library and CLI still build and report clearly what is missing.

use crate::{CommandSpec, Enforcement, Error, ExitStatus, HostReport, Policy, SandboxOptions};
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

impl Prepared {
    pub fn new(_policy: Policy, _options: &SandboxOptions) -> Result<Prepared, Error> {
        Err(refuse())
    }
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }
    pub fn spawn(&self, _spec: &CommandSpec) -> Result<ChildInner, Error> {
        Err(refuse())
    }
}

pub struct ChildInner {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

impl ChildInner {
    pub fn id(&self) -> u32 {
        0
    }
    pub fn signal(&self, _sig: i32) -> io::Result<()> {
        Err(io::Error::other("no backend"))
    }
    pub fn kill(&mut self) -> io::Result<()> {
        Err(io::Error::other("no backend"))
    }
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        Err(io::Error::other("no backend"))
    }
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Err(io::Error::other("no backend"))
    }
}

pub fn host_report() -> HostReport {
    let mut r = HostReport::default();
    r.notes.push(format!("no enforcing backend for {} yet", std::env::consts::OS));
    r
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
    pub fn wait(&self, child: &mut crate::Child) -> io::Result<ExitStatus> {
        child.wait()
    }
}
