//! Fact gathering: what the plans need to know about this machine, read from NetApi, LSA, the
//! registry, the firewall (through [`Fence`]), the file system and file security.

use std::io;
use std::path::{Path, PathBuf};

use windows_sys::Win32::UI::Shell::{
    FOLDERID_ProgramData, FOLDERID_ProgramFiles, FOLDERID_ProgramFilesX86, FOLDERID_Windows,
};

use palisade_windows_elevated::ace::{readable_through, AceKind, AceSpec, Inheritance, Rights, Trustee, WRITE_BITS};
use palisade_windows_elevated::check_report::{is_access_denied, FactGroup, Unread};
use palisade_windows_elevated::facts::{
    AccountRight, AccountRightsFact, AceFact, DirFact, FileFact, GroupFact, MachineFacts, MarkerFact, ProfileFact,
    SandboxUser, Sids, SystemFolder, SystemFolderFact, UserFact, GROUP_NAME,
};
use palisade_windows_elevated::setup_plan::{parse_marker_contents, Layout};
use palisade_windows_elevated::sid::Sid;
use palisade_windows_elevated::winpath::WinPath;

use crate::fence::Fence;
use crate::{accounts, acl, system};

/// A fact that could not be read. `Display` is one line.
#[derive(Debug, thiserror::Error)]
#[error("reading {what}: {err}")]
pub struct GatherError {
    pub what: String,
    pub err: String,
    /// The OS refused the read (access denied): an administrator could read it.
    pub access_denied: bool,
}

/// An error a fact read can end in, and whether it means "access denied".
pub trait Cause: ToString {
    fn access_denied(&self) -> bool {
        false
    }
}

impl Cause for io::Error {
    fn access_denied(&self) -> bool {
        self.kind() == io::ErrorKind::PermissionDenied
            || self.raw_os_error().is_some_and(|c| is_access_denied(c as u32))
    }
}

impl Cause for crate::firewall::FirewallError {
    fn access_denied(&self) -> bool {
        self.code().is_some_and(is_access_denied)
    }
}

impl Cause for String {}
impl Cause for &str {}

fn ctx<E: Cause>(what: impl Into<String>) -> impl FnOnce(E) -> GatherError {
    let what = what.into();
    move |e| GatherError { what, err: e.to_string(), access_denied: e.access_denied() }
}

/// For errors that never mean "access denied" (a path or SID that does not parse).
fn ctx_text<E: ToString>(what: impl Into<String>) -> impl FnOnce(E) -> GatherError {
    let what = what.into();
    move |e| GatherError::new(what, e.to_string())
}

impl GatherError {
    pub fn new(what: impl Into<String>, err: impl Into<String>) -> GatherError {
        GatherError { what: what.into(), err: err.into(), access_denied: false }
    }

    /// The fact group as `palisade check` reports it when this read failed.
    pub fn unread(&self, fact: FactGroup) -> Unread {
        Unread::new(fact, self.access_denied, &self.to_string())
    }
}

/// `ProfileList` key of the machine.
const PROFILE_LIST: &str = "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList";

pub fn to_path(p: &WinPath) -> PathBuf {
    PathBuf::from(p.as_str())
}

pub fn win_path(p: &Path) -> Result<WinPath, GatherError> {
    WinPath::parse_exact(&p.to_string_lossy()).map_err(ctx_text(format!("the path {}", p.display())))
}

/// The profile folder of `sid` as `ProfileList` has it; `None` when it has none.
pub fn profile_of(sid: &str) -> Result<Option<WinPath>, GatherError> {
    let what = || format!("the profile of {sid} in ProfileList");
    let Some(raw) =
        system::reg_string(system::RegRoot::LocalMachine, &format!("{PROFILE_LIST}\\{sid}"), "ProfileImagePath")
            .map_err(ctx(what()))?
    else {
        return Ok(None);
    };
    let expanded = system::expand_env(&raw).map_err(ctx(what()))?;
    WinPath::parse_exact(&expanded).map(Some).map_err(ctx_text(what()))
}

pub fn program_data() -> Result<WinPath, GatherError> {
    let p = system::known_folder(&FOLDERID_ProgramData).map_err(ctx("%ProgramData%"))?;
    win_path(&p)
}

