//! Thin FFI wrappers for the setup binary: wide strings, SIDs, system-allocated memory,
//! security descriptors, registry values, known folders and SHA-256. Every `unsafe` block says
//! why it is sound; callers above this module use only safe Rust.

use std::ffi::{c_void, OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use palisade_windows_elevated::ace::RawAce;
use windows_sys::core::{GUID, PWSTR};
use windows_sys::Win32::Foundation::{LocalFree, ERROR_FILE_NOT_FOUND, ERROR_INSUFFICIENT_BUFFER, HLOCAL};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, ConvertStringSidToSidW, GetNamedSecurityInfoW,
    SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::Cryptography::{
    BCryptCloseAlgorithmProvider, BCryptCreateHash, BCryptDestroyHash, BCryptFinishHash, BCryptHashData, BCryptOpenAlgorithmProvider,
    BCRYPT_ALG_HANDLE, BCRYPT_HASH_HANDLE, BCRYPT_SHA256_ALGORITHM,
};
use windows_sys::Win32::Security::{
    GetAce, GetAclInformation, GetSecurityDescriptorControl, LookupAccountNameW, AclSizeInformation, ACCESS_ALLOWED_ACE, ACL,
    ACL_SIZE_INFORMATION, DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SE_DACL_PROTECTED,
    SID_NAME_USE,
};
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::System::Environment::ExpandEnvironmentStringsW;
use windows_sys::Win32::System::Registry::{RegGetValueW, HKEY, RRF_RT_REG_DWORD, RRF_RT_REG_EXPAND_SZ, RRF_RT_REG_SZ, RRF_NOEXPAND};
use windows_sys::Win32::UI::Shell::SHGetKnownFolderPath;

/// `s` as a NUL-terminated UTF-16 string; an interior NUL is an error.
pub fn wide(s: impl AsRef<OsStr>) -> io::Result<Vec<u16>> {
    let mut v: Vec<u16> = s.as_ref().encode_wide().collect();
    if v.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "string contains a NUL character"));
    }
    v.push(0);
    Ok(v)
}

/// A NUL-terminated UTF-16 string the system returned.
///
/// # Safety
/// `p` must be null or point to a readable NUL-terminated UTF-16 string.
pub unsafe fn from_wide_ptr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0usize;
    // SAFETY: the caller guarantees a terminator, so every index up to it is readable.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` elements were just read.
    OsString::from_wide(unsafe { std::slice::from_raw_parts(p, len) }).to_string_lossy().into_owned()
}

/// `Err` with the Win32 error for a nonzero status code.
pub fn win32(code: u32) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code as i32))
    }
}

/// `Err` with the last error for a failed `BOOL`.
pub fn check(ok: windows_sys::core::BOOL) -> io::Result<()> {
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Memory allocated with `LocalAlloc` by the system; freed on drop.
pub struct LocalMem(pub *mut c_void);

impl Drop for LocalMem {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a system call documented to allocate with
            // LocalAlloc and is freed once.
            unsafe { LocalFree(self.0 as HLOCAL) };
        }
    }
}

/// A binary SID owned by Rust.
pub struct OwnedSid(Vec<u8>);

impl OwnedSid {
    pub fn parse(text: &str) -> io::Result<OwnedSid> {
        let w = wide(text)?;
        let mut p: PSID = std::ptr::null_mut();
        // SAFETY: `w` is NUL-terminated; `p` receives a LocalAlloc'd SID freed below.
        check(unsafe { ConvertStringSidToSidW(w.as_ptr(), &mut p) })?;
        let mem = LocalMem(p);
        // SAFETY: `p` is a valid SID returned just now.
        let len = unsafe { windows_sys::Win32::Security::GetLengthSid(p) } as usize;
        // SAFETY: the SID is `len` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(mem.0 as *const u8, len) }.to_vec();
        Ok(OwnedSid(bytes))
    }

    pub fn as_psid(&self) -> PSID {
        self.0.as_ptr() as PSID
    }
}

/// The string form of a binary SID.
///
/// # Safety
/// `p` must point to a valid SID.
pub unsafe fn sid_string(p: PSID) -> io::Result<String> {
    let mut s: PWSTR = std::ptr::null_mut();
    // SAFETY: the caller guarantees a valid SID; `s` receives a LocalAlloc'd string.
    check(unsafe { ConvertSidToStringSidW(p, &mut s) })?;
    let mem = LocalMem(s as *mut c_void);
    // SAFETY: `s` is the NUL-terminated string just returned.
    Ok(unsafe { from_wide_ptr(mem.0 as *const u16) })
}

