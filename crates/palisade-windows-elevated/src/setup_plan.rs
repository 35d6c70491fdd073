//! The elevated setup as an ordered list of idempotent steps, computed from the request and the
//! machine's facts.
//!
//! Each [`Step`] has a stable id, a one-line description (what the administrator agrees to),
//! who carries it out ([`Executor`]), whether the machine already satisfies it (the executor
//! skips those, so running setup twice changes nothing the second time), how it is undone, and
//! the [`Record`] the executor writes ahead of it ([`Step::intent`]).
//!
//! Order (each step only needs what earlier ones made):
//!
//! 1. `credential.*.store` (invoker) — the CLI generates each new password and stores it with
//!    DPAPI for the installing user (pending until setup reports success);
//! 2. `marker.invalidate` — when anything below is pending, the old marker goes first, so a
//!    marker on disk always means "the last setup completed";
//! 3. `dir.palisade`, `dir.bin` — `%ProgramData%\Palisade` owned by Administrators with a
//!    protected DACL (the records file lives there from the start; `%ProgramData%` lets users
//!    create folders, so a pre-existing folder owned by someone else is refused);
//! 4. `group.create`, `user.*.{create,password,group,hide,rights}`;
//! 5. `firewall:*`, `wfp.*` — the offline account's fence (refused when Group Policy ignores
//!    local rules or a profile's firewall is off);
//! 6. `acl.system.*` — Windows, Program Files, ProgramData must be readable through `Users`;
//!    a folder only TrustedInstaller may change is never altered;
//! 7. `acl:*` — read grants for the group on the profile's children except credential stores,
//!    on per-user tool folders, and on Palisade's folder;
//! 8. `file.runner`, `file.gitconfig`;
//! 9. `stale:*` — removal of recorded grants, rules and filters that are no longer wanted;
//! 10. `marker.write` — last.

use serde::{Deserialize, Serialize};

use crate::ace::{is_hive, AceSpec, GrantGuard, Inheritance, Rights, Trustee, Unresolved};
use crate::facts::{AccountRight, MachineFacts, SandboxUser, Sids, SystemFolder, DENIED_RIGHTS, GROUP_NAME};
use crate::firewall::{self, FenceError, FirewallRule, WfpFilter, WfpObject};
use crate::records::{Record, StateRecords, WfpKind};
use crate::sid::Sid;
use crate::winpath::{fold, WinPath, WinPathError};

/// Palisade's folder under `%ProgramData%`.
pub const PALISADE_DIR: &str = "Palisade";
/// Where the runner is copied, under [`PALISADE_DIR`].
pub const BIN_DIR: &str = "bin";
pub const RUNNER_EXE: &str = "palisade-runner.exe";
/// The git configuration the runner points `GIT_CONFIG_GLOBAL` at.
pub const GITCONFIG_FILE: &str = "sandbox.gitconfig";
pub const MARKER_FILE: &str = "setup.json";

/// Profile entries (relative to the profile, `\`-separated) that are never granted: credential
/// stores and tokens of common tools. `AppData` is never walked either (see [`APPDATA_SECRETS`]).
pub const PROFILE_SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker",
    ".config\\gh",
    ".config\\gcloud",
    ".config\\op",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".npmrc",
    ".yarnrc",
    ".pypirc",
    ".cargo\\credentials",
    ".cargo\\credentials.toml",
    ".gradle\\gradle.properties",
    ".m2\\settings.xml",
    ".terraform.d",
    ".vault-token",
    ".palisade",
];

/// Credential stores inside `AppData`. `AppData` as a whole is not granted (browsers, mail and
/// most applications keep secrets there); only explicit tool folders inside it are, and none may
/// contain or lie inside one of these.
pub const APPDATA_SECRETS: &[&str] = &[
    "AppData\\Roaming\\Microsoft\\Credentials",
    "AppData\\Local\\Microsoft\\Credentials",
    "AppData\\Roaming\\Microsoft\\Protect",
    "AppData\\Roaming\\Microsoft\\Crypto",
    "AppData\\Roaming\\Microsoft\\SystemCertificates",
    "AppData\\Local\\Microsoft\\Vault",
    "AppData\\Local\\Microsoft\\Edge\\User Data",
    "AppData\\Local\\Google\\Chrome\\User Data",
    "AppData\\Roaming\\Mozilla\\Firefox",
    "AppData\\Roaming\\GitHub CLI",
    "AppData\\Roaming\\gnupg",
    "AppData\\Roaming\\Code\\User\\globalStorage",
    "AppData\\Local\\Palisade",
    "AppData\\Roaming\\Palisade",
];

/// Who carries out a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Executor {
    /// The unelevated CLI, as the installing user (DPAPI is per user).
    Invoker,
    /// `palisade-setup`, elevated.
    Elevated,
}

/// A WFP object to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WfpSpec {
    Provider,
    Sublayer,
    Filter(WfpFilter),
}

