//! Security identifiers as strings, Palisade's synthetic SIDs, and the registry that gives each
//! writable root its own write SID.
//!
//! # Synthetic SIDs
//!
//! A write-restricted token carries one *write SID* per writable root, and every writable root
//! grants write access to its own SID only. That way a session for one project cannot write
//! another project's kept root, even though the ACEs stay on disk between commands. A second
//! synthetic SID, the *sandbox SID*, is in every sandboxed token and is what deny ACEs on
//! world-writable folders name. A third, the *instance SID*, is made afresh for each sandbox
//! (never stored): its commands' own processes, threads and other kernel objects are granted to
//! it, so that commands of another sandbox cannot write them (see [`crate::token`]).
//!
//! Format: `S-1-9-1347179332-K-a-b-c-d`.
//!
//! * Identifier authority 9 is `SECURITY_RESOURCE_MANAGER_AUTHORITY`, which Windows documents
//!   as the authority for third-party resource managers. Real accounts and groups live under
//!   authority 5 (`S-1-5-21-…` machine and domain SIDs, `S-1-5-32-…` builtin groups) and
//!   capabilities under 15, so a synthetic SID can never equal a real principal's SID.
//! * 1347179332 is `0x504C5344`, "PLSD" in ASCII: it marks the SID as Palisade's.
//! * `K` is the kind ([`SyntheticKind`]): 1 for a writable root's write SID, 2 for the sandbox
//!   SID, 3 for a sandbox's instance SID (unelevated mode), 4 for the elevated mode's
//!   per-command SID.
//! * `a-b-c-d` are the caller's 16 random bytes as four little-endian `u32`s (128 bits, so two
//!   roots never share a SID by chance; [`SidRegistry::assign`] still checks).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::path::WinPath;

/// Why a string is not a SID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a SID string: {reason}")]
pub struct SidError {
    pub text: String,
    pub reason: &'static str,
}

/// A security identifier in its string form (`S-1-5-21-1004336348-1177238915-682003330-1001`),
/// always canonical: `S-1-`, the identifier authority (decimal below 2^32, `0x` and 12
/// upper-case hex digits above, as Windows prints it), then at most 15 decimal
/// sub-authorities without leading zeros. A `Sid` therefore contains nothing but `S`, `-`,
/// `x` and hex digits, is safe to splice into SDDL or a firewall rule, and two `Sid`s are equal
/// exactly when they name the same SID.
///
/// [`Sid::parse`] (and deserialization) accept only that spelling, so every SID has exactly
/// one accepted form; [`Sid::canonicalize`] reads the other spellings Windows accepts
/// (`s-1-5-032`, a hex authority, no sub-authority) for SIDs read back from the system.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sid(String);

/// The name the unelevated backend uses for the string form, next to its binary `ffi::Sid`;
/// the same type as [`Sid`].
pub type SidString = Sid;

/// The largest number of sub-authorities a SID may have (`SID_MAX_SUB_AUTHORITIES`).
pub const MAX_SUB_AUTHORITIES: usize = 15;

impl Sid {
    /// Accepts only the canonical spelling (see [`Sid`]) with 1 to 15 sub-authorities, so that
    /// SDDL aliases (`BA`, `WD`), letter case, leading zeros or a decimal authority above 2^32
    /// can never make two spellings of one SID, or a SID that means something else.
    pub fn parse(text: &str) -> Result<Sid, SidError> {
        let sid = Sid::canonicalize(text)?;
        if sid.0 != text {
            return Err(SidError {
                text: text.to_string(),
                reason:
                    "it is not in canonical form (upper-case `S`, no leading zeros, a decimal authority below 2^32)",
            });
        }
        if sid.sub_authorities().is_empty() {
            return Err(SidError { text: text.to_string(), reason: "it has no sub-authority" });
        }
        Ok(sid)
    }

