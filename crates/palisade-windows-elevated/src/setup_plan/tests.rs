//! Unit tests of the setup_plan module (kept in their own file so every file stays short).

use super::*;
use crate::ace::AceKind;
use crate::facts::{FirewallProfile, GroupFact, SystemFolderFact, UserFact};
use crate::testkit::*;

fn plan(facts: &MachineFacts) -> SetupPlan {
    setup_plan(&inputs(), facts, &StateRecords::new()).unwrap()
}

fn err(inputs: &SetupInputs, facts: &MachineFacts) -> SetupError {
    setup_plan(inputs, facts, &StateRecords::new()).unwrap_err()
}

fn grants(plan: &SetupPlan) -> Vec<(String, Rights, Inheritance)> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            StepAction::GrantAce { path, ace } => Some((path.to_string(), ace.rights, ace.inheritance)),
            _ => None,
        })
        .collect()
}

#[test]
fn fresh_machine_plan_fixture() {
    let plan = plan(&fresh_facts());
    let ids: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| !id.starts_with("acl:") && !id.starts_with("firewall:") && !id.starts_with("wfp:"))
        .collect();
    assert_eq!(
        ids,
        [
            "credential.offline.store",
            "credential.online.store",
            "credential.proxied.store",
            "dir.palisade",
            "dir.bin",
            "group.create",
            "user.offline.create",
            "user.offline.password",
            "user.offline.group",
            "user.offline.hide",
            "user.offline.rights",
            "user.online.create",
            "user.online.password",
            "user.online.group",
            "user.online.hide",
            "user.online.rights",
            "user.proxied.create",
            "user.proxied.password",
            "user.proxied.group",
            "user.proxied.hide",
            "user.proxied.rights",
            "wfp.provider",
            "wfp.sublayer",
            "acl.system.windows",
            "acl.system.program-files",
            "acl.system.program-files-x86",
            "acl.system.program-data",
            "file.runner",
            "file.gitconfig",
            "marker.write",
        ]
    );
    use Inheritance::*;
    use Rights::*;
    let g: Vec<(String, Rights, Inheritance)> = grants(&plan);
    let expect = |p: &str, r, i| (p.to_string(), r, i);
    assert_eq!(
        g,
        vec![
            expect("C:\\Users\\me", ListTraverse, None),
            expect("C:\\Users\\me\\.cargo", ListTraverse, None),
            expect("C:\\Users\\me\\.cargo\\bin", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\.cargo\\registry", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\.cargo\\config.toml", ReadExecute, None),
            expect("C:\\Users\\me\\.config", ListTraverse, None),
            expect("C:\\Users\\me\\.config\\git", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\.config\\nvim", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\.config\\starship.toml", ReadExecute, None),
            expect("C:\\Users\\me\\.vscode", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\.gitconfig", ReadExecute, None),
            expect("C:\\Users\\me\\Documents", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\scoop", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\src", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\AppData\\Local\\Programs", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\AppData\\Roaming\\nvm", ReadExecute, ContainerAndObject),
            expect("C:\\Users\\me\\AppData\\Roaming\\Python\\Python312\\Scripts", ReadExecute, ContainerAndObject),
            expect("C:\\ProgramData\\Palisade", ReadExecute, ContainerAndObject),
        ]
    );
    let not: Vec<String> = plan.not_granted.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(
        not,
        [
            "C:\\Users\\me\\.ssh",
            "C:\\Users\\me\\.aws",
            "C:\\Users\\me\\.cargo\\credentials.toml",
            "C:\\Users\\me\\.config\\gh",
            "C:\\Users\\me\\.npmrc",
            "C:\\Users\\me\\_netrc",
            "C:\\Users\\me\\AppData",
            "C:\\Users\\me\\Application Data",
            "C:\\Users\\me\\NTUSER.DAT",
            "C:\\Users\\me\\ntuser.dat.LOG1",
        ]
    );
    // Four firewall rules per fenced account; provider, sublayer, the offline account's two
    // blocks, the proxied account's two permits (one port) and two blocks.
    assert_eq!(plan.steps.iter().filter(|s| matches!(s.action, StepAction::AddFirewallRule(_))).count(), 8);
    assert_eq!(plan.steps.iter().filter(|s| matches!(s.action, StepAction::AddWfpObject(_))).count(), 8);
    assert!(plan.lines().iter().all(|l| l.starts_with("[todo] ") || l.starts_with("[done] acl.system.")));
}

