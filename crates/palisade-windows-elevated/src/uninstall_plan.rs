//! Uninstall: the undo of every record, newest first, checked against the machine.
//!
//! Works from any prefix of a setup's records (an interrupted setup leaves pending records):
//! a record whose object is present gets its undo step; a record whose object is absent is
//! reported in [`UninstallPlan::not_found`] (for a pending record that simply means setup stopped
//! before making it). Things that look like Palisade's but have no record are reported in
//! [`UninstallPlan::unrecorded`] and left alone: uninstall removes exactly what was recorded.
//!
//! The executor carries the steps out in order and forgets each record once its step succeeded;
//! the records file itself (`state.json`) is deleted just before the last step removes
//! Palisade's folder.

use serde::Serialize;

use crate::ace::AceSpec;
use crate::facts::{AccountRight, MachineFacts, SandboxUser, GROUP_NAME};
use crate::firewall::RULE_PREFIX;
use crate::records::{wfp_kind_name, Record, StateRecords, WfpKind, STATE_FILE_NAME};
use crate::setup_plan::Executor;
use crate::sid::Sid;
use crate::winpath::{fold, WinPath};

/// How one recorded thing is removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum UndoAction {
    DeleteMarker {
        path: WinPath,
    },
    DeleteFile {
        path: WinPath,
    },
    /// Remove the folder if it is empty (after the records file, for Palisade's own folder).
    RemoveDirectoryIfEmpty {
        path: WinPath,
    },
    /// Remove exactly this ACE from the path's DACL.
    RemoveAce {
        path: WinPath,
        ace: AceSpec,
    },
    DeleteWfpObject {
        wfp: WfpKind,
        key: String,
        name: String,
    },
    DeleteFirewallRule {
        name: String,
    },
    /// (Invoker) delete the DPAPI blob.
    DeleteCredential {
        user: SandboxUser,
        path: WinPath,
    },
    /// `LsaRemoveAccountRights` for these rights only.
    RemoveAccountRights {
        sid: Sid,
        rights: Vec<AccountRight>,
    },
    UnhideFromSignIn {
        name: String,
    },
    RemoveFromGroup {
        member: Sid,
        group: Sid,
    },
    /// `DeleteProfileW` for the account's profile.
    DeleteProfile {
        sid: Sid,
        path: WinPath,
    },
    DeleteUser {
        name: String,
        sid: Sid,
    },
    DeleteGroup {
        name: String,
        sid: Sid,
    },
}

impl UndoAction {
    pub fn executor(&self) -> Executor {
        match self {
            UndoAction::DeleteCredential { .. } => Executor::Invoker,
            _ => Executor::Elevated,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            UndoAction::DeleteMarker { path } => format!("delete the setup marker {path}"),
            UndoAction::DeleteFile { path } => format!("delete {path}"),
            UndoAction::RemoveDirectoryIfEmpty { path } => format!("remove the folder {path} if empty"),
            UndoAction::RemoveAce { path, ace } => format!("remove the access entry for {} from {path}", ace.trustee),
            UndoAction::DeleteWfpObject { wfp, name, .. } => format!("delete the WFP {} `{name}`", wfp_kind_name(*wfp)),
            UndoAction::DeleteFirewallRule { name } => format!("delete the firewall rule `{name}`"),
            UndoAction::DeleteCredential { user, path } => {
                format!("delete the stored password of {} ({path})", user.account_name())
            }
            UndoAction::RemoveAccountRights { sid, rights } => {
                let r: Vec<&str> = rights.iter().map(|r| r.as_str()).collect();
                format!("remove {} from {sid}", r.join(", "))
            }
            UndoAction::UnhideFromSignIn { name } => format!("delete the SpecialAccounts\\UserList value {name}"),
            UndoAction::RemoveFromGroup { member, group } => format!("remove {member} from {group}"),
            UndoAction::DeleteProfile { path, .. } => format!("delete the profile {path}"),
            UndoAction::DeleteUser { name, .. } => format!("delete the account {name}"),
            UndoAction::DeleteGroup { name, .. } => format!("delete the group {name}"),
        }
    }
}

/// One step of the uninstall.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UndoStep {
    pub id: String,
    pub description: String,
    pub executor: Executor,
    pub action: UndoAction,
    /// The record to forget once the step succeeded (`None` for a profile found by SID).
    pub record: Option<Record>,
}

