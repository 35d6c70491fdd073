//! `palisade setup --elevated [--uninstall]`: the CLI's half of the elevated setup (never
//! elevated itself). It describes the installing user (SID, profile listing, tool folders, the
//! stored passwords as it can decrypt them), generates and stores new passwords pending, serves
//! one request to `palisade-setup.exe` started through UAC over a private pipe, relays its
//! progress, and commits or discards the pending passwords by the outcome.

use std::ffi::c_void;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::windows::fs::MetadataExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use palisade_windows_elevated::facts::{CredentialFact, SandboxUser};
use palisade_windows_elevated::password::{generate, RANDOM_BYTES};
use palisade_windows_elevated::request::{NewPassword, RequestAction, SetupRequest, REQUEST_VERSION};
use palisade_windows_elevated::setup_channel::{encode_request, exit, Progress, ProgressReader};
use palisade_windows_elevated::setup_plan::{credential_path, EntryKind, Installer, ProfileEntry, PROFILE_SECRETS};
use palisade_windows_elevated::sid::Sid;
use palisade_windows_elevated::winpath::{fold, WinPath};
use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_PIPE_CONNECTED, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, LogonUserW, TokenUser, LOGON32_LOGON_INTERACTIVE, LOGON32_PROVIDER_DEFAULT,
    SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientProcessId, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE,
    PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetExitCodeProcess, OpenProcessToken, WaitForSingleObject, INFINITE,
};
use windows_sys::Win32::UI::Shell::{
    FOLDERID_LocalAppData, FOLDERID_Profile, FOLDERID_RoamingAppData, ShellExecuteExW, SEE_MASK_NOASYNC,
    SEE_MASK_NOCLOSEPROCESS, SHELLEXECUTEINFOW,
};

use super::credentials;
use crate::error::Error;
use palisade_win32::ffi::{check, random_bytes, wide, LocalMem};
use palisade_win32::system::known_folder_path;

/// How `palisade-setup.exe` is started: the seam tests replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launch {
    /// `ShellExecuteEx` with the verb `runas`: Windows asks for administrator approval (UAC).
    RunAs,
    /// A plain child process as the current user (tests; nothing is elevated).
    Plain,
}

/// What the run came to.
#[derive(Debug)]
pub struct Outcome {
    /// `palisade-setup`'s exit code (`setup_channel::exit`).
    pub exit_code: i32,
    /// It reported `Finished`.
    pub finished: bool,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}

/// Runs the elevated setup (or uninstall) and relays its progress to `report`.
pub fn run(
    uninstall: bool,
    launch: Launch,
    setup_exe: Option<PathBuf>,
    proxy_ports: &[u16],
    report: &mut dyn FnMut(&Progress),
) -> Result<Outcome, Error> {
    let exe = match setup_exe {
        Some(p) => p,
        None => std::env::current_exe().map_err(io_err("finding palisade.exe"))?.with_file_name("palisade-setup.exe"),
    };
    if !exe.is_file() {
        return Err(invalid(format!("{} is missing: it must lie next to palisade.exe", exe.display())));
    }
    let installer = installer()?;
    let recorded = recorded_proxy_ports();
    let proxy_ports =
        palisade_windows_elevated::proxy_route::ports_to_request(proxy_ports, recorded.as_deref()).map_err(invalid)?;
    let action = if uninstall { RequestAction::Uninstall } else { RequestAction::Install };
    if uninstall {
        report(&Progress::Note { text: remove_runs_entries() });
    }
    let credentials = stored_credentials(&installer.local_app_data);
    // Pending passwords are discarded on every failure from here on, so the stored password
    // always is the one the account has.
    let result = request_frame(action, installer, credentials, proxy_ports).and_then(|mut frame| {
        let r = serve(&exe, launch, &frame, report);
        // The frame holds the new passwords.
        frame.iter_mut().for_each(|b| *b = 0);
        r
    });
    let ok = matches!(&result, Ok(o) if o.exit_code == exit::OK && o.finished);
    match (action, ok) {
        (RequestAction::Install, true) => credentials::commit_pending()?,
        (RequestAction::Install, false) => credentials::discard_pending()?,
        (RequestAction::Uninstall, true) => credentials::remove_all()?,
        (RequestAction::Uninstall, false) => {}
    }
    result
}

/// The proxy ports the current setup recorded in its marker, if there is one.
fn recorded_proxy_ports() -> Option<Vec<u16>> {
    let program_data = palisade_win32::gather::program_data().ok()?;
    let marker = palisade_windows_elevated::setup_plan::Layout::new(&program_data).marker;
    let text = std::fs::read_to_string(marker.to_string()).ok()?;
    let ports = palisade_windows_elevated::setup_plan::parse_marker_contents(&text)?.proxy_ports;
    (!ports.is_empty()).then_some(ports)
}

