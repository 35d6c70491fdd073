//! The audit log's settings through the layers. The project file may set none of them (refused
//! while parsing). The user file sets `enabled`, `path` and `max_bytes`; the command line may
//! switch the log off for one command (`--no-audit`). The managed file bounds them: with
//! `required = true` the log is on whatever the user says (a user `enabled = false` or
//! `--no-audit` is refused, naming the managed line), and its `path` and `max_bytes`, when
//! given, are the only values allowed (a user file asking for another is refused, not
//! silently overridden).

use std::path::PathBuf;

use super::{at_source, blame, forbidden_by_admin, val, Val};
use crate::config::parse::AuditFileSettings;
use crate::config::{AuditSettings, ConfigError, Layer, Source, DEFAULT_AUDIT_MAX_BYTES};

pub(super) struct AuditLayers {
    enabled: Val<bool>,
    required: Val<bool>,
    /// `None` as a value: the default location was unknown (no state directory).
    path: Val<Option<PathBuf>>,
    max_bytes: Val<u64>,
}

impl AuditLayers {
    pub(super) fn new() -> AuditLayers {
        let d = Source::default_layer;
        AuditLayers {
            enabled: val(true, d()),
            required: val(false, d()),
            path: val(None, d()),
            max_bytes: val(DEFAULT_AUDIT_MAX_BYTES, d()),
        }
    }

    pub(super) fn user(&mut self, a: &AuditFileSettings, layer: &Layer) {
        if let Some(b) = &a.enabled {
            self.enabled = val(b.v, at_source(layer, b.line));
        }
        if let Some(p) = &a.path {
            self.path = val(Some(p.v.clone()), at_source(layer, p.line));
        }
        if let Some(n) = &a.max_bytes {
            self.max_bytes = val(n.v, at_source(layer, n.line));
        }
    }

    pub(super) fn command_line(&mut self, no_audit: bool) {
        if no_audit {
            self.enabled = val(false, Source::command_line());
        }
    }

    pub(super) fn managed(&mut self, a: &AuditFileSettings, layer: &Layer) -> Result<(), ConfigError> {
        let admin = |line: usize, what: String| forbidden_by_admin(layer, line, what);
        if let Some(r) = a.required.as_ref().filter(|r| r.v) {
            if !self.enabled.v && self.enabled.src.layer != Layer::Default {
                let why = format!("switching the log off is {}", admin(r.line, "audit.required = true".into()));
                return Err(blame(&self.enabled.src, "audit.enabled", why));
            }
            self.enabled = val(true, at_source(layer, r.line));
            self.required = val(true, at_source(layer, r.line));
        }
        if let Some(p) = &a.path {
            if self.path.src.layer != Layer::Default && self.path.v.as_ref() != Some(&p.v) {
                let why = format!("another place is {}", admin(p.line, format!("audit.path = {:?}", p.v.display())));
                return Err(blame(&self.path.src, "audit.path", why));
            }
            self.path = val(Some(p.v.clone()), at_source(layer, p.line));
        }
        if let Some(n) = &a.max_bytes {
            if self.max_bytes.src.layer != Layer::Default && self.max_bytes.v != n.v {
                let why = format!("another size is {}", admin(n.line, format!("audit.max_bytes = {}", n.v)));
                return Err(blame(&self.max_bytes.src, "audit.max_bytes", why));
            }
            self.max_bytes = val(n.v, at_source(layer, n.line));
        }
        Ok(())
    }

    /// The effective settings; `default_path` is used unless a file set the path.
    pub(super) fn finish(self, default_path: Option<PathBuf>, sources: &mut Vec<(String, Source)>) -> AuditSettings {
        sources.extend([
            ("audit.enabled".to_string(), self.enabled.src),
            ("audit.required".to_string(), self.required.src),
            ("audit.path".to_string(), self.path.src),
            ("audit.max_bytes".to_string(), self.max_bytes.src),
        ]);
        AuditSettings {
            enabled: self.enabled.v,
            required: self.required.v,
            path: self.path.v.or(default_path),
            max_bytes: self.max_bytes.v,
        }
    }
}
