//! An access-check model written from Microsoft's published algorithm, with its own plain types
//! and its own constants, so that it shares nothing with the plan it judges.
//!
//! * The DACL walk is [MS-DTYP] 2.5.3.2 ("Access Check Algorithm Pseudocode"), reduced to what
//!   file ACLs use here (allow/deny ACEs, no object or callback ACEs, no privileges, no
//!   `MAXIMUM_ALLOWED`): generic bits are mapped first; an owner gets `READ_CONTROL|WRITE_DAC`
//!   unless an `OWNER RIGHTS` ACE applies; inherit-only ACEs are skipped; an allow ACE clears
//!   the bits it grants from what remains; a deny ACE fails the check if it names a bit that
//!   still remains (so a deny after an allow of the same bits has no effect: order matters).
//!   Allow ACEs match enabled SIDs only; deny ACEs match enabled and deny-only SIDs.
//! * A restricted token is checked a second time with its restricting SIDs alone (every one
//!   present counts, for allow and deny); with `WRITE_RESTRICTED` only the write bits of the
//!   request take part in the second check ([`Token::write_checked`]; see `WRITE_BITS_*`).
//! * Inheritance is [MS-DTYP] 2.5.3.4 (computing an inherited ACL from the parent's): a folder
//!   takes `CONTAINER_INHERIT` entries (kept inheritable unless `NO_PROPAGATE_INHERIT`) and, as
//!   inherit-only, `OBJECT_INHERIT`-only entries (unless no-propagate); a file takes
//!   `OBJECT_INHERIT` entries with every inheritance flag cleared. Explicit entries come first,
//!   deny before allow (the order Windows' ACL editors and `SetEntriesInAcl` keep), then the
//!   inherited ones in the parent's order.
//! * Objects other than files ([`access_check_object`]: processes, registry keys) use their
//!   type's generic mapping ([`ObjectType`]); the second check of a write-restricted token
//!   covers the type's generic write rights and the standard rights that modify
//!   ([`ObjectType::modifying`]), the file reading carried over.
//! * Deleting a file ([MS-FSA] 2.1.5.1.2.1): `DELETE` is granted if the file's own check grants
//!   it, or if the parent's check grants `FILE_DELETE_CHILD`.

use std::collections::BTreeMap;

// Access rights (winnt.h / [MS-DTYP] 2.4.3), written out again on purpose.
pub const READ_DATA: u32 = 0x1;
pub const WRITE_DATA: u32 = 0x2; // FILE_ADD_FILE on a folder
pub const APPEND_DATA: u32 = 0x4; // FILE_ADD_SUBDIRECTORY on a folder
pub const READ_EA: u32 = 0x8;
pub const WRITE_EA: u32 = 0x10;
pub const EXECUTE: u32 = 0x20;
pub const DELETE_CHILD: u32 = 0x40;
pub const READ_ATTRIBUTES: u32 = 0x80;
pub const WRITE_ATTRIBUTES: u32 = 0x100;
pub const DELETE: u32 = 0x1_0000;
pub const READ_CONTROL: u32 = 0x2_0000;
pub const WRITE_DAC: u32 = 0x4_0000;
pub const WRITE_OWNER: u32 = 0x8_0000;
pub const SYNCHRONIZE: u32 = 0x10_0000;
pub const GENERIC_ALL: u32 = 0x1000_0000;
pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;
pub const GENERIC_READ: u32 = 0x8000_0000;

/// The file object's generic mapping (FILE_GENERIC_READ/WRITE/EXECUTE, FILE_ALL_ACCESS).
pub const FILE_READ: u32 = READ_CONTROL | READ_DATA | READ_ATTRIBUTES | READ_EA | SYNCHRONIZE;
pub const FILE_WRITE: u32 = READ_CONTROL | WRITE_DATA | WRITE_ATTRIBUTES | WRITE_EA | APPEND_DATA | SYNCHRONIZE;
pub const FILE_EXECUTE: u32 = READ_CONTROL | READ_ATTRIBUTES | EXECUTE | SYNCHRONIZE;
pub const FILE_ALL: u32 = 0xF_0000 | SYNCHRONIZE | 0x1FF;

