//! Backends turn the same policy into each operating system's enforcement. Each provides
//! `Prepared` (a policy made ready for this host: `new`, `policy`, `enforcement`, `spawn`),
//! `ChildInner` (`id`, `signal`, `kill`, `wait`, `try_wait`, and the piped `stdin`/`stdout`/
//! `stderr` files) and `host_report` for `palisade check`.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{host_report, ChildInner, Prepared};

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub(crate) use unsupported::{host_report, ChildInner, Prepared};
