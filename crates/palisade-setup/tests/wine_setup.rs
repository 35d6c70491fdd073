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

use std::ffi::c_void;
use std::fs::File;
use std::io::{Read, Write};
use std::os::windows::io::{AsRawHandle, FromRawHandle};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use palisade_setup::fence::Fence;
use palisade_setup::run::{serve, Failure};
use palisade_windows_elevated::facts::{FirewallProfile, FirewallProfileFact, SandboxUser};
use palisade_windows_elevated::firewall::{InstalledRule, WfpObject};
use palisade_windows_elevated::password::{generate, RANDOM_BYTES};
use palisade_windows_elevated::request::{NewPassword, RequestAction, SetupRequest, REQUEST_VERSION};
use palisade_windows_elevated::setup_channel::{encode_request, exit, Progress, ProgressReader};
use palisade_windows_elevated::setup_plan::{EntryKind, Installer, ProfileEntry};
use palisade_windows_elevated::winpath::WinPath;
use windows_sys::Win32::Foundation::{GetLastError, ERROR_PIPE_CONNECTED, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_ACCESS_DUPLEX};
use windows_sys::Win32::System::Pipes::{ConnectNamedPipe, CreateNamedPipeW, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT};

/// Setup changes machine-wide state (Palisade's folder, the registry): one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
    // SAFETY: NUL-terminated literals; ntdll is always loaded.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr() as *const u8);
        !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr() as *const u8).is_some()
    }
}

macro_rules! wine_only {
    () => {
        if !under_wine() {
            println!("NOT RUN: this test drives setup against Wine's stand-ins; on Windows it would change the machine (see tests/windows_setup.rs)");
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
        Ok(FirewallProfile::ALL.iter().map(|p| FirewallProfileFact { profile: *p, enabled: true, local_rules_honored: true }).collect())
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

/// The CLI's side: a first-instance, local-only pipe; sends `request` (raw bytes) once a client
/// connects, then collects progress until the client closes.
fn pipe_server(request: Vec<u8>) -> (String, std::thread::JoinHandle<(Vec<Progress>, Option<String>)>) {
    let name = format!(r"\\.\pipe\palisade-setup-test{}-{}", std::process::id(), rand_suffix());
    let wide: Vec<u16> = name.encode_utf16().chain([0]).collect();
    // SAFETY: `wide` is NUL-terminated; default security is fine inside the test.
    let h = unsafe {
        CreateNamedPipeW(
            wide.as_ptr(),
            PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
            PIPE_TYPE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            65536,
            65536,
            0,
            std::ptr::null(),
        )
    };
    assert_ne!(h, INVALID_HANDLE_VALUE, "CreateNamedPipeW");
    // SAFETY: `h` is a fresh pipe handle this File now owns.
    let mut pipe = unsafe { File::from_raw_handle(h as *mut c_void) };
    let join = std::thread::spawn(move || {
        let h = pipe.as_raw_handle() as windows_sys::Win32::Foundation::HANDLE;
        // SAFETY: the handle stays open (owned by `pipe`) for the call.
        let ok = unsafe { ConnectNamedPipe(h, std::ptr::null_mut()) };
        // SAFETY: plain call.
        let err = unsafe { GetLastError() };
        // ERROR_NO_DATA (232): the client came and already went; there is nothing to talk to.
        if ok == 0 && err == 232 {
            return (Vec::new(), None);
        }
        assert!(ok != 0 || err == ERROR_PIPE_CONNECTED, "ConnectNamedPipe: error {err}");
        let _ = pipe.write_all(&request);
        let mut reader = ProgressReader::new();
        let mut events = Vec::new();
        let mut buf = [0u8; 4096];
        let mut error = None;
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => match reader.push(&buf[..n]) {
                    Ok(e) => events.extend(e),
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                },
            }
        }
        if error.is_none() {
            error = reader.finish().err().map(|e| e.to_string());
        }
        (events, error)
    });
    (name, join)
}

fn rand_suffix() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{t:x}")
}

/// This user's profile (setup checks the request's profile against `ProfileList`).
fn my_profile() -> WinPath {
    WinPath::parse(&std::env::var("USERPROFILE").expect("USERPROFILE")).unwrap()
}

struct Fixture {
    setup_dir: PathBuf,
    test_dir: PathBuf,
    request: SetupRequest,
}

