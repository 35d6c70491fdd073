//! Unit tests of audit.rs (kept in their own file so both stay short).

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
    FolderSecurity { owner: Some(sid(well_known::LOCAL_SYSTEM)), dacl: Some(aces) }
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
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), [BroadPrincipal::AuthenticatedUsers]);
    let a = c[&BroadPrincipal::AuthenticatedUsers];
    assert!(a.create_files && a.create_folders && !a.change_permissions);
}

#[test]
fn everyone_full_control() {
    let c = classify(&sec(vec![allow(EVERYONE, GENERIC_ALL, SUBTREE)]));
    assert_eq!(c.iter().map(|(p, _)| *p).collect::<Vec<_>>(), BroadPrincipal::ALL);
    assert!(c.iter().all(|(_, a)| a.change_permissions && a.take_ownership && a.delete_children));
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
    let all_denied = sec(vec![deny(EVERYONE, FILE_ADD_FILE | FILE_ADD_SUBDIRECTORY, 0), allow(AUTH, MODIFY, 0)]);
    assert_eq!(classify(&all_denied), vec![]);
    // A deny to one group does not stop another.
    let users_denied = sec(vec![deny(USERS, MODIFY, 0), allow(INTERACTIVE, FILE_ADD_FILE, 0)]);
    assert_eq!(classify(&users_denied).iter().map(|(p, _)| *p).collect::<Vec<_>>(), [BroadPrincipal::Interactive]);
}

#[test]
fn inherit_only_aces_do_not_apply_to_the_folder() {
    let s = sec(vec![allow(USERS, MODIFY, CHILDREN_ONLY)]);
    let a = write_access(&s, &BroadPrincipal::Users.token());
    assert!(!a.create_files && !a.create_folders);
    assert!(a.modify_inherited_files, "files placed here by others inherit the write grant");
    // Container-only inheritance does not reach files.
    let s = sec(vec![allow(USERS, MODIFY, CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE)]);
    assert_eq!(classify(&s), vec![]);
}

#[test]
fn null_and_empty_dacls() {
    let null = FolderSecurity { owner: None, dacl: None };
    assert_eq!(granted_access(&null, &[sid(EVERYONE)]), FILE_ALL_ACCESS);
    assert_eq!(classify(&null).len(), 4);
    let empty = FolderSecurity { owner: None, dacl: Some(vec![]) };
    assert_eq!(granted_access(&empty, &[sid(EVERYONE)]), 0);
    assert_eq!(classify(&empty), vec![]);
}

#[test]
fn owner_implicit_rights() {
    // Owned by Users: they may rewrite the DACL, so the folder is theirs.
    let s = FolderSecurity { owner: Some(sid(USERS)), dacl: Some(vec![allow(USERS, RX, 0)]) };
    let a = write_access(&s, &BroadPrincipal::Users.token());
    assert!(a.change_permissions && !a.create_files);
    // Implicit rights survive a deny...
    let s = FolderSecurity { owner: Some(sid(USERS)), dacl: Some(vec![deny(USERS, WRITE_DAC, 0)]) };
    assert!(write_access(&s, &BroadPrincipal::Users.token()).change_permissions);
    // ...but not an OWNER RIGHTS entry, which replaces them.
    let s =
        FolderSecurity { owner: Some(sid(USERS)), dacl: Some(vec![allow(well_known::OWNER_RIGHTS, READ_CONTROL, 0)]) };
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
        temp_dirs: vec![r"C:\Users\alice\AppData\Local\Temp".into(), r"C:\Users\alice\AppData\Local\Temp".into()],
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
    assert!(cands.iter().any(|c| c.reason == WorkspaceChild && c.path == p(r"C:\Work\src")));
}

fn fake_acls() -> BTreeMap<WinPath, FolderSecurity> {
    let mut m = BTreeMap::new();
    m.insert(p(r"C:\tools\bin"), sec(vec![allow(EVERYONE, MODIFY, SUBTREE)]));
    m.insert(p(r"C:\Program Files\Git\cmd"), program_files());
    m.insert(p(r"C:\"), drive_root());
    m
}

fn cands(paths: &[&str]) -> Vec<AuditCandidate> {
    paths.iter().map(|s| AuditCandidate { path: p(s), reason: CandidateReason::PathEntry }).collect()
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
    assert_eq!(r.findings.iter().map(|f| f.path.to_string()).collect::<Vec<_>>(), [r"C:\tools\bin", r"C:\"]);
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
    let budget = AuditBudget { time_limit: Duration::from_secs(2), max_folders: 100 };
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
    let r =
        run_audit(&list, AuditBudget { time_limit: Duration::from_secs(60), max_folders: 1 }, &mut clock, &mut read);
    assert_eq!(r.checked, 1);
    assert!(!r.timed_out);
    assert_eq!(r.not_checked.len(), 2);
}
