//! One-time host set-up, as `palisade setup` does it (as root): on Linux hosts whose AppArmor
//! restricts unprivileged user namespaces, an AppArmor profile for Palisade's own binary that
//! lets it create them. (The elevated Windows mode's setup is [`crate::windows_setup`].)

use std::path::PathBuf;

/// What [`install_apparmor_profile`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Install {
    /// `profile` was written for `exe` (the running program) and loaded.
    Installed { profile: PathBuf, exe: PathBuf },
    /// Nothing: this host does not restrict unprivileged user namespaces.
    NotNeeded,
}

/// What [`uninstall_apparmor_profile`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uninstall {
    /// `profile` was unloaded and removed.
    Removed { profile: PathBuf },
    /// Nothing: `profile` is not there.
    NotInstalled { profile: PathBuf },
}

/// Why the set-up could not be done.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("setup must run as root (sudo palisade setup)")]
    NotRoot,
    #[error("`palisade setup` is not available on {0} yet")]
    Unsupported(&'static str),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// The program that loads the profile into the kernel failed.
    #[error("{command} failed ({status})")]
    LoaderFailed { command: String, status: std::process::ExitStatus },
}

/// Where AppArmor restricts unprivileged user namespaces, installs and loads the profile that
/// lets the running program create them (`/etc/apparmor.d/palisade`); elsewhere does nothing.
/// Needs root.
pub fn install_apparmor_profile() -> Result<Install, SetupError> {
    #[cfg(target_os = "linux")]
    {
        crate::backend::apparmor::install()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(SetupError::Unsupported(std::env::consts::OS))
    }
}

/// Unloads and removes what [`install_apparmor_profile`] installed. Needs root.
pub fn uninstall_apparmor_profile() -> Result<Uninstall, SetupError> {
    #[cfg(target_os = "linux")]
    {
        crate::backend::apparmor::uninstall()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(SetupError::Unsupported(std::env::consts::OS))
    }
}
