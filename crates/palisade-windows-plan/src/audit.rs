//! The world-writable audit: which folders outside the writable roots a broad group may write.
//!
//! A write-restricted token keeps `Everyone` as a restricting SID ([`crate::token`]), so a
//! folder where `Everyone` may create files stays writable for the sandboxed command; and a
//! separate sandbox account in `Users` could write wherever `Users`, `Authenticated Users` or
//! `INTERACTIVE` may. Such folders on `PATH` are where a planted program gets run later by the
//! user. The audit reads a bounded list of candidate folders ([`audit_candidates`]), classifies
//! each folder's ACL ([`classify`]) and returns the writable ones, which the ACL plan then denies
//! to the sandbox SID ([`crate::acl::desired_acl`]).
//!
//! The access check ([`granted_access`]) follows Windows' DACL evaluation: ACEs in order,
//! inherit-only ACEs skipped, a deny removes rights not yet granted, an allow adds rights not yet
//! denied, `GENERIC_*` bits mapped to file rights, a NULL DACL grants everything, and the owner
//! implicitly has `READ_CONTROL | WRITE_DAC` unless an `OWNER RIGHTS` ACE is present.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ace::flags::OBJECT_INHERIT_ACE;
use crate::ace::rights::{
    map_generic, DELETE, FILE_ADD_FILE, FILE_ADD_SUBDIRECTORY, FILE_ALL_ACCESS, FILE_APPEND_DATA, FILE_DELETE_CHILD,
    FILE_WRITE_DATA, READ_CONTROL, WRITE_DAC, WRITE_OWNER,
};
use crate::ace::{Ace, AceKind};
use crate::path::{PathError, WinPath};
use crate::sid::{well_known, Sid};

/// A folder's security descriptor as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderSecurity {
    pub owner: Option<Sid>,
    /// `None` is a NULL DACL (everyone may do everything); `Some(vec![])` an empty one
    /// (nobody may do anything).
    pub dacl: Option<Vec<Ace>>,
}

/// The rights a token holding `token` SIDs gets on an object, out of the mapped rights of all
/// ACEs (a maximum-allowed check). ACEs must be in the order stored in the DACL.
pub fn granted_access(sec: &FolderSecurity, token: &[Sid]) -> u32 {
    evaluate(sec, token, |a| a.applies_to_object())
}

fn evaluate(sec: &FolderSecurity, token: &[Sid], applies: impl Fn(&Ace) -> bool) -> u32 {
    let Some(dacl) = &sec.dacl else {
        return FILE_ALL_ACCESS;
    };
    let owner_rights = well_known::sid(well_known::OWNER_RIGHTS);
    let is_owner = sec.owner.as_ref().is_some_and(|o| token.contains(o));
    let has_owner_rights_ace = dacl.iter().any(|a| a.trustee == owner_rights && applies(a));
    let (mut granted, mut denied) = (0u32, 0u32);
    if is_owner && !has_owner_rights_ace {
        granted |= READ_CONTROL | WRITE_DAC;
    }
    for ace in dacl.iter().filter(|a| applies(a)) {
        let matches = token.contains(&ace.trustee) || (is_owner && ace.trustee == owner_rights);
        if !matches {
            continue;
        }
        let mask = map_generic(ace.mask);
        match ace.kind {
            AceKind::Deny => denied |= mask & !granted,
            AceKind::Allow => granted |= mask & !denied,
        }
    }
    granted
}

/// A group that (nearly) every account is a member of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BroadPrincipal {
    Everyone,
    Users,
    AuthenticatedUsers,
    Interactive,
}

impl BroadPrincipal {
    pub const ALL: [BroadPrincipal; 4] = [
        BroadPrincipal::Everyone,
        BroadPrincipal::Users,
        BroadPrincipal::AuthenticatedUsers,
        BroadPrincipal::Interactive,
    ];

    pub fn sid(self) -> Sid {
        well_known::sid(match self {
            BroadPrincipal::Everyone => well_known::EVERYONE,
            BroadPrincipal::Users => well_known::USERS,
            BroadPrincipal::AuthenticatedUsers => well_known::AUTHENTICATED_USERS,
            BroadPrincipal::Interactive => well_known::INTERACTIVE,
        })
    }