fn sid(s: &str, what: &str) -> Result<Sid, GatherError> {
    Sid::parse(s).map_err(ctx_text(what.to_string()))
}

/// The current SIDs of Palisade's group and accounts (looked up again after a step creates one).
pub fn current_sids() -> Result<Sids, GatherError> {
    let look = |name: &str| -> Result<Option<Sid>, GatherError> {
        match crate::sid::lookup_local_account(name).map_err(ctx(format!("the SID of {name}")))? {
            Some(s) => Ok(Some(sid(&s, name)?)),
            None => Ok(None),
        }
    };
    Ok(Sids {
        group: look(GROUP_NAME)?,
        offline: look(SandboxUser::Offline.account_name())?,
        online: look(SandboxUser::Online.account_name())?,
        proxied: look(SandboxUser::Proxied.account_name())?,
    })
}

/// Everything but the ACEs on planned paths (see [`gather_aces`]) and the stored credentials
/// (only the CLI can decrypt them; `request::validate` fills them in).
pub fn gather(layout: &Layout, fence: &dyn Fence) -> Result<MachineFacts, GatherError> {
    let mut f = MachineFacts::default();
    let sids = current_sids()?;
    accounts(&mut f, &sids)?;
    hidden_accounts(&mut f)?;
    account_rights(&mut f)?;
    f.firewall.profiles = fence.profiles().map_err(ctx("the firewall profiles"))?;
    f.firewall.rules = fence.rules().map_err(ctx("Palisade's firewall rules"))?;
    f.firewall.wfp = fence.wfp_objects().map_err(ctx("Palisade's WFP objects"))?;
    palisade_files(&mut f, layout)?;
    system_folders(&mut f)?;
    Ok(f)
}

/// Why LSA rights and WFP objects are not read without administrator rights.
pub const NEEDS_ADMIN: &str = "palisade check runs without administrator rights";

/// What `palisade check` reads: everything [`gather`] reads but the system folders, each group
/// of facts on its own, so that one that cannot be read is reported instead of ending the
/// check. The firewall is read directly (`crate::firewall`, `crate::wfp`) to keep its error
/// codes. Credentials are the CLI's to add.
///
/// Without `admin` (the caller's token is not elevated) LSA account rights and WFP objects are
/// not read at all but reported as needing an administrator: both hide what the caller may not
/// read rather than always failing (`LsaEnumerateAccountRights` can answer "no rights",
/// WFP's enumeration returns only the filters the caller may read), so a read would mistake
/// "not shown" for "missing".
pub fn gather_readable(layout: &Layout, admin: bool) -> (MachineFacts, Vec<Unread>) {
    let mut f = MachineFacts::default();
    let mut unread = Vec::new();
    let accounts_read = current_sids().and_then(|sids| accounts(&mut f, &sids));
    if let Err(e) = accounts_read {
        f.users.clear();
        f.groups.clear();
        f.profiles.clear();
        unread.push(e.unread(FactGroup::Accounts));
    } else if !admin {
        unread.push(Unread::new(FactGroup::AccountRights, true, NEEDS_ADMIN));
    } else if let Err(e) = account_rights(&mut f) {
        f.account_rights.clear();
        unread.push(e.unread(FactGroup::AccountRights));
    }
    if let Err(e) = hidden_accounts(&mut f) {
        f.hidden_accounts.clear();
        unread.push(e.unread(FactGroup::HiddenAccounts));
    }
    match crate::firewall::firewall_profiles().map_err(ctx("the firewall profiles")) {
        Ok(p) => f.firewall.profiles = p,
        Err(e) => unread.push(e.unread(FactGroup::FirewallProfiles)),
    }
    match crate::firewall::palisade_rules().map_err(ctx("Palisade's firewall rules")) {
        Ok(r) => f.firewall.rules = r,
        Err(e) => unread.push(e.unread(FactGroup::FirewallRules)),
    }
    if !admin {
        unread.push(Unread::new(FactGroup::Wfp, true, NEEDS_ADMIN));
    } else {
        match crate::wfp::palisade_objects().map_err(ctx("Palisade's WFP objects")) {
            Ok(o) => f.firewall.wfp = o,
            Err(e) => unread.push(e.unread(FactGroup::Wfp)),
        }
    }
    if let Err(e) = palisade_files(&mut f, layout) {
        f.directories.clear();
        f.files.clear();
        f.marker = None;
        unread.push(e.unread(FactGroup::Files));
    }
    (f, unread)
}

