//! Access masks, inheritance flags and access control entries as plain data.
//!
//! The numeric values are the ones Microsoft documents for file and directory objects
//! (`winnt.h`: "File Security and Access Rights", "Standard Access Rights", "ACE_HEADER").

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sid::Sid;

/// Access rights for files and directories (`ACCESS_MASK` values).
pub mod rights {
    /// Read a file's data / list a directory.
    pub const FILE_READ_DATA: u32 = 0x0001;
    pub const FILE_LIST_DIRECTORY: u32 = 0x0001;
    /// Write a file's data / create a file in a directory.
    pub const FILE_WRITE_DATA: u32 = 0x0002;
    pub const FILE_ADD_FILE: u32 = 0x0002;
    /// Append to a file / create a subdirectory.
    pub const FILE_APPEND_DATA: u32 = 0x0004;
    pub const FILE_ADD_SUBDIRECTORY: u32 = 0x0004;
    pub const FILE_READ_EA: u32 = 0x0008;
    pub const FILE_WRITE_EA: u32 = 0x0010;
    /// Execute a file / traverse a directory.
    pub const FILE_EXECUTE: u32 = 0x0020;
    pub const FILE_TRAVERSE: u32 = 0x0020;
    /// Delete a directory's children whatever their own ACLs say.
    pub const FILE_DELETE_CHILD: u32 = 0x0040;
    pub const FILE_READ_ATTRIBUTES: u32 = 0x0080;
    pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0100;

    pub const DELETE: u32 = 0x0001_0000;
    pub const READ_CONTROL: u32 = 0x0002_0000;
    pub const WRITE_DAC: u32 = 0x0004_0000;
    pub const WRITE_OWNER: u32 = 0x0008_0000;
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
    pub const STANDARD_RIGHTS_REQUIRED: u32 = 0x000F_0000;
    pub const STANDARD_RIGHTS_READ: u32 = READ_CONTROL;
    pub const STANDARD_RIGHTS_WRITE: u32 = READ_CONTROL;
    pub const STANDARD_RIGHTS_EXECUTE: u32 = READ_CONTROL;
    pub const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;
    pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;

    pub const GENERIC_ALL: u32 = 0x1000_0000;
    pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
    pub const GENERIC_WRITE: u32 = 0x4000_0000;
    pub const GENERIC_READ: u32 = 0x8000_0000;

    /// `0x120089`.
    pub const FILE_GENERIC_READ: u32 =
        STANDARD_RIGHTS_READ | FILE_READ_DATA | FILE_READ_ATTRIBUTES | FILE_READ_EA | SYNCHRONIZE;
    /// `0x120116`.
    pub const FILE_GENERIC_WRITE: u32 = STANDARD_RIGHTS_WRITE
        | FILE_WRITE_DATA
        | FILE_WRITE_ATTRIBUTES
        | FILE_WRITE_EA
        | FILE_APPEND_DATA
        | SYNCHRONIZE;
    /// `0x1200A0`.
    pub const FILE_GENERIC_EXECUTE: u32 = STANDARD_RIGHTS_EXECUTE | FILE_READ_ATTRIBUTES | FILE_EXECUTE | SYNCHRONIZE;
    /// `0x1F01FF`.
    pub const FILE_ALL_ACCESS: u32 = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x1FF;

    /// What `icacls` calls `M` (modify): read, write, execute and delete, but not
    /// `FILE_DELETE_CHILD`, `WRITE_DAC` or `WRITE_OWNER`. `0x1301BF`.
    pub const MODIFY: u32 = FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE;

    /// Every right that changes an object or its name: what a protected path denies. It holds
    /// no right that reading needs (`SYNCHRONIZE`, `READ_CONTROL` stay allowed, which is why
    /// it is not `FILE_GENERIC_WRITE`). `0xD0156`.
    pub const WRITE_LIKE: u32 = FILE_WRITE_DATA
        | FILE_APPEND_DATA
        | FILE_WRITE_EA
        | FILE_WRITE_ATTRIBUTES
        | FILE_DELETE_CHILD
        | DELETE
        | WRITE_DAC
        | WRITE_OWNER;

