//! What the one-time host set-up (`palisade setup`, see [`crate::host_setup`]) did, or why it
//! could not: plain types shared by the facade and the backend that does the work.

use std::path::PathBuf;

/// What [`crate::host_setup::install_apparmor_profile`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Install {
    /// `profile` was written for `exe` (the running program) and loaded.
    Installed { profile: PathBuf, exe: PathBuf },
    /// Nothing: this host does not restrict unprivileged user namespaces.
    NotNeeded,
}

/// What [`crate::host_setup::uninstall_apparmor_profile`] did.
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
