//! Thin wrappers over the Win32 primitives every other module shares: wide strings, error
//! codes, memory the system allocates, the system RNG and Wine detection. Each `unsafe` block
//! says why it is sound.

use std::ffi::{c_void, OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};

use windows_sys::Win32::Foundation::{LocalFree, HLOCAL, WIN32_ERROR};
use windows_sys::Win32::Security::Cryptography::{BCryptGenRandom, BCRYPT_USE_SYSTEM_PREFERRED_RNG};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

/// `s` as a NUL-terminated UTF-16 string; an interior NUL is an error (Windows would cut the
/// string there).
pub fn wide(s: impl AsRef<OsStr>) -> io::Result<Vec<u16>> {
    let s = s.as_ref();
    let mut v: Vec<u16> = s.encode_wide().collect();
    if v.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{s:?} contains a NUL character")));
    }
    v.push(0);
    Ok(v)
}

/// [`wide`] for a secret (a password): an error never quotes it.
pub fn wide_secret(s: &str) -> io::Result<Vec<u16>> {
    wide(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a secret contains a NUL character"))
}

/// A NUL-terminated UTF-16 string the system returned.
///
/// # Safety
/// `p` must be null or point to a readable NUL-terminated UTF-16 string.
pub unsafe fn from_wide_ptr(p: *const u16) -> OsString {
    if p.is_null() {
        return OsString::new();
    }
    let mut len = 0usize;
    // SAFETY: the caller guarantees a NUL terminator, so every index up to it is readable.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` elements were just read one by one.
    OsString::from_wide(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A UTF-16 buffer the system filled (up to its first NUL) as an `OsString`.
pub fn from_wide_buf(buf: &[u16]) -> OsString {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    OsString::from_wide(&buf[..end])
}

/// The calling thread's last Win32 error.
pub fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// `Ok` for a `BOOL` that says success, the last error otherwise.
pub fn check(ok: windows_sys::core::BOOL) -> io::Result<()> {
    if ok != 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

/// `Ok` for `ERROR_SUCCESS`, the error otherwise (for APIs that return their error code).
pub fn win32(code: WIN32_ERROR) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code as i32))
    }
}

/// Memory the system allocated with `LocalAlloc` (security descriptors, ACLs, SID strings);
/// freed on drop.
pub struct LocalMem(pub *mut c_void);

impl LocalMem {
    pub fn null() -> LocalMem {
        LocalMem(std::ptr::null_mut())
    }
}

impl Drop for LocalMem {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from an API documented to allocate with LocalAlloc, and
            // is freed exactly once (here).
            unsafe { LocalFree(self.0 as HLOCAL) };
        }
    }
}

/// Fills `buf` from the system's preferred cryptographic random number generator.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    for chunk in buf.chunks_mut(u32::MAX as usize) {
        // SAFETY: `chunk` is writable for its whole length; a null algorithm handle is allowed
        // with BCRYPT_USE_SYSTEM_PREFERRED_RNG.
        let status = unsafe {
            BCryptGenRandom(
                std::ptr::null_mut(),
                chunk.as_mut_ptr(),
                chunk.len() as u32,
                BCRYPT_USE_SYSTEM_PREFERRED_RNG,
            )
        };
        if status < 0 {
            return Err(io::Error::other(format!("BCryptGenRandom failed with NTSTATUS {:#x}", status as u32)));
        }
    }
    Ok(())
}

/// 16 random bytes (for a synthetic SID or a folder name).
pub fn random16() -> io::Result<[u8; 16]> {
    let mut b = [0u8; 16];
    random_bytes(&mut b)?;
    Ok(b)
}

/// Wine's version when running under Wine (its ntdll exports `wine_get_version`), which accepts
/// the security APIs but enforces none of them.
pub fn wine_version() -> Option<String> {
    let ntdll = wide("ntdll.dll").ok()?;
    // SAFETY: ntdll is loaded in every process; GetModuleHandleW does not take a reference.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return None;
    }
    // SAFETY: the name is NUL-terminated ASCII.
    let f = unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine documents `const char *wine_get_version(void)`, returning a static string.
    let get: unsafe extern "C" fn() -> *const std::ffi::c_char = unsafe { std::mem::transmute(f) };
    // SAFETY: see above; the string is static and NUL-terminated.
    let p = unsafe { get() };
    if p.is_null() {
        return Some("unknown".into());
    }
    // SAFETY: a NUL-terminated static string.
    Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}
