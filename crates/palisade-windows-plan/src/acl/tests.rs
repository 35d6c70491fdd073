//! Unit tests of the acl module (kept in their own file so every file stays short).

use super::*;
use crate::ace::flags::OBJECT_INHERIT_ACE;
use crate::sid::SyntheticKind;

fn p(s: &str) -> WinPath {
    WinPath::parse(s).unwrap()
}

fn wsid(n: u8) -> Sid {
    Sid::synthetic(SyntheticKind::WriteRoot, [n; 16])
}

fn sandbox() -> Sid {
    Sid::synthetic(SyntheticKind::Sandbox, [0xEE; 16])
}

fn ro_dir(s: &str) -> ProtectedItem {
    ProtectedItem { path: p(s), kind: ProtectedKind::ReadOnly { dir: true } }
}
fn ro_file(s: &str) -> ProtectedItem {
    ProtectedItem { path: p(s), kind: ProtectedKind::ReadOnly { dir: false } }
}
fn pin(s: &str) -> ProtectedItem {
    ProtectedItem { path: p(s), kind: ProtectedKind::Pin }
}
fn placeholder(s: &str, dir: bool) -> ProtectedItem {
    ProtectedItem { path: p(s), kind: ProtectedKind::Placeholder { dir } }
}

/// A workspace with a git directory whose hooks and config exist.
fn work() -> RootSpec {
    RootSpec {
        root: p(r"C:\Work"),
        sid: wsid(1),
        protected: vec![pin(r"C:\Work\.git"), ro_dir(r"C:\Work\.git\hooks"), ro_file(r"C:\Work\.git\config")],
    }
}

fn desired(holder: &str, roots: &[RootSpec]) -> DesiredAcl {
    desired_acl(holder, roots, &[], &sandbox()).unwrap()
}

/// Applies a plan the way the backend protocol says, returning the changes.
fn run(desired: &DesiredAcl, rec: &mut RecordedAcl) -> Vec<AclChange> {
    let changes = plan(desired, rec);
    rec.begin(&changes);
    rec.commit(desired);
    changes
}

fn adds(changes: &[AclChange]) -> Vec<String> {
    changes.iter().filter(|c| matches!(c, AclChange::Add { .. })).map(|c| c.to_string()).collect()
}

#[test]
fn desired_state_for_one_root() {
    let d = desired("s1", &[work()]);
    let w = wsid(1);
    let want: BTreeSet<PathAce> = [
        PathAce { path: p(r"C:\Work"), ace: Ace::allow(w.clone(), MODIFY & !DELETE, 0) },
        PathAce { path: p(r"C:\Work"), ace: Ace::allow(w.clone(), MODIFY, CHILDREN_ONLY) },
        // Parent of the pinned .git.
        PathAce { path: p(r"C:\Work"), ace: Ace::deny(w.clone(), FILE_DELETE_CHILD, 0) },
        PathAce { path: p(r"C:\Work\.git"), ace: Ace::deny(w.clone(), PIN_DENY, 0) },
        // Parent of hooks and config.
        PathAce { path: p(r"C:\Work\.git"), ace: Ace::deny(w.clone(), FILE_DELETE_CHILD, 0) },
        PathAce { path: p(r"C:\Work\.git\hooks"), ace: Ace::deny(w.clone(), WRITE_LIKE, SUBTREE) },
        PathAce { path: p(r"C:\Work\.git\config"), ace: Ace::deny(w.clone(), WRITE_LIKE, 0) },
    ]
    .into_iter()
    .collect();
    assert_eq!(d.aces, want);
    assert!(d.placeholders.is_empty());
}

#[test]
fn root_grant_never_gives_delete_child_or_acl_changes() {
    for a in root_grant(&p(r"C:\w"), &wsid(1)) {
        assert_eq!(a.ace.kind, AceKind::Allow);
        assert_eq!(a.ace.mask & (FILE_DELETE_CHILD | WRITE_DAC | WRITE_OWNER), 0);
    }
    let [this, children] = root_grant(&p(r"C:\w"), &wsid(1));
    assert_eq!(this.ace.mask & DELETE, 0, "the root itself cannot be deleted or renamed");
    assert!(this.ace.applies_to_object());
    assert!(!children.ace.applies_to_object());
    assert_eq!(children.ace.flags & OBJECT_INHERIT_ACE, OBJECT_INHERIT_ACE);
}