#[test]
fn plan_invariants() {
    let inp = inputs();
    let plan = plan(&fresh_facts());
    let secrets = secrets_of(&inp.installer).unwrap();
    let mut ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(plan.steps.last().unwrap().id, "marker.write");
    for s in &plan.steps {
        assert_eq!(s.executor == Executor::Invoker, s.id.starts_with("credential."), "{}", s.id);
        assert!(!s.description.contains('\n'));
        if let StepAction::GrantAce { path, ace } = &s.action {
            assert_eq!(ace.kind, AceKind::Allow);
            assert!(!ace.rights.writes(), "setup never grants write: {path}");
            assert!(
                !(ace.inheritance == Inheritance::ContainerAndObject
                    && (path.is_drive_root() || *path == inp.installer.profile))
            );
            for sec in &secrets {
                assert!(!path.is_same_or_beneath(sec), "{path} exposes {sec}");
                if ace.inheritance == Inheritance::ContainerAndObject {
                    assert!(!sec.is_strictly_beneath(path), "{path} would inherit into {sec}");
                }
            }
            assert!(!crate::ace::is_hive(path));
            assert!(!path.is_same_or_beneath(&inp.installer.local_app_data.join("Palisade").unwrap()));
        }
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "step ids are unique");
}

#[test]
fn setup_is_idempotent() {
    let mut m = Machine::new(fresh_facts());
    let first = plan(&m.facts);
    assert!(!m.run(&first, None));
    let second = setup_plan(&inputs(), &m.facts, &m.records).unwrap();
    assert!(second.is_complete(), "{:#?}", second.pending().collect::<Vec<_>>());
    assert!(second.step("marker.invalidate").is_none());
    let before = normalized(&m.facts);
    assert!(!m.run(&second, None));
    assert_eq!(normalized(&m.facts), before);
    // Every record is complete and the kinds follow the plan's order.
    assert!(m.records.entries.iter().all(|e| e.done));
    let kinds = record_kinds(&m.records);
    assert_eq!(&kinds[..6], ["credential", "credential", "credential", "dir", "dir", "group"]);
    assert_eq!(kinds.last(), Some(&"marker"));
    assert_eq!(kinds.iter().filter(|k| **k == "user").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "rule").count(), 8);
    // Provider, sublayer, the offline account's two blocks, the proxied account's two permits
    // (port 8877, IPv4 and IPv6) and two blocks.
    assert_eq!(kinds.iter().filter(|k| **k == "wfp").count(), 8);
    assert_eq!(kinds.iter().filter(|k| **k == "ace").count(), 18);
    // The SIDs of created accounts were filled in.
    assert_eq!(m.records.created_sids().len(), 4);
}

#[test]
fn step_intents_match_their_undo() {
    let mut m = Machine::new(fresh_facts());
    let plan = plan(&m.facts);
    m.run(&plan, None);
    let sids = Sids::from_facts(&m.facts);
    for s in &plan.steps {
        let intent = s.intent(&sids).unwrap();
        let exempt = matches!(s.action, StepAction::RequireReadable { .. });
        if !exempt {
            assert_eq!(intent.is_some(), s.undo.is_some(), "{}", s.id);
        }
    }
}

#[test]
fn group_policy_override_is_refused() {
    let mut f = fresh_facts();
    f.firewall.profiles[1].local_rules_honored = false;
    let e = err(&inputs(), &f);
    assert_eq!(e.step, "firewall");
    assert_eq!(e.kind, SetupErrorKind::GroupPolicyOverridesLocalRules("private".into()));
    assert!(e
        .to_string()
        .starts_with("setup step `firewall`: Group Policy turns off local firewall rules for the private profile"));
    assert!(!e.to_string().contains('\n'));
    let mut f = fresh_facts();
    f.firewall.profiles[2].enabled = false;
    assert_eq!(err(&inputs(), &f).kind, SetupErrorKind::FirewallDisabled("public".into()));
    let mut f = fresh_facts();
    f.firewall.profiles.retain(|p| p.profile != FirewallProfile::Domain);
    assert!(matches!(err(&inputs(), &f).kind, SetupErrorKind::MissingFacts(_)));
}

