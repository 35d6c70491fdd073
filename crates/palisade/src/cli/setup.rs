//! `palisade setup [--uninstall]` (the library's `host_setup`: an AppArmor profile where AppArmor
//! restricts user namespaces) and, on Windows, `palisade setup --elevated [--uninstall]` (the
//! library's `windows_setup`): what they will do, their progress and their outcome.

use super::{fail, Failure};
use palisade::host_setup::{self, Install, Uninstall};

pub(super) fn setup(uninstall: bool, elevated: bool, proxy_ports: &[u16]) -> Result<i32, Failure> {
    if elevated {
        return elevated_setup(uninstall, proxy_ports);
    }
    if uninstall {
        match host_setup::uninstall_apparmor_profile().map_err(|e| fail(e.to_string()))? {
            Uninstall::Removed { profile } => outln!("removed {}", profile.display()),
            Uninstall::NotInstalled { profile } => outln!("nothing to remove: {} is not installed", profile.display()),
        }
    } else {
        match host_setup::install_apparmor_profile().map_err(|e| fail(e.to_string()))? {
            Install::Installed { profile, exe } => outln!("installed {} for {}", profile.display(), exe.display()),
            Install::NotNeeded => outln!("nothing to do: this host does not restrict unprivileged user namespaces"),
        }
    }
    Ok(0)
}

/// `palisade setup --elevated [--uninstall]`: what it will do, then the plan and progress
/// `palisade-setup.exe` reports.
#[cfg(windows)]
fn elevated_setup(uninstall: bool, proxy_ports: &[u16]) -> Result<i32, Failure> {
    use palisade::windows_setup::{self, exit, Launch, Progress};
    if uninstall {
        outln!("palisade setup --elevated --uninstall removes the permission entries your commands added to writable roots (as `palisade cleanup` does), then what the elevated setup recorded (accounts, group, firewall rules and filters, read grants, Palisade's folder), then the stored passwords.");
    } else {
        outln!("palisade setup --elevated asks Windows for administrator approval once, to:");
        for line in [
            "create %ProgramData%\\Palisade (Administrators only may change it) and copy palisade-runner.exe there",
            "create the local group PalisadeSandboxUsers and the hidden local accounts PalisadeOffline, PalisadeOnline and PalisadeProxied (random passwords, stored DPAPI-encrypted for you)",
            "deny them remote desktop, network, batch and service logons",
            "fence PalisadeOffline off the network, and PalisadeProxied to Palisade's proxy ports on loopback (Windows Firewall rules and WFP filters)",
            "let the group read your profile except credential stores, AppData and registry hives (never write)",
        ] {
            outln!("  - {line}");
        }
        outln!("The plan as setup finds this machine follows ([done] steps change nothing). Undo with `palisade setup --elevated --uninstall`.");
    }
    let mut report = |p: &Progress| match p {
        Progress::Hello { setup_version } => outln!("palisade-setup started (setup version {setup_version})"),
        Progress::Plan { lines } => lines.iter().for_each(|l| outln!("  {l}")),
        Progress::Step { index, total, description, .. } => outln!("[{index}/{total}] {description}"),
        Progress::StepDone { .. } => {}
        Progress::Note { text } => outln!("note: {text}"),
        Progress::Failed { step, message, .. } => errln!("palisade: setup stopped at `{step}`: {message}"),
        Progress::Finished { changed } => outln!("done: {changed} step(s) changed this machine"),
    };
    let outcome = windows_setup::run(uninstall, Launch::RunAs, None, proxy_ports, &mut report)
        .map_err(|e| fail(e.to_string()))?;
    if outcome.exit_code == exit::OK && outcome.finished {
        if uninstall {
            outln!("removed the stored passwords of the sandbox accounts");
        }
        return Ok(0);
    }
    Err(fail(format!("palisade-setup exited with {}: {}", outcome.exit_code, exit::meaning(outcome.exit_code))))
}

#[cfg(not(windows))]
fn elevated_setup(_uninstall: bool, _proxy_ports: &[u16]) -> Result<i32, Failure> {
    Err(fail("`palisade setup --elevated` is the Windows elevated mode's setup; on this system run `palisade setup`"))
}
