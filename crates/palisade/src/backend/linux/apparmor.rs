//! `palisade setup` on Linux: where AppArmor restricts unprivileged user namespaces
//! (`kernel.apparmor_restrict_unprivileged_userns = 1`), a profile for Palisade's own binary lets
//! it create them, as distributions ship for bwrap. The profile is unconfined apart from that one
//! permission: it widens nothing else.

use super::sys;
use crate::setup_outcome::{Install, SetupError, Uninstall};
use std::path::{Path, PathBuf};

const PROFILE: &str = "/etc/apparmor.d/palisade";
const RESTRICT_USERNS: &str = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns";

/// Whether the sysctl's content says unprivileged user namespaces are restricted.
fn restricts_userns(sysctl: &str) -> bool {
    sysctl.trim() == "1"
}

/// The profile that lets `exe` (an absolute path) create user namespaces.
fn profile_text(exe: &Path) -> String {
    format!(
        "# Installed by `palisade setup`; remove with `palisade setup --uninstall`.\n\
         abi <abi/4.0>,\ninclude <tunables/global>\n\n\
         profile palisade {} flags=(unconfined) {{\n  userns,\n}}\n",
        exe.display()
    )
}

fn require_root() -> Result<(), SetupError> {
    if sys::geteuid() == 0 {
        Ok(())
    } else {
        Err(SetupError::NotRoot)
    }
}

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> SetupError {
    move |source| SetupError::Io { context, source }
}

/// Writes and loads the profile for the running program, if this host needs it.
pub fn install() -> Result<Install, SetupError> {
    let restricted = std::fs::read_to_string(RESTRICT_USERNS).is_ok_and(|s| restricts_userns(&s));
    require_root()?;
    if !restricted {
        return Ok(Install::NotNeeded);
    }
    let exe = std::env::current_exe().map_err(io_error("cannot find palisade's own path".into()))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    std::fs::write(PROFILE, profile_text(&exe)).map_err(io_error(format!("writing {PROFILE}")))?;
    let status = std::process::Command::new("apparmor_parser")
        .args(["-r", PROFILE])
        .status()
        .map_err(io_error("running apparmor_parser".into()))?;
    if !status.success() {
        return Err(SetupError::LoaderFailed { command: format!("apparmor_parser -r {PROFILE}"), status });
    }
    Ok(Install::Installed { profile: PathBuf::from(PROFILE), exe })
}

/// Unloads and removes the profile `install` wrote, if it is there.
pub fn uninstall() -> Result<Uninstall, SetupError> {
    require_root()?;
    let profile = PathBuf::from(PROFILE);
    if !profile.exists() {
        return Ok(Uninstall::NotInstalled { profile });
    }
    // Unloading fails harmlessly when the profile was never loaded; the file goes either way.
    let _ = std::process::Command::new("apparmor_parser").args(["-R", PROFILE]).status();
    std::fs::remove_file(&profile).map_err(io_error(format!("removing {PROFILE}")))?;
    Ok(Uninstall::Removed { profile })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_one_restricts() {
        assert!(restricts_userns("1\n"));
        assert!(!restricts_userns("0\n"));
        assert!(!restricts_userns(""));
    }

    #[test]
    fn the_profile_names_the_binary_and_grants_only_userns() {
        let text = profile_text(Path::new("/usr/local/bin/palisade"));
        assert!(
            text.contains("\nprofile palisade /usr/local/bin/palisade flags=(unconfined) {\n  userns,\n}\n"),
            "{text}"
        );
        assert!(text.starts_with("# Installed by `palisade setup`"), "{text}");
        let rules: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
        assert_eq!(rules, ["  userns,"], "{text}");
    }
}
