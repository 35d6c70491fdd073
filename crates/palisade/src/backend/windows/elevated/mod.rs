//! The elevated Windows mode (issue 4): commands run as a separate local sandbox account that
//! `palisade setup --elevated` created once, through `palisade-runner` started with
//! `CreateProcessWithLogonW`. The decisions live in `palisade-windows-elevated`; this module
//! carries them out for the CLI (never elevated).

// Until the run and setup paths use all of it.
#![allow(dead_code)]

pub mod credentials;
pub mod setup;