    /// Parses any spelling Windows accepts and returns the canonical one (`s-1-5-032-0545`
    /// becomes `S-1-5-32-545`, `S-1-5` with no sub-authority is kept).
    pub fn canonicalize(text: &str) -> Result<Sid, SidError> {
        let err = |reason| SidError { text: text.to_string(), reason };
        let mut parts = text.split('-');
        match parts.next() {
            Some("S") | Some("s") => {}
            _ => return Err(err("it does not start with `S-`")),
        }
        if parts.next() != Some("1") {
            return Err(err("the revision is not 1"));
        }
        let authority = parts.next().ok_or_else(|| err("it has no identifier authority"))?;
        let authority = if let Some(hex) = authority.strip_prefix("0x").or_else(|| authority.strip_prefix("0X")) {
            if hex.is_empty() || hex.len() > 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err("the hexadecimal identifier authority is not 1 to 12 hex digits"));
            }
            u64::from_str_radix(hex, 16).map_err(|_| err("bad identifier authority"))?
        } else {
            parse_decimal(authority).ok_or_else(|| err("the identifier authority is not a number"))?
        };
        if authority >= 1 << 48 {
            return Err(err("the identifier authority does not fit in 48 bits"));
        }
        let mut subs = Vec::new();
        for part in parts {
            let v = parse_decimal(part).ok_or_else(|| err("a sub-authority is not a number"))?;
            let v = u32::try_from(v).map_err(|_| err("a sub-authority does not fit in 32 bits"))?;
            subs.push(v);
        }
        if subs.len() > MAX_SUB_AUTHORITIES {
            return Err(err("it has more than 15 sub-authorities"));
        }
        Ok(Sid::from_parts(authority, &subs))
    }

    /// Builds the canonical string of a SID from its parts. `authority` must be below 2^48 and
    /// `subs` at most 15 long (both are checked by [`Sid::canonicalize`]; here they are asserted).
    pub fn from_parts(authority: u64, subs: &[u32]) -> Sid {
        assert!(authority < 1 << 48 && subs.len() <= MAX_SUB_AUTHORITIES, "invalid SID parts");
        let mut s = if authority < 1 << 32 { format!("S-1-{authority}") } else { format!("S-1-0x{authority:012X}") };
        for v in subs {
            s.push('-');
            s.push_str(&v.to_string());
        }
        Sid(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier authority (the number after `S-1-`).
    pub fn authority(&self) -> u64 {
        let a = self.0.split('-').nth(2).unwrap_or("0");
        match a.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap_or(0),
            None => a.parse().unwrap_or(0),
        }
    }

    /// The sub-authorities after the identifier authority.
    pub fn sub_authorities(&self) -> Vec<u32> {
        self.0.split('-').skip(3).filter_map(|v| v.parse().ok()).collect()
    }

    /// The last sub-authority: the relative identifier of an account.
    pub fn rid(&self) -> u32 {
        self.sub_authorities().last().copied().unwrap_or(0)
    }

    /// Whether this is a local or domain account or group (`S-1-5-21-...`), as opposed to a
    /// well-known or built-in SID.
    pub fn is_account_domain(&self) -> bool {
        self.0.starts_with("S-1-5-21-")
    }

    pub fn system() -> Sid {
        well_known::sid(well_known::LOCAL_SYSTEM)
    }
    pub fn administrators() -> Sid {
        well_known::sid(well_known::ADMINISTRATORS)
    }
    pub fn users() -> Sid {
        well_known::sid(well_known::USERS)
    }
    pub fn everyone() -> Sid {
        well_known::sid(well_known::EVERYONE)
    }
    pub fn authenticated_users() -> Sid {
        well_known::sid(well_known::AUTHENTICATED_USERS)
    }
    pub fn trusted_installer() -> Sid {
        well_known::sid(well_known::TRUSTED_INSTALLER)
    }

    /// Built-in groups whose members hold administrative or otherwise elevated power. An account
    /// that Palisade uses as a sandbox must belong to none of them.
    pub fn is_privileged_group(&self) -> bool {
        const PRIVILEGED: &[&str] = &[
            "S-1-5-32-544", // Administrators
            "S-1-5-32-547", // Power Users
            "S-1-5-32-548", // Account Operators
            "S-1-5-32-549", // Server Operators
            "S-1-5-32-550", // Print Operators
            "S-1-5-32-551", // Backup Operators
            "S-1-5-32-552", // Replicators
            "S-1-5-32-555", // Remote Desktop Users
            "S-1-5-32-556", // Network Configuration Operators
            "S-1-5-32-562", // Distributed COM Users
            "S-1-5-32-573", // Event Log Readers
            "S-1-5-32-578", // Hyper-V Administrators
            "S-1-5-32-580", // Remote Management Users
            "S-1-5-32-583", // Device Owners
        ];
        PRIVILEGED.contains(&self.0.as_str())
    }

    /// A Palisade synthetic SID of the given kind from 16 random bytes (see the module
    /// documentation for the format).
    pub fn synthetic(kind: SyntheticKind, random: [u8; 16]) -> Sid {
        let mut subs = vec![PALISADE_TAG, kind as u32];
        for chunk in random.chunks_exact(4) {
            subs.push(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        Sid::from_parts(RESOURCE_MANAGER_AUTHORITY, &subs)
    }

    /// The kind of Palisade synthetic SID this is, if it is one.
    pub fn synthetic_kind(&self) -> Option<SyntheticKind> {
        if self.authority() != RESOURCE_MANAGER_AUTHORITY {
            return None;
        }
        match self.sub_authorities().as_slice() {
            [PALISADE_TAG, 1, _, _, _, _] => Some(SyntheticKind::WriteRoot),
            [PALISADE_TAG, 2, _, _, _, _] => Some(SyntheticKind::Sandbox),
            [PALISADE_TAG, 3, _, _, _, _] => Some(SyntheticKind::Instance),
            [PALISADE_TAG, 4, _, _, _, _] => Some(SyntheticKind::Command),
            _ => None,
        }
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.0)
    }
}

impl std::str::FromStr for Sid {
    type Err = SidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sid::parse(s)
    }
}

