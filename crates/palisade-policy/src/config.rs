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
//! (`/etc/palisade/managed.toml`, on Windows `%ProgramData%\palisade\managed.toml`).
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
//! network = "off"                   # "off" | "on"
//! writable_roots = ["~/.cargo"]     # user file only; must exist; not /, the home directory, /proc, /sys, /dev
//! deny_read = ["~/secrets"]         # added to the defaults; need not exist
//! allow_read = ["~/.config/gh"]     # user file only; removes entries of the default deny_read
//! protected_paths = [".husky"]      # added to the defaults (see `protected`)
//! keep_processes = false
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
//! private_desktop = false
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
//! * `network = "off"`, `keep_processes = false`, `linux.allow_* = false` and
//!   `windows.private_desktop = true` are fine; the opposite values are errors;
//! * `deny_read`, `protected_paths` and `env.secret_patterns` additions are fine;
//! * `writable_roots`, `allow_read`, `env.keep` and `windows.mode` are errors.
//!
//! # The command line against the project file
//!
//! The command line overrides the user file and the defaults freely, but **not the project
//! file's tightenings**: `--mode` looser than the project's `mode`, `--network on` against the
//! project's `network = "off"`, `--keep-processes` against its `keep_processes = false`, and
//! `--no-protected-paths` when it adds `protected_paths` are errors naming the project file and
//! line (edit or remove the project file to loosen). `--writable` with an effective `read-only`
//! mode is an error too.
//!
//! # The managed file
//!
//! ```toml
//! allowed_modes = ["read-only", "workspace-write"]
//! allow_network = false
//! deny_read = ["/srv/secrets", "~/.ssh"]   # forced; `~` is the invoking user's home
//! protected_paths = [".github/workflows"] # forced
//! allow_keep_env = false
//! allow_writable_roots = false
//! allow_landlock_only = false
//! allow_unprotected_paths = false
//! allow_landlock_only_as_root = false
//!
//! [env]
//! secret_patterns = ["*_PAT"]             # forced; env.keep cannot let a match through
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
//! are named `--mode`, `--network`, `--writable`, `--keep-env`, `--keep-processes`,
//! `--no-protected-paths`).

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, TableLike};

use crate::env::glob_match;
use crate::protected::{self, normalize_lexically};
use crate::{EnvPolicy, Mode, Network, Policy};

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

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "layer": self.layer.name(),
            "path": self.layer.path().map(|p| p.display().to_string()),
            "line": self.line,
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

/// Settings given on the command line (the highest layer below the managed file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--mode`
    pub mode: Option<Mode>,
    /// `--network`
    pub network: Option<Network>,
    /// `--writable` (added to the user's writable roots; relative paths are relative to the
    /// current directory).
    pub writable: Vec<PathBuf>,
    /// `--keep-env` (added to the user's `env.keep`).
    pub keep_env: Vec<String>,
    /// `--keep-processes`
    pub keep_processes: Option<bool>,
    /// `--no-protected-paths`: drop the default and user protected paths.
    pub no_protected_paths: bool,
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
    pub overrides: Overrides,
}

/// The managed file's location when nothing else is said.
#[cfg(not(windows))]
pub const DEFAULT_MANAGED_CONFIG: &str = "/etc/palisade/managed.toml";

impl LoadRequest {
    /// A request with no files and no home: only the defaults and the overrides.
    pub fn new(workspace: impl Into<PathBuf>, overrides: Overrides) -> LoadRequest {
        LoadRequest { workspace: workspace.into(), home: None, user_config: None, managed_config: None, overrides }
    }

    /// A request with the usual locations, from the environment: `$HOME`, the user file from
    /// `$XDG_CONFIG_HOME` (if set and absolute) or `~/.config`, and
    /// [`DEFAULT_MANAGED_CONFIG`]. On Windows: `%USERPROFILE%`, `%APPDATA%\palisade\config.toml`
    /// and `%ProgramData%\palisade\managed.toml`.
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
            let program_data = var("ProgramData").unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
            req.managed_config = Some(program_data.join("palisade").join("managed.toml"));
        }
        #[cfg(not(windows))]
        {
            req.home = var("HOME");
            let config_home = var("XDG_CONFIG_HOME")
                .filter(|p| p.is_absolute())
                .or_else(|| req.home.as_ref().map(|h| h.join(".config")));
            req.user_config = config_home.map(|d| d.join("palisade").join("config.toml"));
            req.managed_config = Some(PathBuf::from(DEFAULT_MANAGED_CONFIG));
        }
        req
    }
}

/// The effective configuration, with the source of every value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub policy: Policy,
    /// The source of each effective value. Keys: `mode`, `network`, `keep_processes`,
    /// `linux.allow_landlock_only`, `linux.allow_unprotected_paths`, `windows.mode`,
    /// `windows.private_desktop`, and one key per list entry, indexed like the policy's lists:
    /// `writable_roots[i]`, `deny_read[i]`, `protected_paths[i]`, `env.keep[i]`,
    /// `env.secret_patterns[i]`. `protected_paths` (without index) is present when
    /// `--no-protected-paths` cleared the list.
    pub sources: Vec<(String, Source)>,
    /// The default deny-read entries the user file's `allow_read` removed (sources under
    /// `allow_read[i]`): not part of the policy, but they change it.
    pub allow_read: Vec<PathBuf>,
    pub linux: LinuxSettings,
    pub windows: WindowsSettings,
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

// ---------------------------------------------------------------------------------------------
// Parsing one file.

/// A value and the line of the key that set it.
#[derive(Clone, Debug)]
struct At<T> {
    v: T,
    line: usize,
}

/// A list value: the line of its key, and each entry with its own line.
#[derive(Clone, Debug)]
struct List<T> {
    line: usize,
    items: Vec<At<T>>,
}

#[derive(Default)]
struct FileSettings {
    mode: Option<At<Mode>>,
    network: Option<At<Network>>,
    writable_roots: Option<List<PathBuf>>,
    deny_read: Option<List<PathBuf>>,
    allow_read: Option<List<PathBuf>>,
    protected_paths: Option<List<String>>,
    keep_processes: Option<At<bool>>,
    env_keep: Option<List<String>>,
    secret_patterns: Option<List<String>>,
    allow_landlock_only: Option<At<bool>>,
    allow_unprotected_paths: Option<At<bool>>,
    allow_landlock_only_as_root: Option<At<bool>>,
    windows_mode: Option<At<WindowsMode>>,
    private_desktop: Option<At<bool>>,
}

#[derive(Default)]
struct ManagedSettings {
    allowed_modes: Option<List<Mode>>,
    allow_network: Option<At<bool>>,
    deny_read: Option<List<PathBuf>>,
    protected_paths: Option<List<String>>,
    secret_patterns: Option<List<String>>,
    allow_keep_env: Option<At<bool>>,
    allow_writable_roots: Option<At<bool>>,
    allow_landlock_only: Option<At<bool>>,
    allow_unprotected_paths: Option<At<bool>>,
    allow_landlock_only_as_root: Option<At<bool>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    User,
    Project,
    Managed,
}

const USER_KEYS: &str =
    "mode, network, writable_roots, deny_read, allow_read, protected_paths, keep_processes, [env], [linux], [windows]";
const ENV_KEYS: &str = "keep, secret_patterns";
const LINUX_KEYS: &str = "allow_landlock_only, allow_unprotected_paths, allow_landlock_only_as_root";
const WINDOWS_KEYS: &str = "mode, private_desktop";
const MANAGED_KEYS: &str = "allowed_modes, allow_network, deny_read, protected_paths, allow_keep_env, allow_writable_roots, allow_landlock_only, allow_unprotected_paths, allow_landlock_only_as_root, [env]";
const TIGHTEN_ONLY: &str = "project config may only tighten the policy";
/// How many `protected_paths` a project file may add, and how deep each may be.
const MAX_PROJECT_PATTERNS: usize = 128;
const MAX_PROJECT_PATTERN_DEPTH: usize = 12;

/// One key of a table, with its full dotted name and line.
struct Entry<'t> {
    key: String,
    item: &'t Item,
    line: usize,
}

struct Parser<'a> {
    path: &'a Path,
    src: &'a str,
    kind: FileKind,
    home: Option<&'a Path>,
    workspace: &'a Path,
}

