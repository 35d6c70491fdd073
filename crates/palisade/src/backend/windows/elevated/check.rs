//! The elevated mode's lines of `palisade check`, gathered as the calling user (palisade never
//! elevates itself for this): `palisade-setup`'s own fact gathering (`gather::gather_readable`:
//! accounts, group, sign-in screen values, firewall profiles and rules, Palisade's folder and
//! files; LSA rights and WFP objects are read only when palisade already runs elevated and are
//! "unknown: needs an administrator to read" otherwise), the stored passwords as setup's CLI
//! side sees them (DPAPI, `LogonUser`), and the SHA-256 of the `palisade-runner.exe` next to
//! this palisade. The decisions are `palisade_windows_elevated::check_report`'s.
//!
//! With `--probe` the check also proves the network fences: it runs `cmd.exe /c exit 0` as
//! `PalisadeOffline` through a runner, whose fence probe (the one before every offline command)
//! it reports as the "network fence" line: proven, open, or unknown (with why); and the same as
//! `PalisadeProxied` with a proxy (allowing nothing) on a proxy port, the "proxied network
//! fence" line.
//!
//! The gathering runs on a thread of its own and is given [`TIME_LIMIT`]: a firewall or
//! filter-engine call that does not return turns every line into "unknown" instead of a check
//! that never ends.

use std::sync::mpsc;
use std::time::Duration;

use palisade_windows_elevated::check_report::{
    check_report, CheckInputs, CheckLine, CheckReport, CheckStatus, FenceProbe,
};
use palisade_windows_elevated::fence_probe;
use palisade_windows_elevated::setup_plan::Layout;
use palisade_windows_elevated::winpath::WinPath;
use palisade_windows_elevated::SETUP_VERSION;
use windows_sys::Win32::UI::Shell::FOLDERID_LocalAppData;

use super::run::Elevated;
use super::setup::stored_credentials;
use palisade_win32::system::known_folder_path;

/// How long the facts may take to gather.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Added to [`TIME_LIMIT`] with `--probe`: first logons of the two sandbox accounts (profile
/// loading) can take a while.
pub const PROBE_TIME_LIMIT: Duration = Duration::from_secs(90);

/// The report; `required`: `[windows] mode = "elevated"` is configured; `probe`: prove the
/// network fence through a runner (`palisade check --probe`).
pub fn report(required: bool, probe: bool) -> CheckReport {
    report_within(required, probe, if probe { TIME_LIMIT + PROBE_TIME_LIMIT } else { TIME_LIMIT })
}

fn report_within(required: bool, probe: bool, limit: Duration) -> CheckReport {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("palisade-check-elevated".into()).spawn(move || {
        let _ = tx.send(gather_and_report(required, probe));
    });
    if let Err(e) = spawned {
        return unknown_report(&format!("could not start the check: {e}"));
    }
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        // The thread is left behind; palisade check exits soon after.
        Err(mpsc::RecvTimeoutError::Timeout) => {
            unknown_report(&format!("reading the facts took longer than {} s", limit.as_secs()))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => unknown_report("the check stopped without a result"),
    }
}

fn unknown_report(why: &str) -> CheckReport {
    CheckReport {
        lines: vec![CheckLine {
            status: CheckStatus::Unknown,
            item: "elevated setup".into(),
            detail: format!("unknown: {why}"),
        }],
    }
}

/// The fence probe as the offline account, through a runner started as for `palisade run`.
fn probe_fence() -> FenceProbe {
    match Elevated::new(palisade_windows_elevated::SandboxUser::Offline, None) {
        Ok(el) => el.probe_fence(),
        Err(e) => fence_probe::for_check(None, false, Some(e.to_string())),
    }
}

/// The fence probe as the proxied account, with a sandbox proxy (whose allowlist is empty) on
/// the first free port of `proxy_ports`, as for a command with `network = allow`.
fn probe_proxied_fence(proxy_ports: &[u16]) -> FenceProbe {
    let none = palisade_policy::net_rules::Allowlist::parse(&[] as &[String], &[] as &[String]);
    let started = Elevated::new(palisade_windows_elevated::SandboxUser::Proxied, None).and_then(|mut el| {
        let allowlist = none.map_err(|e| crate::error::Error::InvalidInput(e.to_string()))?;
        el.set_proxy(super::network::SandboxProxy::start(&allowlist, proxy_ports, None)?);
        Ok(el)
    });
    match started {
        Ok(el) => el.probe_fence(),
        Err(e) => fence_probe::for_check_proxied(None, false, Some(e.to_string())),
    }
}

fn gather_and_report(required: bool, probe: bool) -> CheckReport {
    let program_data = match palisade_win32::gather::program_data() {
        Ok(p) => p,
        Err(e) => return unknown_report(&e.to_string()),
    };
    let local_app_data =
        match known_folder_path(&FOLDERID_LocalAppData).map(|p| WinPath::parse_exact(&p.to_string_lossy())) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return unknown_report(&format!("%LOCALAPPDATA%: {e}")),
            None => return unknown_report("%LOCALAPPDATA% is unknown"),
        };
    let layout = Layout::new(&program_data);
    // Run elevated, the check reads what only administrators may (LSA rights, WFP objects).
    let admin = palisade_win32::token::open_own().map(|t| t.elevated).unwrap_or(false);
    let (mut facts, unread) = palisade_win32::gather::gather_readable(&layout, admin);
    facts.credentials = stored_credentials(&local_app_data);
    let runner_sha256 = std::env::current_exe()
        .ok()
        .map(|e| e.with_file_name("palisade-runner.exe"))
        .filter(|r| r.is_file())
        .and_then(|r| palisade_win32::gather::file_sha256(&r).ok());
    // The ports setup recorded in the marker for the proxied account's fence (the defaults when
    // it lists none).
    let proxy_ports = facts
        .marker
        .as_ref()
        .map(|m| m.proxy_ports.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| palisade_windows_elevated::proxy_route::setup_ports(&[]));
    let inputs = CheckInputs {
        expected_version: SETUP_VERSION,
        program_data,
        local_app_data,
        runner_sha256,
        probe: probe.then(probe_fence),
        proxied_probe: probe.then(|| probe_proxied_fence(&proxy_ports)),
        proxy_ports,
        required,
        unread,
    };
    check_report(&facts, &inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_takes_too_long_is_unknown() {
        let r = report_within(false, false, Duration::from_millis(0));
        // Either the facts came back at once (no setup: one note) or the limit struck.
        let first = &r.lines[0];
        assert!(first.status == CheckStatus::Unknown || first.status == CheckStatus::Note, "{r}");
    }
}
