//! Showing the effective configuration (`palisade policy`): every value with the layer and
//! line that set it, as aligned text or as JSON.

use std::path::PathBuf;

use super::{Resolved, Source};
use crate::net_rules::{Allowlist, Entry};

impl Source {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "layer": self.layer.name(),
            "path": self.layer.path().map(|p| p.display().to_string()),
            "line": self.line,
        })
    }
}

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
        // The allowlist's entries apply (and are shown) only in `allow` mode.
        let net = |side: fn(&Allowlist) -> &Vec<Entry>| {
            p.network.allowlist().map(|a| side(a).iter().map(|e| e.to_string()).collect()).unwrap_or_default()
        };
        vec![
            scalar("mode", p.mode.as_str().into(), p.mode.to_string()),
            scalar("network", p.network.as_str().into(), p.network.to_string()),
            Shown::List { key: "network.allow", values: net(|a| &a.allow) },
            Shown::List { key: "network.deny", values: net(|a| &a.deny) },
            scalar("keep_processes", p.keep_processes.into(), p.keep_processes.to_string()),
            Shown::List { key: "writable_roots", values: paths(&p.writable_roots) },
            Shown::List { key: "deny_read", values: paths(&p.deny_read) },
            Shown::List { key: "allow_read", values: paths(&self.allow_read) },
            Shown::List { key: "protected_paths", values: p.protected_paths.clone() },
            Shown::List { key: "env.keep", values: p.env.keep.clone() },
            Shown::List { key: "env.secret_patterns", values: p.env.secret_patterns.clone() },
            scalar(
                "linux.allow_landlock_only",
                self.linux.allow_landlock_only.into(),
                self.linux.allow_landlock_only.to_string(),
            ),
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
            scalar(
                "windows.private_desktop",
                self.windows.private_desktop.into(),
                self.windows.private_desktop.to_string(),
            ),
            scalar("audit.enabled", self.audit.enabled.into(), self.audit.enabled.to_string()),
            scalar("audit.required", self.audit.required.into(), self.audit.required.to_string()),
            {
                let path = self.audit.path.as_ref().map(|p| p.display().to_string());
                let text = path.clone().unwrap_or_else(|| "(none: no state directory)".into());
                scalar("audit.path", path.into(), text)
            },
            scalar("audit.max_bytes", self.audit.max_bytes.into(), self.audit.max_bytes.to_string()),
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
