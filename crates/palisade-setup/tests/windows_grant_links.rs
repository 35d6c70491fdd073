//! The elevated setup's read grant (`palisade_win32::acl::grant_ace`) lands on exactly the
//! object it checked, never on what a junction points to.
//!
//! Each test builds folders in the temporary folder, plants a junction (`mklink /J`) or a hard
//! link where setup's listing had a plain folder or file, asks for the grant, and then reads
//! the DACL of the place the link points to: it must hold no entry for the test SID. The SID
//! belongs to no account; no elevation is needed (the folders are the caller's own), so these
//! tests run in every `cargo test` on Windows.
//!
//! On real Windows nothing is skipped: a junction that cannot be made fails the test. Under
//! Wine, which stores no DACL as given (see /work/shared/notes/cross-targets.md), the DACL
//! read-backs are not made (`NOT EXERCISED`), and a junction Wine cannot make is `NOT RUN`.
#![cfg(windows)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use palisade_win32::acl::{self, GrantRefusal, Granted};
use palisade_win32::object::{describe, open_unfollowed};
use palisade_windows_elevated::ace::{AceSpec, Inheritance, RawAce, Rights, Trustee};
use palisade_windows_elevated::sid::Sid;
use palisade_windows_elevated::winpath::WinPath;
use windows_sys::Win32::Storage::FileSystem::FILE_READ_ATTRIBUTES;

/// Matches no account: an entry for it grants nobody anything.
const TEST_SID: &str = "S-1-5-21-4000000001-4000000002-4000000003-4343";
const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;
const INHERITED_ACE: u8 = 0x10;

fn under_wine() -> Option<String> {
    support::wine_version()
}

fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A folder of the test's own under the temporary folder, by its long name (GitHub's runners
/// name the temporary folder with an 8.3 short name, `C:\Users\RUNNER~1\...`, which setup would
/// rightly refuse to compare), removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let tmp = std::fs::canonicalize(std::env::temp_dir()).expect("the temporary folder");
        let tmp = tmp.to_string_lossy().trim_start_matches(r"\\?\").to_string();
        let dir = PathBuf::from(tmp).join(format!("palisade-grant-links-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Rust's remove_dir_all removes a junction without entering it.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn win(p: &Path) -> WinPath {
    WinPath::parse_exact(&p.to_string_lossy()).unwrap()
}

fn read_grant() -> AceSpec {
    AceSpec::allow(Trustee::Sid(Sid::parse(TEST_SID).unwrap()), Rights::ReadExecute, Inheritance::ContainerAndObject)
}

/// A folder only its owner (this user), SYSTEM and Administrators may use: what the sandbox
/// must not read (another user's profile).
fn private_folder(path: &Path) {
    let me = palisade_win32::token::open_own().unwrap().user.to_string_form();
    acl::create_directory(path, &format!("O:{me}D:P(A;OICI;FA;;;{me})(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"))
        .expect("create a private folder");
    std::fs::write(path.join("secret.txt"), b"not for the sandbox").unwrap();
}

/// The entries of `path`'s DACL (read by name) that name the test SID.
fn test_sid_entries(path: &Path) -> Vec<RawAce> {
    let sec = acl::file_security(path).expect("read the DACL").expect("the path exists");
    sec.aces.into_iter().filter(|a| a.sid == TEST_SID).collect()
}

/// `mklink /J link target`, checked on disk; returns the reparse tag made. On Windows a junction
/// that cannot be made fails the test. Wine 8 makes no junction; there a directory symbolic
/// link (`CreateSymbolicLinkW`, also a reparse point) stands in if Wine can make one, and
/// otherwise the test is `NOT RUN`.
fn junction(link: &Path, target: &Path) -> Option<u32> {
    let out = Command::new("cmd").arg("/C").arg("mklink").arg("/J").arg(link).arg(target).output();
    let made = match &out {
        Ok(o) if o.status.success() => reparse_tag(link).and_then(|tag| {
            if tag == IO_REPARSE_TAG_MOUNT_POINT {
                Ok(tag)
            } else {
                Err(format!("mklink /J made no junction (tag {tag:#x})"))
            }
        }),
        Ok(o) => Err(format!("mklink /J: {:?} {}", o.status, String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("cmd /C mklink /J: {e}")),
    };
    match (made, under_wine()) {
        (Ok(tag), _) => Some(tag),
        (Err(e), Some(v)) => {
            let _ = std::fs::remove_dir(link);
            let symlink = std::os::windows::fs::symlink_dir(target, link)
                .map_err(|e| e.to_string())
                .and_then(|()| reparse_tag(link));
            match symlink {
                Ok(tag) if tag != 0 => {
                    note(&format!(
                        "Wine {v} makes no junction ({e}): a directory symbolic link (tag {tag:#x}) stands in"
                    ));
                    Some(tag)
                }
                other => {
                    note(&format!(
                        "NOT RUN: Wine {v} makes neither a junction ({e}) nor a directory symbolic link ({other:?})"
                    ));
                    None
                }
            }
        }
        (Err(e), None) => panic!("cannot make a junction {} -> {}: {e}", link.display(), target.display()),
    }
}

/// The reparse tag of the object at `path` itself (0: not a reparse point).
fn reparse_tag(path: &Path) -> Result<u32, String> {
    let h = open_unfollowed(path, FILE_READ_ATTRIBUTES).map_err(|e| e.to_string())?;
    describe(&h).map(|d| d.reparse_tag).map_err(|e| e.to_string())
}

/// Whether DACLs can be read back (not under Wine); prints why not.
fn dacls_readable(what: &str) -> bool {
    match under_wine() {
        Some(v) => {
            note(&format!("NOT EXERCISED under Wine {v} (stores no DACL as given): {what}"));
            false
        }
        None => true,
    }
}

#[test]
fn a_plain_folder_and_what_is_in_it_get_the_grant() {
    let s = Scratch::new("plain");
    let dir = s.0.join("plain");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("f.txt"), b"x").unwrap();
    let got = acl::grant_ace(&win(&dir), &read_grant(), TEST_SID).expect("grant by handle");
    assert_eq!(got, Granted::Done);
    if dacls_readable("the explicit entry and its propagation to existing children") {
        let own = test_sid_entries(&dir);
        assert!(
            own.iter().any(|a| a.explicit_spec() == Some(read_grant())),
            "no explicit entry on the folder: {own:?}"
        );
        // SetSecurityInfo propagates inheritable entries to existing children, as the by-name
        // call it replaced did.
        for child in [dir.join("f.txt"), dir.join("sub")] {
            let e = test_sid_entries(&child);
            assert!(e.iter().any(|a| a.flags & INHERITED_ACE != 0), "{} inherited nothing: {e:?}", child.display());
        }
    }
}

#[test]
fn a_listed_folder_swapped_for_a_junction_is_refused_and_the_target_keeps_its_dacl() {
    let s = Scratch::new("swapped");
    let secret = s.0.join("other-profile");
    private_folder(&secret);
    let listed = s.0.join("listed");
    // The CLI listed a plain folder; by the time setup runs, it is a junction.
    std::fs::create_dir(&listed).unwrap();
    std::fs::remove_dir(&listed).unwrap();
    let Some(made) = junction(&listed, &secret) else { return };
    let got = acl::grant_ace(&win(&listed), &read_grant(), TEST_SID).expect("open by handle");
    match &got {
        Granted::Refused(GrantRefusal::ReparsePoint { tag, .. }) => assert_eq!(*tag, made),
        other => panic!("a junction was not refused: {other:?}"),
    }
    if dacls_readable("the junction's target has no entry for the test SID") {
        assert_eq!(test_sid_entries(&secret), vec![], "the grant landed on the junction's target");
        assert_eq!(test_sid_entries(&secret.join("secret.txt")), vec![], "the grant reached into the target");
    }
}

#[test]
fn a_folder_above_swapped_for_a_junction_is_refused() {
    let s = Scratch::new("above");
    let other = s.0.join("other-profile");
    private_folder(&other);
    std::fs::create_dir(other.join("src")).unwrap();
    // Setup was asked for `work\src`; `work` now leads to the other profile, which has a `src`.
    let work = s.0.join("work");
    let Some(_) = junction(&work, &other) else { return };
    let got = acl::grant_ace(&win(&work.join("src")), &read_grant(), TEST_SID).expect("open by handle");
    match &got {
        Granted::Refused(GrantRefusal::Elsewhere { actual, .. }) => {
            assert_eq!(WinPath::parse_exact(actual).unwrap(), win(&other.join("src")), "{got:?}")
        }
        other => panic!("a path through a junction was not refused: {other:?}"),
    }
    if dacls_readable("the folder behind the junction has no entry for the test SID") {
        assert_eq!(test_sid_entries(&other.join("src")), vec![], "the grant landed behind the junction");
    }
}

#[test]
fn a_junction_inside_a_granted_folder_is_not_followed_when_the_entry_propagates() {
    let s = Scratch::new("inside");
    let secret = s.0.join("other-profile");
    private_folder(&secret);
    let granted = s.0.join("granted");
    std::fs::create_dir(&granted).unwrap();
    let Some(_) = junction(&granted.join("inner"), &secret) else { return };
    let got = acl::grant_ace(&win(&granted), &read_grant(), TEST_SID).expect("grant by handle");
    assert_eq!(got, Granted::Done);
    if dacls_readable("propagation stops at the junction inside the granted folder") {
        assert!(!test_sid_entries(&granted).is_empty(), "the folder itself got no entry");
        assert_eq!(test_sid_entries(&secret), vec![], "propagation followed the junction");
        assert_eq!(test_sid_entries(&secret.join("secret.txt")), vec![], "propagation followed the junction");
    }
}

#[test]
fn a_file_with_two_names_is_refused() {
    let s = Scratch::new("hardlink");
    let first = s.0.join("notes.txt");
    std::fs::write(&first, b"x").unwrap();
    std::fs::hard_link(&first, s.0.join("elsewhere.txt")).expect("CreateHardLinkW");
    let file_grant =
        AceSpec::allow(Trustee::Sid(Sid::parse(TEST_SID).unwrap()), Rights::ReadExecute, Inheritance::None);
    let got = acl::grant_ace(&win(&first), &file_grant, TEST_SID).expect("open by handle");
    assert!(matches!(got, Granted::Refused(GrantRefusal::SeveralNames { links: 2, .. })), "{got:?}");
    if dacls_readable("the file with two names has no entry for the test SID") {
        assert_eq!(test_sid_entries(&first), vec![]);
    }
}
