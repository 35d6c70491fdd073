//! The ACL plan: which ACEs the sandbox keeps on disk, what was applied, and what to change.
//!
//! # Desired state ([`desired_acl`])
//!
//! For each writable root, with its own write SID `W`:
//!
//! * on the root: `allow W` [`MODIFY`] minus `DELETE`, this folder only, and `allow W`
//!   [`MODIFY`] inherit-only to everything beneath. `FILE_DELETE_CHILD` is never granted, so
//!   deleting or renaming needs `DELETE` on the child itself, which a deny on the child can
//!   take away; and the root itself cannot be deleted or renamed away by the command;
//! * on a protected path (read-only, see [`palisade_policy::protected`]): `deny` [`WRITE_LIKE`]
//!   (write, append, write attributes and EAs, delete, delete-child, change permissions or
//!   owner), inherited by everything beneath a directory, for the write SID of every root that
//!   contains the path (roots may nest);
//! * on a pinned directory (one on the way to a protected path, such as `.git` when
//!   `.git/hooks` is protected): `deny DELETE|WRITE_DAC|WRITE_OWNER` on the directory alone, so
//!   it stays writable but cannot be renamed (`mv .git .git-old` would get around the
//!   protection);
//! * on a writable root inside another root, and on every folder between the two: the same
//!   pin for the outer root's write SID, whose inherited grant would otherwise let the command
//!   rename the inner root away together with its protected paths;
//! * on the parent of every protected or pinned path: `deny FILE_DELETE_CHILD`, this folder
//!   only, so the path cannot be deleted or renamed through its parent either;
//! * on every world-writable folder found by the audit ([`crate::audit`]) that is not inside a
//!   writable root: `deny` [`WRITE_LIKE`] for the sandbox SID, inherited, because the token's
//!   `Everyone` restricting SID would otherwise let the command write there.
//!
//! In the elevated mode, where commands run as a sandbox account (so what they create is owned
//! by that account), each root also gets the [`ownership_aces`] (see there): no implicit owner
//! rights for whoever owns something beneath the root, no permission changes by the sandbox
//! accounts' group, and the rights the real user needs to take ownership back.
//!
//! A protected path that does not exist yet cannot carry an ACE, and Windows has no ACE that
//! applies to one child *name* only (an inherit-only ACE on the parent would reach every new
//! child). So the decision is the policy crate's: a missing protected path is created as an
//! empty placeholder ([`AclChange::CreatePlaceholder`]) and then denied like an existing one.
//! Because it is new, its ACEs are added again even if the records say they were applied
//! (the earlier placeholder may have been deleted from outside the sandbox).
//!
//! The policy crate resolves against the disk as it is, so once a placeholder *directory*
//! exists it would be reported as an ordinary directory on the way to a protected path (the
//! `.git\info` placeholder for `.git/info/attributes` becomes a pinned directory with a new
//! placeholder inside; the `.git\modules` placeholder becomes a pinned, empty and so writable
//! directory). The desired state would change on every command until it settled, and would
//! settle on something weaker. [`stabilize_items`] prevents that: a directory Palisade created
//! as a placeholder (the record lists them) stays a read-only placeholder as long as nothing but
//! further placeholders is found beneath it. If it was filled from outside the sandbox (the user
//! ran `git submodule update` unsandboxed), the policy crate's view wins again. Placeholders are
//! removed again by [`cleanup_plan`] if they are still empty.
//!
//! Deny ACEs are explicit on the protected path, so they come before the inherited grant from
//! the root in every access check; and since the grant is never explicit below the root, a
//! command cannot get an explicit allow ahead of them (it has no `WRITE_DAC`). A writable root
//! inside another root's protected path is refused for that reason
//! ([`crate::roots::check_writable_roots`]).
//!
//! # Recorded state and planning
//!
//! Applying an inheriting ACE walks the whole tree, and so does removing it, so the sandbox
//! applies each ACE once and keeps it. [`RecordedAcl`] is the versioned JSON record of what was
//! applied, with the *holders* (host sessions) that use each ACE. [`plan`] compares the desired
//! state of one holder with the record: unchanged policy gives **no changes at all**, so a
//! command costs no ACL walk; an ACE that another holder still uses is never removed.
//!
//! The backend's protocol, under an exclusive lock on the record file:
//!
//! 1. `let changes = plan(&desired, &recorded)`; if empty, stop;
//! 2. `recorded.begin(&changes)` and save (write-ahead: ACEs about to be added are recorded as
//!    pending, so a crash in step 3 leaves nothing unrecorded);
//! 3. apply the changes in order. Adding an ACE that is already there must leave it alone,
//!    removing one that is not there must succeed (so a repeated plan is harmless);
//! 4. `recorded.commit(&desired)` and save.
//!
//! After a crash, the next [`plan`] re-adds pending ACEs that are still desired and removes the
//! ones that are not. A holder that is gone for good (its host crashed) is released with
//! `plan(&DesiredAcl::empty(holder), &recorded)`. [`cleanup_plan`] removes everything the record
//! lists (uninstall), and [`RecordedAcl::after_cleanup`] keeps the entries that could not be
//! removed so that they can be reported and retried.
//!
//! The record is trusted: if someone edits a root's ACL by hand, [`plan`] does not notice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use palisade_policy::protected::Action;

