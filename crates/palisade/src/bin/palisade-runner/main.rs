//! `palisade-runner`: the elevated Windows mode's command runner. `palisade` starts it as a
//! sandbox account (`PalisadeOffline`/`PalisadeOnline`/`PalisadeProxied`) with
//! `--pipe \\.\pipe\palisade-runner-<hex> --protocol N --setup-version N`; it is not meant to be
//! run by hand. Exit codes: 0 after reporting over the pipe, 2 bad command line, 3 version
//! mismatch, 4 pipe unusable, 125 on platforms without the elevated mode.
//!
//! The runner's own code lives here (`runner.rs`, `harden.rs`); what it shares with the
//! library (starting a process, job objects, the pipe) is `palisade::__private::runner`.

#[cfg(windows)]
mod harden;
#[cfg(windows)]
mod runner;

#[cfg(windows)]
fn main() {
    std::process::exit(runner::main());
}

#[cfg(not(windows))]
fn main() {
    eprintln!("palisade-runner: only Windows has an elevated mode; nothing to do here");
    std::process::exit(palisade::exit_code::PALISADE_ERROR);
}
