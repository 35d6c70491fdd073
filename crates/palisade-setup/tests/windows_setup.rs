//! The elevated setup for real, on a disposable elevated Windows runner: setup creates the
//! group, the accounts, the firewall rules and WFP filters, a read grant and the marker; a
//! second run changes nothing; uninstall removes all of it. One listed folder has been swapped
//! for a junction to a private folder outside the profile since the CLI listed it: setup must
//! leave it ungranted (with a note), and the private folder's DACL must not name the group.
//!
//! Run by `.github/workflows/windows.yml` as
//! `PALISADE_TEST_ELEVATED_SETUP=1 cargo test -p palisade-setup --test windows_setup -- --nocapture`.
//! Prints `NOT RUN: <reason>` under Wine and without the opt-in variable (it changes the machine),
//! so it never changes a developer's machine by accident.
#![cfg(windows)]

mod common;

use palisade_win32::sid::lookup_local_account as lookup_account;
use palisade_windows_elevated::facts::{SandboxUser, GROUP_NAME};
use palisade_windows_elevated::request::RequestAction;
use palisade_windows_elevated::setup_channel::Progress;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use palisade_windows_elevated::setup_plan::{EntryKind, ProfileEntry};

use common::{fixture, frame, peer_sid, serve_request, state_json, under_wine};

fn not_run() -> Option<&'static str> {
    if under_wine() {
        return Some("Wine keeps no accounts it creates and enforces no ACL or firewall (see tests/wine_setup.rs)");
    }
    if std::env::var("PALISADE_TEST_ELEVATED_SETUP").as_deref() != Ok("1") {
        return Some("set PALISADE_TEST_ELEVATED_SETUP=1 on a disposable elevated runner: this test creates and removes local accounts, firewall rules and ACEs");
    }
    None
}

#[test]
fn setup_twice_then_uninstall_on_windows() {
    if let Some(why) = not_run() {
        let _ = writeln!(std::io::stderr(), "NOT RUN: {why}");
        return;
    }
    let fence = palisade_win32::fence::system();
    let sid = peer_sid();
    let mut fx = fixture(&sid, RequestAction::Install);
    let swapped = Swapped::plant(&fx.test_dir);
    fx.request.installer.profile_entries.push(swapped.listed_entry());
    let (r, events, err) = serve_request(frame(&fx.request), &fx.setup_dir, fence.as_ref());
    events.iter().for_each(|e| println!("setup: {e:?}"));
    assert_eq!(err, None);
    r.expect("setup completes");
    assert!(matches!(events.last(), Some(Progress::Finished { changed }) if *changed > 0));
    for name in [GROUP_NAME, SandboxUser::Offline.account_name(), SandboxUser::Online.account_name()] {
        assert!(lookup_account(name).unwrap().is_some(), "{name} exists");
    }
    swapped.assert_not_granted(&events, &fx.test_dir);
    let marker = state_json().with_file_name("setup.json");
    assert!(marker.is_file(), "the marker is written last");

    // Nothing left to do: the stored passwords now log on (the CLI would report them so).
    // The CLI lists the junction as a link now, and links are never granted: the listing
    // leaves it out here (a listed folder that is still a junction would be refused again, and
    // its pending step would make setup rewrite the marker).
    let mut again = fixture(&sid, RequestAction::Install);
    again.request.passwords.clear();
    again.request.credentials = SandboxUser::ALL
        .iter()
        .map(|u| palisade_windows_elevated::facts::CredentialFact {
            user: *u,
            path: palisade_windows_elevated::setup_plan::credential_path(&again.request.installer.local_app_data, *u),
            decryptable: true,
            logon_ok: true,
        })
        .collect();
    let (r, events, _) = serve_request(frame(&again.request), &again.setup_dir, fence.as_ref());
    r.expect("setup again");
    assert_eq!(events.last(), Some(&Progress::Finished { changed: 0 }), "a second setup changes nothing");

    let un = fixture(&sid, RequestAction::Uninstall);
    let (r, events, _) = serve_request(frame(&un.request), &un.setup_dir, fence.as_ref());
    events.iter().for_each(|e| println!("uninstall: {e:?}"));
    r.expect("uninstall completes");
    for name in [GROUP_NAME, SandboxUser::Offline.account_name(), SandboxUser::Online.account_name()] {
        assert!(lookup_account(name).unwrap().is_none(), "{name} is gone");
    }
    assert!(!state_json().parent().unwrap().exists(), "Palisade's folder is gone");
    let _ = std::fs::remove_dir_all(&fx.setup_dir);
    let _ = std::fs::remove_dir(&fx.test_dir);
    drop(swapped);
}

/// A folder of the profile that the CLI listed as a plain folder and that is a junction to a
/// private folder outside the profile by the time setup runs.
struct Swapped {
    /// The junction, in the profile.
    link: PathBuf,
    /// Where it leads: only its owner, SYSTEM and Administrators may use it.
    private: PathBuf,
}

impl Swapped {
    fn plant(test_dir: &Path) -> Swapped {
        let link = PathBuf::from(format!("{}-swapped", test_dir.display()));
        let private = std::env::temp_dir().join(format!("palisade-setup-private-{}", std::process::id()));
        let me = palisade_win32::token::open_own().unwrap().user.to_string_form();
        let _ = std::fs::remove_dir(&link);
        let _ = std::fs::remove_dir_all(&private);
        palisade_win32::acl::create_directory(
            &private,
            &format!("O:{me}D:P(A;OICI;FA;;;{me})(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"),
        )
        .expect("create the private folder");
        std::fs::write(private.join("secret.txt"), b"not for the sandbox").unwrap();
        let out = Command::new("cmd").arg("/C").arg("mklink").arg("/J").arg(&link).arg(&private).output();
        let ok = out.as_ref().is_ok_and(|o| o.status.success()) && link.symlink_metadata().is_ok();
        assert!(ok, "cannot make the junction {} -> {}: {out:?}", link.display(), private.display());
        Swapped { link, private }
    }

    fn listed_entry(&self) -> ProfileEntry {
        let name = self.link.file_name().unwrap().to_string_lossy().into_owned();
        ProfileEntry { name, kind: EntryKind::Directory, children: None }
    }

    /// Setup said it left the junction ungranted; the private folder and its file do not name
    /// the group, while the plain listed folder does (so the check can fail).
    fn assert_not_granted(&self, events: &[Progress], plain: &Path) {
        let name = self.link.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            events.iter().any(
                |e| matches!(e, Progress::Note { text } if text.starts_with("not granted:") && text.contains(&name))
            ),
            "no note about the junction {name}: {events:?}"
        );
        let group = lookup_account(GROUP_NAME).unwrap().expect("the group exists");
        let names_group = |p: &Path| {
            let sec = palisade_win32::acl::file_security(p).unwrap().expect("exists");
            sec.aces.iter().any(|a| a.sid == group)
        };
        assert!(names_group(plain), "the plain listed folder {} was not granted", plain.display());
        assert!(!names_group(&self.private), "the grant landed on the junction's target {}", self.private.display());
        assert!(!names_group(&self.private.join("secret.txt")), "the grant reached into the junction's target");
    }
}

impl Drop for Swapped {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.link);
        let _ = std::fs::remove_dir_all(&self.private);
    }
}
