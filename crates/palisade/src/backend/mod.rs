//! Backends turn the same policy into each operating system's enforcement. Each provides
//! `Prepared`, implementing [`Backend`] (a policy made ready for this host), and `ChildInner`,
//! implementing [`BackendChild`] (a running command); see `contract.rs`.

pub(crate) mod contract;
pub(crate) use contract::{Backend, BackendChild};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::interrupt_lock_waits;
#[cfg(target_os = "linux")]
pub(crate) use linux::{apparmor, signals::Forwarder as SignalForwarder};
#[cfg(target_os = "linux")]
pub use linux::{offline_socket_dirs, timeline};
#[cfg(target_os = "linux")]
pub(crate) use linux::{ChildInner, Prepared};
/// Only Linux waits for other runs (their placeholder locks).
#[cfg(not(target_os = "linux"))]
pub(crate) fn interrupt_lock_waits() {}

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::console_signals::Forwarder as SignalForwarder;
#[cfg(windows)]
pub(crate) use windows::wine_version;
#[cfg(windows)]
pub(crate) use windows::{
    elevated::ownership::{Watch as OwnershipWatch, LAST_REPORT as LAST_OWNERSHIP_REPORT},
    ownership_watch_for_tests,
};
#[cfg(windows)]
pub use windows::{elevated::run::TestSeam as ElevatedTestSeam, runner_shared};
#[cfg(windows)]
pub(crate) use windows::{elevated_setup, ChildInner, Prepared};

#[cfg(not(any(target_os = "linux", windows)))]
mod unsupported;
#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) use unsupported::{ChildInner, Prepared, SignalForwarder};

/// `palisade check --probe`'s fence probe through the test seam's runner (see `TestSeam`).
#[cfg(windows)]
pub(crate) fn elevated_fence_probe_for_tests(
    seam: &ElevatedTestSeam,
) -> Result<palisade_windows_elevated::FenceProbe, crate::error::Error> {
    Ok(windows::elevated::run::Elevated::new(palisade_windows_elevated::SandboxUser::Online, Some(seam))?.probe_fence())
}

/// The elevated Windows mode's `palisade check` lines (`required`: the configured mode).
#[cfg(windows)]
pub(crate) fn elevated_check(required: bool, probe: bool) -> Option<crate::elevated_report::ElevatedCheck> {
    Some(crate::elevated_report::ElevatedCheck::new(windows::elevated::check::report(required, probe)))
}

/// Only Windows has an elevated mode.
#[cfg(not(windows))]
pub(crate) fn elevated_check(_required: bool, _probe: bool) -> Option<crate::elevated_report::ElevatedCheck> {
    None
}