#[test]
fn unsafe_existing_accounts_are_refused() {
    let user = |groups: Vec<Sid>, disabled| UserFact {
        name: "PalisadeOffline".into(),
        sid: sid("S-1-5-21-100-200-300-2000"),
        groups,
        disabled,
    };
    let mut f = fresh_facts();
    f.users.push(user(vec![Sid::users(), Sid::administrators()], false));
    let e = err(&inputs(), &f);
    assert_eq!(e.step, "user.offline.create");
    assert!(e.to_string().contains("privileged group S-1-5-32-544"), "{e}");
    let mut f = fresh_facts();
    f.users.push(user(vec![Sid::users()], true));
    assert!(err(&inputs(), &f).to_string().contains("disabled"));
    let mut f = fresh_facts();
    f.users.push(user(vec![sid("S-1-5-21-100-200-300-513")], false));
    assert!(err(&inputs(), &f).to_string().contains("neither Users"));
    // An existing, clean account is adopted.
    let mut f = fresh_facts();
    f.users.push(user(vec![Sid::users()], false));
    let p = plan(&f);
    assert!(p.step("user.offline.create").unwrap().satisfied);
    assert!(!p.step("user.offline.password").unwrap().satisfied);
    // A group with a stranger in it would let the stranger read the profile.
    let mut f = fresh_facts();
    f.groups.push(GroupFact {
        name: GROUP_NAME.into(),
        sid: sid("S-1-5-21-100-200-300-3000"),
        members: vec![sid(INSTALLER_SID)],
    });
    let e = err(&inputs(), &f);
    assert_eq!(e.step, "group.create");
    assert!(matches!(e.kind, SetupErrorKind::GroupConflict(_)));
}

#[test]
fn a_folder_someone_else_made_is_refused() {
    let mut f = fresh_facts();
    f.directories.push(crate::facts::DirFact {
        path: p("C:\\ProgramData\\Palisade"),
        owner: sid(INSTALLER_SID),
        protected: false,
        explicit_aces: vec![],
        entries: vec!["evil.dll".into()],
    });
    let e = err(&inputs(), &f);
    assert_eq!(e.step, "dir.palisade");
    assert!(matches!(e.kind, SetupErrorKind::UntrustedDirectory { .. }));
    // Owned by Administrators but with a writable DACL: reset, and the group grant redone.
    let mut f = fresh_facts();
    f.directories.push(crate::facts::DirFact {
        path: p("C:\\ProgramData\\Palisade"),
        owner: Sid::administrators(),
        protected: false,
        explicit_aces: vec![AceSpec::allow(
            Trustee::Sid(Sid::users()),
            Rights::Modify,
            Inheritance::ContainerAndObject,
        )],
        entries: vec![],
    });
    let pl = plan(&f);
    let d = pl.step("dir.palisade").unwrap();
    assert!(!d.satisfied && d.undo.is_none());
    assert!(matches!(d.action, StepAction::CreateDirectory { existed: true, .. }));
}

#[test]
fn system_folders() {
    let mut f = fresh_facts();
    f.system_folders[0].readable_by.clear();
    let e = err(&inputs(), &f);
    assert_eq!(e.step, "acl.system.windows");
    assert!(matches!(e.kind, SetupErrorKind::SystemFolderUnreadable { .. }));
    let mut f = fresh_facts();
    f.system_folders[3].readable_by = vec![];
    let pl = plan(&f);
    let s = pl.step("acl.system.program-data").unwrap();
    assert!(matches!(&s.action, StepAction::GrantAce { ace, .. } if ace.rights == Rights::ReadExecute));
    assert!(!s.satisfied);
    let mut f = fresh_facts();
    f.system_folders.retain(|s| s.folder != SystemFolder::ProgramFiles);
    assert_eq!(err(&inputs(), &f).step, "acl.system.program-files");
    // Program Files (x86) is optional (ARM64 and 32-bit systems).
    let mut f = fresh_facts();
    f.system_folders.retain(|s| s.folder != SystemFolder::ProgramFilesX86);
    assert!(setup_plan(&inputs(), &f, &StateRecords::new()).is_ok());
    let _ = SystemFolderFact {
        folder: SystemFolder::Windows,
        path: p("C:\\Windows"),
        owner: Sid::system(),
        readable_by: vec![],
    };
}