impl Serialize for Sid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Sid::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `SECURITY_RESOURCE_MANAGER_AUTHORITY`.
pub const RESOURCE_MANAGER_AUTHORITY: u64 = 9;
/// "PLSD": the first sub-authority of every Palisade synthetic SID.
pub const PALISADE_TAG: u32 = 0x504C_5344;

/// What a synthetic SID is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyntheticKind {
    /// Grants write access to one writable root.
    WriteRoot = 1,
    /// In every sandboxed token; named by deny ACEs on world-writable folders.
    Sandbox = 2,
    /// One sandbox's own: in its commands' tokens and default DACL, nowhere on disk.
    Instance = 3,
    /// The elevated mode's per-command identity: fresh for each command, in its restricting
    /// SIDs, its default DACL and its temporary folder's DACL, and nowhere else
    /// ([`crate::command_identity`]).
    Command = 4,
}

/// Well-known SIDs (their string forms are fixed by Windows).
pub mod well_known {
    /// `Everyone` (World).
    pub const EVERYONE: &str = "S-1-1-0";
    /// `CREATOR OWNER`: a placeholder in inheritable ACEs, replaced by the creator.
    pub const CREATOR_OWNER: &str = "S-1-3-0";
    /// `OWNER RIGHTS`: when present, replaces the owner's implicit rights.
    pub const OWNER_RIGHTS: &str = "S-1-3-4";
    /// `NT AUTHORITY\INTERACTIVE`.
    pub const INTERACTIVE: &str = "S-1-5-4";
    /// `NT AUTHORITY\Authenticated Users`.
    pub const AUTHENTICATED_USERS: &str = "S-1-5-11";
    /// `NT AUTHORITY\RESTRICTED`.
    pub const RESTRICTED: &str = "S-1-5-12";
    /// `NT AUTHORITY\SYSTEM`.
    pub const LOCAL_SYSTEM: &str = "S-1-5-18";
    /// `BUILTIN\Administrators`.
    pub const ADMINISTRATORS: &str = "S-1-5-32-544";
    /// `BUILTIN\Users`.
    pub const USERS: &str = "S-1-5-32-545";
    /// `NT SERVICE\TrustedInstaller`.
    pub const TRUSTED_INSTALLER: &str = "S-1-5-80-956008885-3425420160-3186216591-2000232021-1434102497";

    /// A well-known SID as a [`super::Sid`].
    pub fn sid(s: &str) -> super::Sid {
        super::Sid::parse(s).expect("well-known SID strings are valid")
    }
}

/// Whether a SID is a logon SID (`S-1-5-5-X-Y`), unique to one logon session.
pub fn is_logon_sid(sid: &Sid) -> bool {
    sid.authority() == 5 && matches!(sid.sub_authorities().as_slice(), [5, _, _])
}

/// The write SID assigned to one writable root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidEntry {
    /// The root as it was first registered (canonical form).
    pub root: WinPath,
    pub sid: Sid,
    /// Seconds since the Unix epoch, as given by the caller.
    pub created_at: u64,
}

