//! The restricted token a sandboxed command runs with, as data.
//!
//! The unelevated sandbox runs the command as the calling user, with a token made by
//! `CreateRestrictedToken` from the user's own token:
//!
//! * **Write-restricted** ([`WRITE_RESTRICTED`]): every *write* access is checked twice, once
//!   with the user's groups and once with the restricting SIDs only, and must pass both. Reads
//!   are checked as usual, so the command reads whatever the user can (secret folders are denied
//!   separately). Write access therefore exists only where an ACE names a restricting SID.
//! * **Restricting SIDs** ([`TokenPlan::restricting_sids`]):
//!   - one write SID per writable root: the grants that make the roots writable;
//!   - the sandbox SID: named by the deny ACEs on world-writable folders (a deny matching a
//!     restricting SID fails the second check);
//!   - the instance SID ([`SyntheticKind::Instance`]), random and made afresh for each sandbox:
//!     the command's own processes, threads, pipes and other kernel objects get the default
//!     DACL below, which grants it, so the command can still write (end, signal, duplicate
//!     handles into) its own objects and those of earlier commands of the same sandbox;
//!   - the logon SID (`S-1-5-5-X-Y`): the interactive window station (`WinSta0`) and its
//!     desktops grant it the write-class rights (`DESKTOP_CREATEWINDOW`, ...) that `user32`
//!     needs when a program starts; without a restricting SID they grant, programs that load
//!     `user32` would fail to start (`STATUS_DLL_INIT_FAILED`). It is *not* in the default DACL
//!     any more: with it there, every sandbox's processes granted `GENERIC_ALL` to a SID every
//!     other sandbox's token has, so a command could write another sandbox's processes
//!     (`PROCESS_VM_WRITE`, `CREATE_THREAD`, `DUP_HANDLE`) and run code with its write SIDs.
//!     The user's own processes grant the logon SID only `GENERIC_READ|GENERIC_EXECUTE` (the
//!     default DACL Windows gives an interactive logon), which are not write-class;
//!   - `Everyone`: objects meant for every caller (the `NUL` device, console and service pipes)
//!     grant write to `Everyone`; without it many ordinary programs fail. The price is that any
//!     folder `Everyone` may write is writable too, which is why the audit
//!     ([`crate::audit`]) finds such folders and the ACL plan denies them to the sandbox SID.
//!
//!   Not included: `RESTRICTED` (`S-1-5-12`), `Users`, `Authenticated Users` and
//!   `INTERACTIVE`: their write grants (folders made under `C:\`, data drives, PATH folders
//!   outside Program Files) are exactly what the restriction removes.
//! * **Deny-only groups** ([`TokenPlan::deny_only_sids`]): every group of the caller's token that
//!   grants administrative power ([`admin_group`]: `BUILTIN\Administrators` and the other
//!   groups listed there) is made deny-only. Run from an elevated prompt, the caller's token has
//!   `Administrators` enabled, and write restriction alone does not take it away: *reads* are
//!   checked with the normal groups only, so files only administrators may read (other users'
//!   profiles, administrator-only configuration and logs, secrets kept in admin-only folders)
//!   would be readable by the command; and the *first* check of a write passes on ACEs that
//!   grant only administrators, so inside a writable root (where the second check passes on
//!   the root's write SID) whatever only administrators may change would be writable. A deny-only group still matches deny ACEs but never allow ACEs,
//!   and it cannot be enabled again. From an ordinary (UAC-filtered) prompt Windows has made
//!   these groups deny-only already and the list is empty.
//! * **Privileges**: [`DISABLE_MAX_PRIVILEGE`] deletes every privilege except
//!   `SeChangeNotifyPrivilege` (traverse checking, which ordinary path lookups rely on); the
//!   backend checks afterwards that no other privilege is left.
//! * **Integrity level**: unchanged (medium; high from an elevated prompt). A low-integrity
//!   token could not write the medium-labelled workspace at all.
//! * **Default DACL** ([`TokenPlan::default_dacl`]): what objects the command creates without an
//!   explicit security descriptor get: full control for the user, the instance SID and SYSTEM.
//!   Processes running as the user without restriction (palisade itself, the console host)
//!   pass on the user's entry; a command passes the second check of a write only on the
//!   instance SID, which no other sandbox's token has.

