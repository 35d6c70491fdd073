//! Access control entries as data, their SDDL form, and the guard every grant passes.
//!
//! ACEs are only ever **added** to a path's DACL (and removed one by one on undo): a path's
//! existing security descriptor is never replaced, except for the folders Palisade creates
//! itself, whose whole descriptor is Palisade's.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::facts::{SandboxUser, Sids};
use crate::sid::Sid;
use crate::winpath::{fold, WinPath};

/// Whom an ACE names. The sandbox accounts and group are symbolic until they exist; [`Sids`]
/// resolves them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trustee {
    SandboxGroup,
    User(SandboxUser),
    Sid(Sid),
}

impl Trustee {
    pub fn resolve(&self, sids: &Sids) -> Option<Sid> {
        match self {
            Trustee::SandboxGroup => sids.group.clone(),
            Trustee::User(u) => sids.user(*u).cloned(),
            Trustee::Sid(s) => Some(s.clone()),
        }
    }
}

impl fmt::Display for Trustee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trustee::SandboxGroup => f.write_str(crate::facts::GROUP_NAME),
            Trustee::User(u) => f.write_str(u.account_name()),
            Trustee::Sid(s) => write!(f, "{s}"),
        }
    }
}

/// Allow or deny: the one kind of `palisade-windows-plan`, shared by both modes.
pub use palisade_windows_plan::ace::AceKind;

/// The access an ACE carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rights {
    /// Read and execute files, list and traverse folders (`FILE_GENERIC_READ |
    /// FILE_GENERIC_EXECUTE`).
    ReadExecute,
    /// List a folder's names and read its attributes; used without inheritance on the folders
    /// on the way to something readable, so that nothing beneath them inherits it.
    ListTraverse,
    /// Read, write, delete (`Modify`).
    Modify,
    /// Everything, including changing permissions and owner.
    FullControl,
}

// File access right bits (winnt.h).
const FILE_LIST_DIRECTORY: u32 = 0x0001;
const FILE_WRITE_DATA: u32 = 0x0002;
const FILE_APPEND_DATA: u32 = 0x0004;
const FILE_WRITE_EA: u32 = 0x0010;
const FILE_TRAVERSE: u32 = 0x0020;
const FILE_DELETE_CHILD: u32 = 0x0040;
const FILE_READ_ATTRIBUTES: u32 = 0x0080;
const FILE_WRITE_ATTRIBUTES: u32 = 0x0100;
const DELETE: u32 = 0x0001_0000;
const READ_CONTROL: u32 = 0x0002_0000;
const WRITE_DAC: u32 = 0x0004_0000;
const WRITE_OWNER: u32 = 0x0008_0000;
const SYNCHRONIZE: u32 = 0x0010_0000;

/// Every bit that changes something.
pub const WRITE_BITS: u32 = FILE_WRITE_DATA
    | FILE_APPEND_DATA
    | FILE_WRITE_EA
    | FILE_DELETE_CHILD
    | FILE_WRITE_ATTRIBUTES
    | DELETE
    | WRITE_DAC
    | WRITE_OWNER
    | 0x4000_0000 // GENERIC_WRITE
    | 0x1000_0000; // GENERIC_ALL

impl Rights {
    /// The access mask.
    pub fn mask(self) -> u32 {
        match self {
            Rights::ReadExecute => 0x0012_00A9,
            Rights::ListTraverse => {
                FILE_LIST_DIRECTORY | FILE_TRAVERSE | FILE_READ_ATTRIBUTES | READ_CONTROL | SYNCHRONIZE
            }
            Rights::Modify => 0x0013_01BF,
            Rights::FullControl => 0x001F_01FF,
        }
    }

    pub fn writes(self) -> bool {
        self.mask() & WRITE_BITS != 0
    }
}

/// Whether an ACE is inherited by what lies beneath the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Inheritance {
    /// This object only.
    None,
    /// This folder, subfolders and files (`OICI`).
    ContainerAndObject,
}

