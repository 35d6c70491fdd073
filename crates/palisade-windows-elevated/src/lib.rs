//! The platform-free half of Palisade's **elevated** Windows sandbox (issue 4).
//!
//! The elevated mode runs every command as a separate local account (`PalisadeOffline` or
//! `PalisadeOnline`) that a one-time administrator setup creates. Three binaries take part:
//!
//! * `palisade` (never elevated) — the CLI; decrypts the sandbox account's password (DPAPI,
//!   current user), starts `palisade-runner` as that account and talks to it over a named pipe
//!   with the [`protocol`];
//! * `palisade-setup` (the only elevated code) — started through UAC, takes one versioned,
//!   validated [`request::SetupRequest`], executes the [`setup_plan()`] or the
//!   [`uninstall_plan()`], appends to the [`records`], exits;
//! * `palisade-runner` (runs as the sandbox account) — mints the restricted token and starts the
//!   command in a kill-on-close job object with ConPTY or pipes.
//!
//! Everything here is plain data and pure functions so that it builds and is unit-tested on any
//! host; the binaries gather facts from the OS, call these functions and carry out the steps
//! they return. See `README.md` next to this crate for the design, what an administrator agrees
//! to and how to undo it.

#![forbid(unsafe_code)]

pub mod ace;
pub mod check_report;
pub mod facts;
pub mod fence_api;
pub mod fence_probe;
pub mod firewall;
pub mod ownership;
pub mod password;
pub mod protocol;
pub mod proxy_route;
pub mod records;
pub mod request;
pub mod runner_seam;
pub mod setup_channel;
pub mod setup_plan;
pub mod sid;
pub mod terminal;
pub mod uninstall_plan;
pub mod winpath;

#[cfg(test)]
mod testkit;

pub use ace::{AceKind, AceSpec, Inheritance, Rights, Trustee};
pub use check_report::{check_report, CheckInputs, CheckLine, CheckReport, CheckStatus, FactGroup, FenceProbe, Unread};
pub use facts::{MachineFacts, SandboxUser, Sids};
pub use protocol::{DecodeError, FrameReader, Message, SpawnRequest};
pub use records::{Record, RecordEntry, StateRecords};
pub use setup_plan::{setup_plan, SetupError, SetupInputs, SetupPlan, Step, StepAction};
pub use sid::Sid;
pub use uninstall_plan::{uninstall_plan, UndoAction, UninstallPlan};
pub use winpath::WinPath;

/// The version of the elevated setup this code produces and expects. It is written into the
/// marker, carried in every [`SpawnRequest`] and compared by `palisade check`. Bump it whenever
/// the setup plan changes what it creates, so that an older installation asks to be set up again.
/// Version 2 added the proxied account (`PalisadeProxied`), its fence and the marker's proxy ports.
pub const SETUP_VERSION: u32 = 2;
