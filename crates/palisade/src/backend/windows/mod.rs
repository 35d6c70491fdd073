//! The Windows backend. This module only chooses between the two modes, by the `[windows] mode`
//! setting, and hands each call to the mode's own [`Prepared`] and child:
//!
//! * the unelevated mode (`unelevated.rs`): a write-restricted token, ACLs kept between
//!   commands, and a job object;
//! * the elevated mode (`elevated/`): commands run as a sandbox account through
//!   `palisade-runner`, after the one-time `palisade setup --elevated`.
//!
//! Both carry out decisions of the platform-free crates (`palisade-windows-plan`,
//! `palisade-windows-elevated`) through the one Win32 layer (`palisade-win32`); what they share
//! here is the ACL grants of writable roots (`grants.rs`, `audit.rs`, `state.rs`) and process
//! creation (`process.rs`, `job.rs`), which `palisade-runner` uses too ([`runner_shared`]).

mod audit;
mod command_console;
pub(crate) mod console_signals;
pub(crate) mod elevated;
mod grants;
mod host;
pub mod job;
pub mod process;
mod state;
pub mod terminal;
mod unelevated;

pub(crate) use elevated::ownership_watch_for_tests;
pub(crate) use elevated::setup as elevated_setup;
pub(crate) use palisade_win32::ffi::wine_version;

use std::fs::File;
use std::io;

use palisade_policy::config::WindowsMode;
use palisade_policy::Policy;

use super::contract::{Backend, BackendChild};
use crate::error::Error;
use crate::report::{CleanupReport, Enforcement, HostReport, Layer};
use crate::spec::{CommandSpec, SandboxOptions};
use crate::status::ExitStatus;

/// What `palisade-runner` (its own binary) shares with the library: finding and starting the
/// command, its job object, the runner's end of the pipe, and where setup's folder is.
pub mod runner_shared {
    pub use super::elevated::pipe::Pipe;
    pub use super::elevated::program_data_dir;
    pub use super::terminal::{PseudoConsole, TtySize};
    pub use super::{job, process};
}

fn io_ctx(context: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { context: context.to_string(), source }
}

/// Both modes' enforcement layer for Wine, which accepts the security calls but enforces none.
fn push_wine_layer(enforcement: &mut Enforcement, wine: &Option<String>) {
    if let Some(v) = wine {
        enforcement.push(Layer::new(
            "wine",
            false,
            &format!("running under Wine {v}: tokens and ACLs are accepted but NOT enforced"),
        ));
    }
}

/// The network allowlist needs Palisade's proxy to be the command's only way out: the
/// unelevated mode cannot fence the network at all, so it refuses (fail closed), before it reads
/// the network setting as "not off". The elevated mode runs such commands as `PalisadeProxied`
/// (`elevated/network.rs`).
fn refuse_network_allow() -> Error {
    Error::Unenforceable {
        what: "network = allow (the network allowlist)".into(),
        why: "the unelevated Windows sandbox cannot block a command's network access: firewall (WFP) rules need administrator rights".into(),
        fix: "use the elevated mode (`mode = \"elevated\"` in the [windows] section, after `palisade setup --elevated`), or `--network on`".into(),
    }
}

/// A policy made ready for one of the two modes.
pub struct Prepared(Mode);

enum Mode {
    Unelevated(unelevated::Prepared),
    Elevated(elevated::Prepared),
}

impl Prepared {
    /// The elevated mode; `seam` is the plumbing tests' way in (`elevated::run::TestSeam`).
    pub fn new_elevated(
        policy: Policy,
        seam: Option<&elevated::run::TestSeam>,
        hosts_file: Option<&std::path::Path>,
    ) -> Result<Prepared, Error> {
        elevated::Prepared::new(policy, seam, hosts_file).map(|p| Prepared(Mode::Elevated(p)))
    }
}

impl Backend for Prepared {
    type Child = ChildInner;

    fn prepare(policy: Policy, options: &SandboxOptions) -> Result<Prepared, Error> {
        if options.windows_mode == WindowsMode::Elevated {
            return Prepared::new_elevated(policy, None, options.network_hosts_file.as_deref());
        }
        if policy.network.allowlist().is_some() {
            return Err(refuse_network_allow());
        }
        unelevated::Prepared::new(policy).map(|p| Prepared(Mode::Unelevated(p)))
    }

    fn policy(&self) -> &Policy {
        match &self.0 {
            Mode::Unelevated(p) => p.policy(),
            Mode::Elevated(p) => p.policy(),
        }
    }

    fn enforcement(&self) -> &Enforcement {
        match &self.0 {
            Mode::Unelevated(p) => p.enforcement(),
            Mode::Elevated(p) => p.enforcement(),
        }
    }

    fn spawn(&self, spec: &CommandSpec) -> Result<ChildInner, Error> {
        Ok(match &self.0 {
            Mode::Unelevated(p) => {
                let mut c = p.spawn(spec)?;
                ChildInner {
                    stdin: c.stdin.take(),
                    stdout: c.stdout.take(),
                    stderr: c.stderr.take(),
                    imp: Imp::Unelevated(Box::new(c)),
                }
            }
            Mode::Elevated(p) => {
                let mut c = p.spawn(spec)?;
                ChildInner {
                    stdin: c.stdin.take(),
                    stdout: c.stdout.take(),
                    stderr: c.stderr.take(),
                    imp: Imp::Elevated(Box::new(c)),
                }
            }
        })
    }

    fn host_report() -> HostReport {
        host::host_report()
    }

    /// Removes every ACE palisade recorded (`palisade cleanup`).
    fn cleanup() -> Result<CleanupReport, Error> {
        grants::cleanup()
    }
}

/// A command Palisade started: directly (unelevated) or through `palisade-runner` (elevated).
pub struct ChildInner {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    imp: Imp,
}

enum Imp {
    Unelevated(Box<unelevated::Child>),
    // Boxed, both: the two differ in size (console relays, the runner's pipe and proxy route).
    Elevated(Box<elevated::Child>),
}

impl BackendChild for ChildInner {
    fn id(&self) -> u32 {
        match &self.imp {
            Imp::Unelevated(c) => c.id(),
            Imp::Elevated(c) => c.id(),
        }
    }

    fn signal(&self, sig: i32) -> io::Result<()> {
        match &self.imp {
            Imp::Unelevated(c) => c.signal(sig),
            Imp::Elevated(c) => c.signal(sig),
        }
    }

    fn kill(&mut self) -> io::Result<()> {
        match &mut self.imp {
            Imp::Unelevated(c) => c.kill(),
            Imp::Elevated(c) => c.kill(),
        }
    }

    fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        match &mut self.imp {
            Imp::Unelevated(c) => c.wait(),
            Imp::Elevated(c) => c.wait(),
        }
    }

    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.imp {
            Imp::Unelevated(c) => c.try_wait(),
            Imp::Elevated(c) => c.try_wait(),
        }
    }

    fn take_stdio(&mut self) -> (Option<File>, Option<File>, Option<File>) {
        (self.stdin.take(), self.stdout.take(), self.stderr.take())
    }

    fn network_records(&self) -> &[crate::status::NetworkRecord] {
        match &self.imp {
            Imp::Unelevated(_) => &[],
            Imp::Elevated(c) => c.network_records(),
        }
    }
}
