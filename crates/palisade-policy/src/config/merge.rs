//! Merging the layers: defaults, then the user file, the project file (tighten only), the
//! command line (which may not undo the project's tightenings), and last the managed file's
//! bounds (which refuse what they forbid and clamp only built-in defaults).

use std::path::{Path, PathBuf};

mod audit;
mod network;

use super::parse::{check_env_name, quoted_list, FileSettings, List, ManagedSettings, TIGHTEN_ONLY};
use super::paths::{check_writable_root, expand_path};
use super::{ConfigError, Layer, LinuxSettings, Overrides, Resolved, Source, WindowsMode, WindowsSettings};
use crate::env::glob_match;
use crate::{EnvPolicy, Mode, Policy};
use audit::AuditLayers;
use network::NetworkLayers;

#[derive(Clone, Debug)]
struct Val<T> {
    v: T,
    src: Source,
}

fn val<T>(v: T, src: Source) -> Val<T> {
    Val { v, src }
}

pub(super) struct State {
    mode: Val<Mode>,
    network: NetworkLayers,
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
    audit: AuditLayers,
    // The project file's tightenings, which the command line may not undo.
    project_mode: Option<Val<Mode>>,
    project_keep_processes: Option<Source>,
    project_protected: Option<Source>,
}

/// The command-line flag for a key.
fn flag_for(key: &str) -> &'static str {
    match key {
        "mode" => "--mode",
        "network" => "--network",
        "network.allow" => "--allow-net",
        "writable_roots" => "--writable",
        "env.keep" => "--keep-env",
        "keep_processes" => "--keep-processes",
        "protected_paths" => "--no-protected-paths",
        "audit.enabled" => "--no-audit",
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

/// Why the command line may not undo a project file's tightening.
fn project_says(src: &Source, what: &str) -> String {
    format!(
        "project config {} sets {what}, which the command line may not loosen",
        src.location().unwrap_or_else(|| src.to_string())
    )
}

/// `forbidden by the administrator (<managed file>:<line>: <what>)`.
fn forbidden_by_admin(layer: &Layer, line: usize, what: String) -> String {
    format!("forbidden by the administrator ({}:{line}: {what})", layer.path().unwrap_or(Path::new("?")).display())
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
    /// The effective mode so far.
    pub(super) fn mode(&self) -> Mode {
        self.mode.v
    }

    pub(super) fn new(defaults: &Policy) -> State {
        let d = Source::default_layer;
        State {
            mode: val(defaults.mode, d()),
            network: NetworkLayers::new(&defaults.network),
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
            audit: AuditLayers::new(),
            project_mode: None,
            project_keep_processes: None,
            project_protected: None,
        }
    }

    pub(super) fn apply_user(&mut self, layer: &Layer, s: &FileSettings) -> Result<(), ConfigError> {
        let src = |line| at_source(layer, line);
        if let Some(m) = &s.mode {
            self.mode = val(m.v, src(m.line));
        }
        self.network.user(&s.network, &s.net_allow, &s.net_deny, layer);
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
        self.audit.user(&s.audit, layer);
        Ok(())
    }

    /// The project file: tightenings only (the keys it may never set were refused while
    /// parsing).
    pub(super) fn apply_project(&mut self, layer: &Layer, s: &FileSettings) -> Result<(), ConfigError> {
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
        self.network.project(&s.network, &s.net_allow, &s.net_deny, layer)?;
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
            (
                &s.allow_landlock_only_as_root,
                "linux.allow_landlock_only_as_root",
                &mut self.allow_landlock_only_as_root,
            ),
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
                return Err(loosen(
                    b.line,
                    "windows.private_desktop",
                    "windows.private_desktop = false would loosen it".into(),
                ));
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

    pub(super) fn apply_overrides(
        &mut self,
        o: &Overrides,
        home: Option<&Path>,
        workspace: &Path,
    ) -> Result<(), ConfigError> {
        let cl = |flag: &str, message: String| ConfigError::CommandLine { flag: flag.to_string(), message };
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
        let allow_net = o
            .allow_net
            .iter()
            .map(|t| crate::net_rules::Entry::parse(t, crate::net_rules::Kind::Allow))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| cl("--allow-net", message))?;
        self.network.command_line(&o.network, &allow_net)?;
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
                Some(t) if t == "~" || t.starts_with("~/") => {
                    expand_path(t, home, None).map_err(|why| cl("--writable", why))?
                }
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
        self.audit.command_line(o.no_audit);
        Ok(())
    }

    pub(super) fn apply_managed(&mut self, layer: &Layer, m: &ManagedSettings) -> Result<(), ConfigError> {
        let src = |line| at_source(layer, line);
        let admin = |line: usize, what: String| forbidden_by_admin(layer, line, what);
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
                        format!(
                            "\"{}\" is {}",
                            self.mode.v,
                            admin(allowed.line, format!("allowed_modes = [{}]", quoted_list(&names)))
                        ),
                    ));
                }
            }
        }
        self.network.managed(m, layer)?;
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
                    return Err(blame(
                        &current.src,
                        key,
                        format!("true is {}", admin(b.line, format!("{short} = false"))),
                    ));
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
        self.audit.managed(&m.audit, layer)?;
        Ok(())
    }

    /// A deny-read entry may lie inside the workspace or a writable root (it is masked on top),
    /// but not contain one: the command could not read (or start in) its own workspace, and a
    /// mask over `/` would silently hide nothing.
    pub(super) fn check_deny_read_overlaps(&self, workspace: &Path) -> Result<(), ConfigError> {
        for d in &self.deny_read {
            if d.v.parent().is_none() {
                return Err(blame(
                    &d.src,
                    "deny_read",
                    format!("{} would hide everything; name the folders to hide", d.v.display()),
                ));
            }
            if workspace.starts_with(&d.v) {
                let what = if workspace == d.v { "is" } else { "contains" };
                return Err(blame(
                    &d.src,
                    "deny_read",
                    format!(
                        "{} {what} the workspace {}: the command could not read it",
                        d.v.display(),
                        workspace.display()
                    ),
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

    pub(super) fn finish(self, workspace: PathBuf, default_audit_log: Option<PathBuf>) -> Resolved {
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
        let mut sources = vec![("mode".to_string(), self.mode.src)];
        let network = self.network.finish(&mut sources);
        sources.push(("keep_processes".to_string(), self.keep_processes.src));
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
        let audit = self.audit.finish(default_audit_log, &mut sources);
        Resolved {
            policy: Policy {
                mode: self.mode.v,
                workspace,
                writable_roots,
                deny_read,
                protected_paths,
                network,
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
            audit,
        }
    }
}
