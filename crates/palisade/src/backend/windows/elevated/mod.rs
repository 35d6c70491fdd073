//! The elevated Windows mode (issue 4): commands run as a separate local sandbox account that
//! `palisade setup --elevated` created once, through `palisade-runner` started with
//! `CreateProcessWithLogonW`. The decisions live in `palisade-windows-elevated`; this module
//! carries them out for the CLI (never elevated, `run.rs`) and for the runner (`runner.rs`).

// The storing half is for `palisade setup --elevated`, which is not wired up in this crate yet.
#[allow(dead_code)]
pub mod credentials;
pub mod check;
mod harden;
pub mod ownership;
pub mod pipe;
pub mod run;
pub mod runner;
pub mod setup;
mod terminal;

use std::io;
use std::path::PathBuf;

use windows_sys::Win32::Security::{LookupAccountNameW, LookupAccountSidW, SID_NAME_USE};
use windows_sys::Win32::UI::Shell::FOLDERID_ProgramData;

use super::ffi::{check, from_wide_buf, wide, Sid};
use super::state::known_folder;

/// `%ProgramData%\Palisade`: setup's folder (marker, runner, git configuration).
pub fn program_data_dir() -> io::Result<PathBuf> {
    known_folder(&FOLDERID_ProgramData)
        .or_else(|| std::env::var_os("ProgramData").map(PathBuf::from).filter(|p| p.is_absolute()))
        .map(|p| p.join("Palisade"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "neither the ProgramData known folder nor %ProgramData% is set"))
}

/// The SID of a local account or group.
pub fn lookup_account(name: &str) -> io::Result<Sid> {
    let name_w = wide(name)?;
    let mut sid = vec![0u32; 32];
    let mut sid_len = (sid.len() * 4) as u32;
    let mut domain = vec![0u16; 256];
    let mut domain_len = domain.len() as u32;
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: every buffer's length is passed; the SID buffer is 128 bytes, more than the
    // largest SID (68 bytes).
    check(unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            name_w.as_ptr(),
            sid.as_mut_ptr().cast(),
            &mut sid_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    })
    .map_err(|e| io::Error::new(e.kind(), format!("looking up the account {name}: {e}")))?;
    // SAFETY: the call wrote a valid SID into `sid`, alive for the copy.
    unsafe { Sid::copy_from(sid.as_mut_ptr().cast()) }
}

/// The account name (without domain) a SID belongs to.
pub fn account_name(sid: &Sid) -> io::Result<String> {
    let mut name = vec![0u16; 256];
    let mut name_len = name.len() as u32;
    let mut domain = vec![0u16; 256];
    let mut domain_len = domain.len() as u32;
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: a valid SID; every buffer's length is passed.
    check(unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            sid.as_psid(),
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    })?;
    Ok(from_wide_buf(&name).to_string_lossy().into_owned())
}

/// A protocol SID from a binary one.
pub fn protocol_sid(s: &Sid) -> io::Result<palisade_windows_elevated::Sid> {
    let text = s.to_string_form();
    palisade_windows_elevated::Sid::parse(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}