impl WfpSpec {
    pub fn render(&self, sids: &Sids) -> Result<WfpObject, Unresolved> {
        match self {
            WfpSpec::Provider => Ok(firewall::provider()),
            WfpSpec::Sublayer => Ok(firewall::sublayer()),
            WfpSpec::Filter(f) => {
                let sid = sids.user(f.user).ok_or_else(|| Unresolved(f.user.account_name().into()))?;
                Ok(f.render(sid))
            }
        }
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepAction {
    /// Delete the marker before anything else changes.
    RemoveMarker { path: WinPath },
    /// (Invoker) Encrypt the account's new password with DPAPI for the installing user and
    /// store it at `path`, pending until setup succeeds.
    StoreCredential { user: SandboxUser, path: WinPath },
    /// Create the folder (or, if it exists and is owned by Administrators or SYSTEM, reset it)
    /// with this owner and this DACL. `existed` says whether it was there when planned.
    CreateDirectory { path: WinPath, owner: Sid, protected: bool, aces: Vec<AceSpec>, existed: bool },
    CreateGroup { name: String, comment: String },
    /// Create the account with the password from the request; password never expires, user
    /// cannot change it, no home folder set.
    CreateUser { user: SandboxUser, comment: String },
    /// Set the password from the request (after an interrupted setup or a lost credential).
    SetPassword { user: SandboxUser },
    AddToGroup { user: SandboxUser },
    /// Set `SpecialAccounts\UserList\<name>` to 0.
    HideFromSignIn { user: SandboxUser },
    /// `LsaAddAccountRights` with the rights the account does not hold yet.
    AddAccountRights { user: SandboxUser, rights: Vec<AccountRight> },
    /// Add the rule, replacing a rule of the same name.
    AddFirewallRule(FirewallRule),
    /// Add the WFP object, replacing one with the same key.
    AddWfpObject(WfpSpec),
    /// Nothing to do: the folder is readable through `via`. Listed so the plan shows it.
    RequireReadable { folder: SystemFolder, path: WinPath, via: Sid },
    /// Add one ACE to the path's DACL (never replacing the DACL).
    GrantAce { path: WinPath, ace: AceSpec },
    /// Copy the runner and check its SHA-256 after copying.
    CopyFile { from: WinPath, to: WinPath, sha256: String },
    WriteFile { path: WinPath, contents: String },
    /// Undo something an earlier setup recorded that is no longer wanted, then forget its record.
    RemoveStale(Record),
    /// Write the marker (last).
    WriteMarker { path: WinPath, version: u32 },
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub id: String,
    pub description: String,
    pub executor: Executor,
    pub action: StepAction,
    /// The machine already is as this step would make it; the executor skips it.
    pub satisfied: bool,
    /// How the step is undone, or `None` when it leaves nothing to undo.
    pub undo: Option<String>,
}

impl Step {
    /// The SID of the group or account this step creates, once it exists. The executor passes
    /// it to [`StateRecords::complete`]; it also completes the pending records of a step it
    /// finds satisfied (setup stopped after the action but before marking it done).
    pub fn created_sid(&self, sids: &Sids) -> Option<Sid> {
        match &self.action {
            StepAction::CreateGroup { .. } => sids.group.clone(),
            StepAction::CreateUser { user, .. } => sids.user(*user).cloned(),
            _ => None,
        }
    }

    /// The record the executor writes ahead of carrying the step out (`None`: nothing to
    /// record). SIDs of accounts created by earlier steps are resolved through `sids`, which the
    /// executor refreshes after creating them.
    pub fn intent(&self, sids: &Sids) -> Result<Option<Record>, Unresolved> {
        let need = |u: SandboxUser| sids.user(u).cloned().ok_or_else(|| Unresolved(u.account_name().into()));
        let group = || sids.group.clone().ok_or_else(|| Unresolved(GROUP_NAME.into()));
        Ok(match &self.action {
            StepAction::RemoveMarker { .. }
            | StepAction::SetPassword { .. }
            | StepAction::RequireReadable { .. }
            | StepAction::RemoveStale(_) => None,
            StepAction::StoreCredential { user, path } => Some(Record::CredentialStored { user: *user, path: path.clone() }),
            StepAction::CreateDirectory { existed: true, .. } => None,
            StepAction::CreateDirectory { path, .. } => Some(Record::DirectoryCreated { path: path.clone() }),
            StepAction::CreateGroup { name, .. } => Some(Record::GroupCreated { name: name.clone(), sid: None }),
            StepAction::CreateUser { user, .. } => {
                Some(Record::UserCreated { user: *user, name: user.account_name().into(), sid: None })
            }
            StepAction::AddToGroup { user } => Some(Record::AddedToGroup { user: *user, member: need(*user)?, group: group()? }),
            StepAction::HideFromSignIn { user } => Some(Record::HiddenFromSignIn { name: user.account_name().into() }),
            StepAction::AddAccountRights { user, rights } => {
                Some(Record::RightsAdded { name: user.account_name().into(), sid: need(*user)?, rights: rights.clone() })
            }
            StepAction::AddFirewallRule(r) => Some(Record::FirewallRuleAdded { name: r.name.clone() }),
            StepAction::AddWfpObject(w) => {
                let o = w.render(sids)?;
                let wfp = match w {
                    WfpSpec::Provider => WfpKind::Provider,
                    WfpSpec::Sublayer => WfpKind::Sublayer,
                    WfpSpec::Filter(_) => WfpKind::Filter,
                };
                Some(Record::WfpAdded { wfp, key: o.key().to_string(), name: o.name().to_string() })
            }
            StepAction::GrantAce { path, ace } => Some(Record::AceAdded { path: path.clone(), ace: ace.resolved(sids)? }),
            StepAction::CopyFile { to, .. } => Some(Record::FileWritten { path: to.clone() }),
            StepAction::WriteFile { path, .. } => Some(Record::FileWritten { path: path.clone() }),
            StepAction::WriteMarker { path, version } => Some(Record::MarkerWritten { path: path.clone(), version: *version }),
        })
    }
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupPlan {
    pub steps: Vec<Step>,
    /// Profile entries that stay unreadable to the sandbox accounts, with the reason.
    pub not_granted: Vec<(WinPath, String)>,
}

impl SetupPlan {
    pub fn pending(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| !s.satisfied)
    }

    /// Nothing left to do.
    pub fn is_complete(&self) -> bool {
        self.pending().next().is_none()
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The plan as lines for the person approving it: `[done]` or `[todo]`, id, description.
    pub fn lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| format!("[{}] {}: {}", if s.satisfied { "done" } else { "todo" }, s.id, s.description))
            .collect()
    }
}

/// A planning refusal, naming the step it concerns. `Display` is one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("setup step `{step}`: {kind}")]
pub struct SetupError {
    pub step: String,
    pub kind: SetupErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetupErrorKind {
    #[error("Group Policy turns off local firewall rules for the {0} profile; Palisade's rules would be ignored (ask the administrator to allow local rules)")]
    GroupPolicyOverridesLocalRules(String),
    #[error("the firewall is off for the {0} profile, so the offline account would not be fenced")]
    FirewallDisabled(String),
    #[error("the facts do not say {0}")]
    MissingFacts(String),
    #[error("an account named {name} already exists and cannot be used: {reason}")]
    AccountConflict { name: String, reason: String },
    #[error("the group {GROUP_NAME} already exists and cannot be used: {0}")]
    GroupConflict(String),
    #[error("{path} already exists and is owned by {owner}, not by Administrators or SYSTEM; remove it and run setup again")]
    UntrustedDirectory { path: WinPath, owner: Sid },
    #[error("{path} is not readable by Users and only TrustedInstaller may change it; Palisade will not alter it")]
    SystemFolderUnreadable { path: WinPath },
    #[error("refusing to grant on {path}: {reason}")]
    ForbiddenGrant { path: WinPath, reason: &'static str },
    #[error("{path} contains a credential store, so its entries must be listed in the request")]
    MissingListing { path: WinPath },
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Fence(FenceError),
}

fn fail(step: &str, kind: SetupErrorKind) -> SetupError {
    SetupError { step: step.to_string(), kind }
}

/// A profile entry as listed by the CLI (which can read its own profile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileEntry {
    pub name: String,
    pub kind: EntryKind,
    /// The entries inside; required for folders that contain a credential store.
    #[serde(default)]
    pub children: Option<Vec<ProfileEntry>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    Directory,
    File,
    /// A symbolic link, junction or other reparse point: never granted (a grant would follow it).
    Link,
}

/// The installing user, as the CLI reports it and setup verified it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installer {
    pub sid: Sid,
    pub name: String,
    pub profile: WinPath,
    /// `%LOCALAPPDATA%`.
    pub local_app_data: WinPath,
    /// The profile's top-level entries.
    pub profile_entries: Vec<ProfileEntry>,
    /// Per-user tool folders on `PATH` to make readable (`%LOCALAPPDATA%\Programs`, nvm, Scoop,
    /// `pip --user` scripts, npm's global folder), each beneath the profile.
    pub tool_folders: Vec<WinPath>,
    /// More profile-relative paths to keep unreadable.
    #[serde(default)]
    pub extra_secrets: Vec<String>,
}

/// Everything the plan needs besides the machine's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupInputs {
    pub setup_version: u32,
    pub installer: Installer,
    /// `%ProgramData%`.
    pub program_data: WinPath,
    /// The runner next to `palisade-setup.exe`, and its SHA-256 (lowercase hex).
    pub runner_source: WinPath,
    pub runner_sha256: String,
    pub proxy_ports: Vec<u16>,
}