/// Removes the permission entries commands added to writable roots (what `palisade cleanup`
/// removes): they name the sandbox group, and once setup has deleted it they would stay behind
/// as unknown SIDs. They are the user's to remove, so this needs no elevation; a failure is
/// reported and leaves them recorded for `palisade cleanup`.
fn remove_runs_entries() -> String {
    match crate::backend::windows::grants::cleanup() {
        Ok(r) if r.failed.is_empty() => {
            format!("removed {} permission entries commands had added ({} were already gone)", r.removed, r.already_gone)
        }
        Ok(r) => format!(
            "{} permission entries commands had added could not be removed (first: {}); run `palisade cleanup` after uninstalling",
            r.failed.len(),
            r.failed[0]
        ),
        Err(e) => format!("removing the permission entries commands had added failed ({e}); run `palisade cleanup` after uninstalling"),
    }
}

/// Generates and stores (pending) the passwords the request carries, and encodes it.
fn request_frame(
    action: RequestAction,
    installer: Installer,
    credentials: Vec<CredentialFact>,
    proxy_ports: Vec<u16>,
) -> Result<Vec<u8>, Error> {
    let mut passwords = Vec::new();
    if action == RequestAction::Install {
        for u in SandboxUser::ALL {
            if !credentials.iter().any(|c| c.user == u && c.logon_ok) {
                let mut random = vec![0u8; RANDOM_BYTES];
                random_bytes(&mut random).map_err(io_err("reading random bytes (BCryptGenRandom)"))?;
                let password = generate(&random, u.account_name()).map_err(|e| invalid(e.to_string()))?;
                random.iter_mut().for_each(|b| *b = 0);
                credentials::store_pending(u, &password)?;
                passwords.push(NewPassword { user: u, password });
            }
        }
    }
    let request = SetupRequest { version: REQUEST_VERSION, action, installer, proxy_ports, credentials, passwords };
    let mut json = serde_json::to_vec(&request).map_err(|e| invalid(format!("encoding the setup request: {e}")))?;
    drop(request);
    let frame = encode_request(&json).map_err(|e| invalid(e.to_string()));
    // The JSON holds the new passwords.
    json.iter_mut().for_each(|b| *b = 0);
    frame
}

/// The installing user as the request describes it.
fn installer() -> Result<Installer, Error> {
    let sid = current_user_sid().map_err(io_err("reading this process's user"))?;
    let sid = Sid::parse(&sid).map_err(|e| invalid(format!("this process's user {sid}: {e}")))?;
    let profile_dir = known_folder_path(&FOLDERID_Profile).ok_or_else(|| invalid("the profile folder is unknown"))?;
    let local = known_folder_path(&FOLDERID_LocalAppData).ok_or_else(|| invalid("%LOCALAPPDATA% is unknown"))?;
    let wp =
        |p: &Path| WinPath::parse_exact(&p.to_string_lossy()).map_err(|e| invalid(format!("{}: {e}", p.display())));
    let profile = wp(&profile_dir)?;
    let local_app_data = wp(&local)?;
    let roaming = known_folder_path(&FOLDERID_RoamingAppData);
    let mut tool_folders = Vec::new();
    let candidates = [
        Some(local.join("Programs")),
        roaming.as_ref().map(|r| r.join("npm")),
        roaming.as_ref().map(|r| r.join("nvm")),
        Some(profile_dir.join("scoop").join("shims")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.is_dir() {
            tool_folders.push(wp(&c)?);
        }
    }
    let secrets: Vec<Vec<String>> = PROFILE_SECRETS.iter().map(|s| s.split('\\').map(fold).collect()).collect();
    let profile_entries =
        list(&profile_dir, &mut Vec::new(), &secrets).map_err(io_err(format!("listing {}", profile_dir.display())))?;
    Ok(Installer {
        sid,
        name: std::env::var("USERNAME").unwrap_or_else(|_| "the installing user".into()),
        profile,
        local_app_data,
        profile_entries,
        tool_folders,
        extra_secrets: vec![],
    })
}

/// The profile's entries; folders on the way to a credential store are listed one level deeper
/// (setup grants their other entries one by one). Reparse points are links (never granted).
fn list(dir: &Path, rel: &mut Vec<String>, secrets: &[Vec<String>]) -> io::Result<Vec<ProfileEntry>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(e.path())?;
        let kind = if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            EntryKind::Link
        } else if meta.is_dir() {
            EntryKind::Directory
        } else {
            EntryKind::File
        };
        rel.push(fold(&name));
        let holds_secret =
            kind == EntryKind::Directory && secrets.iter().any(|s| s.len() > rel.len() && s[..rel.len()] == rel[..]);
        let children = if holds_secret { Some(list(&e.path(), rel, secrets)?) } else { None };
        rel.pop();
        out.push(ProfileEntry { name, kind, children });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The stored passwords as this user finds them: decryptable, and accepted by `LogonUser`.