/// Palisade's group (with its members) and accounts (with their groups and profiles).
fn accounts(f: &mut MachineFacts, sids: &Sids) -> Result<(), GatherError> {
    if let Some(g) = &sids.group {
        let members = accounts::group_members(GROUP_NAME)
            .map_err(ctx(format!("the members of {GROUP_NAME}")))?
            .unwrap_or_default();
        let members = members.iter().map(|m| sid(m, "a group member")).collect::<Result<_, _>>()?;
        f.groups.push(GroupFact { name: GROUP_NAME.into(), sid: g.clone(), members });
    }
    for u in SandboxUser::ALL {
        let name = u.account_name();
        let Some(user_sid) = sids.user(u) else { continue };
        let Some((disabled, group_names)) = accounts::user_info(name).map_err(ctx(format!("the account {name}")))?
        else {
            continue;
        };
        let mut groups = Vec::new();
        for g in group_names {
            if let Some(s) = crate::sid::lookup_account(&g).map_err(ctx(format!("the SID of the group {g}")))? {
                groups.push(sid(&s, "a group SID")?);
            }
        }
        f.users.push(UserFact { name: name.into(), sid: user_sid.clone(), groups, disabled });
        if let Some(path) = profile_of(user_sid.as_str())? {
            f.profiles.push(ProfileFact { sid: user_sid.clone(), path });
        }
    }
    Ok(())
}

/// The sign-in screen's `UserList` value of each sandbox account (present or not).
fn hidden_accounts(f: &mut MachineFacts) -> Result<(), GatherError> {
    for u in SandboxUser::ALL {
        let name = u.account_name();
        if system::reg_dword(system::RegRoot::LocalMachine, accounts::USER_LIST_KEY, name)
            .map_err(ctx("the sign-in screen's UserList"))?
            == Some(0)
        {
            f.hidden_accounts.push(name.into());
        }
    }
    Ok(())
}

/// The LSA account rights of the accounts in `f.users` (needs an administrator).
fn account_rights(f: &mut MachineFacts) -> Result<(), GatherError> {
    let users: Vec<(String, Sid)> = f.users.iter().map(|u| (u.name.clone(), u.sid.clone())).collect();
    for (name, user_sid) in users {
        let rights: Vec<AccountRight> = accounts::account_rights(user_sid.as_str())
            .map_err(ctx(format!("the account rights of {name}")))?
            .iter()
            .filter_map(|r| right_named(r))
            .collect();
        if !rights.is_empty() {
            f.account_rights.push(AccountRightsFact { sid: user_sid, rights });
        }
    }
    Ok(())
}

/// Palisade's folders and files (the marker read from its file).
fn palisade_files(f: &mut MachineFacts, layout: &Layout) -> Result<(), GatherError> {
    for dir in [&layout.dir, &layout.bin] {
        if let Some(d) = directory(dir)? {
            f.directories.push(d);
        }
    }
    for file in [&layout.runner, &layout.gitconfig, &layout.marker] {
        if let Some(x) = file_fact(file)? {
            if file == &layout.marker {
                if let Some(m) = x.text.as_deref().and_then(parse_marker_contents) {
                    f.marker = Some(MarkerFact { path: file.clone(), version: m.version, proxy_ports: m.proxy_ports });
                }
            }
            f.files.push(x);
        }
    }
    Ok(())
}

/// Who may read the system folders.
fn system_folders(f: &mut MachineFacts) -> Result<(), GatherError> {
    for (folder, id) in [
        (SystemFolder::Windows, FOLDERID_Windows),
        (SystemFolder::ProgramFiles, FOLDERID_ProgramFiles),
        (SystemFolder::ProgramFilesX86, FOLDERID_ProgramFilesX86),
        (SystemFolder::ProgramData, FOLDERID_ProgramData),
    ] {
        let Ok(p) = system::known_folder(&id) else { continue };
        let path = win_path(&p)?;
        let Some(sec) = acl::file_security(&p).map_err(ctx(format!("who may read {path}")))? else { continue };
        f.system_folders.push(SystemFolderFact {
            folder,
            owner: sid(&sec.owner, "an owner")?,
            readable_by: readable_through(&sec.aces),
            path,
        });
    }
    Ok(())
}