/// Paths of the files setup writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub dir: WinPath,
    pub bin: WinPath,
    pub runner: WinPath,
    pub gitconfig: WinPath,
    pub marker: WinPath,
    pub state: WinPath,
}

impl Layout {
    pub fn new(program_data: &WinPath) -> Layout {
        let dir = program_data.join(PALISADE_DIR).expect("constant names are valid");
        let bin = dir.join(BIN_DIR).expect("constant");
        Layout {
            runner: bin.join(RUNNER_EXE).expect("constant"),
            gitconfig: dir.join(GITCONFIG_FILE).expect("constant"),
            marker: dir.join(MARKER_FILE).expect("constant"),
            state: dir.join(crate::records::STATE_FILE_NAME).expect("constant"),
            bin,
            dir,
        }
    }
}

/// Where the CLI stores an account's DPAPI-protected password.
pub fn credential_path(local_app_data: &WinPath, user: SandboxUser) -> WinPath {
    local_app_data.join(&format!("Palisade\\credentials\\{}.dpapi", user.account_name())).expect("constant names are valid")
}

/// The git configuration for the sandbox accounts (the runner sets `GIT_CONFIG_GLOBAL` to it).
///
/// * `safe.directory = *`: the workspace belongs to the installing user, so git run as a sandbox
///   account would refuse it ("dubious ownership"). The check protects an account from
///   repositories other accounts control; here the sandbox account is the less trusted side, and
///   the repository's own hooks and config are protected paths it cannot change.
/// * `http.sslBackend = openssl`: Windows does not hand TLS credentials to a restricted token,
///   so Schannel fails inside; Git for Windows' OpenSSL backend works.
pub fn gitconfig_contents() -> String {
    "# Written by palisade-setup for the Palisade sandbox accounts (GIT_CONFIG_GLOBAL). Do not edit.\n\
     [safe]\n\tdirectory = *\n[http]\n\tsslBackend = openssl\n"
        .to_string()
}

