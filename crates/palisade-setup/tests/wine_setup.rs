//! Setup and uninstall end to end under Wine: a pipe server stands in for the CLI, and
//! `palisade-setup` (the binary, and its `run::serve` in this process with a stand-in fence)
//! carries the request out against Wine's implementation of the OS calls.
//!
//! Wine enforces nothing (no ACL, firewall rule or account separation): these tests show the
//! plumbing — pipe, peer check, request, facts, records written ahead, progress, exit codes,
//! uninstall emptying the records — and assert what Wine really does with each call. Where Wine
//! cannot do a step, they assert the typed error names that step and print a `NOT EXERCISED`
//! line. On real Windows they print `NOT RUN` (they would change the machine); the real-Windows
//! tests are in `tests/windows_setup.rs`.
#![cfg(windows)]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use common::{fixture, frame, peer_sid, pipe_server, serve_request, serve_request_with, state_json, under_wine};
use palisade_setup::run::Failure;
use palisade_win32::fence::Fence;
use palisade_windows_elevated::facts::{FirewallProfile, FirewallProfileFact};
use palisade_windows_elevated::firewall::{InstalledRule, WfpObject};
use palisade_windows_elevated::request::RequestAction;
use palisade_windows_elevated::setup_channel::{exit, Progress};

/// Setup changes machine-wide state (Palisade's folder, the registry): one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

macro_rules! wine_only {
    () => {
        if !under_wine() {
            let _ = writeln!(std::io::stderr(), "NOT RUN: this test drives setup against Wine's stand-ins; on Windows it would change the machine (see tests/windows_setup.rs)");
            return;
        }
    };
}

/// A firewall that keeps its rules in memory: Wine has no Windows Firewall or WFP.
#[derive(Default)]
struct MemoryFence {
    rules: Mutex<Vec<InstalledRule>>,
    wfp: Mutex<Vec<WfpObject>>,
}

impl Fence for MemoryFence {
    fn profiles(&self) -> Result<Vec<FirewallProfileFact>, String> {
        Ok(FirewallProfile::ALL
            .iter()
            .map(|p| FirewallProfileFact { profile: *p, enabled: true, local_rules_honored: true })
            .collect())
    }
    fn rules(&self) -> Result<Vec<InstalledRule>, String> {
        Ok(self.rules.lock().unwrap().clone())
    }
    fn wfp_objects(&self) -> Result<Vec<WfpObject>, String> {
        Ok(self.wfp.lock().unwrap().clone())
    }
    fn add_rule(&self, rule: &InstalledRule) -> Result<(), String> {
        let mut r = self.rules.lock().unwrap();
        r.retain(|x| x.name != rule.name);
        r.push(rule.clone());
        Ok(())
    }
    fn remove_rule(&self, name: &str) -> Result<bool, String> {
        let mut r = self.rules.lock().unwrap();
        let before = r.len();
        r.retain(|x| x.name != name);
        Ok(r.len() != before)
    }
    fn add_wfp(&self, obj: &WfpObject) -> Result<(), String> {
        let mut w = self.wfp.lock().unwrap();
        w.retain(|x| x.key() != obj.key());
        w.push(obj.clone());
        Ok(())
    }
    fn remove_wfp(&self, obj: &WfpObject) -> Result<bool, String> {
        let mut w = self.wfp.lock().unwrap();
        let before = w.len();
        w.retain(|x| x.key() != obj.key());
        Ok(w.len() != before)
    }
}