use crate::ace::flags::{CHILDREN_ONLY, SUBTREE, THIS_OBJECT_ONLY};
use crate::ace::rights::{
    DELETE, FILE_DELETE_CHILD, FILE_READ_ATTRIBUTES, MODIFY, READ_CONTROL, WRITE_DAC, WRITE_LIKE, WRITE_OWNER,
};
use crate::ace::{Ace, AceKind};
use crate::path::{PathError, WinPath};
use crate::sid::{well_known, Sid};

mod record;

pub use record::{cleanup_plan, plan, RecordedAce, RecordedAcl, StateError, ACL_STATE_VERSION};

/// What the policy crate decided for one path inside a writable root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtectedKind {
    /// An existing file or directory that must stay read-only.
    ReadOnly { dir: bool },
    /// An existing directory on the way to a protected path: writable, but not renamable.
    Pin,
    /// A missing protected path: created empty, then read-only.
    Placeholder { dir: bool },
}

/// One path with its decision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProtectedItem {
    pub path: WinPath,
    pub kind: ProtectedKind,
}

/// Makes the items of one root stable across runs (see the module documentation): a directory
/// in `created` (placeholders Palisade made, [`RecordedAcl::placeholders`]) that the policy crate
/// now reports as pinned or read-only, with nothing but placeholders beneath it, becomes a
/// read-only directory again and the placeholders beneath it are dropped (its inherited deny
/// covers them).
pub fn stabilize_items(items: Vec<ProtectedItem>, created: &BTreeMap<WinPath, bool>) -> Vec<ProtectedItem> {
    let sticky: Vec<WinPath> = items
        .iter()
        .filter(|i| created.get(&i.path) == Some(&true))
        .filter(|i| matches!(i.kind, ProtectedKind::Pin | ProtectedKind::ReadOnly { dir: true }))
        .filter(|i| {
            items.iter().all(|o| {
                o.path == i.path || !o.path.is_beneath(&i.path) || matches!(o.kind, ProtectedKind::Placeholder { .. })
            })
        })
        .map(|i| i.path.clone())
        .collect();
    items
        .into_iter()
        .filter(|i| !sticky.iter().any(|s| i.path != *s && i.path.is_beneath(s)))
        .map(|i| {
            if sticky.contains(&i.path) {
                ProtectedItem { path: i.path, kind: ProtectedKind::ReadOnly { dir: true } }
            } else {
                i
            }
        })
        .collect()
}

/// Converts the policy crate's [`Action`]s for one root (from
/// [`palisade_policy::protected::resolve`]) into items; `is_dir` tells whether an existing
/// read-only path is a directory (the backend asks the file system).
pub fn protected_items(actions: &[Action], is_dir: impl Fn(&WinPath) -> bool) -> Result<Vec<ProtectedItem>, PathError> {
    actions
        .iter()
        .map(|a| {
            let path = WinPath::parse(&a.path().to_string_lossy())?;
            let kind = match a {
                Action::Pin(_) => ProtectedKind::Pin,
                Action::ReadOnly(_) => ProtectedKind::ReadOnly { dir: is_dir(&path) },
                Action::Placeholder { dir, .. } => ProtectedKind::Placeholder { dir: *dir },
            };
            Ok(ProtectedItem { path, kind })
        })
        .collect()
}

