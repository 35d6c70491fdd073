//! `palisade check`'s facts about this Windows host (`host_report`): what each mechanism of the
//! unelevated mode does here, found by trying it.

use palisade_win32::sid::Sid;
use palisade_win32::{acl, ffi, token};
use palisade_windows_plan::audit::AuditBudget;
use palisade_windows_plan::sid::{SidString, SyntheticKind};
use palisade_windows_plan::token::admin_group;

use super::{audit, job, state};
use crate::report::HostReport;

/// What this host offers, found by trying each mechanism.
pub fn host_report() -> HostReport {
    let mut r = HostReport::default();
    let wine = ffi::wine_version();
    r.facts.push(("os".into(), "windows".into()));
    r.facts.push(("wine".into(), wine.clone().unwrap_or_else(|| "no".into())));
    match token::open_own() {
        Ok(own) => {
            r.facts.push(("user SID".into(), own.user.to_string_form()));
            r.facts.push((
                "logon SID".into(),
                own.logon.as_ref().map(|s| s.to_string_form()).unwrap_or_else(|| "none".into()),
            ));
            r.facts.push(("elevated".into(), if own.elevated { "yes".into() } else { "no".into() }));
            r.facts.push((
                "integrity level".into(),
                match own.integrity_rid {
                    Some(0x1000) => "low".into(),
                    Some(0x2000) => "medium".into(),
                    Some(0x3000) => "high".into(),
                    Some(0x4000) => "system".into(),
                    Some(n) => format!("{n:#x}"),
                    None => "unknown".into(),
                },
            ));
            if own.restricted {
                r.notes.push("palisade itself runs with a restricted token".into());
            }
            // What the unelevated mode makes deny-only in the command's token.
            let admin: Vec<(Sid, &'static str)> = own
                .usable_groups()
                .filter_map(|g| {
                    let plan = SidString::canonicalize(&g.to_string_form()).ok()?;
                    Some((g.clone(), admin_group(&plan)?))
                })
                .collect();
            r.facts.push((
                "administrative groups".into(),
                if admin.is_empty() {
                    "none usable (nothing to make deny-only)".into()
                } else {
                    format!(
                        "{} (deny-only in sandboxed commands)",
                        admin.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
                    )
                },
            ));
            let admin_sids: Vec<Sid> = admin.into_iter().map(|(s, _)| s).collect();
            // A throw-away write SID: CreateRestrictedToken with WRITE_RESTRICTED.
            let probe = ffi::random16().map(|b| SidString::synthetic(SyntheticKind::WriteRoot, b));
            let result = probe.map_err(|e| e.to_string()).and_then(|s| {
                let sid = Sid::parse(s.as_str()).map_err(|e| e.to_string())?;
                let sids = [sid];
                let spec = token::TokenSpec {
                    write_restricted: true,
                    restricting: &sids,
                    deny_only: &admin_sids,
                    default_dacl: &[],
                };
                let tok = token::restricted(&own, &spec).map_err(|e| e.to_string())?;
                Ok(token::is_restricted(&tok))
            });
            match result {
                Ok(true) => r.push(
                    "restricted token",
                    true,
                    if admin_sids.is_empty() {
                        "CreateRestrictedToken(WRITE_RESTRICTED | DISABLE_MAX_PRIVILEGE) works".into()
                    } else {
                        "CreateRestrictedToken(WRITE_RESTRICTED | DISABLE_MAX_PRIVILEGE, administrative groups deny-only) works".into()
                    },
                ),
                Ok(false) => r.push(
                    "restricted token",
                    false,
                    "the token was made but is not restricted (Wine enforces no tokens)".into(),
                ),
                Err(e) => r.push("restricted token", false, e),
            }
        }
        Err(e) => r.push("restricted token", false, format!("cannot read this process's token: {e}")),
    }
    match job::Job::new(&job::JobSpec { kill_on_close: true, ui_limits: job::UI_LIMITS }) {
        Ok(_) => r.push("job object", true, "kill-on-close and UI limits can be set".into()),
        Err(e) => r.push("job object", false, e.to_string()),
    }
    if let Ok(nested) = job::current_process_in_job() {
        r.facts.push((
            "palisade runs in a job".into(),
            if nested { "yes (nested jobs need Windows 8+)".into() } else { "no".into() },
        ));
    }
    match ffi::random16() {
        Ok(_) => r.push("system RNG", true, "BCryptGenRandom (write SIDs)".into()),
        Err(e) => r.push("system RNG", false, e.to_string()),
    }
    let temp = std::env::temp_dir();
    match acl::security(&temp) {
        Ok(Some(_)) => r.push("ACLs", true, format!("the DACL of {} can be read", temp.display())),
        Ok(None) => r.push("ACLs", false, format!("{} does not exist", temp.display())),
        Err(e) => r.push("ACLs", false, format!("reading the DACL of {}: {e}", temp.display())),
    }
    r.push(
        "network filtering",
        false,
        "needs administrator rights (WFP); the unelevated mode requires --network on".into(),
    );
    r.push(
        "read restriction",
        false,
        "a write-restricted token restricts writes only; deny_read needs the elevated mode".into(),
    );
    match state::state_dir() {
        Ok(dir) => {
            r.facts.push(("state folder".into(), dir.display().to_string()));
            if let Ok(text) = std::fs::read_to_string(dir.join("acl.json")) {
                if let Ok(rec) = palisade_windows_plan::acl::RecordedAcl::from_json(&text) {
                    r.facts.push((
                        "recorded ACEs".into(),
                        format!("{} (remove with `palisade cleanup`)", rec.entries.len()),
                    ));
                }
            }
        }
        Err(e) => r.notes.push(e.to_string()),
    }
    let cwd = std::env::current_dir().ok();
    let (report, skipped) = audit::run(&audit::environment(cwd.as_deref()), &[], AuditBudget::default());
    r.notes.extend(audit::describe(&report, &skipped));
    if let Some(v) = wine {
        r.notes.push(format!(
            "running under Wine {v}: Wine accepts the security APIs but enforces none of them; enforcement needs real Windows"
        ));
    }
    r
}
