//! The audit log's lines (`[audit]` in the configuration; the file handling is
//! `palisade::audit_log`): one JSON line per command that `palisade run`, `palisade sh` /
//! `palisade-sh` and the MCP server's `run` tool ran or refused after the configuration loaded.
//! Its shape is `docs/audit.schema.json`. A line holds the command line as given (argv), never
//! environment values or the command's input and output.
//!
//! A log the administrator requires (`[audit] required = true` in the managed file) is checked
//! before the command starts: if it cannot be written the command is refused (exit 125). An
//! optional log that cannot be written costs one `palisade: audit log: ...` line on stderr.

use super::{fail, Failure};
use palisade::audit_log::AuditLog;
use palisade::policy::config::Resolved;
use palisade::{ExitStatus, NetworkRecord, Policy};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bumped when a field changes meaning or goes away (new fields keep the version).
const AUDIT_VERSION: u32 = 1;
/// The command line is kept to this many bytes (of its arguments' text) in a line.
const MAX_ARGV_BYTES: usize = 16 * 1024;
/// Network records kept in a line (the first ones; the rest are counted).
const MAX_NETWORK_RECORDS: usize = 100;

/// Where this run's line goes, if anywhere.
pub(super) struct Audit {
    log: Option<AuditLog>,
}

impl Audit {
    /// From the effective configuration. A required log that cannot be written refuses the
    /// command here, before it starts.
    pub(super) fn open(resolved: &Resolved) -> Result<Audit, Failure> {
        let a = &resolved.audit;
        if !a.enabled {
            return Ok(Audit { log: None });
        }
        let Some(path) = &a.path else {
            if a.required {
                return Err(fail(format!(
                    "audit log: no place to write it (no home or state directory); {}",
                    required_by(resolved)
                )));
            }
            errln!(
                "palisade: audit log: not written: no home or state directory (set [audit] path in the user config)"
            );
            return Ok(Audit { log: None });
        };
        let log = AuditLog::new(path, a.max_bytes);
        if a.required {
            log.check_writable().map_err(|e| fail(format!("audit log: {e}; {}", required_by(resolved))))?;
        }
        Ok(Audit { log: Some(log) })
    }

    /// Appends the line; a failure is one line on stderr (the command has already run).
    pub(super) fn write(&self, line: &Value) {
        if let Some(log) = &self.log {
            if let Err(e) = log.append(&line.to_string()) {
                // The error names the file.
                errln!("palisade: audit log: {e}");
            }
        }
    }
}

fn required_by(resolved: &Resolved) -> String {
    let at = match resolved.source("audit.required") {
        Some(s) => match (s.layer.path(), s.line) {
            (Some(p), Some(l)) => format!("{}:{l}", p.display()),
            _ => s.to_string(),
        },
        None => String::new(),
    };
    format!("the administrator requires it ({at}: audit.required = true), so the command was not run")
}

/// What every line says about the command, whatever became of it.
pub(super) struct Entry<'a> {
    /// `run`, `sh` or `mcp`.
    pub(super) via: &'static str,
    pub(super) argv: &'a [OsString],
    /// The directory the command was asked to start in.
    pub(super) cwd: Option<PathBuf>,
    pub(super) resolved: &'a Resolved,
    /// The policy the command ran under (an MCP call may have narrowed the loaded one).
    pub(super) policy: &'a Policy,
    pub(super) started: SystemTime,
}

/// How the command ended.
pub(super) struct Ran<'a> {
    /// The enforcement layers (`status::enforcement_layers`).
    pub(super) layers: Vec<Value>,
    pub(super) status: ExitStatus,
    pub(super) duration: Duration,
    pub(super) network: &'a [NetworkRecord],
    pub(super) notices: &'a [String],
    pub(super) denials: Vec<Value>,
}

impl Entry<'_> {
    /// The line of a command that ran.
    pub(super) fn ran(&self, r: Ran<'_>) -> Value {
        let mut v = self.common();
        let (network, dropped) = network_fields(r.network);
        extend(
            &mut v,
            json!({
                "exit_code": r.status.code(),
                "signal": r.status.signal(),
                "status": r.status.shell_code(),
                "error": null,
                "duration_ms": r.duration.as_millis() as u64,
                "layers": r.layers,
                "denials": r.denials,
                "network": network,
                "network_dropped": dropped,
                "notices": r.notices,
            }),
        );
        v
    }

    /// The line of a command Palisade refused or could not start.
    pub(super) fn refused(&self, f: &Failure) -> Value {
        let mut v = self.common();
        extend(
            &mut v,
            json!({
                "exit_code": null, "signal": null, "status": f.code, "error": f.message, "duration_ms": 0,
                "layers": [], "denials": [], "network": [], "network_dropped": 0, "notices": [],
            }),
        );
        v
    }

    fn common(&self) -> Value {
        let (user, uid) = palisade::caller::current_user();
        let (argv, argv_truncated) = bounded_argv(self.argv);
        json!({
            "version": AUDIT_VERSION,
            "time": rfc3339_utc(self.started),
            "user": user,
            "uid": uid,
            "pid": std::process::id(),
            "via": self.via,
            "argv": argv,
            "argv_truncated": argv_truncated,
            "cwd": self.cwd.as_ref().map(|d| d.display().to_string()),
            "workspace": self.policy.workspace.display().to_string(),
            "mode": self.policy.mode.as_str(),
            "network_mode": self.policy.network.as_str(),
            "policy_digest": super::status::policy_digest(self.resolved),
            "config_layers": config_layers(self.resolved),
        })
    }
}

