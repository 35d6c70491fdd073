//! Unit tests of the path module (kept in their own file so every file stays short).

use super::*;
use std::collections::BTreeMap;

fn p(s: &str) -> WinPath {
    WinPath::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn drive_paths_normalize() {
    assert_eq!(p(r"c:\Users\alice").to_string(), r"C:\Users\alice");
    assert_eq!(p("C:/Users/alice/").to_string(), r"C:\Users\alice");
    assert_eq!(p(r"C:\a\\b\.\c\..\d").to_string(), r"C:\a\b\d");
    assert_eq!(p(r"C:\..\..\x").to_string(), r"C:\x");
    assert_eq!(p(r"C:\").to_string(), r"C:\");
    assert!(p(r"C:\").is_root());
    assert_eq!(p(r"C:\w\config. . ").to_string(), r"C:\w\config");
    assert_eq!(p(r"C:\w\x\.. \y").to_string(), r"C:\w\y");
    assert_eq!(p(r"C:\w\...\y").to_string(), r"C:\w\y");
}

#[test]
fn verbatim_device_and_nt_prefixes() {
    assert_eq!(p(r"\\?\C:\w\x"), p(r"C:\w\x"));
    assert_eq!(p(r"\??\c:\w\x"), p(r"C:\w\x"));
    assert_eq!(p(r"\\.\C:\w"), p(r"C:\w"));
    assert_eq!(p(r"\\?\C:"), p(r"C:\"));
    assert_eq!(p(r"\\?\UNC\srv\Share\dir").to_string(), r"\\srv\Share\dir");
    assert_eq!(p(r"\\?\UNC\srv\share\dir"), p(r"\\SRV\SHARE\DIR"));
    let v = p(r"\\?\Volume{1b2c3d4e-0000-0000-0000-100000000000}\data");
    assert!(matches!(v.prefix(), Prefix::Volume(_)));
    assert_eq!(v.to_string(), r"\\?\Volume{1b2c3d4e-0000-0000-0000-100000000000}\data");
    assert_eq!(p(r"\\?\volume{1B2C3D4E-0000-0000-0000-100000000000}\DATA"), v);
}

#[test]
fn unc_paths() {
    let u = p(r"\\server\share\a\b");
    assert_eq!(u.components(), ["a", "b"]);
    assert!(p(r"\\server\share").is_root());
    assert_eq!(p(r"\\server\share").to_string(), r"\\server\share");
    assert_eq!(p(r"\\server\share\..\..\x"), p(r"\\server\share\x"));
    assert_eq!(p(r"\\localhost\c$\Windows"), p(r"C:\Windows"));
    assert_eq!(p(r"\\127.0.0.1\D$"), p(r"D:\"));
    assert_ne!(p(r"\\fileserver\c$\Windows"), p(r"C:\Windows"));
}

#[test]
fn errors() {
    assert!(matches!(WinPath::parse(""), Err(PathError::Empty(_))));
    assert!(matches!(WinPath::parse(r"foo\bar"), Err(PathError::Relative(_))));
    assert!(matches!(WinPath::parse(r"C:foo"), Err(PathError::DriveRelative(_, 'C'))));
    assert!(matches!(WinPath::parse("C:"), Err(PathError::DriveRelative(_, 'C'))));
    assert!(matches!(WinPath::parse(r"\foo"), Err(PathError::RootRelative(_))));
    assert!(matches!(WinPath::parse(r"\\server"), Err(PathError::IncompleteUnc(_))));
    assert!(matches!(WinPath::parse(r"\\server\"), Err(PathError::IncompleteUnc(_))));
    assert!(matches!(WinPath::parse(r"\\.\pipe\x"), Err(PathError::Device(_))));
    assert!(matches!(WinPath::parse(r"\\.\PhysicalDrive0"), Err(PathError::Device(_))));
    assert!(matches!(WinPath::parse(r"\\?\GLOBALROOT\Device\X"), Err(PathError::Device(_))));
    assert!(matches!(WinPath::parse(r"C:\a\b*"), Err(PathError::InvalidChar { ch: '*', .. })));
    assert!(matches!(WinPath::parse("C:\\a\\b\u{1}"), Err(PathError::InvalidChar { .. })));
    assert!(matches!(WinPath::parse(r"C:\a\:stream"), Err(PathError::InvalidComponent { .. })));
    let msg = WinPath::parse("C:foo").unwrap_err().to_string();
    assert!(msg.contains(r"C:\..."), "{msg}");
}

#[test]
fn streams_are_the_file() {
    let a = p(r"C:\w\.git\config:evil:$DATA");
    assert_eq!(a, p(r"C:\w\.git\config"));
    assert_eq!(a.stream(), Some("evil:$DATA"));
    assert_eq!(a.to_string(), r"C:\w\.git\config:evil:$DATA");
    assert_eq!(a.without_stream().to_string(), r"C:\w\.git\config");
    assert_eq!(p(r"C:\w\file::$DATA").stream(), None);
    // A directory opened through its index stream is the directory.
    let d = p(r"C:\w\.git::$INDEX_ALLOCATION\hooks");
    assert_eq!(d, p(r"C:\w\.git\hooks"));
    assert!(d.is_beneath(&p(r"C:\w\.git")));
}

#[test]
fn case_insensitive_comparison() {
    assert_eq!(p(r"C:\Users\ALICE\Work"), p(r"c:\users\alice\work"));
    assert_eq!(p(r"C:\Ünïcödé"), p(r"c:\üNÏCÖDÉ"));
    // No multi-character case expansion: ß is not SS.
    assert_ne!(p(r"C:\straße"), p(r"C:\STRASSE"));
    let mut m = BTreeMap::new();
    m.insert(p(r"C:\A"), 1);
    assert_eq!(m.get(&p(r"c:\a")), Some(&1));
}

#[test]
fn beneath() {
    let root = p(r"C:\Work");
    assert!(is_beneath(&p(r"C:\work"), &root));
    assert!(is_beneath(&p(r"c:\WORK\src\main.rs"), &root));
    assert!(!is_beneath(&p(r"C:\workspace"), &root));
    assert!(!is_beneath(&p(r"D:\Work\x"), &root));
    assert!(!is_beneath(&p(r"C:\"), &root));
    assert!(is_beneath(&root, &p(r"C:\")));
    assert!(is_beneath(&p(r"\\s\h\a"), &p(r"\\S\H")));
    assert!(!is_beneath(&p(r"\\s\h2\a"), &p(r"\\s\h")));
    assert!(is_beneath(&p(r"C:\Work\a\..\..\Work\b"), &root));
    assert!(!is_beneath(&p(r"C:\Work\..\Other"), &root));
    assert_eq!(p(r"C:\Work\a\B").relative_to(&root).unwrap(), ["a", "B"]);
    assert!(p(r"C:\Other").relative_to(&root).is_none());
}

#[test]
fn parent_ancestors_join() {
    let x = p(r"C:\a\b\c");
    assert_eq!(x.parent().unwrap(), p(r"C:\a\b"));
    assert_eq!(p(r"C:\").parent(), None);
    assert_eq!(
        x.ancestors().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        [r"C:\a\b\c", r"C:\a\b", r"C:\a", r"C:\"]
    );
    assert_eq!(p(r"C:\w").join(".git/hooks").unwrap(), p(r"C:\w\.git\hooks"));
    assert_eq!(p(r"C:\w").join(r"a\..\b").unwrap(), p(r"C:\w\b"));
    assert!(p(r"C:\w").join(r"..\x").is_err());
    assert!(p(r"C:\w").join(r"D:\x").is_err());
    assert!(p(r"C:\w").join(r"\x").is_err());
    // Names Windows would change or drop are refused, not normalized.
    for bad in ["", ".", r"a\.\b", "a/", "x.", "x ", "x:s", "a*"] {
        assert!(p(r"C:\w").join(bad).is_err(), "{bad:?}");
    }
    assert_eq!(p(r"C:\w\x").file_name(), Some("x"));
}

#[test]
fn dos_devices_and_short_names() {
    assert!(is_dos_device_name("NUL"));
    assert!(is_dos_device_name("nul.txt"));
    assert!(is_dos_device_name("Com1"));
    assert!(is_dos_device_name("CON "));
    assert!(!is_dos_device_name("console"));
    assert!(!is_dos_device_name("nullable"));
    assert_eq!(p(r"C:\w\aux\x").dos_device_component(), Some("aux"));
    assert!(looks_like_short_name("PROGRA~1"));
    assert!(looks_like_short_name("GIT~1"));
    assert!(looks_like_short_name("SETTIN~2.JSO"));
    assert!(!looks_like_short_name("~1"));
    assert!(!looks_like_short_name("program files"));
    assert!(!looks_like_short_name("LONGERNAME~1"));
    assert!(!looks_like_short_name("A~B"));
    assert!(!looks_like_short_name("FILE~1.JSON"));
    assert_eq!(p(r"C:\PROGRA~1\x").short_name_component(), Some("PROGRA~1"));
}

#[test]
fn serde_round_trip() {
    let x = p(r"\\?\C:\Users\alice\w");
    let json = serde_json::to_string(&x).unwrap();
    assert_eq!(json, r#""C:\\Users\\alice\\w""#);
    let back: WinPath = serde_json::from_str(&json).unwrap();
    assert_eq!(back, x);
    assert!(serde_json::from_str::<WinPath>(r#""relative\\x""#).is_err());
    // Only the normal form is read back: a serialized path means what it says.
    for ok in [r#""\\\\server\\share\\x""#, r#""C:\\""#, r#""C:\\w\\f:s:$DATA""#] {
        assert!(serde_json::from_str::<WinPath>(ok).is_ok(), "{ok}");
    }
    for not_normal in
        [r#""\\\\?\\C:\\x""#, r#""C:\\a\\..\\b""#, r#""C:\\a.\\b""#, r#""C:\\a\\\\b""#, r#""\\\\localhost\\c$\\x""#]
    {
        assert!(serde_json::from_str::<WinPath>(not_normal).is_err(), "{not_normal}");
    }
}

/// A disk where short names, a junction and letter case differ from what callers write.
struct FakeDisk(BTreeMap<String, WinPath>);

impl FakeDisk {
    fn new(entries: &[(&str, &str)]) -> FakeDisk {
        FakeDisk(entries.iter().map(|(alias, real)| (p(alias).key().to_string(), p(real))).collect())
    }
}

impl LongPathResolver for FakeDisk {
    fn resolve_existing(&self, path: &WinPath) -> Result<Option<WinPath>, ResolveError> {
        Ok(self.0.get(path.key()).cloned())
    }
}

#[test]
fn canonicalize_expands_short_names_and_keeps_the_missing_rest() {
    let disk = FakeDisk::new(&[
        (r"C:\", r"C:\"),
        (r"C:\PROGRA~1", r"C:\Program Files"),
        (r"C:\Users", r"C:\Users"),
        (r"C:\Users\ALICE~1", r"C:\Users\alice.smith"),
        (r"C:\Users\ALICE~1\Work", r"C:\Users\alice.smith\Work"),
        (r"C:\Users\ALICE~1\Work\GIT~1", r"C:\Users\alice.smith\Work\.git"),
        (r"C:\link", r"D:\target"),
        (r"D:\", r"D:\"),
    ]);
    assert_eq!(canonicalize(&p(r"C:\PROGRA~1"), &disk).unwrap().to_string(), r"C:\Program Files");
    assert_eq!(
        canonicalize(&p(r"c:\users\alice~1\work\git~1\hooks\pre-commit"), &disk).unwrap().to_string(),
        r"C:\Users\alice.smith\Work\.git\hooks\pre-commit"
    );
    assert_eq!(canonicalize(&p(r"C:\link\new\file:s"), &disk).unwrap().to_string(), r"D:\target\new\file");
    assert!(matches!(canonicalize(&p(r"Q:\x"), &disk), Err(ResolveError::NothingExists(_))));
}
