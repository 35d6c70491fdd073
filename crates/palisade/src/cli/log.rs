//! `palisade log`: the audit log's last entries, one readable line each (or as stored, with
//! `--json`). A line that is not a valid entry (a damaged or cut file) is shown as it is,
//! marked, never a failure.

use super::args::PolicyArgs;
use super::load::request;
use super::{fail, Failure};
use palisade::audit_log::AuditLog;
use palisade::policy::config;
use palisade::Mode;
use serde_json::Value;

pub(super) fn show(lines: usize, json: bool, path_only: bool) -> Result<i32, Failure> {
    // The log's place comes from the user and managed files; read-only so that loading does
    // not refuse a workspace that could not be written (the home directory, say).
    let args = PolicyArgs { mode: Some(Mode::ReadOnly), ..PolicyArgs::default() };
    let resolved = config::load(&request(&args)?.0)?;
    let a = &resolved.audit;
    let path = a.path.clone().ok_or_else(|| fail("audit log: no place for it (no home or state directory)"))?;
    if path_only {
        outln!("{}", path.display());
        if !a.enabled {
            let by = resolved.source("audit.enabled").map(|s| s.to_string()).unwrap_or_default();
            errln!("palisade: audit log: off (set by {by})");
        }
        return Ok(0);
    }
    let log = AuditLog::new(&path, a.max_bytes);
    let (entries, skipped) = log.last_lines(lines).map_err(|e| fail(format!("audit log: {e}")))?;
    for s in skipped {
        errln!("palisade: audit log: skipped {s}");
    }
    if entries.is_empty() {
        errln!("palisade: audit log: no entries in {}", path.display());
    }
    for line in entries {
        if json {
            outln!("{line}");
        } else {
            outln!("{}", readable(&line));
        }
    }
    Ok(0)
}

/// `2026-12-07 19:27:00Z  exit 0     1.2s  run  /work/proj  cargo test  [net: 2 allowed, 1 refused]`.
fn readable(line: &str) -> String {
    let v: Value = match serde_json::from_str(line) {
        Ok(v @ Value::Object(_)) => v,
        _ => return format!("(not a valid entry) {}", cut(line, 200)),
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    let time = text("time");
    let time = match time.split_once('T') {
        Some((day, rest)) => format!("{day} {}Z", rest.split('.').next().unwrap_or(rest).trim_end_matches('Z')),
        None => time,
    };
    let error = v.get("error").and_then(Value::as_str);
    let outcome = match (error, v.get("signal").and_then(Value::as_i64)) {
        (Some(_), _) => {
            format!("refused {}", v.get("status").and_then(Value::as_i64).map_or("?".into(), |c| c.to_string()))
        }
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => {
            format!("exit {}", v.get("exit_code").and_then(Value::as_i64).map_or("?".into(), |c| c.to_string()))
        }
    };
    let ms = v.get("duration_ms").and_then(Value::as_u64).unwrap_or(0);
    let duration = if ms < 1000 { format!("{ms}ms") } else { format!("{:.1}s", ms as f64 / 1000.0) };
    let argv: Vec<String> = v
        .get("argv")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| quote(x.as_str().unwrap_or("?"))).collect())
        .unwrap_or_default();
    let mut command = cut(&argv.join(" "), 300);
    if v.get("argv_truncated").and_then(Value::as_bool) == Some(true) {
        command.push_str(" [cut]");
    }
    let mut out = format!(
        "{time}  {outcome:<10} {duration:>7}  {:<3}  {}  {command}",
        cut(&text("via"), 10),
        cut(&text("cwd"), 200)
    );
    if let Some(net) = v.get("network").and_then(Value::as_array).filter(|n| !n.is_empty()) {
        let allowed = net.iter().filter(|r| r.get("allowed") == Some(&Value::Bool(true))).count();
        let dropped = v.get("network_dropped").and_then(Value::as_u64).unwrap_or(0);
        let more = if dropped > 0 { format!(", {dropped} more") } else { String::new() };
        out.push_str(&format!("  [net: {allowed} allowed, {} refused{more}]", net.len() - allowed));
    }
    if let Some(e) = error {
        out.push_str(&format!("  ({})", cut(e, 200)));
    }
    out
}

/// At most `max` characters, with `...` when cut; control characters shown escaped so that a
/// line stays one line on a terminal.
fn cut(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out
}

/// An argument as a shell would need it: bare when it is plain, else in single quotes.
fn quote(a: &str) -> String {
    let plain = !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_one_line_each() {
        let line =
            serde_json::json!({"time": "2026-12-07T19:27:00.123Z", "exit_code": 0, "signal": null, "error": null,
            "status": 0, "duration_ms": 1234, "via": "run", "cwd": "/w", "argv": ["sh", "-c", "echo 'hi' there"],
            "network": [{"allowed": true}, {"allowed": false}], "network_dropped": 0})
            .to_string();
        assert_eq!(
            readable(&line),
            "2026-12-07 19:27:00Z  exit 0        1.2s  run  /w  sh -c 'echo '\\''hi'\\'' there'  [net: 1 allowed, 1 refused]"
        );
        let refused = serde_json::json!({"time": "2026-12-07T19:27:00.123Z", "error": "x: not found", "status": 127,
            "duration_ms": 0, "via": "sh", "cwd": null, "argv": ["x"]})
        .to_string();
        assert!(readable(&refused).contains("refused 127"), "{}", readable(&refused));
        assert!(readable(&refused).ends_with("  x  (x: not found)"), "{}", readable(&refused));
    }

    #[test]
    fn damaged_lines_are_shown_marked() {
        assert_eq!(readable("{\"time\": \"2026"), "(not a valid entry) {\"time\": \"2026");
        assert_eq!(readable("[1,2]"), "(not a valid entry) [1,2]");
        assert_eq!(readable("a\u{1b}[2Jb"), "(not a valid entry) a\\u{1b}[2Jb");
        // Fields of the wrong type do not panic.
        let odd = readable(r#"{"time": 5, "argv": "x", "duration_ms": "y", "network": 3}"#);
        assert!(odd.contains("exit ?"), "{odd}");
    }
}
