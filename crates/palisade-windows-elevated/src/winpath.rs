//! Strict absolute Windows paths on a drive (`C:\Users\me`), enough for the setup and
//! uninstall plans.
//!
//! The elevated setup only ever deals with paths the operating system reported (known folders,
//! directory listings), so this type is deliberately strict instead of normalizing: it accepts
//! `X:\a\b` (with `/` read as `\`), and refuses relative, UNC, device (`\\?\`, `\\.\`) paths,
//! `.` and `..`, empty components, names that end in a dot or a space (Windows would strip them,
//! so the name on disk would differ from the one planned), alternate data streams and characters
//! Windows does not allow in names. Comparison ignores letter case (each character mapped to its
//! single-character uppercase form, like NTFS's upcase table).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Case folding as NTFS compares names: the same function the unelevated plan compares paths with.
pub use palisade_windows_plan::path::fold;

/// Why a string is not a path this module accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WinPathError {
    #[error("`{0}` is not an absolute path on a drive (expected `X:\\...`)")]
    NotDriveAbsolute(String),
    #[error("`{path}`: `{component}` is not an acceptable file name ({why})")]
    BadComponent { path: String, component: String, why: &'static str },
}

/// An absolute path on a drive, stored as `X:\a\b` (drive letter uppercase, no trailing
/// separator except for the drive root `X:\`).
#[derive(Clone)]
pub struct WinPath(String);

impl WinPath {
    pub fn parse(s: &str) -> Result<WinPath, WinPathError> {
        let b = s.as_bytes();
        if b.len() < 3 || !b[0].is_ascii_alphabetic() || b[1] != b':' || !matches!(b[2], b'\\' | b'/') {
            return Err(WinPathError::NotDriveAbsolute(s.to_string()));
        }
        let mut out = format!("{}:\\", (b[0] as char).to_ascii_uppercase());
        let rest = &s[3..];
        if rest.is_empty() {
            return Ok(WinPath(out));
        }
        let rest = rest.strip_suffix(['\\', '/']).unwrap_or(rest);
        let mut first = true;
        for comp in rest.split(['\\', '/']) {
            check_component(s, comp)?;
            if !first {
                out.push('\\');
            }
            out.push_str(comp);
            first = false;
        }
        Ok(WinPath(out))
    }

    /// `self\rel`, where `rel` is one or more components separated by `\` or `/`.
    pub fn join(&self, rel: &str) -> Result<WinPath, WinPathError> {
        let mut out = self.0.clone();
        for comp in rel.split(['\\', '/']) {
            check_component(rel, comp)?;
            if !out.ends_with('\\') {
                out.push('\\');
            }
            out.push_str(comp);
        }
        Ok(WinPath(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn drive(&self) -> char {
        self.0.as_bytes()[0] as char
    }

    pub fn is_drive_root(&self) -> bool {
        self.0.len() == 3
    }

    /// The components after the drive root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0[3..].split('\\').filter(|c| !c.is_empty())
    }

    pub fn file_name(&self) -> Option<&str> {
        self.components().last()
    }

    pub fn parent(&self) -> Option<WinPath> {
        if self.is_drive_root() {
            return None;
        }
        let cut = self.0.rfind('\\').expect("a drive path has a separator");
        Some(WinPath(if cut == 2 { self.0[..3].to_string() } else { self.0[..cut].to_string() }))
    }

    /// Every ancestor from the parent up to the drive root.
    pub fn ancestors(&self) -> Vec<WinPath> {
        let mut out = Vec::new();
        let mut p = self.parent();
        while let Some(q) = p {
            p = q.parent();
            out.push(q);
        }
        out
    }

    /// The form used for comparison: every character mapped to its uppercase form.
    pub fn key(&self) -> String {
        fold(&self.0)
    }

    /// `self` is `ancestor` or lies beneath it.
    pub fn is_same_or_beneath(&self, ancestor: &WinPath) -> bool {
        self.relative_to(ancestor).is_some()
    }

    /// `self` lies strictly beneath `ancestor`.
    pub fn is_strictly_beneath(&self, ancestor: &WinPath) -> bool {
        matches!(self.relative_to(ancestor), Some(r) if !r.is_empty())
    }

    /// The components of `self` below `base` (empty when equal), or `None` when `self` is not
    /// at or beneath `base`.
    pub fn relative_to(&self, base: &WinPath) -> Option<Vec<String>> {
        let mine: Vec<&str> = self.components().collect();
        let theirs: Vec<&str> = base.components().collect();
        if self.drive() != base.drive() || theirs.len() > mine.len() {
            return None;
        }
        if mine.iter().zip(&theirs).all(|(a, b)| fold(a) == fold(b)) {
            Some(mine[theirs.len()..].iter().map(|s| s.to_string()).collect())
        } else {
            None
        }
    }
}

fn check_component(path: &str, comp: &str) -> Result<(), WinPathError> {
    let bad = |why| WinPathError::BadComponent { path: path.to_string(), component: comp.to_string(), why };
    if comp.is_empty() {
        return Err(bad("empty"));
    }
    if comp == "." || comp == ".." {
        return Err(bad("relative component"));
    }
    if comp.ends_with('.') || comp.ends_with(' ') {
        return Err(bad("ends with a dot or a space, which Windows strips"));
    }
    if let Some(c) = comp.chars().find(|c| (*c as u32) < 0x20 || "<>:\"|?*".contains(*c)) {
        return Err(if c == ':' { bad("a stream or drive separator") } else { bad("a character Windows does not allow") });
    }
    if comp.chars().count() > 255 {
        return Err(bad("longer than 255 characters"));
    }
    Ok(())
}

impl PartialEq for WinPath {
    fn eq(&self, other: &WinPath) -> bool {
        self.key() == other.key()
    }
}
impl Eq for WinPath {}

impl Hash for WinPath {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h)
    }
}

