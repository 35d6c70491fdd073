//! The elevated setup for real, on a disposable elevated Windows runner: setup creates the
//! group, the accounts, the firewall rules and WFP filters, a read grant and the marker; a
//! second run changes nothing; uninstall removes all of it.
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
    let fx = fixture(&sid, RequestAction::Install);
    let (r, events, err) = serve_request(frame(&fx.request), &fx.setup_dir, fence.as_ref());
    events.iter().for_each(|e| println!("setup: {e:?}"));
    assert_eq!(err, None);
    r.expect("setup completes");
    assert!(matches!(events.last(), Some(Progress::Finished { changed }) if *changed > 0));
    for name in [GROUP_NAME, SandboxUser::Offline.account_name(), SandboxUser::Online.account_name()] {
        assert!(lookup_account(name).unwrap().is_some(), "{name} exists");
    }
    let marker = state_json().with_file_name("setup.json");
    assert!(marker.is_file(), "the marker is written last");

    // Nothing left to do: the stored passwords now log on (the CLI would report them so).
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
}
