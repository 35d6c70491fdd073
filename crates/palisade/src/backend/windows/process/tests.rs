//! Unit tests of the process module (kept in their own file so every file stays short).

use super::*;

fn line(args: &[&str]) -> String {
    let mut v = Vec::new();
    for a in args {
        push_arg(&mut v, OsStr::new(a));
    }
    String::from_utf16(&v).unwrap()
}

#[test]
fn arguments_are_quoted_for_the_c_runtime() {
    assert_eq!(line(&["a", "b c", ""]), r#"a "b c" """#);
    assert_eq!(line(&[r#"say "hi""#]), r#""say \"hi\"""#);
    assert_eq!(line(&[r"C:\dir with space\"]), r#""C:\dir with space\\""#);
    assert_eq!(line(&[r"a\\b"]), r"a\\b");
    assert_eq!(line(&[r#"a\"b"#]), r#""a\\\"b""#);
}

fn full_line(launch: &Launch, args: &[&str]) -> String {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let l = command_line(launch, &args).unwrap();
    String::from_utf16(&l.line[..l.line.len() - 1]).unwrap()
}

#[test]
fn cmd_gets_what_follows_slash_c_as_typed() {
    let cmd = Launch::Image(PathBuf::from(r"C:\Windows\System32\cmd.exe"));
    assert_eq!(
        full_line(&cmd, &["/d", "/c", r#"echo "hi there" > "a b.txt""#]),
        r#"C:\Windows\System32\cmd.exe /d /c echo "hi there" > "a b.txt""#
    );
    assert_eq!(full_line(&cmd, &["/c", "echo a& echo b"]), r#"C:\Windows\System32\cmd.exe /c "echo a& echo b""#);
    assert_eq!(full_line(&cmd, &["/c", "echo", "x"]), r#"C:\Windows\System32\cmd.exe /c echo x"#);
    // Other programs get the C runtime's quoting, /c or not.
    let other = Launch::Image(PathBuf::from(r"C:\t\x.exe"));
    assert_eq!(full_line(&other, &["/c", r#"say "x""#]), r#"C:\t\x.exe /c "say \"x\"""#);
}

#[test]
fn environment_block_is_sorted_and_deduplicated() {
    let env: Vec<(OsString, OsString)> =
        [("b", "2"), ("A", "1"), ("B", "3")].iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect();
    let block = environment_block(&env).unwrap();
    assert_eq!(String::from_utf16(&block).unwrap(), "A=1\0b=2\0\0");
    assert_eq!(environment_block(&[]).unwrap(), vec![0, 0]);
    assert!(environment_block(&[(OsString::from("A=B"), OsString::from("x"))]).is_err());
}

#[test]
fn batch_arguments_that_cmd_would_change_are_refused() {
    let launch = Launch::Batch(PathBuf::from(r"C:\t\x.bat"));
    assert!(command_line(&launch, &[OsString::from("100%")]).is_err());
    assert!(command_line(&launch, &[OsString::from("a\"b")]).is_err());
    let ok = command_line(&launch, &[OsString::from("a&b"), OsString::from("plain")]).unwrap();
    let s = String::from_utf16_lossy(&ok.line);
    assert!(s.ends_with("/s /c \"\"C:\\t\\x.bat\" \"a&b\" plain\"\0"), "{s}");
}