pub(crate) fn stored_credentials(local_app_data: &WinPath) -> Vec<CredentialFact> {
    let mut out = Vec::new();
    for u in SandboxUser::ALL {
        let path = credential_path(local_app_data, u);
        match credentials::load(u) {
            Ok(pw) => out.push(CredentialFact {
                user: u,
                path,
                decryptable: true,
                logon_ok: logs_on(u.account_name(), pw.expose()),
            }),
            Err(credentials::LoadError::Missing(_)) => {}
            Err(_) => out.push(CredentialFact { user: u, path, decryptable: false, logon_ok: false }),
        }
    }
    out
}

fn logs_on(account: &str, password: &str) -> bool {
    let (Ok(user), Ok(dot), Ok(mut pw)) = (wide(account), wide("."), wide(password)) else { return false };
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: NUL-terminated strings; `token` is closed below when the call succeeds.
    let ok = unsafe {
        LogonUserW(
            user.as_ptr(),
            dot.as_ptr(),
            pw.as_ptr(),
            LOGON32_LOGON_INTERACTIVE,
            LOGON32_PROVIDER_DEFAULT,
            &mut token,
        )
    };
    pw.iter_mut().for_each(|c| *c = 0);
    if ok != 0 {
        // SAFETY: the token LogonUserW returned, closed once.
        unsafe { CloseHandle(token) };
    }
    ok != 0
}

fn current_user_sid() -> io::Result<String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of this process; `token` is owned below.
    check(unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) })?;
    // SAFETY: a fresh handle owned from here on.
    let _token = unsafe { OwnedHandle::from_raw_handle(token as _) };
    let mut len = 0u32;
    // SAFETY: a null buffer asks for the size.
    unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut len) };
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    // SAFETY: `buf` holds at least `len` bytes, aligned for TOKEN_USER.
    check(unsafe {
        GetTokenInformation(token, TokenUser, buf.as_mut_ptr() as *mut c_void, (buf.len() * 8) as u32, &mut len)
    })?;
    // SAFETY: the buffer starts with a TOKEN_USER whose SID lies inside it.
    let sid = unsafe { (*(buf.as_ptr() as *const TOKEN_USER)).User.Sid };
    // SAFETY: `sid` points into `buf`, alive for the call.
    unsafe { palisade_win32::sid::Sid::copy_from(sid) }.map(|s| s.to_string_form())
}

/// A started `palisade-setup`: its process handle and id.
struct Started {
    process: OwnedHandle,
    pid: u32,
}

fn start(exe: &Path, args: &str, launch: Launch) -> Result<Started, Error> {
    match launch {
        Launch::Plain => {
            let child = std::process::Command::new(exe)
                .args(args.split(' '))
                .spawn()
                .map_err(io_err(format!("starting {}", exe.display())))?;
            let pid = child.id();
            let process: OwnedHandle = child.into();
            Ok(Started { process, pid })
        }
        Launch::RunAs => {
            let w = |s: &dyn AsRef<std::ffi::OsStr>| wide(s).map_err(io_err("preparing palisade-setup's command line"));
            let (verb, file, params) = (w(&"runas")?, w(&exe)?, w(&args)?);
            // SAFETY: SHELLEXECUTEINFOW is plain data; zero is its documented initial state.
            let mut info: SHELLEXECUTEINFOW = unsafe { std::mem::zeroed() };
            info.cbSize = std::mem::size_of::<SHELLEXECUTEINFOW>() as u32;
            info.fMask = SEE_MASK_NOCLOSEPROCESS | SEE_MASK_NOASYNC;
            info.lpVerb = verb.as_ptr();
            info.lpFile = file.as_ptr();
            info.lpParameters = params.as_ptr();
            info.nShow = 0; // SW_HIDE: progress comes over the pipe.
                            // SAFETY: `info` and its strings outlive the call.
            check(unsafe { ShellExecuteExW(&mut info) }).map_err(|e| {
                if e.raw_os_error() == Some(1223) {
                    invalid("administrator approval was declined; nothing was changed")
                } else {
                    io_err(format!("starting {} as administrator", exe.display()))(e)
                }
            })?;
            if info.hProcess.is_null() {
                return Err(invalid("Windows started palisade-setup without a process handle"));
            }
            // SAFETY: the process handle ShellExecuteEx returned, owned from here on.
            let process = unsafe { OwnedHandle::from_raw_handle(info.hProcess as _) };
            // SAFETY: a valid process handle.
            let pid = unsafe { windows_sys::Win32::System::Threading::GetProcessId(info.hProcess) };
            Ok(Started { process, pid })
        }
    }
}

