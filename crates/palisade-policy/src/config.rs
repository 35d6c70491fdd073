//! Layered configuration (being written).

use std::path::PathBuf;

use crate::{Mode, Network};

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layer {
    Default,
    User(PathBuf),
    Project(PathBuf),
    CommandLine,
    Managed(PathBuf),
}

/// Settings given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub mode: Option<Mode>,
    pub network: Option<Network>,
    pub writable: Vec<PathBuf>,
    pub keep_env: Vec<String>,
    pub keep_processes: Option<bool>,
    pub no_protected_paths: bool,
}

/// What to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRequest {
    pub workspace: PathBuf,
    pub home: Option<PathBuf>,
    pub user_config: Option<PathBuf>,
    pub managed_config: Option<PathBuf>,
    pub overrides: Overrides,
}

/// The effective policy.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub policy: crate::Policy,
}

/// Why the configuration cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}