#[test]
fn first_run_adds_everything_denies_first() {
    let d = desired("s1", &[work()]);
    let changes = plan(&d, &RecordedAcl::new());
    assert_eq!(changes.len(), d.aces.len());
    let first_allow =
        changes.iter().position(|c| matches!(c, AclChange::Add { ace, .. } if ace.kind == AceKind::Allow)).unwrap();
    assert!(changes[..first_allow]
        .iter()
        .all(|c| matches!(c, AclChange::Add { ace, .. } if ace.kind == AceKind::Deny)));
    assert!(changes[first_allow..]
        .iter()
        .all(|c| matches!(c, AclChange::Add { ace, .. } if ace.kind == AceKind::Allow)));
}

#[test]
fn unchanged_policy_produces_no_changes() {
    let d = desired("s1", &[work()]);
    let mut rec = RecordedAcl::new();
    assert!(!run(&d, &mut rec).is_empty());
    for _ in 0..3 {
        assert_eq!(plan(&d, &rec), vec![]);
        rec.commit(&d);
    }
    // The same policy rebuilt from differently written paths is the same state.
    let mut again = work();
    again.root = p(r"c:\WORK\");
    again.protected =
        vec![pin(r"c:\work\.GIT"), ro_dir(r"C:\Work\.git\HOOKS\."), ro_file(r"\\?\C:\Work\.git\config::$DATA")];
    assert_eq!(plan(&desired("s1", &[again]), &rec), vec![]);
    // And a JSON round trip of the record changes nothing either.
    let rec2 = RecordedAcl::from_json(&rec.to_json()).unwrap();
    assert_eq!(rec2, rec);
    assert_eq!(plan(&d, &rec2), vec![]);
}

#[test]
fn adding_a_root_touches_only_that_root() {
    let mut rec = RecordedAcl::new();
    run(&desired("s1", &[work()]), &mut rec);
    let other = RootSpec { root: p(r"D:\cache"), sid: wsid(2), protected: vec![] };
    let changes = plan(&desired("s1", &[work(), other]), &rec);
    assert_eq!(
        adds(&changes),
        [
            format!(
                r"add to D:\cache: allow {} FILE_READ_DATA|FILE_WRITE_DATA|FILE_APPEND_DATA|FILE_READ_EA|FILE_WRITE_EA|FILE_EXECUTE|FILE_READ_ATTRIBUTES|FILE_WRITE_ATTRIBUTES|READ_CONTROL|SYNCHRONIZE",
                wsid(2)
            ),
            format!(
                r"add to D:\cache: allow {} FILE_READ_DATA|FILE_WRITE_DATA|FILE_APPEND_DATA|FILE_READ_EA|FILE_WRITE_EA|FILE_EXECUTE|FILE_READ_ATTRIBUTES|FILE_WRITE_ATTRIBUTES|DELETE|READ_CONTROL|SYNCHRONIZE (OI,CI,IO)",
                wsid(2)
            ),
        ]
    );
    assert_eq!(changes.len(), 2);
}

#[test]
fn removing_a_root_removes_its_aces() {
    let other = RootSpec { root: p(r"D:\cache"), sid: wsid(2), protected: vec![ro_dir(r"D:\cache\.vscode")] };
    let mut rec = RecordedAcl::new();
    run(&desired("s1", &[work(), other]), &mut rec);
    let d = desired("s1", &[work()]);
    let changes = plan(&d, &rec);
    assert!(changes.iter().all(|c| matches!(c, AclChange::Remove { .. })));
    assert!(changes.iter().all(|c| c.path().is_beneath(&p(r"D:\cache"))));
    assert_eq!(changes.len(), 4); // two grants, the deny on .vscode, delete-child on D:\cache
                                  // Grants go before denies.
    let kinds: Vec<AceKind> = changes
        .iter()
        .map(|c| match c {
            AclChange::Remove { ace, .. } => ace.kind,
            _ => unreachable!("only removals"),
        })
        .collect();
    assert_eq!(kinds, [AceKind::Allow, AceKind::Allow, AceKind::Deny, AceKind::Deny]);
    rec.begin(&changes);
    rec.commit(&d);
    assert!(rec.entries.iter().all(|e| !e.path.is_beneath(&p(r"D:\cache"))));
    assert_eq!(plan(&d, &rec), vec![]);
}

#[test]
fn a_new_protected_path_adds_only_its_aces() {
    let mut rec = RecordedAcl::new();
    run(&desired("s1", &[work()]), &mut rec);
    let mut w = work();
    w.protected.push(ro_dir(r"C:\Work\.vscode"));
    let changes = plan(&desired("s1", &[w]), &rec);
    // The delete-child deny on C:\Work is there already (for .git).
    assert_eq!(
        adds(&changes),
        [format!(r"add to C:\Work\.vscode: deny {} {} (OI,CI)", wsid(1), crate::ace::rights::describe(WRITE_LIKE))]
    );
    assert_eq!(changes.len(), 1);
}

#[test]
fn placeholders_are_created_and_always_denied_afresh() {
    let mut w = work();
    w.protected.push(placeholder(r"C:\Work\.envrc", false));
    w.protected.push(placeholder(r"C:\Work\.vscode", true));
    let d = desired("s1", &[w]);
    let mut rec = RecordedAcl::new();
    let first = run(&d, &mut rec);
    assert_eq!(
        first[..2],
        [
            AclChange::CreatePlaceholder { path: p(r"C:\Work\.envrc"), dir: false },
            AclChange::CreatePlaceholder { path: p(r"C:\Work\.vscode"), dir: true },
        ]
    );
    assert!(first.contains(&AclChange::Add { path: p(r"C:\Work\.envrc"), ace: Ace::deny(wsid(1), WRITE_LIKE, 0) }));
    assert!(
        first.contains(&AclChange::Add { path: p(r"C:\Work\.vscode"), ace: Ace::deny(wsid(1), WRITE_LIKE, SUBTREE) })
    );

    // Next time the placeholders exist: the policy crate reports them read-only, and
    // nothing changes.
    let mut w = work();
    w.protected.push(ro_file(r"C:\Work\.envrc"));
    w.protected.push(ro_dir(r"C:\Work\.vscode"));
    assert_eq!(plan(&desired("s1", &[w]), &rec), vec![]);

    // If one was deleted from outside, it is created and denied again.
    let mut w = work();
    w.protected.push(placeholder(r"C:\Work\.envrc", false));
    w.protected.push(ro_dir(r"C:\Work\.vscode"));
    let again = plan(&desired("s1", &[w]), &rec);
    assert_eq!(
        again,
        [
            AclChange::CreatePlaceholder { path: p(r"C:\Work\.envrc"), dir: false },
            AclChange::Add { path: p(r"C:\Work\.envrc"), ace: Ace::deny(wsid(1), WRITE_LIKE, 0) },
        ]
    );
}

#[test]
fn nested_roots_deny_for_every_containing_root() {
    let outer = RootSpec { root: p(r"C:\Work"), sid: wsid(1), protected: vec![] };
    let inner = RootSpec {
        root: p(r"C:\Work\sub"),
        sid: wsid(2),
        protected: vec![ro_dir(r"C:\Work\sub\.git\hooks"), pin(r"C:\Work\sub\.git")],
    };
    let d = desired("s1", &[outer, inner]);
    for sid in [wsid(1), wsid(2)] {
        assert!(d.aces.contains(&PathAce {
            path: p(r"C:\Work\sub\.git\hooks"),
            ace: Ace::deny(sid.clone(), WRITE_LIKE, SUBTREE)
        }));
        assert!(d
            .aces
            .contains(&PathAce { path: p(r"C:\Work\sub"), ace: Ace::deny(sid.clone(), FILE_DELETE_CHILD, 0) }));
    }
}

#[test]
fn protected_items_outside_the_root_are_ignored_and_the_root_is_refused() {
    let mut w = work();
    w.protected.push(ro_dir(r"D:\elsewhere\.git\hooks"));
    assert_eq!(desired("s1", &[w]), desired("s1", &[work()]));
    let mut w = work();
    w.protected.push(ro_dir(r"C:\work"));
    assert!(matches!(desired_acl("s1", &[w], &[], &sandbox()), Err(PlanError::ProtectedRoot { .. })));
}

#[test]
fn invalid_root_sets() {
    let a = RootSpec { root: p(r"C:\a"), sid: wsid(1), protected: vec![] };
    let b = RootSpec { root: p(r"C:\b"), sid: wsid(1), protected: vec![] };
    assert!(matches!(desired_acl("s", &[a.clone(), b], &[], &sandbox()), Err(PlanError::SharedSid { .. })));
    let a2 = RootSpec { root: p(r"c:\A"), sid: wsid(2), protected: vec![] };
    assert!(matches!(desired_acl("s", &[a, a2], &[], &sandbox()), Err(PlanError::DuplicateRoot(_))));
}

#[test]
fn world_writable_folders_are_denied_to_the_sandbox_sid_unless_inside_a_root() {
    let ww = [p(r"C:\tools\bin"), p(r"C:\Work\scratch")];
    let d = desired_acl("s1", &[work()], &ww, &sandbox()).unwrap();
    assert!(d.aces.contains(&PathAce { path: p(r"C:\tools\bin"), ace: Ace::deny(sandbox(), WRITE_LIKE, SUBTREE) }));
    assert!(!d.aces.iter().any(|a| a.path == p(r"C:\Work\scratch")));
    // Read-only mode: no roots, the deny still goes on.
    let d = desired_acl("s1", &[], &ww, &sandbox()).unwrap();
    assert_eq!(d.aces.len(), 2);
}

#[test]
fn shared_aces_are_refcounted_by_holder() {
    let mut rec = RecordedAcl::new();
    let d1 = desired("host-1", &[work()]);
    let d2 = desired("host-2", &[work()]);
    assert!(!run(&d1, &mut rec).is_empty());
    // A second host using the same root changes nothing on disk.
    assert_eq!(run(&d2, &mut rec), vec![]);
    assert!(rec.entries.iter().all(|e| e.holders.len() == 2));
    assert_eq!(rec.holders(), BTreeSet::from(["host-1", "host-2"]));
    // The first host leaves: nothing is removed, host-2 still uses it all.
    assert_eq!(run(&DesiredAcl::empty("host-1"), &mut rec), vec![]);
    assert_eq!(rec.holders(), BTreeSet::from(["host-2"]));
    // The last one leaves: everything goes.
    let gone = run(&DesiredAcl::empty("host-2"), &mut rec);
    assert_eq!(gone.len(), d1.aces.len());
    assert!(gone.iter().all(|c| matches!(c, AclChange::Remove { .. })));
    assert!(rec.is_empty());
}

#[test]
fn a_holder_leaving_a_root_keeps_it_for_the_other() {
    let mut rec = RecordedAcl::new();
    let other = RootSpec { root: p(r"D:\cache"), sid: wsid(2), protected: vec![] };
    run(&desired("host-1", &[work(), other.clone()]), &mut rec);
    run(&desired("host-2", &[other]), &mut rec);
    // host-1 drops D:\cache (still used by host-2): nothing to do.
    assert_eq!(run(&desired("host-1", &[work()]), &mut rec), vec![]);
    // host-2 drops it too: now it goes.
    let changes = run(&DesiredAcl::empty("host-2"), &mut rec);
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.path() == &p(r"D:\cache")));
}

