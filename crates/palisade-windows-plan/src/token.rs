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
//!   - the logon SID (`S-1-5-5-X-Y`): the command's own processes, threads, pipes and other
//!     kernel objects get the default DACL below, which grants the logon SID, so the command
//!     can still write its own objects;
//!   - `Everyone`: objects meant for every caller (the `NUL` device, console and service pipes)
//!     grant write to `Everyone`; without it many ordinary programs fail. The price is that any
//!     folder `Everyone` may write is writable too, which is why the audit
//!     ([`crate::audit`]) finds such folders and the ACL plan denies them to the sandbox SID.
//!
//!   Not included: `RESTRICTED` (`S-1-5-12`), `Users`, `Authenticated Users` and
//!   `INTERACTIVE`: their write grants (folders made under `C:\`, data drives, PATH folders
//!   outside Program Files) are exactly what the restriction removes.
//! * **Privileges**: [`DISABLE_MAX_PRIVILEGE`] deletes every privilege except
//!   `SeChangeNotifyPrivilege` (traverse checking, which ordinary path lookups rely on); the
//!   backend checks afterwards that no other privilege is left.
//! * **Integrity level**: unchanged (medium). A low-integrity token could not write the
//!   medium-labelled workspace at all.
//! * **Default DACL** ([`TokenPlan::default_dacl`]): what objects the command creates without an
//!   explicit security descriptor get: full control for the user, the logon SID and SYSTEM.

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

/// Why a SID is a restricting SID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestrictingReason {
    WritableRoot,
    Sandbox,
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
    /// The write SIDs of the command's writable roots (none in read-only mode).
    pub write_sids: Vec<Sid>,
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
}

/// The token plan for one command (see the module documentation).
pub fn token_plan(input: &TokenInput) -> Result<TokenPlan, TokenError> {
    if !is_logon_sid(&input.logon_sid) {
        return Err(TokenError::NotLogonSid(input.logon_sid.clone()));
    }
    if input.sandbox_sid.synthetic_kind() != Some(SyntheticKind::Sandbox) {
        return Err(TokenError::NotSandboxSid(input.sandbox_sid.clone()));
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
    restricting.push(RestrictingSid { sid: input.logon_sid.clone(), reason: RestrictingReason::Logon });
    restricting
        .push(RestrictingSid { sid: well_known::sid(well_known::EVERYONE), reason: RestrictingReason::Everyone });

    Ok(TokenPlan {
        flags: DISABLE_MAX_PRIVILEGE | WRITE_RESTRICTED,
        restricting_sids: restricting,
        keep_privileges: vec![SE_CHANGE_NOTIFY_PRIVILEGE.to_string()],
        default_dacl: vec![
            Ace::allow(input.user_sid.clone(), GENERIC_ALL, THIS_OBJECT_ONLY),
            Ace::allow(input.logon_sid.clone(), GENERIC_ALL, THIS_OBJECT_ONLY),
            Ace::allow(well_known::sid(well_known::LOCAL_SYSTEM), GENERIC_ALL, THIS_OBJECT_ONLY),
        ],
    })
}

impl TokenPlan {
    /// The restricting SIDs alone, in order.
    pub fn sids(&self) -> Vec<&Sid> {
        self.restricting_sids.iter().map(|r| &r.sid).collect()
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
            write_sids,
        }
    }

    #[test]
    fn workspace_write_token() {
        let w1 = Sid::synthetic(SyntheticKind::WriteRoot, [2; 16]);
        let w2 = Sid::synthetic(SyntheticKind::WriteRoot, [3; 16]);
        let plan = token_plan(&input(vec![w1.clone(), w2.clone(), w1.clone()])).unwrap();
        assert_eq!(plan.flags, WRITE_RESTRICTED | DISABLE_MAX_PRIVILEGE);
        let i = input(vec![]);
        assert_eq!(plan.sids(), [&w1, &w2, &i.sandbox_sid, &i.logon_sid, &sid("S-1-1-0")]);
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
        assert_eq!(plan.restricting_sids.len(), 3);
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
    fn default_dacl_grants_the_logon_sid_so_own_objects_stay_writable() {
        let i = input(vec![]);
        let plan = token_plan(&i).unwrap();
        assert!(plan.default_dacl.iter().all(|a| a.kind == AceKind::Allow && a.mask == GENERIC_ALL));
        let trustees: Vec<&Sid> = plan.default_dacl.iter().map(|a| &a.trustee).collect();
        assert_eq!(trustees, [&i.user_sid, &i.logon_sid, &sid("S-1-5-18")]);
        // The logon SID is both a restricting SID and in the default DACL.
        assert!(plan.sids().contains(&&i.logon_sid));
        assert!(!trustees.contains(&&sid("S-1-1-0")), "Everyone must not get the command's objects");
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