/// The marker's contents.
pub fn marker_contents(version: u32) -> String {
    format!("{{\"palisade_elevated_setup\":{version}}}\n")
}

/// The version in a marker's contents, if they are a marker.
pub fn parse_marker(text: &str) -> Option<u32> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct M {
        palisade_elevated_setup: u32,
    }
    serde_json::from_str::<M>(text).ok().map(|m| m.palisade_elevated_setup)
}

/// The secrets (absolute) the grant guard protects for this installer.
pub fn secrets_of(installer: &Installer) -> Result<Vec<WinPath>, WinPathError> {
    let mut out = Vec::new();
    for rel in PROFILE_SECRETS.iter().chain(APPDATA_SECRETS).map(|s| s.to_string()).chain(installer.extra_secrets.iter().cloned()) {
        out.push(installer.profile.join(&rel)?);
    }
    for rel in ["Microsoft\\Credentials", "Microsoft\\Vault", "Palisade"] {
        out.push(installer.local_app_data.join(rel)?);
    }
    Ok(out)
}

fn ace_group(rights: Rights, inheritance: Inheritance) -> AceSpec {
    AceSpec::allow(Trustee::SandboxGroup, rights, inheritance)
}

fn ace_sid(sid: Sid, rights: Rights) -> AceSpec {
    AceSpec::allow(Trustee::Sid(sid), rights, Inheritance::ContainerAndObject)
}

struct Builder<'a> {
    facts: &'a MachineFacts,
    sids: Sids,
    steps: Vec<Step>,
}

impl Builder<'_> {
    fn push(&mut self, id: String, executor: Executor, action: StepAction, satisfied: bool, description: String, undo: Option<String>) {
        self.steps.push(Step { id, description, executor, action, satisfied, undo });
    }

    fn ace_present(&self, path: &WinPath, ace: &AceSpec) -> bool {
        ace.resolved(&self.sids).map(|a| self.facts.has_ace(path, &a)).unwrap_or(false)
    }
}