/// A writable root, its write SID and its protected paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootSpec {
    pub root: WinPath,
    pub sid: Sid,
    pub protected: Vec<ProtectedItem>,
}

/// One ACE on one path. Ordered by path, so parents come before children.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PathAce {
    pub path: WinPath,
    #[serde(flatten)]
    pub ace: Ace,
}

impl fmt::Display for PathAce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.ace)
    }
}

/// Everything one holder (host session) wants on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredAcl {
    /// Who wants it: an opaque host-session identifier chosen by the backend.
    pub holder: String,
    pub aces: BTreeSet<PathAce>,
    /// Missing protected paths to create first (`true`: a directory).
    pub placeholders: BTreeMap<WinPath, bool>,
}

impl DesiredAcl {
    /// Wants nothing: planning with it releases everything `holder` held.
    pub fn empty(holder: impl Into<String>) -> DesiredAcl {
        DesiredAcl { holder: holder.into(), ..DesiredAcl::default() }
    }

    /// The distinct write SIDs and the sandbox SID named by the desired ACEs.
    pub fn trustees(&self) -> BTreeSet<&Sid> {
        self.aces.iter().map(|a| &a.ace.trustee).collect()
    }
}

/// Why a desired state cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the writable roots {a} and {b} were given the same write SID {sid}")]
    SharedSid { a: WinPath, b: WinPath, sid: Sid },
    #[error("the writable root {0} is listed twice")]
    DuplicateRoot(WinPath),
    #[error("the protected path {path} is the writable root itself")]
    ProtectedRoot { path: WinPath },
}

/// What to change on disk, in the order [`plan`] returns them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclChange {
    /// Create an empty file or directory (only if it is still missing).
    CreatePlaceholder { path: WinPath, dir: bool },
    /// Add an explicit ACE (leave it alone if an identical one is there).
    Add { path: WinPath, ace: Ace },
    /// Remove the explicit ACE (succeed if it is not there).
    Remove { path: WinPath, ace: Ace },
    /// Delete a placeholder Palisade created, if it is still empty (an empty file, or a
    /// directory without entries); leave it otherwise. Only in [`cleanup_plan`].
    RemovePlaceholder { path: WinPath, dir: bool },
}

impl AclChange {
    pub fn path(&self) -> &WinPath {
        match self {
            AclChange::CreatePlaceholder { path, .. }
            | AclChange::Add { path, .. }
            | AclChange::Remove { path, .. }
            | AclChange::RemovePlaceholder { path, .. } => path,
        }
    }

    /// Placeholders first, then new denies, then removed grants, then new grants, then removed
    /// denies: at no point between two steps is anything writable that is not writable before
    /// and after. Placeholders are removed last, once no ACE is left on them.
    ///
    /// An `OWNER RIGHTS` grant ([`ownership_aces`]) takes away the implicit rights of whoever
    /// owns an object, Palisade's user included: it is added after every other grant (so the
    /// user's own `WRITE_DAC` grant is in place first) and removed before every other grant.
    fn phase(&self) -> u8 {
        match self {
            AclChange::CreatePlaceholder { .. } => 0,
            AclChange::Add { ace, .. } if ace.kind == AceKind::Deny => 1,
            AclChange::Remove { ace, .. } if is_owner_rights_grant(ace) => 2,
            AclChange::Remove { ace, .. } if ace.kind == AceKind::Allow => 3,
            AclChange::Add { ace, .. } if is_owner_rights_grant(ace) => 5,
            AclChange::Add { .. } => 4,
            AclChange::Remove { .. } => 6,
            AclChange::RemovePlaceholder { .. } => 7,
        }
    }
}

fn is_owner_rights_grant(ace: &Ace) -> bool {
    ace.kind == AceKind::Allow && ace.trustee.as_str() == well_known::OWNER_RIGHTS
}

impl fmt::Display for AclChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclChange::CreatePlaceholder { path, dir } => {
                write!(f, "create placeholder {} {path}", if *dir { "directory" } else { "file" })
            }
            AclChange::Add { path, ace } => write!(f, "add to {path}: {ace}"),
            AclChange::Remove { path, ace } => write!(f, "remove from {path}: {ace}"),
            AclChange::RemovePlaceholder { path, dir } => {
                write!(f, "remove placeholder {} {path} if empty", if *dir { "directory" } else { "file" })
            }
        }
    }
}

