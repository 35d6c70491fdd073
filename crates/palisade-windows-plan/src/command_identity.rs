//! The elevated mode's per-command identity (issue 15), as data: what `palisade-runner` puts in
//! the command's write-restricted token and on the command's private temporary folder.
//!
//! Every command of a sandbox account (`PalisadeOffline`, ...) runs as that one account, so
//! anything the account may write — its `HKCU`, its profile (the PowerShell profile, `cmd`'s
//! `AutoRun`, COM registrations), its shared `TEMP`, and the processes of other commands,
//! whose default DACL grants the account — would let one command plant code that a later or
//! concurrent command (another project, with other write SIDs) runs. A write by a
//! write-restricted token passes only if the account's own groups allow it *and* one of the
//! restricting SIDs does. So:
//!
//! * the account SID is **not** a restricting SID: what grants write only to the account (its
//!   registry hive, its profile, the objects of other commands) fails the second check;
//! * each command gets a fresh random **command SID** ([`command_sid`], synthetic kind 4) as a
//!   restricting SID, and its token's default DACL ([`command_default_dacl`]) grants that SID,
//!   the account and SYSTEM: the command passes both checks on its own processes, threads and
//!   pipes (the account in the first, the command SID in the second); another command of the
//!   same account passes only the first, so it cannot open them for write-class rights
//!   (`PROCESS_VM_WRITE`, `PROCESS_CREATE_THREAD`, `PROCESS_DUP_HANDLE`, `WRITE_DAC`, ...). The
//!   runner, which is the account without restrictions, manages the command through the
//!   account's entry. The decision does not rest on the logon SID (a restricting SID for the
//!   window station and desktop) being different per command;
//! * each command gets its own temporary folder ([`temp_folder_name`], [`temp_folder_aces`])
//!   in the account's temporary folder: writable through its command SID only, its own entry
//!   (rename, delete, DACL) not changeable by the command, so the runner removes exactly the
//!   folder it made.
//!
//! Not covered, by design of write restriction: *reads*. Commands of one account read what the
//! account reads, including each other's temporary files and (rights outside the object's
//! generic write mapping) each other's process memory and termination.

use crate::ace::flags::{CHILDREN_ONLY, SUBTREE, THIS_OBJECT_ONLY};
use crate::ace::rights::{DELETE, FILE_ALL_ACCESS, GENERIC_ALL, WRITE_DAC, WRITE_OWNER};
use crate::ace::{Ace, AceKind};
use crate::sid::{well_known, Sid, SyntheticKind};

/// The per-command SID from 16 random bytes.
pub fn command_sid(random: [u8; 16]) -> Sid {
    Sid::synthetic(SyntheticKind::Command, random)
}

/// Why a command's identity cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("{0} is not a palisade command SID")]
    NotCommandSid(Sid),
    #[error(
        "the request's capability SID {0} is not a palisade write or sandbox SID; only those may be restricting SIDs"
    )]
    NotCapability(Sid),
}