fn line_at(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

fn with_article(type_name: &str) -> String {
    let name = match type_name {
        "inline table" => "table",
        "offset datetime" | "local datetime" | "local date" | "local time" | "datetime" => "date-time",
        other => other,
    };
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {name}")
}

fn quoted_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

impl<'a> Parser<'a> {
    fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|s| line_at(self.src, s.start))
    }

    fn err(&self, line: usize, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Setting { path: self.path.to_path_buf(), line, key: key.to_string(), message: message.into() }
    }

    fn layer(&self) -> Layer {
        match self.kind {
            FileKind::User => Layer::User(self.path.to_path_buf()),
            FileKind::Project => Layer::Project(self.path.to_path_buf()),
            FileKind::Managed => Layer::Managed(self.path.to_path_buf()),
        }
    }

    fn entries<'t>(&self, table: &'t dyn TableLike, prefix: &str, fallback_line: usize) -> Vec<Entry<'t>> {
        table
            .iter()
            .map(|(name, item)| {
                let key_span = table.get_key_value(name).and_then(|(k, _)| k.span());
                let line = self.line(key_span).or_else(|| self.line(item.span())).unwrap_or(fallback_line);
                let key = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
                Entry { key, item, line }
            })
            .collect()
    }

    fn wrong_type(&self, e: &Entry<'_>, expected: &str) -> ConfigError {
        self.err(e.line, &e.key, format!("expected {expected}, found {}", with_article(e.item.type_name())))
    }

    fn unknown(&self, e: &Entry<'_>, known: &str) -> ConfigError {
        self.err(e.line, &e.key, format!("unknown key (known keys: {known})"))
    }

    fn table<'t>(&self, e: &Entry<'t>) -> Result<&'t dyn TableLike, ConfigError> {
        e.item.as_table_like().ok_or_else(|| self.wrong_type(e, "a table"))
    }

    fn boolean(&self, e: &Entry<'_>) -> Result<At<bool>, ConfigError> {
        match e.item.as_bool() {
            Some(v) => Ok(At { v, line: e.line }),
            None => Err(self.wrong_type(e, "a boolean (true or false)")),
        }
    }

    fn choice<T>(&self, e: &Entry<'_>, names: &[&str], parse: impl Fn(&str) -> Option<T>) -> Result<At<T>, ConfigError> {
        // `network = false` is a natural slip: say which strings are meant.
        let expected = format!("a string ({})", quoted_list(names));
        let s = e.item.as_str().ok_or_else(|| self.wrong_type(e, &expected))?;
        match parse(s) {
            Some(v) => Ok(At { v, line: e.line }),
            None => Err(self.err(e.line, &e.key, format!("expected one of {}, found \"{s}\"", quoted_list(names)))),
        }
    }

    /// An array of strings, each checked by `check` (which may transform it).
    fn list<T>(&self, e: &Entry<'_>, check: impl Fn(&str) -> Result<T, String>) -> Result<List<T>, ConfigError> {
        let array = e.item.as_array().ok_or_else(|| self.wrong_type(e, "an array of strings"))?;
        let mut items = Vec::new();
        for value in array.iter() {
            let line = self.line(value.span()).unwrap_or(e.line);
            let s = value.as_str().ok_or_else(|| {
                self.err(line, &e.key, format!("expected an array of strings, found {} in it", with_article(value.type_name())))
            })?;
            let v = check(s).map_err(|why| self.err(line, &e.key, why))?;
            items.push(At { v, line });
        }
        Ok(List { line: e.line, items })
    }

    /// A path from a file: `~` expanded; relative paths only in a project file.
    fn path(&self, raw: &str) -> Result<PathBuf, String> {
        expand_path(raw, self.home, match self.kind {
            FileKind::Project => Some(self.workspace),
            FileKind::User | FileKind::Managed => None,
        })
    }

    fn deny_paths(&self, e: &Entry<'_>) -> Result<List<PathBuf>, ConfigError> {
        self.list(e, |s| self.path(s).map(|p| real_path(&p)))
    }

    fn patterns(&self, e: &Entry<'_>) -> Result<List<String>, ConfigError> {
        let list = self.list(e, |s| {
            protected::validate_pattern(s).map_err(|why| format!("pattern \"{s}\" {why}"))?;
            // Each component is a folder or mount to make per writable root per command.
            let depth = s.trim_end_matches('/').split('/').count();
            if self.kind == FileKind::Project && depth > MAX_PROJECT_PATTERN_DEPTH {
                return Err(format!("pattern \"{s}\" has {depth} components; a project file may use at most {MAX_PROJECT_PATTERN_DEPTH}"));
            }
            Ok(s.to_string())
        })?;
        // A project file comes from whoever wrote the repository: what it may ask for is
        // bounded, or a repository could slow every run to a crawl (10,000 patterns made each
        // run create as many folders and mounts).
        if self.kind == FileKind::Project && list.items.len() > MAX_PROJECT_PATTERNS {
            return Err(self.err(
                e.line,
                &e.key,
                format!("{} patterns; a project file may add at most {MAX_PROJECT_PATTERNS} (put more in your user config)", list.items.len()),
            ));
        }
        Ok(list)
    }

    fn secret_patterns(&self, e: &Entry<'_>) -> Result<List<String>, ConfigError> {
        self.list(e, |s| check_secret_pattern(s).map(|_| s.to_string()))
    }

    /// Keys a project file may not set at all.
    fn not_in_project(&self, e: &Entry<'_>, why: &str) -> Result<(), ConfigError> {
        if self.kind == FileKind::Project {
            return Err(self.err(e.line, &e.key, format!("{TIGHTEN_ONLY}; {why}")));
        }
        Ok(())
    }

    fn settings(&self, root: &dyn TableLike) -> Result<FileSettings, ConfigError> {
        let mut s = FileSettings::default();
        for e in self.entries(root, "", 1) {
            match e.key.as_str() {
                "mode" => s.mode = Some(self.choice(&e, &Mode::ALL.map(Mode::as_str), Mode::parse)?),
                "network" => s.network = Some(self.choice(&e, &["off", "on"], Network::parse)?),
                "writable_roots" => {
                    self.not_in_project(&e, "writable roots can only be set in the user config or with --writable")?;
                    s.writable_roots = Some(self.list(&e, |raw| {
                        let p = self.path(raw)?;
                        check_writable_root(&p, self.home, self.workspace)
                    })?);
                }
                "deny_read" => s.deny_read = Some(self.deny_paths(&e)?),
                "allow_read" => {
                    self.not_in_project(&e, "allow_read can only be set in the user config")?;
                    s.allow_read = Some(self.deny_paths(&e)?);
                }
                "protected_paths" => s.protected_paths = Some(self.patterns(&e)?),
                "keep_processes" => s.keep_processes = Some(self.boolean(&e)?),
                "env" => {
                    for e in self.entries(self.table(&e)?, "env", e.line) {
                        match e.key.as_str() {
                            "env.keep" => {
                                self.not_in_project(&e, "env.keep can only be set in the user config or with --keep-env")?;
                                s.env_keep = Some(self.list(&e, |n| check_env_name(n).map(|_| n.to_string()))?);
                            }
                            "env.secret_patterns" => s.secret_patterns = Some(self.secret_patterns(&e)?),
                            _ => return Err(self.unknown(&e, ENV_KEYS)),
                        }
                    }
                }
                "linux" => {
                    for e in self.entries(self.table(&e)?, "linux", e.line) {
                        match e.key.as_str() {
                            "linux.allow_landlock_only" => s.allow_landlock_only = Some(self.boolean(&e)?),
                            "linux.allow_unprotected_paths" => s.allow_unprotected_paths = Some(self.boolean(&e)?),
                            "linux.allow_landlock_only_as_root" => s.allow_landlock_only_as_root = Some(self.boolean(&e)?),
                            _ => return Err(self.unknown(&e, LINUX_KEYS)),
                        }
                    }
                }
                "windows" => {
                    for e in self.entries(self.table(&e)?, "windows", e.line) {
                        match e.key.as_str() {
                            "windows.mode" => {
                                self.not_in_project(&e, "windows.mode can only be set in the user config")?;
                                s.windows_mode = Some(self.choice(&e, &["unelevated", "elevated"], WindowsMode::parse)?);
                            }
                            "windows.private_desktop" => s.private_desktop = Some(self.boolean(&e)?),
                            _ => return Err(self.unknown(&e, WINDOWS_KEYS)),
                        }
                    }
                }
                _ => return Err(self.unknown(&e, USER_KEYS)),
            }
        }
        // Impossible combinations within one file.
        if let (Some(mode), Some(roots)) = (&s.mode, &s.writable_roots) {
            if mode.v == Mode::ReadOnly && !roots.items.is_empty() {
                return Err(self.err(
                    roots.line,
                    "writable_roots",
                    format!("has no effect with mode = \"read-only\" (line {})", mode.line),
                ));
            }
        }
        Ok(s)
    }

    fn managed(&self, root: &dyn TableLike) -> Result<ManagedSettings, ConfigError> {
        let mut m = ManagedSettings::default();
        for e in self.entries(root, "", 1) {
            match e.key.as_str() {
                "allowed_modes" => {
                    let names = Mode::ALL.map(Mode::as_str);
                    let list = self.list(&e, |s| {
                        Mode::parse(s).ok_or_else(|| format!("expected one of {}, found \"{s}\"", quoted_list(&names)))
                    })?;
                    if list.items.is_empty() {
                        return Err(self.err(e.line, &e.key, "must allow at least one mode"));
                    }
                    m.allowed_modes = Some(list);
                }
                "allow_network" => m.allow_network = Some(self.boolean(&e)?),
                "deny_read" => m.deny_read = Some(self.deny_paths(&e)?),
                "protected_paths" => m.protected_paths = Some(self.patterns(&e)?),
                "allow_keep_env" => m.allow_keep_env = Some(self.boolean(&e)?),
                "allow_writable_roots" => m.allow_writable_roots = Some(self.boolean(&e)?),
                "allow_landlock_only" => m.allow_landlock_only = Some(self.boolean(&e)?),
                "allow_unprotected_paths" => m.allow_unprotected_paths = Some(self.boolean(&e)?),
                "allow_landlock_only_as_root" => m.allow_landlock_only_as_root = Some(self.boolean(&e)?),
                "env" => {
                    for e in self.entries(self.table(&e)?, "env", e.line) {
                        match e.key.as_str() {
                            "env.secret_patterns" => m.secret_patterns = Some(self.secret_patterns(&e)?),
                            _ => return Err(self.unknown(&e, "secret_patterns")),
                        }
                    }
                }
                _ => return Err(self.unknown(&e, MANAGED_KEYS)),
            }
        }
        Ok(m)
    }
}

/// Parses a file's text (the `Syntax` error carries the line).
fn parse_doc<'s>(path: &Path, src: &'s str) -> Result<ImDocument<&'s str>, ConfigError> {
    ImDocument::parse(src).map_err(|e| {
        let line = e.span().map(|s| line_at(src, s.start)).unwrap_or(1);
        let message = e.message().trim().replace('\n', "; ");
        // Duplicate keys get the usual `<key>: <what>` shape.
        if let Some(rest) = message.strip_prefix("duplicate key `") {
            if let Some((key, rest)) = rest.split_once('`') {
                let key = match rest.strip_prefix(" in table `").and_then(|t| t.split_once('`')) {
                    Some((table, _)) => format!("{table}.{key}"),
                    None => key.to_string(),
                };
                return ConfigError::Setting { path: path.to_path_buf(), line, key, message: "duplicate key".into() };
            }
        }
        ConfigError::Syntax { path: path.to_path_buf(), line, message }
    })
}