fn sort_changes(changes: &mut [AclChange]) {
    changes.sort_by(|a, b| a.phase().cmp(&b.phase()).then_with(|| a.cmp(b)));
}

/// The ACEs that grant a root to its write SID.
pub fn root_grant(root: &WinPath, sid: &Sid) -> [PathAce; 2] {
    [
        PathAce { path: root.clone(), ace: Ace::allow(sid.clone(), MODIFY & !DELETE, THIS_OBJECT_ONLY) },
        PathAce { path: root.clone(), ace: Ace::allow(sid.clone(), MODIFY, CHILDREN_ONLY) },
    ]
}

/// The mask pinned directories deny.
pub const PIN_DENY: u32 = DELETE | WRITE_DAC | WRITE_OWNER;

/// What `OWNER RIGHTS` (`S-1-3-4`) is granted beneath an elevated-mode root: reading
/// attributes, which listing the folder gives anyway. Any `OWNER RIGHTS` entry replaces the
/// owner's implicit `READ_CONTROL | WRITE_DAC`; this one adds no right that writes, so owning a
/// file gives the sandbox account nothing (an owner-rights write grant would pass the
/// restricted token's first check on a file it created in another project's root; when the
/// account SID was a restricting SID, before `command_identity`, the second as well).
pub const OWNER_RIGHTS_MASK: u32 = FILE_READ_ATTRIBUTES;

/// What the real user is granted beneath an elevated-mode root: taking ownership of what the
/// sandbox account created (`WRITE_OWNER`; a root on a data drive often gives users only
/// "Modify"), reading its security descriptor, and changing its DACL, which the `OWNER RIGHTS`
/// entry would otherwise take from the user on the files the user owns.
pub const USER_OWNERSHIP_MASK: u32 = READ_CONTROL | WRITE_DAC | WRITE_OWNER;

/// What the sandbox accounts' group is denied beneath an elevated-mode root: changing
/// permissions or owner. Inherited `CREATOR OWNER` entries (a data drive's root has one) turn
/// into full control for the account on what it creates; this deny, inherited from the nearer
/// root, comes first and takes `WRITE_DAC` and `WRITE_OWNER` back out of it.
pub const GROUP_PERMISSION_DENY: u32 = WRITE_DAC | WRITE_OWNER;

/// Who owns what a command creates in a writable root, which decides the [`ownership_aces`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Creator {
    /// The unelevated mode: the command runs as the calling user, so what it creates is the
    /// user's, as without a sandbox; nothing drifts, and no ACEs are added. (Its restricted
    /// token does not list the user's SID as a restricting SID, so the owner's implicit
    /// `WRITE_DAC` has no restricting SID to pass the token's second check with.)
    CallingUser,
    /// The elevated mode: the command runs as a sandbox account (a member of `group`), which
    /// becomes the owner of what it creates; `user` is the real user running Palisade.
    SandboxAccount { group: Sid, user: Sid },
}

/// The ACEs on `root` that keep ownership from giving the command rights (none for
/// [`Creator::CallingUser`]). For [`Creator::SandboxAccount`], inherited by everything beneath
/// the root (not the root itself, which the command cannot create and whose owner's rights stay
/// as they were):
///
/// * `allow OWNER RIGHTS` [`OWNER_RIGHTS_MASK`]: no implicit `WRITE_DAC` for the owner;
/// * `deny group` [`GROUP_PERMISSION_DENY`] (also on the root): no permission changes through
///   any allow entry either;
/// * `allow user` [`USER_OWNERSHIP_MASK`]: the CLI can give ownership back to the user after
///   each command, and the user keeps changing permissions of their own files.
pub fn ownership_aces(root: &WinPath, creator: &Creator) -> Vec<PathAce> {
    let Creator::SandboxAccount { group, user } = creator else {
        return Vec::new();
    };
    let at_root = |ace| PathAce { path: root.clone(), ace };
    vec![
        at_root(Ace::allow(well_known::sid(well_known::OWNER_RIGHTS), OWNER_RIGHTS_MASK, CHILDREN_ONLY)),
        at_root(Ace::deny(group.clone(), GROUP_PERMISSION_DENY, SUBTREE)),
        at_root(Ace::allow(user.clone(), USER_OWNERSHIP_MASK, CHILDREN_ONLY)),
    ]
}