#[test]
fn binary_rejects_bad_arguments_and_stops_at_wines_missing_firewall() {
    wine_only!();
    let _g = SERIAL.lock().unwrap();
    let exe = env!("CARGO_BIN_EXE_palisade-setup");
    let run = |args: &[&str]| std::process::Command::new(exe).args(args).output().unwrap();
    assert_eq!(run(&[]).status.code(), Some(exit::USAGE));
    assert_eq!(run(&["--pipe", r"\\.\pipe\someone-else"]).status.code(), Some(exit::USAGE));
    assert_eq!(run(&["--pipe", r"\\.\pipe\palisade-setup-nobody-listens"]).status.code(), Some(exit::PIPE));

    // Wine's firewall (hnetcfg) answers E_NOTIMPL for the profile state: setup must say so and
    // name the phase, after the peer check and the request were accepted, before changing anything.
    let sid = peer_sid();
    let fx = fixture(&sid, RequestAction::Install);
    std::fs::copy(exe, fx.setup_dir.join("palisade-setup.exe")).unwrap();
    let (name, server) = pipe_server(frame(&fx.request));
    let out =
        std::process::Command::new(fx.setup_dir.join("palisade-setup.exe")).args(["--pipe", &name]).output().unwrap();
    let (events, err) = server.join().unwrap();
    println!("binary: {:?} {events:?} {err:?}", out.status.code());
    assert_eq!(err, None);
    assert_eq!(events.first(), Some(&Progress::Hello { setup_version: palisade_windows_elevated::SETUP_VERSION }));
    match events.last() {
        Some(Progress::Failed { step, message, exit_code }) => {
            assert_eq!(step, "facts");
            assert!(message.contains("firewall"), "{message}");
            assert_eq!(*exit_code, exit::FACTS);
        }
        other => panic!("expected a Failed report, got {other:?}"),
    }
    assert_eq!(out.status.code(), Some(exit::FACTS));
    println!(
        "NOT EXERCISED: the Windows Firewall and WFP changes (Wine implements neither; see tests/wine_firewall.rs)"
    );
    let _ = std::fs::remove_dir_all(&fx.setup_dir);
    let _ = std::fs::remove_dir(&fx.test_dir);
}

#[test]
fn a_request_for_another_user_or_a_garbled_one_is_refused() {
    wine_only!();
    let _g = SERIAL.lock().unwrap();
    let sid = peer_sid();
    let mut fx = fixture(&sid, RequestAction::Install);
    let fence = MemoryFence::default();
    fx.request.installer.sid = palisade_windows_elevated::sid::Sid::parse("S-1-5-21-1-2-3-4242").unwrap();
    let (r, events, _) = serve_request(frame(&fx.request), &fx.setup_dir, &fence);
    let f = r.unwrap_err();
    assert_eq!(f.exit_code(), exit::REQUEST);
    assert!(f.to_string().contains("was sent by"), "{f}");
    assert!(matches!(events.last(), Some(Progress::Failed { step, .. }) if step == "request"));

    let (r, _, _) = serve_request(b"PLSQ\x01\x00\x05\x00\x00\x00{{{{{".to_vec(), &fx.setup_dir, &fence);
    assert_eq!(r.unwrap_err().exit_code(), exit::REQUEST);
    let (r, _, _) = serve_request(b"nonsense!!".to_vec(), &fx.setup_dir, &fence);
    assert_eq!(r.unwrap_err().exit_code(), exit::REQUEST);
    let _ = std::fs::remove_dir_all(&fx.setup_dir);
    let _ = std::fs::remove_dir(&fx.test_dir);
}

