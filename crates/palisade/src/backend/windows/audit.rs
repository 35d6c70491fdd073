//! The world-writable audit, carried out: gathers the folders a command will see (`PATH`, the
//! system drive's root, `TEMP`/`TMP`, the profile, in read-only mode the workspace's children),
//! reads each one's owner and DACL within a time budget, and lets the plan crate classify them.

use std::path::Path;
use std::time::Instant;

use palisade_windows_plan::audit::{
    audit_candidates, run_audit, AuditBudget, AuditEnv, AuditReport, BroadPrincipal, CandidateReason, SkippedEntry,
    WriteAccess,
};
use palisade_windows_plan::path::WinPath;
use windows_sys::Win32::UI::Shell::FOLDERID_Profile;

use palisade_win32::acl;
use palisade_win32::system::known_folder_path;

use super::state::api_path;

/// Where to look, from this process's environment.
pub fn environment(workspace_children_of: Option<&Path>) -> AuditEnv {
    let var = |n: &str| std::env::var_os(n).map(|v| v.to_string_lossy().into_owned()).filter(|v| !v.is_empty());
    let path_entries = var("PATH").map(|p| p.split(';').map(str::to_string).collect()).unwrap_or_default();
    let system_drive_root = var("SystemDrive").map(|d| format!("{}\\", d.trim_end_matches('\\')));
    let temp_dirs = ["TEMP", "TMP"].iter().filter_map(|n| var(n)).collect();
    let profile =
        known_folder_path(&FOLDERID_Profile).map(|p| p.to_string_lossy().into_owned()).or_else(|| var("USERPROFILE"));
    let workspace_children = workspace_children_of
        .and_then(|w| std::fs::read_dir(w).ok())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    AuditEnv { path_entries, system_drive_root, temp_dirs, profile, workspace_children, extra: Vec::new() }
}

/// Runs the audit over `env`'s folders outside `writable_roots`.
pub fn run(env: &AuditEnv, writable_roots: &[WinPath], budget: AuditBudget) -> (AuditReport, Vec<SkippedEntry>) {
    let (candidates, skipped) = audit_candidates(env, writable_roots);
    let start = Instant::now();
    let report =
        run_audit(&candidates, budget, &mut || start.elapsed(), &mut |p: &WinPath| match acl::security(&api_path(p)) {
            Ok(Some(sec)) => Ok(sec),
            Ok(None) => Err("does not exist".into()),
            Err(e) => Err(e.to_string()),
        });
    (report, skipped)
}

fn principal(p: BroadPrincipal) -> &'static str {
    match p {
        BroadPrincipal::Everyone => "Everyone",
        BroadPrincipal::Users => "Users",
        BroadPrincipal::AuthenticatedUsers => "Authenticated Users",
        BroadPrincipal::Interactive => "INTERACTIVE",
    }
}

fn rights(a: &WriteAccess) -> String {
    let mut out = Vec::new();
    for (on, what) in [
        (a.create_files, "create files"),
        (a.create_folders, "create folders"),
        (a.delete_children, "delete others' files"),
        (a.change_permissions, "change permissions"),
        (a.take_ownership, "take ownership"),
        (a.modify_inherited_files, "modify files"),
    ] {
        if on {
            out.push(what);
        }
    }
    out.join(", ")
}

fn reason(r: CandidateReason) -> &'static str {
    match r {
        CandidateReason::PathEntry => "on PATH",
        CandidateReason::DriveRoot => "the system drive's root",
        CandidateReason::Temp => "TEMP/TMP",
        CandidateReason::Profile => "the profile",
        CandidateReason::WorkspaceChild => "in the workspace",
        CandidateReason::Extra => "named",
    }
}

/// One line per finding and a summary, for `palisade check`.
pub fn describe(report: &AuditReport, skipped: &[SkippedEntry]) -> Vec<String> {
    let mut lines = Vec::new();
    for f in &report.findings {
        let who: Vec<String> =
            f.writable_by.iter().map(|(p, a)| format!("{} ({})", principal(*p), rights(a))).collect();
        let everyone = f.writable_by.iter().any(|(p, _)| *p == BroadPrincipal::Everyone);
        let sandbox = match (f.reason, everyone) {
            (CandidateReason::WorkspaceChild, _) => {
                "; inside the workspace (writable anyway in workspace-write mode; denied to the sandbox in read-only mode when Everyone may write it)"
            }
            (_, true) => "; a sandboxed command could write here, so palisade denies it to the sandbox",
            (_, false) => "; the unelevated sandbox cannot write here (its token does not keep these groups), but other programs and accounts can",
        };
        lines.push(format!(
            "world-writable folder {} [{}]: writable by {}{sandbox}",
            f.path,
            reason(f.reason),
            who.join(", ")
        ));
    }
    let mut summary = format!(
        "world-writable audit: {} folders checked, {} writable by a broad group",
        report.checked,
        report.findings.len()
    );
    if report.timed_out {
        summary.push_str(&format!("; cut short by its time limit, {} folders not checked", report.not_checked.len()));
    } else if !report.not_checked.is_empty() {
        summary.push_str(&format!("; {} folders over the limit not checked", report.not_checked.len()));
    }
    let missing = report.errors.iter().filter(|(_, e)| e == "does not exist").count();
    if missing > 0 {
        summary.push_str(&format!("; {missing} listed folders do not exist"));
    }
    let unreadable: Vec<String> =
        report.errors.iter().filter(|(_, e)| e != "does not exist").map(|(p, e)| format!("{p} ({e})")).collect();
    if !unreadable.is_empty() {
        summary.push_str(&format!("; unreadable: {}", unreadable.join(", ")));
    }
    if !skipped.is_empty() {
        let s: Vec<String> = skipped.iter().map(|s| format!("{:?} ({})", s.entry, s.why)).collect();
        summary.push_str(&format!("; skipped: {}", s.join(", ")));
    }
    lines.push(summary);
    lines
}
