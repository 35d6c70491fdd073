//! `palisade-runner` locks itself away from the command it starts (which runs as the same
//! account): its process, threads and token get DACLs that leave the account only
//! `SYNCHRONIZE` (`runner_seam::RUNNER_SELF_SDDL` says why), and its default DACL makes every
//! object it creates afterwards just as closed.

use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle};

use palisade_windows_elevated::runner_seam::{RUNNER_DEFAULT_DACL_SDDL, RUNNER_SELF_SDDL, RUNNER_TOKEN_SDDL};
use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SetSecurityInfo, SDDL_REVISION_1, SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    GetSecurityDescriptorDacl, ACL, DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR, TOKEN_ADJUST_DEFAULT, TOKEN_QUERY,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetCurrentProcessId, OpenProcessToken, OpenThread};

use palisade_win32::ffi::{check, wide, LocalMem};

const WRITE_DAC: u32 = 0x0004_0000;

/// A security descriptor parsed from SDDL, and its DACL.
struct Descriptor {
    _mem: LocalMem,
    dacl: *mut ACL,
}

fn descriptor(sddl: &str) -> io::Result<Descriptor> {
    let w = wide(sddl)?;
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `w` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor owned by `_mem`.
    check(unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(w.as_ptr(), SDDL_REVISION_1, &mut sd, std::ptr::null_mut())
    })?;
    let mem = LocalMem(sd);
    let (mut present, mut defaulted) = (0, 0);
    let mut dacl: *mut ACL = std::ptr::null_mut();
    // SAFETY: `sd` is a valid descriptor; the DACL pointer points into it (kept alive by `mem`).
    check(unsafe { GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) })?;
    if present == 0 || dacl.is_null() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{sddl} has no DACL")));
    }
    Ok(Descriptor { _mem: mem, dacl })
}

fn set_dacl(handle: HANDLE, d: &Descriptor) -> io::Result<()> {
    // SAFETY: a valid handle opened with WRITE_DAC (or a pseudo-handle); the DACL is alive.
    let rc = unsafe {
        SetSecurityInfo(
            handle,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            d.dacl,
            std::ptr::null(),
        )
    };
    palisade_win32::ffi::win32(rc)
}

/// Applies the DACLs. Called first thing, while the runner has no thread of its own making.
pub fn harden_self() -> io::Result<()> {
    let own = descriptor(RUNNER_SELF_SDDL)?;
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of this process; `token` receives a new handle we own.
    check(unsafe { OpenProcessToken(GetCurrentProcess(), WRITE_DAC | TOKEN_ADJUST_DEFAULT | TOKEN_QUERY, &mut token) })
        .map_err(|e| io::Error::new(e.kind(), format!("opening the runner's token: {e}")))?;
    // SAFETY: a fresh handle owned by nobody else.
    let token = unsafe { OwnedHandle::from_raw_handle(token as _) };

    // Objects made from now on.
    let default = descriptor(RUNNER_DEFAULT_DACL_SDDL)?;
    // SAFETY: `default.dacl` points into `default`'s security descriptor, alive for the call.
    unsafe { palisade_win32::token::set_default_dacl(token.as_handle(), default.dacl) }
        .map_err(|e| io::Error::new(e.kind(), format!("setting the runner's default DACL: {e}")))?;
    set_dacl(token.as_raw_handle() as HANDLE, &descriptor(RUNNER_TOKEN_SDDL)?)
        .map_err(|e| io::Error::new(e.kind(), format!("protecting the runner's token: {e}")))?;
    // SAFETY: the pseudo-handle of this process has every right, WRITE_DAC included.
    set_dacl(unsafe { GetCurrentProcess() }, &own)
        .map_err(|e| io::Error::new(e.kind(), format!("protecting the runner's process: {e}")))?;

    // Threads that exist already (the main thread, the loader's pool).
    // SAFETY: a snapshot of every thread; the handle is owned below.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snap == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle owned by nobody else.
    let snap = unsafe { OwnedHandle::from_raw_handle(snap as _) };
    // SAFETY: an all-zero THREADENTRY32 with its size set is what Thread32First expects.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
    // SAFETY: no memory is involved.
    let me = unsafe { GetCurrentProcessId() };
    // SAFETY: `entry` is valid output space of the size given.
    let mut more = unsafe { Thread32First(snap.as_raw_handle() as HANDLE, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == me {
            // SAFETY: opens a thread of this process; the handle is owned below.
            let h = unsafe { OpenThread(WRITE_DAC, 0, entry.th32ThreadID) };
            if !h.is_null() {
                // SAFETY: a fresh handle owned by nobody else.
                let t = unsafe { OwnedHandle::from_raw_handle(h as _) };
                set_dacl(t.as_raw_handle() as HANDLE, &own).map_err(|e| {
                    io::Error::new(e.kind(), format!("protecting the runner's thread {}: {e}", entry.th32ThreadID))
                })?;
            }
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snap.as_raw_handle() as HANDLE, &mut entry) } != 0;
    }
    Ok(())
}