/// A folder for setup's own copy (with a stand-in runner) and a folder inside the Wine profile
/// to grant on (never one of the profile's links to the Linux home).
fn fixture(sid: &str, action: RequestAction) -> Fixture {
    let profile = my_profile();
    let tag = format!("palisade-wine-test-{}", std::process::id());
    let setup_dir = std::env::temp_dir().join(format!("{tag}-setup"));
    std::fs::create_dir_all(&setup_dir).unwrap();
    std::fs::write(setup_dir.join("palisade-runner.exe"), b"stand-in runner for the Wine test").unwrap();
    let test_dir = PathBuf::from(profile.as_str()).join(&tag);
    std::fs::create_dir_all(&test_dir).unwrap();
    let random: Vec<u8> = (0..RANDOM_BYTES as u32).map(|i| (i * 131 + 7) as u8).collect();
    let passwords = match action {
        RequestAction::Install => SandboxUser::ALL
            .iter()
            .map(|u| NewPassword { user: *u, password: generate(&random, u.account_name()).unwrap() })
            .collect(),
        RequestAction::Uninstall => vec![],
    };
    let request = SetupRequest {
        version: REQUEST_VERSION,
        action,
        installer: Installer {
            sid: palisade_windows_elevated::sid::Sid::parse(sid).unwrap(),
            name: std::env::var("USERNAME").unwrap_or_else(|_| "me".into()),
            local_app_data: profile.join("AppData\\Local").unwrap(),
            profile,
            profile_entries: vec![ProfileEntry { name: tag.clone(), kind: EntryKind::Directory, children: None }],
            tool_folders: vec![],
            extra_secrets: vec![],
        },
        proxy_ports: vec![8877],
        credentials: vec![],
        passwords,
    };
    Fixture { setup_dir, test_dir, request }
}

fn frame(req: &SetupRequest) -> Vec<u8> {
    encode_request(&serde_json::to_vec(req).unwrap()).unwrap()
}

/// Runs `serve` in this process against a pipe server; returns its result and the progress.
fn serve_request(request: Vec<u8>, setup_dir: &Path, fence: &dyn Fence) -> (Result<(), Failure>, Vec<Progress>, Option<String>) {
    let (name, server) = pipe_server(request);
    let mut conn = palisade_setup::pipe::connect(&name).expect("connect to the test pipe");
    let r = serve(&mut conn, Some(setup_dir), fence);
    if let Err(f) = &r {
        let _ = conn.write_all(Progress::Failed { step: f.step(), message: f.to_string(), exit_code: f.exit_code() }.encode().as_bytes());
    }
    drop(conn);
    let (events, err) = server.join().unwrap();
    (r, events, err)
}

fn peer_sid() -> String {
    // Ask setup who the pipe's server is: this process.
    let (name, server) = pipe_server(vec![]);
    let conn = palisade_setup::pipe::connect(&name).unwrap();
    let (_, sid) = palisade_setup::pipe::server_user(&conn).expect("GetNamedPipeServerProcessId + token user");
    drop(conn);
    let _ = server.join();
    sid
}

fn state_json() -> PathBuf {
    PathBuf::from(std::env::var("ProgramData").unwrap_or_else(|_| "C:\\ProgramData".into())).join("Palisade").join("state.json")
}

#[test]
fn binary_rejects_bad_arguments_and_stops_at_the_firewall_without_it() {
    wine_only!();
    let _g = SERIAL.lock().unwrap();
    let exe = env!("CARGO_BIN_EXE_palisade-setup");
    let run = |args: &[&str]| std::process::Command::new(exe).args(args).output().unwrap();
    assert_eq!(run(&[]).status.code(), Some(exit::USAGE));
    assert_eq!(run(&["--pipe", r"\\.\pipe\someone-else"]).status.code(), Some(exit::USAGE));
    assert_eq!(run(&["--pipe", r"\\.\pipe\palisade-setup-nobody-listens"]).status.code(), Some(exit::PIPE));

    // The binary as built here has no firewall code (feature system-fence off): it must say so
    // and name the phase, after the peer check and the request were accepted.
    let sid = peer_sid();
    let fx = fixture(&sid, RequestAction::Install);
    std::fs::copy(exe, fx.setup_dir.join("palisade-setup.exe")).unwrap();
    let (name, server) = pipe_server(frame(&fx.request));
    let out = std::process::Command::new(fx.setup_dir.join("palisade-setup.exe")).args(["--pipe", &name]).output().unwrap();
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
    println!("NOT EXERCISED: the real Windows Firewall and WFP calls (not built in yet, and Wine has neither)");
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
    let (r2, events2, err2) = serve_request(frame(&un.request), &un.setup_dir, &fence);
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
    let outcome = run(false, Launch::Plain, Some(dir.join("palisade-setup.exe")), &mut |p| events.push(p.clone())).expect("the CLI side runs");
    println!("cli: {outcome:?} {events:?}");
    // This palisade-setup has no firewall code: it stops while reading facts, changing nothing.
    assert_eq!(outcome.exit_code, exit::FACTS);
    assert!(!outcome.finished);
    assert!(matches!(events.first(), Some(Progress::Hello { .. })));
    assert!(matches!(events.last(), Some(Progress::Failed { step, .. }) if step == "facts"));
    // The passwords generated for this run were stored pending (DPAPI) and, setup having
    // failed, discarded.
    let creds = PathBuf::from(std::env::var("LOCALAPPDATA").unwrap()).join("Palisade").join("credentials");
    let pending: Vec<_> = std::fs::read_dir(&creds).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(pending.iter().all(|n| !n.to_string_lossy().ends_with(".pending")), "{pending:?}");
    println!("NOT EXERCISED: ShellExecuteEx runas (UAC) — replaced by a plain start; Wine has no UAC");
    let _ = std::fs::remove_dir_all(&dir);
}
