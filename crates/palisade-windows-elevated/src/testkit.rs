//! Fixtures and a simulated machine for the plan tests.
//!
//! [`Machine`] is a model of what the setup and uninstall executors do to the OS, expressed on
//! [`MachineFacts`]: carrying out a step changes the facts the way the real call would. With it
//! the tests run setup, interrupt it anywhere, re-run it, uninstall, and compare the facts.

use crate::ace::AceSpec;
use crate::facts::*;
use crate::firewall::WfpObject;
use crate::records::{Origin, Record, StateRecords, STATE_FILE_NAME};
use crate::setup_plan::*;
use crate::sid::Sid;
use crate::uninstall_plan::{UndoAction, UninstallPlan};
use crate::winpath::WinPath;

pub fn p(s: &str) -> WinPath {
    WinPath::parse(s).unwrap()
}

pub fn sid(s: &str) -> Sid {
    Sid::parse(s).unwrap()
}

pub const INSTALLER_SID: &str = "S-1-5-21-100-200-300-1001";
pub const RUNNER_SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn dir(name: &str) -> ProfileEntry {
    ProfileEntry { name: name.into(), kind: EntryKind::Directory, children: None }
}
fn file(name: &str) -> ProfileEntry {
    ProfileEntry { name: name.into(), kind: EntryKind::File, children: None }
}

/// A typical developer profile.
pub fn profile_entries() -> Vec<ProfileEntry> {
    vec![
        dir(".ssh"),
        dir(".aws"),
        ProfileEntry {
            name: ".cargo".into(),
            kind: EntryKind::Directory,
            children: Some(vec![dir("bin"), dir("registry"), file("config.toml"), file("credentials.toml")]),
        },
        ProfileEntry {
            name: ".config".into(),
            kind: EntryKind::Directory,
            children: Some(vec![dir("gh"), dir("git"), dir("nvim"), file("starship.toml")]),
        },
        dir(".vscode"),
        file(".gitconfig"),
        file(".npmrc"),
        file("_netrc"),
        dir("AppData"),
        ProfileEntry { name: "Application Data".into(), kind: EntryKind::Link, children: None },
        dir("Documents"),
        dir("scoop"),
        dir("src"),
        file("NTUSER.DAT"),
        file("ntuser.dat.LOG1"),
    ]
}

pub fn inputs() -> SetupInputs {
    SetupInputs {
        setup_version: crate::SETUP_VERSION,
        installer: Installer {
            sid: sid(INSTALLER_SID),
            name: "me".into(),
            profile: p("C:\\Users\\me"),
            local_app_data: p("C:\\Users\\me\\AppData\\Local"),
            profile_entries: profile_entries(),
            tool_folders: vec![
                p("C:\\Users\\me\\AppData\\Local\\Programs"),
                p("C:\\Users\\me\\AppData\\Roaming\\nvm"),
                p("C:\\Users\\me\\AppData\\Roaming\\Python\\Python312\\Scripts"),
                p("C:\\Users\\me\\scoop\\shims"),
            ],
            extra_secrets: vec![],
        },
        program_data: p("C:\\ProgramData"),
        runner_source: p("C:\\Program Files\\Palisade\\palisade-runner.exe"),
        runner_sha256: RUNNER_SHA.into(),
        proxy_ports: vec![8877],
    }
}

/// A machine before setup: system folders readable by Users, firewall on with local rules.
pub fn fresh_facts() -> MachineFacts {
    let sys = |folder, path: &str, owner: Sid| SystemFolderFact {
        folder,
        path: p(path),
        owner,
        readable_by: vec![Sid::users()],
    };
    MachineFacts {
        firewall: FirewallFacts {
            profiles: FirewallProfile::ALL
                .iter()
                .map(|p| FirewallProfileFact { profile: *p, enabled: true, local_rules_honored: true })
                .collect(),
            ..Default::default()
        },
        system_folders: vec![
            sys(SystemFolder::Windows, "C:\\Windows", Sid::trusted_installer()),
            sys(SystemFolder::ProgramFiles, "C:\\Program Files", Sid::trusted_installer()),
            sys(SystemFolder::ProgramFilesX86, "C:\\Program Files (x86)", Sid::trusted_installer()),
            sys(SystemFolder::ProgramData, "C:\\ProgramData", Sid::system()),
        ],
        ..Default::default()
    }
}

