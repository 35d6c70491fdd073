//! Security identifiers in their binary form ([`Sid`], owned and aligned), their string form,
//! and account lookups (`LookupAccountNameW`, `LookupAccountSidW`). The platform-free string
//! form every decision uses is `palisade_windows_plan::sid::Sid`; [`plan_sid`] converts.

use std::io;

use windows_sys::core::PWSTR;
use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, ERROR_NONE_MAPPED};
use windows_sys::Win32::Security::Authorization::{ConvertSidToStringSidW, ConvertStringSidToSidW};
use windows_sys::Win32::Security::{
    CopySid, EqualSid, GetLengthSid, IsValidSid, LookupAccountNameW, LookupAccountSidW, PSID, SID_NAME_USE,
};

use crate::ffi::{check, from_wide_buf, from_wide_ptr, wide, LocalMem};

/// An owned security identifier in its binary form (kept in `u32`s so that it is aligned as
/// the system expects).
#[derive(Clone)]
pub struct Sid {
    buf: Vec<u32>,
}

impl Sid {
    /// Parses a string SID (`S-1-5-32-545`).
    pub fn parse(text: &str) -> io::Result<Sid> {
        let w = wide(text)?;
        let mut p: PSID = std::ptr::null_mut();
        // SAFETY: `w` is NUL-terminated; on success `p` receives a LocalAlloc'd SID, freed by
        // the guard after it is copied.
        check(unsafe { ConvertStringSidToSidW(w.as_ptr(), &mut p) })
            .map_err(|e| io::Error::new(e.kind(), format!("SID {text}: {e}")))?;
        let guard = LocalMem(p);
        // SAFETY: `p` is a valid SID that the system just made.
        let sid = unsafe { Sid::copy_from(p) };
        drop(guard);
        sid
    }

    /// Copies a SID the system handed out.
    ///
    /// # Safety
    /// `p` must point to a valid SID that stays alive for the duration of the call.
    pub unsafe fn copy_from(p: PSID) -> io::Result<Sid> {
        // SAFETY: the caller guarantees `p` is readable; IsValidSid only reads it.
        if p.is_null() || unsafe { IsValidSid(p) } == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "invalid SID"));
        }
        // SAFETY: `p` is a valid SID.
        let len = unsafe { GetLengthSid(p) };
        let mut buf = vec![0u32; (len as usize).div_ceil(4)];
        // SAFETY: `buf` holds at least `len` bytes.
        check(unsafe { CopySid(len, buf.as_mut_ptr().cast(), p) })?;
        Ok(Sid { buf })
    }

    /// The SID as the `PSID` the APIs take (they do not write through it).
    pub fn as_psid(&self) -> PSID {
        self.buf.as_ptr() as PSID
    }

    /// Its length in bytes (a valid SID is never empty, hence no `is_empty`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u32 {
        // SAFETY: `buf` holds a valid SID.
        unsafe { GetLengthSid(self.as_psid()) }
    }

    /// The string form (`S-1-5-32-545`).
    pub fn to_string_form(&self) -> String {
        let mut p: *mut u16 = std::ptr::null_mut();
        // SAFETY: `self` is a valid SID; on success `p` is a LocalAlloc'd string freed by the
        // guard.
        if unsafe { ConvertSidToStringSidW(self.as_psid(), &mut p) } == 0 {
            return "S-?".into();
        }
        let guard = LocalMem(p.cast());
        // SAFETY: the system returned a NUL-terminated string.
        let s = unsafe { from_wide_ptr(p) }.to_string_lossy().into_owned();
        drop(guard);
        s
    }
}

impl PartialEq for Sid {
    fn eq(&self, other: &Sid) -> bool {
        // SAFETY: both are valid SIDs.
        unsafe { EqualSid(self.as_psid(), other.as_psid()) != 0 }
    }
}