/// The restricting SIDs of the command's write-restricted token: its command SID (its own
/// objects and temporary folder), `Everyone` and `RESTRICTED` (objects that grant them, such as
/// the `NUL` device, the console and pipes the system makes), the logon session's SID (the
/// window station and desktop the Secondary Logon service granted to that session), and the
/// request's capability SIDs (one write SID per writable root, and the sandbox SID that
/// world-writable folders deny). Not the account: see the module documentation. A capability
/// SID that is not a Palisade write or sandbox SID (the account's own, `Users`, another
/// command's) is refused, so no request can give the account's write access back. Duplicates
/// are dropped; order is kept.
pub fn restricting_sids(command: &Sid, logon: Option<&Sid>, capability: &[Sid]) -> Result<Vec<Sid>, IdentityError> {
    if command.synthetic_kind() != Some(SyntheticKind::Command) {
        return Err(IdentityError::NotCommandSid(command.clone()));
    }
    if let Some(bad) = capability
        .iter()
        .find(|s| !matches!(s.synthetic_kind(), Some(SyntheticKind::WriteRoot | SyntheticKind::Sandbox)))
    {
        return Err(IdentityError::NotCapability(bad.clone()));
    }
    let fixed = [command.clone(), Sid::everyone(), well_known::sid(well_known::RESTRICTED)];
    let mut out: Vec<Sid> = Vec::new();
    for s in fixed.into_iter().chain(logon.cloned()).chain(capability.iter().cloned()) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// The command token's default DACL (its processes, threads, pipes and other objects made
/// without a security descriptor): full control for the command SID (the command's second
/// check), the account (the command's first check, and the runner, which is the account
/// unrestricted) and SYSTEM.
pub fn command_default_dacl(command: &Sid, account: &Sid) -> Vec<Ace> {
    [command.clone(), account.clone(), Sid::system()]
        .into_iter()
        .map(|s| Ace::allow(s, GENERIC_ALL, THIS_OBJECT_ONLY))
        .collect()
}

/// The prefix of every command's temporary folder name.
pub const TEMP_FOLDER_PREFIX: &str = "palisade-cmd-";

/// The command's temporary folder's name: `palisade-cmd-<32 hex digits>` from 16 random bytes
/// (unpredictable, so nothing can be prepared under it).
pub fn temp_folder_name(random: &[u8; 16]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{TEMP_FOLDER_PREFIX}{hex}")
}

/// The file in each command's temporary folder that its runner holds open, shared with nobody,
/// while the command may run: a runner that finds it openable knows the folder's runner is gone
/// (killed before it could remove it) and removes the folder (`palisade-runner`'s sweep). A
/// folder without it (one kept for `keep_processes` leftovers, or being made) is left alone.
pub const TEMP_LOCK_NAME: &str = ".palisade-runner.lock";

/// Whether `name` is a name [`temp_folder_name`] makes.
pub fn is_temp_folder_name(name: &str) -> bool {
    name.strip_prefix(TEMP_FOLDER_PREFIX)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// What the command SID may do to the temporary folder itself: everything but delete or rename
/// it and change its DACL or owner, so the folder the runner removes afterwards is the one it
/// made (its files are the command's to change).
pub const TEMP_FOLDER_OWN_RIGHTS: u32 = FILE_ALL_ACCESS & !(DELETE | WRITE_DAC | WRITE_OWNER);

/// The temporary folder's DACL (protected: nothing inherited from the account's temporary
/// folder): the command SID on the folder ([`TEMP_FOLDER_OWN_RIGHTS`]) and, inherited only,
/// full control of what is inside; the account (the runner, and every command's first check)
/// and SYSTEM full control of the whole tree. Another command of the account passes the first
/// check but not the second.
pub fn temp_folder_aces(command: &Sid, account: &Sid) -> Vec<Ace> {
    vec![
        Ace::allow(command.clone(), TEMP_FOLDER_OWN_RIGHTS, THIS_OBJECT_ONLY),
        Ace::allow(command.clone(), FILE_ALL_ACCESS, CHILDREN_ONLY),
        Ace::allow(account.clone(), FILE_ALL_ACCESS, SUBTREE),
        Ace::allow(Sid::system(), FILE_ALL_ACCESS, SUBTREE),
    ]
}

/// The temporary folder's security descriptor as SDDL (`D:P` and the entries of
/// [`temp_folder_aces`]; the owner is the creator's default, the account).
pub fn temp_folder_sddl(command: &Sid, account: &Sid) -> String {
    let mut s = String::from("D:P");
    for ace in temp_folder_aces(command, account) {
        s.push_str(&sddl_ace(&ace));
    }
    s
}

/// One ACE in SDDL: `(A;OICIIO;0x1f01ff;;;S-1-...)`. `Sid`'s canonical form and the numeric
/// mask keep the string free of aliases.
pub fn sddl_ace(ace: &Ace) -> String {
    use crate::ace::flags::{CONTAINER_INHERIT_ACE, INHERIT_ONLY_ACE, NO_PROPAGATE_INHERIT_ACE, OBJECT_INHERIT_ACE};
    let kind = if ace.kind == AceKind::Allow { "A" } else { "D" };
    let mut flags = String::new();
    for (bit, name) in [
        (OBJECT_INHERIT_ACE, "OI"),
        (CONTAINER_INHERIT_ACE, "CI"),
        (NO_PROPAGATE_INHERIT_ACE, "NP"),
        (INHERIT_ONLY_ACE, "IO"),
    ] {
        if ace.flags & bit != 0 {
            flags.push_str(name);
        }
    }
    format!("({kind};{flags};{:#x};;;{})", ace.mask, ace.trustee)
}

#[cfg(test)]
mod tests;