/// Plans the elevated setup. `records` are the records of earlier setups (empty the first time);
/// what they list but the inputs no longer want is removed.
pub fn setup_plan(inputs: &SetupInputs, facts: &MachineFacts, records: &StateRecords) -> Result<SetupPlan, SetupError> {
    let inst = &inputs.installer;
    let layout = Layout::new(&inputs.program_data);
    validate_inputs(inputs)?;
    check_accounts(facts)?;
    check_firewall(facts)?;
    let fence = firewall::offline_fence(&inputs.proxy_ports).map_err(|e| fail("firewall", SetupErrorKind::Fence(e)))?;
    let secrets = secrets_of(inst).map_err(|e| fail("acl", SetupErrorKind::InvalidInput(e.to_string())))?;
    let guard = GrantGuard { profile: inst.profile.clone(), secrets };

    let mut b = Builder { facts, sids: Sids::from_facts(facts), steps: Vec::new() };

    // 1. Credentials (invoker).
    for u in SandboxUser::ALL {
        let path = credential_path(&inst.local_app_data, u);
        let ok = facts.credential(u).is_some_and(|c| c.path == path && c.decryptable && c.logon_ok);
        b.push(
            format!("credential.{}.store", u.id()),
            Executor::Invoker,
            StepAction::StoreCredential { user: u, path: path.clone() },
            ok,
            format!("store a new random password for {} at {path}, encrypted with DPAPI for {}", u.account_name(), inst.name),
            Some(format!("delete {path}")),
        );
    }

    // 3. Palisade's folder and bin folder.
    let admin_owned = |o: &Sid| *o == Sid::administrators() || *o == Sid::system();
    let dir_aces = vec![
        ace_sid(Sid::system(), Rights::FullControl),
        ace_sid(Sid::administrators(), Rights::FullControl),
        ace_sid(inst.sid.clone(), Rights::ReadExecute),
    ];
    let dir_fact = facts.directory(&layout.dir);
    if let Some(d) = dir_fact {
        if !admin_owned(&d.owner) {
            return Err(fail("dir.palisade", SetupErrorKind::UntrustedDirectory { path: d.path.clone(), owner: d.owner.clone() }));
        }
    }
    let dir_ok = dir_fact.is_some_and(|d| {
        d.protected
            && dir_aces.iter().all(|a| d.explicit_aces.contains(a))
            && d.explicit_aces.iter().all(|a| {
                !a.rights.writes() || matches!(&a.trustee, Trustee::Sid(s) if admin_owned(s))
            })
    });
    b.push(
        "dir.palisade".into(),
        Executor::Elevated,
        StepAction::CreateDirectory {
            path: layout.dir.clone(),
            owner: Sid::administrators(),
            protected: true,
            aces: dir_aces,
            existed: dir_fact.is_some(),
        },
        dir_ok,
        format!("create {} owned by Administrators, changeable only by Administrators and SYSTEM, readable by {}", layout.dir, inst.name),
        if dir_fact.is_some() { None } else { Some(format!("remove {} when empty", layout.dir)) },
    );
    let bin_fact = facts.directory(&layout.bin);
    if let Some(d) = bin_fact {
        if !admin_owned(&d.owner) {
            return Err(fail("dir.bin", SetupErrorKind::UntrustedDirectory { path: d.path.clone(), owner: d.owner.clone() }));
        }
    }
    let bin_ok = dir_ok && bin_fact.is_some_and(|d| !d.protected && d.explicit_aces.is_empty());
    b.push(
        "dir.bin".into(),
        Executor::Elevated,
        StepAction::CreateDirectory {
            path: layout.bin.clone(),
            owner: Sid::administrators(),
            protected: false,
            aces: vec![],
            existed: bin_fact.is_some(),
        },
        bin_ok,
        format!("create {} inheriting the permissions above", layout.bin),
        if bin_fact.is_some() { None } else { Some(format!("remove {} when empty", layout.bin)) },
    );

    // 4. Group and accounts.
    b.push(
        "group.create".into(),
        Executor::Elevated,
        StepAction::CreateGroup { name: GROUP_NAME.into(), comment: "Palisade sandbox accounts".into() },
        facts.sandbox_group().is_some(),
        format!("create the local group {GROUP_NAME}"),
        Some(format!("delete the group {GROUP_NAME}")),
    );
    for u in SandboxUser::ALL {
        let name = u.account_name();
        let user = facts.sandbox_user(u);
        let sid = user.map(|x| x.sid.clone());
        let cred_ok = b.steps.iter().any(|s| s.id == format!("credential.{}.store", u.id()) && s.satisfied);
        let what = if u.network() { "may use the network" } else { "is fenced off the network" };
        b.push(
            format!("user.{}.create", u.id()),
            Executor::Elevated,
            StepAction::CreateUser { user: u, comment: format!("Palisade sandbox account; {what}") },
            user.is_some(),
            format!("create the local account {name} (sandboxed commands run as it; it {what})"),
            Some(format!("delete the account {name} and its profile folder")),
        );
        b.push(
            format!("user.{}.password", u.id()),
            Executor::Elevated,
            StepAction::SetPassword { user: u },
            user.is_some() && cred_ok,
            format!("set the password of {name} to the one just stored"),
            None,
        );
        let member = match (&sid, facts.sandbox_group()) {
            (Some(s), Some(g)) => g.members.contains(s),
            _ => false,
        };
        b.push(
            format!("user.{}.group", u.id()),
            Executor::Elevated,
            StepAction::AddToGroup { user: u },
            member,
            format!("add {name} to {GROUP_NAME}"),
            Some(format!("remove {name} from {GROUP_NAME}")),
        );
        b.push(
            format!("user.{}.hide", u.id()),
            Executor::Elevated,
            StepAction::HideFromSignIn { user: u },
            facts.is_hidden(name),
            format!("hide {name} from the sign-in screen (SpecialAccounts\\UserList)"),
            Some(format!("delete the SpecialAccounts\\UserList value {name}")),
        );
        let held: Vec<AccountRight> = sid.as_ref().map(|s| facts.rights_of(s).to_vec()).unwrap_or_default();
        let missing: Vec<AccountRight> = DENIED_RIGHTS.iter().copied().filter(|r| !held.contains(r)).collect();
        let names: Vec<&str> = DENIED_RIGHTS.iter().map(|r| r.as_str()).collect();
        b.push(
            format!("user.{}.rights", u.id()),
            Executor::Elevated,
            StepAction::AddAccountRights { user: u, rights: if missing.is_empty() { DENIED_RIGHTS.to_vec() } else { missing.clone() } },
            sid.is_some() && missing.is_empty(),
            format!("deny {name} remote desktop, network, batch and service logons ({})", names.join(", ")),
            Some(format!("remove the rights Palisade added to {name}")),
        );
    }

    // 5. The offline account's fence.
    let offline_sid = b.sids.offline.clone();
    for r in &fence.rules {
        let ok = offline_sid.as_ref().is_some_and(|s| facts.rule(&r.name) == Some(&r.render(s)));
        b.push(
            format!("firewall:{}", r.name),
            Executor::Elevated,
            StepAction::AddFirewallRule(r.clone()),
            ok,
            format!("firewall rule `{}`: {}", r.name, r.description),
            Some(format!("delete the firewall rule `{}`", r.name)),
        );
    }
    let mut wfp_specs = vec![WfpSpec::Provider, WfpSpec::Sublayer];
    wfp_specs.extend(fence.filters.iter().cloned().map(WfpSpec::Filter));
    for w in wfp_specs {
        let rendered = w.render(&b.sids).ok();
        let ok = rendered.as_ref().is_some_and(|o| facts.has_wfp(o));
        let (id, description) = match &w {
            WfpSpec::Provider => ("wfp.provider".to_string(), format!("register the WFP provider `{}`", firewall::PROVIDER_NAME)),
            WfpSpec::Sublayer => ("wfp.sublayer".to_string(), format!("add the WFP sublayer `{}`", firewall::SUBLAYER_NAME)),
            WfpSpec::Filter(f) => (format!("wfp:{}", f.name), format!("WFP filter `{}`", f.name)),
        };
        let undo = Some(format!("delete the WFP object {}", if let WfpSpec::Filter(f) = &w { f.key() } else { id.clone() }));
        b.push(id, Executor::Elevated, StepAction::AddWfpObject(w), ok, description, undo);
    }

    // 6. System folders.
    for required in [SystemFolder::Windows, SystemFolder::ProgramFiles, SystemFolder::ProgramData] {
        if !facts.system_folders.iter().any(|f| f.folder == required) {
            return Err(fail(&format!("acl.system.{}", required.id()), SetupErrorKind::MissingFacts(format!("who may read the {} folder", required.id()))));
        }
    }
    let via_ok = [Sid::users(), Sid::authenticated_users(), Sid::everyone()];
    for f in &facts.system_folders {
        let id = format!("acl.system.{}", f.folder.id());
        if let Some(via) = f.readable_by.iter().find(|s| via_ok.contains(s)) {
            b.push(
                id,
                Executor::Elevated,
                StepAction::RequireReadable { folder: f.folder, path: f.path.clone(), via: via.clone() },
                true,
                format!("{} is readable through {via} already; nothing changes", f.path),
                None,
            );
        } else if f.owner == Sid::trusted_installer() {
            return Err(fail(&id, SetupErrorKind::SystemFolderUnreadable { path: f.path.clone() }));
        } else {
            let ace = ace_group(Rights::ReadExecute, Inheritance::ContainerAndObject);
            grant(&mut b, &guard, id, f.path.clone(), ace, format!("let {GROUP_NAME} read and execute {}", f.path))?;
        }
    }

    // 7. The profile, tool folders and Palisade's folder.
    let mut grants: Vec<(WinPath, Rights, Inheritance)> = Vec::new();
    let mut not_granted = Vec::new();
    grants.push((inst.profile.clone(), Rights::ListTraverse, Inheritance::None));
    let excluded: Vec<Vec<String>> = PROFILE_SECRETS
        .iter()
        .map(|s| s.to_string())
        .chain(inst.extra_secrets.iter().cloned())
        .map(|s| s.split(['\\', '/']).map(fold).collect())
        .collect();
    walk(&inst.profile, &mut Vec::new(), &inst.profile_entries, &excluded, &mut grants, &mut not_granted)?;
    for t in &inst.tool_folders {
        let covered = grants
            .iter()
            .any(|(p, r, i)| *r == Rights::ReadExecute && *i == Inheritance::ContainerAndObject && t.is_same_or_beneath(p));
        if !covered {
            grants.push((t.clone(), Rights::ReadExecute, Inheritance::ContainerAndObject));
        }
    }
    for (path, rights, inh) in grants {
        let how = match (rights, inh) {
            (Rights::ListTraverse, _) => "list the names in",
            (_, Inheritance::None) => "read",
            _ => "read and execute everything in",
        };
        let description = format!("let {GROUP_NAME} {how} {path}");
        grant(&mut b, &guard, format!("acl:{path}"), path, ace_group(rights, inh), description)?;
    }
    let ace = ace_group(Rights::ReadExecute, Inheritance::ContainerAndObject);
    let before = b.steps.len();
    grant(&mut b, &guard, format!("acl:{}", layout.dir), layout.dir.clone(), ace, format!("let {GROUP_NAME} read and execute {}", layout.dir))?;
    // Resetting the folder's DACL (dir.palisade pending) drops this grant: redo it then.
    if !dir_ok {
        b.steps[before].satisfied = false;
    }

    // 8. Files.
    let runner_ok = facts.file(&layout.runner).is_some_and(|f| f.sha256.eq_ignore_ascii_case(&inputs.runner_sha256));
    b.push(
        "file.runner".into(),
        Executor::Elevated,
        StepAction::CopyFile { from: inputs.runner_source.clone(), to: layout.runner.clone(), sha256: inputs.runner_sha256.to_ascii_lowercase() },
        runner_ok,
        format!("copy palisade-runner.exe to {} (the sandbox accounts run it from there)", layout.runner),
        Some(format!("delete {}", layout.runner)),
    );
    let contents = gitconfig_contents();
    let git_ok = facts.file(&layout.gitconfig).is_some_and(|f| f.text.as_deref() == Some(contents.as_str()));
    b.push(
        "file.gitconfig".into(),
        Executor::Elevated,
        StepAction::WriteFile { path: layout.gitconfig.clone(), contents },
        git_ok,
        format!("write {} (git for the sandbox accounts: safe.directory = *, http.sslBackend = openssl)", layout.gitconfig),
        Some(format!("delete {}", layout.gitconfig)),
    );

    // 9. Stale records.
    stale_steps(&mut b, records)?;

    // 10. Marker, and its invalidation up front.
    let marker_ok = facts.marker.as_ref().is_some_and(|m| m.path == layout.marker && m.version == inputs.setup_version);
    let others_pending = b.steps.iter().any(|s| !s.satisfied);
    if let Some(m) = &facts.marker {
        if others_pending || !marker_ok {
            let at = b.steps.iter().position(|s| s.executor == Executor::Elevated).unwrap_or(0);
            b.steps.insert(
                at,
                Step {
                    id: "marker.invalidate".into(),
                    description: format!("delete the setup marker {} until this setup completes", m.path),
                    executor: Executor::Elevated,
                    action: StepAction::RemoveMarker { path: m.path.clone() },
                    satisfied: false,
                    undo: None,
                },
            );
        }
    }
    b.push(
        "marker.write".into(),
        Executor::Elevated,
        StepAction::WriteMarker { path: layout.marker.clone(), version: inputs.setup_version },
        marker_ok && !others_pending,
        format!("write the setup marker {} (version {}) last", layout.marker, inputs.setup_version),
        Some(format!("delete {}", layout.marker)),
    );

    Ok(SetupPlan { steps: b.steps, not_granted })
}

