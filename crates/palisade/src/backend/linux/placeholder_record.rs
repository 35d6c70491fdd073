//! The record of one writable root's placeholders, as kept in Palisade's runtime folder.
//!
//! One line per event, appended, every path hex-encoded so that no name (a newline, any byte
//! that is not UTF-8) can split a line or forge another:
//!
//! ```text
//! palisade-placeholders 1                 the version line, first
//! root <hex path>                         the writable root, as it was opened
//! intent <hex rel path> <hex temp name>   written before anything is made on the host
//! made <hex rel path> <dev> <ino>         the identity of what was made, before it is moved into place
//! mntns <ino>                             a --keep-processes sandbox's mount namespace
//! ```
//!
//! Paths are relative to the root and must be plain (no `.`, `..` or empty components); a
//! temporary name is one component in the placeholder's own folder. A record whose first line is
//! not this version is ignored whole; a line that does not parse (a torn last line of a killed
//! run) is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub const VERSION_LINE: &str = "palisade-placeholders 1";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Record {
    pub root: Option<PathBuf>,
    /// Placeholders about to be made: the path and the temporary name they are made under.
    pub intents: Vec<(PathBuf, OsString)>,
    /// What was made at each path (device, inode); the last line for a path counts.
    pub made: BTreeMap<PathBuf, (u64, u64)>,
    /// Mount namespaces of `--keep-processes` sandboxes that rely on the placeholders.
    pub namespaces: BTreeSet<u64>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() & 1 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// A relative path of plain components only.
pub fn is_plain_relative(p: &Path) -> bool {
    let b = p.as_os_str().as_bytes();
    !b.is_empty() && b.split(|&c| c == b'/').all(|c| !c.is_empty() && c != b"." && c != b".." && !c.contains(&0))
}

fn plain_name(n: &OsStr) -> bool {
    let b = n.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

pub fn header(root: &Path) -> String {
    format!("{VERSION_LINE}\nroot {}\n", hex(root.as_os_str().as_bytes()))
}

pub fn intent_line(rel: &Path, temp: &OsStr) -> String {
    format!("intent {} {}\n", hex(rel.as_os_str().as_bytes()), hex(temp.as_bytes()))
}

pub fn made_line(rel: &Path, dev: u64, ino: u64) -> String {
    format!("made {} {dev} {ino}\n", hex(rel.as_os_str().as_bytes()))
}

pub fn namespace_line(ino: u64) -> String {
    format!("mntns {ino}\n")
}

/// Parses a record; `None` if it is not a record of this version.
pub fn parse(bytes: &[u8]) -> Option<Record> {
    let mut lines = bytes.split(|&b| b == b'\n');
    if lines.next()? != VERSION_LINE.as_bytes() {
        return None;
    }
    let mut r = Record::default();
    for line in lines {
        let Ok(line) = std::str::from_utf8(line) else { continue };
        let f: Vec<&str> = line.split(' ').collect();
        let path = |s: &str| unhex(s).map(|b| PathBuf::from(OsString::from_vec(b)));
        match f.as_slice() {
            ["root", p] => {
                if let Some(p) = path(p).filter(|p| p.is_absolute()) {
                    // The first root line counts; a record names one root.
                    r.root.get_or_insert(p);
                }
            }
            ["intent", p, t] => {
                if let (Some(p), Some(t)) = (path(p), unhex(t).map(OsString::from_vec)) {
                    if is_plain_relative(&p) && plain_name(&t) {
                        r.intents.push((p, t));
                    }
                }
            }
            ["made", p, dev, ino] => {
                if let (Some(p), Ok(dev), Ok(ino)) = (path(p), dev.parse(), ino.parse()) {
                    if is_plain_relative(&p) {
                        r.made.insert(p, (dev, ino));
                    }
                }
            }
            ["mntns", ino] => r.namespaces.extend(ino.parse::<u64>().ok()),
            _ => {}
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_path_round_trips_and_cannot_forge_a_line() {
        let nasty = PathBuf::from(OsString::from_vec(b".git/modules/x\nmade 76696374696d 1 2\n\xff/config".to_vec()));
        let mut text = header(Path::new("/w/ws\nroot 2f"));
        text += &intent_line(&nasty, OsStr::new(".palisade-new-1"));
        text += &made_line(&nasty, 7, 9);
        text += &namespace_line(42);
        let r = parse(text.as_bytes()).unwrap();
        assert_eq!(r.root.as_deref(), Some(Path::new("/w/ws\nroot 2f")));
        assert_eq!(r.intents, vec![(nasty.clone(), OsString::from(".palisade-new-1"))]);
        assert_eq!(r.made.into_iter().collect::<Vec<_>>(), vec![(nasty, (7, 9))]);
        assert_eq!(r.namespaces.into_iter().collect::<Vec<_>>(), vec![42]);
    }

    #[test]
    fn anything_else_is_ignored() {
        assert_eq!(parse(b"/w/.vscode\n"), None, "the old format (or garbage) is not a record");
        assert_eq!(parse(b""), None);
        let up = |p: &str| made_line(Path::new(p), 1, 2);
        let text = format!(
            "{}{}{}{}{}made 2e2e 1 2\nmade zz 1 2\nmade 2e 1\nintent 2e 2f\nmntns x\nmade 6869",
            header(Path::new("/w")),
            up("../victim"),
            up("/abs"),
            up("a//b"),
            up("a/./b"),
        );
        let r = parse(text.as_bytes()).unwrap();
        assert!(r.made.is_empty() && r.intents.is_empty() && r.namespaces.is_empty(), "{r:?}");
        // A relative root is not one.
        assert_eq!(parse(format!("{VERSION_LINE}\nroot 77\n").as_bytes()).unwrap().root, None);
    }
}
