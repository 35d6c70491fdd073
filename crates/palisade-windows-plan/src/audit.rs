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
    let files = FolderSecurity {
        owner: None,
        dacl: sec.dacl.clone(),
    };
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
    BroadPrincipal::ALL
        .into_iter()
        .map(|p| (p, write_access(sec, &p.token())))
        .filter(|(_, a)| a.any())
        .collect()
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
                skipped.push(SkippedEntry {
                    entry: raw.clone(),
                    why: "contains an unexpanded %VARIABLE%".into(),
                });
                continue;
            }
            let path = match WinPath::parse(entry) {
                Ok(p) => p.without_stream(),
                Err(e) => {
                    skipped.push(SkippedEntry {
                        entry: raw.clone(),
                        why: path_error_reason(&e),
                    });
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
        AuditBudget {
            time_limit: Duration::from_secs(2),
            max_folders: 256,
        }
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
                    report.findings.push(Finding {
                        path: c.path.clone(),
                        reason: c.reason,
                        writable_by,
                    });
                }
            }
            Err(e) => report.errors.push((c.path.clone(), e)),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ace::flags::{CHILDREN_ONLY, CONTAINER_INHERIT_ACE, INHERITED_ACE, INHERIT_ONLY_ACE, SUBTREE};
    use crate::ace::rights::{FILE_GENERIC_EXECUTE, FILE_GENERIC_READ, GENERIC_ALL, GENERIC_WRITE, MODIFY};
    use std::collections::BTreeMap;

    fn sid(s: &str) -> Sid {
        Sid::parse(s).unwrap()
    }
    fn p(s: &str) -> WinPath {
        WinPath::parse(s).unwrap()
    }
    fn allow(s: &str, mask: u32, flags: u8) -> Ace {
        Ace::allow(sid(s), mask, flags)
    }
    fn deny(s: &str, mask: u32, flags: u8) -> Ace {
        Ace::deny(sid(s), mask, flags)
    }
    fn sec(aces: Vec<Ace>) -> FolderSecurity {
        FolderSecurity {
            owner: Some(sid(well_known::LOCAL_SYSTEM)),
            dacl: Some(aces),
        }
    }

    const SYSTEM: &str = "S-1-5-18";
    const ADMINS: &str = "S-1-5-32-544";
    const USERS: &str = "S-1-5-32-545";
    const AUTH: &str = "S-1-5-11";
    const EVERYONE: &str = "S-1-1-0";
    const INTERACTIVE: &str = "S-1-5-4";
    const CREATOR_OWNER: &str = "S-1-3-0";
    const RX: u32 = FILE_GENERIC_READ | FILE_GENERIC_EXECUTE;

    /// `C:\` on a default installation: Authenticated Users may create folders (and, through
    /// CREATOR OWNER, own what they make), Users may read.
    fn drive_root() -> FolderSecurity {
        sec(vec![
            allow(ADMINS, FILE_ALL_ACCESS, SUBTREE),
            allow(SYSTEM, FILE_ALL_ACCESS, SUBTREE),
            allow(USERS, RX, SUBTREE),
            allow(AUTH, FILE_ADD_SUBDIRECTORY, THIS),
            allow(AUTH, MODIFY, CHILDREN_ONLY),
            allow(CREATOR_OWNER, GENERIC_ALL, CHILDREN_ONLY),
        ])
    }
    const THIS: u8 = 0;

    /// `C:\Program Files\Tool`: read and execute for Users only.
    fn program_files() -> FolderSecurity {
        sec(vec![
            allow(SYSTEM, FILE_ALL_ACCESS, SUBTREE | INHERITED_ACE),
            allow(ADMINS, FILE_ALL_ACCESS, SUBTREE | INHERITED_ACE),
            allow(USERS, RX, SUBTREE | INHERITED_ACE),
        ])
    }

    #[test]
    fn program_files_is_not_world_writable() {
        assert_eq!(classify(&program_files()), vec![]);
    }

    #[test]
    fn drive_root_lets_authenticated_users_create_folders() {
        let c = classify(&drive_root());
        assert_eq!(c.len(), 1);
        let (who, access) = c[0];
        assert_eq!(who, BroadPrincipal::AuthenticatedUsers);
        assert!(access.create_folders && !access.create_files && !access.delete_children);
        assert!(access.modify_inherited_files);
    }

    #[test]
    fn folder_made_under_the_drive_root_is_writable_by_authenticated_users() {
        // What C:\tools inherits from C:\ when an administrator creates it.
        let tools = sec(vec![
            allow(ADMINS, FILE_ALL_ACCESS, SUBTREE | INHERITED_ACE),
            allow(SYSTEM, FILE_ALL_ACCESS, SUBTREE | INHERITED_ACE),
            allow(USERS, RX, SUBTREE | INHERITED_ACE),
            allow(AUTH, MODIFY, SUBTREE | INHERITED_ACE),
            allow(CREATOR_OWNER, GENERIC_ALL, CHILDREN_ONLY | INHERITED_ACE),
        ]);
        let c: BTreeMap<_, _> = classify(&tools).into_iter().collect();
        assert_eq!(
            c.keys().copied().collect::<Vec<_>>(),
            [BroadPrincipal::AuthenticatedUsers]
        );
        let a = c[&BroadPrincipal::AuthenticatedUsers];
        assert!(a.create_files && a.create_folders && !a.change_permissions);
    }

    #[test]
    fn everyone_full_control() {
        let c = classify(&sec(vec![allow(EVERYONE, GENERIC_ALL, SUBTREE)]));
        assert_eq!(c.iter().map(|(p, _)| *p).collect::<Vec<_>>(), BroadPrincipal::ALL);
        assert!(c
            .iter()
            .all(|(_, a)| a.change_permissions && a.take_ownership && a.delete_children));
    }

    #[test]
    fn generic_write_is_mapped() {
        let c = classify(&sec(vec![allow(USERS, GENERIC_WRITE, 0)]));
        assert_eq!(c.len(), 1);
        assert!(c[0].1.create_files && c[0].1.create_folders);
    }

    #[test]
    fn deny_before_allow_wins_allow_before_deny_wins() {
        let denied_first = sec(vec![deny(EVERYONE, FILE_ADD_FILE, 0), allow(USERS, MODIFY, 0)]);
        let a = write_access(&denied_first, &BroadPrincipal::Users.token());
        assert!(!a.create_files && a.create_folders);
        // Non-canonical order: the allow comes first and the later deny no longer takes it away.
        let allowed_first = sec(vec![allow(USERS, MODIFY, 0), deny(EVERYONE, FILE_ADD_FILE, 0)]);
        assert!(write_access(&allowed_first, &BroadPrincipal::Users.token()).create_files);
        // A deny to Everyone applies to every broad group.
        let all_denied = sec(vec![
            deny(EVERYONE, FILE_ADD_FILE | FILE_ADD_SUBDIRECTORY, 0),
            allow(AUTH, MODIFY, 0),
        ]);
        assert_eq!(classify(&all_denied), vec![]);
        // A deny to one group does not stop another.
        let users_denied = sec(vec![deny(USERS, MODIFY, 0), allow(INTERACTIVE, FILE_ADD_FILE, 0)]);
        assert_eq!(
            classify(&users_denied).iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            [BroadPrincipal::Interactive]
        );
    }

    #[test]
    fn inherit_only_aces_do_not_apply_to_the_folder() {
        let s = sec(vec![allow(USERS, MODIFY, CHILDREN_ONLY)]);
        let a = write_access(&s, &BroadPrincipal::Users.token());
        assert!(!a.create_files && !a.create_folders);
        assert!(
            a.modify_inherited_files,
            "files placed here by others inherit the write grant"
        );
        // Container-only inheritance does not reach files.
        let s = sec(vec![allow(USERS, MODIFY, CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE)]);
        assert_eq!(classify(&s), vec![]);
    }

    #[test]
    fn null_and_empty_dacls() {
        let null = FolderSecurity {
            owner: None,
            dacl: None,
        };
        assert_eq!(granted_access(&null, &[sid(EVERYONE)]), FILE_ALL_ACCESS);
        assert_eq!(classify(&null).len(), 4);
        let empty = FolderSecurity {
            owner: None,
            dacl: Some(vec![]),
        };
        assert_eq!(granted_access(&empty, &[sid(EVERYONE)]), 0);
        assert_eq!(classify(&empty), vec![]);
    }

    #[test]
    fn owner_implicit_rights() {
        // Owned by Users: they may rewrite the DACL, so the folder is theirs.
        let s = FolderSecurity {
            owner: Some(sid(USERS)),
            dacl: Some(vec![allow(USERS, RX, 0)]),
        };
        let a = write_access(&s, &BroadPrincipal::Users.token());
        assert!(a.change_permissions && !a.create_files);
        // Implicit rights survive a deny...
        let s = FolderSecurity {
            owner: Some(sid(USERS)),
            dacl: Some(vec![deny(USERS, WRITE_DAC, 0)]),
        };
        assert!(write_access(&s, &BroadPrincipal::Users.token()).change_permissions);
        // ...but not an OWNER RIGHTS entry, which replaces them.
        let s = FolderSecurity {
            owner: Some(sid(USERS)),
            dacl: Some(vec![allow(well_known::OWNER_RIGHTS, READ_CONTROL, 0)]),
        };
        assert!(!write_access(&s, &BroadPrincipal::Users.token()).any());
    }

    #[test]
    fn candidates_in_priority_order_deduplicated() {
        let env = AuditEnv {
            path_entries: vec![
                r"C:\Windows\system32".into(),
                r#""C:\Program Files\Git\cmd""#.into(),
                "".into(),
                r"C:\tools\bin".into(),
                r"c:\TOOLS\bin\".into(),
                r"%USERPROFILE%\bin".into(),
                r"bin".into(),
                r"C:\Work\node_modules\.bin".into(),
            ],
            system_drive_root: Some(r"C:\".into()),
            temp_dirs: vec![
                r"C:\Users\alice\AppData\Local\Temp".into(),
                r"C:\Users\alice\AppData\Local\Temp".into(),
            ],
            profile: Some(r"C:\Users\alice".into()),
            workspace_children: vec![r"C:\Work\src".into()],
            extra: vec![r"D:\".into()],
        };
        let (cands, skipped) = audit_candidates(&env, &[p(r"C:\Work")]);
        let got: Vec<(String, CandidateReason)> = cands.iter().map(|c| (c.path.to_string(), c.reason)).collect();
        use CandidateReason::*;
        assert_eq!(
            got,
            [
                (r"C:\Windows\system32".to_string(), PathEntry),
                (r"C:\Program Files\Git\cmd".to_string(), PathEntry),
                (r"C:\tools\bin".to_string(), PathEntry),
                (r"C:\".to_string(), DriveRoot),
                (r"C:\Users\alice\AppData\Local\Temp".to_string(), Temp),
                (r"C:\Users\alice".to_string(), Profile),
                (r"D:\".to_string(), Extra),
            ]
        );
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].why.contains("%VARIABLE%"));
        assert!(skipped[1].why.contains("not an absolute path"), "{}", skipped[1].why);
        // Read-only mode: no writable roots, so workspace children are audited.
        let (cands, _) = audit_candidates(&env, &[]);
        assert!(cands
            .iter()
            .any(|c| c.reason == WorkspaceChild && c.path == p(r"C:\Work\src")));
    }

    fn fake_acls() -> BTreeMap<WinPath, FolderSecurity> {
        let mut m = BTreeMap::new();
        m.insert(p(r"C:\tools\bin"), sec(vec![allow(EVERYONE, MODIFY, SUBTREE)]));
        m.insert(p(r"C:\Program Files\Git\cmd"), program_files());
        m.insert(p(r"C:\"), drive_root());
        m
    }

    fn cands(paths: &[&str]) -> Vec<AuditCandidate> {
        paths
            .iter()
            .map(|s| AuditCandidate {
                path: p(s),
                reason: CandidateReason::PathEntry,
            })
            .collect()
    }

    #[test]
    fn audit_run_reports_findings_and_errors() {
        let acls = fake_acls();
        let list = cands(&[r"C:\Program Files\Git\cmd", r"C:\tools\bin", r"C:\missing", r"C:\"]);
        let mut clock = || Duration::ZERO;
        let mut read = |path: &WinPath| acls.get(path).cloned().ok_or_else(|| "not found".to_string());
        let r = run_audit(&list, AuditBudget::default(), &mut clock, &mut read);
        assert_eq!(r.checked, 3);
        assert_eq!(r.errors, [(p(r"C:\missing"), "not found".to_string())]);
        assert_eq!(
            r.findings.iter().map(|f| f.path.to_string()).collect::<Vec<_>>(),
            [r"C:\tools\bin", r"C:\"]
        );
        assert!(!r.timed_out && r.not_checked.is_empty());
        // Only Everyone matters for a write-restricted token; C:\ is for Authenticated Users.
        assert_eq!(r.deny_for_restricted_token(), [p(r"C:\tools\bin")]);
        assert_eq!(r.all_writable().len(), 2);
    }

    #[test]
    fn audit_stops_when_time_runs_out() {
        let acls = fake_acls();
        let list = cands(&[r"C:\tools\bin", r"C:\Program Files\Git\cmd", r"C:\"]);
        // Each call to the clock advances it by 1 s; the limit is 2 s.
        let mut t = 0u64;
        let mut clock = || {
            let now = Duration::from_secs(t);
            t += 1;
            now
        };
        let mut reads = 0;
        let mut read = |path: &WinPath| {
            reads += 1;
            acls.get(path).cloned().ok_or_else(|| "not found".to_string())
        };
        let budget = AuditBudget {
            time_limit: Duration::from_secs(2),
            max_folders: 100,
        };
        let r = run_audit(&list, budget, &mut clock, &mut read);
        assert_eq!(reads, 2);
        assert!(r.timed_out);
        assert_eq!(r.not_checked, [p(r"C:\")]);
        assert_eq!(r.findings.len(), 1);
    }

    #[test]
    fn audit_stops_at_the_folder_limit() {
        let acls = fake_acls();
        let list = cands(&[r"C:\tools\bin", r"C:\Program Files\Git\cmd", r"C:\"]);
        let mut clock = || Duration::ZERO;
        let mut read = |path: &WinPath| acls.get(path).cloned().ok_or_else(|| "not found".to_string());
        let r = run_audit(
            &list,
            AuditBudget {
                time_limit: Duration::from_secs(60),
                max_folders: 1,
            },
            &mut clock,
            &mut read,
        );
        assert_eq!(r.checked, 1);
        assert!(!r.timed_out);
        assert_eq!(r.not_checked.len(), 2);
    }
}