/// What the second check of a write-restricted token covers, reading "write access" as every
/// right that changes the object, its name or its security: the plan's assumption.
pub const WRITE_BITS_MODIFYING: u32 =
    WRITE_DATA | APPEND_DATA | WRITE_EA | WRITE_ATTRIBUTES | DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER;
/// The narrow reading: only the rights `GENERIC_WRITE` maps to for files, without the two
/// that reading shares (`READ_CONTROL`, `SYNCHRONIZE`), so no `DELETE`, `WRITE_DAC`,
/// `WRITE_OWNER` or `FILE_DELETE_CHILD`. Used to show what depends on the reading.
pub const WRITE_BITS_GENERIC_WRITE: u32 = FILE_WRITE & !(READ_CONTROL | SYNCHRONIZE);

pub const OWNER_RIGHTS: &str = "S-1-3-4";

// ACE flags ([MS-DTYP] 2.4.4.1).
pub const OI: u8 = 0x1;
pub const CI: u8 = 0x2;
pub const NP: u8 = 0x4;
pub const IO: u8 = 0x8;
pub const INHERITED: u8 = 0x10;

pub fn map_generic(mask: u32) -> u32 {
    FILE_TYPE.map(mask)
}

/// An object type's generic mapping (GENERIC_READ/WRITE/EXECUTE/ALL to specific rights).
#[derive(Clone, Copy, Debug)]
pub struct ObjectType {
    pub read: u32,
    pub write: u32,
    pub execute: u32,
    pub all: u32,
}

/// Files and folders (FILE_GENERIC_READ/WRITE/EXECUTE, FILE_ALL_ACCESS).
pub const FILE_TYPE: ObjectType =
    ObjectType { read: FILE_READ, write: FILE_WRITE, execute: FILE_EXECUTE, all: FILE_ALL };

// Process rights (winnt.h), and the kernel's generic mapping of the Process object type:
// read = READ_CONTROL|VM_READ|QUERY_INFORMATION; write = READ_CONTROL|CREATE_THREAD|
// VM_OPERATION|VM_WRITE|DUP_HANDLE|CREATE_PROCESS|SET_QUOTA|SET_INFORMATION|SUSPEND_RESUME;
// execute = SYNCHRONIZE|READ_CONTROL|TERMINATE|QUERY_LIMITED_INFORMATION; all =
// PROCESS_ALL_ACCESS.
pub const PROCESS_TERMINATE: u32 = 0x1;
pub const PROCESS_CREATE_THREAD: u32 = 0x2;
pub const PROCESS_VM_OPERATION: u32 = 0x8;
pub const PROCESS_VM_READ: u32 = 0x10;
pub const PROCESS_VM_WRITE: u32 = 0x20;
pub const PROCESS_DUP_HANDLE: u32 = 0x40;
pub const PROCESS_CREATE_PROCESS: u32 = 0x80;
pub const PROCESS_SET_QUOTA: u32 = 0x100;
pub const PROCESS_SET_INFORMATION: u32 = 0x200;
pub const PROCESS_SUSPEND_RESUME: u32 = 0x800;
pub const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
pub const PROCESS_TYPE: ObjectType = ObjectType { read: 0x2_0410, write: 0x2_0BEA, execute: 0x12_1001, all: 0x1F_FFFF };

// Registry key rights (winnt.h) and their generic mapping (KEY_READ, KEY_WRITE, KEY_EXECUTE,
// KEY_ALL_ACCESS).
pub const KEY_QUERY_VALUE: u32 = 0x1;
pub const KEY_SET_VALUE: u32 = 0x2;
pub const KEY_CREATE_SUB_KEY: u32 = 0x4;
pub const KEY_TYPE: ObjectType = ObjectType { read: 0x2_0019, write: 0x2_0006, execute: 0x2_0019, all: 0xF_003F };

