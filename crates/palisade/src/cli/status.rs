//! The machine-readable status of a run (`--status-fd N`, `--status-file PATH`): one JSON record,
//! written once at the end to a channel the command never sees, so that it cannot mix with the
//! command's own output (`--json-status`, the older form, appends it to stderr). Its shape is
//! `docs/status.schema.json`.

use super::{fail, Failure};
use palisade::{Child, ExitStatus, Sandbox};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Bumped when a field changes meaning or goes away (new fields keep the version).
const STATUS_VERSION: u32 = 1;

/// Where the record goes, as the caller asked.
#[derive(Default)]
pub(super) struct StatusTargets {
    pub(super) fd: Option<i32>,
    pub(super) file: Option<PathBuf>,
}

/// The opened targets: the descriptor is taken (and made close-on-exec) before anything else
/// happens, so that a bad one is refused before the command runs and the command never
/// inherits it; the file is written at the end.
pub(super) struct StatusSink {
    fd: Option<std::fs::File>,
    file: Option<StatusFile>,
}

impl StatusSink {
    pub(super) fn open(targets: &StatusTargets) -> Result<StatusSink, Failure> {
        let fd = match targets.fd {
            None => None,
            Some(n) => Some(take_fd(n)?),
        };
        let file = match &targets.file {
            None => None,
            // Refused before the command runs, rather than its status lost after.
            Some(p) => Some(StatusFile::open(p)?),
        };
        Ok(StatusSink { fd, file })
    }

    pub(super) fn wanted(&self) -> bool {
        self.fd.is_some() || self.file.is_some()
    }

    /// Writes the record to every target, once. A failure is said on stderr (one line each)
    /// and does not change the exit status: the command has run.
    pub(super) fn write(self, record: &Value) {
        let mut line = record.to_string();
        line.push('\n');
        if let Some(mut f) = self.fd {
            if let Err(e) = f.write_all(line.as_bytes()) {
                errln!("palisade: warning: cannot write the status record to --status-fd: {e}");
            }
        }
        if let Some(f) = self.file {
            if let Err(e) = f.write(line.as_bytes()) {
                errln!("palisade: warning: cannot write the status file {}: {e}", f.shown.display());
            }
        }
    }
}

#[cfg(unix)]
fn take_fd(n: i32) -> Result<std::fs::File, Failure> {
    palisade::caller::take_passed_fd(n).map_err(|e| fail(format!("--status-fd {n}: {e}")))
}

/// On Windows N is the value of an inheritable handle the caller passed.
#[cfg(windows)]
fn take_fd(n: i32) -> Result<std::fs::File, Failure> {
    let value = usize::try_from(n).map_err(|_| fail(format!("--status-fd {n}: not a handle value")))?;
    palisade::caller::take_passed_handle(value).map_err(|e| fail(format!("--status-fd {n}: {e}")))
}

#[cfg(not(any(unix, windows)))]
fn take_fd(n: i32) -> Result<std::fs::File, Failure> {
    Err(fail(format!("--status-fd {n}: not available on this system yet; use --status-file")))
}

/// `--status-file PATH`, written whole or not at all: into a new file beside it, renamed over
/// it. The command may be able to write the file's folder (a status file in the workspace), and
/// palisade writes after the command has run: so the folder is opened before the command starts
/// (swapping it for a link later changes nothing), and the new file is created exclusively,
/// without following a link, under a name the command cannot predict. A link the command planted
/// at that name, or anywhere, is never written through.
struct StatusFile {
    #[cfg(unix)]
    dir: std::os::fd::OwnedFd,
    #[cfg(not(unix))]
    dir: PathBuf,
    name: std::ffi::OsString,
    shown: PathBuf,
}