/// Where an executor can be interrupted around a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// After the record was written ahead, before the action.
    BeforeAction,
    /// After the action, before the record was marked done.
    AfterAction,
}

/// The simulated machine plus the records the executor keeps.
#[derive(Clone, Debug)]
pub struct Machine {
    pub facts: MachineFacts,
    pub records: StateRecords,
    next_rid: u32,
}

impl Machine {
    pub fn new(facts: MachineFacts) -> Machine {
        Machine { facts, records: StateRecords::new(), next_rid: 1010 }
    }

    fn new_sid(&mut self) -> Sid {
        self.next_rid += 1;
        sid(&format!("S-1-5-21-100-200-300-{}", self.next_rid))
    }

    fn dir_entries(&mut self, path: &WinPath) -> Option<&mut Vec<String>> {
        let parent = path.parent()?;
        self.facts.directories.iter_mut().find(|d| d.path == parent).map(|d| &mut d.entries)
    }

    fn add_entry(&mut self, path: &WinPath) {
        let name = path.file_name().unwrap().to_string();
        if let Some(e) = self.dir_entries(path) {
            if !e.contains(&name) {
                e.push(name);
            }
        }
    }

    fn remove_entry(&mut self, path: &WinPath) {
        let name = path.file_name().unwrap().to_string();
        if let Some(e) = self.dir_entries(path) {
            e.retain(|n| *n != name);
        }
    }

    /// Runs a whole plan like the executors would, optionally stopping at pending step `stop`
    /// (counting pending steps from 0) at `cut`. Returns whether it stopped early.
    pub fn run(&mut self, plan: &SetupPlan, stop: Option<(usize, Cut)>) -> bool {
        let mut n = 0;
        for step in &plan.steps {
            if step.satisfied {
                let sid = step.created_sid(&Sids::from_facts(&self.facts));
                self.records.complete(&step.id, sid.as_ref());
                continue;
            }
            let sids = Sids::from_facts(&self.facts);
            if let Some(rec) = step.intent(&sids).expect("earlier steps created what this one names") {
                self.records.begin(&step.id, Origin::Setup, rec);
            }
            if stop == Some((n, Cut::BeforeAction)) {
                return true;
            }
            self.apply(step);
            if stop == Some((n, Cut::AfterAction)) {
                return true;
            }
            if let StepAction::RemoveStale(r) = &step.action {
                self.records.forget(r);
            }
            let sid = step.created_sid(&Sids::from_facts(&self.facts));
            self.records.complete(&step.id, sid.as_ref());
            n += 1;
        }
        false
    }