use serde::{Deserialize, Serialize};

use crate::ace::flags::THIS_OBJECT_ONLY;
use crate::ace::rights::GENERIC_ALL;
use crate::ace::Ace;
use crate::sid::{is_logon_sid, well_known, Sid, SyntheticKind};

/// `CreateRestrictedToken` flag: delete every privilege except `SeChangeNotifyPrivilege`.
pub const DISABLE_MAX_PRIVILEGE: u32 = 0x1;
/// `CreateRestrictedToken` flag: the token is not checked against software restriction
/// policies (not used).
pub const SANDBOX_INERT: u32 = 0x2;
/// `CreateRestrictedToken` flag: a LUA (UAC-filtered) token (not used).
pub const LUA_TOKEN: u32 = 0x4;
/// `CreateRestrictedToken` flag: restricting SIDs are checked for write access only.
pub const WRITE_RESTRICTED: u32 = 0x8;

/// The only privilege a sandboxed token keeps.
pub const SE_CHANGE_NOTIFY_PRIVILEGE: &str = "SeChangeNotifyPrivilege";

/// Built-in groups (`S-1-5-32-RID`) that grant administrative power, with their names. The
/// descriptions are Microsoft's ("Active Directory security groups", the `WindowsBuiltInRole`
/// enumeration, [MS-DTYP] 2.4.2.4 "Well-known SID structures"). Each is made deny-only in the
/// command's token when the caller has it (see the module documentation).
const ADMIN_BUILTIN_GROUPS: &[(u32, &str)] = &[
    // "Complete and unrestricted access to the computer or domain."
    (544, "Administrators"),
    // "Most administrative permissions with some restrictions": kept for old programs, and
    // still granted write access by ACLs that predate Vista.
    (547, "Power Users"),
    // Create, change and delete accounts and groups (on domain controllers).
    (548, "Account Operators"),
    // Manage a computer: start and stop services, back up and restore, format disks (on
    // domain controllers).
    (549, "Server Operators"),
    // Manage printers and load their drivers, which is kernel code (on domain controllers).
    (550, "Print Operators"),
    // "Override security restrictions for the sole purpose of backing up or restoring files":
    // ACLs of system locations (registry hives, the backup catalogue) grant them access.
    (551, "Backup Operators"),
    // Change the computer's TCP/IP settings (addresses, DNS servers): a system-wide change.
    (556, "Network Configuration Operators"),
    // "Complete and unrestricted access to all features of Hyper-V": a virtual machine can
    // be given any of the host's disks.
    (578, "Hyper-V Administrators"),
    // "Complete and unrestricted access to all features of Storage Replica": block-level
    // copies of whole volumes.
    (582, "Storage Replica Administrators"),
    // "Can change system-wide settings."
    (583, "Device Owners"),
];

/// Global groups of a domain (`S-1-5-21-X-Y-Z-RID`) that grant administrative power. Their
/// members are usually in the local `Administrators` group too, but ACLs may name the domain
/// group itself. (A machine's own accounts never have these RIDs: its local accounts are 500,
/// 501, 503, 504 and from 1000 on.)
const ADMIN_DOMAIN_GROUPS: &[(u32, &str)] = &[
    // Administer the domain; added to every member computer's Administrators group.
    (512, "Domain Admins"),
    // Change the Active Directory schema.
    (518, "Schema Admins"),
    // Administer every domain of the forest.
    (519, "Enterprise Admins"),
];

/// `NT AUTHORITY\Local account and member of Administrators group` (`S-1-5-114`): in the token
/// of every local administrator. ACLs name it in deny entries (its documented use: keeping local
/// administrators from network logons); deny-only keeps those and ignores any allow entry.
const LOCAL_ACCOUNT_AND_ADMIN: &str = "S-1-5-114";