    /// Maps `GENERIC_*` bits to file rights (the file object's generic mapping) and drops the
    /// bits an ACE cannot grant (`MAXIMUM_ALLOWED`, `ACCESS_SYSTEM_SECURITY`).
    pub fn map_generic(mask: u32) -> u32 {
        let mut m = mask & !(GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ);
        if mask & GENERIC_READ != 0 {
            m |= FILE_GENERIC_READ;
        }
        if mask & GENERIC_WRITE != 0 {
            m |= FILE_GENERIC_WRITE;
        }
        if mask & GENERIC_EXECUTE != 0 {
            m |= FILE_GENERIC_EXECUTE;
        }
        if mask & GENERIC_ALL != 0 {
            m |= FILE_ALL_ACCESS;
        }
        m & !(MAXIMUM_ALLOWED | ACCESS_SYSTEM_SECURITY)
    }

    /// The names of the rights in a mask, for messages (`FILE_WRITE_DATA|DELETE`).
    pub fn describe(mask: u32) -> String {
        const NAMES: &[(u32, &str)] = &[
            (FILE_READ_DATA, "FILE_READ_DATA"),
            (FILE_WRITE_DATA, "FILE_WRITE_DATA"),
            (FILE_APPEND_DATA, "FILE_APPEND_DATA"),
            (FILE_READ_EA, "FILE_READ_EA"),
            (FILE_WRITE_EA, "FILE_WRITE_EA"),
            (FILE_EXECUTE, "FILE_EXECUTE"),
            (FILE_DELETE_CHILD, "FILE_DELETE_CHILD"),
            (FILE_READ_ATTRIBUTES, "FILE_READ_ATTRIBUTES"),
            (FILE_WRITE_ATTRIBUTES, "FILE_WRITE_ATTRIBUTES"),
            (DELETE, "DELETE"),
            (READ_CONTROL, "READ_CONTROL"),
            (WRITE_DAC, "WRITE_DAC"),
            (WRITE_OWNER, "WRITE_OWNER"),
            (SYNCHRONIZE, "SYNCHRONIZE"),
            (ACCESS_SYSTEM_SECURITY, "ACCESS_SYSTEM_SECURITY"),
            (MAXIMUM_ALLOWED, "MAXIMUM_ALLOWED"),
            (GENERIC_ALL, "GENERIC_ALL"),
            (GENERIC_EXECUTE, "GENERIC_EXECUTE"),
            (GENERIC_WRITE, "GENERIC_WRITE"),
            (GENERIC_READ, "GENERIC_READ"),
        ];
        let mut out: Vec<String> =
            NAMES.iter().filter(|(bit, _)| mask & bit != 0).map(|(_, n)| n.to_string()).collect();
        let known = NAMES.iter().fold(0, |acc, (bit, _)| acc | bit);
        if mask & !known != 0 {
            out.push(format!("{:#x}", mask & !known));
        }
        if out.is_empty() {
            "0".into()
        } else {
            out.join("|")
        }
    }
}

/// ACE inheritance flags (`ACE_HEADER.AceFlags`).
pub mod flags {
    /// Inherited by files.
    pub const OBJECT_INHERIT_ACE: u8 = 0x01;
    /// Inherited by directories.
    pub const CONTAINER_INHERIT_ACE: u8 = 0x02;
    /// Inherited by the immediate children only.
    pub const NO_PROPAGATE_INHERIT_ACE: u8 = 0x04;
    /// Applies to the children, not to the object that holds it.
    pub const INHERIT_ONLY_ACE: u8 = 0x08;
    /// Was inherited from a parent (not explicit on this object).
    pub const INHERITED_ACE: u8 = 0x10;

    /// The object and everything beneath it.
    pub const SUBTREE: u8 = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
    /// Everything beneath the object, not the object.
    pub const CHILDREN_ONLY: u8 = SUBTREE | INHERIT_ONLY_ACE;
    /// The object alone.
    pub const THIS_OBJECT_ONLY: u8 = 0;
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AceKind {
    /// Ordered first: in canonical order deny ACEs come before allow ACEs.
    Deny,
    Allow,
}

/// One access control entry: who, allow or deny, which rights, how it is inherited.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ace {
    pub trustee: Sid,
    pub kind: AceKind,
    /// An `ACCESS_MASK` (see [`rights`]).
    pub mask: u32,
    /// Inheritance flags (see [`flags`]).
    pub flags: u8,
}