/// The file's text, or `None` if it does not exist.
/// The largest configuration file read; a longer one is an error, not a memory exhaustion.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    use std::io::Read;
    let err = |source: io::Error| ConfigError::Read { path: path.to_path_buf(), source };
    let not_file = |kind: &str| err(io::Error::other(format!("it is {kind}, not a regular file")));
    // A project file comes with the repository: a FIFO there would block the open forever, and
    // a link to /dev/zero would be read until memory runs out. Only regular files are read.
    let kind_of = |m: &std::fs::Metadata| -> Option<&'static str> {
        if m.is_file() {
            None
        } else if m.is_dir() {
            Some("a directory")
        } else {
            Some("a special file (FIFO, socket or device)")
        }
    };
    match std::fs::metadata(path) {
        Ok(m) => {
            if let Some(kind) = kind_of(&m) {
                return Err(not_file(kind));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    if let Some(kind) = kind_of(&file.metadata().map_err(err)?) {
        return Err(not_file(kind));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(err(io::Error::other(format!("larger than {} bytes", MAX_CONFIG_BYTES))));
    }
    String::from_utf8(bytes).map(Some).map_err(|_| err(io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8")))
}

// ---------------------------------------------------------------------------------------------
// Checks shared by files and the command line.

/// `~` and `~/...` expanded; relative paths resolved against `base` (or refused without one);
/// lexically normalized.
fn expand_path(raw: &str, home: Option<&Path>, base: Option<&Path>) -> Result<PathBuf, String> {
    if raw.is_empty() {
        return Err("empty path".into());
    }
    if raw.contains('\0') {
        return Err(format!("path \"{}\" contains a NUL character", raw.escape_default()));
    }
    let tilde_rest = if raw == "~" {
        Some("")
    } else {
        raw.strip_prefix("~/").or_else(|| if cfg!(windows) { raw.strip_prefix("~\\") } else { None })
    };
    let path = if let Some(rest) = tilde_rest {
        let home = home.ok_or_else(|| format!("cannot expand \"{raw}\": the home directory is unknown"))?;
        if rest.is_empty() {
            home.to_path_buf()
        } else {
            home.join(rest)
        }
    } else if raw.starts_with('~') {
        return Err(format!("\"{raw}\": only ~ and ~/ are expanded (not ~user)"));
    } else {
        let p = PathBuf::from(raw);
        if p.is_absolute() {
            p
        } else if let Some(base) = base {
            base.join(p)
        } else {
            return Err(format!("\"{raw}\" must be absolute or start with ~/ (relative paths are only allowed in a project config)"));
        }
    };
    Ok(normalize_lexically(&path))
}

/// `path` with the symbolic links of its existing part resolved.
fn real_path(path: &Path) -> PathBuf {
    for existing in path.ancestors() {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return match path.strip_prefix(existing) {
                Ok(rest) if !rest.as_os_str().is_empty() => real.join(rest),
                _ => real,
            };
        }
    }
    path.to_path_buf()
}

/// The first symbolic link on the way to `path` that lies inside `workspace` (where any
/// sandboxed command may have planted it), if any.
fn link_inside(path: &Path, workspace: &Path) -> Option<PathBuf> {
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().ok()?.join(path) };
    let mut cur = PathBuf::new();
    for c in normalize_lexically(&abs).components() {
        cur.push(c);
        if std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) {
            let dir = cur.parent().and_then(|d| std::fs::canonicalize(d).ok())?;
            if dir.starts_with(workspace) {
                return Some(cur);
            }
            cur = std::fs::canonicalize(&cur).ok()?;
        }
    }
    None
}

/// A canonical, existing directory that is neither `/` nor the home directory, and not reached
/// through a symbolic link inside the workspace: a command in an earlier sandbox could have
/// replaced `<workspace>/out` by a link to `~/.config`, making the next sandbox's "writable
/// root in the workspace" a folder outside it.
fn check_writable_root(path: &Path, home: Option<&Path>, workspace: &Path) -> Result<PathBuf, String> {
    if let Some(link) = link_inside(path, workspace) {
        return Err(format!(
            "{} is reached through the symbolic link {} inside the workspace (which sandboxed commands can change); name the real directory instead",
            path.display(),
            link.display()
        ));
    }
    let real = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("{}: {e}", path.display()),
    })?;
    if !real.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    if real.parent().is_none() {
        return Err(format!("refusing to make {} writable", real.display()));
    }
    if let Some(why) = kernel_filesystem(&real) {
        return Err(format!("refusing to make {} writable: {why}", real.display()));
    }
    if home.is_some_and(|h| real_path(h) == real) {
        return Err(format!("refusing to make the home directory {} writable", real.display()));
    }
    if home.is_some_and(|h| real_path(h).starts_with(&real)) {
        return Err(format!("refusing to make {} writable: it contains the home directory", real.display()));
    }
    Ok(real)
}

/// Whether a canonical path lies in `/proc`, `/sys` or `/dev`: the sandbox gives the command its
/// own `/proc` and a minimal `/dev`, and making the host's writable would bypass them (and put
/// protected-path placeholders into the kernel's filesystems). `None` where that is fine.
fn kernel_filesystem(real: &Path) -> Option<&'static str> {
    if cfg!(unix) && ["/proc", "/sys", "/dev"].iter().any(|k| real.starts_with(k)) {
        return Some("it is in /proc, /sys or /dev, which the sandbox replaces with its own");
    }
    None
}

fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!("\"{}\" is not an environment variable name", name.escape_default()));
    }
    Ok(())
}