    /// The SIDs of a token that holds this group and nothing more specific: every token also
    /// holds `Everyone`, so a deny to `Everyone` counts for all of them.
    pub fn token(self) -> Vec<Sid> {
        let mut t = vec![well_known::sid(well_known::EVERYONE)];
        if self != BroadPrincipal::Everyone {
            t.push(self.sid());
        }
        t
    }
}

/// What a principal may do to a folder that matters for planting files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteAccess {
    /// `FILE_ADD_FILE`.
    pub create_files: bool,
    /// `FILE_ADD_SUBDIRECTORY`.
    pub create_folders: bool,
    /// `FILE_DELETE_CHILD`: delete (and so replace) other people's files.
    pub delete_children: bool,
    /// `WRITE_DAC`: grant itself anything.
    pub change_permissions: bool,
    /// `WRITE_OWNER`: take the folder over.
    pub take_ownership: bool,
    /// Files that inherit this folder's ACL (existing ones and new ones made by anybody) may be
    /// written: a program someone else puts here can be replaced in place.
    pub modify_inherited_files: bool,
}

impl WriteAccess {
    pub fn any(&self) -> bool {
        self.create_files
            || self.create_folders
            || self.delete_children
            || self.change_permissions
            || self.take_ownership
            || self.modify_inherited_files
    }
}

/// The write access of one principal on a folder.
pub fn write_access(sec: &FolderSecurity, token: &[Sid]) -> WriteAccess {
    let on_folder = granted_access(sec, token);
    // What a file created in the folder inherits: the ACEs marked object-inherit, whether or
    // not they also apply to the folder. (CREATOR OWNER entries only ever benefit the creator,
    // who could write the file anyway.) The folder's owner is not the files' owner.
    let files = FolderSecurity { owner: None, dacl: sec.dacl.clone() };
    let on_files = evaluate(&files, token, |a| a.flags & OBJECT_INHERIT_ACE != 0);
    WriteAccess {
        create_files: on_folder & FILE_ADD_FILE != 0,
        create_folders: on_folder & FILE_ADD_SUBDIRECTORY != 0,
        delete_children: on_folder & FILE_DELETE_CHILD != 0,
        change_permissions: on_folder & WRITE_DAC != 0,
        take_ownership: on_folder & WRITE_OWNER != 0,
        modify_inherited_files: on_files & (FILE_WRITE_DATA | FILE_APPEND_DATA | DELETE | WRITE_DAC) != 0,
    }
}

/// The broad principals that may write a folder, each with what it may do. Empty: the folder
/// is not world-writable.
pub fn classify(sec: &FolderSecurity) -> Vec<(BroadPrincipal, WriteAccess)> {
    BroadPrincipal::ALL.into_iter().map(|p| (p, write_access(sec, &p.token()))).filter(|(_, a)| a.any()).collect()
}

/// Why a folder is audited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateReason {
    /// On `PATH`: a program planted here gets run.
    PathEntry,
    /// The system drive's root, where folders made by anybody inherit its "create folders" grant.
    DriveRoot,
    /// A `TEMP`/`TMP` folder.
    Temp,
    /// The user's profile folder.
    Profile,
    /// A folder directly inside the workspace (read-only mode).
    WorkspaceChild,
    /// Named by the caller.
    Extra,
}

/// What the environment says about where to look.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditEnv {
    /// `PATH` split at `;`, as found (quotes and blanks allowed).
    pub path_entries: Vec<String>,
    /// The system drive's root (`C:\`).
    pub system_drive_root: Option<String>,
    /// `TEMP`, `TMP`.
    pub temp_dirs: Vec<String>,
    pub profile: Option<String>,
    /// The folders directly inside the workspace.
    pub workspace_children: Vec<String>,
    pub extra: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCandidate {
    pub path: WinPath,
    pub reason: CandidateReason,
}

/// An environment entry that is not a folder the audit can look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedEntry {
    pub entry: String,
    pub why: String,
}