impl ObjectType {
    pub fn map(&self, mask: u32) -> u32 {
        let mut m = mask & 0x0FFF_FFFF;
        for (g, specific) in [
            (GENERIC_READ, self.read),
            (GENERIC_WRITE, self.write),
            (GENERIC_EXECUTE, self.execute),
            (GENERIC_ALL, self.all),
        ] {
            if mask & g != 0 {
                m |= specific;
            }
        }
        m
    }

    /// What the second check of a write-restricted token covers on an object of this type,
    /// read as for files ([`WRITE_BITS_MODIFYING`]): the type's generic write rights without
    /// the two that reading shares, and every standard right that changes the object.
    pub fn modifying(&self) -> u32 {
        (self.write & !(READ_CONTROL | SYNCHRONIZE)) | DELETE | WRITE_DAC | WRITE_OWNER
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelAce {
    pub allow: bool,
    pub sid: String,
    pub mask: u32,
    pub flags: u8,
}

impl ModelAce {
    pub fn allow(sid: &str, mask: u32, flags: u8) -> ModelAce {
        ModelAce { allow: true, sid: sid.into(), mask, flags }
    }
    pub fn deny(sid: &str, mask: u32, flags: u8) -> ModelAce {
        ModelAce { allow: false, sid: sid.into(), mask, flags }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Enabled,
    DenyOnly,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub user: String,
    pub groups: Vec<(String, GroupState)>,
    pub restricting: Vec<String>,
    pub write_restricted: bool,
    /// The bits the second check covers when `write_restricted` (see `WRITE_BITS_*`).
    pub write_checked: u32,
}

impl Token {
    pub fn plain(user: &str, groups: &[(&str, GroupState)]) -> Token {
        Token {
            user: user.into(),
            groups: groups.iter().map(|(s, g)| (s.to_string(), *g)).collect(),
            restricting: Vec::new(),
            write_restricted: false,
            write_checked: WRITE_BITS_MODIFYING,
        }
    }

    /// Whether `sid` matches in the normal check (`for_deny`: a deny ACE is being matched).
    fn normal_has(&self, sid: &str, for_deny: bool) -> bool {
        sid == self.user || self.groups.iter().any(|(s, g)| s == sid && (*g == GroupState::Enabled || for_deny))
    }
}

/// A security descriptor as far as the check needs it.
pub struct Sd<'a> {
    pub owner: &'a str,
    pub dacl: &'a [ModelAce],
}

/// One pass of the DACL walk; `has(sid, for_deny)` says whether the pass's SIDs match.
fn pass(sd: &Sd, desired: u32, ty: &ObjectType, has: &dyn Fn(&str, bool) -> bool) -> bool {
    let effective: Vec<&ModelAce> = sd.dacl.iter().filter(|a| a.flags & IO == 0).collect();
    let owner_matches = has(sd.owner, false);
    let mut remaining = desired;
    if owner_matches && !effective.iter().any(|a| a.sid == OWNER_RIGHTS) {
        remaining &= !(READ_CONTROL | WRITE_DAC);
    }
    for ace in effective {
        if remaining == 0 {
            break;
        }
        let matches = if ace.sid == OWNER_RIGHTS { owner_matches } else { has(&ace.sid, !ace.allow) };
        if !matches {
            continue;
        }
        let mask = ty.map(ace.mask);
        if ace.allow {
            remaining &= !mask;
        } else if mask & remaining != 0 {
            return false;
        }
    }
    remaining == 0
}

/// Whether `token` is granted all of `desired` on a file or folder with `sd`.
pub fn access_check(sd: &Sd, token: &Token, desired: u32) -> bool {
    checked(sd, token, desired, &FILE_TYPE, token.write_checked)
}

/// Whether `token` is granted all of `desired` on an object of type `ty` (a process, a
/// registry key) with `sd`; a write-restricted token's second check covers `ty.modifying()`.
pub fn access_check_object(sd: &Sd, token: &Token, desired: u32, ty: &ObjectType) -> bool {
    checked(sd, token, desired, ty, ty.modifying())
}

fn checked(sd: &Sd, token: &Token, desired: u32, ty: &ObjectType, write_checked: u32) -> bool {
    let desired = ty.map(desired);
    if !pass(sd, desired, ty, &|sid, for_deny| token.normal_has(sid, for_deny)) {
        return false;
    }
    if token.restricting.is_empty() {
        return true;
    }
    let second = if token.write_restricted { desired & write_checked } else { desired };
    second == 0 || pass(sd, second, ty, &|sid, _| token.restricting.iter().any(|r| r == sid))
}

/// The ACEs a child inherits from its parent's DACL ([MS-DTYP] 2.5.3.4).
pub fn inherit(parent: &[ModelAce], child_is_dir: bool) -> Vec<ModelAce> {
    let mut out = Vec::new();
    for a in parent {
        let mut n = a.clone();
        if child_is_dir {
            if a.flags & CI != 0 {
                n.flags = if a.flags & NP != 0 { 0 } else { a.flags & !IO };
            } else if a.flags & OI != 0 && a.flags & NP == 0 {
                n.flags = a.flags | IO;
            } else {
                continue;
            }
        } else if a.flags & OI != 0 {
            n.flags = 0;
        } else {
            continue;
        }
        n.flags |= INHERITED;
        out.push(n);
    }
    out
}

/// A file system tree: paths are lower-case `\`-joined strings; every node but a top one
/// (with `inherits: false`) takes its parent's inheritable entries.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub dir: bool,
    pub owner: String,
    pub explicit: Vec<ModelAce>,
    pub inherits: bool,
}

pub fn parent_of(path: &str) -> Option<&str> {
    path.rfind('\\').map(|i| &path[..i])
}

impl Tree {
    /// Adds a folder or file (and its missing ancestors as inheriting folders, owned by `owner`).
    pub fn add(&mut self, path: &str, dir: bool, owner: &str) {
        let path = path.to_lowercase();
        if let Some(p) = parent_of(&path) {
            if !self.nodes.contains_key(p) {
                self.add(p, true, owner);
            }
        }
        self.nodes.entry(path).or_insert(Node { dir, owner: owner.into(), explicit: Vec::new(), inherits: true });
    }