fn check_secret_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() || p.contains(['=', '\0']) {
        return Err(format!("\"{}\" is not a variable name pattern", p.escape_default()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Merging the layers.

#[derive(Clone, Debug)]
struct Val<T> {
    v: T,
    src: Source,
}

fn val<T>(v: T, src: Source) -> Val<T> {
    Val { v, src }
}

struct State {
    mode: Val<Mode>,
    network: Val<Network>,
    keep_processes: Val<bool>,
    writable_roots: Vec<Val<PathBuf>>,
    deny_read: Vec<Val<PathBuf>>,
    allow_read: Vec<Val<PathBuf>>,
    protected_paths: Vec<Val<String>>,
    protected_cleared: Option<Source>,
    env_keep: Vec<Val<String>>,
    secret_patterns: Vec<Val<String>>,
    allow_landlock_only: Val<bool>,
    allow_unprotected_paths: Val<bool>,
    allow_landlock_only_as_root: Val<bool>,
    windows_mode: Val<WindowsMode>,
    private_desktop: Val<bool>,
    // The project file's tightenings, which the command line may not undo.
    project_mode: Option<Val<Mode>>,
    project_network: Option<Source>,
    project_keep_processes: Option<Source>,
    project_protected: Option<Source>,
}

/// The command-line flag for a key.
fn flag_for(key: &str) -> &'static str {
    match key {
        "mode" => "--mode",
        "network" => "--network",
        "writable_roots" => "--writable",
        "env.keep" => "--keep-env",
        "keep_processes" => "--keep-processes",
        "protected_paths" => "--no-protected-paths",
        _ => "(option)",
    }
}

/// An error about the setting `key` that `src` asked for.
fn blame(src: &Source, key: &str, message: String) -> ConfigError {
    match &src.layer {
        Layer::User(p) | Layer::Project(p) | Layer::Managed(p) => {
            ConfigError::Setting { path: p.clone(), line: src.line.unwrap_or(1), key: key.to_string(), message }
        }
        Layer::CommandLine => ConfigError::CommandLine { flag: flag_for(key).to_string(), message },
        Layer::Default => ConfigError::Default { key: key.to_string(), message },
    }
}

fn at_source(layer: &Layer, line: usize) -> Source {
    Source { layer: layer.clone(), line: Some(line) }
}

fn push_list<T: Clone>(dst: &mut Vec<Val<T>>, list: &Option<List<T>>, layer: &Layer) {
    if let Some(list) = list {
        dst.extend(list.items.iter().map(|i| val(i.v.clone(), at_source(layer, i.line))));
    }
}

impl State {
    fn new(defaults: &Policy) -> State {
        let d = Source::default_layer;
        State {
            mode: val(defaults.mode, d()),
            network: val(defaults.network.clone(), d()),
            keep_processes: val(defaults.keep_processes, d()),
            writable_roots: defaults.writable_roots.iter().map(|p| val(p.clone(), d())).collect(),
            deny_read: defaults.deny_read.iter().map(|p| val(p.clone(), d())).collect(),
            allow_read: Vec::new(),
            protected_paths: defaults.protected_paths.iter().map(|p| val(p.clone(), d())).collect(),
            protected_cleared: None,
            env_keep: defaults.env.keep.iter().map(|p| val(p.clone(), d())).collect(),
            secret_patterns: defaults.env.secret_patterns.iter().map(|p| val(p.clone(), d())).collect(),
            allow_landlock_only: val(false, d()),
            allow_unprotected_paths: val(false, d()),
            allow_landlock_only_as_root: val(false, d()),
            windows_mode: val(WindowsMode::default(), d()),
            private_desktop: val(false, d()),
            project_mode: None,
            project_network: None,
            project_keep_processes: None,
            project_protected: None,
        }
    }

    fn apply_user(&mut self, layer: &Layer, s: &FileSettings) -> Result<(), ConfigError> {
        let src = |line| at_source(layer, line);
        if let Some(m) = &s.mode {
            self.mode = val(m.v, src(m.line));
        }
        if let Some(n) = &s.network {
            self.network = val(n.v.clone(), src(n.line));
        }
        if let Some(k) = &s.keep_processes {
            self.keep_processes = val(k.v, src(k.line));
        }
        push_list(&mut self.writable_roots, &s.writable_roots, layer);
        if let Some(allow) = &s.allow_read {
            for a in &allow.items {
                let before = self.deny_read.len();
                self.deny_read.retain(|d| !(d.src.layer == Layer::Default && d.v == a.v));
                if self.deny_read.len() == before {
                    return Err(blame(
                        &src(a.line),
                        "allow_read",
                        format!("{} is not one of the default deny_read entries", a.v.display()),
                    ));
                }
            }
            push_list(&mut self.allow_read, &s.allow_read, layer);
        }
        push_list(&mut self.deny_read, &s.deny_read, layer);
        push_list(&mut self.protected_paths, &s.protected_paths, layer);
        push_list(&mut self.env_keep, &s.env_keep, layer);
        push_list(&mut self.secret_patterns, &s.secret_patterns, layer);
        if let Some(b) = &s.allow_landlock_only {
            self.allow_landlock_only = val(b.v, src(b.line));
        }
        if let Some(b) = &s.allow_unprotected_paths {
            self.allow_unprotected_paths = val(b.v, src(b.line));
        }
        if let Some(b) = &s.allow_landlock_only_as_root {
            self.allow_landlock_only_as_root = val(b.v, src(b.line));
        }
        if let Some(m) = &s.windows_mode {
            self.windows_mode = val(m.v, src(m.line));
        }
        if let Some(b) = &s.private_desktop {
            self.private_desktop = val(b.v, src(b.line));
        }
        Ok(())
    }

    /// The project file: tightenings only (the keys it may never set were refused while
    /// parsing).
    fn apply_project(&mut self, layer: &Layer, s: &FileSettings) -> Result<(), ConfigError> {
        let src = |line| at_source(layer, line);
        let loosen = |line, key: &str, what: String| blame(&src(line), key, format!("{TIGHTEN_ONLY}; {what}"));
        if let Some(m) = &s.mode {
            if m.v > self.mode.v {
                return Err(loosen(
                    m.line,
                    "mode",
                    format!("\"{}\" is looser than \"{}\" (set by {})", m.v, self.mode.v, self.mode.src),
                ));
            }
            self.mode = val(m.v, src(m.line));
            self.project_mode = Some(val(m.v, src(m.line)));
        }
        if let Some(n) = &s.network {
            if !n.v.is_off() {
                return Err(loosen(n.line, "network", format!("network = \"{}\" would loosen it", n.v)));
            }
            self.network = val(n.v.clone(), src(n.line));
            self.project_network = Some(src(n.line));
        }
        if let Some(k) = &s.keep_processes {
            if k.v {
                return Err(loosen(k.line, "keep_processes", "keep_processes = true would loosen it".into()));
            }
            self.keep_processes = val(false, src(k.line));
            self.project_keep_processes = Some(src(k.line));
        }
        for (b, key, slot) in [
            (&s.allow_landlock_only, "linux.allow_landlock_only", &mut self.allow_landlock_only),
            (&s.allow_unprotected_paths, "linux.allow_unprotected_paths", &mut self.allow_unprotected_paths),
            (&s.allow_landlock_only_as_root, "linux.allow_landlock_only_as_root", &mut self.allow_landlock_only_as_root),
        ] {
            if let Some(b) = b {
                if b.v {
                    return Err(loosen(b.line, key, format!("{key} = true would loosen it")));
                }
                *slot = val(false, src(b.line));
            }
        }
        if let Some(b) = &s.private_desktop {
            if !b.v {
                return Err(loosen(b.line, "windows.private_desktop", "windows.private_desktop = false would loosen it".into()));
            }
            self.private_desktop = val(true, src(b.line));
        }
        push_list(&mut self.deny_read, &s.deny_read, layer);
        if let Some(first) = s.protected_paths.as_ref().and_then(|l| l.items.first()) {
            self.project_protected = Some(src(first.line));
        }
        push_list(&mut self.protected_paths, &s.protected_paths, layer);
        push_list(&mut self.secret_patterns, &s.secret_patterns, layer);
        Ok(())
    }

    fn apply_overrides(&mut self, o: &Overrides, home: Option<&Path>, workspace: &Path) -> Result<(), ConfigError> {
        let cl = |flag: &str, message: String| ConfigError::CommandLine { flag: flag.to_string(), message };
        let project_says = |src: &Source, what: &str| {
            format!(
                "project config {} sets {what}, which the command line may not loosen",
                src.location().unwrap_or_else(|| src.to_string())
            )
        };
        if o.mode == Some(Mode::ReadOnly) && !o.writable.is_empty() {
            return Err(cl("--writable", "has no effect with --mode read-only".into()));
        }
        if let Some(m) = o.mode {
            if let Some(p) = &self.project_mode {
                if m > p.v {
                    return Err(cl("--mode", project_says(&p.src, &format!("mode = \"{}\"", p.v))));
                }
            }
            self.mode = val(m, Source::command_line());
        }
        if let Some(n) = &o.network {
            if let (false, Some(src)) = (n.is_off(), &self.project_network) {
                return Err(cl("--network", project_says(src, "network = \"off\"")));
            }
            self.network = val(n.clone(), Source::command_line());
        }
        if let Some(k) = o.keep_processes {
            if let (true, Some(src)) = (k, &self.project_keep_processes) {
                return Err(cl("--keep-processes", project_says(src, "keep_processes = false")));
            }
            self.keep_processes = val(k, Source::command_line());
        }
        for w in &o.writable {
            // `--writable=~/.cargo` reaches us unexpanded (shells expand `~` only at the start of
            // a word), and so does any argv an agent passes without a shell: expand `~` and `~/`
            // as the files do.
            let w = match w.to_str() {
                Some(t) if t == "~" || t.starts_with("~/") => expand_path(t, home, None).map_err(|why| cl("--writable", why))?,
                _ => w.clone(),
            };
            let real = check_writable_root(&w, home, workspace).map_err(|why| cl("--writable", why))?;
            self.writable_roots.push(val(real, Source::command_line()));
        }
        if !o.writable.is_empty() && self.mode.v == Mode::ReadOnly {
            return Err(cl(
                "--writable",
                format!("has no effect: the mode is read-only (set by {}); pass --mode workspace-write", self.mode.src),
            ));
        }
        for name in &o.keep_env {
            check_env_name(name).map_err(|why| cl("--keep-env", why))?;
            self.env_keep.push(val(name.clone(), Source::command_line()));
        }
        if o.no_protected_paths {
            if let Some(src) = &self.project_protected {
                return Err(cl(
                    "--no-protected-paths",
                    format!(
                        "project config {} adds protected_paths, which the command line may not remove",
                        src.location().unwrap_or_default()
                    ),
                ));
            }
            self.protected_paths.clear();
            self.protected_cleared = Some(Source::command_line());
        }
        Ok(())
    }

    fn apply_managed(&mut self, layer: &Layer, m: &ManagedSettings) -> Result<(), ConfigError> {
        let src = |line| at_source(layer, line);
        let admin = |line: usize, what: String| {
            format!("forbidden by the administrator ({}:{line}: {what})", layer.path().unwrap_or(Path::new("?")).display())
        };
        if let Some(allowed) = &m.allowed_modes {
            let modes: Vec<Mode> = allowed.items.iter().map(|i| i.v).collect();
            if !modes.contains(&self.mode.v) {
                if self.mode.src.layer == Layer::Default {
                    let strictest = modes.iter().copied().min().expect("allowed_modes is not empty");
                    self.mode = val(strictest, src(allowed.line));
                } else {
                    let names: Vec<&str> = modes.iter().map(|m| m.as_str()).collect();
                    return Err(blame(
                        &self.mode.src,
                        "mode",
                        format!("\"{}\" is {}", self.mode.v, admin(allowed.line, format!("allowed_modes = [{}]", quoted_list(&names)))),
                    ));
                }
            }
        }
        if let Some(b) = m.allow_network.as_ref().filter(|b| !b.v) {
            if !self.network.v.is_off() {
                if self.network.src.layer == Layer::Default {
                    self.network = val(Network::Off, src(b.line));
                } else {
                    return Err(blame(
                        &self.network.src,
                        "network",
                        format!("\"{}\" is {}", self.network.v, admin(b.line, "allow_network = false".into())),
                    ));
                }
            }
        }
        if let Some(b) = m.allow_writable_roots.as_ref().filter(|b| !b.v) {
            if let Some(w) = self.writable_roots.first() {
                return Err(blame(
                    &w.src,
                    "writable_roots",
                    format!("extra writable roots are {}", admin(b.line, "allow_writable_roots = false".into())),
                ));
            }
        }
        if let Some(b) = m.allow_keep_env.as_ref().filter(|b| !b.v) {
            if let Some(k) = self.env_keep.first() {
                return Err(blame(
                    &k.src,
                    "env.keep",
                    format!("keeping \"{}\" is {}", k.v, admin(b.line, "allow_keep_env = false".into())),
                ));
            }
        }
        for (rule, key, current) in [
            (&m.allow_landlock_only, "linux.allow_landlock_only", &self.allow_landlock_only),
            (&m.allow_unprotected_paths, "linux.allow_unprotected_paths", &self.allow_unprotected_paths),
            (&m.allow_landlock_only_as_root, "linux.allow_landlock_only_as_root", &self.allow_landlock_only_as_root),
        ] {
            if let Some(b) = rule.as_ref().filter(|b| !b.v) {
                if current.v {
                    let short = key.trim_start_matches("linux.");
                    return Err(blame(&current.src, key, format!("true is {}", admin(b.line, format!("{short} = false")))));
                }
            }
        }
        if let Some(forced) = &m.deny_read {
            for d in &forced.items {
                if let Some(a) = self.allow_read.iter().find(|a| a.v == d.v) {
                    return Err(blame(
                        &a.src,
                        "allow_read",
                        format!("allowing {} is {}", a.v.display(), admin(d.line, "deny_read".into())),
                    ));
                }
            }
        }
        push_list(&mut self.deny_read, &m.deny_read, layer);
        if let Some(forced) = m.protected_paths.as_ref().filter(|l| !l.items.is_empty()) {
            if let Some(cleared) = &self.protected_cleared {
                return Err(blame(
                    cleared,
                    "protected_paths",
                    format!("dropping protected paths is {}", admin(forced.line, "protected_paths".into())),
                ));
            }
        }
        push_list(&mut self.protected_paths, &m.protected_paths, layer);
        if let Some(forced) = &m.secret_patterns {
            for k in &self.env_keep {
                let upper = k.v.to_ascii_uppercase();
                if let Some(p) = forced.items.iter().find(|p| glob_match(&p.v.to_ascii_uppercase(), &upper)) {
                    return Err(blame(
                        &k.src,
                        "env.keep",
                        format!(
                            "\"{}\" matches secret pattern \"{}\", so keeping it is {}",
                            k.v,
                            p.v,
                            admin(p.line, "env.secret_patterns".into())
                        ),
                    ));
                }
            }
        }
        push_list(&mut self.secret_patterns, &m.secret_patterns, layer);
        Ok(())
    }

    /// A deny-read entry may lie inside the workspace or a writable root (it is masked on top),
    /// but not contain one: the command could not read (or start in) its own workspace, and a
    /// mask over `/` would silently hide nothing.
    fn check_deny_read_overlaps(&self, workspace: &Path) -> Result<(), ConfigError> {
        for d in &self.deny_read {
            if d.v.parent().is_none() {
                return Err(blame(&d.src, "deny_read", format!("{} would hide everything; name the folders to hide", d.v.display())));
            }
            if workspace.starts_with(&d.v) {
                let what = if workspace == d.v { "is" } else { "contains" };
                return Err(blame(
                    &d.src,
                    "deny_read",
                    format!("{} {what} the workspace {}: the command could not read it", d.v.display(), workspace.display()),
                ));
            }
            if let Some(w) = self.writable_roots.iter().find(|w| w.v.starts_with(&d.v)) {
                return Err(blame(
                    &d.src,
                    "deny_read",
                    format!("{} hides the writable root {} (set by {})", d.v.display(), w.v.display(), w.src),
                ));
            }
        }
        Ok(())
    }

    fn finish(self, workspace: PathBuf) -> Resolved {
        fn dedup<T: PartialEq + Clone>(list: Vec<Val<T>>, key: &str, sources: &mut Vec<(String, Source)>) -> Vec<T> {
            let mut out: Vec<Val<T>> = Vec::new();
            for v in list {
                if !out.iter().any(|o| o.v == v.v) {
                    out.push(v);
                }
            }
            for (i, v) in out.iter().enumerate() {
                sources.push((format!("{key}[{i}]"), v.src.clone()));
            }
            out.into_iter().map(|v| v.v).collect()
        }
        let mut sources = vec![
            ("mode".to_string(), self.mode.src),
            ("network".to_string(), self.network.src),
            ("keep_processes".to_string(), self.keep_processes.src),
        ];
        let writable_roots = dedup(self.writable_roots, "writable_roots", &mut sources);
        let deny_read = dedup(self.deny_read, "deny_read", &mut sources);
        let allow_read = dedup(self.allow_read, "allow_read", &mut sources);
        if let Some(src) = self.protected_cleared {
            sources.push(("protected_paths".to_string(), src));
        }
        let protected_paths = dedup(self.protected_paths, "protected_paths", &mut sources);
        let keep = dedup(self.env_keep, "env.keep", &mut sources);
        let secret_patterns = dedup(self.secret_patterns, "env.secret_patterns", &mut sources);
        sources.extend([
            ("linux.allow_landlock_only".to_string(), self.allow_landlock_only.src),
            ("linux.allow_unprotected_paths".to_string(), self.allow_unprotected_paths.src),
            ("linux.allow_landlock_only_as_root".to_string(), self.allow_landlock_only_as_root.src),
            ("windows.mode".to_string(), self.windows_mode.src),
            ("windows.private_desktop".to_string(), self.private_desktop.src),
        ]);
        Resolved {
            policy: Policy {
                mode: self.mode.v,
                workspace,
                writable_roots,
                deny_read,
                protected_paths,
                network: self.network.v,
                env: EnvPolicy { secret_patterns, keep },
                keep_processes: self.keep_processes.v,
            },
            sources,
            allow_read,
            linux: LinuxSettings {
                allow_landlock_only: self.allow_landlock_only.v,
                allow_unprotected_paths: self.allow_unprotected_paths.v,
                allow_landlock_only_as_root: self.allow_landlock_only_as_root.v,
            },
            windows: WindowsSettings { mode: self.windows_mode.v, private_desktop: self.private_desktop.v },
        }
    }
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
    let managed_text = match &req.managed_config {
        Some(p) => read_optional(p)?.map(|t| (p.clone(), t)),
        None => None,
    };
    let managed = match &managed_text {
        Some((path, text)) => {
            let doc = parse_doc(path, text)?;
            let parser = Parser { path, src: text, kind: FileKind::Managed, home, workspace: &workspace };
            Some((Layer::Managed(path.clone()), parser.managed(doc.as_table())?))
        }
        None => None,
    };

    let user_path = req.user_config.clone();
    if let Some(path) = &user_path {
        if let Some(text) = read_optional(path)? {
            let doc = parse_doc(path, &text)?;
            let parser = Parser { path, src: &text, kind: FileKind::User, home, workspace: &workspace };
            let settings = parser.settings(doc.as_table())?;
            state.apply_user(&parser.layer(), &settings)?;
        }
    }

    let project_path = workspace.join(".palisade").join("config.toml");
    if let Some(text) = read_optional(&project_path)? {
        let doc = parse_doc(&project_path, &text)?;
        let parser = Parser { path: &project_path, src: &text, kind: FileKind::Project, home, workspace: &workspace };
        let settings = parser.settings(doc.as_table())?;
        state.apply_project(&parser.layer(), &settings)?;
    }

    state.apply_overrides(&req.overrides, home, &workspace)?;

    if let Some((layer, m)) = &managed {
        state.apply_managed(layer, m)?;
    }

    state.check_deny_read_overlaps(&workspace)?;

    // A workspace that is / or the home directory would make all of it writable.
    if state.mode.v == Mode::WorkspaceWrite {
        let refuse = if workspace.parent().is_none() {
            Some(format!("refusing to make {} writable (pass --workspace with a project directory)", workspace.display()))
        } else if let Some(why) = kernel_filesystem(&workspace) {
            Some(format!("refusing to make it writable: {why} (use --mode read-only)"))
        } else if home == Some(workspace.as_path()) {
            Some("is the home directory; refusing to make all of it writable (pass --workspace with a project directory, or use --mode read-only)".to_string())
        } else if home.is_some_and(|h| h.starts_with(&workspace)) {
            // ~/.bashrc, ~/.gitconfig and ~/.config would be writable: code the user runs later.
            Some("contains the home directory; refusing to make it writable (pass --workspace with a project directory, or use --mode read-only)".to_string())
        } else {
            None
        };
        if let Some(message) = refuse {
            return Err(ConfigError::Workspace { path: workspace, message });
        }
    }

    Ok(state.finish(workspace))
}

// ---------------------------------------------------------------------------------------------
// Showing the result.

/// One displayed setting.
enum Shown {
    Scalar { key: &'static str, value: serde_json::Value, text: String },
    List { key: &'static str, values: Vec<String> },
}

impl Resolved {
    /// The source of a key (see [`Resolved::sources`] for the keys).
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.sources.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }

    fn shown(&self) -> Vec<Shown> {
        let p = &self.policy;
        let scalar = |key, value: serde_json::Value, text: String| Shown::Scalar { key, value, text };
        let paths = |v: &[PathBuf]| v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
        vec![
            scalar("mode", p.mode.as_str().into(), p.mode.to_string()),
            scalar("network", p.network.as_str().into(), p.network.to_string()),
            scalar("keep_processes", p.keep_processes.into(), p.keep_processes.to_string()),
            Shown::List { key: "writable_roots", values: paths(&p.writable_roots) },
            Shown::List { key: "deny_read", values: paths(&p.deny_read) },
            Shown::List { key: "allow_read", values: paths(&self.allow_read) },
            Shown::List { key: "protected_paths", values: p.protected_paths.clone() },
            Shown::List { key: "env.keep", values: p.env.keep.clone() },
            Shown::List { key: "env.secret_patterns", values: p.env.secret_patterns.clone() },
            scalar("linux.allow_landlock_only", self.linux.allow_landlock_only.into(), self.linux.allow_landlock_only.to_string()),
            scalar(
                "linux.allow_unprotected_paths",
                self.linux.allow_unprotected_paths.into(),
                self.linux.allow_unprotected_paths.to_string(),
            ),
            scalar(
                "linux.allow_landlock_only_as_root",
                self.linux.allow_landlock_only_as_root.into(),
                self.linux.allow_landlock_only_as_root.to_string(),
            ),
            scalar("windows.mode", self.windows.mode.as_str().into(), self.windows.mode.to_string()),
            scalar("windows.private_desktop", self.windows.private_desktop.into(), self.windows.private_desktop.to_string()),
        ]
    }

    /// Every effective value and the layer that set it, one per line, in aligned columns.
    pub fn render(&self) -> String {
        let mut rows: Vec<(String, String, String)> =
            vec![("workspace".into(), self.policy.workspace.display().to_string(), String::new())];
        for s in self.shown() {
            match s {
                Shown::Scalar { key, text, .. } => {
                    let src = self.source(key).map(|s| s.to_string()).unwrap_or_default();
                    rows.push((key.to_string(), text, src));
                }
                Shown::List { key, values } if values.is_empty() => {
                    let src = self.source(key).map(|s| s.to_string()).unwrap_or_default();
                    rows.push((key.to_string(), "(none)".into(), src));
                }
                Shown::List { key, values } => {
                    for (i, v) in values.into_iter().enumerate() {
                        let src = self.source(&format!("{key}[{i}]")).map(|s| s.to_string()).unwrap_or_default();
                        rows.push((if i == 0 { key.to_string() } else { String::new() }, v, src));
                    }
                }
            }
        }
        let kw = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let vw = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v, s) in rows {
            let line = if s.is_empty() { format!("{k:kw$}  {v}") } else { format!("{k:kw$}  {v:vw$}  {s}") };
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The same as [`Resolved::render`], as JSON: `{"workspace": "...", "<key>": {"value": ...,
    /// "source": {"layer": "user", "path": "...", "line": 3}}, "<list key>": [{"value": ...,
    /// "source": ...}, ...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let source = |key: &str| self.source(key).map(Source::to_json).unwrap_or(serde_json::Value::Null);
        let mut map = serde_json::Map::new();
        map.insert("workspace".into(), self.policy.workspace.display().to_string().into());
        for s in self.shown() {
            match s {
                Shown::Scalar { key, value, .. } => {
                    map.insert(key.into(), serde_json::json!({"value": value, "source": source(key)}));
                }
                Shown::List { key, values } => {
                    let items: Vec<serde_json::Value> = values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| serde_json::json!({"value": v, "source": source(&format!("{key}[{i}]"))}))
                        .collect();
                    map.insert(key.into(), items.into());
                }
            }
        }
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A temporary home with a project inside, a user file and a managed file location.
    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        home: PathBuf,
        ws: PathBuf,
        user: PathBuf,
        managed: PathBuf,
        project: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let home = root.join("home");
        let ws = home.join("proj");
        fs::create_dir_all(&ws).unwrap();
        Fixture {
            user: home.join(".config/palisade/config.toml"),
            managed: root.join("etc/palisade/managed.toml"),
            project: ws.join(".palisade/config.toml"),
            _dir: dir,
            root,
            home,
            ws,
        }
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    impl Fixture {
        fn req(&self, overrides: Overrides) -> LoadRequest {
            LoadRequest {
                workspace: self.ws.clone(),
                home: Some(self.home.clone()),
                user_config: Some(self.user.clone()),
                managed_config: Some(self.managed.clone()),
                overrides,
            }
        }
        fn load(&self) -> Resolved {
            load(&self.req(Overrides::default())).unwrap()
        }
        fn load_with(&self, o: Overrides) -> Resolved {
            load(&self.req(o)).unwrap()
        }
        fn err(&self) -> String {
            self.err_with(Overrides::default())
        }
        fn err_with(&self, o: Overrides) -> String {
            let e = load(&self.req(o)).unwrap_err().to_string();
            assert!(!e.contains('\n'), "not one line: {e}");
            e
        }
        fn dir(&self, rel: &str) -> PathBuf {
            let p = self.root.join(rel);
            fs::create_dir_all(&p).unwrap();
            p
        }
    }

    fn user(f: &Fixture, line: usize) -> Source {
        Source { layer: Layer::User(f.user.clone()), line: Some(line) }
    }
    fn project(f: &Fixture, line: usize) -> Source {
        Source { layer: Layer::Project(f.project.clone()), line: Some(line) }
    }
    fn managed(f: &Fixture, line: usize) -> Source {
        Source { layer: Layer::Managed(f.managed.clone()), line: Some(line) }
    }

    #[track_caller]
    fn assert_prefix(err: &str, prefix: &str) {
        assert!(err.starts_with(prefix), "\n  error: {err}\n expected prefix: {prefix}");
    }

    #[test]
    fn defaults_without_any_file() {
        let f = fixture();
        let r = f.load();
        assert_eq!(r.policy, Policy::new(f.ws.clone(), Some(&f.home)));
        assert_eq!(r.source("mode"), Some(&Source::default_layer()));
        assert_eq!(r.source("deny_read[0]"), Some(&Source::default_layer()));
        assert_eq!(r.linux, LinuxSettings::default());
        assert_eq!(r.windows, WindowsSettings::default());
    }

    #[test]
    fn user_file_overrides_defaults_with_line_numbers() {
        let f = fixture();
        f.dir("home/.cargo");
        write(
            &f.user,
            "# my settings\nmode = \"full-access\"\nnetwork = \"on\"\nwritable_roots = [\n  \"~/.cargo\",\n]\nkeep_processes = true\n\n[env]\nkeep = [\"GITHUB_TOKEN\"]\n[linux]\nallow_landlock_only = true\n[windows]\nmode = \"elevated\"\nprivate_desktop = true\n",
        );
        let r = f.load();
        assert_eq!(r.policy.mode, Mode::FullAccess);
        assert_eq!(r.policy.network, Network::On);
        assert_eq!(r.policy.writable_roots, vec![f.home.join(".cargo")]);
        assert!(r.policy.keep_processes);
        assert_eq!(r.policy.env.keep, vec!["GITHUB_TOKEN".to_string()]);
        assert!(r.linux.allow_landlock_only);
        assert_eq!(r.windows, WindowsSettings { mode: WindowsMode::Elevated, private_desktop: true });
        assert_eq!(r.source("mode"), Some(&user(&f, 2)));
        assert_eq!(r.source("network"), Some(&user(&f, 3)));
        assert_eq!(r.source("writable_roots[0]"), Some(&user(&f, 5)));
        assert_eq!(r.source("keep_processes"), Some(&user(&f, 7)));
        assert_eq!(r.source("env.keep[0]"), Some(&user(&f, 10)));
        assert_eq!(r.source("linux.allow_landlock_only"), Some(&user(&f, 12)));
        assert_eq!(r.source("windows.mode"), Some(&user(&f, 14)));
        assert_eq!(r.source("windows.private_desktop"), Some(&user(&f, 15)));
        assert_eq!(user(&f, 3).to_string(), format!("user ({}:3)", f.user.display()));
    }

    #[test]
    #[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
    fn lists_add_up_across_layers_without_duplicates() {
        let f = fixture();
        write(&f.user, "deny_read = [\"~/private\", \"~/.ssh\"]\nprotected_paths = [\".husky\"]\nenv.secret_patterns = [\"*_PAT\"]\n");
        write(&f.project, "deny_read = [\"secrets\", \"/opt/keys\"]\nprotected_paths = [\".husky\", \"ci/*\"]\n");
        write(&f.managed, "deny_read = [\"/srv/secret\"]\nprotected_paths = [\".github/workflows\"]\n[env]\nsecret_patterns = [\"*COOKIE*\", \"*_SSN\"]\n");
        let r = f.load();
        let p = &r.policy;
        let n = crate::DEFAULT_DENY_READ_IN_HOME.len();
        assert_eq!(
            p.deny_read[n..],
            [f.home.join("private"), f.ws.join("secrets"), PathBuf::from("/opt/keys"), PathBuf::from("/srv/secret")]
        );
        assert_eq!(p.deny_read.iter().filter(|d| **d == f.home.join(".ssh")).count(), 1);
        assert_eq!(r.source(&format!("deny_read[{n}]")), Some(&user(&f, 1)));
        assert_eq!(r.source(&format!("deny_read[{}]", n + 1)), Some(&project(&f, 1)));
        assert_eq!(r.source(&format!("deny_read[{}]", n + 3)), Some(&managed(&f, 1)));
        let d = protected::DEFAULT_PATTERNS.len();
        assert_eq!(p.protected_paths[d..], [".husky".to_string(), "ci/*".into(), ".github/workflows".into()]);
        assert_eq!(r.source(&format!("protected_paths[{d}]")), Some(&user(&f, 2)));
        assert_eq!(r.source(&format!("protected_paths[{}]", d + 1)), Some(&project(&f, 2)));
        assert_eq!(p.env.secret_patterns.last().map(String::as_str), Some("*_SSN"));
        assert_eq!(p.env.secret_patterns.iter().filter(|s| *s == "*COOKIE*").count(), 1);
        assert!(p.env.secret_patterns.contains(&"*_PAT".to_string()));
    }

    #[test]
    fn project_may_tighten_mode_and_network() {
        let f = fixture();
        write(&f.user, "mode = \"full-access\"\nnetwork = \"on\"\n");
        write(&f.project, "\nmode = \"read-only\"\nnetwork = \"off\"\nkeep_processes = false\n[windows]\nprivate_desktop = true\n");
        let r = f.load();
        assert_eq!(r.policy.mode, Mode::ReadOnly);
        assert_eq!(r.policy.network, Network::Off);
        assert!(r.windows.private_desktop);
        assert_eq!(r.source("mode"), Some(&project(&f, 2)));
        assert_eq!(r.source("network"), Some(&project(&f, 3)));
        // Equal is not looser.
        write(&f.project, "mode = \"full-access\"\n");
        assert_eq!(f.load().policy.mode, Mode::FullAccess);
    }

    #[test]
    fn project_may_not_loosen() {
        let f = fixture();
        let p = f.project.display().to_string();
        let cases: &[(&str, &str)] = &[
            ("mode = \"full-access\"", "mode: project config may only tighten the policy; \"full-access\" is looser than \"workspace-write\" (set by default)"),
            ("network = \"on\"", "network: project config may only tighten the policy"),
            ("writable_roots = [\"/tmp\"]", "writable_roots: project config may only tighten the policy"),
            ("allow_read = [\"~/.ssh\"]", "allow_read: project config may only tighten the policy"),
            ("keep_processes = true", "keep_processes: project config may only tighten the policy"),
            ("[env]\nkeep = [\"X\"]", "env.keep: project config may only tighten the policy"),
            ("[linux]\nallow_landlock_only = true", "linux.allow_landlock_only: project config may only tighten the policy"),
            ("[linux]\nallow_unprotected_paths = true", "linux.allow_unprotected_paths: project config may only tighten the policy"),
            ("[linux]\nallow_landlock_only_as_root = true", "linux.allow_landlock_only_as_root: project config may only tighten the policy"),
            ("[windows]\nmode = \"elevated\"", "windows.mode: project config may only tighten the policy"),
            ("[windows]\nprivate_desktop = false", "windows.private_desktop: project config may only tighten the policy"),
        ];
        for (text, want) in cases {
            write(&f.project, &format!("# project\n{text}\n"));
            let line = text.lines().count() + 1;
            assert_prefix(&f.err(), &format!("{p}:{line}: {want}"));
        }
        // Looser than the user's choice.
        write(&f.user, "mode = \"read-only\"\n");
        write(&f.project, "mode = \"workspace-write\"\n");
        assert_prefix(
            &f.err(),
            &format!("{p}:1: mode: project config may only tighten the policy; \"workspace-write\" is looser than \"read-only\" (set by user ({}:1))", f.user.display()),
        );
    }

    #[test]
    fn command_line_overrides_user_and_defaults() {
        let f = fixture();
        let extra = f.dir("extra");
        write(&f.user, "mode = \"read-only\"\nnetwork = \"off\"\nkeep_processes = true\n");
        let r = f.load_with(Overrides {
            mode: Some(Mode::WorkspaceWrite),
            network: Some(Network::On),
            writable: vec![extra.clone()],
            keep_env: vec!["NPM_TOKEN".into()],
            keep_processes: Some(false),
            no_protected_paths: false,
        });
        assert_eq!(r.policy.mode, Mode::WorkspaceWrite);
        assert_eq!(r.policy.network, Network::On);
        assert!(!r.policy.keep_processes);
        assert_eq!(r.policy.writable_roots, vec![extra]);
        assert_eq!(r.policy.env.keep, vec!["NPM_TOKEN".to_string()]);
        for key in ["mode", "network", "keep_processes", "writable_roots[0]", "env.keep[0]"] {
            assert_eq!(r.source(key), Some(&Source::command_line()), "{key}");
        }
        assert_eq!(Source::command_line().to_string(), "command line");
    }

    #[test]
    fn command_line_may_not_undo_project_tightenings() {
        let f = fixture();
        let p = f.project.display().to_string();
        write(&f.project, "mode = \"read-only\"\nnetwork = \"off\"\nkeep_processes = false\nprotected_paths = [\"x\"]\n");
        assert_prefix(
            &f.err_with(Overrides { network: Some(Network::On), ..Default::default() }),
            &format!("command line: --network: project config {p}:2 sets network = \"off\", which the command line may not loosen"),
        );
        assert_prefix(
            &f.err_with(Overrides { mode: Some(Mode::WorkspaceWrite), ..Default::default() }),
            &format!("command line: --mode: project config {p}:1 sets mode = \"read-only\""),
        );
        assert_prefix(
            &f.err_with(Overrides { keep_processes: Some(true), ..Default::default() }),
            &format!("command line: --keep-processes: project config {p}:3 sets keep_processes = false"),
        );
        assert_prefix(
            &f.err_with(Overrides { no_protected_paths: true, ..Default::default() }),
            &format!("command line: --no-protected-paths: project config {p}:4 adds protected_paths"),
        );
        // Agreeing with the project, or stricter, is fine.
        let r = f.load_with(Overrides { mode: Some(Mode::ReadOnly), network: Some(Network::Off), ..Default::default() });
        assert_eq!(r.policy.mode, Mode::ReadOnly);
        assert_eq!(r.source("mode"), Some(&Source::command_line()));
    }

    #[test]
    fn no_protected_paths_drops_defaults_and_user_patterns() {
        let f = fixture();
        write(&f.user, "protected_paths = [\".husky\"]\n");
        let r = f.load_with(Overrides { no_protected_paths: true, ..Default::default() });
        assert!(r.policy.protected_paths.is_empty());
        assert_eq!(r.source("protected_paths"), Some(&Source::command_line()));
        assert!(r.render().lines().any(|l| l.starts_with("protected_paths") && l.contains("(none)") && l.ends_with("command line")));
    }

    #[test]
    #[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
    fn writable_with_read_only_is_an_error() {
        let f = fixture();
        let extra = f.dir("extra");
        assert_eq!(
            f.err_with(Overrides { mode: Some(Mode::ReadOnly), writable: vec![extra.clone()], ..Default::default() }),
            "command line: --writable: has no effect with --mode read-only"
        );
        write(&f.user, "mode = \"read-only\"\n");
        assert_prefix(
            &f.err_with(Overrides { writable: vec![extra.clone()], ..Default::default() }),
            &format!("command line: --writable: has no effect: the mode is read-only (set by user ({}:1))", f.user.display()),
        );
        write(&f.user, "mode = \"read-only\"\nwritable_roots = [\"{}\"]\n".replace("{}", &extra.display().to_string()).as_str());
        assert_eq!(
            f.err(),
            format!("{}:2: writable_roots: has no effect with mode = \"read-only\" (line 1)", f.user.display())
        );
    }

    #[test]
    #[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
    fn writable_roots_are_checked_and_canonicalized() {
        let f = fixture();
        let u = f.user.display().to_string();
        #[cfg(unix)]
        {
            let real = f.dir("real");
            std::os::unix::fs::symlink(&real, f.root.join("link")).unwrap();
            write(&f.user, &format!("writable_roots = [\"{}\"]\n", f.root.join("link/../link").display()));
            assert_eq!(f.load().policy.writable_roots, vec![real.clone()]);
        }
        let cases = [
            ("\"/\"", "writable_roots: refusing to make / writable".to_string()),
            ("\"~\"", format!("writable_roots: refusing to make the home directory {} writable", f.home.display())),
            ("\"/proc/self\"", "writable_roots: refusing to make /proc/".to_string()),
            ("\"/dev\"", "writable_roots: refusing to make /dev writable: it is in /proc, /sys or /dev".to_string()),
            ("\"~/missing\"", format!("writable_roots: {} does not exist", f.home.join("missing").display())),
            ("\"relative/dir\"", "writable_roots: \"relative/dir\" must be absolute or start with ~/".to_string()),
            ("\"~bob/x\"", "writable_roots: \"~bob/x\": only ~ and ~/ are expanded".to_string()),
            ("[1]", "writable_roots: expected an array of strings, found an integer in it".to_string()),
        ];
        for (value, want) in cases {
            let value = if value.starts_with('[') { value.trim_matches(['[', ']']).to_string() } else { value.to_string() };
            write(&f.user, &format!("\nwritable_roots = [{value}]\n"));
            assert_prefix(&f.err(), &format!("{u}:2: {want}"));
        }
        fs::remove_file(&f.user).unwrap();
        // `--writable=~/dir` reaches palisade unexpanded: `~/` means the home directory there too.
        let cache = f.home.join("cache");
        fs::create_dir_all(&cache).unwrap();
        let r = load(&f.req(Overrides { writable: vec!["~/cache".into()], ..Default::default() })).unwrap();
        assert_eq!(r.policy.writable_roots, vec![real_path(&cache)]);
        assert_prefix(
            &f.err_with(Overrides { writable: vec!["~".into()], ..Default::default() }),
            &format!("command line: --writable: refusing to make the home directory {} writable", f.home.display()),
        );
        assert_prefix(
            &f.err_with(Overrides { writable: vec![f.root.join("nope")], ..Default::default() }),
            &format!("command line: --writable: {} does not exist", f.root.join("nope").display()),
        );
    }

    #[test]
    fn allow_read_removes_default_entries_only() {
        let f = fixture();
        write(&f.user, "allow_read = [\"~/.config/gh\"]\n");
        let r = f.load();
        assert!(!r.policy.deny_read.contains(&f.home.join(".config/gh")));
        assert!(r.policy.deny_read.contains(&f.home.join(".ssh")));
        // It changes the effective policy, so `palisade policy` shows it with its file and line.
        let gh = f.home.join(".config/gh").display().to_string();
        let line = r.render().lines().find(|l| l.starts_with("allow_read")).map(str::to_string).unwrap_or_default();
        assert!(line.contains(&gh) && line.contains(&format!("{}:1", f.user.display())), "{}", r.render());
        assert_eq!(r.to_json()["allow_read"][0]["value"], serde_json::json!(gh));
        write(&f.user, "allow_read = [\n\"~/.ssh\",\n\"~/.nothing\"]\n");
        assert_eq!(
            f.err(),
            format!("{}:3: allow_read: {} is not one of the default deny_read entries", f.user.display(), f.home.join(".nothing").display())
        );
    }

    #[test]
    fn managed_clamps_defaults_and_refuses_requests() {
        let f = fixture();
        let m = f.managed.display().to_string();
        write(&f.managed, "# policy\nallowed_modes = [\"read-only\", \"full-access\"]\n");
        let r = f.load();
        assert_eq!(r.policy.mode, Mode::ReadOnly);
        assert_eq!(r.source("mode"), Some(&managed(&f, 2)));

        write(&f.managed, "allowed_modes = [\"read-only\", \"workspace-write\"]\nallow_network = false\n");
        write(&f.user, "\n\nmode = \"full-access\"\n");
        assert_eq!(
            f.err(),
            format!("{}:3: mode: \"full-access\" is forbidden by the administrator ({m}:1: allowed_modes = [\"read-only\", \"workspace-write\"])", f.user.display())
        );
        // Overridden on the command line by an allowed mode: fine.
        assert_eq!(f.load_with(Overrides { mode: Some(Mode::ReadOnly), ..Default::default() }).policy.mode, Mode::ReadOnly);
        assert_eq!(
            f.err_with(Overrides { mode: Some(Mode::FullAccess), ..Default::default() }),
            format!("command line: --mode: \"full-access\" is forbidden by the administrator ({m}:1: allowed_modes = [\"read-only\", \"workspace-write\"])")
        );
        fs::remove_file(&f.user).unwrap();
        assert_eq!(
            f.err_with(Overrides { network: Some(Network::On), ..Default::default() }),
            format!("command line: --network: \"on\" is forbidden by the administrator ({m}:2: allow_network = false)")
        );
        write(&f.user, "network = \"on\"\n");
        assert_prefix(&f.err(), &format!("{}:1: network: \"on\" is forbidden by the administrator ({m}:2:", f.user.display()));
    }

    #[test]
    fn managed_forbids_loosening_switches() {
        let f = fixture();
        let m = f.managed.display().to_string();
        let u = f.user.display().to_string();
        f.dir("home/.cargo");
        write(&f.managed, "allow_writable_roots = false\nallow_keep_env = false\nallow_landlock_only = false\nallow_unprotected_paths = false\n");
        write(&f.user, "writable_roots = [\"~/.cargo\"]\n");
        assert_eq!(
            f.err(),
            format!("{u}:1: writable_roots: extra writable roots are forbidden by the administrator ({m}:1: allow_writable_roots = false)")
        );
        fs::remove_file(&f.user).unwrap();
        assert_prefix(
            &f.err_with(Overrides { keep_env: vec!["GH_TOKEN".into()], ..Default::default() }),
            &format!("command line: --keep-env: keeping \"GH_TOKEN\" is forbidden by the administrator ({m}:2: allow_keep_env = false)"),
        );
        write(&f.user, "[linux]\nallow_landlock_only = true\n");
        assert_eq!(
            f.err(),
            format!("{u}:2: linux.allow_landlock_only: true is forbidden by the administrator ({m}:3: allow_landlock_only = false)")
        );
        write(&f.user, "[linux]\nallow_landlock_only = false\nallow_unprotected_paths = true\n");
        assert_prefix(&f.err(), &format!("{u}:3: linux.allow_unprotected_paths: true is forbidden by the administrator ({m}:4:"));
        // Explicitly false is fine.
        write(&f.user, "[linux]\nallow_landlock_only = false\n");
        assert!(!f.load().linux.allow_landlock_only);
        write(&f.managed, "allow_landlock_only_as_root = false\n");
        write(&f.user, "[linux]\nallow_landlock_only_as_root = true\n");
        assert_prefix(&f.err(), &format!("{u}:2: linux.allow_landlock_only_as_root: true is forbidden by the administrator ({m}:1:"));
    }

    #[test]
    fn managed_forced_lists_cannot_be_undone() {
        let f = fixture();
        let m = f.managed.display().to_string();
        let u = f.user.display().to_string();
        write(&f.managed, "deny_read = [\"~/.ssh\"]\nprotected_paths = [\".github/workflows\"]\n[env]\nsecret_patterns = [\"*_PAT\"]\n");
        let r = f.load();
        assert!(r.policy.deny_read.contains(&f.home.join(".ssh")));
        assert_eq!(r.policy.protected_paths.last().map(String::as_str), Some(".github/workflows"));
        let last = r.policy.protected_paths.len() - 1;
        assert_eq!(r.source(&format!("protected_paths[{last}]")), Some(&managed(&f, 2)));

        write(&f.user, "allow_read = [\"~/.ssh\"]\n");
        assert_eq!(
            f.err(),
            format!("{u}:1: allow_read: allowing {} is forbidden by the administrator ({m}:1: deny_read)", f.home.join(".ssh").display())
        );
        write(&f.user, "[env]\nkeep = [\"GITHUB_PAT\"]\n");
        assert_eq!(
            f.err(),
            format!("{u}:2: env.keep: \"GITHUB_PAT\" matches secret pattern \"*_PAT\", so keeping it is forbidden by the administrator ({m}:4: env.secret_patterns)")
        );
        fs::remove_file(&f.user).unwrap();
        assert_eq!(
            f.err_with(Overrides { no_protected_paths: true, ..Default::default() }),
            format!("command line: --no-protected-paths: dropping protected paths is forbidden by the administrator ({m}:2: protected_paths)")
        );
    }

    #[test]
    fn a_project_file_may_ask_for_only_so_many_protected_paths() {
        let f = fixture();
        let many: Vec<String> = (0..MAX_PROJECT_PATTERNS + 1).map(|i| format!("\"gen/p{i}\"")).collect();
        write(&f.project, &format!("protected_paths = [{}]\n", many.join(", ")));
        let e = f.err();
        assert!(e.starts_with(&format!("{}:1: protected_paths: {} patterns; a project file may add at most", f.project.display(), MAX_PROJECT_PATTERNS + 1)), "{e}");
        assert_eq!(e.lines().count(), 1);
        let deep = vec!["d"; MAX_PROJECT_PATTERN_DEPTH + 1].join("/");
        write(&f.project, &format!("protected_paths = [\n\"{deep}\"]\n"));
        assert!(f.err().starts_with(&format!("{}:2: protected_paths: pattern", f.project.display())), "{}", f.err());
        // The user's own file is not bounded, and the bound itself is fine in a project file.
        write(&f.project, &format!("protected_paths = [{}]\n", many[..MAX_PROJECT_PATTERNS].join(", ")));
        assert_eq!(f.load().policy.protected_paths.iter().filter(|p| p.starts_with("gen/")).count(), MAX_PROJECT_PATTERNS);
        fs::remove_file(&f.project).unwrap();
        write(&f.user, &format!("protected_paths = [{}]\n", many.join(", ")));
        assert!(f.load().policy.protected_paths.len() > MAX_PROJECT_PATTERNS);
    }

    #[test]
    fn malformed_files_are_one_line_errors_with_file_and_line() {
        let f = fixture();
        let u = f.user.display().to_string();
        let cases: &[(&str, String)] = &[
            ("mode = \"workspace-write\"\nmodes = 1\n", format!("{u}:2: modes: unknown key (known keys: mode, network,")),
            ("[env]\nkeeps = []\n", format!("{u}:2: env.keeps: unknown key (known keys: keep, secret_patterns)")),
            ("[linux]\nlandlock = true\n", format!("{u}:2: linux.landlock: unknown key")),
            ("[macos]\nx = 1\n", format!("{u}:1: macos: unknown key")),
            ("mode = 1\n", format!("{u}:1: mode: expected a string (\"read-only\", \"workspace-write\", \"full-access\"), found an integer")),
            ("network = false\n", format!("{u}:1: network: expected a string (\"off\", \"on\"), found a boolean")),
            ("keep_processes = \"yes\"\n", format!("{u}:1: keep_processes: expected a boolean (true or false), found a string")),
            ("env = 3\n", format!("{u}:1: env: expected a table, found an integer")),
            ("deny_read = \"~/.x\"\n", format!("{u}:1: deny_read: expected an array of strings, found a string")),
            ("mode = \"readonly\"\n", format!("{u}:1: mode: expected one of \"read-only\", \"workspace-write\", \"full-access\", found \"readonly\"")),
            ("network = \"maybe\"\n", format!("{u}:1: network: expected one of \"off\", \"on\", found \"maybe\"")),
            ("[windows]\nmode = \"admin\"\n", format!("{u}:2: windows.mode: expected one of \"unelevated\", \"elevated\"")),
            ("\nmode = \"read-only\"\nmode = \"full-access\"\n", format!("{u}:3: mode: duplicate key")),
            ("[env]\nkeep = []\nkeep = []\n", format!("{u}:3: env.keep: duplicate key")),
            ("mode = \"read-only\n", format!("{u}:1: invalid TOML: ")),
            ("\n\nmode = = 1\n", format!("{u}:3: invalid TOML: ")),
            ("protected_paths = [\"../x\"]\n", format!("{u}:1: protected_paths: pattern \"../x\" may not contain a `..` component")),
            ("protected_paths = [\"/etc\"]\n", format!("{u}:1: protected_paths: pattern \"/etc\" must be relative")),
            ("deny_read = [\"\"]\n", format!("{u}:1: deny_read: empty path")),
            ("deny_read = [\"rel\"]\n", format!("{u}:1: deny_read: \"rel\" must be absolute or start with ~/")),
            ("[env]\nkeep = [\"A=B\"]\n", format!("{u}:2: env.keep: \"A=B\" is not an environment variable name")),
            ("[env]\nsecret_patterns = [\"\"]\n", format!("{u}:2: env.secret_patterns: \"\" is not a variable name pattern")),
        ];
        for (text, want) in cases {
            write(&f.user, text);
            assert_prefix(&f.err(), want);
        }
        fs::remove_file(&f.user).unwrap();
        assert_prefix(
            &f.err_with(Overrides { keep_env: vec!["".into()], ..Default::default() }),
            "command line: --keep-env: \"\" is not an environment variable name",
        );
    }

    #[test]
    fn malformed_managed_file() {
        let f = fixture();
        let m = f.managed.display().to_string();
        for (text, want) in [
            ("allowed_modes = []\n", format!("{m}:1: allowed_modes: must allow at least one mode")),
            ("allowed_modes = [\"sudo\"]\n", format!("{m}:1: allowed_modes: expected one of")),
            ("mode = \"read-only\"\n", format!("{m}:1: mode: unknown key (known keys: allowed_modes,")),
            ("[env]\nkeep = []\n", format!("{m}:2: env.keep: unknown key")),
            ("deny_read = [\"relative\"]\n", format!("{m}:1: deny_read: \"relative\" must be absolute")),
        ] {
            write(&f.managed, text);
            assert_prefix(&f.err(), &want);
        }
    }

    #[test]
    fn unreadable_files_are_errors_missing_ones_are_not() {
        let f = fixture();
        fs::create_dir_all(&f.user).unwrap(); // a directory where the file should be
        assert_prefix(&f.err(), &format!("{}: cannot read: ", f.user.display()));
        assert_prefix(&f.err(), &format!("{}: cannot read: it is a directory, not a regular file", f.user.display()));
        fs::remove_dir(&f.user).unwrap();
        let r = load(&LoadRequest { user_config: Some(f.root.join("none.toml")), ..f.req(Overrides::default()) }).unwrap();
        assert_eq!(r.policy.mode, Mode::WorkspaceWrite);
        // Too large to be a configuration: an error, not an unbounded read.
        write(&f.project, &format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES as usize)));
        assert_prefix(&f.err(), &format!("{}: cannot read: larger than", f.project.display()));
        fs::remove_file(&f.project).unwrap();
        #[cfg(unix)]
        {
            // A repository's project file that is a FIFO (the open would wait for a writer
            // forever) or a link to /dev/zero (read until memory runs out) is refused at once.
            std::os::unix::fs::symlink("/dev/zero", &f.project).unwrap();
            assert_prefix(&f.err(), &format!("{}: cannot read: it is a special file", f.project.display()));
            fs::remove_file(&f.project).unwrap();
            let st = std::process::Command::new("mkfifo").arg(&f.project).status().unwrap();
            assert!(st.success());
            let (tx, rx) = std::sync::mpsc::channel();
            let req = f.req(Overrides::default());
            std::thread::spawn(move || tx.send(load(&req).map(|_| ()).unwrap_err().to_string()));
            let e = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("loading a FIFO project file hangs");
            assert_prefix(&e, &format!("{}: cannot read: it is a special file", f.project.display()));
        }
    }

    #[test]
    #[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
    fn workspace_must_exist_and_not_be_home_or_root() {
        let f = fixture();
        let missing = f.root.join("nope");
        let e = load(&LoadRequest { workspace: missing.clone(), ..f.req(Overrides::default()) }).unwrap_err().to_string();
        assert_prefix(&e, &format!("workspace {}: ", missing.display()));
        let e = load(&LoadRequest { workspace: f.home.clone(), ..f.req(Overrides::default()) }).unwrap_err().to_string();
        assert_prefix(&e, &format!("workspace {}: is the home directory", f.home.display()));
        let ro = Overrides { mode: Some(Mode::ReadOnly), ..Default::default() };
        assert!(load(&LoadRequest { workspace: f.home.clone(), ..f.req(ro) }).is_ok());
        let e = load(&LoadRequest { workspace: "/".into(), ..f.req(Overrides::default()) }).unwrap_err().to_string();
        assert_eq!(e, "workspace /: refusing to make / writable (pass --workspace with a project directory)");
        // The kernel's filesystems: the sandbox has its own /proc and /dev.
        for k in ["/proc", "/sys", "/dev"] {
            let e = load(&LoadRequest { workspace: k.into(), ..f.req(Overrides::default()) }).unwrap_err().to_string();
            assert_prefix(&e, &format!("workspace {k}: refusing to make it writable: it is in /proc, /sys or /dev"));
            let ro = Overrides { mode: Some(Mode::ReadOnly), ..Default::default() };
            assert!(load(&LoadRequest { workspace: k.into(), ..f.req(ro) }).is_ok(), "{k} read-only");
        }
    }

    #[test]
    fn workspace_and_deny_read_are_canonical() {
        let f = fixture();
        let dotted = f.ws.join("../proj/.");
        let r = load(&LoadRequest { workspace: dotted, ..f.req(Overrides::default()) }).unwrap();
        assert_eq!(r.policy.workspace, f.ws);
        #[cfg(unix)]
        {
            // A home reached through a link: deny-read entries name the real location.
            let link = f.root.join("homelink");
            std::os::unix::fs::symlink(&f.home, &link).unwrap();
            fs::create_dir_all(f.home.join(".ssh")).unwrap();
            let r = load(&LoadRequest { home: Some(link), ..f.req(Overrides::default()) }).unwrap();
            assert_eq!(r.policy.deny_read[0], f.home.join(".ssh"));
            assert_eq!(r.policy.deny_read[1], f.home.join(".gnupg"));
        }
    }

    #[test]
    #[cfg_attr(windows, ignore = "asserts on Unix path syntax")]
    fn deny_read_may_not_hide_the_workspace_or_a_writable_root() {
        let f = fixture();
        let u = f.user.display().to_string();
        // Inside the workspace is fine: the mask goes on top.
        write(&f.user, "deny_read = [\"~/proj/secrets\"]\n");
        assert!(f.load().policy.deny_read.contains(&f.ws.join("secrets")));
        write(&f.user, "\ndeny_read = [\"/\"]\n");
        assert_prefix(&f.err(), &format!("{u}:2: deny_read: / would hide everything"));
        write(&f.user, "deny_read = [\"~/proj\"]\n");
        assert_prefix(&f.err(), &format!("{u}:1: deny_read: {} is the workspace {}", f.ws.display(), f.ws.display()));
        write(&f.user, "deny_read = [\"~\"]\n");
        assert_prefix(&f.err(), &format!("{u}:1: deny_read: {} contains the workspace", f.home.display()));
        let cache = f.dir("cache");
        write(&f.user, &format!("writable_roots = [\"{}\"]\ndeny_read = [\"{}\"]\n", cache.display(), f.root.display()));
        assert_prefix(&f.err(), &format!("{u}:2: deny_read: {} contains the workspace", f.root.display()));
        let other = f.dir("other");
        write(&f.user, &format!("writable_roots = [\"{}\"]\ndeny_read = [\"{}\"]\n", cache.display(), cache.display()));
        assert_prefix(&f.err(), &format!("{u}:2: deny_read: {} hides the writable root {}", cache.display(), cache.display()));
        write(&f.user, &format!("deny_read = [\"{}\"]\n", other.display()));
        assert!(f.load().policy.deny_read.contains(&other));
        // The project file may add deny_read entries, but not ones that hide its own workspace.
        fs::remove_file(&f.user).unwrap();
        write(&f.project, "deny_read = [\".\"]\n");
        assert_prefix(&f.err(), &format!("{}:1: deny_read: {} is the workspace", f.project.display(), f.ws.display()));
    }

    #[test]
    fn inline_and_dotted_tables_work() {
        let f = fixture();
        write(&f.user, "env.keep = [\"A\"]\nlinux = { allow_landlock_only = true }\n");
        let r = f.load();
        assert_eq!(r.policy.env.keep, vec!["A".to_string()]);
        assert!(r.linux.allow_landlock_only);
        assert_eq!(r.source("env.keep[0]"), Some(&user(&f, 1)));
        assert_eq!(r.source("linux.allow_landlock_only"), Some(&user(&f, 2)));
    }

    #[test]
    fn render_and_json_show_values_and_sources() {
        let f = fixture();
        write(&f.user, "network = \"on\"\n");
        let r = f.load();
        let text = r.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("workspace "), "{text}");
        let net = lines.iter().find(|l| l.starts_with("network ")).unwrap();
        assert!(net.ends_with(&format!("user ({}:1)", f.user.display())), "{net}");
        let mode = lines.iter().find(|l| l.starts_with("mode ")).unwrap();
        assert!(mode.ends_with("  default"), "{mode}");
        // Values start in the same column.
        let col = |l: &str, v: &str| l.find(v).unwrap();
        assert_eq!(col(net, "on"), col(mode, "workspace-write"));
        assert!(lines.iter().any(|l| l.starts_with("writable_roots") && l.contains("(none)")));
        assert!(lines.iter().any(|l| l.trim_start().starts_with(&f.home.join(".gnupg").display().to_string())));

        let j = r.to_json();
        assert_eq!(j["network"]["value"], "on");
        assert_eq!(j["network"]["source"]["layer"], "user");
        assert_eq!(j["network"]["source"]["line"], 1);
        assert_eq!(j["network"]["source"]["path"], f.user.display().to_string());
        assert_eq!(j["mode"]["source"]["layer"], "default");
        assert_eq!(j["deny_read"][0]["value"], f.home.join(".ssh").display().to_string());
        assert_eq!(j["workspace"], f.ws.display().to_string());
        assert_eq!(j["keep_processes"]["value"], false);
    }

    #[test]
    fn from_env_follows_xdg() {
        use std::ffi::OsString;
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
        };
        let r = LoadRequest::from_vars("/w", Overrides::default(), vars(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/cfg")]));
        #[cfg(not(windows))]
        {
            assert_eq!(r.home, Some(PathBuf::from("/home/u")));
            assert_eq!(r.user_config, Some(PathBuf::from("/cfg/palisade/config.toml")));
            assert_eq!(r.managed_config, Some(PathBuf::from("/etc/palisade/managed.toml")));
            let r = LoadRequest::from_vars("/w", Overrides::default(), vars(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "rel")]));
            assert_eq!(r.user_config, Some(PathBuf::from("/home/u/.config/palisade/config.toml")));
            let r = LoadRequest::from_vars("/w", Overrides::default(), vars(&[("HOME", "")]));
            assert_eq!((r.home, r.user_config), (None, None));
        }
        let _ = r;
    }

    #[test]
    fn layer_display() {
        assert_eq!(Layer::Default.to_string(), "default");
        assert_eq!(Layer::CommandLine.to_string(), "command line");
        assert_eq!(Layer::User("/u.toml".into()).to_string(), "user (/u.toml)");
        assert_eq!(Source { layer: Layer::Managed("/m.toml".into()), line: Some(4) }.to_string(), "managed (/m.toml:4)");
    }
}
