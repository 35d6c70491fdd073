//! Layered configuration with provenance.
//!
//! # Layers
//!
//! From lowest to highest precedence:
//!
//! 1. the built-in defaults ([`Policy::new`]);
//! 2. the user file: `$XDG_CONFIG_HOME/palisade/config.toml`, else
//!    `~/.config/palisade/config.toml` (on Windows `%APPDATA%\palisade\config.toml`);
//! 3. the project file, `<workspace>/.palisade/config.toml`, which may only **tighten** the
//!    policy;
//! 4. the command line ([`Overrides`]);
//!
//! and all of them are bounded by the administrator's managed file
//! (`/etc/palisade/managed.toml`, on Windows `managed.toml` in `palisade` under the ProgramData known folder, never from the environment).
//! Missing files are fine; a file that exists but cannot be read is an error.
//!
//! Scalars (`mode`, `network`, ...) are overridden by higher layers. Lists add up:
//! `deny_read`, `protected_paths` and `env.secret_patterns` from every layer are added to the
//! defaults (in layer order, without duplicates), and `writable_roots` / `env.keep` come from the
//! user file and the command line.
//!
//! # User and project file schema (every key optional)
//!
//! ```toml
//! mode = "workspace-write"          # "read-only" | "workspace-write" | "full-access"
//! network = "off"                   # "off" | "allow" | "on" (or the [network] table below)
//! writable_roots = ["~/.cargo"]     # user file only; must exist; not /, the home directory, /proc, /sys, /dev
//! deny_read = ["~/secrets"]         # added to the defaults; need not exist
//! allow_read = ["~/.config/gh"]     # user file only; removes entries of the default deny_read
//! protected_paths = [".husky"]      # added to the defaults (see `protected`)
//! keep_processes = false
//!
//! [network]                         # instead of `network = "..."`
//! mode = "allow"                    # "off" | "allow" | "on"; implied "allow" when `allow` is set
//! allow = ["pypi.org", "*.pythonhosted.org", "example.com:8443", "203.0.113.0/24"]
//! deny = ["upload.pypi.org"]        # added from every layer; deny wins
//!
//! [env]
//! keep = ["GITHUB_TOKEN"]           # user file only
//! secret_patterns = ["*_PAT"]       # added to the defaults
//!
//! [linux]
//! allow_landlock_only = false       # run without mount namespaces when they are unavailable,
//!                                   # accepting that deny_read may be weaker and protected
//!                                   # paths are not enforced
//! allow_unprotected_paths = false   # with landlock-only: run although protected paths cannot
//!                                   # be kept read-only
//! allow_landlock_only_as_root = false # with landlock-only: run root's commands too (containers
//!                                   # without user namespaces), accepting that they can
//!                                   # chmod/chown/touch root's files outside the writable roots
//!
//! [windows]
//! mode = "unelevated"               # "unelevated" | "elevated"; user file only
//! private_desktop = false          # `true` is refused: no backend can enforce it yet
//!
//! [audit]                           # user file only (a project file may set none of it)
//! enabled = true                    # one JSON line per command (default: on)
//! path = "~/.local/state/palisade/audit.jsonl" # default: under $XDG_STATE_HOME or ~/.local/state
//!                                   # (Windows: %LOCALAPPDATA%\palisade\audit.jsonl)
//! max_bytes = 10485760              # rotated to .1, .2, .3 beyond this; at least 65536
//! ```
//!
//! Paths: `~` and `~/...` expand to the home directory; other paths must be absolute, except in
//! the project file where relative paths are relative to the workspace. The workspace and the
//! writable roots are canonicalized (they must exist); deny-read paths are made absolute and
//! have the symbolic links in their existing part resolved, and need not exist.
//!
//! # What the project file may do
//!
//! A project file comes with the repository the agent works in, so it may only make the policy
//! stricter than the layers below it:
//!
//! * `mode` may be as strict as or stricter than the mode below it
//!   (`read-only` < `workspace-write` < `full-access`);
//! * `network` no more open than below it (`off` < `allow` < `on`); in `allow` mode, `allow`
//!   entries each covered by the list below it (when that is an allowlist); `deny` entries;
//! * `keep_processes = false` and `linux.allow_* = false` are fine; the opposite values are
//!   errors (`windows.private_desktop = true` is refused in every file until a backend
//!   enforces it);
//! * `deny_read`, `protected_paths` and `env.secret_patterns` additions are fine;
//! * `writable_roots`, `allow_read`, `env.keep`, `windows.mode` and every `audit` key are
//!   errors (the repository must not choose where Palisade writes files, nor switch off the
//!   record of what ran).
//!
//! # The command line against the project file
//!
//! The command line overrides the user file and the defaults freely, but **not the project
//! file's tightenings**: `--mode` looser than the project's `mode`, `--network on` against the
//! project's `network = "off"` (or `"allow"`), `--allow-net` entries outside the project's
//! allowlist, `--keep-processes` against its `keep_processes = false`, and
//! `--no-protected-paths` when it adds `protected_paths` are errors naming the project file and
//! line (edit or remove the project file to loosen). `--writable` with an effective `read-only`
//! mode is an error too.
//!
//! # The managed file
//!
//! ```toml
//! allowed_modes = ["read-only", "workspace-write"]
//! allow_network = false                   # only "off"
//! deny_read = ["/srv/secrets", "~/.ssh"]   # forced; `~` is the invoking user's home
//! protected_paths = [".github/workflows"] # forced
//! allow_keep_env = false
//! allow_writable_roots = false
//! allow_landlock_only = false
//! allow_unprotected_paths = false
//! allow_landlock_only_as_root = false
//!
//! [network]
//! allow = ["*.example.com", "pypi.org"]    # the most any allowlist may admit; "on" is refused
//! deny = ["203.0.113.0/24"]                # always refused
//!
//! [env]
//! secret_patterns = ["*_PAT"]             # forced; env.keep cannot let a match through
//!
//! [audit]
//! required = true                         # always on: `enabled = false` and --no-audit are
//!                                         # refused, and a command whose line cannot be
//!                                         # written is not run
//! path = "~/.palisade-audit.jsonl"        # the only place allowed; `~` is the invoking user's
//!                                         # home (the log refuses a file another user owns)
//! max_bytes = 52428800                    # the only size allowed
//! ```
//!
//! When a user file, project file or the command line asks for something the managed file
//! forbids, loading fails with an error naming the setting that asked and the managed file's
//! line; nothing is clamped silently. Only built-in defaults are clamped (if the default mode is
//! not allowed, the strictest allowed mode is used, and its source is the managed file).
//!
//! # Errors
//!
//! Every [`ConfigError`] displays as one line: `<file>:<line>: <key>: <what is wrong>`,
//! `<file>:<line>: invalid TOML: <what>`, or `command line: <flag>: <what is wrong>` (flags
//! are named `--mode`, `--network`, `--allow-net`, `--writable`, `--keep-env`, `--keep-processes`,
//! `--no-protected-paths`, `--no-audit`).
//!
//! # The files
//!
//! `parse.rs` turns one file into settings, each with its line; `merge.rs` layers them (the
//! rules of a setting with several, like the network's, in `merge/<setting>.rs`); `paths.rs`
//! holds the filesystem checks; `render.rs` shows the result; this file holds the public types
//! and [`load`], which runs them in order.