#[test]
fn crash_after_write_ahead_is_recovered() {
    let d = desired("s1", &[work()]);
    let mut rec = RecordedAcl::new();
    let changes = plan(&d, &rec);
    rec.begin(&changes);
    // Crash: some changes were applied, the record says pending, nothing committed.
    let saved = RecordedAcl::from_json(&rec.to_json()).unwrap();
    assert!(saved.entries.iter().all(|e| e.pending && e.holders.is_empty()));
    // Same policy next time: everything is (re-)added, idempotently.
    assert_eq!(plan(&d, &saved), changes);
    // Policy gone next time: every pending ACE is removed.
    let mut saved2 = saved.clone();
    let removal = plan(&DesiredAcl::empty("s1"), &saved2);
    assert_eq!(removal.len(), changes.len());
    saved2.commit(&DesiredAcl::empty("s1"));
    assert!(saved2.is_empty());
    // Cleanup also lists pending ones.
    assert_eq!(cleanup_plan(&saved).len(), changes.len());
}

#[test]
fn cleanup_removes_exactly_what_was_recorded() {
    let mut rec = RecordedAcl::new();
    let other = RootSpec { root: p(r"D:\cache"), sid: wsid(2), protected: vec![] };
    run(&desired("host-1", &[work()]), &mut rec);
    run(&desired_acl("host-2", &[other], &[p(r"C:\tools")], &sandbox()).unwrap(), &mut rec);
    let cleanup = cleanup_plan(&rec);
    let removed: BTreeSet<(WinPath, Ace)> = cleanup
        .iter()
        .map(|c| match c {
            AclChange::Remove { path, ace } => (path.clone(), ace.clone()),
            other => panic!("unexpected {other}"),
        })
        .collect();
    let recorded: BTreeSet<(WinPath, Ace)> = rec.entries.iter().map(|e| (e.path.clone(), e.ace.clone())).collect();
    assert_eq!(removed, recorded);
    let first_deny =
        cleanup.iter().position(|c| matches!(c, AclChange::Remove { ace, .. } if ace.kind == AceKind::Deny)).unwrap();
    assert!(cleanup[first_deny..]
        .iter()
        .all(|c| matches!(c, AclChange::Remove { ace, .. } if ace.kind == AceKind::Deny)));

    // One removal fails: only its entry stays, to be reported and retried.
    let failed = vec![cleanup[0].clone()];
    rec.after_cleanup(&failed);
    assert_eq!(rec.entries.len(), 1);
    assert_eq!(cleanup_plan(&rec), failed);
    rec.after_cleanup(&[]);
    assert!(rec.is_empty());
}