fn right_named(name: &str) -> Option<AccountRight> {
    [
        AccountRight::SeDenyInteractiveLogonRight,
        AccountRight::SeDenyRemoteInteractiveLogonRight,
        AccountRight::SeDenyNetworkLogonRight,
        AccountRight::SeDenyBatchLogonRight,
        AccountRight::SeDenyServiceLogonRight,
    ]
    .into_iter()
    .find(|r| r.as_str() == name)
}

/// A folder of Palisade's: owner, protection, every explicit ACE (an entry that is not one of
/// Palisade's shapes but may write is kept as a full-control entry, so the plan resets the
/// folder rather than overlook it), and its entries.
fn directory(path: &WinPath) -> Result<Option<DirFact>, GatherError> {
    let p = to_path(path);
    if !p.is_dir() {
        return Ok(None);
    }
    let Some(sec) = acl::file_security(&p).map_err(ctx(format!("the security of {path}")))? else { return Ok(None) };
    let mut explicit_aces = Vec::new();
    for a in sec.aces.iter().filter(|a| a.flags & palisade_windows_elevated::ace::INHERITED_ACE == 0) {
        match a.explicit_spec() {
            Some(s) => explicit_aces.push(s),
            None if a.ace_type == 0 && a.mask & WRITE_BITS != 0 => {
                if let Ok(s) = Sid::parse(&a.sid) {
                    explicit_aces.push(AceSpec {
                        kind: AceKind::Allow,
                        trustee: Trustee::Sid(s),
                        rights: Rights::FullControl,
                        inheritance: Inheritance::ContainerAndObject,
                    });
                }
            }
            None => {}
        }
    }
    let mut entries = Vec::new();
    for e in std::fs::read_dir(&p).map_err(ctx(format!("the entries of {path}")))? {
        let e = e.map_err(ctx(format!("the entries of {path}")))?;
        entries.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(Some(DirFact {
        path: path.clone(),
        owner: sid(&sec.owner, "an owner")?,
        protected: sec.protected,
        explicit_aces,
        entries,
    }))
}

/// SHA-256 of a file (and its text when it is small UTF-8, for the marker and git config).
fn file_fact(path: &WinPath) -> Result<Option<FileFact>, GatherError> {
    let bytes = match std::fs::read(to_path(path)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ctx(format!("the file {path}"))(e)),
    };
    let sha256 = system::sha256_hex(&bytes).map_err(ctx(format!("the SHA-256 of {path}")))?;
    let text = if bytes.len() <= 64 * 1024 { String::from_utf8(bytes).ok() } else { None };
    Ok(Some(FileFact { path: path.clone(), sha256, text }))
}

/// Lowercase hex SHA-256 of a file.
pub fn file_sha256(path: &Path) -> Result<String, GatherError> {
    let bytes = std::fs::read(path).map_err(ctx(format!("the file {}", path.display())))?;
    system::sha256_hex(&bytes).map_err(ctx(format!("the SHA-256 of {}", path.display())))
}

/// The explicit ACEs naming one of `trustees` on each path (missing paths have none).
pub fn gather_aces(paths: &[WinPath], trustees: &[Sid]) -> Result<Vec<AceFact>, GatherError> {
    let mut out = Vec::new();
    let mut seen: Vec<&WinPath> = Vec::new();
    for path in paths {
        if seen.contains(&path) {
            continue;
        }
        seen.push(path);
        let Some(sec) = acl::file_security(&to_path(path)).map_err(ctx(format!("the access entries of {path}")))?
        else {
            continue;
        };
        for a in sec.aces.iter().filter_map(|a| a.explicit_spec()) {
            if matches!(&a.trustee, Trustee::Sid(s) if trustees.contains(s)) {
                out.push(AceFact { path: path.clone(), ace: a });
            }
        }
    }
    Ok(out)
}