/// The first [`MAX_NETWORK_RECORDS`] connections, as the status record shows them, and how
/// many more there were.
fn network_fields(records: &[NetworkRecord]) -> (Vec<Value>, usize) {
    let kept = &records[..records.len().min(MAX_NETWORK_RECORDS)];
    (super::status::network_records(kept), records.len() - kept.len())
}

fn extend(v: &mut Value, more: Value) {
    if let (Some(map), Value::Object(more)) = (v.as_object_mut(), more) {
        map.extend(more);
    }
}

/// The configuration layers that set at least one effective value, in order of precedence
/// (lowest first): `{"layer": "user", "path": "..."}`.
fn config_layers(resolved: &Resolved) -> Vec<Value> {
    use palisade::policy::config::Layer;
    let rank = |l: &Layer| match l {
        Layer::Default => 0,
        Layer::User(_) => 1,
        Layer::Project(_) => 2,
        Layer::CommandLine => 3,
        Layer::Managed(_) => 4,
    };
    let mut layers: Vec<&Layer> = Vec::new();
    for (_, s) in &resolved.sources {
        if !layers.contains(&&s.layer) {
            layers.push(&s.layer);
        }
    }
    layers.sort_by_key(|l| rank(l));
    layers.into_iter().map(|l| json!({"layer": l.name(), "path": l.path().map(|p| p.display().to_string())})).collect()
}

/// The arguments as text (not UTF-8 is replaced), kept to [`MAX_ARGV_BYTES`] in all: an
/// argument that does not fit is cut, the ones after it dropped.
fn bounded_argv(argv: &[OsString]) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut left = MAX_ARGV_BYTES;
    for a in argv {
        let text = a.to_string_lossy();
        if text.len() <= left {
            left -= text.len();
            out.push(text.into_owned());
            continue;
        }
        let mut cut = left;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(text[..cut].to_string());
        return (out, true);
    }
    (out, false)
}

/// `2026-12-07T19:27:00.123Z`.
fn rfc3339_utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm, in its published public-domain form).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_671_620_123);
        assert_eq!(rfc3339_utc(t), "2026-12-07T19:27:00.123Z");
        // A leap day.
        assert_eq!(rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn long_command_lines_are_cut() {
        let argv: Vec<OsString> = vec!["echo".into(), "é".repeat(MAX_ARGV_BYTES).into(), "after".into()];
        let (kept, cut) = bounded_argv(&argv);
        assert!(cut);
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().map(String::len).sum::<usize>() <= MAX_ARGV_BYTES);
        assert_eq!(bounded_argv(&["a".into(), "b".into()]), (vec!["a".to_string(), "b".to_string()], false));
    }

    #[test]
    fn a_line_has_the_network_records_and_no_environment() {
        let dir = tempfile::tempdir().unwrap();
        let ws = std::fs::canonicalize(dir.path()).unwrap();
        let req = palisade::policy::config::LoadRequest::new(
            &ws,
            palisade::policy::config::Overrides { allow_net: vec!["example.com".into()], ..Default::default() },
        );
        let resolved = palisade::policy::config::load(&req).unwrap();
        let argv: Vec<OsString> = vec!["curl".into(), "https://example.com/".into()];
        let entry = Entry {
            via: "run",
            argv: &argv,
            cwd: Some(ws.clone()),
            resolved: &resolved,
            policy: &resolved.policy,
            started: SystemTime::now(),
        };
        let record = |host: &str, allowed| NetworkRecord {
            protocol: "http-connect".into(),
            host: host.into(),
            port: 443,
            allowed,
            rule: None,
            reason: None,
            bytes_up: 1,
            bytes_down: 2,
            duration: Duration::from_millis(3),
        };
        let network: Vec<_> = (0..MAX_NETWORK_RECORDS + 5).map(|i| record(&format!("h{i}.test"), i == 0)).collect();
        let common = entry.common();
        assert_eq!(common["argv"], json!(["curl", "https://example.com/"]));
        assert_eq!(common["network_mode"], "allow");
        assert!(common["policy_digest"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(common["config_layers"][0]["layer"], "default");
        assert_eq!(common["config_layers"][1]["layer"], "command-line");
        let (list, dropped) = network_fields(&network);
        assert_eq!((list.len(), dropped), (MAX_NETWORK_RECORDS, 5));
        assert_eq!(list[0]["host"], "h0.test");
        assert_eq!(list[0]["allowed"], true);
        assert_eq!(list[1]["allowed"], false);
        assert_eq!(list[0]["bytes_down"], 2);
        // Nothing from the environment: no variable's value appears in the line.
        let line = entry.refused(&fail("refused"));
        assert!(!line.to_string().contains('\n'));
        for (k, v) in std::env::vars() {
            if v.len() >= 8 && !ws.display().to_string().contains(&v) && !k.starts_with("CARGO") {
                assert!(!line.to_string().contains(&v), "{k}'s value is in the line");
            }
        }
    }
}