/// Creates the pipe, starts setup, sends the request, relays progress, waits for the exit.
fn serve(exe: &Path, launch: Launch, frame: &[u8], report: &mut dyn FnMut(&Progress)) -> Result<Outcome, Error> {
    let mut id = [0u8; 16];
    random_bytes(&mut id).map_err(io_err("reading random bytes"))?;
    let name = format!(r"\\.\pipe\palisade-setup-{}", id.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let me = current_user_sid().map_err(io_err("reading this process's user"))?;
    // Only this user (the CLI) and Administrators (the elevated setup) may open it.
    let sddl = wide(format!("D:P(A;;GA;;;{me})(A;;GA;;;BA)"))
        .map_err(io_err("building the setup pipe's security descriptor"))?;
    let mut sd = LocalMem::null();
    // SAFETY: NUL-terminated SDDL; the descriptor is LocalAlloc'd and freed by `sd`.
    check(unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut sd.0,
            std::ptr::null_mut(),
        )
    })
    .map_err(io_err("building the setup pipe's security descriptor"))?;
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let wname = wide(&name).map_err(io_err("naming the setup pipe"))?;
    // SAFETY: valid name and attributes; the handle is owned by `pipe` below.
    let h = unsafe {
        CreateNamedPipeW(
            wname.as_ptr(),
            PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
            PIPE_TYPE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            65536,
            65536,
            0,
            &sa,
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io_err(format!("creating {name}"))(io::Error::last_os_error()));
    }
    // SAFETY: a fresh pipe handle, owned from here on.
    let mut pipe = unsafe { File::from_raw_handle(h as _) };

    let started = start(exe, &format!("--pipe {name}"), launch)?;
    // If setup exits without connecting, a connection of our own ends the wait below.
    let connected = Arc::new(AtomicBool::new(false));
    let process = started.process.as_raw_handle() as usize;
    let watch_name = name.clone();
    let watch_connected = connected.clone();
    let watcher = std::thread::spawn(move || {
        // SAFETY: the process handle stays open until the watcher is joined.
        unsafe { WaitForSingleObject(process as HANDLE, INFINITE) };
        if !watch_connected.load(Ordering::SeqCst) {
            let _ = std::fs::OpenOptions::new().read(true).write(true).open(&watch_name);
        }
    });
    // SAFETY: the pipe handle is open; a blocking wait for one client.
    let ok = unsafe { ConnectNamedPipe(pipe.as_raw_handle() as HANDLE, std::ptr::null_mut()) };
    // SAFETY: plain call.
    let err = unsafe { GetLastError() };
    connected.store(true, Ordering::SeqCst);
    let mut client = 0u32;
    // SAFETY: the pipe handle is open.
    let known = ok != 0 || err == ERROR_PIPE_CONNECTED || err == 232;
    let client_ok = known
        && unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle() as HANDLE, &mut client) } != 0
        && client == started.pid;
    let mut finished = false;
    if client_ok {
        pipe.write_all(frame).map_err(io_err("sending the setup request"))?;
        let mut reader = ProgressReader::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match reader.push(&buf[..n]) {
                Ok(events) => {
                    for e in &events {
                        finished |= matches!(e, Progress::Finished { .. });
                        report(e);
                    }
                }
                Err(e) => {
                    report(&Progress::Note { text: format!("stopped reading palisade-setup's progress: {e}") });
                    break;
                }
            }
        }
        let _ = reader.finish();
    }
    drop(pipe);
    let _ = watcher.join();
    let mut code = 0u32;
    // SAFETY: the process has ended (the watcher waited for it); the handle is open.
    check(unsafe { GetExitCodeProcess(started.process.as_raw_handle() as HANDLE, &mut code) })
        .map_err(io_err("reading palisade-setup's exit code"))?;
    if !client_ok && code as i32 == exit::OK {
        return Err(invalid("palisade-setup ended without talking to palisade"));
    }
    Ok(Outcome { exit_code: code as i32, finished })
}