impl StatusFile {
    fn open(path: &std::path::Path) -> Result<StatusFile, Failure> {
        let parent = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !parent.is_dir() {
            return Err(fail(format!("--status-file {}: its folder does not exist", path.display())));
        }
        if path.is_dir() {
            return Err(fail(format!("--status-file {}: is a folder", path.display())));
        }
        let Some(name) = path.file_name() else {
            return Err(fail(format!("--status-file {}: names no file", path.display())));
        };
        #[cfg(unix)]
        let dir = {
            use rustix::fs::{open, Mode, OFlags};
            open(parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| fail(format!("--status-file {}: its folder: {e}", path.display())))?
        };
        #[cfg(not(unix))]
        let dir = parent.to_path_buf();
        Ok(StatusFile { dir, name: name.to_os_string(), shown: path.to_path_buf() })
    }

    /// A name for the new file: a link planted in advance would have to guess it.
    fn temporary_name(&self, attempt: u32) -> std::ffi::OsString {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut tmp = std::ffi::OsString::from(".");
        tmp.push(&self.name);
        tmp.push(format!(".{}.{nanos:x}.{attempt}.tmp", std::process::id()));
        tmp
    }

    #[cfg(unix)]
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        use rustix::fs::{openat, renameat, unlinkat, AtFlags, Mode, OFlags};
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        for attempt in 0..16 {
            let tmp = self.temporary_name(attempt);
            let fd = match openat(&self.dir, &tmp, flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => fd,
                // Something is there (perhaps a planted link): another name.
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            };
            let written = std::fs::File::from(fd).write_all(bytes);
            let renamed = written.and_then(|()| Ok(renameat(&self.dir, &tmp, &self.dir, &self.name)?));
            if renamed.is_err() {
                let _ = unlinkat(&self.dir, &tmp, AtFlags::empty());
            }
            return renamed;
        }
        Err(std::io::Error::other("no unused temporary name beside it after 16 tries"))
    }

    /// Without descriptors for folders: the path as given; the new file is still created
    /// exclusively (`CREATE_NEW` does not follow a link that is already there).
    #[cfg(not(unix))]
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        for attempt in 0..16 {
            let tmp = self.dir.join(self.temporary_name(attempt));
            let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            let renamed = f.write_all(bytes).and_then(|()| {
                drop(f);
                std::fs::rename(&tmp, self.dir.join(&self.name))
            });
            if renamed.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            return renamed;
        }
        Err(std::io::Error::other("no unused temporary name beside it after 16 tries"))
    }
}

/// The record of a command that ran.
pub(super) fn ran_record(
    sandbox: &Sandbox,
    resolved: &palisade::policy::config::Resolved,
    child: &Child,
    status: ExitStatus,
    duration: Duration,
) -> Value {
    json!({
        "version": STATUS_VERSION,
        "exit_code": status.code(),
        "signal": status.signal(),
        "status": status.shell_code(),
        "error": null,
        "duration_ms": duration.as_millis() as u64,
        "layers": enforcement_layers(sandbox),
        "policy_digest": policy_digest(resolved),
        "policy_sources": resolved.to_json(),
        "network": network_records(child.network_records()),
        "notices": child.notices(),
        "denials": denial_records(child.denials()),
        "denials_note": denials_note(sandbox),
    })
}

/// What the sandbox refused the command (--report-denials), for the status record and the
/// audit line alike: one entry per kind, target and rule, with its count.
pub(super) fn denials(child: &Child) -> Vec<Value> {
    child.denials().iter().filter_map(|d| serde_json::to_value(d).ok()).collect()
}

/// What the `denials` list can hold for this run.
fn denials_note(sandbox: &Sandbox) -> &'static str {
    if !sandbox.reports_denials() && !cfg!(target_os = "linux") {
        "this system has no kernel-side source of denial reports in Palisade yet: this list is empty"
    } else if !sandbox.reports_denials() {
        "denial reports were not asked for (--report-denials): this list is empty"
    } else {
        "writes and connections the policy refuses, as a seccomp observer saw the calls (the kernel decided them); calls the seccomp filter itself refuses, reads, and calls on open descriptors are not listed"
    }
}

