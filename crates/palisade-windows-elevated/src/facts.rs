//! What the setup binary (and `palisade check`) found on the machine, as data.
//!
//! The OS-facing code fills these from `NetUserEnum`/`NetLocalGroupGetMembers`,
//! `LsaEnumerateAccountRights`, the registry, `INetFwPolicy2`, the WFP management API,
//! `GetNamedSecurityInfo` and the file system; the plans only read them. Every list holds only
//! what concerns Palisade (its accounts, its group, rules and filters named or keyed as its own,
//! ACEs naming its trustees on the paths it plans for).

use serde::{Deserialize, Serialize};

use crate::ace::AceSpec;
use crate::firewall::{InstalledFilter, InstalledRule, WfpObject};
use crate::sid::Sid;
use crate::winpath::{fold, WinPath};

/// The local group every sandbox account belongs to; file grants name it.
pub const GROUP_NAME: &str = "PalisadeSandboxUsers";

/// The sandbox accounts: one fenced off the network, one fenced to Palisade's proxy ports
/// (`network = allow`), one that is not fenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxUser {
    Offline,
    Online,
    Proxied,
}

impl SandboxUser {
    pub const ALL: [SandboxUser; 3] = [SandboxUser::Offline, SandboxUser::Online, SandboxUser::Proxied];

    pub fn account_name(self) -> &'static str {
        match self {
            SandboxUser::Offline => "PalisadeOffline",
            SandboxUser::Online => "PalisadeOnline",
            SandboxUser::Proxied => "PalisadeProxied",
        }
    }

    /// Short id used in step ids (`user.offline.create`).
    pub fn id(self) -> &'static str {
        match self {
            SandboxUser::Offline => "offline",
            SandboxUser::Online => "online",
            SandboxUser::Proxied => "proxied",
        }
    }

    /// Whether commands run as this account may use the network unfenced.
    pub fn network(self) -> bool {
        self == SandboxUser::Online
    }

    /// What setup's account comment and description say about its network.
    pub fn network_description(self) -> &'static str {
        match self {
            SandboxUser::Offline => "is fenced off the network",
            SandboxUser::Online => "may use the network",
            SandboxUser::Proxied => "reaches only Palisade's network proxy on loopback",
        }
    }

    /// The account for `network = off` (`false`) or `on` (`true`).
    pub fn for_network(network: bool) -> SandboxUser {
        if network {
            SandboxUser::Online
        } else {
            SandboxUser::Offline
        }
    }
}

/// Logon rights (LSA account rights) that matter for the sandbox accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccountRight {
    SeDenyInteractiveLogonRight,
    SeDenyRemoteInteractiveLogonRight,
    SeDenyNetworkLogonRight,
    SeDenyBatchLogonRight,
    SeDenyServiceLogonRight,
}

impl AccountRight {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRight::SeDenyInteractiveLogonRight => "SeDenyInteractiveLogonRight",
            AccountRight::SeDenyRemoteInteractiveLogonRight => "SeDenyRemoteInteractiveLogonRight",
            AccountRight::SeDenyNetworkLogonRight => "SeDenyNetworkLogonRight",
            AccountRight::SeDenyBatchLogonRight => "SeDenyBatchLogonRight",
            AccountRight::SeDenyServiceLogonRight => "SeDenyServiceLogonRight",
        }
    }
}

/// The rights setup gives each sandbox account.
///
/// `SeDenyInteractiveLogonRight` is deliberately **not** in the list: the CLI starts the runner
/// with `CreateProcessWithLogonW`, which the Secondary Logon service carries out as an
/// *interactive* logon of the account; denying that logon type makes it fail with
/// `ERROR_LOGON_TYPE_NOT_GRANTED` (1385). The unelevated CLI has no other way to start a
/// process as another account (`CreateProcessAsUser` needs `SeAssignPrimaryTokenPrivilege`,
/// `CreateProcessWithTokenW` needs `SeImpersonatePrivilege`). What keeps people from signing in
/// as the account instead: it is hidden from the sign-in screen, its password is 32 random
/// characters nobody is shown, stored only DPAPI-encrypted for the installing user, and every
/// other logon type is denied — remote desktop, network (SMB, WinRM with the password), batch
/// (scheduled tasks) and service.
pub const DENIED_RIGHTS: [AccountRight; 4] = [
    AccountRight::SeDenyRemoteInteractiveLogonRight,
    AccountRight::SeDenyNetworkLogonRight,
    AccountRight::SeDenyBatchLogonRight,
    AccountRight::SeDenyServiceLogonRight,
];