fn grant(b: &mut Builder<'_>, guard: &GrantGuard, id: String, path: WinPath, ace: AceSpec, description: String) -> Result<(), SetupError> {
    if let Some(reason) = guard.forbidden(&path, &ace) {
        return Err(fail(&id, SetupErrorKind::ForbiddenGrant { path, reason }));
    }
    let ok = b.ace_present(&path, &ace);
    let undo = Some(format!("remove this access entry from {path}"));
    b.push(id, Executor::Elevated, StepAction::GrantAce { path, ace }, ok, description, undo);
    Ok(())
}

fn validate_inputs(inputs: &SetupInputs) -> Result<(), SetupError> {
    let inst = &inputs.installer;
    let bad = |m: String| Err(fail("request", SetupErrorKind::InvalidInput(m)));
    if inst.profile.is_drive_root() || inst.profile.components().len() < 2 {
        return bad(format!("{} cannot be a profile folder", inst.profile));
    }
    if !inst.local_app_data.is_strictly_beneath(&inst.profile) {
        return bad(format!("%LOCALAPPDATA% {} is not inside the profile {}", inst.local_app_data, inst.profile));
    }
    if !inst.sid.is_account_domain() {
        return bad(format!("{} is not an account SID", inst.sid));
    }
    for t in &inst.tool_folders {
        if !t.is_strictly_beneath(&inst.profile) {
            return bad(format!("tool folder {t} is not inside the profile {}", inst.profile));
        }
    }
    for s in &inst.extra_secrets {
        if let Err(e) = inst.profile.join(s) {
            return bad(format!("extra secret `{s}`: {e}"));
        }
    }
    if inputs.runner_sha256.len() != 64 || !inputs.runner_sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
        return bad("the runner's SHA-256 is not 64 hexadecimal digits".into());
    }
    if inputs.runner_source.file_name().map(fold) != Some(fold(RUNNER_EXE)) {
        return bad(format!("{} is not {RUNNER_EXE}", inputs.runner_source));
    }
    if inputs.program_data.is_drive_root() {
        return bad("%ProgramData% cannot be a drive root".into());
    }
    Ok(())
}