/// The refused calls (--report-denials), each with its count.
fn denial_records(denials: &[palisade::DenialRecord]) -> Value {
    serde_json::to_value(denials).unwrap_or(Value::Array(Vec::new()))
}

/// The record of a run Palisade refused or failed before or while starting the command.
pub(super) fn failed_record(f: &Failure) -> Value {
    json!({
        "version": STATUS_VERSION, "exit_code": null, "signal": null, "status": f.code, "error": f.message,
        "duration_ms": 0, "layers": [], "policy_digest": null, "policy_sources": null, "network": [], "notices": [],
        "denials": [], "denials_note": "the command did not run: nothing was observed",
    })
}

/// `--json-status`'s line (`denials` added with --report-denials; the other fields unchanged
/// since it was introduced).
pub(super) fn json_status_line(sandbox: &Sandbox, child: &Child, status: ExitStatus) -> Value {
    let mut line = json!({"exit_code": status.code(), "signal": status.signal(), "status": status.shell_code(),
        "layers": enforcement_layers(sandbox), "notices": child.notices(), "network": network_records(child.network_records())});
    // Only when asked for: without it the line stays byte for byte what it was (its readers
    // find it as the last line starting `{"exit_code"`).
    if sandbox.reports_denials() {
        line["denials"] = denial_records(child.denials());
    }
    line
}

pub(super) fn enforcement_layers(sandbox: &Sandbox) -> Vec<Value> {
    sandbox
        .enforcement()
        .layers
        .iter()
        .map(|l| json!({"name": l.name, "active": l.active, "detail": l.detail}))
        .collect()
}

/// network = allow: the command's connections through the proxy (empty otherwise).
pub(super) fn network_records(records: &[palisade::NetworkRecord]) -> Vec<Value> {
    records
        .iter()
        .map(|r| {
            json!({"protocol": r.protocol, "host": r.host, "port": r.port, "allowed": r.allowed, "rule": r.rule,
                "reason": r.reason, "bytes_up": r.bytes_up, "bytes_down": r.bytes_down, "duration_ms": r.duration.as_millis() as u64})
        })
        .collect()
}

/// `sha256:<hex>` of the effective policy's values as canonical JSON (`palisade policy --json`
/// without the sources and without the `audit.*` settings, which say where commands are
/// recorded, not what they may do; object keys sorted, no spaces), so that two runs under the
/// same policy have the same digest whichever layers set it.
pub(super) fn policy_digest(resolved: &palisade::policy::config::Resolved) -> String {
    let mut values = values_only(resolved.to_json());
    if let Some(map) = values.as_object_mut() {
        map.retain(|k, _| !k.starts_with("audit."));
    }
    let canonical = canonical_json(&values);
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `{"key": {"value": v, "source": s}}` → `{"key": v}`; lists likewise.
fn values_only(v: Value) -> Value {
    match v {
        Value::Object(map) if map.contains_key("value") && map.contains_key("source") => {
            map.get("value").cloned().unwrap_or(Value::Null)
        }
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, values_only(v))).collect()),
        Value::Array(items) => Value::Array(items.into_iter().map(values_only).collect()),
        other => other,
    }
}

/// Sorted keys at every level, compact (serde_json's maps are ordered by key unless its
/// `preserve_order` feature is on; sorting here does not depend on that).
fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical_json(&map[k.as_str()])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [true, null], "c": "x"}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":"x","d":[true,null]},"b":1}"#);
    }

    #[test]
    fn values_only_drops_the_sources() {
        let v = json!({"workspace": "/w", "mode": {"value": "read-only", "source": {"layer": "flag"}},
            "writable_roots": [{"value": "/a", "source": null}]});
        assert_eq!(values_only(v), json!({"workspace": "/w", "mode": "read-only", "writable_roots": ["/a"]}));
    }
}
