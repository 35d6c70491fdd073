//! Parsing one configuration file: walking the `toml_edit` document key by key into
//! [`FileSettings`] (user and project files) or [`ManagedSettings`] (the managed file), every
//! value with the line of its key. Unknown keys, wrong types and values a project file may not
//! set are refused here, each as one line naming file, line and key.
//!
//! A hand walker rather than serde: see docs/ARCHITECTURE.md (the messages name the dotted key
//! and list the known keys; a project file's forbidden keys are refused at their own line).

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, TableLike};

use super::paths::{check_writable_root, expand_path, real_path};
use super::{ConfigError, WindowsMode};
use crate::net_rules::{Entry as NetEntry, Kind};
use crate::protected;
use crate::{Mode, Network};

/// A value and the line of the key that set it.
#[derive(Clone, Debug)]
pub(super) struct At<T> {
    pub(super) v: T,
    pub(super) line: usize,
}

/// A list value: the line of its key, and each entry with its own line.
#[derive(Clone, Debug)]
pub(super) struct List<T> {
    pub(super) line: usize,
    pub(super) items: Vec<At<T>>,
}

#[derive(Default)]
pub(super) struct FileSettings {
    pub(super) mode: Option<At<Mode>>,
    pub(super) network: Option<At<Network>>,
    /// `[network] allow` and `deny` (the allowlist's entries).
    pub(super) net_allow: Option<List<NetEntry>>,
    pub(super) net_deny: Option<List<NetEntry>>,
    pub(super) writable_roots: Option<List<PathBuf>>,
    pub(super) deny_read: Option<List<PathBuf>>,
    pub(super) allow_read: Option<List<PathBuf>>,
    pub(super) protected_paths: Option<List<String>>,
    pub(super) keep_processes: Option<At<bool>>,
    pub(super) env_keep: Option<List<String>>,
    pub(super) secret_patterns: Option<List<String>>,
    pub(super) allow_landlock_only: Option<At<bool>>,
    pub(super) allow_unprotected_paths: Option<At<bool>>,
    pub(super) allow_landlock_only_as_root: Option<At<bool>>,
    pub(super) windows_mode: Option<At<WindowsMode>>,
    pub(super) private_desktop: Option<At<bool>>,
    /// `[audit]` (user file only).
    pub(super) audit: AuditFileSettings,
}

/// `[audit]`: in the user file `enabled`, `path` and `max_bytes`; in the managed file
/// `required`, `path` and `max_bytes` (`enabled` is then `None` and `required` set, and the
/// other way round in the user file).
#[derive(Default)]
pub(super) struct AuditFileSettings {
    pub(super) enabled: Option<At<bool>>,
    pub(super) required: Option<At<bool>>,
    pub(super) path: Option<At<PathBuf>>,
    pub(super) max_bytes: Option<At<u64>>,
}

