//! Fact gathering: what the plans need to know about this machine, read from NetApi, LSA, the
//! registry, the firewall (through [`Fence`]), the file system and file security.

use std::io;
use std::path::{Path, PathBuf};

use windows_sys::Win32::System::Registry::HKEY_LOCAL_MACHINE;
use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, FOLDERID_ProgramFiles, FOLDERID_ProgramFilesX86, FOLDERID_Windows};

use palisade_windows_elevated::ace::{readable_through, AceKind, AceSpec, Inheritance, Rights, Trustee, WRITE_BITS};
use palisade_windows_elevated::facts::{
    AccountRight, AccountRightsFact, AceFact, DirFact, FileFact, GroupFact, MachineFacts, MarkerFact, ProfileFact, SandboxUser, Sids,
    SystemFolder, SystemFolderFact, UserFact, GROUP_NAME,
};
use palisade_windows_elevated::setup_plan::{parse_marker, Layout};
use palisade_windows_elevated::sid::Sid;
use palisade_windows_elevated::winpath::WinPath;

use crate::fence::Fence;
use crate::os;
use crate::win;

/// A fact that could not be read. `Display` is one line.
#[derive(Debug, thiserror::Error)]
#[error("reading {what}: {err}")]
pub struct GatherError {
    pub what: String,
    pub err: String,
}

fn ctx<E: ToString>(what: impl Into<String>) -> impl FnOnce(E) -> GatherError {
    let what = what.into();
    move |e| GatherError { what, err: e.to_string() }
}

/// `ProfileList` key of the machine.
const PROFILE_LIST: &str = "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList";

pub fn to_path(p: &WinPath) -> PathBuf {
    PathBuf::from(p.as_str())
}

pub fn win_path(p: &Path) -> Result<WinPath, GatherError> {
    WinPath::parse_exact(&p.to_string_lossy()).map_err(ctx(format!("the path {}", p.display())))
}

/// The profile folder of `sid` as `ProfileList` has it; `None` when it has none.
pub fn profile_of(sid: &str) -> Result<Option<WinPath>, GatherError> {
    let what = || format!("the profile of {sid} in ProfileList");
    let Some(raw) = win::reg_string(HKEY_LOCAL_MACHINE, &format!("{PROFILE_LIST}\\{sid}"), "ProfileImagePath").map_err(ctx(what()))? else {
        return Ok(None);
    };
    let expanded = win::expand_env(&raw).map_err(ctx(what()))?;
    WinPath::parse_exact(&expanded).map(Some).map_err(ctx(what()))
}

pub fn program_data() -> Result<WinPath, GatherError> {
    let p = win::known_folder(&FOLDERID_ProgramData).map_err(ctx("%ProgramData%"))?;
    win_path(&p)
}

fn sid(s: &str, what: &str) -> Result<Sid, GatherError> {
    Sid::parse(s).map_err(ctx(what.to_string()))
}

/// The current SIDs of Palisade's group and accounts (looked up again after a step creates one).
pub fn current_sids() -> Result<Sids, GatherError> {
    let look = |name: &str| -> Result<Option<Sid>, GatherError> {
        match win::lookup_local_account(name).map_err(ctx(format!("the SID of {name}")))? {
            Some(s) => Ok(Some(sid(&s, name)?)),
            None => Ok(None),
        }
    };
    Ok(Sids { group: look(GROUP_NAME)?, offline: look(SandboxUser::Offline.account_name())?, online: look(SandboxUser::Online.account_name())? })
}

