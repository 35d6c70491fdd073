//! One-time host set-up, as `palisade setup` does it (as root): on Linux hosts whose AppArmor
//! restricts unprivileged user namespaces, an AppArmor profile for Palisade's own binary that
//! lets it create them. (The elevated Windows mode's setup is [`crate::windows_setup`].)

pub use crate::setup_outcome::{Install, SetupError, Uninstall};

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