#[test]
fn setup_then_uninstall_under_wine() {
    wine_only!();
    let _g = SERIAL.lock().unwrap();
    let sid = peer_sid();
    // Wine records every file as owned by the current user whatever owner setup asks for, so
    // a folder left by an interrupted run of this test would be refused as untrusted.
    let leftover = state_json().parent().unwrap().to_path_buf();
    if leftover.exists() {
        println!("note: removing {} left by an earlier run of this test", leftover.display());
        std::fs::remove_dir_all(&leftover).unwrap();
    }
    let fx = fixture(&sid, RequestAction::Install);
    let fence = MemoryFence::default();
    let (r, events, err) = serve_request(frame(&fx.request), &fx.setup_dir, &fence);
    for e in &events {
        println!("setup: {e:?}");
    }
    assert_eq!(err, None, "progress must decode");
    assert!(matches!(events.first(), Some(Progress::Hello { .. })));
    assert!(events.iter().any(|e| matches!(e, Progress::Plan { .. })));
    let state = std::fs::read_to_string(state_json()).ok();
    println!("state.json after setup: {state:?}");
    match &r {
        Ok(()) => {
            assert!(matches!(events.last(), Some(Progress::Finished { .. })));
            let state = state.expect("records written");
            assert!(!state.contains("\"done\": false"), "every record completed: {state}");
        }
        Err(f) => {
            println!("NOT EXERCISED under Wine from step `{}` on: {f}", f.step());
            assert_eq!(f.exit_code(), exit::STEP, "{f}");
            // What Wine 8 does: NetLocalGroupAdd and NetUserAdd report success but the group and
            // accounts are not found by LookupAccountNameW afterwards, so the first step that
            // needs an account's SID stops with a typed error naming it.
            assert_eq!(f.step(), "user.offline.group", "{f}");
            assert!(f.to_string().contains("PalisadeOffline does not exist yet"), "{f}");
            assert!(events.iter().any(|e| matches!(e, Progress::StepDone { id } if id == "dir.palisade")));
            assert!(events.iter().any(|e| matches!(e, Progress::StepDone { id } if id == "user.offline.create")));
            assert!(matches!(events.last(), Some(Progress::Failed { step, .. }) if *step == f.step()));
            // Records were written ahead and the failed step's record dropped: nothing pending.
            if let Some(s) = &state {
                assert!(!s.contains("\"done\": false"), "{s}");
            }
        }
    }

    let un = fixture(&sid, RequestAction::Uninstall);
    // The binary acts on records only in a folder owned by Administrators or SYSTEM that does
    // not inherit. Wine reports every file as owned by the current user and synthesises the
    // DACL from Unix mode bits, so Palisade's folder never passes: the binary refuses.
    let (refused, _, _) = serve_request(frame(&un.request), &un.setup_dir, &fence);
    match refused {
        Err(f @ Failure::Records { .. }) => {
            println!("NOT EXERCISED under Wine: the records-folder trust check refuses Wine's folder as expected: {f}")
        }
        Ok(()) => println!("note: this Wine reports Palisade's folder as owned by Administrators"),
        Err(f) => panic!("unexpected: {f}"),
    }
    // To test the uninstall executor, trust a folder owned by the user Wine reports.
    let wine_owner = palisade_windows_elevated::sid::Sid::parse(&sid).unwrap();
    let trust_wine = move |d: &palisade_windows_elevated::facts::DirFact| d.owner == wine_owner;
    let (r2, events2, err2) = serve_request_with(frame(&un.request), &un.setup_dir, &fence, Some(&trust_wine));
    for e in &events2 {
        println!("uninstall: {e:?}");
    }
    assert_eq!(err2, None);
    r2.expect("uninstall completes");
    assert!(matches!(events2.last(), Some(Progress::Finished { .. })));
    let left = std::fs::read_to_string(state_json()).ok();
    println!("state.json after uninstall: {left:?}");
    assert!(left.is_none_or(|s| !s.contains("\"kind\"")), "uninstall leaves no records");
    assert!(fence.rules.lock().unwrap().is_empty() && fence.wfp.lock().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&fx.setup_dir);
    let _ = std::fs::remove_dir(&fx.test_dir);
}