    pub fn node(&self, path: &str) -> &Node {
        self.nodes.get(&path.to_lowercase()).unwrap_or_else(|| panic!("no node {path}"))
    }

    /// The DACL an access check sees on `path`.
    pub fn dacl(&self, path: &str) -> Vec<ModelAce> {
        let node = self.node(path);
        let mut out: Vec<ModelAce> = node.explicit.iter().filter(|a| !a.allow).cloned().collect();
        out.extend(node.explicit.iter().filter(|a| a.allow).cloned());
        if node.inherits {
            if let Some(parent) = parent_of(&path.to_lowercase()) {
                if self.nodes.contains_key(parent) {
                    out.extend(inherit(&self.dacl(parent), node.dir));
                }
            }
        }
        out
    }

    pub fn check(&self, path: &str, token: &Token, desired: u32) -> bool {
        let dacl = self.dacl(path);
        access_check(&Sd { owner: &self.node(path).owner, dacl: &dacl }, token, desired)
    }

    /// Whether `token` may delete or rename `path` ([MS-FSA]: `DELETE` on it or
    /// `FILE_DELETE_CHILD` on its parent).
    pub fn can_delete(&self, path: &str, token: &Token) -> bool {
        self.check(path, token, DELETE)
            || parent_of(&path.to_lowercase())
                .filter(|p| self.nodes.contains_key(*p))
                .is_some_and(|p| self.check(p, token, DELETE_CHILD))
    }
}