/// The name of the administrative group `sid` is, if it is one (see [`ADMIN_BUILTIN_GROUPS`],
/// [`ADMIN_DOMAIN_GROUPS`]); these become deny-only in the command's token.
pub fn admin_group(sid: &Sid) -> Option<&'static str> {
    if sid.as_str() == LOCAL_ACCOUNT_AND_ADMIN {
        return Some("Local account and member of Administrators group");
    }
    if sid.authority() != 5 {
        return None;
    }
    let table = match sid.sub_authorities().as_slice() {
        [32, _] => ADMIN_BUILTIN_GROUPS,
        [21, _, _, _, _] => ADMIN_DOMAIN_GROUPS,
        _ => return None,
    };
    table.iter().find(|(rid, _)| *rid == sid.rid()).map(|(_, name)| *name)
}

/// Why a SID is a restricting SID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestrictingReason {
    WritableRoot,
    Sandbox,
    Instance,
    Logon,
    Everyone,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestrictingSid {
    pub sid: Sid,
    pub reason: RestrictingReason,
}

/// What the backend passes to `CreateRestrictedToken` and sets on the new token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPlan {
    /// `CreateRestrictedToken` flags.
    pub flags: u32,
    pub restricting_sids: Vec<RestrictingSid>,
    /// The caller's administrative groups ([`admin_group`]), made deny-only (`SidsToDisable`);
    /// empty when the caller has none that can grant access.
    pub deny_only_sids: Vec<Sid>,
    /// Privileges that remain (everything else is deleted).
    pub keep_privileges: Vec<String>,
    /// The token's default DACL (`TokenDefaultDacl`), in order.
    pub default_dacl: Vec<Ace>,
}

/// Who the token is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInput {
    /// The user's own SID (`S-1-5-21-…-1001`).
    pub user_sid: Sid,
    /// The logon SID of the user's session.
    pub logon_sid: Sid,
    /// The installation's sandbox SID.
    pub sandbox_sid: Sid,
    /// This sandbox's own instance SID (random, made when the sandbox is).
    pub instance_sid: Sid,
    /// The write SIDs of the command's writable roots (none in read-only mode).
    pub write_sids: Vec<Sid>,
    /// The caller's group SIDs that can grant access, as the backend reads them from its token:
    /// the enabled ones and those a process could enable again (`AdjustTokenGroups`), i.e.
    /// every group that is not deny-only already (and no integrity label).
    pub groups: Vec<Sid>,
}

/// Why a token plan cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("{0} is not a logon SID (S-1-5-5-X-Y)")]
    NotLogonSid(Sid),
    #[error("{0} is not a palisade write SID")]
    NotWriteSid(Sid),
    #[error("{0} is not a palisade sandbox SID")]
    NotSandboxSid(Sid),
    #[error("{0} is not a palisade instance SID")]
    NotInstanceSid(Sid),
}