/// A local account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFact {
    pub name: String,
    pub sid: Sid,
    /// Every local group the account belongs to.
    pub groups: Vec<Sid>,
    pub disabled: bool,
}

/// The LSA account rights held by a SID itself. LSA keeps them after the account is deleted,
/// which is why uninstall removes them first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRightsFact {
    pub sid: Sid,
    pub rights: Vec<AccountRight>,
}

/// A local group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFact {
    pub name: String,
    pub sid: Sid,
    pub members: Vec<Sid>,
}

/// A Windows Firewall profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FirewallProfile {
    Domain,
    Private,
    Public,
}

impl FirewallProfile {
    pub const ALL: [FirewallProfile; 3] = [FirewallProfile::Domain, FirewallProfile::Private, FirewallProfile::Public];
}

/// One firewall profile's state as the firewall enforces it (local settings merged with Group
/// Policy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallProfileFact {
    pub profile: FirewallProfile,
    pub enabled: bool,
    /// `false` when Group Policy sets "apply local firewall rules" to No: rules Palisade adds
    /// locally are then ignored.
    pub local_rules_honored: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallFacts {
    pub profiles: Vec<FirewallProfileFact>,
    /// Rules whose names start with `Palisade`, as read back.
    pub rules: Vec<InstalledRule>,
    /// Palisade's WFP provider, sublayer and filters, as read back.
    pub wfp: Vec<WfpObject>,
}

impl FirewallFacts {
    pub fn filters(&self) -> impl Iterator<Item = &InstalledFilter> {
        self.wfp.iter().filter_map(|o| match o {
            WfpObject::Filter(f) => Some(f),
            _ => None,
        })
    }
}

/// A sandbox account's stored password as the installing user sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialFact {
    pub user: SandboxUser,
    pub path: WinPath,
    /// `CryptUnprotectData` succeeded.
    pub decryptable: bool,
    /// `LogonUser` with the decrypted password succeeded (the account has that password).
    pub logon_ok: bool,
}

/// A folder Palisade creates or relies on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirFact {
    pub path: WinPath,
    pub owner: Sid,
    /// The DACL does not inherit from the parent.
    pub protected: bool,
    /// The explicit (not inherited) ACEs, trustees as SIDs.
    pub explicit_aces: Vec<AceSpec>,
    /// Names of the entries inside.
    pub entries: Vec<String>,
}

/// A file Palisade writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFact {
    pub path: WinPath,
    /// Lowercase hex SHA-256 of the contents.
    pub sha256: String,
    /// The contents, for Palisade's small text files (the git configuration, the marker).
    pub text: Option<String>,
}

/// An explicit ACE on a path, trustee as a SID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AceFact {
    pub path: WinPath,
    pub ace: AceSpec,
}

/// Which system folder a [`SystemFolderFact`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemFolder {
    Windows,
    ProgramFiles,
    ProgramFilesX86,
    ProgramData,
}

impl SystemFolder {
    pub fn id(self) -> &'static str {
        match self {
            SystemFolder::Windows => "windows",
            SystemFolder::ProgramFiles => "program-files",
            SystemFolder::ProgramFilesX86 => "program-files-x86",
            SystemFolder::ProgramData => "program-data",
        }
    }
}

/// A system folder and who may read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemFolderFact {
    pub folder: SystemFolder,
    pub path: WinPath,
    pub owner: Sid,
    /// Groups that hold an inheriting read-and-execute allow on the folder (e.g. `Users`).
    pub readable_by: Vec<Sid>,
}

/// A sandbox account's profile folder (created the first time the runner logs on with a
/// profile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileFact {
    pub sid: Sid,
    pub path: WinPath,
}

/// The marker setup writes last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerFact {
    pub path: WinPath,
    pub version: u32,
    /// The proxied account's proxy ports the marker lists.
    #[serde(default)]
    pub proxy_ports: Vec<u16>,
}

/// Everything the plans look at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineFacts {
    pub users: Vec<UserFact>,
    pub groups: Vec<GroupFact>,
    /// Value names under `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\
    /// SpecialAccounts\UserList` whose value is 0 (hidden from the sign-in screen).
    pub hidden_accounts: Vec<String>,
    pub account_rights: Vec<AccountRightsFact>,
    pub firewall: FirewallFacts,
    pub credentials: Vec<CredentialFact>,
    pub directories: Vec<DirFact>,
    pub files: Vec<FileFact>,
    pub aces: Vec<AceFact>,
    pub system_folders: Vec<SystemFolderFact>,
    pub profiles: Vec<ProfileFact>,
    pub marker: Option<MarkerFact>,
}