mod merge;
mod parse;
mod paths;
mod render;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::{Mode, Network, Policy};
use merge::State;
use parse::FileKind;
use paths::{read_optional, real_path};

pub use paths::MAX_CONFIG_BYTES;

/// A configuration layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layer {
    Default,
    User(PathBuf),
    Project(PathBuf),
    CommandLine,
    Managed(PathBuf),
}

impl Layer {
    /// `default`, `user`, `project`, `command-line` or `managed`.
    pub fn name(&self) -> &'static str {
        match self {
            Layer::Default => "default",
            Layer::User(_) => "user",
            Layer::Project(_) => "project",
            Layer::CommandLine => "command-line",
            Layer::Managed(_) => "managed",
        }
    }

    /// The file of a file layer.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Layer::User(p) | Layer::Project(p) | Layer::Managed(p) => Some(p),
            Layer::Default | Layer::CommandLine => None,
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Default => f.write_str("default"),
            Layer::CommandLine => f.write_str("command line"),
            Layer::User(p) | Layer::Project(p) | Layer::Managed(p) => write!(f, "{} ({})", self.name(), p.display()),
        }
    }
}

/// Where an effective value was set: the layer, and the line in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub layer: Layer,
    pub line: Option<usize>,
}

impl Source {
    pub fn default_layer() -> Source {
        Source { layer: Layer::Default, line: None }
    }