/// The folders to audit, most important first (`PATH` in its order, the drive root, temporary
/// folders, the profile, workspace children, extras), each once (letter case ignored). Folders
/// inside a writable root are left out: they are writable on purpose. Entries that are not
/// absolute paths (relative `PATH` entries, unexpanded `%VARS%`) are returned as skipped.
pub fn audit_candidates(env: &AuditEnv, writable_roots: &[WinPath]) -> (Vec<AuditCandidate>, Vec<SkippedEntry>) {
    let mut out: Vec<AuditCandidate> = Vec::new();
    let mut skipped = Vec::new();
    let groups: [(&[String], CandidateReason); 6] = [
        (&env.path_entries, CandidateReason::PathEntry),
        (env.system_drive_root.as_slice(), CandidateReason::DriveRoot),
        (&env.temp_dirs, CandidateReason::Temp),
        (env.profile.as_slice(), CandidateReason::Profile),
        (&env.workspace_children, CandidateReason::WorkspaceChild),
        (&env.extra, CandidateReason::Extra),
    ];
    for (entries, reason) in groups {
        for raw in entries {
            let entry = raw.trim().trim_matches('"').trim();
            if entry.is_empty() {
                continue;
            }
            if entry.contains('%') {
                skipped.push(SkippedEntry { entry: raw.clone(), why: "contains an unexpanded %VARIABLE%".into() });
                continue;
            }
            let path = match WinPath::parse(entry) {
                Ok(p) => p.without_stream(),
                Err(e) => {
                    skipped.push(SkippedEntry { entry: raw.clone(), why: path_error_reason(&e) });
                    continue;
                }
            };
            if writable_roots.iter().any(|r| path.is_beneath(r)) || out.iter().any(|c| c.path == path) {
                continue;
            }
            out.push(AuditCandidate { path, reason });
        }
    }
    (out, skipped)
}

fn path_error_reason(e: &PathError) -> String {
    e.to_string()
}

/// How much the audit may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditBudget {
    /// Stop starting new folders after this long.
    pub time_limit: Duration,
    pub max_folders: usize,
}

impl Default for AuditBudget {
    fn default() -> Self {
        AuditBudget { time_limit: Duration::from_secs(2), max_folders: 256 }
    }
}

/// A folder some broad principal may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: WinPath,
    pub reason: CandidateReason,
    pub writable_by: Vec<(BroadPrincipal, WriteAccess)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub findings: Vec<Finding>,
    /// How many folders were read and classified.
    pub checked: usize,
    /// Folders whose security could not be read (missing, access denied), with the error.
    pub errors: Vec<(WinPath, String)>,
    /// Folders left out because the budget ran out.
    pub not_checked: Vec<WinPath>,
    pub timed_out: bool,
}

impl AuditReport {
    /// The folders the ACL plan should deny to the sandbox SID: those writable by `Everyone`,
    /// the one broad group a write-restricted token keeps. (With a separate sandbox account in
    /// `Users`, pass every finding instead.)
    pub fn deny_for_restricted_token(&self) -> Vec<WinPath> {
        self.findings
            .iter()
            .filter(|f| f.writable_by.iter().any(|(p, _)| *p == BroadPrincipal::Everyone))
            .map(|f| f.path.clone())
            .collect()
    }

    /// Every folder any broad group may write.
    pub fn all_writable(&self) -> Vec<WinPath> {
        self.findings.iter().map(|f| f.path.clone()).collect()
    }
}

/// Audits candidates in order within `budget`. `elapsed` tells how long the audit has run (the
/// backend passes `Instant::elapsed`, tests a fake clock); `read` reads a folder's owner and
/// DACL.
pub fn run_audit(
    candidates: &[AuditCandidate],
    budget: AuditBudget,
    elapsed: &mut dyn FnMut() -> Duration,
    read: &mut dyn FnMut(&WinPath) -> Result<FolderSecurity, String>,
) -> AuditReport {
    let mut report = AuditReport::default();
    for (i, c) in candidates.iter().enumerate() {
        let out_of_time = elapsed() >= budget.time_limit;
        if out_of_time || report.checked + report.errors.len() >= budget.max_folders {
            report.timed_out = out_of_time;
            report.not_checked = candidates[i..].iter().map(|c| c.path.clone()).collect();
            break;
        }
        match read(&c.path) {
            Ok(sec) => {
                report.checked += 1;
                let writable_by = classify(&sec);
                if !writable_by.is_empty() {
                    report.findings.push(Finding { path: c.path.clone(), reason: c.reason, writable_by });
                }
            }
            Err(e) => report.errors.push((c.path.clone(), e)),
        }
    }
    report
}

#[cfg(test)]
mod tests;