impl MachineFacts {
    pub fn user(&self, name: &str) -> Option<&UserFact> {
        self.users.iter().find(|u| fold(&u.name) == fold(name))
    }
    pub fn sandbox_user(&self, u: SandboxUser) -> Option<&UserFact> {
        self.user(u.account_name())
    }
    pub fn group(&self, name: &str) -> Option<&GroupFact> {
        self.groups.iter().find(|g| fold(&g.name) == fold(name))
    }
    pub fn sandbox_group(&self) -> Option<&GroupFact> {
        self.group(GROUP_NAME)
    }
    pub fn is_hidden(&self, name: &str) -> bool {
        self.hidden_accounts.iter().any(|h| fold(h) == fold(name))
    }
    pub fn rights_of(&self, sid: &Sid) -> &[AccountRight] {
        self.account_rights.iter().find(|r| &r.sid == sid).map_or(&[], |r| &r.rights)
    }
    pub fn credential(&self, u: SandboxUser) -> Option<&CredentialFact> {
        self.credentials.iter().find(|c| c.user == u)
    }
    pub fn directory(&self, path: &WinPath) -> Option<&DirFact> {
        self.directories.iter().find(|d| &d.path == path)
    }
    pub fn file(&self, path: &WinPath) -> Option<&FileFact> {
        self.files.iter().find(|f| &f.path == path)
    }
    pub fn has_ace(&self, path: &WinPath, ace: &AceSpec) -> bool {
        self.aces.iter().any(|a| &a.path == path && &a.ace == ace)
    }
    pub fn rule(&self, name: &str) -> Option<&InstalledRule> {
        self.firewall.rules.iter().find(|r| r.name == name)
    }
    pub fn has_wfp(&self, o: &WfpObject) -> bool {
        self.firewall.wfp.contains(o)
    }
    pub fn wfp_key_present(&self, key: &str) -> bool {
        self.firewall.wfp.iter().any(|o| o.key() == key)
    }
}

/// The SIDs of Palisade's group and accounts, where they exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sids {
    pub group: Option<Sid>,
    pub offline: Option<Sid>,
    pub online: Option<Sid>,
    pub proxied: Option<Sid>,
}

impl Sids {
    pub fn from_facts(f: &MachineFacts) -> Sids {
        Sids {
            group: f.sandbox_group().map(|g| g.sid.clone()),
            offline: f.sandbox_user(SandboxUser::Offline).map(|u| u.sid.clone()),
            online: f.sandbox_user(SandboxUser::Online).map(|u| u.sid.clone()),
            proxied: f.sandbox_user(SandboxUser::Proxied).map(|u| u.sid.clone()),
        }
    }

    pub fn user(&self, u: SandboxUser) -> Option<&Sid> {
        match u {
            SandboxUser::Offline => self.offline.as_ref(),
            SandboxUser::Online => self.online.as_ref(),
            SandboxUser::Proxied => self.proxied.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lookup_ignore_case() {
        let mut f = MachineFacts::default();
        f.users.push(UserFact {
            name: "palisadeoffline".into(),
            sid: Sid::parse("S-1-5-21-1-2-3-1001").unwrap(),
            groups: vec![],
            disabled: false,
        });
        assert!(f.sandbox_user(SandboxUser::Offline).is_some());
        assert!(f.sandbox_user(SandboxUser::Online).is_none());
        let s = Sids::from_facts(&f);
        assert_eq!(s.user(SandboxUser::Offline).unwrap().rid(), 1001);
        assert_eq!(SandboxUser::for_network(true), SandboxUser::Online);
        assert!(!SandboxUser::Offline.network());
    }

    #[test]
    fn interactive_logon_is_not_denied() {
        assert!(!DENIED_RIGHTS.contains(&AccountRight::SeDenyInteractiveLogonRight));
        assert!(DENIED_RIGHTS.contains(&AccountRight::SeDenyNetworkLogonRight));
        assert!(DENIED_RIGHTS.contains(&AccountRight::SeDenyRemoteInteractiveLogonRight));
    }

    #[test]
    fn facts_round_trip_as_json() {
        let f = MachineFacts::default();
        let j = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<MachineFacts>(&j).unwrap(), f);
    }
}