    pub fn command_line() -> Source {
        Source { layer: Layer::CommandLine, line: None }
    }

    /// `/path:line` for a file layer.
    fn location(&self) -> Option<String> {
        let path = self.layer.path()?;
        Some(match self.line {
            Some(l) => format!("{}:{l}", path.display()),
            None => path.display().to_string(),
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some(loc) => write!(f, "{} ({loc})", self.layer.name()),
            None => self.layer.fmt(f),
        }
    }
}

/// How the Windows backend isolates the command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowsMode {
    /// A restricted token of the current user; needs no set-up.
    #[default]
    Unelevated,
    /// Dedicated sandbox accounts created once with administrator rights.
    Elevated,
}

impl WindowsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowsMode::Unelevated => "unelevated",
            WindowsMode::Elevated => "elevated",
        }
    }

    pub fn parse(s: &str) -> Option<WindowsMode> {
        [WindowsMode::Unelevated, WindowsMode::Elevated].into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for WindowsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[linux]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinuxSettings {
    /// Run with Landlock and seccomp only when mount namespaces are unavailable (an explicit
    /// user choice: protected paths and parts of deny-read are then not enforced).
    pub allow_landlock_only: bool,
    /// With landlock-only, run even though protected paths cannot be kept read-only.
    pub allow_unprotected_paths: bool,
    /// With landlock-only, run root's commands too (root without user namespaces: containers,
    /// CI), accepting that Landlock does not stop metadata changes (chmod, chown, utimes) to
    /// root's files outside the writable roots.
    pub allow_landlock_only_as_root: bool,
}

/// The `[windows]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowsSettings {
    pub mode: WindowsMode,
    /// Run the command on a separate desktop.
    pub private_desktop: bool,
}

/// The `[audit]` section: the log of every command Palisade runs (written by the CLI; the
/// library does not log by itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    /// Whether a line is written for each command (default: yes).
    pub enabled: bool,
    /// The managed file's `required = true`: the log cannot be switched off, and a command is
    /// refused when its line cannot be written.
    pub required: bool,
    /// The log file; `None` when there is no state directory to put it in (no home directory).
    pub path: Option<PathBuf>,
    /// The size at which the log is rotated (`audit.jsonl.1`, `.2`, ...).
    pub max_bytes: u64,
}

