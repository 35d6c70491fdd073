//! `palisade run`: the command in the sandbox, in the foreground, with the signals palisade
//! receives passed on, its notices shown and its status as palisade's own.

use super::args::{PolicyArgs, ReportArgs};
use super::audit::{self, Audit};
use super::load::{load, nested_refusal, sandbox_options};
use super::status::{self, StatusSink};
use super::{fail, Failure};
use palisade::policy::workspace;
use palisade::{Mode, Sandbox};
use std::ffi::OsString;
use std::time::{Instant, SystemTime};

/// `palisade run` (and `palisade sh`, with the shell as the command; `via` says which, for the
/// audit log). The status targets are opened first, so that a bad `--status-fd` is refused
/// before anything runs; a refusal after that still gets a record there.
pub(super) fn run(
    args: &PolicyArgs,
    flags: &ReportArgs,
    command: Vec<OsString>,
    via: &'static str,
) -> Result<i32, Failure> {
    let sink = StatusSink::open(&flags.status_targets())?;
    match audited(args, flags, sink.wanted(), command, via) {
        Ok((code, record)) => {
            if let Some(r) = record {
                sink.write(&r);
            }
            Ok(code)
        }
        Err(f) => {
            if sink.wanted() {
                sink.write(&status::failed_record(&f));
            }
            Err(f)
        }
    }
}

/// The run, with its audit line: once the configuration has loaded (and a required log was
/// found writable), every outcome, a refusal included, gets one line.
fn audited(
    args: &PolicyArgs,
    flags: &ReportArgs,
    record_wanted: bool,
    command: Vec<OsString>,
    via: &'static str,
) -> Result<(i32, Option<serde_json::Value>), Failure> {
    if let Some(e) = nested_refusal() {
        return Err(e.into());
    }
    let resolved = load(args)?;
    if let Some(file) = &flags.status_file {
        refuse_status_file_in_writable_root(file, &resolved.policy)?;
    }
    let log = Audit::open(&resolved)?;
    let entry = audit::Entry {
        via,
        argv: &command,
        cwd: std::env::current_dir().ok().map(|d| std::fs::canonicalize(&d).unwrap_or(d)),
        resolved: &resolved,
        policy: &resolved.policy,
        started: SystemTime::now(),
    };
    let mut line = None;
    let result = run_in_sandbox(&resolved, flags, record_wanted, &command, &mut |ran| line = Some(entry.ran(ran)));
    match &result {
        Ok(_) => log.write(&line.unwrap_or_else(|| entry.refused(&fail("the command's outcome was not recorded")))),
        Err(f) => log.write(&entry.refused(f)),
    }
    result
}

/// A status record in a folder the command may write could be replaced by it: the command can
/// write a forged record there and make palisade's unwritable (a read-only folder), or move the
/// folder away so that palisade's record lands elsewhere. Such a record proves nothing, so the
/// run is refused (125) before anything starts.
fn refuse_status_file_in_writable_root(file: &std::path::Path, policy: &palisade::Policy) -> Result<(), Failure> {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let folder = canonical(&parent);
    for root in policy.write_roots() {
        if folder.starts_with(canonical(&root)) {
            return Err(fail(format!(
                "--status-file {} is inside the writable root {}, where the command could replace the record: put it outside the writable roots or use --status-fd",
                file.display(),
                root.display()
            )));
        }
    }
    Ok(())
}