    /// Carries out one setup step.
    pub fn apply(&mut self, step: &Step) {
        let sids = Sids::from_facts(&self.facts);
        let f = &mut self.facts;
        match &step.action {
            StepAction::RemoveMarker { path } => {
                f.marker = None;
                f.files.retain(|x| &x.path != path);
                let path = path.clone();
                self.remove_entry(&path);
            }
            StepAction::StoreCredential { user, path } => {
                f.credentials.retain(|c| c.user != *user);
                f.credentials.push(CredentialFact {
                    user: *user,
                    path: path.clone(),
                    decryptable: true,
                    logon_ok: false,
                });
                // The new password is given to setup, which sets it; the credential logs on
                // once the account has it (see SetPassword/CreateUser).
            }
            StepAction::CreateDirectory { path, owner, protected, aces, .. } => {
                let aces: Vec<AceSpec> = aces.iter().map(|a| a.resolved(&sids).unwrap()).collect();
                let entries =
                    if path.file_name() == Some(PALISADE_DIR) { vec![STATE_FILE_NAME.to_string()] } else { vec![] };
                match f.directories.iter_mut().find(|d| &d.path == path) {
                    Some(d) => {
                        d.owner = owner.clone();
                        d.protected = *protected;
                        d.explicit_aces = aces;
                    }
                    None => f.directories.push(DirFact {
                        path: path.clone(),
                        owner: owner.clone(),
                        protected: *protected,
                        explicit_aces: aces,
                        entries,
                    }),
                }
                let path = path.clone();
                self.add_entry(&path);
            }
            StepAction::CreateGroup { name, .. } => {
                let s = self.new_sid();
                self.facts.groups.push(GroupFact { name: name.clone(), sid: s, members: vec![] });
            }
            StepAction::CreateUser { user, .. } => {
                let s = self.new_sid();
                self.facts.users.push(UserFact {
                    name: user.account_name().into(),
                    sid: s,
                    groups: vec![Sid::users()],
                    disabled: false,
                });
                self.password_set(*user);
            }
            StepAction::SetPassword { user } => self.password_set(*user),
            StepAction::AddToGroup { user } => {
                let (u, g) = (sids.user(*user).unwrap().clone(), sids.group.clone().unwrap());
                f.groups.iter_mut().find(|x| x.sid == g).unwrap().members.push(u.clone());
                f.users.iter_mut().find(|x| x.sid == u).unwrap().groups.push(g);
            }
            StepAction::HideFromSignIn { user } => f.hidden_accounts.push(user.account_name().into()),
            StepAction::AddAccountRights { user, rights } => {
                let s = sids.user(*user).unwrap().clone();
                match f.account_rights.iter_mut().find(|r| r.sid == s) {
                    Some(r) => r.rights.extend(rights.iter().filter(|x| !r.rights.contains(x)).collect::<Vec<_>>()),
                    None => f.account_rights.push(AccountRightsFact { sid: s, rights: rights.clone() }),
                }
            }
            StepAction::AddFirewallRule(r) => {
                f.firewall.rules.retain(|x| x.name != r.name);
                f.firewall.rules.push(r.render(sids.user(r.user).unwrap()));
            }
            StepAction::AddWfpObject(w) => {
                let o = w.render(&sids).unwrap();
                f.firewall.wfp.retain(|x| x.key() != o.key());
                f.firewall.wfp.push(o);
            }
            StepAction::RequireReadable { .. } => {}
            StepAction::GrantAce { path, ace } => {
                let ace = ace.resolved(&sids).unwrap();
                if let Some(d) = f.directories.iter_mut().find(|d| &d.path == path) {
                    d.explicit_aces.push(ace.clone());
                }
                f.aces.push(AceFact { path: path.clone(), ace });
            }
            StepAction::CopyFile { to, sha256, .. } => {
                f.files.retain(|x| &x.path != to);
                f.files.push(FileFact { path: to.clone(), sha256: sha256.clone(), text: None });
                let to = to.clone();
                self.add_entry(&to);
            }
            StepAction::WriteFile { path, contents } => {
                f.files.retain(|x| &x.path != path);
                f.files.push(FileFact { path: path.clone(), sha256: "f".repeat(64), text: Some(contents.clone()) });
                let path = path.clone();
                self.add_entry(&path);
            }
            StepAction::WriteMarker { path, version, proxy_ports } => {
                f.marker = Some(MarkerFact { path: path.clone(), version: *version, proxy_ports: proxy_ports.clone() });
                let path = path.clone();
                self.add_entry(&path);
            }
            StepAction::RemoveStale(r) => {
                let plan = crate::uninstall_plan::uninstall_plan(
                    &StateRecords {
                        version: crate::records::RECORDS_VERSION,
                        entries: vec![crate::records::RecordEntry {
                            step: "x".into(),
                            origin: Origin::Setup,
                            done: true,
                            record: r.clone(),
                        }],
                    },
                    &self.facts,
                );
                for s in plan.steps {
                    self.undo(&s.action);
                }
            }
        }
    }

    fn password_set(&mut self, user: SandboxUser) {
        if let Some(c) = self.facts.credentials.iter_mut().find(|c| c.user == user) {
            c.logon_ok = true;
        }
    }