/// The token plan for one command (see the module documentation).
pub fn token_plan(input: &TokenInput) -> Result<TokenPlan, TokenError> {
    if !is_logon_sid(&input.logon_sid) {
        return Err(TokenError::NotLogonSid(input.logon_sid.clone()));
    }
    if input.sandbox_sid.synthetic_kind() != Some(SyntheticKind::Sandbox) {
        return Err(TokenError::NotSandboxSid(input.sandbox_sid.clone()));
    }
    if input.instance_sid.synthetic_kind() != Some(SyntheticKind::Instance) {
        return Err(TokenError::NotInstanceSid(input.instance_sid.clone()));
    }
    let mut restricting = Vec::new();
    for w in &input.write_sids {
        if w.synthetic_kind() != Some(SyntheticKind::WriteRoot) {
            return Err(TokenError::NotWriteSid(w.clone()));
        }
        if !restricting.iter().any(|r: &RestrictingSid| &r.sid == w) {
            restricting.push(RestrictingSid { sid: w.clone(), reason: RestrictingReason::WritableRoot });
        }
    }
    restricting.push(RestrictingSid { sid: input.sandbox_sid.clone(), reason: RestrictingReason::Sandbox });
    restricting.push(RestrictingSid { sid: input.instance_sid.clone(), reason: RestrictingReason::Instance });
    restricting.push(RestrictingSid { sid: input.logon_sid.clone(), reason: RestrictingReason::Logon });
    restricting
        .push(RestrictingSid { sid: well_known::sid(well_known::EVERYONE), reason: RestrictingReason::Everyone });

    let mut deny_only: Vec<Sid> = Vec::new();
    for g in &input.groups {
        if admin_group(g).is_some() && !deny_only.contains(g) {
            deny_only.push(g.clone());
        }
    }

    Ok(TokenPlan {
        flags: DISABLE_MAX_PRIVILEGE | WRITE_RESTRICTED,
        restricting_sids: restricting,
        deny_only_sids: deny_only,
        keep_privileges: vec![SE_CHANGE_NOTIFY_PRIVILEGE.to_string()],
        default_dacl: vec![
            Ace::allow(input.user_sid.clone(), GENERIC_ALL, THIS_OBJECT_ONLY),
            Ace::allow(input.instance_sid.clone(), GENERIC_ALL, THIS_OBJECT_ONLY),
            Ace::allow(well_known::sid(well_known::LOCAL_SYSTEM), GENERIC_ALL, THIS_OBJECT_ONLY),
        ],
    })
}

impl TokenPlan {
    /// The restricting SIDs alone, in order.
    pub fn sids(&self) -> Vec<&Sid> {
        self.restricting_sids.iter().map(|r| &r.sid).collect()
    }