fn run_in_sandbox(
    resolved: &palisade::policy::config::Resolved,
    flags: &ReportArgs,
    record_wanted: bool,
    command: &[OsString],
    audit_line: &mut dyn FnMut(audit::Ran<'_>),
) -> Result<(i32, Option<serde_json::Value>), Failure> {
    warn_unwritable_worktree_repository(&resolved.policy);
    let mut options = sandbox_options(resolved);
    options.report_denials = flags.report_denials;
    let sandbox = Sandbox::with_options(resolved.policy.clone(), options)?;
    let (program, rest) = command.split_first().ok_or_else(|| fail("no command given"))?;
    // The command starts where the user is (the workspace may be a parent: see `request`).
    let cwd = std::env::current_dir()
        .ok()
        .map(|d| std::fs::canonicalize(&d).unwrap_or(d))
        .filter(|d| d.starts_with(&sandbox.policy().workspace));
    let mut cmd = sandbox.command(program);
    // Run as sh runs a job: an interactive shell or editor inside gets the terminal.
    cmd.args(rest).kill_on_parent_death(true).job_control(true);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let forwarder = palisade::signals::Forwarder::install();
    let started = Instant::now();
    // A signal that arrived before the command started (while waiting for another run's lock,
    // say) ends palisade with the status the signal would give.
    let mut child = cmd.spawn().map_err(|e| match forwarder.pending() {
        Some(sig) => Failure { code: 128 + sig, message: e.to_string() },
        None => e.into(),
    })?;
    forwarder.forward_to(&child);
    let status = forwarder.wait(&mut child).map_err(|e| fail(format!("waiting for the command: {e}")))?;
    let duration = started.elapsed();
    for notice in child.notices() {
        errln!("palisade: warning: {notice}");
    }
    report_refused_connections(child.network_records());
    if !flags.quiet {
        if let Some(line) = denial_summary(child.denials()) {
            errln!("{line}");
        }
    }
    if flags.json_status {
        errln!("{}", status::json_status_line(&sandbox, &child, status));
    }
    audit_line(audit::Ran {
        layers: status::enforcement_layers(&sandbox),
        status,
        duration,
        network: child.network_records(),
        notices: child.notices(),
        denials: status::denials(&child),
    });
    let record = record_wanted.then(|| status::ran_record(&sandbox, resolved, &child, status, duration));
    Ok((status.shell_code(), record))
}

/// network = allow: one line per distinct refused destination, so that a user or agent sees
/// why a download failed (a tool usually shows only "403" or "tunnel failed").
fn report_refused_connections(records: &[palisade::NetworkRecord]) {
    const MAX_LINES: usize = 20;
    let mut seen: Vec<(&str, u16, Option<&str>)> = Vec::new();
    for r in records.iter().filter(|r| !r.allowed) {
        let key = (r.host.as_str(), r.port, r.reason.as_deref());
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    for (host, port, reason) in seen.iter().take(MAX_LINES) {
        let target = if host.is_empty() { "a connection".to_string() } else { format!("{}:{port}", printable(host)) };
        let reason = reason.map(|r| r.strip_prefix("palisade: ").unwrap_or(r)).unwrap_or("refused");
        errln!("palisade: network: refused {target}: {}", printable(reason));
    }
    if seen.len() > MAX_LINES {
        errln!(
            "palisade: network: and {} more refused destinations (--json-status lists every connection)",
            seen.len() - MAX_LINES
        );
    }
}

/// Text the command chose (a SOCKS host name is any bytes it sent) made safe for one line on
/// the user's terminal: control characters (newlines, escape sequences) and the bidirectional
/// overrides that reorder what is shown are written as escapes, so a command cannot forge
/// palisade's own lines or hide a refused destination.
pub(super) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let reorders = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || reorders {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The one line that says what the kernel refused (--report-denials): the most common kind of
/// refusal with its first few targets, and how many others there were; None without denials.
fn denial_summary(denials: &[palisade::DenialRecord]) -> Option<String> {
    const SHOWN: usize = 3;
    let first = denials.first()?;
    // The group of the first refusal: same kind and rule.
    let group: Vec<&palisade::DenialRecord> =
        denials.iter().filter(|d| d.kind == first.kind && d.rule == first.rule).collect();
    let count: u64 = group.iter().map(|d| d.count).sum();
    let mut targets: Vec<&str> = Vec::new();
    for d in &group {
        if !targets.contains(&d.target.as_str()) {
            targets.push(&d.target);
        }
    }
    let what = match (first.kind, count) {
        (palisade::DenialKind::Write, 1) => "write",
        (palisade::DenialKind::Write, _) => "writes",
        (palisade::DenialKind::Connect, 1) => "connection",
        (palisade::DenialKind::Connect, _) => "connections",
    };
    let mut line = format!(
        "palisade: {count} {what} refused {}: {}",
        first.rule.describe(),
        targets[..targets.len().min(SHOWN)].iter().map(|t| printable(t)).collect::<Vec<_>>().join(", ")
    );
    if targets.len() > SHOWN {
        line.push_str(&format!(", and {} more", targets.len() - SHOWN));
    }
    let others: u64 = denials.iter().filter(|d| !(d.kind == first.kind && d.rule == first.rule)).map(|d| d.count).sum();
    if others > 0 {
        line.push_str(&format!("; {others} other refused calls (--status-file lists them)"));
    }
    Some(line)
}

/// A linked git worktree (common with agents that work on several branches at once) keeps its
/// index lock, objects and refs in the main repository's git directory: unless that is
/// writable too, every `git add` or `git commit` inside fails with "Read-only file system".
/// Say so before the command runs, with the flag that fixes it.
fn warn_unwritable_worktree_repository(policy: &palisade::Policy) {
    if policy.mode != Mode::WorkspaceWrite {
        return;
    }
    let Some(common) = workspace::linked_worktree_common_dir(&policy.workspace) else { return };
    if policy.write_roots().iter().any(|r| common.starts_with(r)) {
        return;
    }
    errln!(
        "palisade: warning: {} is a linked git worktree, and its repository's git directory {} is not writable here: git add and git commit will fail; add --writable {} to let them",
        policy.workspace.display(),
        common.display(),
        common.display()
    );
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn printable_escapes_what_could_forge_or_reorder_a_line() {
        assert_eq!(printable("example.org"), "example.org");
        assert_eq!(printable("bücher.example"), "bücher.example");
        assert_eq!(printable("a\npalisade: ok"), "a\\npalisade: ok");
        assert_eq!(printable("\u{1b}[2Kx"), "\\u{1b}[2Kx");
        assert_eq!(printable("gro.\u{202e}evil"), "gro.\\u{202e}evil");
        assert_eq!(printable("tab\there"), "tab\\there");
    }
}