    /// Carries out one uninstall step.
    pub fn undo(&mut self, a: &UndoAction) {
        let f = &mut self.facts;
        match a {
            UndoAction::DeleteMarker { path } => {
                f.marker = None;
                let path = path.clone();
                self.remove_entry(&path);
            }
            UndoAction::DeleteFile { path } => {
                f.files.retain(|x| &x.path != path);
                let path = path.clone();
                self.remove_entry(&path);
            }
            UndoAction::RemoveDirectoryIfEmpty { path } => {
                let d = f.directories.iter().find(|d| &d.path == path).unwrap();
                // The executor deletes the records file right before removing its folder.
                if d.entries.iter().all(|e| e == STATE_FILE_NAME) {
                    f.directories.retain(|d| &d.path != path);
                    let path = path.clone();
                    self.remove_entry(&path);
                }
            }
            UndoAction::RemoveAce { path, ace } => {
                f.aces.retain(|x| !(&x.path == path && &x.ace == ace));
                if let Some(d) = f.directories.iter_mut().find(|d| &d.path == path) {
                    d.explicit_aces.retain(|x| x != ace);
                }
            }
            UndoAction::DeleteWfpObject { key, .. } => f.firewall.wfp.retain(|o| o.key() != key),
            UndoAction::DeleteFirewallRule { name } => f.firewall.rules.retain(|r| &r.name != name),
            UndoAction::DeleteCredential { path, .. } => f.credentials.retain(|c| &c.path != path),
            UndoAction::RemoveAccountRights { sid, rights } => {
                for r in f.account_rights.iter_mut().filter(|r| &r.sid == sid) {
                    r.rights.retain(|x| !rights.contains(x));
                }
                f.account_rights.retain(|r| !r.rights.is_empty());
            }
            UndoAction::UnhideFromSignIn { name } => f.hidden_accounts.retain(|h| h != name),
            UndoAction::RemoveFromGroup { member, group } => {
                for g in f.groups.iter_mut().filter(|g| &g.sid == group) {
                    g.members.retain(|m| m != member);
                }
                for u in f.users.iter_mut().filter(|u| &u.sid == member) {
                    u.groups.retain(|g| g != group);
                }
            }
            UndoAction::DeleteProfile { sid, .. } => f.profiles.retain(|p| &p.sid != sid),
            UndoAction::DeleteUser { sid, .. } => {
                f.users.retain(|u| &u.sid != sid);
                for g in f.groups.iter_mut() {
                    g.members.retain(|m| m != sid);
                }
            }
            UndoAction::DeleteGroup { sid, .. } => {
                f.groups.retain(|g| &g.sid != sid);
                for u in f.users.iter_mut() {
                    u.groups.retain(|g| g != sid);
                }
            }
        }
    }

    /// Runs an uninstall plan, forgetting each record after its step.
    pub fn uninstall(&mut self, plan: &UninstallPlan) {
        for s in &plan.steps {
            self.undo(&s.action);
            if let Some(r) = &s.record {
                self.records.forget(r);
            }
        }
    }
}

/// Facts compared as sets (order of lists does not matter).
pub fn normalized(f: &MachineFacts) -> String {
    let mut v = serde_json::to_value(f).unwrap();
    fn sort(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Array(a) => {
                a.iter_mut().for_each(sort);
                a.sort_by_key(|x| x.to_string());
            }
            serde_json::Value::Object(o) => o.values_mut().for_each(sort),
            _ => {}
        }
    }
    sort(&mut v);
    v.to_string()
}

pub fn wfp_filters(f: &MachineFacts) -> Vec<&WfpObject> {
    f.firewall.wfp.iter().filter(|o| matches!(o, WfpObject::Filter(_))).collect()
}

pub fn record_kinds(r: &StateRecords) -> Vec<&'static str> {
    r.entries
        .iter()
        .map(|e| match e.record {
            Record::GroupCreated { .. } => "group",
            Record::UserCreated { .. } => "user",
            Record::AddedToGroup { .. } => "member",
            Record::HiddenFromSignIn { .. } => "hidden",
            Record::RightsAdded { .. } => "rights",
            Record::CredentialStored { .. } => "credential",
            Record::FirewallRuleAdded { .. } => "rule",
            Record::WfpAdded { .. } => "wfp",
            Record::AceAdded { .. } => "ace",
            Record::DirectoryCreated { .. } => "dir",
            Record::FileWritten { .. } => "file",
            Record::MarkerWritten { .. } => "marker",
            Record::ProfileCreated { .. } => "profile",
        })
        .collect()
}
