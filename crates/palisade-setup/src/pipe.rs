//! The client end of the CLI's pipe, and who is at the other end.

use std::fs::File;
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Security::{GetTokenInformation, TokenUser, TOKEN_QUERY, TOKEN_USER};
use windows_sys::Win32::Storage::FileSystem::SECURITY_IDENTIFICATION;
use windows_sys::Win32::System::Pipes::GetNamedPipeServerProcessId;
use windows_sys::Win32::System::Threading::{OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION};

use palisade_win32::ffi::check;
use palisade_win32::sid::sid_string;

/// The only pipe names setup connects to.
pub const PIPE_PREFIX: &str = r"\\.\pipe\palisade-setup-";

/// Checks a `--pipe` argument: Palisade's prefix, then 1 to 64 of `[A-Za-z0-9-]` (the CLI uses
/// random hex), so that setup cannot be pointed at another program's pipe or a file.
pub fn valid_pipe_name(name: &str) -> bool {
    name.strip_prefix(PIPE_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Opens the pipe with identification-level impersonation only, so the (unelevated) server can
/// learn who setup is but never act as it.
pub fn connect(name: &str) -> io::Result<File> {
    std::fs::OpenOptions::new().read(true).write(true).security_qos_flags(SECURITY_IDENTIFICATION).open(name)
}

struct Handle(HANDLE);
impl Drop for Handle {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a handle this module opened, closed once.
            unsafe { CloseHandle(self.0) };
        }
    }
}

/// The process id of the pipe's server and the SID of its token's user.
pub fn server_user(pipe: &File) -> io::Result<(u32, String)> {
    let mut pid = 0u32;
    // SAFETY: `pipe` is an open pipe handle.
    check(unsafe { GetNamedPipeServerProcessId(pipe.as_raw_handle() as HANDLE, &mut pid) })?;
    // SAFETY: plain call; the handle is closed by `Handle`.
    let process = Handle(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) });
    if process.0.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut token = Handle(std::ptr::null_mut());
    // SAFETY: valid process handle; `token.0` receives a handle closed by `Handle`.
    check(unsafe { OpenProcessToken(process.0, TOKEN_QUERY, &mut token.0) })?;
    let mut len = 0u32;
    // SAFETY: a null buffer asks for the size.
    unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut len) };
    // u64 elements keep the buffer aligned for TOKEN_USER.
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    // SAFETY: `buf` holds at least `len` bytes.
    check(unsafe {
        GetTokenInformation(token.0, TokenUser, buf.as_mut_ptr() as *mut _, (buf.len() * 8) as u32, &mut len)
    })?;
    // SAFETY: the buffer now starts with a TOKEN_USER whose SID points inside it.
    let sid = unsafe { sid_string((*(buf.as_ptr() as *const TOKEN_USER)).User.Sid)? };
    Ok((pid, sid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_names() {
        assert!(valid_pipe_name(r"\\.\pipe\palisade-setup-0123abcd"));
        assert!(!valid_pipe_name(r"\\.\pipe\palisade-setup-"));
        assert!(!valid_pipe_name(r"\\.\pipe\other"));
        assert!(!valid_pipe_name(r"\\server\pipe\palisade-setup-1"));
        assert!(!valid_pipe_name(r"\\.\pipe\palisade-setup-..\x"));
        assert!(!valid_pipe_name(r"C:\palisade-setup-1"));
        assert!(!valid_pipe_name(&format!(r"\\.\pipe\palisade-setup-{}", "a".repeat(65))));
    }
}