#[derive(Default)]
pub(super) struct ManagedSettings {
    pub(super) allowed_modes: Option<List<Mode>>,
    pub(super) allow_network: Option<At<bool>>,
    /// `[network] allow`: the most any layer's allowlist may admit; `deny`: always refused.
    pub(super) net_allow: Option<List<NetEntry>>,
    pub(super) net_deny: Option<List<NetEntry>>,
    pub(super) deny_read: Option<List<PathBuf>>,
    pub(super) protected_paths: Option<List<String>>,
    pub(super) secret_patterns: Option<List<String>>,
    pub(super) allow_keep_env: Option<At<bool>>,
    pub(super) allow_writable_roots: Option<At<bool>>,
    pub(super) allow_landlock_only: Option<At<bool>>,
    pub(super) allow_unprotected_paths: Option<At<bool>>,
    pub(super) allow_landlock_only_as_root: Option<At<bool>>,
    pub(super) audit: AuditFileSettings,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FileKind {
    User,
    Project,
    Managed,
}

const USER_KEYS: &str = "mode, network, writable_roots, deny_read, allow_read, protected_paths, keep_processes, [env], [linux], [windows], [audit]";
const AUDIT_KEYS: &str = "enabled, path, max_bytes";
const MANAGED_AUDIT_KEYS: &str = "required, path, max_bytes";
/// The audit log's size cap may not be so small that one line does not fit.
pub(super) const MIN_AUDIT_MAX_BYTES: u64 = 64 * 1024;
const ENV_KEYS: &str = "keep, secret_patterns";
const LINUX_KEYS: &str = "allow_landlock_only, allow_unprotected_paths, allow_landlock_only_as_root";
const WINDOWS_KEYS: &str = "mode, private_desktop";
const NETWORK_KEYS: &str = "mode, allow, deny";
const MANAGED_NETWORK_KEYS: &str = "allow, deny";
/// A project file's allowlist is bounded like its protected paths (each entry is matched per
/// connection).
pub(super) const MAX_PROJECT_NET_ENTRIES: usize = 128;
const MANAGED_KEYS: &str = "allowed_modes, allow_network, deny_read, protected_paths, allow_keep_env, allow_writable_roots, allow_landlock_only, allow_unprotected_paths, allow_landlock_only_as_root, [network], [env], [audit]";
pub(super) const TIGHTEN_ONLY: &str = "project config may only tighten the policy";
/// How many `protected_paths` a project file may add, and how deep each may be.
pub(super) const MAX_PROJECT_PATTERNS: usize = 128;
pub(super) const MAX_PROJECT_PATTERN_DEPTH: usize = 12;

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

pub(super) fn quoted_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

impl<'a> Parser<'a> {
    fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|s| line_at(self.src, s.start))
    }

    fn err(&self, line: usize, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Setting { path: self.path.to_path_buf(), line, key: key.to_string(), message: message.into() }
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

    fn choice<T>(
        &self,
        e: &Entry<'_>,
        names: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<At<T>, ConfigError> {
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
                self.err(
                    line,
                    &e.key,
                    format!("expected an array of strings, found {} in it", with_article(value.type_name())),
                )
            })?;
            let v = check(s).map_err(|why| self.err(line, &e.key, why))?;
            items.push(At { v, line });
        }
        Ok(List { line: e.line, items })
    }

    /// A path from a file: `~` expanded; relative paths only in a project file.
    fn path(&self, raw: &str) -> Result<PathBuf, String> {
        expand_path(
            raw,
            self.home,
            match self.kind {
                FileKind::Project => Some(self.workspace),
                FileKind::User | FileKind::Managed => None,
            },
        )
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
                format!(
                    "{} patterns; a project file may add at most {MAX_PROJECT_PATTERNS} (put more in your user config)",
                    list.items.len()
                ),
            ));
        }
        Ok(list)
    }

    /// The user or project file's `network`: a mode (`network = "off"`), or a `[network]` table
    /// with `mode`, `allow` and `deny`.
    fn network(&self, e: &Entry<'_>, s: &mut FileSettings) -> Result<(), ConfigError> {
        if e.item.as_table_like().is_none() {
            s.network = Some(self.choice(e, &["off", "allow", "on"], Network::parse)?);
            return Ok(());
        }
        for e in self.entries(self.table(e)?, "network", e.line) {
            match e.key.as_str() {
                "network.mode" => s.network = Some(self.choice(&e, &["off", "allow", "on"], Network::parse)?),
                "network.allow" => s.net_allow = Some(self.net_entries(&e, Kind::Allow)?),
                "network.deny" => s.net_deny = Some(self.net_entries(&e, Kind::Deny)?),
                _ => return Err(self.unknown(&e, NETWORK_KEYS)),
            }
        }
        Ok(())
    }

    /// Allowlist entries (`example.com`, `*.example.com`, `example.com:8443`, addresses, ranges).
    fn net_entries(&self, e: &Entry<'_>, kind: Kind) -> Result<List<NetEntry>, ConfigError> {
        let list = self.list(e, |t| NetEntry::parse(t, kind))?;
        if self.kind == FileKind::Project && list.items.len() > MAX_PROJECT_NET_ENTRIES {
            return Err(self.err(
                e.line,
                &e.key,
                format!("{} entries; a project file may list at most {MAX_PROJECT_NET_ENTRIES}", list.items.len()),
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

    /// `[audit]`. A project file may set none of it: the repository must not choose where
    /// Palisade writes (and rotates) files, nor switch off or shrink the record of what ran.
    fn audit(&self, e: &Entry<'_>) -> Result<AuditFileSettings, ConfigError> {
        let mut a = AuditFileSettings::default();
        let managed = self.kind == FileKind::Managed;
        for e in self.entries(self.table(e)?, "audit", e.line) {
            if self.kind == FileKind::Project {
                return Err(self.err(
                    e.line,
                    &e.key,
                    "the audit log is set in the user config or the managed file, never in a project file",
                ));
            }
            match e.key.as_str() {
                "audit.enabled" if !managed => a.enabled = Some(self.boolean(&e)?),
                "audit.required" if managed => a.required = Some(self.boolean(&e)?),
                "audit.path" => {
                    let raw = e.item.as_str().ok_or_else(|| self.wrong_type(&e, "a string (a path)"))?;
                    let p = self.path(raw).map_err(|why| self.err(e.line, &e.key, why))?;
                    a.path = Some(At { v: p, line: e.line });
                }
                "audit.max_bytes" => {
                    let n = e.item.as_integer().ok_or_else(|| self.wrong_type(&e, "an integer (bytes)"))?;
                    if n < MIN_AUDIT_MAX_BYTES as i64 {
                        return Err(self.err(e.line, &e.key, format!("must be at least {MIN_AUDIT_MAX_BYTES}")));
                    }
                    a.max_bytes = Some(At { v: n as u64, line: e.line });
                }
                _ => return Err(self.unknown(&e, if managed { MANAGED_AUDIT_KEYS } else { AUDIT_KEYS })),
            }
        }
        Ok(a)
    }

    fn settings(&self, root: &dyn TableLike) -> Result<FileSettings, ConfigError> {
        let mut s = FileSettings::default();
        for e in self.entries(root, "", 1) {
            match e.key.as_str() {
                "mode" => s.mode = Some(self.choice(&e, &Mode::ALL.map(Mode::as_str), Mode::parse)?),
                "network" => self.network(&e, &mut s)?,
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
                                self.not_in_project(
                                    &e,
                                    "env.keep can only be set in the user config or with --keep-env",
                                )?;
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
                            "linux.allow_landlock_only_as_root" => {
                                s.allow_landlock_only_as_root = Some(self.boolean(&e)?)
                            }
                            _ => return Err(self.unknown(&e, LINUX_KEYS)),
                        }
                    }
                }
                "windows" => {
                    for e in self.entries(self.table(&e)?, "windows", e.line) {
                        match e.key.as_str() {
                            "windows.mode" => {
                                self.not_in_project(&e, "windows.mode can only be set in the user config")?;
                                s.windows_mode =
                                    Some(self.choice(&e, &["unelevated", "elevated"], WindowsMode::parse)?);
                            }
                            "windows.private_desktop" => {
                                let b = self.boolean(&e)?;
                                // Accepted settings are enforced: no backend runs commands on a
                                // desktop of their own yet, so `true` is refused, never ignored.
                                if b.v {
                                    return Err(self.err(e.line, &e.key, "true is not supported yet (no backend can run a command on a separate desktop); remove it or set it to false"));
                                }
                                s.private_desktop = Some(b);
                            }
                            _ => return Err(self.unknown(&e, WINDOWS_KEYS)),
                        }
                    }
                }
                "audit" => s.audit = self.audit(&e)?,
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
                "network" => {
                    for e in self.entries(self.table(&e)?, "network", e.line) {
                        match e.key.as_str() {
                            "network.allow" => m.net_allow = Some(self.net_entries(&e, Kind::Allow)?),
                            "network.deny" => m.net_deny = Some(self.net_entries(&e, Kind::Deny)?),
                            _ => return Err(self.unknown(&e, MANAGED_NETWORK_KEYS)),
                        }
                    }
                }
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
                "audit" => m.audit = self.audit(&e)?,
                _ => return Err(self.unknown(&e, MANAGED_KEYS)),
            }
        }
        Ok(m)
    }
}

/// A user or project file's settings (`kind` says which).
pub(super) fn settings_file(
    path: &Path,
    src: &str,
    kind: FileKind,
    home: Option<&Path>,
    workspace: &Path,
) -> Result<FileSettings, ConfigError> {
    let doc = parse_doc(path, src)?;
    Parser { path, src, kind, home, workspace }.settings(doc.as_table())
}

/// The managed file's settings.
pub(super) fn managed_file(
    path: &Path,
    src: &str,
    home: Option<&Path>,
    workspace: &Path,
) -> Result<ManagedSettings, ConfigError> {
    let doc = parse_doc(path, src)?;
    Parser { path, src, kind: FileKind::Managed, home, workspace }.managed(doc.as_table())
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

pub(super) fn check_env_name(name: &str) -> Result<(), String> {
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
