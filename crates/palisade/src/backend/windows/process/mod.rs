//! Starting the command: finding the program (PATH + PATHEXT), building its command line and
//! environment block, its standard handles, and `CreateProcessAsUserW` with an explicit list of
//! the handles it inherits.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{
    DuplicateHandle, DUPLICATE_SAME_ACCESS, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
    WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING};
use windows_sys::Win32::System::Console::{
    GenerateConsoleCtrlEvent, GetConsoleProcessList, GetStdHandle, CTRL_BREAK_EVENT, HPCON, STD_ERROR_HANDLE,
    STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::SystemInformation::{GetSystemDirectoryW, GetWindowsDirectoryW};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, DeleteProcThreadAttributeList, GetCurrentProcess, GetExitCodeProcess,
    InitializeProcThreadAttributeList, ResumeThread, TerminateProcess, UpdateProcThreadAttribute, WaitForSingleObject,
    CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW, CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT,
    EXTENDED_STARTUPINFO_PRESENT, INFINITE, PROCESS_INFORMATION, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
    PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE, STARTF_USESTDHANDLES, STARTUPINFOEXW,
};

use crate::error::Error;
use crate::spec::Stdio;
use palisade_win32::ffi::{check, from_wide_buf, wide};

mod command_line;
mod create;

pub use command_line::{command_line, environment_block, push_arg, CommandLine};
pub use create::{
    create_suspended, ctrl_break, exit_code, resume, shares_console, stdio, terminate, wait, CreateSpec, Spawned,
    StdioSet,
};

/// How the resolved program is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// An executable image, started directly.
    Image(PathBuf),
    /// A `.bat` or `.cmd` file, started through `cmd.exe /c`.
    Batch(PathBuf),
}

impl Launch {
    pub fn path(&self) -> &Path {
        match self {
            Launch::Image(p) | Launch::Batch(p) => p,
        }
    }
}

/// The value of an environment variable in `env`, whose names Windows compares without case.
pub fn env_get<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsString> {
    env.iter().find(|(k, _)| k.to_string_lossy().eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn system_dir(windows: bool) -> Option<PathBuf> {
    let mut buf = [0u16; 512];
    // SAFETY: the buffer's length is passed; the call writes at most that many characters.
    let n = unsafe {
        if windows {
            GetWindowsDirectoryW(buf.as_mut_ptr(), buf.len() as u32)
        } else {
            GetSystemDirectoryW(buf.as_mut_ptr(), buf.len() as u32)
        }
    };
    if n == 0 || n as usize >= buf.len() {
        return None;
    }
    Some(PathBuf::from(from_wide_buf(&buf[..n as usize])))
}

/// `%SystemRoot%\System32\cmd.exe`.
pub fn cmd_exe() -> PathBuf {
    system_dir(false).unwrap_or_else(|| PathBuf::from(r"C:\Windows\System32")).join("cmd.exe")
}

/// The extensions tried after a program name, from `PATHEXT` (lowercase, with the dot).
fn path_exts(env: &[(OsString, OsString)]) -> Vec<String> {
    let raw = env_get(env, "PATHEXT").map(|v| v.to_string_lossy().into_owned()).unwrap_or_default();
    let mut exts: Vec<String> = raw
        .split(';')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| e.len() > 1 && e.starts_with('.') && !e.contains(['\\', '/']))
        .collect();
    if exts.is_empty() {
        exts = [".com", ".exe", ".bat", ".cmd"].iter().map(|s| s.to_string()).collect();
    }
    exts
}

fn has_separator(s: &OsStr) -> bool {
    let w: Vec<u16> = s.encode_wide().collect();
    w.iter().any(|&c| c == b'\\' as u16 || c == b'/' as u16) || (w.len() >= 2 && w[1] == b':' as u16)
}

/// What is at a candidate path.
enum Found {
    Launch(Launch),
    Directory(PathBuf),
}

fn classify(p: &Path) -> Option<Found> {
    let meta = std::fs::metadata(p).ok()?;
    if meta.is_dir() {
        return Some(Found::Directory(p.to_path_buf()));
    }
    let ext = p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    Some(Found::Launch(if ext == "bat" || ext == "cmd" {
        Launch::Batch(p.to_path_buf())
    } else {
        Launch::Image(p.to_path_buf())
    }))
}

/// The candidates for one base path: the name itself if it has an extension, then the name with
/// each `PATHEXT` extension appended, then the bare name without an extension (a directory, or a
/// file Windows may not be able to run: 126 rather than 127).
fn candidates(base: &Path, exts: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if base.extension().is_some() {
        out.push(base.to_path_buf());
    }
    for e in exts {
        let mut s = base.as_os_str().to_os_string();
        s.push(e);
        out.push(PathBuf::from(s));
    }
    if base.extension().is_none() {
        out.push(base.to_path_buf());
    }
    out
}

/// Finds the program as `cmd.exe` would, but only in the command's `PATH` and the system
/// folders (never the current directory, which the command may write): a name with a
/// separator is taken relative to `cwd`; a name without an extension gets each of `PATHEXT`'s.
/// Not found is [`Error::NotFound`] (exit 127); only a directory by that name is
/// [`Error::NotExecutable`] (126).
pub fn resolve_program(program: &OsStr, env: &[(OsString, OsString)], cwd: &Path) -> Result<Launch, Error> {
    if program.is_empty() {
        return Err(Error::NotFound("(empty program name)".into()));
    }
    let exts = path_exts(env);
    let name = Path::new(program);
    let mut directory = None;
    let mut try_base = |base: &Path| -> Option<Launch> {
        for c in candidates(base, &exts) {
            match classify(&c) {
                Some(Found::Launch(l)) => return Some(l),
                Some(Found::Directory(d)) => {
                    directory.get_or_insert(d);
                }
                None => {}
            }
        }
        None
    };
    if has_separator(program) {
        let base = if name.is_absolute() { name.to_path_buf() } else { cwd.join(name) };
        let base = super::state::plain_path(&base);
        if let Some(l) = try_base(&base) {
            return Ok(l);
        }
    } else {
        let mut dirs: Vec<PathBuf> = env_get(env, "PATH")
            .map(|p| {
                p.to_string_lossy()
                    .split(';')
                    .map(|d| d.trim().trim_matches('"'))
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .filter(|d| d.is_absolute())
                    .collect()
            })
            .unwrap_or_default();
        dirs.extend(system_dir(false));
        dirs.extend(system_dir(true));
        for dir in dirs {
            if let Some(l) = try_base(&dir.join(name)) {
                return Ok(l);
            }
        }
    }
    match directory {
        Some(d) => Err(Error::NotExecutable(format!("{}: is a directory", d.display()))),
        None => Err(Error::NotFound(name.display().to_string())),
    }
}

/// Maps a failed `CreateProcessAsUserW` to 127/126 or a setup error.
pub fn spawn_error(e: io::Error, launch: &Launch, cwd: &std::path::Path) -> Error {
    let name = launch.path().display().to_string();
    match e.raw_os_error().map(|c| c as u32) {
        Some(2 | 3) => Error::NotFound(name),
        // ERROR_DIRECTORY: the working directory is not a folder.
        Some(267) => {
            Error::Setup { step: "change to the working directory", detail: format!(" {}", cwd.display()), source: e }
        }
        // Access denied, bad format, not a valid Win32 application, wrong machine type, etc.
        Some(5 | 11 | 191 | 192 | 193 | 216 | 1392) => Error::NotExecutable(format!("{name}: {e}")),
        _ => Error::Setup {
            step: "start the command with the restricted token",
            detail: format!(" ({name})"),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests;
