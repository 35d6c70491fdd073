//! Security identifiers in their string form (`S-1-5-21-...`), validated so that a SID can be
//! placed into an SDDL string or a firewall rule without being able to change its meaning.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a SID in canonical string form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SidError {
    #[error("`{0}` is not a SID: it must start with `S-1-`")]
    Prefix(String),
    #[error("`{0}` is not a SID: the identifier authority is not a number below 2^48")]
    Authority(String),
    #[error("`{0}` is not a SID: it needs 1 to 15 sub-authorities, each a decimal number below 2^32")]
    SubAuthority(String),
}

/// A security identifier such as `S-1-5-21-1004336348-1177238915-682003330-1001`.
///
/// Only the canonical string form is accepted: `S-1-`, a decimal identifier authority, then 1 to
/// 15 decimal sub-authorities, digits only, no leading zeros, no spaces. SDDL aliases (`BA`,
/// `WD`) and the hexadecimal authority form are refused, so a `Sid` contains nothing but
/// `S`, `-` and digits and is safe to splice into SDDL, and each SID has exactly one accepted
/// spelling (the one Windows' `ConvertSidToStringSid` produces).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(String);

impl Sid {
    pub fn parse(s: &str) -> Result<Sid, SidError> {
        let rest = s.strip_prefix("S-1-").ok_or_else(|| SidError::Prefix(s.to_string()))?;
        let mut parts = rest.split('-');
        let authority = parts.next().unwrap_or("");
        match decimal(authority) {
            Some(a) if a < (1u64 << 48) => {}
            _ => return Err(SidError::Authority(s.to_string())),
        }
        let mut count = 0;
        for p in parts {
            match decimal(p) {
                Some(v) if v <= u64::from(u32::MAX) => count += 1,
                _ => return Err(SidError::SubAuthority(s.to_string())),
            }
        }
        if !(1..=15).contains(&count) {
            return Err(SidError::SubAuthority(s.to_string()));
        }
        Ok(Sid(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The sub-authorities after the identifier authority.
    pub fn sub_authorities(&self) -> Vec<u32> {
        self.0.split('-').skip(3).filter_map(|p| p.parse().ok()).collect()
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
        Sid("S-1-5-18".into())
    }
    pub fn administrators() -> Sid {
        Sid("S-1-5-32-544".into())
    }
    pub fn users() -> Sid {
        Sid("S-1-5-32-545".into())
    }
    pub fn everyone() -> Sid {
        Sid("S-1-1-0".into())
    }
    pub fn authenticated_users() -> Sid {
        Sid("S-1-5-11".into())
    }
    pub fn trusted_installer() -> Sid {
        Sid("S-1-5-80-956008885-3425420160-3186216591-2000232021-1434102497".into())
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
}

fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
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
    fn from_str(s: &str) -> Result<Sid, SidError> {
        Sid::parse(s)
    }
}

impl Serialize for Sid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sid, D::Error> {
        let s = String::deserialize(d)?;
        Sid::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_canonical_sids() {
        for s in [
            "S-1-5-18",
            "S-1-1-0",
            "S-1-5-32-544",
            "S-1-5-21-1004336348-1177238915-682003330-1001",
            "S-1-5-80-956008885-3425420160-3186216591-2000232021-1434102497",
            "S-1-281474976710655-4294967295",
        ] {
            assert_eq!(Sid::parse(s).unwrap().as_str(), s);
        }
        assert!(Sid::parse("s-1-5-18").is_err());
        assert_eq!(Sid::trusted_installer(), Sid::parse(Sid::trusted_installer().as_str()).unwrap());
    }

    #[test]
    fn refuses_anything_that_could_change_sddl() {
        for s in [
            "",
            "BA",
            "WD",
            "S-1",
            "S-1-5",
            "S-2-5-18",
            "S-1-5-",
            "S-1-5--18",
            "S-1-5-18 ",
            " S-1-5-18",
            "S-1-5-18)(A;;GA;;;WD",
            "S-1-5-018",
            "S-1-0x5-18",
            "S-1-5-4294967296",
            "S-1-281474976710656-1",
            "S-1-5-+18",
            "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
            "S-1-5-18\n",
        ] {
            assert!(Sid::parse(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn parts_and_classes() {
        let s = Sid::parse("S-1-5-21-1-2-3-1001").unwrap();
        assert_eq!(s.sub_authorities(), vec![21, 1, 2, 3, 1001]);
        assert_eq!(s.rid(), 1001);
        assert!(s.is_account_domain());
        assert!(!Sid::system().is_account_domain());
        assert!(Sid::administrators().is_privileged_group());
        assert!(!Sid::users().is_privileged_group());
    }

    #[test]
    fn serde_validates() {
        let s: Sid = serde_json::from_str("\"S-1-5-18\"").unwrap();
        assert_eq!(s, Sid::system());
        assert!(serde_json::from_str::<Sid>("\"S-1-5-18)\"").is_err());
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"S-1-5-18\"");
    }
}