#[test]
fn the_cli_serves_setup_over_its_pipe_and_discards_the_passwords_when_setup_fails() {
    wine_only!();
    let _g = SERIAL.lock().unwrap();
    use palisade::windows_setup::{run, Launch};
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_palisade-setup"));
    let dir = std::env::temp_dir().join(format!("palisade-wine-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&exe, dir.join("palisade-setup.exe")).unwrap();
    std::fs::write(dir.join("palisade-runner.exe"), b"stand-in runner").unwrap();
    let mut events = Vec::new();
    // `Launch::Plain` replaces the UAC start with a plain child process (nothing is elevated).
    let outcome = run(false, Launch::Plain, Some(dir.join("palisade-setup.exe")), &[], &mut |p| events.push(p.clone()))
        .expect("the CLI side runs");
    println!("cli: {outcome:?} {events:?}");
    // This palisade-setup has no firewall code: it stops while reading facts, changing nothing.
    assert_eq!(outcome.exit_code, exit::FACTS);
    assert!(!outcome.finished);
    assert!(matches!(events.first(), Some(Progress::Hello { .. })));
    assert!(matches!(events.last(), Some(Progress::Failed { step, .. }) if step == "facts"));
    // The passwords generated for this run were stored pending (DPAPI) and, setup having
    // failed, discarded.
    let creds = PathBuf::from(std::env::var("LOCALAPPDATA").unwrap()).join("Palisade").join("credentials");
    let pending: Vec<_> =
        std::fs::read_dir(&creds).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(pending.iter().all(|n| !n.to_string_lossy().ends_with(".pending")), "{pending:?}");
    println!("NOT EXERCISED: ShellExecuteEx runas (UAC) — replaced by a plain start; Wine has no UAC");
    let _ = std::fs::remove_dir(&creds);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The OS calls setup's later steps make, one by one, with what Wine does with each (the
/// end-to-end test stops before them under Wine). Only calls Wine implements are made here:
/// `NetUserSetInfo` (an unimplemented stub that aborts the process) and the LSA rights calls
/// are not.
#[test]
fn what_wine_does_with_the_later_steps_calls() {
    wine_only!();
    let _g = SERIAL.lock().unwrap();
    use palisade_win32::{accounts as os, acl};
    use palisade_windows_elevated::ace::{AceSpec, Inheritance, Rights, Trustee};

    // The sign-in screen's UserList value: Wine's registry keeps it.
    let name = format!("PalisadeWineProbe{}", std::process::id());
    os::hide_from_sign_in(&name).expect("RegSetKeyValueW");
    let hidden =
        palisade_win32::system::reg_dword(palisade_win32::system::RegRoot::LocalMachine, os::USER_LIST_KEY, &name)
            .unwrap();
    assert_eq!(hidden, Some(0));
    os::unhide_from_sign_in(&name).expect("RegDeleteKeyValueW");
    assert_eq!(
        palisade_win32::system::reg_dword(palisade_win32::system::RegRoot::LocalMachine, os::USER_LIST_KEY, &name)
            .unwrap(),
        None
    );
    println!("wine: UserList value set, read back and deleted");

    // One ACE added and removed on a folder inside the prefix (Users stands in for the group).
    let dir = std::env::temp_dir().join(format!("palisade-wine-ace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = palisade_windows_elevated::sid::Sid::users();
    let ace = AceSpec::allow(Trustee::Sid(users.clone()), Rights::ReadExecute, Inheritance::ContainerAndObject);
    let before = palisade_win32::acl::file_security(&dir).unwrap().unwrap().aces;
    let wdir = palisade_windows_elevated::winpath::WinPath::parse_exact(&dir.to_string_lossy()).unwrap();
    let granted =
        acl::grant_ace(&wdir, &ace, users.as_str()).expect("open by handle, SetEntriesInAclW, SetSecurityInfo");
    assert_eq!(granted, acl::Granted::Done, "a plain folder at its own path is granted");
    let after = palisade_win32::acl::file_security(&dir).unwrap().unwrap().aces;
    let stored = after.iter().any(|a| a.explicit_spec().as_ref() == Some(&ace));
    println!("wine: ACE added; read back: {stored}; before {before:?}; after {after:?}");
    let removed = acl::remove_ace(&dir, &ace, users.as_str()).expect("rebuild the DACL without the ACE");
    println!("wine: ACE removal found it: {removed}");
    assert_eq!(stored, removed, "removal finds the ACE exactly when it was read back");
    let _ = std::fs::remove_dir_all(&dir);

    // The file hash the runner copy is checked with.
    assert_eq!(
        palisade_win32::system::sha256_hex(b"abc").unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    println!("wine: BCrypt SHA-256 matches the standard test vector");
    println!("NOT EXERCISED under Wine: NetUserSetInfo (unimplemented stub: aborts), NetLocalGroupAddMembers/DelMembers and LsaAdd/RemoveAccountRights for accounts Wine does not keep, DeleteProfileW, NetUserDel/NetLocalGroupDel of them");
}