#[test]
fn secrets_need_listings_and_tool_folders_stay_clear_of_them() {
    let mut inp = inputs();
    for e in inp.installer.profile_entries.iter_mut() {
        if e.name == ".config" {
            e.children = None;
        }
    }
    let e = err(&inp, &fresh_facts());
    assert_eq!(e.step, "acl:C:\\Users\\me\\.config");
    assert!(matches!(e.kind, SetupErrorKind::MissingListing { .. }));
    let mut inp = inputs();
    inp.installer.tool_folders.push(p("C:\\Users\\me\\AppData\\Roaming"));
    let e = err(&inp, &fresh_facts());
    assert!(matches!(e.kind, SetupErrorKind::ForbiddenGrant { .. }), "{e}");
    let mut inp = inputs();
    inp.installer.tool_folders.push(p("C:\\Users\\me\\AppData\\Roaming\\Microsoft\\Credentials\\x"));
    assert!(matches!(err(&inp, &fresh_facts()).kind, SetupErrorKind::ForbiddenGrant { .. }));
    let mut inp = inputs();
    inp.installer.tool_folders.push(p("C:\\Users\\other\\tools"));
    assert!(matches!(err(&inp, &fresh_facts()).kind, SetupErrorKind::InvalidInput(_)));
    // An extra secret deep in the tree turns its ancestors into list-only folders.
    let mut inp = inputs();
    inp.installer.extra_secrets.push("src\\client\\.env".into());
    assert!(matches!(err(&inp, &fresh_facts()).kind, SetupErrorKind::MissingListing { .. }));
    for e in inp.installer.profile_entries.iter_mut() {
        if e.name == "src" {
            e.children = Some(vec![
                ProfileEntry {
                    name: "client".into(),
                    kind: EntryKind::Directory,
                    children: Some(vec![
                        ProfileEntry { name: ".env".into(), kind: EntryKind::File, children: None },
                        ProfileEntry { name: "main.rs".into(), kind: EntryKind::File, children: None },
                    ]),
                },
                ProfileEntry { name: "server".into(), kind: EntryKind::Directory, children: None },
            ]);
        }
    }
    let pl = setup_plan(&inp, &fresh_facts(), &StateRecords::new()).unwrap();
    let g = grants(&pl);
    assert!(g.contains(&("C:\\Users\\me\\src".into(), Rights::ListTraverse, Inheritance::None)));
    assert!(g.contains(&("C:\\Users\\me\\src\\client".into(), Rights::ListTraverse, Inheritance::None)));
    assert!(g.contains(&("C:\\Users\\me\\src\\client\\main.rs".into(), Rights::ReadExecute, Inheritance::None)));
    assert!(g.contains(&("C:\\Users\\me\\src\\server".into(), Rights::ReadExecute, Inheritance::ContainerAndObject)));
    assert!(!g.iter().any(|(p, _, _)| p.ends_with(".env")));
}

#[test]
fn bad_inputs_are_refused() {
    let mut inp = inputs();
    inp.runner_sha256 = "xyz".into();
    assert_eq!(err(&inp, &fresh_facts()).step, "request");
    let mut inp = inputs();
    inp.installer.local_app_data = p("D:\\AppData");
    assert!(err(&inp, &fresh_facts()).to_string().contains("not inside the profile"));
    let mut inp = inputs();
    inp.installer.profile = p("C:\\");
    assert!(matches!(err(&inp, &fresh_facts()).kind, SetupErrorKind::InvalidInput(_)));
    let mut inp = inputs();
    inp.installer.extra_secrets.push("..\\other".into());
    assert!(matches!(err(&inp, &fresh_facts()).kind, SetupErrorKind::InvalidInput(_)));
    let mut inp = inputs();
    inp.proxy_ports = vec![0];
    assert!(matches!(err(&inp, &fresh_facts()).kind, SetupErrorKind::Fence(_)));
    let mut inp = inputs();
    inp.installer.profile_entries.push(ProfileEntry { name: "a\\b".into(), kind: EntryKind::File, children: None });
    assert!(matches!(err(&inp, &fresh_facts()).kind, SetupErrorKind::InvalidInput(_)));
}