/// One ACE.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AceSpec {
    pub kind: AceKind,
    pub trustee: Trustee,
    pub rights: Rights,
    pub inheritance: Inheritance,
}

/// A trustee could not be resolved to a SID (its account does not exist yet).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} does not exist yet, so it has no SID")]
pub struct Unresolved(pub String);

impl AceSpec {
    pub fn allow(trustee: Trustee, rights: Rights, inheritance: Inheritance) -> AceSpec {
        AceSpec { kind: AceKind::Allow, trustee, rights, inheritance }
    }

    /// The same ACE with its trustee replaced by its SID.
    pub fn resolved(&self, sids: &Sids) -> Result<AceSpec, Unresolved> {
        let sid = self.trustee.resolve(sids).ok_or_else(|| Unresolved(self.trustee.to_string()))?;
        Ok(AceSpec { trustee: Trustee::Sid(sid), ..self.clone() })
    }

    /// The ACE in SDDL, e.g. `(A;OICI;0x1200a9;;;S-1-5-21-...)`.
    pub fn sddl(&self, sids: &Sids) -> Result<String, Unresolved> {
        let sid = self.trustee.resolve(sids).ok_or_else(|| Unresolved(self.trustee.to_string()))?;
        let kind = match self.kind {
            AceKind::Allow => "A",
            AceKind::Deny => "D",
        };
        let flags = match self.inheritance {
            Inheritance::None => "",
            Inheritance::ContainerAndObject => "OICI",
        };
        Ok(format!("({kind};{flags};0x{:x};;;{sid})", self.rights.mask()))
    }
}

/// A whole security descriptor in SDDL: owner and DACL, `protected` blocking inheritance from
/// the parent (`D:P`).
pub fn descriptor_sddl(owner: &Sid, protected: bool, aces: &[AceSpec], sids: &Sids) -> Result<String, Unresolved> {
    let mut s = format!("O:{owner}D:{}", if protected { "P" } else { "" });
    for a in aces {
        s.push_str(&a.sddl(sids)?);
    }
    Ok(s)
}

/// What a grant must never touch, for every ACE Palisade adds (setup or run time).
#[derive(Clone, Debug)]
pub struct GrantGuard {
    /// The installing user's profile folder.
    pub profile: WinPath,
    /// Paths that must never become readable through Palisade's grants (credential stores).
    pub secrets: Vec<WinPath>,
}

impl GrantGuard {
    /// Why adding `ace` on `path` is forbidden, or `None` when it is allowed.
    ///
    /// * never an inheritable ACE that writes on a drive root, the profile root or any folder
    ///   above the profile (it would reach every user's files or every file of the user);
    /// * never any ACE on a registry hive file (`NTUSER.DAT*`, `UsrClass.dat*`) or anything
    ///   under `...\Microsoft\Windows\UsrClass.dat`;
    /// * never an inheritable allow on a drive root or the profile root (it would cover the
    ///   secret folders inside);
    /// * never an allow on a secret or beneath one, and never an inheritable allow on a folder
    ///   that contains a secret (a non-inheriting `ListTraverse` on the way is fine).
    pub fn forbidden(&self, path: &WinPath, ace: &AceSpec) -> Option<&'static str> {
        let inherits = ace.inheritance == Inheritance::ContainerAndObject;
        let allow = ace.kind == AceKind::Allow;
        let at_or_above_profile = self.profile.is_same_or_beneath(path);
        if is_hive(path) {
            return Some("it is a registry hive");
        }
        if inherits && ace.rights.writes() && (path.is_drive_root() || at_or_above_profile) {
            return Some("an inheritable write grant on a drive root or the profile root");
        }
        if !allow {
            return None;
        }
        if inherits && (path.is_drive_root() || at_or_above_profile) {
            return Some("an inheritable grant on a drive root or the profile root would cover the secrets inside");
        }
        for s in &self.secrets {
            if path.is_same_or_beneath(s) {
                return Some("it is a credential store or lies inside one");
            }
            if inherits && s.is_strictly_beneath(path) {
                return Some("an inheritable grant here would cover a credential store beneath");
            }
        }
        None
    }
}