/// The audit log's size cap when nothing says otherwise: 10 MiB.
pub const DEFAULT_AUDIT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Settings given on the command line (the highest layer below the managed file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--mode`
    pub mode: Option<Mode>,
    /// `--network`
    pub network: Option<Network>,
    /// `--allow-net` entries (implying `--network allow` when that is not given), added to the
    /// user file's allowlist; checked like the file's entries.
    pub allow_net: Vec<String>,
    /// `--writable` (added to the user's writable roots; relative paths are relative to the
    /// current directory).
    pub writable: Vec<PathBuf>,
    /// `--keep-env` (added to the user's `env.keep`).
    pub keep_env: Vec<String>,
    /// `--keep-processes`
    pub keep_processes: Option<bool>,
    /// `--no-protected-paths`: drop the default and user protected paths.
    pub no_protected_paths: bool,
    /// `--no-audit`: write no audit line for this command (refused when the managed file
    /// requires the log).
    pub no_audit: bool,
}

/// What [`load`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRequest {
    /// The workspace; must exist (it is canonicalized). The project file is
    /// `<workspace>/.palisade/config.toml`.
    pub workspace: PathBuf,
    /// The home directory, for `~` and the default deny-read list.
    pub home: Option<PathBuf>,
    /// The user file, if any (it need not exist).
    pub user_config: Option<PathBuf>,
    /// The administrator's file, if any (it need not exist).
    pub managed_config: Option<PathBuf>,
    /// The audit log's default location (under the user's state directory), if there is one.
    pub audit_log: Option<PathBuf>,
    pub overrides: Overrides,
}

/// The managed file's location when nothing else is said.
#[cfg(not(windows))]
pub const DEFAULT_MANAGED_CONFIG: &str = "/etc/palisade/managed.toml";

impl LoadRequest {
    /// A request with no files and no home: only the defaults and the overrides.
    pub fn new(workspace: impl Into<PathBuf>, overrides: Overrides) -> LoadRequest {
        LoadRequest {
            workspace: workspace.into(),
            home: None,
            user_config: None,
            managed_config: None,
            audit_log: None,
            overrides,
        }
    }

    /// A request with the usual locations, from the environment: `$HOME`, the user file from
    /// `$XDG_CONFIG_HOME` (if set and absolute) or `~/.config`, and
    /// [`DEFAULT_MANAGED_CONFIG`], and the audit log `palisade/audit.jsonl` under `$XDG_STATE_HOME`
    /// (if set and absolute) or `~/.local/state`. On Windows: `%USERPROFILE%`,
    /// `%APPDATA%\palisade\config.toml`, `C:\ProgramData\palisade\managed.toml` (not
    /// `%ProgramData%`: see `palisade::caller::managed_config_path`) and
    /// `%LOCALAPPDATA%\palisade\audit.jsonl` (the CLI asks the system for the known folders).
    pub fn from_env(workspace: impl Into<PathBuf>, overrides: Overrides) -> LoadRequest {
        LoadRequest::from_vars(workspace, overrides, |name| std::env::var_os(name))
    }

    fn from_vars(
        workspace: impl Into<PathBuf>,
        overrides: Overrides,
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> LoadRequest {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut req = LoadRequest::new(workspace, overrides);
        #[cfg(windows)]
        {
            req.home = var("USERPROFILE");
            req.user_config = var("APPDATA").map(|d| d.join("palisade").join("config.toml"));
            // Not `%ProgramData%`: the environment must not move the administrator's file.
            // Callers that can ask the system (the CLI: `palisade::caller::managed_config_path`,
            // the ProgramData known folder) replace this default.
            req.managed_config = Some(PathBuf::from(r"C:\ProgramData\palisade\managed.toml"));
            req.audit_log = var("LOCALAPPDATA").map(|d| d.join("palisade").join("audit.jsonl"));
        }
        #[cfg(not(windows))]
        {
            req.home = var("HOME");
            let config_home = var("XDG_CONFIG_HOME")
                .filter(|p| p.is_absolute())
                .or_else(|| req.home.as_ref().map(|h| h.join(".config")));
            req.user_config = config_home.map(|d| d.join("palisade").join("config.toml"));
            req.managed_config = Some(PathBuf::from(DEFAULT_MANAGED_CONFIG));
            req.audit_log = default_audit_log(var("XDG_STATE_HOME"), req.home.as_deref());
        }
        req
    }
}

/// `palisade/audit.jsonl` under the XDG state directory (`$XDG_STATE_HOME` if absolute, else
/// `~/.local/state`).
pub fn default_audit_log(xdg_state_home: Option<PathBuf>, home: Option<&Path>) -> Option<PathBuf> {
    let state = xdg_state_home.filter(|p| p.is_absolute()).or_else(|| home.map(|h| h.join(".local").join("state")));
    state.map(|d| d.join("palisade").join("audit.jsonl"))
}

/// The effective configuration, with the source of every value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub policy: Policy,
    /// The source of each effective value. Keys: `mode`, `network`, `keep_processes`,
    /// `linux.allow_landlock_only`, `linux.allow_unprotected_paths`, `windows.mode`,
    /// `windows.private_desktop`, `audit.enabled`, `audit.required`, `audit.path`,
    /// `audit.max_bytes`, and one key per list entry, indexed like the policy's lists:
    /// `writable_roots[i]`, `deny_read[i]`, `protected_paths[i]`, `env.keep[i]`,
    /// `env.secret_patterns[i]`. `protected_paths` (without index) is present when
    /// `--no-protected-paths` cleared the list.
    pub sources: Vec<(String, Source)>,
    /// The default deny-read entries the user file's `allow_read` removed (sources under
    /// `allow_read[i]`): not part of the policy, but they change it.
    pub allow_read: Vec<PathBuf>,
    pub linux: LinuxSettings,
    pub windows: WindowsSettings,
    /// Sources under `audit.enabled`, `audit.required`, `audit.path`, `audit.max_bytes`.
    pub audit: AuditSettings,
}

/// Why the configuration cannot be loaded. Every variant displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}:{line}: invalid TOML: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, message: String },
    #[error("{}:{line}: {key}: {message}", path.display())]
    Setting { path: PathBuf, line: usize, key: String, message: String },
    #[error("command line: {flag}: {message}")]
    CommandLine { flag: String, message: String },
    #[error("workspace {}: {message}", path.display())]
    Workspace { path: PathBuf, message: String },
    #[error("built-in default {key}: {message}")]
    Default { key: String, message: String },
}

/// Loads the layered configuration described in the module documentation.
pub fn load(req: &LoadRequest) -> Result<Resolved, ConfigError> {
    let workspace = std::fs::canonicalize(&req.workspace)
        .map_err(|e| ConfigError::Workspace { path: req.workspace.clone(), message: e.to_string() })?;
    if !workspace.is_dir() {
        return Err(ConfigError::Workspace { path: req.workspace.clone(), message: "not a directory".into() });
    }
    let home = req.home.as_deref().map(real_path);
    let home = home.as_deref();

    let mut defaults = Policy::new(workspace.clone(), home);
    for d in &mut defaults.deny_read {
        *d = real_path(d);
    }
    let mut state = State::new(&defaults);

    // Read and check every file before merging, so that a broken managed file is reported
    // even when a lower layer is broken too.
    let managed = match &req.managed_config {
        Some(path) => match read_optional(path)? {
            Some(text) => Some((Layer::Managed(path.clone()), parse::managed_file(path, &text, home, &workspace)?)),
            None => None,
        },
        None => None,
    };

    if let Some(path) = &req.user_config {
        if let Some(text) = read_optional(path)? {
            let settings = parse::settings_file(path, &text, FileKind::User, home, &workspace)?;
            state.apply_user(&Layer::User(path.clone()), &settings)?;
        }
    }

    let project_path = workspace.join(".palisade").join("config.toml");
    if let Some(text) = read_optional(&project_path)? {
        let settings = parse::settings_file(&project_path, &text, FileKind::Project, home, &workspace)?;
        state.apply_project(&Layer::Project(project_path.clone()), &settings)?;
    }

    state.apply_overrides(&req.overrides, home, &workspace)?;

    if let Some((layer, m)) = &managed {
        state.apply_managed(layer, m)?;
    }

    state.check_deny_read_overlaps(&workspace)?;

    // A workspace that is / or the home directory would make all of it writable.
    if state.mode() == Mode::WorkspaceWrite {
        if let Some(message) = paths::refuse_writable_workspace(&workspace, home) {
            return Err(ConfigError::Workspace { path: workspace, message });
        }
    }

    Ok(state.finish(workspace, req.audit_log.clone()))
}