impl PartialOrd for WinPath {
    fn partial_cmp(&self, other: &WinPath) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WinPath {
    fn cmp(&self, other: &WinPath) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for WinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for WinPath {
    type Err = WinPathError;
    fn from_str(s: &str) -> Result<WinPath, WinPathError> {
        WinPath::parse(s)
    }
}

impl Serialize for WinPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WinPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WinPath, D::Error> {
        let s = String::deserialize(d)?;
        WinPath::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> WinPath {
        WinPath::parse(s).unwrap()
    }

    #[test]
    fn parses_and_normalizes_separators() {
        assert_eq!(p("c:/Users/me/").as_str(), "C:\\Users\\me");
        assert_eq!(p("C:\\").as_str(), "C:\\");
        assert_eq!(p("d:/").as_str(), "D:\\");
        assert!(p("C:\\").is_drive_root());
        assert_eq!(p("C:\\Users\\me").file_name(), Some("me"));
    }

    #[test]
    fn refuses_ambiguous_paths() {
        for s in [
            "",
            "C:",
            "C:x",
            "Users\\me",
            "\\Users",
            "\\\\server\\share\\x",
            "\\\\?\\C:\\x",
            "\\\\.\\pipe\\x",
            "C:\\a\\\\b",
            "C:\\a\\.\\b",
            "C:\\a\\..\\b",
            "C:\\a.\\b",
            "C:\\a \\b",
            "C:\\a\\b:stream",
            "C:\\a\\b*",
            "C:\\a\\b\u{1}",
            "1:\\a",
        ] {
            assert!(WinPath::parse(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn compares_ignoring_case() {
        assert_eq!(p("C:\\Users\\Me"), p("c:\\USERS\\me"));
        assert_eq!(p("C:\\Ärger"), p("C:\\ärger"));
        assert!(p("C:\\Users\\me\\.SSH\\id").is_strictly_beneath(&p("c:\\users\\ME\\.ssh")));
        assert!(p("C:\\Users\\me").is_same_or_beneath(&p("C:\\Users\\me")));
        assert!(!p("C:\\Users\\me").is_strictly_beneath(&p("C:\\Users\\me")));
        assert!(!p("C:\\Users\\meter").is_same_or_beneath(&p("C:\\Users\\me")));
        assert!(!p("D:\\Users\\me").is_same_or_beneath(&p("C:\\Users")));
        assert!(p("C:\\x").is_strictly_beneath(&p("C:\\")));
        assert_eq!(p("C:\\a\\B\\c").relative_to(&p("C:\\A")), Some(vec!["B".to_string(), "c".to_string()]));
    }

    #[test]
    fn parents_and_joins() {
        assert_eq!(p("C:\\a\\b").parent(), Some(p("C:\\a")));
        assert_eq!(p("C:\\a").parent(), Some(p("C:\\")));
        assert_eq!(p("C:\\").parent(), None);
        assert_eq!(p("C:\\a\\b").ancestors(), vec![p("C:\\a"), p("C:\\")]);
        assert_eq!(p("C:\\").join("a/b").unwrap().as_str(), "C:\\a\\b");
        assert_eq!(p("C:\\a").join(".config\\gh").unwrap().as_str(), "C:\\a\\.config\\gh");
        assert!(p("C:\\a").join("..").is_err());
        assert!(p("C:\\a").join("").is_err());
        assert!(p("C:\\a").join("x:y").is_err());
    }

    #[test]
    fn serde_round_trip_validates() {
        let v: WinPath = serde_json::from_str("\"c:/x\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"C:\\\\x\"");
        assert!(serde_json::from_str::<WinPath>("\"x\"").is_err());
    }
}