/// Registry hive files in a profile: `NTUSER.DAT`, its logs (`ntuser.dat.LOG1`, `NTUSER.DAT{guid}.TM.blf`)
/// and `UsrClass.dat*`.
pub fn is_hive(path: &WinPath) -> bool {
    path.components().iter().any(|c| {
        let c = fold(c);
        c.starts_with("NTUSER.") || c.starts_with("USRCLASS.DAT")
    })
}

/// An ACE as read from a DACL (type, header flags, mask, SID string), before it is understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAce {
    /// 0 allow, 1 deny (other types are not Palisade's).
    pub ace_type: u8,
    pub flags: u8,
    pub mask: u32,
    pub sid: String,
}

// ACE header flags (winnt.h).
pub const OBJECT_INHERIT_ACE: u8 = 0x01;
pub const CONTAINER_INHERIT_ACE: u8 = 0x02;
pub const INHERIT_ONLY_ACE: u8 = 0x08;
pub const INHERITED_ACE: u8 = 0x10;
const GENERIC_EXECUTE: u32 = 0x2000_0000;
const GENERIC_READ: u32 = 0x8000_0000;

impl RawAce {
    /// The explicit ACE as an [`AceSpec`] with a SID trustee, if it is one Palisade could have
    /// written: allow or deny, not inherited, not inherit-only, either no inheritance or `OICI`,
    /// one of the masks of [`Rights`], a canonical SID. `None` otherwise (it is then neither
    /// Palisade's nor compared).
    pub fn explicit_spec(&self) -> Option<AceSpec> {
        let kind = match self.ace_type {
            0 => AceKind::Allow,
            1 => AceKind::Deny,
            _ => return None,
        };
        if self.flags & (INHERITED_ACE | INHERIT_ONLY_ACE) != 0 {
            return None;
        }
        let inheritance = match self.flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) {
            0 => Inheritance::None,
            3 => Inheritance::ContainerAndObject,
            _ => return None,
        };
        let rights = [Rights::ReadExecute, Rights::ListTraverse, Rights::Modify, Rights::FullControl]
            .into_iter()
            .find(|r| r.mask() == self.mask)?;
        let sid = Sid::parse(&self.sid).ok()?;
        Some(AceSpec { kind, trustee: Trustee::Sid(sid), rights, inheritance })
    }

    fn reads_and_executes(&self) -> bool {
        let rx = Rights::ReadExecute.mask();
        self.mask & rx == rx
            || self.mask & (GENERIC_READ | GENERIC_EXECUTE) == GENERIC_READ | GENERIC_EXECUTE
            || self.mask & 0x1000_0000 != 0
    }
}

/// The SIDs that may read and execute a folder and everything beneath it through its DACL
/// (explicit or inherited): an allow covering the folder itself and an allow inherited by
/// subfolders and files (Windows' own folders split this into a "this folder only" ACE and an
/// inherit-only generic one). Deny ACEs for the same SID rule it out.
pub fn readable_through(aces: &[RawAce]) -> Vec<Sid> {
    let mut out: Vec<Sid> = Vec::new();
    for a in aces.iter().filter(|a| a.ace_type == 0 && a.reads_and_executes()) {
        let Ok(sid) = Sid::parse(&a.sid) else { continue };
        if out.contains(&sid) {
            continue;
        }
        let same = || aces.iter().filter(|b| b.sid == a.sid);
        let here = same().any(|b| b.ace_type == 0 && b.reads_and_executes() && b.flags & INHERIT_ONLY_ACE == 0);
        let below = same().any(|b| {
            b.ace_type == 0
                && b.reads_and_executes()
                && b.flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) == OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE
        });
        let denied = same().any(|b| b.ace_type == 1 && b.mask & Rights::ReadExecute.mask() & !0x0010_0000 != 0);
        if here && below && !denied {
            out.push(sid);
        }
    }
    out
}