/// Why a SID registry file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the SID registry is not valid JSON for this version of palisade: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "the SID registry has format version {found}, but this palisade understands only version {supported}{}",
        if *found > *supported { " (it was written by a newer palisade: use that one)" } else { "" }
    )]
    Version { found: u32, supported: u32 },
    #[error("the SID registry is inconsistent: {0}")]
    Inconsistent(String),
}

/// The current format version of [`SidRegistry`]'s JSON.
pub const SID_REGISTRY_VERSION: u32 = 1;

/// Which write SID belongs to which writable root, kept between runs (serde JSON) so that a
/// root's ACEs, which stay on disk, keep naming the SID its future tokens carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidRegistry {
    pub version: u32,
    /// The sandbox SID of this installation, once assigned.
    pub sandbox: Option<Sid>,
    /// Keyed by the root's comparison key ([`WinPath::key`]), so letter case never creates a
    /// second SID for the same root.
    pub roots: BTreeMap<String, SidEntry>,
}

impl Default for SidRegistry {
    fn default() -> Self {
        SidRegistry { version: SID_REGISTRY_VERSION, sandbox: None, roots: BTreeMap::new() }
    }
}

impl SidRegistry {
    pub fn new() -> SidRegistry {
        SidRegistry::default()
    }

    /// The entry for a root, if one was assigned.
    pub fn get(&self, root: &WinPath) -> Option<&SidEntry> {
        self.roots.get(root.key())
    }

    /// The root's write SID: the registered one, or a new one made from `random()` (called again
    /// in the practically impossible case that it repeats a SID already in use).
    pub fn assign(&mut self, root: &WinPath, now: u64, mut random: impl FnMut() -> [u8; 16]) -> Sid {
        if let Some(e) = self.roots.get(root.key()) {
            return e.sid.clone();
        }
        let sid = loop {
            let candidate = Sid::synthetic(SyntheticKind::WriteRoot, random());
            if !self.roots.values().any(|e| e.sid == candidate) {
                break candidate;
            }
        };
        let entry = SidEntry { root: root.without_stream(), sid: sid.clone(), created_at: now };
        self.roots.insert(root.key().to_string(), entry);
        sid
    }

    /// The installation's sandbox SID, made from `random()` the first time.
    pub fn sandbox_sid(&mut self, random: impl FnOnce() -> [u8; 16]) -> Sid {
        self.sandbox.get_or_insert_with(|| Sid::synthetic(SyntheticKind::Sandbox, random())).clone()
    }

    /// Drops a root's entry (after its ACEs have been removed).
    pub fn forget(&mut self, root: &WinPath) -> Option<SidEntry> {
        self.roots.remove(root.key())
    }

    /// The root a write SID belongs to.
    pub fn root_of(&self, sid: &Sid) -> Option<&WinPath> {
        self.roots.values().find(|e| &e.sid == sid).map(|e| &e.root)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a SID registry always serializes")
    }

    /// Reads a registry, refusing other format versions and inconsistent contents.
    pub fn from_json(text: &str) -> Result<SidRegistry, RegistryError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly = serde_json::from_str(text)?;
        if v.version != SID_REGISTRY_VERSION {
            return Err(RegistryError::Version { found: v.version, supported: SID_REGISTRY_VERSION });
        }
        let reg: SidRegistry = serde_json::from_str(text)?;
        let mut seen = BTreeMap::new();
        for (key, e) in &reg.roots {
            if key != e.root.key() {
                return Err(RegistryError::Inconsistent(format!("entry `{key}` is for {}", e.root)));
            }
            if e.sid.synthetic_kind() != Some(SyntheticKind::WriteRoot) {
                return Err(RegistryError::Inconsistent(format!("{} is not a palisade write SID", e.sid)));
            }
            if let Some(other) = seen.insert(e.sid.clone(), &e.root) {
                return Err(RegistryError::Inconsistent(format!("{other} and {} share {}", e.root, e.sid)));
            }
        }
        if let Some(s) = &reg.sandbox {
            if s.synthetic_kind() != Some(SyntheticKind::Sandbox) {
                return Err(RegistryError::Inconsistent(format!("{s} is not a palisade sandbox SID")));
            }
        }
        Ok(reg)
    }
}

#[cfg(test)]
mod tests;