/// Everything but the ACEs on planned paths (see [`gather_aces`]) and the stored credentials
/// (only the CLI can decrypt them; `request::validate` fills them in).
pub fn gather(layout: &Layout, fence: &dyn Fence) -> Result<MachineFacts, GatherError> {
    let mut f = MachineFacts::default();
    let sids = current_sids()?;

    if let Some(g) = &sids.group {
        let members = os::group_members(GROUP_NAME).map_err(ctx(format!("the members of {GROUP_NAME}")))?.unwrap_or_default();
        let members = members.iter().map(|m| sid(m, "a group member")).collect::<Result<_, _>>()?;
        f.groups.push(GroupFact { name: GROUP_NAME.into(), sid: g.clone(), members });
    }
    for u in SandboxUser::ALL {
        let name = u.account_name();
        let Some(user_sid) = sids.user(u) else { continue };
        let Some((disabled, group_names)) = os::user_info(name).map_err(ctx(format!("the account {name}")))? else { continue };
        let mut groups = Vec::new();
        for g in group_names {
            if let Some(s) = win::lookup_account(&g).map_err(ctx(format!("the SID of the group {g}")))? {
                groups.push(sid(&s, "a group SID")?);
            }
        }
        f.users.push(UserFact { name: name.into(), sid: user_sid.clone(), groups, disabled });
        if win::reg_dword(HKEY_LOCAL_MACHINE, os::USER_LIST_KEY, name).map_err(ctx("the sign-in screen's UserList"))? == Some(0) {
            f.hidden_accounts.push(name.into());
        }
        let rights: Vec<AccountRight> = os::account_rights(user_sid.as_str())
            .map_err(ctx(format!("the account rights of {name}")))?
            .iter()
            .filter_map(|r| right_named(r))
            .collect();
        if !rights.is_empty() {
            f.account_rights.push(AccountRightsFact { sid: user_sid.clone(), rights });
        }
        if let Some(path) = profile_of(user_sid.as_str())? {
            f.profiles.push(ProfileFact { sid: user_sid.clone(), path });
        }
    }
    for u in SandboxUser::ALL {
        let name = u.account_name();
        if sids.user(u).is_none() && win::reg_dword(HKEY_LOCAL_MACHINE, os::USER_LIST_KEY, name).map_err(ctx("the sign-in screen's UserList"))? == Some(0) {
            f.hidden_accounts.push(name.into());
        }
    }

    f.firewall.profiles = fence.profiles().map_err(ctx("the firewall profiles"))?;
    f.firewall.rules = fence.rules().map_err(ctx("Palisade's firewall rules"))?;
    f.firewall.wfp = fence.wfp_objects().map_err(ctx("Palisade's WFP objects"))?;

    for dir in [&layout.dir, &layout.bin] {
        if let Some(d) = directory(dir)? {
            f.directories.push(d);
        }
    }
    for file in [&layout.runner, &layout.gitconfig, &layout.marker] {
        if let Some(x) = file_fact(file)? {
            if file == &layout.marker {
                if let Some(version) = x.text.as_deref().and_then(parse_marker) {
                    f.marker = Some(MarkerFact { path: file.clone(), version });
                }
            }
            f.files.push(x);
        }
    }
    for (folder, id) in [
        (SystemFolder::Windows, FOLDERID_Windows),
        (SystemFolder::ProgramFiles, FOLDERID_ProgramFiles),
        (SystemFolder::ProgramFilesX86, FOLDERID_ProgramFilesX86),
        (SystemFolder::ProgramData, FOLDERID_ProgramData),
    ] {
        let Ok(p) = win::known_folder(&id) else { continue };
        let path = win_path(&p)?;
        let Some(sec) = win::file_security(&p).map_err(ctx(format!("who may read {path}")))? else { continue };
        f.system_folders.push(SystemFolderFact { folder, owner: sid(&sec.owner, "an owner")?, readable_by: readable_through(&sec.aces), path });
    }
    Ok(f)
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
    let Some(sec) = win::file_security(&p).map_err(ctx(format!("the security of {path}")))? else { return Ok(None) };
    let mut explicit_aces = Vec::new();
    for a in sec.aces.iter().filter(|a| a.flags & palisade_windows_elevated::ace::INHERITED_ACE == 0) {
        match a.explicit_spec() {
            Some(s) => explicit_aces.push(s),
            None if a.ace_type == 0 && a.mask & WRITE_BITS != 0 => {
                if let Ok(s) = Sid::parse(&a.sid) {
                    explicit_aces.push(AceSpec { kind: AceKind::Allow, trustee: Trustee::Sid(s), rights: Rights::FullControl, inheritance: Inheritance::ContainerAndObject });
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
    Ok(Some(DirFact { path: path.clone(), owner: sid(&sec.owner, "an owner")?, protected: sec.protected, explicit_aces, entries }))
}

/// SHA-256 of a file (and its text when it is small UTF-8, for the marker and git config).
fn file_fact(path: &WinPath) -> Result<Option<FileFact>, GatherError> {
    let bytes = match std::fs::read(to_path(path)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ctx(format!("the file {path}"))(e)),
    };
    let sha256 = win::sha256_hex(&bytes).map_err(ctx(format!("the SHA-256 of {path}")))?;
    let text = if bytes.len() <= 64 * 1024 { String::from_utf8(bytes).ok() } else { None };
    Ok(Some(FileFact { path: path.clone(), sha256, text }))
}

/// Lowercase hex SHA-256 of a file.
pub fn file_sha256(path: &Path) -> Result<String, GatherError> {
    let bytes = std::fs::read(path).map_err(ctx(format!("the file {}", path.display())))?;
    win::sha256_hex(&bytes).map_err(ctx(format!("the SHA-256 of {}", path.display())))
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
        let Some(sec) = win::file_security(&to_path(path)).map_err(ctx(format!("the access entries of {path}")))? else { continue };
        for a in sec.aces.iter().filter_map(|a| a.explicit_spec()) {
            if matches!(&a.trustee, Trustee::Sid(s) if trustees.contains(s)) {
                out.push(AceFact { path: path.clone(), ace: a });
            }
        }
    }
    Ok(out)
}
