//! Backends turn the same policy into each operating system's enforcement. Each provides
//! `Prepared` (a policy made ready for this host: `new`, `policy`, `enforcement`, `spawn`),
//! `ChildInner` (`id`, `signal`, `kill`, `wait`, `try_wait`, and the piped `stdin`/`stdout`/
//! `stderr` files), `host_report` for `palisade check` and `cleanup` for `palisade cleanup`.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{cleanup, host_report, ChildInner, Prepared};
#[cfg(target_os = "linux")]
pub use linux::timeline;
#[cfg(target_os = "linux")]
pub(crate) use linux::interrupt_lock_waits;
/// Only Linux waits for other runs (their placeholder locks).
#[cfg(not(target_os = "linux"))]
pub(crate) fn interrupt_lock_waits() {}

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{cleanup, elevated_setup, host_report, ChildInner, Prepared};
#[cfg(windows)]
pub use windows::{elevated::run::TestSeam as ElevatedTestSeam, runner_shared};
#[cfg(windows)]
pub(crate) use windows::wine_version;
#[cfg(windows)]
pub(crate) use windows::{elevated::ownership::{Watch as OwnershipWatch, LAST_REPORT as LAST_OWNERSHIP_REPORT}, ownership_watch_for_tests};

#[cfg(not(any(target_os = "linux", windows)))]
mod unsupported;
#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) use unsupported::{host_report, ChildInner, Prepared};

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

/// Backends that keep nothing on disk between commands have nothing to clean up.
#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) fn cleanup() -> Result<crate::CleanupReport, crate::Error> {
    let mut r = crate::CleanupReport::default();
    r.notes.push(format!("nothing to clean up on {}: palisade keeps no permissions on disk here", std::env::consts::OS));
    Ok(r)
}