/// A record whose object is not on the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotFound {
    pub record: Record,
    /// The record was still pending (setup stopped around this step).
    pub pending: bool,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UninstallPlan {
    pub steps: Vec<UndoStep>,
    pub not_found: Vec<NotFound>,
    /// Palisade-looking things without a record (left in place).
    pub unrecorded: Vec<String>,
    /// Entries that will keep a recorded folder from being removed.
    pub leftovers: Vec<WinPath>,
}

impl UninstallPlan {
    /// Lines for the person running uninstall.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.steps.iter().map(|s| format!("[todo] {}", s.description)).collect();
        out.extend(self.not_found.iter().map(|n| format!("[gone] {}: {}", n.record.describe(), n.detail)));
        out.extend(self.unrecorded.iter().map(|u| format!("[kept] {u}: not recorded by setup, left in place")));
        out.extend(self.leftovers.iter().map(|p| format!("[kept] {p}: not made by Palisade, so its folder stays")));
        out
    }
}

/// Plans the removal of everything `records` lists.
pub fn uninstall_plan(records: &StateRecords, facts: &MachineFacts) -> UninstallPlan {
    let mut plan =
        UninstallPlan { steps: Vec::new(), not_found: Vec::new(), unrecorded: Vec::new(), leftovers: Vec::new() };
    let recorded_profiles: Vec<Sid> = records
        .entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::ProfileCreated { sid, .. } => Some(sid.clone()),
            _ => None,
        })
        .collect();
    for e in records.entries.iter().rev() {
        let r = &e.record;
        let mut missing = |detail: &str| {
            plan.not_found.push(NotFound { record: r.clone(), pending: !e.done, detail: detail.to_string() });
        };
        let mut actions = Vec::new();
        match r {
            Record::MarkerWritten { path, .. } => match &facts.marker {
                Some(m) if &m.path == path => actions.push(UndoAction::DeleteMarker { path: path.clone() }),
                _ => missing("no marker there"),
            },
            Record::FileWritten { path } => match facts.file(path) {
                Some(_) => actions.push(UndoAction::DeleteFile { path: path.clone() }),
                None => missing("no such file"),
            },
            Record::DirectoryCreated { path } => match facts.directory(path) {
                Some(d) => {
                    let expected = expected_entries(records, path);
                    for name in &d.entries {
                        if !expected.contains(&fold(name)) {
                            if let Ok(p) = path.join(name) {
                                plan.leftovers.push(p);
                            }
                        }
                    }
                    actions.push(UndoAction::RemoveDirectoryIfEmpty { path: path.clone() });
                }
                None => missing("no such folder"),
            },
            Record::AceAdded { path, ace } => {
                if facts.has_ace(path, ace) {
                    actions.push(UndoAction::RemoveAce { path: path.clone(), ace: ace.clone() });
                } else {
                    missing("the access entry is not there (or the path is gone)");
                }
            }
            Record::WfpAdded { wfp, key, name } => {
                if facts.wfp_key_present(key) {
                    actions.push(UndoAction::DeleteWfpObject { wfp: *wfp, key: key.clone(), name: name.clone() });
                } else {
                    missing("no WFP object with that key");
                }
            }
            Record::FirewallRuleAdded { name } => match facts.rule(name) {
                Some(_) => actions.push(UndoAction::DeleteFirewallRule { name: name.clone() }),
                None => missing("no firewall rule of that name"),
            },
            Record::CredentialStored { user, path } => {
                if facts.credentials.iter().any(|c| &c.path == path) {
                    actions.push(UndoAction::DeleteCredential { user: *user, path: path.clone() });
                } else {
                    missing("no stored password there");
                }
            }
            Record::RightsAdded { sid, rights, .. } => {
                let held = facts.rights_of(sid);
                let present: Vec<AccountRight> = rights.iter().copied().filter(|r| held.contains(r)).collect();
                if present.is_empty() {
                    missing("the account holds none of these rights");
                } else {
                    actions.push(UndoAction::RemoveAccountRights { sid: sid.clone(), rights: present });
                }
            }
            Record::HiddenFromSignIn { name } => {
                if facts.is_hidden(name) {
                    actions.push(UndoAction::UnhideFromSignIn { name: name.clone() });
                } else {
                    missing("no such value");
                }
            }
            Record::AddedToGroup { member, group, .. } => {
                let is_member = facts.groups.iter().any(|g| &g.sid == group && g.members.contains(member));
                if is_member {
                    actions.push(UndoAction::RemoveFromGroup { member: member.clone(), group: group.clone() });
                } else {
                    missing("not a member (or the account or group is gone)");
                }
            }
            Record::ProfileCreated { sid, path, .. } => {
                if facts.profiles.iter().any(|p| &p.sid == sid) {
                    actions.push(UndoAction::DeleteProfile { sid: sid.clone(), path: path.clone() });
                } else {
                    missing("no profile for that SID");
                }
            }
            Record::UserCreated { name, sid, .. } => {
                let found = match sid {
                    Some(s) => facts.users.iter().find(|u| &u.sid == s),
                    // Setup stopped between creating the account and recording its SID.
                    None => facts.user(name),
                };
                match found {
                    Some(u) => {
                        // Its profile goes with it, recorded by a run or not.
                        if !recorded_profiles.contains(&u.sid) {
                            if let Some(p) = facts.profiles.iter().find(|p| p.sid == u.sid) {
                                actions.push(UndoAction::DeleteProfile { sid: p.sid.clone(), path: p.path.clone() });
                            }
                        }
                        actions.push(UndoAction::DeleteUser { name: u.name.clone(), sid: u.sid.clone() });
                    }
                    None => missing("no such account (or one of that name with another SID)"),
                }
            }
            Record::GroupCreated { name, sid } => {
                let found = match sid {
                    Some(s) => facts.groups.iter().find(|g| &g.sid == s),
                    None => facts.group(name),
                };
                match found {
                    Some(g) => actions.push(UndoAction::DeleteGroup { name: g.name.clone(), sid: g.sid.clone() }),
                    None => missing("no such group (or one of that name with another SID)"),
                }
            }
        }
        for a in actions {
            let record = match a {
                UndoAction::DeleteProfile { .. } if !matches!(r, Record::ProfileCreated { .. }) => None,
                _ => Some(r.clone()),
            };
            plan.steps.push(UndoStep {
                id: format!("undo:{}", r.describe()),
                description: a.describe(),
                executor: a.executor(),
                action: a,
                record,
            });
        }
    }
    plan.unrecorded = unrecorded(records, facts);
    plan
}