#[test]
fn an_old_marker_is_invalidated_first_and_rewritten_last() {
    let mut m = Machine::new(fresh_facts());
    m.run(&plan(&m.facts), None);
    let mut inp = inputs();
    inp.setup_version += 1;
    let pl = setup_plan(&inp, &m.facts, &m.records).unwrap();
    let pending: Vec<&str> = pl.pending().map(|s| s.id.as_str()).collect();
    assert_eq!(pending, ["marker.invalidate", "marker.write"]);
    // When something else is pending, the marker goes before the first elevated step.
    let mut f = m.facts.clone();
    f.firewall.rules.pop();
    let pl = setup_plan(&inputs(), &f, &m.records).unwrap();
    let pending: Vec<&str> = pl.pending().map(|s| s.id.as_str()).collect();
    assert_eq!(pending, ["marker.invalidate", "firewall:Palisade proxied: block inbound IPv6", "marker.write"]);
    let first_elevated = pl.steps.iter().position(|s| s.executor == Executor::Elevated).unwrap();
    assert_eq!(pl.steps[first_elevated].id, "marker.invalidate");
}

#[test]
fn changed_inputs_remove_what_is_no_longer_wanted() {
    let mut m = Machine::new(fresh_facts());
    m.run(&plan(&m.facts), None);
    let mut inp = inputs();
    inp.proxy_ports = vec![9000];
    inp.installer.tool_folders.retain(|t| !t.as_str().ends_with("nvm"));
    let pl = setup_plan(&inp, &m.facts, &m.records).unwrap();
    let stale: Vec<&str> = pl.pending().filter(|s| s.id.starts_with("stale:")).map(|s| s.id.as_str()).collect();
    assert_eq!(
        stale,
        [
            "stale:WFP filter `Palisade proxied: permit loopback TCP 8877 IPv4`",
            "stale:WFP filter `Palisade proxied: permit loopback TCP 8877 IPv6`",
            "stale:access entry for S-1-5-21-100-200-300-1011 on C:\\Users\\me\\AppData\\Roaming\\nvm",
        ]
    );
    m.run(&pl, None);
    assert!(!m.facts.aces.iter().any(|a| a.path.as_str().ends_with("nvm")));
    assert!(!m
        .records
        .entries
        .iter()
        .any(|e| e.record.describe().contains("8877") || e.record.describe().ends_with("nvm")));
    assert_eq!(wfp_filters(&m.facts).len(), 6);
    assert_eq!(m.facts.marker.as_ref().unwrap().proxy_ports, [9000]);
    assert!(setup_plan(&inp, &m.facts, &m.records).unwrap().is_complete());
}

#[test]
fn only_the_proxied_account_reaches_the_proxy_ports() {
    let mut m = Machine::new(fresh_facts());
    let mut inp = inputs();
    inp.proxy_ports = vec![];
    m.run(&setup_plan(&inp, &m.facts, &m.records).unwrap(), None);
    let sids = Sids::from_facts(&m.facts);
    let (offline, proxied) = (sids.offline.unwrap(), sids.proxied.unwrap());
    let permits: Vec<(String, Option<u16>)> = m
        .facts
        .firewall
        .wfp
        .iter()
        .filter_map(|o| match o {
            WfpObject::Filter(f) if f.permit => Some((f.user_sddl.clone(), f.tcp_remote_port)),
            _ => None,
        })
        .collect();
    // No proxy port given: the defaults, for the proxied account only, and recorded in the marker.
    let mut expected = Vec::new();
    for _ in 0..2 {
        for p in crate::proxy_route::DEFAULT_PROXY_PORTS {
            expected.push((firewall::user_match_sddl(&proxied), Some(p)));
        }
    }
    assert_eq!(permits, expected);
    assert!(!permits.iter().any(|(sddl, _)| sddl.contains(offline.as_str())));
    assert_eq!(m.facts.marker.as_ref().unwrap().proxy_ports, crate::proxy_route::DEFAULT_PROXY_PORTS);
    // Each fenced account has its block-all filters; the online account has none.
    for sid in [&offline, &proxied] {
        let blocks = m.facts.firewall.wfp.iter().filter(
            |o| matches!(o, WfpObject::Filter(f) if !f.permit && f.user_sddl == firewall::user_match_sddl(sid)),
        );
        assert_eq!(blocks.count(), 2);
    }
    let online = sids.online.unwrap();
    assert!(!m
        .facts
        .firewall
        .wfp
        .iter()
        .any(|o| matches!(o, WfpObject::Filter(f) if f.user_sddl.contains(online.as_str()))));
}