    /// The names of the deny-only groups, in order (for the enforcement report).
    pub fn deny_only_names(&self) -> Vec<&'static str> {
        self.deny_only_sids.iter().filter_map(admin_group).collect()
    }

    /// Whether the token may keep a privilege (by name, case-insensitive as Windows compares
    /// privilege names).
    pub fn keeps_privilege(&self, name: &str) -> bool {
        self.keep_privileges.iter().any(|p| p.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ace::AceKind;

    fn sid(s: &str) -> Sid {
        Sid::parse(s).unwrap()
    }

    fn input(write_sids: Vec<Sid>) -> TokenInput {
        TokenInput {
            user_sid: sid("S-1-5-21-1004336348-1177238915-682003330-1001"),
            logon_sid: sid("S-1-5-5-0-271394"),
            sandbox_sid: Sid::synthetic(SyntheticKind::Sandbox, [1; 16]),
            instance_sid: Sid::synthetic(SyntheticKind::Instance, [9; 16]),
            write_sids,
            groups: ordinary_groups(),
        }
    }

    /// The groups of an ordinary user's token (what a UAC-filtered prompt leaves enabled).
    fn ordinary_groups() -> Vec<Sid> {
        [
            well_known::EVERYONE,
            well_known::USERS,
            well_known::INTERACTIVE,
            "S-1-2-1", // CONSOLE LOGON
            well_known::AUTHENTICATED_USERS,
            "S-1-5-15",                                     // This Organization
            "S-1-5-113",                                    // Local account
            "S-1-5-5-0-271394",                             // the logon SID
            "S-1-2-0",                                      // LOCAL
            "S-1-5-64-10",                                  // NTLM Authentication
            "S-1-5-21-1004336348-1177238915-682003330-513", // Domain Users (the machine's None)
        ]
        .iter()
        .map(|s| sid(s))
        .collect()
    }

    /// An elevated administrator's token: the ordinary groups plus the administrative ones.
    fn elevated_groups() -> Vec<Sid> {
        let mut g = ordinary_groups();
        g.push(sid("S-1-5-32-544"));
        g.push(sid("S-1-5-114"));
        g
    }

    #[test]
    fn workspace_write_token() {
        let w1 = Sid::synthetic(SyntheticKind::WriteRoot, [2; 16]);
        let w2 = Sid::synthetic(SyntheticKind::WriteRoot, [3; 16]);
        let plan = token_plan(&input(vec![w1.clone(), w2.clone(), w1.clone()])).unwrap();
        assert_eq!(plan.flags, WRITE_RESTRICTED | DISABLE_MAX_PRIVILEGE);
        let i = input(vec![]);
        assert_eq!(plan.sids(), [&w1, &w2, &i.sandbox_sid, &i.instance_sid, &i.logon_sid, &sid("S-1-1-0")]);
        assert_eq!(plan.restricting_sids[0].reason, RestrictingReason::WritableRoot);
    }

    #[test]
    fn broad_groups_are_never_restricting_sids() {
        let plan = token_plan(&input(vec![])).unwrap();
        for broad in
            [well_known::USERS, well_known::AUTHENTICATED_USERS, well_known::INTERACTIVE, well_known::RESTRICTED]
        {
            assert!(!plan.sids().contains(&&sid(broad)), "{broad}");
        }
        // Read-only mode: no write SIDs at all.
        assert_eq!(plan.restricting_sids.len(), 4);
        assert!(plan.restricting_sids.iter().all(|r| r.reason != RestrictingReason::WritableRoot));
    }

    #[test]
    fn only_change_notify_is_kept() {
        let plan = token_plan(&input(vec![])).unwrap();
        assert_eq!(plan.keep_privileges, ["SeChangeNotifyPrivilege"]);
        assert!(plan.keeps_privilege("sechangenotifyprivilege"));
        assert!(!plan.keeps_privilege("SeBackupPrivilege"));
        assert!(!plan.keeps_privilege("SeImpersonatePrivilege"));
    }

    #[test]
    fn default_dacl_grants_the_instance_sid_so_own_objects_stay_writable() {
        let i = input(vec![]);
        let plan = token_plan(&i).unwrap();
        assert!(plan.default_dacl.iter().all(|a| a.kind == AceKind::Allow && a.mask == GENERIC_ALL));
        let trustees: Vec<&Sid> = plan.default_dacl.iter().map(|a| &a.trustee).collect();
        assert_eq!(trustees, [&i.user_sid, &i.instance_sid, &sid("S-1-5-18")]);
        // The instance SID is both a restricting SID and in the default DACL.
        assert!(plan.sids().contains(&&i.instance_sid));
        assert!(!trustees.contains(&&sid("S-1-1-0")), "Everyone must not get the command's objects");
        // Every sandbox's token has the logon SID: it must not get the command's objects.
        assert!(!trustees.contains(&&i.logon_sid), "another sandbox's command could write them");
    }

    #[test]
    fn two_sandboxes_share_no_sid_their_objects_grant() {
        let a = input(vec![Sid::synthetic(SyntheticKind::WriteRoot, [2; 16])]);
        let mut b = input(vec![Sid::synthetic(SyntheticKind::WriteRoot, [3; 16])]);
        b.instance_sid = Sid::synthetic(SyntheticKind::Instance, [10; 16]);
        let (pa, pb) = (token_plan(&a).unwrap(), token_plan(&b).unwrap());
        for ace in &pb.default_dacl {
            // The user's own SID is never a restricting SID, so it cannot pass a write's
            // second check.
            assert!(!pa.sids().contains(&&ace.trustee), "{} is in A's token and B's default DACL", ace.trustee);
        }
    }

    #[test]
    fn rejects_wrong_sids() {
        let mut i = input(vec![]);
        i.logon_sid = sid("S-1-5-18");
        assert!(matches!(token_plan(&i), Err(TokenError::NotLogonSid(_))));
        let i = input(vec![sid("S-1-5-32-545")]);
        assert!(matches!(token_plan(&i), Err(TokenError::NotWriteSid(_))));
        let mut i = input(vec![]);
        i.sandbox_sid = Sid::synthetic(SyntheticKind::WriteRoot, [1; 16]);
        assert!(matches!(token_plan(&i), Err(TokenError::NotSandboxSid(_))));
        let mut i = input(vec![]);
        i.instance_sid = Sid::synthetic(SyntheticKind::Sandbox, [1; 16]);
        assert!(matches!(token_plan(&i), Err(TokenError::NotInstanceSid(_))));
    }

    #[test]
    fn administrators_become_deny_only_from_an_elevated_prompt() {
        let mut i = input(vec![Sid::synthetic(SyntheticKind::WriteRoot, [2; 16])]);
        let ordinary = token_plan(&i).unwrap();
        assert!(ordinary.deny_only_sids.is_empty(), "{:?}", ordinary.deny_only_sids);
        i.groups = elevated_groups();
        let elevated = token_plan(&i).unwrap();
        assert_eq!(elevated.deny_only_sids, [sid("S-1-5-32-544"), sid("S-1-5-114")]);
        assert_eq!(elevated.deny_only_names(), ["Administrators", "Local account and member of Administrators group"]);
        // Nothing else changes: the same restricting SIDs, flags, privileges and default DACL.
        assert_eq!(elevated.restricting_sids, ordinary.restricting_sids);
        assert_eq!(elevated.flags, ordinary.flags);
        assert_eq!(elevated.keep_privileges, ordinary.keep_privileges);
        assert_eq!(elevated.default_dacl, ordinary.default_dacl);
        // A deny-only SID is never a restricting SID (it would grant the second check).
        for d in &elevated.deny_only_sids {
            assert!(!elevated.sids().contains(&d), "{d}");
        }
    }

    #[test]
    fn every_administrative_group_becomes_deny_only() {
        let admin: Vec<Sid> = [
            "S-1-5-32-544",
            "S-1-5-32-547",
            "S-1-5-32-548",
            "S-1-5-32-549",
            "S-1-5-32-550",
            "S-1-5-32-551",
            "S-1-5-32-556",
            "S-1-5-32-578",
            "S-1-5-32-582",
            "S-1-5-32-583",
            "S-1-5-114",
            "S-1-5-21-1004336348-1177238915-682003330-512",
            "S-1-5-21-1004336348-1177238915-682003330-518",
            "S-1-5-21-1004336348-1177238915-682003330-519",
        ]
        .iter()
        .map(|s| sid(s))
        .collect();
        let mut i = input(vec![]);
        i.groups.extend(admin.iter().cloned());
        i.groups.push(sid("S-1-5-32-544")); // listed twice: made deny-only once
        let plan = token_plan(&i).unwrap();
        assert_eq!(plan.deny_only_sids, admin);
        assert_eq!(plan.deny_only_names().len(), admin.len());
    }

    #[test]
    fn ordinary_groups_stay_usable() {
        let mut i = input(vec![]);
        i.groups = elevated_groups();
        // Groups that look alike but are not administrative.
        i.groups.extend(
            [
                "S-1-5-32-545",                                  // Users
                "S-1-5-32-546",                                  // Guests
                "S-1-5-32-555",                                  // Remote Desktop Users
                "S-1-5-32-559",                                  // Performance Log Users
                "S-1-5-32-573",                                  // Event Log Readers
                "S-1-5-21-1004336348-1177238915-682003330-500",  // the Administrator *account*
                "S-1-5-21-1004336348-1177238915-682003330-1512", // an ordinary group, RID ends 512
                "S-1-5-32-544-1",                                // not Administrators
                "S-1-5-80-544",                                  // a service SID, not builtin
            ]
            .iter()
            .map(|s| sid(s)),
        );
        let plan = token_plan(&i).unwrap();
        assert_eq!(plan.deny_only_sids, [sid("S-1-5-32-544"), sid("S-1-5-114")]);
        for g in ordinary_groups() {
            assert!(!plan.deny_only_sids.contains(&g), "{g} must stay usable");
        }
        for s in [
            well_known::USERS,
            well_known::AUTHENTICATED_USERS,
            well_known::INTERACTIVE,
            well_known::EVERYONE,
            "S-1-5-5-0-271394",
        ] {
            assert_eq!(admin_group(&sid(s)), None, "{s}");
        }
    }

    #[test]
    fn serializes_as_data() {
        let plan = token_plan(&input(vec![])).unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        assert!(json.contains("\"reason\":\"everyone\""), "{json}");
        let back: TokenPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
    }
}