/// The SID of a local account or group by name; `None` when no such name exists.
pub fn lookup_account(name: &str) -> io::Result<Option<String>> {
    let w = wide(name)?;
    let mut sid = vec![0u8; 68];
    let mut sid_len = sid.len() as u32;
    let mut dom = vec![0u16; 256];
    let mut dom_len = dom.len() as u32;
    let mut use_: SID_NAME_USE = 0;
    loop {
        // SAFETY: every buffer is as long as the length passed with it.
        let ok = unsafe {
            LookupAccountNameW(std::ptr::null(), w.as_ptr(), sid.as_mut_ptr() as PSID, &mut sid_len, dom.as_mut_ptr(), &mut dom_len, &mut use_)
        };
        if ok != 0 {
            // SAFETY: LookupAccountNameW filled a valid SID.
            return unsafe { sid_string(sid.as_mut_ptr() as PSID) }.map(Some);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error().map(|c| c as u32) {
            Some(windows_sys::Win32::Foundation::ERROR_NONE_MAPPED) => return Ok(None),
            Some(ERROR_INSUFFICIENT_BUFFER) if sid.len() < sid_len as usize || dom.len() < dom_len as usize => {
                sid.resize(sid_len.max(sid.len() as u32) as usize, 0);
                dom.resize(dom_len.max(dom.len() as u32) as usize, 0);
            }
            _ => return Err(e),
        }
    }
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

/// Owner, protection and ACEs of a file or folder.
#[derive(Clone, Debug)]
pub struct Security {
    pub owner: String,
    pub protected: bool,
    pub aces: Vec<RawAce>,
}

/// Reads the owner and DACL of `path`; `None` when it does not exist.
pub fn file_security(path: &Path) -> io::Result<Option<Security>> {
    let w = wide(path)?;
    let mut owner: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: out-pointers are valid; `sd` is LocalAlloc'd and owns `owner` and `dacl`.
    let rc = unsafe {
        GetNamedSecurityInfoW(
            w.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if rc == ERROR_FILE_NOT_FOUND || rc == windows_sys::Win32::Foundation::ERROR_PATH_NOT_FOUND {
        return Ok(None);
    }
    win32(rc)?;
    let _sd = LocalMem(sd);
    let mut control = 0u16;
    let mut rev = 0u32;
    // SAFETY: `sd` is the descriptor just returned.
    check(unsafe { GetSecurityDescriptorControl(sd, &mut control, &mut rev) })?;
    let owner = if owner.is_null() {
        String::new()
    } else {
        // SAFETY: `owner` points into `sd`, which lives until the end of this function.
        unsafe { sid_string(owner)? }
    };
    // SAFETY: `dacl` is null or points into `sd`.
    let aces = unsafe { dacl_aces(dacl)? };
    Ok(Some(Security { owner, protected: control & SE_DACL_PROTECTED != 0, aces }))
}

/// The ACEs of a DACL (allow and deny ACEs; other kinds are skipped).
///
/// # Safety
/// `acl` must be null or point to a valid ACL that outlives the call.
pub unsafe fn dacl_aces(acl: *const ACL) -> io::Result<Vec<RawAce>> {
    if acl.is_null() {
        return Ok(Vec::new());
    }
    let mut info = ACL_SIZE_INFORMATION { AceCount: 0, AclBytesInUse: 0, AclBytesFree: 0 };
    // SAFETY: `info` is the size the class names; `acl` is valid per the caller.
    check(unsafe { GetAclInformation(acl, &mut info as *mut _ as *mut c_void, std::mem::size_of::<ACL_SIZE_INFORMATION>() as u32, AclSizeInformation) })?;
    let mut out = Vec::new();
    for i in 0..info.AceCount {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: `i` is below the ACE count.
        check(unsafe { GetAce(acl, i, &mut p) })?;
        let ace = p as *const ACCESS_ALLOWED_ACE;
        // SAFETY: every ACE starts with a header; allow and deny ACEs (types 0 and 1) share the
        // ACCESS_ALLOWED_ACE layout with the SID at `SidStart`.
        let (t, flags, mask) = unsafe { ((*ace).Header.AceType, (*ace).Header.AceFlags, (*ace).Mask) };
        if t > 1 {
            continue;
        }
        // SAFETY: as above, the SID starts at `SidStart` inside the ACE.
        let sid = unsafe { sid_string(std::ptr::addr_of!((*ace).SidStart) as PSID)? };
        out.push(RawAce { ace_type: t, flags, mask, sid });
    }
    Ok(out)
}

/// A security descriptor built from SDDL; freed on drop.
pub struct Descriptor(LocalMem);

impl Descriptor {
    pub fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
        let w = wide(sddl)?;
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `w` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor.
        check(unsafe { ConvertStringSecurityDescriptorToSecurityDescriptorW(w.as_ptr(), SDDL_REVISION_1, &mut sd, std::ptr::null_mut()) })?;
        Ok(Descriptor(LocalMem(sd)))
    }

    pub fn as_ptr(&self) -> PSECURITY_DESCRIPTOR {
        self.0 .0
    }
}

/// A string registry value (`REG_SZ` or `REG_EXPAND_SZ`, unexpanded); `None` when absent.
pub fn reg_string(root: HKEY, subkey: &str, value: &str) -> io::Result<Option<String>> {
    let (k, v) = (wide(subkey)?, wide(value)?);
    let mut len = 0u32;
    let flags = RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND;
    // SAFETY: a null data pointer asks for the size only.
    let rc = unsafe { RegGetValueW(root, k.as_ptr(), v.as_ptr(), flags, std::ptr::null_mut(), std::ptr::null_mut(), &mut len) };
    if rc == ERROR_FILE_NOT_FOUND {
        return Ok(None);
    }
    win32(rc)?;
    let mut buf = vec![0u16; len as usize / 2 + 1];
    let mut bytes = (buf.len() * 2) as u32;
    // SAFETY: `buf` holds `bytes` bytes.
    win32(unsafe { RegGetValueW(root, k.as_ptr(), v.as_ptr(), flags, std::ptr::null_mut(), buf.as_mut_ptr() as *mut c_void, &mut bytes) })?;
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Ok(Some(String::from_utf16_lossy(&buf[..end])))
}

/// A `REG_DWORD` value; `None` when absent (or the key is absent).
pub fn reg_dword(root: HKEY, subkey: &str, value: &str) -> io::Result<Option<u32>> {
    let (k, v) = (wide(subkey)?, wide(value)?);
    let mut data = 0u32;
    let mut len = 4u32;
    // SAFETY: `data` is 4 bytes, as `len` says.
    let rc = unsafe { RegGetValueW(root, k.as_ptr(), v.as_ptr(), RRF_RT_REG_DWORD, std::ptr::null_mut(), &mut data as *mut u32 as *mut c_void, &mut len) };
    if rc == ERROR_FILE_NOT_FOUND {
        return Ok(None);
    }
    win32(rc)?;
    Ok(Some(data))
}

/// `%VAR%` references expanded.
pub fn expand_env(s: &str) -> io::Result<String> {
    let w = wide(s)?;
    // SAFETY: a null destination asks for the size.
    let n = unsafe { ExpandEnvironmentStringsW(w.as_ptr(), std::ptr::null_mut(), 0) };
    if n == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u16; n as usize];
    // SAFETY: `buf` holds `n` characters.
    let m = unsafe { ExpandEnvironmentStringsW(w.as_ptr(), buf.as_mut_ptr(), n) };
    if m == 0 || m > n {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Ok(String::from_utf16_lossy(&buf[..end]))
}

/// A known folder's path (as the calling process sees it).
pub fn known_folder(id: &GUID) -> io::Result<PathBuf> {
    let mut p: PWSTR = std::ptr::null_mut();
    // SAFETY: `id` is a valid GUID; `p` receives a CoTaskMemAlloc'd string freed below.
    let hr = unsafe { SHGetKnownFolderPath(id, 0, std::ptr::null_mut(), &mut p) };
    // SAFETY: `p` is null or the string just returned.
    let s = unsafe { from_wide_ptr(p) };
    // SAFETY: freeing what SHGetKnownFolderPath allocated (null is allowed).
    unsafe { CoTaskMemFree(p as *const c_void) };
    if hr < 0 {
        return Err(io::Error::from_raw_os_error(hr));
    }
    Ok(PathBuf::from(s))
}

/// Lowercase hex SHA-256 of `data` (BCrypt).
pub fn sha256_hex(data: &[u8]) -> io::Result<String> {
    let nt = |status: i32| if status >= 0 { Ok(()) } else { Err(io::Error::other(format!("BCrypt status {status:#x}"))) };
    let mut alg: BCRYPT_ALG_HANDLE = std::ptr::null_mut();
    // SAFETY: `alg` receives a provider handle closed below.
    nt(unsafe { BCryptOpenAlgorithmProvider(&mut alg, BCRYPT_SHA256_ALGORITHM, std::ptr::null(), 0) })?;
    let mut hash: BCRYPT_HASH_HANDLE = std::ptr::null_mut();
    let mut out = [0u8; 32];
    let r = (|| {
        // SAFETY: the provider manages the hash object (null buffer); `hash` is destroyed below.
        nt(unsafe { BCryptCreateHash(alg, &mut hash, std::ptr::null_mut(), 0, std::ptr::null(), 0, 0) })?;
        for chunk in data.chunks(1 << 30) {
            // SAFETY: `chunk` is readable for its length.
            nt(unsafe { BCryptHashData(hash, chunk.as_ptr(), chunk.len() as u32, 0) })?;
        }
        // SAFETY: `out` is the 32 bytes SHA-256 produces.
        nt(unsafe { BCryptFinishHash(hash, out.as_mut_ptr(), 32, 0) })
    })();
    // SAFETY: handles opened above, each released once.
    unsafe {
        if !hash.is_null() {
            BCryptDestroyHash(hash);
        }
        BCryptCloseAlgorithmProvider(alg, 0);
    }
    r?;
    Ok(out.iter().map(|b| format!("{b:02x}")).collect())
}
