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
//! 5. `firewall:*`, `wfp.*` — the offline and proxied accounts' fences (refused when Group
//!    Policy ignores local rules or a profile's firewall is off);
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

mod planner;

pub use planner::setup_plan;

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
    RemoveMarker {
        path: WinPath,
    },
    /// (Invoker) Encrypt the account's new password with DPAPI for the installing user and
    /// store it at `path`, pending until setup succeeds.
    StoreCredential {
        user: SandboxUser,
        path: WinPath,
    },
    /// Create the folder (or, if it exists and is owned by Administrators or SYSTEM, reset it)
    /// with this owner and this DACL. `existed` says whether it was there when planned.
    CreateDirectory {
        path: WinPath,
        owner: Sid,
        protected: bool,
        aces: Vec<AceSpec>,
        existed: bool,
    },
    CreateGroup {
        name: String,
        comment: String,
    },
    /// Create the account with the password from the request; password never expires, user
    /// cannot change it, no home folder set.
    CreateUser {
        user: SandboxUser,
        comment: String,
    },
    /// Set the password from the request (after an interrupted setup or a lost credential).
    SetPassword {
        user: SandboxUser,
    },
    AddToGroup {
        user: SandboxUser,
    },
    /// Set `SpecialAccounts\UserList\<name>` to 0.
    HideFromSignIn {
        user: SandboxUser,
    },
    /// `LsaAddAccountRights` with the rights the account does not hold yet.
    AddAccountRights {
        user: SandboxUser,
        rights: Vec<AccountRight>,
    },
    /// Add the rule, replacing a rule of the same name.
    AddFirewallRule(FirewallRule),
    /// Add the WFP object, replacing one with the same key.
    AddWfpObject(WfpSpec),
    /// Nothing to do: the folder is readable through `via`. Listed so the plan shows it.
    RequireReadable {
        folder: SystemFolder,
        path: WinPath,
        via: Sid,
    },
    /// Add one ACE to the path's DACL (never replacing the DACL).
    GrantAce {
        path: WinPath,
        ace: AceSpec,
    },
    /// Copy the runner and check its SHA-256 after copying.
    CopyFile {
        from: WinPath,
        to: WinPath,
        sha256: String,
    },
    WriteFile {
        path: WinPath,
        contents: String,
    },
    /// Undo something an earlier setup recorded that is no longer wanted, then forget its record.
    RemoveStale(Record),
    /// Write the marker (last).
    WriteMarker {
        path: WinPath,
        version: u32,
        proxy_ports: Vec<u16>,
    },
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
            StepAction::StoreCredential { user, path } => {
                Some(Record::CredentialStored { user: *user, path: path.clone() })
            }
            StepAction::CreateDirectory { existed: true, .. } => None,
            StepAction::CreateDirectory { path, .. } => Some(Record::DirectoryCreated { path: path.clone() }),
            StepAction::CreateGroup { name, .. } => Some(Record::GroupCreated { name: name.clone(), sid: None }),
            StepAction::CreateUser { user, .. } => {
                Some(Record::UserCreated { user: *user, name: user.account_name().into(), sid: None })
            }
            StepAction::AddToGroup { user } => {
                Some(Record::AddedToGroup { user: *user, member: need(*user)?, group: group()? })
            }
            StepAction::HideFromSignIn { user } => Some(Record::HiddenFromSignIn { name: user.account_name().into() }),
            StepAction::AddAccountRights { user, rights } => Some(Record::RightsAdded {
                name: user.account_name().into(),
                sid: need(*user)?,
                rights: rights.clone(),
            }),
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
            StepAction::GrantAce { path, ace } => {
                Some(Record::AceAdded { path: path.clone(), ace: ace.resolved(sids)? })
            }
            StepAction::CopyFile { to, .. } => Some(Record::FileWritten { path: to.clone() }),
            StepAction::WriteFile { path, .. } => Some(Record::FileWritten { path: path.clone() }),
            StepAction::WriteMarker { path, version, .. } => {
                Some(Record::MarkerWritten { path: path.clone(), version: *version })
            }
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
    #[error(
        "{path} already exists and is owned by {owner}, not by Administrators or SYSTEM; remove it and run setup again"
    )]
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
    local_app_data
        .join(&format!("Palisade\\credentials\\{}.dpapi", user.account_name()))
        .expect("constant names are valid")
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

/// The marker's contents: the setup version and the loopback ports the proxied account's fence
/// lets through (the CLI binds its `network = allow` proxy to one of them).
pub fn marker_contents(version: u32, proxy_ports: &[u16]) -> String {
    let ports: Vec<String> = proxy_ports.iter().map(u16::to_string).collect();
    format!("{{\"palisade_elevated_setup\":{version},\"proxy_ports\":[{}]}}\n", ports.join(","))
}

/// A marker's contents, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    #[serde(rename = "palisade_elevated_setup")]
    pub version: u32,
    /// Absent in version-1 markers (their setup opened no proxy port).
    #[serde(default)]
    pub proxy_ports: Vec<u16>,
}

/// A marker's contents, if they are a marker.
pub fn parse_marker_contents(text: &str) -> Option<Marker> {
    serde_json::from_str::<Marker>(text).ok()
}

/// The version in a marker's contents, if they are a marker.
pub fn parse_marker(text: &str) -> Option<u32> {
    parse_marker_contents(text).map(|m| m.version)
}

/// The secrets (absolute) the grant guard protects for this installer.
pub fn secrets_of(installer: &Installer) -> Result<Vec<WinPath>, WinPathError> {
    let mut out = Vec::new();
    for rel in PROFILE_SECRETS
        .iter()
        .chain(APPDATA_SECRETS)
        .map(|s| s.to_string())
        .chain(installer.extra_secrets.iter().cloned())
    {
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
            a.kind != crate::ace::AceKind::Allow
                || !a.rights.writes()
                || matches!(&a.trustee, Trustee::Sid(s) if admin(s))
        })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod records_trust_tests;