impl Eq for Sid {}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string_form())
    }
}
/// The string form of a binary SID the system handed out (an error if it cannot be converted).
///
/// # Safety
/// `p` must point to a valid SID.
pub unsafe fn sid_string(p: PSID) -> io::Result<String> {
    let mut s: PWSTR = std::ptr::null_mut();
    // SAFETY: the caller guarantees a valid SID; `s` receives a LocalAlloc'd string.
    check(unsafe { ConvertSidToStringSidW(p, &mut s) })?;
    let mem = LocalMem(s.cast());
    // SAFETY: `s` is the NUL-terminated string just returned.
    Ok(unsafe { from_wide_ptr(mem.0 as *const u16) }.to_string_lossy().into_owned())
}

/// The platform-free string form of a binary SID.
pub fn plan_sid(s: &Sid) -> io::Result<palisade_windows_plan::sid::Sid> {
    let text = s.to_string_form();
    palisade_windows_plan::sid::Sid::parse(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// The SID of an account or group by name; `None` when no such name exists.
pub fn lookup(name: &str) -> io::Result<Option<Sid>> {
    let w = wide(name)?;
    // In u32s so that the SID is aligned; lengths are in bytes. 68 bytes hold the largest SID.
    let mut sid = vec![0u32; 17];
    let mut sid_len = (sid.len() * 4) as u32;
    let mut dom = vec![0u16; 256];
    let mut dom_len = dom.len() as u32;
    let mut kind: SID_NAME_USE = 0;
    loop {
        // SAFETY: every buffer is as long as the length passed with it.
        let ok = unsafe {
            LookupAccountNameW(
                std::ptr::null(),
                w.as_ptr(),
                sid.as_mut_ptr().cast(),
                &mut sid_len,
                dom.as_mut_ptr(),
                &mut dom_len,
                &mut kind,
            )
        };
        if ok != 0 {
            // SAFETY: LookupAccountNameW wrote a valid SID into `sid`, alive for the copy.
            return unsafe { Sid::copy_from(sid.as_mut_ptr().cast()) }.map(Some);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error().map(|c| c as u32) {
            Some(ERROR_NONE_MAPPED) => return Ok(None),
            Some(ERROR_INSUFFICIENT_BUFFER) if sid.len() * 4 < sid_len as usize || dom.len() < dom_len as usize => {
                sid.resize((sid_len as usize).div_ceil(4).max(sid.len()), 0);
                dom.resize((dom_len as usize).max(dom.len()), 0);
                sid_len = (sid.len() * 4) as u32;
                dom_len = dom.len() as u32;
            }
            _ => return Err(e),
        }
    }
}

/// The string SID of an account or group by name; `None` when no such name exists.
pub fn lookup_account(name: &str) -> io::Result<Option<String>> {
    match lookup(name)? {
        // SAFETY: `s` holds a valid SID.
        Some(s) => unsafe { sid_string(s.as_psid()) }.map(Some),
        None => Ok(None),
    }
}

/// The SID of an account or group that must exist (its absence is an error naming it).
pub fn lookup_existing(name: &str) -> io::Result<Sid> {
    lookup(name)
        .and_then(|s| s.ok_or_else(|| io::Error::from_raw_os_error(ERROR_NONE_MAPPED as i32)))
        .map_err(|e| io::Error::new(e.kind(), format!("looking up the account {name}: {e}")))
}

/// This computer's NetBIOS name (the domain part of its local accounts' names).
pub fn computer_name() -> io::Result<String> {
    let mut buf = [0u16; 64];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` holds `len` characters.
    check(unsafe { windows_sys::Win32::System::WindowsProgramming::GetComputerNameW(buf.as_mut_ptr(), &mut len) })?;
    Ok(String::from_utf16_lossy(&buf[..len as usize]))
}

/// The SID of a *local* account or group (`COMPUTER\name`), so that a domain account of the
/// same name on a domain-joined machine is never taken for Palisade's.
pub fn lookup_local_account(name: &str) -> io::Result<Option<String>> {
    lookup_account(&format!("{}\\{name}", computer_name()?))
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