/// Builds one holder's desired state (see the module documentation for the rules).
///
/// `roots` must be canonical and already checked ([`crate::roots::check_writable_roots`]);
/// protected items outside their root are ignored (the policy crate may name paths of an
/// indirect git directory elsewhere, which no write SID can write anyway). `world_writable` are
/// folders the audit found writable through a broad group; those inside a writable root are
/// skipped (they are writable on purpose).
pub fn desired_acl(
    holder: &str,
    roots: &[RootSpec],
    world_writable: &[WinPath],
    sandbox_sid: &Sid,
) -> Result<DesiredAcl, PlanError> {
    let mut seen_roots: BTreeMap<&WinPath, &Sid> = BTreeMap::new();
    let mut seen_sids: BTreeMap<&Sid, &WinPath> = BTreeMap::new();
    for r in roots {
        if seen_roots.insert(&r.root, &r.sid).is_some() {
            return Err(PlanError::DuplicateRoot(r.root.clone()));
        }
        if let Some(other) = seen_sids.insert(&r.sid, &r.root) {
            return Err(PlanError::SharedSid { a: other.clone(), b: r.root.clone(), sid: r.sid.clone() });
        }
    }
    // Write SIDs of every root that contains `path`.
    let sids_over =
        |path: &WinPath| -> Vec<&Sid> { roots.iter().filter(|r| path.is_beneath(&r.root)).map(|r| &r.sid).collect() };

    let mut out = DesiredAcl::empty(holder);
    for r in roots {
        out.aces.extend(root_grant(&r.root, &r.sid));
        for item in &r.protected {
            let path = item.path.without_stream();
            if !path.is_beneath(&r.root) {
                continue;
            }
            if path == r.root {
                return Err(PlanError::ProtectedRoot { path });
            }
            let (mask, flags) = match item.kind {
                ProtectedKind::ReadOnly { dir: true } | ProtectedKind::Placeholder { dir: true } => {
                    (WRITE_LIKE, SUBTREE)
                }
                ProtectedKind::ReadOnly { dir: false } | ProtectedKind::Placeholder { dir: false } => {
                    (WRITE_LIKE, THIS_OBJECT_ONLY)
                }
                ProtectedKind::Pin => (PIN_DENY, THIS_OBJECT_ONLY),
            };
            if let ProtectedKind::Placeholder { dir } = item.kind {
                out.placeholders.insert(path.clone(), dir);
            }
            let parent = path.parent().expect("a path beneath a root has a parent");
            for sid in sids_over(&path) {
                out.aces.insert(PathAce { path: path.clone(), ace: Ace::deny(sid.clone(), mask, flags) });
                out.aces.insert(PathAce {
                    path: parent.clone(),
                    ace: Ace::deny(sid.clone(), FILE_DELETE_CHILD, THIS_OBJECT_ONLY),
                });
            }
        }
    }
    // A root inside another root: the outer root's inherited grant gives `DELETE` on the
    // inner root and on every folder between the two, so renaming one of them would carry the
    // inner root's protected paths away and free their names. Those folders are pinned like a
    // directory on the way to a protected path, for the roots whose grant reaches them.
    for r in roots {
        let mut folder = r.root.clone();
        loop {
            let outer: Vec<&Sid> =
                roots.iter().filter(|o| folder.is_beneath(&o.root) && folder != o.root).map(|o| &o.sid).collect();
            if outer.is_empty() {
                break;
            }
            let parent = folder.parent().expect("a path beneath a root has a parent");
            for sid in outer {
                out.aces
                    .insert(PathAce { path: folder.clone(), ace: Ace::deny(sid.clone(), PIN_DENY, THIS_OBJECT_ONLY) });
                out.aces.insert(PathAce {
                    path: parent.clone(),
                    ace: Ace::deny(sid.clone(), FILE_DELETE_CHILD, THIS_OBJECT_ONLY),
                });
            }
            folder = parent;
        }
    }
    for folder in world_writable {
        let folder = folder.without_stream();
        if roots.iter().any(|r| folder.is_beneath(&r.root)) {
            continue;
        }
        out.aces.insert(PathAce { path: folder, ace: Ace::deny(sandbox_sid.clone(), WRITE_LIKE, SUBTREE) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
