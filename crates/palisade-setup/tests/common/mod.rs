//! Helpers shared by the setup tests: Wine detection and the CLI's end of the setup pipe.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::windows::io::{AsRawHandle, FromRawHandle};

use std::path::{Path, PathBuf};

use palisade_setup::run::{serve, serve_with, Failure};
use palisade_win32::fence::Fence;
use palisade_windows_elevated::facts::SandboxUser;
use palisade_windows_elevated::password::{generate, RANDOM_BYTES};
use palisade_windows_elevated::request::{NewPassword, RequestAction, SetupRequest, REQUEST_VERSION};
use palisade_windows_elevated::setup_channel::{encode_request, Progress, ProgressReader};
use palisade_windows_elevated::setup_plan::{EntryKind, Installer, ProfileEntry};
use palisade_windows_elevated::winpath::WinPath;
use windows_sys::Win32::Foundation::{GetLastError, ERROR_PIPE_CONNECTED, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_ACCESS_DUPLEX};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
};

/// Whether this process runs under Wine (ntdll exports `wine_get_version`).
pub fn under_wine() -> bool {
    palisade::__private::wine_version().is_some()
}

/// The request frame the CLI sends.
pub fn frame(req: &SetupRequest) -> Vec<u8> {
    encode_request(&serde_json::to_vec(req).unwrap()).unwrap()
}

/// The CLI's side: a first-instance, local-only pipe; sends `request` (raw bytes) once a client
/// connects, then collects progress until the client closes.
/// What the pipe server's thread gives back: the progress lines, and the final line if any.
pub type Served = (Vec<Progress>, Option<String>);

pub fn pipe_server(request: Vec<u8>) -> (String, std::thread::JoinHandle<Served>) {
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
    let mut pipe = unsafe { File::from_raw_handle(h) };
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

pub fn rand_suffix() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{t:x}")
}

/// This user's profile (setup checks the request's profile against `ProfileList`).
pub fn my_profile() -> WinPath {
    WinPath::parse(&std::env::var("USERPROFILE").expect("USERPROFILE")).unwrap()
}

pub struct Fixture {
    pub setup_dir: PathBuf,
    pub test_dir: PathBuf,
    pub request: SetupRequest,
}

/// A folder for setup's own copy (with a stand-in runner) and a folder inside the Wine profile
/// to grant on (never one of the profile's links to the Linux home).
pub fn fixture(sid: &str, action: RequestAction) -> Fixture {
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

/// Runs `serve` in this process against a pipe server; returns its result and the progress.
pub fn serve_request(
    request: Vec<u8>,
    setup_dir: &Path,
    fence: &dyn Fence,
) -> (Result<(), Failure>, Vec<Progress>, Option<String>) {
    serve_request_with(request, setup_dir, fence, None)
}

/// [`serve_request`], optionally with the test's own rule for trusting Palisade's folder.
pub fn serve_request_with(
    request: Vec<u8>,
    setup_dir: &Path,
    fence: &dyn Fence,
    records_trusted: Option<&dyn Fn(&palisade_windows_elevated::facts::DirFact) -> bool>,
) -> (Result<(), Failure>, Vec<Progress>, Option<String>) {
    let (name, server) = pipe_server(request);
    let mut conn = palisade_setup::pipe::connect(&name).expect("connect to the test pipe");
    let r = match records_trusted {
        Some(t) => serve_with(&mut conn, Some(setup_dir), fence, t),
        None => serve(&mut conn, Some(setup_dir), fence),
    };
    if let Err(f) = &r {
        let _ = conn.write_all(
            Progress::Failed { step: f.step(), message: f.to_string(), exit_code: f.exit_code() }.encode().as_bytes(),
        );
    }
    drop(conn);
    let (events, err) = server.join().unwrap();
    (r, events, err)
}

pub fn peer_sid() -> String {
    // Ask setup who the pipe's server is: this process.
    let (name, server) = pipe_server(vec![]);
    let conn = palisade_setup::pipe::connect(&name).unwrap();
    let (_, sid) = palisade_setup::pipe::server_user(&conn).expect("GetNamedPipeServerProcessId + token user");
    drop(conn);
    let _ = server.join();
    sid
}

pub fn state_json() -> PathBuf {
    PathBuf::from(std::env::var("ProgramData").unwrap_or_else(|_| "C:\\ProgramData".into()))
        .join("Palisade")
        .join("state.json")
}
