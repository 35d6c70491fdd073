//! Thin wrappers for facts about the system: known folders, registry values, environment
//! expansion and SHA-256. Every `unsafe` block says why it is sound.

use std::ffi::c_void;
use std::io;
use std::path::PathBuf;

use windows_sys::core::{GUID, PWSTR};
use windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND;
use windows_sys::Win32::Security::Cryptography::{
    BCryptCloseAlgorithmProvider, BCryptCreateHash, BCryptDestroyHash, BCryptFinishHash, BCryptHashData,
    BCryptOpenAlgorithmProvider, BCRYPT_ALG_HANDLE, BCRYPT_HASH_HANDLE, BCRYPT_SHA256_ALGORITHM,
};
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::System::Environment::ExpandEnvironmentStringsW;
use windows_sys::Win32::System::Registry::{
    RegGetValueW, HKEY, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, RRF_NOEXPAND, RRF_RT_REG_DWORD, RRF_RT_REG_EXPAND_SZ,
    RRF_RT_REG_SZ,
};
use windows_sys::Win32::UI::Shell::SHGetKnownFolderPath;

use crate::ffi::{from_wide_ptr, wide, win32};

/// A predefined registry root (a raw `HKEY` would let a caller pass any pointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegRoot {
    LocalMachine,
    CurrentUser,
}

impl RegRoot {
    fn hkey(self) -> HKEY {
        match self {
            RegRoot::LocalMachine => HKEY_LOCAL_MACHINE,
            RegRoot::CurrentUser => HKEY_CURRENT_USER,
        }
    }
}

/// A string registry value (`REG_SZ` or `REG_EXPAND_SZ`, unexpanded); `None` when absent.
pub fn reg_string(root: RegRoot, subkey: &str, value: &str) -> io::Result<Option<String>> {
    let root = root.hkey();
    let (k, v) = (wide(subkey)?, wide(value)?);
    let mut len = 0u32;
    let flags = RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND;
    // SAFETY: a null data pointer asks for the size only.
    let rc = unsafe {
        RegGetValueW(root, k.as_ptr(), v.as_ptr(), flags, std::ptr::null_mut(), std::ptr::null_mut(), &mut len)
    };
    if rc == ERROR_FILE_NOT_FOUND {
        return Ok(None);
    }
    win32(rc)?;
    let mut buf = vec![0u16; len as usize / 2 + 1];
    let mut bytes = (buf.len() * 2) as u32;
    // SAFETY: `buf` holds `bytes` bytes.
    win32(unsafe {
        RegGetValueW(
            root,
            k.as_ptr(),
            v.as_ptr(),
            flags,
            std::ptr::null_mut(),
            buf.as_mut_ptr() as *mut c_void,
            &mut bytes,
        )
    })?;
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Ok(Some(String::from_utf16_lossy(&buf[..end])))
}

/// A `REG_DWORD` value; `None` when absent (or the key is absent).
pub fn reg_dword(root: RegRoot, subkey: &str, value: &str) -> io::Result<Option<u32>> {
    let root = root.hkey();
    let (k, v) = (wide(subkey)?, wide(value)?);
    let mut data = 0u32;
    let mut len = 4u32;
    // SAFETY: `data` is 4 bytes, as `len` says.
    let rc = unsafe {
        RegGetValueW(
            root,
            k.as_ptr(),
            v.as_ptr(),
            RRF_RT_REG_DWORD,
            std::ptr::null_mut(),
            &mut data as *mut u32 as *mut c_void,
            &mut len,
        )
    };
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

/// A known folder's path, when the system knows it and it is absolute.
pub fn known_folder_path(id: &GUID) -> Option<PathBuf> {
    known_folder(id).ok().filter(|p| p.is_absolute())
}

/// Lowercase hex SHA-256 of `data` (BCrypt).
pub fn sha256_hex(data: &[u8]) -> io::Result<String> {
    let nt =
        |status: i32| if status >= 0 { Ok(()) } else { Err(io::Error::other(format!("BCrypt status {status:#x}"))) };
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
