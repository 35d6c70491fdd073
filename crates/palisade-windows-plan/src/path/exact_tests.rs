//! The elevated setup's tests of the exact form (`parse_exact`, `join`), which it plans with.

use super::*;

fn p(s: &str) -> WinPath {
    WinPath::parse_exact(s).unwrap()
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
        assert!(WinPath::parse_exact(s).is_err(), "{s:?} accepted");
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
    assert_eq!(p("C:\\a\\B\\c").relative_to(&p("C:\\A")), Some(&["B".to_string(), "c".to_string()][..]));
}

#[test]
fn parents_and_joins() {
    assert_eq!(p("C:\\a\\b").parent(), Some(p("C:\\a")));
    assert_eq!(p("C:\\a").parent(), Some(p("C:\\")));
    assert_eq!(p("C:\\").parent(), None);
    // `ancestors` starts with the path itself.
    assert_eq!(p("C:\\a\\b").ancestors()[1..], [p("C:\\a"), p("C:\\")]);
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