#[cfg(test)]
mod raw_tests {
    use super::*;

    fn raw(t: u8, flags: u8, mask: u32, sid: &str) -> RawAce {
        RawAce { ace_type: t, flags, mask, sid: sid.into() }
    }

    #[test]
    fn explicit_specs_are_only_what_palisade_writes() {
        let s = "S-1-5-21-1-2-3-1010";
        let a = raw(0, 3, Rights::ReadExecute.mask(), s).explicit_spec().unwrap();
        assert_eq!(
            a,
            AceSpec::allow(Trustee::Sid(Sid::parse(s).unwrap()), Rights::ReadExecute, Inheritance::ContainerAndObject)
        );
        assert_eq!(raw(0, 0, Rights::ListTraverse.mask(), s).explicit_spec().unwrap().inheritance, Inheritance::None);
        assert_eq!(raw(1, 0, Rights::Modify.mask(), s).explicit_spec().unwrap().kind, AceKind::Deny);
        assert!(raw(0, 3 | INHERITED_ACE, Rights::ReadExecute.mask(), s).explicit_spec().is_none());
        assert!(raw(0, 3 | INHERIT_ONLY_ACE, Rights::ReadExecute.mask(), s).explicit_spec().is_none());
        assert!(raw(0, OBJECT_INHERIT_ACE, Rights::ReadExecute.mask(), s).explicit_spec().is_none());
        assert!(raw(0, 3, 0x1234, s).explicit_spec().is_none());
        assert!(raw(2, 3, Rights::ReadExecute.mask(), s).explicit_spec().is_none());
        assert!(raw(0, 3, Rights::ReadExecute.mask(), "not a sid").explicit_spec().is_none());
    }