impl Ace {
    pub fn allow(trustee: Sid, mask: u32, flags: u8) -> Ace {
        Ace { trustee, kind: AceKind::Allow, mask, flags }
    }

    pub fn deny(trustee: Sid, mask: u32, flags: u8) -> Ace {
        Ace { trustee, kind: AceKind::Deny, mask, flags }
    }

    /// Whether the ACE takes part in access checks on the object that holds it (it is not
    /// inherit-only).
    pub fn applies_to_object(&self) -> bool {
        self.flags & flags::INHERIT_ONLY_ACE == 0
    }

    pub fn is_inherited(&self) -> bool {
        self.flags & flags::INHERITED_ACE != 0
    }
}

impl fmt::Display for Ace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            AceKind::Allow => "allow",
            AceKind::Deny => "deny",
        };
        let mut inh = Vec::new();
        for (bit, name) in [
            (flags::OBJECT_INHERIT_ACE, "OI"),
            (flags::CONTAINER_INHERIT_ACE, "CI"),
            (flags::NO_PROPAGATE_INHERIT_ACE, "NP"),
            (flags::INHERIT_ONLY_ACE, "IO"),
            (flags::INHERITED_ACE, "I"),
        ] {
            if self.flags & bit != 0 {
                inh.push(name);
            }
        }
        write!(f, "{kind} {} {}", self.trustee, rights::describe(self.mask))?;
        if !inh.is_empty() {
            write!(f, " ({})", inh.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::rights::*;
    use super::*;

    #[test]
    fn composite_rights_have_the_documented_values() {
        assert_eq!(FILE_GENERIC_READ, 0x0012_0089);
        assert_eq!(FILE_GENERIC_WRITE, 0x0012_0116);
        assert_eq!(FILE_GENERIC_EXECUTE, 0x0012_00A0);
        assert_eq!(FILE_ALL_ACCESS, 0x001F_01FF);
        assert_eq!(MODIFY, 0x0013_01BF);
        assert_eq!(WRITE_LIKE, 0x000D_0156);
    }

    #[test]
    fn modify_withholds_delete_child_and_permission_changes() {
        assert_eq!(MODIFY & FILE_DELETE_CHILD, 0);
        assert_eq!(MODIFY & (WRITE_DAC | WRITE_OWNER), 0);
        assert_ne!(MODIFY & DELETE, 0);
    }

    #[test]
    fn write_like_denies_nothing_reading_needs() {
        assert_eq!(WRITE_LIKE & (FILE_GENERIC_READ | FILE_GENERIC_EXECUTE), 0);
        // ...and covers every write right the modify grant gives.
        assert_eq!((MODIFY & !(FILE_GENERIC_READ | FILE_GENERIC_EXECUTE)) & !WRITE_LIKE, 0);
    }

    #[test]
    fn generic_mapping() {
        assert_eq!(map_generic(GENERIC_ALL), FILE_ALL_ACCESS);
        assert_eq!(map_generic(GENERIC_WRITE | DELETE), FILE_GENERIC_WRITE | DELETE);
        assert_eq!(map_generic(GENERIC_READ | GENERIC_EXECUTE), FILE_GENERIC_READ | FILE_GENERIC_EXECUTE);
        assert_eq!(map_generic(MAXIMUM_ALLOWED | FILE_READ_DATA), FILE_READ_DATA);
    }

    #[test]
    fn display() {
        let s = Sid::parse("S-1-1-0").unwrap();
        let a = Ace::deny(s.clone(), FILE_DELETE_CHILD, 0);
        assert_eq!(a.to_string(), "deny S-1-1-0 FILE_DELETE_CHILD");
        let a = Ace::allow(s, FILE_WRITE_DATA | 0x0040_0000, flags::CHILDREN_ONLY);
        assert_eq!(a.to_string(), "allow S-1-1-0 FILE_WRITE_DATA|0x400000 (OI,CI,IO)");
        assert!(!a.applies_to_object());
        assert_eq!(describe(0), "0");
    }
}