#[test]
fn stored_credentials_that_log_on_are_kept() {
    let mut m = Machine::new(fresh_facts());
    m.run(&plan(&m.facts), None);
    let pl = setup_plan(&inputs(), &m.facts, &m.records).unwrap();
    assert!(pl.step("credential.offline.store").unwrap().satisfied);
    assert!(pl.step("user.offline.password").unwrap().satisfied);
    // The password stopped working (changed by hand): a new one is stored and set.
    m.facts.credentials[0].logon_ok = false;
    let pl = setup_plan(&inputs(), &m.facts, &m.records).unwrap();
    let pending: Vec<&str> = pl.pending().map(|s| s.id.as_str()).collect();
    assert_eq!(pending, ["credential.offline.store", "marker.invalidate", "user.offline.password", "marker.write"]);
}

#[test]
fn interrupted_setup_resumes_to_the_same_machine() {
    let mut full = Machine::new(fresh_facts());
    full.run(&plan(&full.facts), None);
    let expected = normalized(&full.facts);
    let pending = plan(&fresh_facts()).pending().count();
    for n in 0..pending {
        for cut in [Cut::BeforeAction, Cut::AfterAction] {
            let mut m = Machine::new(fresh_facts());
            assert!(m.run(&plan(&m.facts), Some((n, cut))));
            let again = setup_plan(&inputs(), &m.facts, &m.records).unwrap();
            assert!(!m.run(&again, None));
            assert_eq!(normalized(&m.facts), expected, "stopped at pending step {n} {cut:?}");
            assert!(setup_plan(&inputs(), &m.facts, &m.records).unwrap().is_complete());
            assert!(m.records.entries.iter().all(|e| e.done), "pending records left after {n} {cut:?}");
        }
    }
}

#[test]
fn files_and_marker_helpers() {
    let g = gitconfig_contents();
    assert!(g.contains("[safe]\n\tdirectory = *\n") && g.contains("sslBackend = openssl"));
    assert_eq!(parse_marker(&marker_contents(7, &[])), Some(7));
    assert_eq!(
        parse_marker_contents(&marker_contents(2, &[47_310, 9])),
        Some(Marker { version: 2, proxy_ports: vec![47_310, 9] })
    );
    // A version-1 marker (no ports) still reads.
    assert_eq!(
        parse_marker_contents("{\"palisade_elevated_setup\":1}"),
        Some(Marker { version: 1, proxy_ports: vec![] })
    );
    assert_eq!(parse_marker("{\"palisade_elevated_setup\":1,\"x\":2}"), None);
    assert_eq!(parse_marker("nope"), None);
    let l = Layout::new(&p("C:\\ProgramData"));
    assert_eq!(l.runner.as_str(), "C:\\ProgramData\\Palisade\\bin\\palisade-runner.exe");
    assert_eq!(l.state.as_str(), "C:\\ProgramData\\Palisade\\state.json");
    assert_eq!(
        credential_path(&p("C:\\Users\\me\\AppData\\Local"), SandboxUser::Online).as_str(),
        "C:\\Users\\me\\AppData\\Local\\Palisade\\credentials\\PalisadeOnline.dpapi"
    );
}