/// Names inside `dir` that Palisade recorded (files, folders), plus the records file.
fn expected_entries(records: &StateRecords, dir: &WinPath) -> Vec<String> {
    let mut out = vec![fold(STATE_FILE_NAME)];
    for e in &records.entries {
        let p = match &e.record {
            Record::FileWritten { path } | Record::DirectoryCreated { path } | Record::MarkerWritten { path, .. } => {
                path
            }
            _ => continue,
        };
        if p.parent().as_ref() == Some(dir) {
            out.extend(p.file_name().map(fold));
        }
    }
    out
}

fn unrecorded(records: &StateRecords, facts: &MachineFacts) -> Vec<String> {
    let has = |pred: &dyn Fn(&Record) -> bool| records.entries.iter().any(|e| pred(&e.record));
    let mut out = Vec::new();
    for r in &facts.firewall.rules {
        if r.name.starts_with(RULE_PREFIX)
            && !has(&|x| matches!(x, Record::FirewallRuleAdded { name } if *name == r.name))
        {
            out.push(format!("firewall rule `{}`", r.name));
        }
    }
    for o in &facts.firewall.wfp {
        if !has(&|x| matches!(x, Record::WfpAdded { key, .. } if key == o.key())) {
            out.push(format!("WFP object `{}` {}", o.name(), o.key()));
        }
    }
    for u in SandboxUser::ALL {
        if let Some(x) = facts.sandbox_user(u) {
            let recorded = has(&|r| match r {
                Record::UserCreated { sid: Some(s), .. } => *s == x.sid,
                Record::UserCreated { sid: None, name, .. } => fold(name) == fold(&x.name),
                _ => false,
            });
            if !recorded {
                out.push(format!("local account {} ({})", x.name, x.sid));
            }
        }
        if facts.is_hidden(u.account_name())
            && !has(&|r| matches!(r, Record::HiddenFromSignIn { name } if fold(name) == fold(u.account_name())))
        {
            out.push(format!("sign-in screen entry hiding {}", u.account_name()));
        }
    }
    if let Some(g) = facts.sandbox_group() {
        let recorded = has(&|r| match r {
            Record::GroupCreated { sid: Some(s), .. } => *s == g.sid,
            Record::GroupCreated { sid: None, name, .. } => fold(name) == fold(&g.name),
            _ => false,
        });
        if !recorded {
            out.push(format!("local group {GROUP_NAME} ({})", g.sid));
        }
    }
    if let Some(m) = &facts.marker {
        if !has(&|r| matches!(r, Record::MarkerWritten { path, .. } if *path == m.path)) {
            out.push(format!("setup marker {}", m.path));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{GroupFact, ProfileFact};
    use crate::firewall::InstalledRule;
    use crate::setup_plan::setup_plan;
    use crate::testkit::*;

    fn installed() -> Machine {
        let mut m = Machine::new(fresh_facts());
        let plan = setup_plan(&inputs(), &m.facts, &m.records).unwrap();
        m.run(&plan, None);
        m
    }

    #[test]
    fn uninstall_after_full_setup_restores_the_machine() {
        let mut m = installed();
        // A run created the offline account's profile.
        let offline = m.facts.sandbox_user(SandboxUser::Offline).unwrap().sid.clone();
        m.facts.profiles.push(ProfileFact { sid: offline.clone(), path: p("C:\\Users\\PalisadeOffline") });
        let plan = uninstall_plan(&m.records, &m.facts);
        assert!(plan.not_found.is_empty(), "{:?}", plan.not_found);
        assert!(plan.unrecorded.is_empty() && plan.leftovers.is_empty());
        let kinds: Vec<&str> = plan
            .steps
            .iter()
            .map(|s| match s.action {
                UndoAction::DeleteMarker { .. } => "marker",
                UndoAction::DeleteFile { .. } => "file",
                UndoAction::RemoveDirectoryIfEmpty { .. } => "dir",
                UndoAction::RemoveAce { .. } => "ace",
                UndoAction::DeleteWfpObject { .. } => "wfp",
                UndoAction::DeleteFirewallRule { .. } => "rule",
                UndoAction::DeleteCredential { .. } => "credential",
                UndoAction::RemoveAccountRights { .. } => "rights",
                UndoAction::UnhideFromSignIn { .. } => "hidden",
                UndoAction::RemoveFromGroup { .. } => "member",
                UndoAction::DeleteProfile { .. } => "profile",
                UndoAction::DeleteUser { .. } => "user",
                UndoAction::DeleteGroup { .. } => "group",
            })
            .collect();
        assert_eq!(kinds[0], "marker");
        let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
        // Per account: its rights and profile go before it does.
        for (i, s) in plan.steps.iter().enumerate() {
            if let UndoAction::DeleteUser { sid, .. } = &s.action {
                let before = |pred: &dyn Fn(&UndoAction) -> bool| plan.steps[..i].iter().any(|x| pred(&x.action));
                assert!(before(&|a| matches!(a, UndoAction::RemoveAccountRights { sid: x, .. } if x == sid)));
                assert!(before(&|a| matches!(a, UndoAction::RemoveFromGroup { member, .. } if member == sid)));
                assert_eq!(
                    before(&|a| matches!(a, UndoAction::DeleteProfile { sid: x, .. } if x == sid)),
                    *sid == offline
                );
            }
        }
        assert!(pos("user") < pos("group"));
        assert!(pos("ace") < pos("group") && pos("wfp") < pos("user"));
        assert_eq!(&kinds[kinds.len() - 5..], ["dir", "dir", "credential", "credential", "credential"]);
        // The credentials are the CLI's to delete; everything else is elevated.
        assert!(plan.steps.iter().all(|s| (s.executor == Executor::Invoker)
            == (kinds[plan.steps.iter().position(|x| x == s).unwrap()] == "credential")));
        // Filters before the sublayer before the provider.
        let wfp: Vec<&str> = plan
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                UndoAction::DeleteWfpObject { wfp, .. } => Some(wfp_kind_name(*wfp)),
                _ => None,
            })
            .collect();
        assert_eq!(wfp, ["filter", "filter", "filter", "filter", "filter", "filter", "sublayer", "provider"]);
        m.uninstall(&plan);
        assert_eq!(normalized(&m.facts), normalized(&fresh_facts()));
        assert!(m.records.entries.is_empty());
        // Nothing left to do the second time.
        let again = uninstall_plan(&m.records, &m.facts);
        assert!(again.steps.is_empty() && again.not_found.is_empty() && again.unrecorded.is_empty());
        assert!(plan.lines().iter().all(|l| !l.contains('\n')));
    }

    #[test]
    fn interrupted_setup_uninstalls_from_a_partial_record() {
        let pending =
            setup_plan(&inputs(), &fresh_facts(), &crate::records::StateRecords::new()).unwrap().pending().count();
        for n in 0..pending {
            for cut in [Cut::BeforeAction, Cut::AfterAction] {
                let mut m = Machine::new(fresh_facts());
                let plan = setup_plan(&inputs(), &m.facts, &m.records).unwrap();
                assert!(m.run(&plan, Some((n, cut))));
                let un = uninstall_plan(&m.records, &m.facts);
                assert!(un.unrecorded.is_empty(), "{n} {cut:?}: {:?}", un.unrecorded);
                // Only the step that was cut short can be missing, and only before its action.
                match cut {
                    Cut::BeforeAction => {
                        assert!(un.not_found.len() <= 1, "{n}: {:?}", un.not_found);
                        assert!(un.not_found.iter().all(|x| x.pending));
                    }
                    Cut::AfterAction => assert!(un.not_found.is_empty(), "{n}: {:?}", un.not_found),
                }
                m.uninstall(&un);
                assert_eq!(normalized(&m.facts), normalized(&fresh_facts()), "stopped at pending step {n} {cut:?}");
                assert!(m.records.entries.iter().all(|e| !e.done), "only records of missing things remain");
            }
        }
    }

    #[test]
    fn what_setup_did_not_make_is_left_alone() {
        // The group existed before setup: setup uses it, uninstall keeps it.
        let mut f = fresh_facts();
        let g = sid("S-1-5-21-100-200-300-4000");
        f.groups.push(GroupFact { name: "PalisadeSandboxUsers".into(), sid: g.clone(), members: vec![] });
        let mut m = Machine::new(f);
        let plan = setup_plan(&inputs(), &m.facts, &m.records).unwrap();
        assert!(plan.step("group.create").unwrap().satisfied);
        m.run(&plan, None);
        let un = uninstall_plan(&m.records, &m.facts);
        assert!(!un.steps.iter().any(|s| matches!(s.action, UndoAction::DeleteGroup { .. })));
        assert_eq!(un.unrecorded, [format!("local group PalisadeSandboxUsers ({g})")]);
        m.uninstall(&un);
        assert!(m.facts.sandbox_group().is_some_and(|x| x.members.is_empty()));

        // A rule named like Palisade's that setup never recorded, and a foreign file in
        // Palisade's folder.
        let mut m = installed();
        m.facts.firewall.rules.push(InstalledRule {
            name: "Palisade hand-made".into(),
            grouping: "Palisade".into(),
            description: String::new(),
            direction: crate::firewall::Direction::Outbound,
            block: true,
            protocol: None,
            remote_addresses: vec![],
            local_user_authorized_list: String::new(),
            all_profiles: true,
            enabled: true,
        });
        m.facts
            .directories
            .iter_mut()
            .find(|d| d.path.as_str() == "C:\\ProgramData\\Palisade")
            .unwrap()
            .entries
            .push("notes.txt".into());
        let un = uninstall_plan(&m.records, &m.facts);
        assert_eq!(un.unrecorded, ["firewall rule `Palisade hand-made`"]);
        assert_eq!(un.leftovers, [p("C:\\ProgramData\\Palisade\\notes.txt")]);
        m.uninstall(&un);
        assert!(m.facts.directory(&p("C:\\ProgramData\\Palisade")).is_some());
        assert!(m.facts.rule("Palisade hand-made").is_some());
    }

    #[test]
    fn things_removed_by_hand_are_reported_not_found() {
        let mut m = installed();
        m.facts.firewall.rules.clear();
        m.facts.aces.retain(|a| !a.path.as_str().ends_with("Documents"));
        let un = uninstall_plan(&m.records, &m.facts);
        assert_eq!(un.not_found.len(), 9);
        assert!(un.not_found.iter().all(|n| !n.pending));
        assert!(un.lines().iter().any(|l| l.starts_with(
            "[gone] firewall rule `Palisade offline: block outbound IPv4`: no firewall rule of that name"
        )));
        m.uninstall(&un);
        assert_eq!(normalized(&m.facts), normalized(&fresh_facts()));
    }

    #[test]
    fn an_account_recreated_under_the_same_name_is_not_deleted() {
        let mut m = installed();
        let old = m.facts.sandbox_user(SandboxUser::Online).unwrap().sid.clone();
        let new = sid("S-1-5-21-100-200-300-5000");
        for u in m.facts.users.iter_mut().filter(|u| u.sid == old) {
            u.sid = new.clone();
        }
        let un = uninstall_plan(&m.records, &m.facts);
        assert!(!un.steps.iter().any(|s| matches!(&s.action, UndoAction::DeleteUser { sid, .. } if *sid == new)));
        assert!(un.unrecorded.iter().any(|u| u.contains("PalisadeOnline")));
    }
}