/// Existing accounts and group must be safe to use: no privileged memberships, not disabled,
/// and the group holds nothing but Palisade's accounts (members of it can read the profile).
fn check_accounts(facts: &MachineFacts) -> Result<(), SetupError> {
    let group_sid = facts.sandbox_group().map(|g| g.sid.clone());
    let mut ours = Vec::new();
    for u in SandboxUser::ALL {
        let Some(x) = facts.sandbox_user(u) else { continue };
        let conflict = |reason: String| Err(fail(&format!("user.{}.create", u.id()), SetupErrorKind::AccountConflict { name: x.name.clone(), reason }));
        if x.disabled {
            return conflict("it is disabled".into());
        }
        if !x.sid.is_account_domain() {
            return conflict(format!("{} is not a local account SID", x.sid));
        }
        if let Some(g) = x.groups.iter().find(|g| g.is_privileged_group()) {
            return conflict(format!("it is a member of the privileged group {g}"));
        }
        if let Some(g) = x.groups.iter().find(|g| **g != Sid::users() && Some(*g) != group_sid.as_ref()) {
            return conflict(format!("it is a member of {g}, which is neither Users nor {GROUP_NAME}"));
        }
        ours.push(x.sid.clone());
    }
    if let Some(g) = facts.sandbox_group() {
        if let Some(m) = g.members.iter().find(|m| !ours.contains(m)) {
            return Err(fail("group.create", SetupErrorKind::GroupConflict(format!("{m} is a member, and members may read the profile"))));
        }
    }
    Ok(())
}

fn check_firewall(facts: &MachineFacts) -> Result<(), SetupError> {
    for p in firewall_profiles_required() {
        let Some(f) = facts.firewall.profiles.iter().find(|f| f.profile == p) else {
            return Err(fail("firewall", SetupErrorKind::MissingFacts(format!("the state of the {p:?} firewall profile"))));
        };
        if !f.local_rules_honored {
            return Err(fail("firewall", SetupErrorKind::GroupPolicyOverridesLocalRules(format!("{p:?}").to_lowercase())));
        }
        if !f.enabled {
            return Err(fail("firewall", SetupErrorKind::FirewallDisabled(format!("{p:?}").to_lowercase())));
        }
    }
    Ok(())
}