    #[test]
    fn readable_through_needs_the_folder_and_what_it_holds() {
        let users = Sid::users().to_string();
        // Windows' own layout: RX on the folder only, generic RX inherit-only below.
        let windows = vec![raw(0, 0, 0x1200a9, &users), raw(0, 3 | INHERIT_ONLY_ACE, 0xa000_0000, &users)];
        assert_eq!(readable_through(&windows), vec![Sid::users()]);
        assert_eq!(readable_through(&[raw(0, 3, 0x1200a9, &users)]), vec![Sid::users()]);
        assert!(readable_through(&[raw(0, 0, 0x1200a9, &users)]).is_empty());
        assert!(readable_through(&[raw(0, 3 | INHERIT_ONLY_ACE, 0xa000_0000, &users)]).is_empty());
        assert!(readable_through(&[raw(0, 3, 0x1200a9, &users), raw(1, 0, 0x1, &users)]).is_empty());
        assert_eq!(readable_through(&[raw(0, 3, 0x1f01ff, &users)]), vec![Sid::users()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> WinPath {
        WinPath::parse(s).unwrap()
    }

    fn sids() -> Sids {
        Sids {
            group: Some(Sid::parse("S-1-5-21-1-2-3-1010").unwrap()),
            offline: Some(Sid::parse("S-1-5-21-1-2-3-1011").unwrap()),
            online: None,
            proxied: None,
        }
    }

    #[test]
    fn masks_and_writes() {
        assert_eq!(Rights::ReadExecute.mask(), 0x1200a9);
        assert_eq!(Rights::ListTraverse.mask(), 0x1200a1);
        assert!(!Rights::ReadExecute.writes());
        assert!(!Rights::ListTraverse.writes());
        assert!(Rights::Modify.writes());
        assert!(Rights::FullControl.writes());
    }

    #[test]
    fn sddl_of_aces_and_descriptors() {
        let a = AceSpec::allow(Trustee::SandboxGroup, Rights::ReadExecute, Inheritance::ContainerAndObject);
        assert_eq!(a.sddl(&sids()).unwrap(), "(A;OICI;0x1200a9;;;S-1-5-21-1-2-3-1010)");
        let b = AceSpec::allow(Trustee::User(SandboxUser::Online), Rights::ListTraverse, Inheritance::None);
        assert_eq!(b.sddl(&sids()).unwrap_err(), Unresolved("PalisadeOnline".into()));
        let sd = descriptor_sddl(
            &Sid::administrators(),
            true,
            &[
                AceSpec::allow(Trustee::Sid(Sid::system()), Rights::FullControl, Inheritance::ContainerAndObject),
                a.clone(),
            ],
            &sids(),
        )
        .unwrap();
        assert_eq!(sd, "O:S-1-5-32-544D:P(A;OICI;0x1f01ff;;;S-1-5-18)(A;OICI;0x1200a9;;;S-1-5-21-1-2-3-1010)");
        assert_eq!(a.resolved(&sids()).unwrap().trustee, Trustee::Sid(Sid::parse("S-1-5-21-1-2-3-1010").unwrap()));
    }

    #[test]
    fn guard_refuses_dangerous_grants() {
        let g = GrantGuard {
            profile: p("C:\\Users\\me"),
            secrets: vec![p("C:\\Users\\me\\.ssh"), p("C:\\Users\\me\\.config\\gh")],
        };
        let rx = |i| AceSpec::allow(Trustee::SandboxGroup, Rights::ReadExecute, i);
        let list = AceSpec::allow(Trustee::SandboxGroup, Rights::ListTraverse, Inheritance::None);
        let modify = AceSpec::allow(Trustee::SandboxGroup, Rights::Modify, Inheritance::ContainerAndObject);
        use Inheritance::*;
        assert!(g.forbidden(&p("C:\\"), &modify).is_some());
        assert!(g.forbidden(&p("D:\\"), &modify).is_some());
        assert!(g.forbidden(&p("C:\\Users"), &modify).is_some());
        assert!(g.forbidden(&p("C:\\Users\\me"), &modify).is_some());
        assert!(g.forbidden(&p("C:\\Users\\me"), &rx(ContainerAndObject)).is_some());
        assert!(g.forbidden(&p("C:\\"), &rx(ContainerAndObject)).is_some());
        assert!(g.forbidden(&p("C:\\Users\\me"), &list).is_none());
        assert!(g.forbidden(&p("C:\\Users\\me\\.ssh"), &rx(None)).is_some());
        assert!(g.forbidden(&p("C:\\Users\\me\\.SSH\\id_ed25519"), &rx(None)).is_some());
        assert!(g.forbidden(&p("C:\\Users\\me\\.config"), &rx(ContainerAndObject)).is_some());
        assert!(g.forbidden(&p("C:\\Users\\me\\.config"), &list).is_none());
        assert!(g.forbidden(&p("C:\\Users\\me\\.config\\git"), &rx(ContainerAndObject)).is_none());
        assert!(g.forbidden(&p("C:\\Users\\me\\NTUSER.DAT"), &rx(None)).is_some());
        assert!(g.forbidden(&p("C:\\Users\\me\\ntuser.dat.LOG1"), &list).is_some());
        assert!(g.forbidden(&p("C:\\Users\\me\\src\\project"), &modify).is_none());
        // A deny is never forbidden except on hives.
        let deny = AceSpec { kind: AceKind::Deny, ..rx(ContainerAndObject) };
        assert!(g.forbidden(&p("C:\\Users\\me\\.ssh"), &deny).is_none());
    }

    #[test]
    fn hives_are_recognized() {
        assert!(is_hive(&p("C:\\Users\\me\\NTUSER.DAT")));
        assert!(is_hive(&p("C:\\Users\\me\\NTUSER.DAT{53b39e88-18c4-11ea-a811-000d3aa4692b}.TM.blf")));
        assert!(is_hive(&p("C:\\Users\\me\\AppData\\Local\\Microsoft\\Windows\\UsrClass.dat")));
        assert!(!is_hive(&p("C:\\Users\\me\\notes.dat")));
    }
}
