//! Backends turn the same policy into each operating system's enforcement. Each provides
//! `Prepared`, implementing [`Backend`] (a policy made ready for this host), and `ChildInner`,
//! implementing [`BackendChild`] (a running command); see `contract.rs`.

mod contract;
pub(crate) use contract::{Backend, BackendChild};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{ChildInner, Prepared};
#[cfg(target_os = "linux")]
pub use linux::{offline_socket_dirs, timeline};
#[cfg(target_os = "linux")]
pub(crate) use linux::interrupt_lock_waits;
#[cfg(target_os = "linux")]
pub(crate) use linux::{apparmor, signals::Forwarder as SignalForwarder};
/// Only Linux waits for other runs (their placeholder locks).
#[cfg(not(target_os = "linux"))]
pub(crate) fn interrupt_lock_waits() {}

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{elevated_setup, ChildInner, Prepared};
#[cfg(windows)]
pub use windows::elevated::{run::TestSeam as ElevatedTestSeam, runner::main as runner_main};
#[cfg(windows)]
pub(crate) use windows::wine_version;
#[cfg(windows)]
pub(crate) use windows::console_signals::Forwarder as SignalForwarder;
#[cfg(windows)]
pub(crate) use windows::{elevated::ownership::{Watch as OwnershipWatch, LAST_REPORT as LAST_OWNERSHIP_REPORT}, ownership_watch_for_tests};

#[cfg(not(any(target_os = "linux", windows)))]
mod unsupported;
#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) use unsupported::{ChildInner, Prepared, SignalForwarder};

/// `palisade check --probe`'s fence probe through the test seam's runner (see `TestSeam`).
#[cfg(windows)]
pub(crate) fn elevated_fence_probe_for_tests(seam: &ElevatedTestSeam) -> Result<palisade_windows_elevated::FenceProbe, crate::Error> {
    Ok(windows::elevated::run::Elevated::new(true, Some(seam))?.probe_fence())
}

/// The elevated Windows mode's `palisade check` lines (`required`: the configured mode).
#[cfg(windows)]
pub(crate) fn elevated_check(required: bool, probe: bool) -> Option<palisade_windows_elevated::CheckReport> {
    Some(windows::elevated::check::report(required, probe))
}

/// Only Windows has an elevated mode.
#[cfg(not(windows))]
pub(crate) fn elevated_check(_required: bool, _probe: bool) -> Option<palisade_windows_elevated::CheckReport> {
    None
}

/// The Linux and Windows backends' inherent methods, seen through the contract (moved into the
/// backends themselves once their restructuring lands).
macro_rules! backend_via_inherent {
    ($m:ident) => {
        impl Backend for $m::Prepared {
            type Child = $m::ChildInner;
            fn prepare(policy: palisade_policy::Policy, options: &crate::spec::SandboxOptions) -> Result<Self, crate::error::Error> {
                $m::Prepared::new(policy, options)
            }
            fn policy(&self) -> &palisade_policy::Policy {
                $m::Prepared::policy(self)
            }
            fn enforcement(&self) -> &crate::report::Enforcement {
                $m::Prepared::enforcement(self)
            }
            fn spawn(&self, spec: &crate::spec::CommandSpec) -> Result<$m::ChildInner, crate::error::Error> {
                $m::Prepared::spawn(self, spec)
            }
            fn host_report() -> crate::report::HostReport {
                $m::host_report()
            }
            fn cleanup() -> Result<crate::report::CleanupReport, crate::error::Error> {
                $m::cleanup()
            }
        }
        impl BackendChild for $m::ChildInner {
            fn id(&self) -> u32 {
                $m::ChildInner::id(self)
            }
            fn signal(&self, sig: i32) -> std::io::Result<()> {
                $m::ChildInner::signal(self, sig)
            }
            fn kill(&mut self) -> std::io::Result<()> {
                $m::ChildInner::kill(self)
            }
            fn wait(&mut self) -> std::io::Result<crate::status::ExitStatus> {
                $m::ChildInner::wait(self)
            }
            fn try_wait(&mut self) -> std::io::Result<Option<crate::status::ExitStatus>> {
                $m::ChildInner::try_wait(self)
            }
            fn notices(&self) -> &[String] {
                backend_via_inherent!(@notices $m self)
            }
            fn network_records(&self) -> &[crate::NetworkRecord] {
                backend_via_inherent!(@network_records $m self)
            }
            fn take_stdio(&mut self) -> (Option<std::fs::File>, Option<std::fs::File>, Option<std::fs::File>) {
                (self.stdin.take(), self.stdout.take(), self.stderr.take())
            }
        }
    };
    (@notices linux $s:ident) => { linux::ChildInner::notices($s) };
    (@notices windows $s:ident) => { &[] };
    (@network_records linux $s:ident) => { linux::ChildInner::network_records($s) };
    (@network_records windows $s:ident) => { &[] };
}
#[cfg(target_os = "linux")]
backend_via_inherent!(linux);
#[cfg(windows)]
backend_via_inherent!(windows);