fn firewall_profiles_required() -> [crate::facts::FirewallProfile; 3] {
    crate::facts::FirewallProfile::ALL
}

/// Walks the profile: inheriting read on entries that contain no secret, non-inheriting list on
/// folders that do (and into them), nothing on secrets, `AppData`, hives and links.
fn walk(
    base: &WinPath,
    rel: &mut Vec<String>,
    entries: &[ProfileEntry],
    excluded: &[Vec<String>],
    out: &mut Vec<(WinPath, Rights, Inheritance)>,
    skipped: &mut Vec<(WinPath, String)>,
) -> Result<(), SetupError> {
    for e in entries {
        let path = base
            .join(&e.name)
            .map_err(|err| fail("acl", SetupErrorKind::InvalidInput(format!("profile entry: {err}"))))?;
        if e.name.contains(['\\', '/']) {
            return Err(fail("acl", SetupErrorKind::InvalidInput(format!("profile entry `{}` is not a single name", e.name))));
        }
        rel.push(fold(&e.name));
        let r = (|| {
            if rel.len() == 1 && rel[0] == "APPDATA" {
                skipped.push((path.clone(), "AppData is only readable through the tool folders listed".into()));
                return Ok(());
            }
            if is_hive(&path) {
                skipped.push((path.clone(), "registry hive".into()));
                return Ok(());
            }
            if excluded.iter().any(|x| x == rel) {
                skipped.push((path.clone(), "credential store".into()));
                return Ok(());
            }
            match e.kind {
                EntryKind::Link => skipped.push((path.clone(), "link or junction (a grant would follow it)".into())),
                EntryKind::File => out.push((path.clone(), Rights::ReadExecute, Inheritance::None)),
                EntryKind::Directory => {
                    let holds_secret = excluded.iter().any(|x| x.len() > rel.len() && x[..rel.len()] == rel[..]);
                    if holds_secret {
                        out.push((path.clone(), Rights::ListTraverse, Inheritance::None));
                        let children = e.children.as_ref().ok_or_else(|| fail(&format!("acl:{path}"), SetupErrorKind::MissingListing { path: path.clone() }))?;
                        walk(&path, rel, children, excluded, out, skipped)?;
                    } else {
                        out.push((path.clone(), Rights::ReadExecute, Inheritance::ContainerAndObject));
                    }
                }
            }
            Ok(())
        })();
        rel.pop();
        r?;
    }
    Ok(())
}

/// Steps removing what earlier setups recorded but this plan no longer adds.
fn stale_steps(b: &mut Builder<'_>, records: &StateRecords) -> Result<(), SetupError> {
    let mut stale = Vec::new();
    for e in &records.entries {
        let wanted = |pred: &dyn Fn(&StepAction) -> bool| b.steps.iter().any(|s| pred(&s.action));
        let keep = match &e.record {
            Record::FirewallRuleAdded { name } => {
                wanted(&|a| matches!(a, StepAction::AddFirewallRule(r) if &r.name == name))
            }
            Record::WfpAdded { key, .. } => wanted(&|a| match a {
                StepAction::AddWfpObject(w) => w.render(&b.sids).map(|o| o.key() == key).unwrap_or(false),
                _ => false,
            }),
            Record::AceAdded { path, ace } => wanted(&|a| match a {
                StepAction::GrantAce { path: p, ace: x } => p == path && x.resolved(&b.sids).ok().as_ref() == Some(ace),
                _ => false,
            }),
            _ => true,
        };
        if !keep {
            stale.push(e.record.clone());
        }
    }
    for r in stale {
        let present = match &r {
            Record::FirewallRuleAdded { name } => b.facts.rule(name).is_some(),
            Record::WfpAdded { key, .. } => b.facts.wfp_key_present(key),
            Record::AceAdded { path, ace } => b.facts.has_ace(path, ace),
            _ => false,
        };
        // Never satisfied: even when the object is gone already, its record must be forgotten.
        let what = if present { "remove" } else { "forget the record of" };
        let id = format!("stale:{}", r.describe());
        b.push(id, Executor::Elevated, StepAction::RemoveStale(r.clone()), false, format!("{what} the {} (no longer wanted)", r.describe()), None);
    }
    Ok(())
}

/// Whether the records in Palisade's folder may be acted on. The elevated setup undoes what
/// the records list (uninstall, stale grants), so a records file that anyone but
/// administrators could have written would let that person make the elevated setup remove
/// arbitrary ACEs or accounts. Trusted only when the folder is owned by Administrators or
/// SYSTEM, does not inherit (under `%ProgramData%` inherited entries let Users create files),
/// and no explicit entry lets anyone else write.
pub fn records_folder_trusted(dir: &crate::facts::DirFact) -> bool {
    let admin = |s: &Sid| *s == Sid::administrators() || *s == Sid::system();
    admin(&dir.owner)
        && dir.protected
        && dir.explicit_aces.iter().all(|a| {
            a.kind != crate::ace::AceKind::Allow || !a.rights.writes() || matches!(&a.trustee, Trustee::Sid(s) if admin(s))
        })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod records_trust_tests;
