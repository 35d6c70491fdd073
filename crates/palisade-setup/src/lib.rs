//! `palisade-setup`: the only part of Palisade that runs elevated. It gathers facts from the
//! machine, takes one validated request, carries out the steps of the platform-free setup or
//! uninstall plan from `palisade-windows-elevated`, records each step ahead of acting, and
//! exits. On other systems it has nothing to do.
//!
//! This crate holds the executor (`run`) and its end of the CLI's pipe (`pipe`); every OS call
//! (accounts, ACLs, the firewall and WFP, fact gathering) is `palisade-win32`'s.
//!
//! Exit codes: `palisade_windows_elevated::setup_channel::exit` (0 done, 2 usage, 3 pipe or
//! peer, 4 request, 5 facts, 6 plan refused, 7 a step failed, 8 records file, 125 not Windows).

#[cfg(windows)]
pub mod pipe;
#[cfg(windows)]
pub mod run;