#[test]
fn record_json_format_and_versions() {
    let mut rec = RecordedAcl::new();
    run(&desired("host-1", &[work()]), &mut rec);
    let json = rec.to_json();
    assert!(json.contains("\"version\": 1"), "{json}");
    assert!(json.contains(r#""path": "C:\\Work\\.git\\hooks""#), "{json}");
    assert!(json.contains("\"kind\": \"deny\""), "{json}");
    assert!(json.contains(&format!("\"mask\": {WRITE_LIKE}")), "{json}");
    assert!(json.contains("\"flags\": 3"), "{json}");
    assert!(json.contains("\"holders\": [") && json.contains("\"host-1\""), "{json}");
    assert!(!json.contains("pending"), "{json}");

    let newer = json.replacen("\"version\": 1", "\"version\": 7", 1);
    let e = RecordedAcl::from_json(&newer).unwrap_err();
    assert!(matches!(e, StateError::Version { found: 7, supported: 1 }));
    assert!(e.to_string().contains("newer palisade"), "{e}");
    let older = json.replacen("\"version\": 1", "\"version\": 0", 1);
    let e = RecordedAcl::from_json(&older).unwrap_err();
    assert!(matches!(e, StateError::Version { found: 0, .. }));
    assert!(!e.to_string().contains("newer"), "{e}");
    assert!(matches!(RecordedAcl::from_json("[]"), Err(StateError::Json(_))));
    assert!(matches!(RecordedAcl::from_json(r#"{"version": 1}"#), Err(StateError::Json(_))));

    let mut dup = rec.clone();
    dup.entries.push(dup.entries[0].clone());
    assert!(matches!(RecordedAcl::from_json(&dup.to_json()), Err(StateError::Duplicate(_))));
}

#[test]
fn a_placeholder_directory_stays_a_placeholder() {
    let created = BTreeMap::from([(p(r"C:\Work\.git\info"), true), (p(r"C:\Work\.envrc"), false)]);
    // The policy crate now sees .git\info as a directory on the way to a new placeholder.
    let items = vec![
        pin(r"C:\Work\.git"),
        pin(r"C:\Work\.git\info"),
        placeholder(r"C:\Work\.git\info\attributes", false),
        ro_file(r"C:\Work\.envrc"),
    ];
    assert_eq!(
        stabilize_items(items, &created),
        [pin(r"C:\Work\.git"), ro_dir(r"C:\Work\.git\info"), ro_file(r"C:\Work\.envrc")]
    );
    // An empty `.git\modules` placeholder: pinned with nothing beneath.
    let created = BTreeMap::from([(p(r"C:\Work\.git\modules"), true)]);
    assert_eq!(stabilize_items(vec![pin(r"C:\Work\.git\modules")], &created), [ro_dir(r"C:\Work\.git\modules")]);
}

#[test]
fn a_placeholder_filled_from_outside_follows_the_policy_crate() {
    let created = BTreeMap::from([(p(r"C:\Work\.git\modules"), true)]);
    let items = vec![
        pin(r"C:\Work\.git\modules"),
        pin(r"C:\Work\.git\modules\sub"),
        ro_dir(r"C:\Work\.git\modules\sub\hooks"),
        ro_file(r"C:\Work\.git\modules\sub\config"),
    ];
    assert_eq!(stabilize_items(items.clone(), &created), items);
}

#[test]
fn directories_palisade_did_not_create_are_left_alone() {
    let items = vec![pin(r"C:\Work\.git"), placeholder(r"C:\Work\.git\hooks", true)];
    assert_eq!(stabilize_items(items.clone(), &BTreeMap::new()), items);
}

#[test]
fn placeholders_are_recorded_before_creation_and_removed_at_cleanup_deepest_first() {
    let mut w = work();
    w.protected.push(placeholder(r"C:\Work\.vscode", true));
    w.protected.push(placeholder(r"C:\Work\.git\info", true));
    let d = desired("s1", &[w]);
    let mut rec = RecordedAcl::new();
    let changes = plan(&d, &rec);
    rec.begin(&changes);
    assert_eq!(rec.placeholders.len(), 2);
    rec.commit(&d);
    let json = rec.to_json();
    assert!(json.contains(r#""placeholders": ["#), "{json}");
    let back = RecordedAcl::from_json(&json).unwrap();
    assert_eq!(back, rec);
    // Records from before placeholders were tracked still load.
    let mut old = serde_json::to_value(&rec).unwrap();
    old.as_object_mut().unwrap().remove("placeholders");
    assert!(RecordedAcl::from_json(&old.to_string()).unwrap().placeholders.is_empty());

    let cleanup = cleanup_plan(&rec);
    let tail: Vec<String> = cleanup.iter().rev().take(2).rev().map(|c| c.to_string()).collect();
    assert_eq!(
        tail,
        [
            r"remove placeholder directory C:\Work\.vscode if empty",
            r"remove placeholder directory C:\Work\.git\info if empty"
        ]
    );
    // A placeholder that could not be removed stays recorded.
    let failed = vec![AclChange::RemovePlaceholder { path: p(r"C:\Work\.vscode"), dir: true }];
    rec.after_cleanup(&failed);
    assert!(rec.entries.is_empty());
    assert_eq!(rec.placeholders.len(), 1);
    assert!(!rec.is_empty());
}

fn account() -> Creator {
    Creator::SandboxAccount {
        group: Sid::parse("S-1-5-21-1-2-3-1010").unwrap(),
        user: Sid::parse("S-1-5-21-1-2-3-1001").unwrap(),
    }
}

/// The elevated mode's holder for one root: its grant and the ownership ACEs.
fn account_desired(holder: &str) -> DesiredAcl {
    let mut d = desired(holder, &[work()]);
    d.aces.extend(ownership_aces(&p(r"C:\Work"), &account()));
    d
}

#[test]
fn ownership_aces_only_where_a_sandbox_account_creates_files() {
    assert_eq!(ownership_aces(&p(r"C:\Work"), &Creator::CallingUser), vec![]);
    let aces = ownership_aces(&p(r"C:\Work"), &account());
    let shown: Vec<String> = aces.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        shown,
        [
            r"C:\Work: allow S-1-3-4 FILE_READ_ATTRIBUTES (OI,CI,IO)",
            r"C:\Work: deny S-1-5-21-1-2-3-1010 WRITE_DAC|WRITE_OWNER (OI,CI)",
            r"C:\Work: allow S-1-5-21-1-2-3-1001 READ_CONTROL|WRITE_DAC|WRITE_OWNER (OI,CI,IO)",
        ]
    );
}

#[test]
fn owning_a_file_gives_the_sandbox_account_nothing() {
    use crate::ace::rights::*;
    // No right that writes, and none that reads the security descriptor either.
    assert_eq!(OWNER_RIGHTS_MASK & (WRITE_LIKE | FILE_GENERIC_WRITE | READ_CONTROL), 0);
    assert_ne!(OWNER_RIGHTS_MASK, 0, "an empty entry may be dropped by tools that rewrite the DACL");
    // The group's grant never carried permission changes; the deny covers what CREATOR
    // OWNER entries would give.
    assert_eq!(MODIFY & GROUP_PERMISSION_DENY, 0);
    assert_eq!(GROUP_PERMISSION_DENY, WRITE_DAC | WRITE_OWNER);
    assert_eq!(USER_OWNERSHIP_MASK & WRITE_OWNER, WRITE_OWNER);
}

#[test]
fn owner_rights_goes_on_last_and_comes_off_first() {
    let d = account_desired("account:c:\\work");
    let mut rec = RecordedAcl::new();
    let changes = run(&d, &mut rec);
    let owner_rights = |c: &AclChange| matches!(c, AclChange::Add { ace, .. } | AclChange::Remove { ace, .. } if ace.trustee.as_str() == "S-1-3-4");
    let user = |c: &AclChange| matches!(c, AclChange::Add { ace, .. } | AclChange::Remove { ace, .. } if ace.trustee.as_str() == "S-1-5-21-1-2-3-1001");
    let o = changes.iter().position(owner_rights).unwrap();
    assert_eq!(o, changes.len() - 1, "{changes:#?}");
    assert!(changes.iter().position(user).unwrap() < o);
    let deny = changes
        .iter()
        .position(|c| matches!(c, AclChange::Add { ace, .. } if ace.kind == AceKind::Deny && ace.mask == GROUP_PERMISSION_DENY))
        .unwrap();
    assert!(deny < o);

    // Unchanged policy: nothing to apply.
    assert_eq!(plan(&account_desired("account:c:\\work"), &rec), vec![]);

    // Cleanup (and a holder leaving) removes them, OWNER RIGHTS before the user's grant.
    for removal in [cleanup_plan(&rec), plan(&DesiredAcl::empty("account:c:\\work"), &rec)] {
        let o = removal.iter().position(owner_rights).unwrap();
        let u = removal.iter().position(user).unwrap();
        assert!(o < u, "{removal:#?}");
        // Grants come off before denies: nothing is removed ahead of OWNER RIGHTS but
        // (other holders' absent) nothing at all.
        assert_eq!(o, 0, "{removal:#?}");
        assert_eq!(removal.iter().filter(|c| matches!(c, AclChange::Remove { .. })).count(), d.aces.len());
    }
}

#[test]
fn from_policy_actions() {
    let actions = vec![
        Action::Pin(r"C:\Work\.git".into()),
        Action::ReadOnly(r"C:\Work\.git\hooks".into()),
        Action::ReadOnly(r"C:\Work\.git\config".into()),
        Action::Placeholder { path: r"C:\Work\.vscode".into(), dir: true },
    ];
    let items = protected_items(&actions, |p| p.file_name() == Some("hooks")).unwrap();
    assert_eq!(
        items,
        [
            pin(r"C:\Work\.git"),
            ro_dir(r"C:\Work\.git\hooks"),
            ro_file(r"C:\Work\.git\config"),
            placeholder(r"C:\Work\.vscode", true),
        ]
    );
    assert!(protected_items(&[Action::Pin("relative".into())], |_| false).is_err());
}

/// Found by the access-check model (tests/access_model): the outer root's inherited grant gave
/// `DELETE` on a nested root and on the folders between the two roots, so a command could
/// rename the nested root away (`mv sub sub-old`), taking its protected paths with it, and make
/// a fresh `sub\.git\hooks` under the old name.
#[test]
fn a_nested_root_and_the_folders_above_it_are_pinned_for_the_outer_root() {
    let outer = RootSpec { root: p(r"C:\Work"), sid: wsid(1), protected: vec![] };
    let inner = RootSpec {
        root: p(r"C:\Work\lib\sub"),
        sid: wsid(2),
        protected: vec![pin(r"C:\Work\lib\sub\.git"), ro_dir(r"C:\Work\lib\sub\.git\hooks")],
    };
    let d = desired("s1", &[outer.clone(), inner.clone()]);
    for (path, parent) in [(r"C:\Work\lib\sub", r"C:\Work\lib"), (r"C:\Work\lib", r"C:\Work")] {
        assert!(d.aces.contains(&PathAce { path: p(path), ace: Ace::deny(wsid(1), PIN_DENY, THIS_OBJECT_ONLY) }));
        assert!(d
            .aces
            .contains(&PathAce { path: p(parent), ace: Ace::deny(wsid(1), FILE_DELETE_CHILD, THIS_OBJECT_ONLY) }));
    }
    // Only the outer root's SID: its grant is the one that reaches these folders.
    assert!(!d.aces.iter().any(|a| a.ace.trustee == wsid(2)
        && a.ace.mask == PIN_DENY
        && !a.path.is_beneath(&p(r"C:\Work\lib\sub\.git"))));
    // Roots side by side pin nothing.
    let apart = RootSpec { root: p(r"D:\cache"), ..inner };
    assert!(!desired("s1", &[outer, apart]).aces.iter().any(|a| a.ace.mask == PIN_DENY));
}
