//! The sandbox accounts' passwords, kept by the CLI (never elevated) encrypted with DPAPI for
//! the installing user, in `%LOCALAPPDATA%\Palisade\credentials\<PalisadeOffline|PalisadeOnline|PalisadeProxied>.dpapi` (the path `setup_plan::credential_path` names in the records).
//!
//! `palisade setup --elevated` generates a password per account, stores it *pending*
//! (`<account>.dpapi.pending`), hands it to the elevated setup over its pipe, and commits the pending
//! files (a rename over the old ones) only after setup reported success; a failed setup discards
//! them, so the stored password always is the one the account has. `palisade run` decrypts the
//! committed one to start the runner with `CreateProcessWithLogonW`.
//!
//! DPAPI (`CryptProtectData` without `CRYPTPROTECT_LOCAL_MACHINE`) ties the blob to the user's
//! logon secret: another account, the sandbox accounts included, cannot decrypt it. Optional
//! entropy names the purpose, so a blob taken from another program's store is not accepted here.

use std::fs;
use std::io;
use std::path::PathBuf;

use palisade_windows_elevated::facts::SandboxUser;
use palisade_windows_elevated::password::Password;
use windows_sys::Win32::Foundation::{LocalFree, HLOCAL};
use windows_sys::Win32::Security::Cryptography::{
    CryptProtectData, CryptUnprotectData, CRYPTPROTECT_UI_FORBIDDEN, CRYPT_INTEGER_BLOB,
};

use crate::backend::windows::state::state_dir;
use crate::error::Error;

/// DPAPI's optional entropy: the purpose and format version of the blob.
const ENTROPY: &[u8] = b"palisade sandbox account password v1";

const PENDING: &str = "pending";

/// `%LOCALAPPDATA%\Palisade\credentials`.
pub fn credentials_dir() -> Result<PathBuf, Error> {
    Ok(state_dir()?.join("credentials"))
}

/// Where the committed password of `user` is kept.
pub fn credential_path(user: SandboxUser) -> Result<PathBuf, Error> {
    Ok(credentials_dir()?.join(format!("{}.dpapi", user.account_name())))
}

fn pending_path(user: SandboxUser) -> Result<PathBuf, Error> {
    Ok(credentials_dir()?.join(format!("{}.dpapi.{PENDING}", user.account_name())))
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// Encrypts `password` for the current user and stores it as `user`'s pending credential.
pub fn store_pending(user: SandboxUser, password: &Password) -> Result<(), Error> {
    let dir = credentials_dir()?;
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let blob = protect(password.expose().as_bytes())
        .map_err(io_err(format!("encrypting the password of {} with DPAPI", user.account_name())))?;
    let path = pending_path(user)?;
    fs::write(&path, blob).map_err(io_err(format!("writing {}", path.display())))
}

/// Makes every pending credential the committed one (after setup succeeded).
pub fn commit_pending() -> Result<(), Error> {
    for user in SandboxUser::ALL {
        let pending = pending_path(user)?;
        if pending.exists() {
            let committed = credential_path(user)?;
            // `fs::rename` replaces an existing target on Windows (MoveFileEx REPLACE_EXISTING).
            fs::rename(&pending, &committed).map_err(io_err(format!(
                "moving {} to {}",
                pending.display(),
                committed.display()
            )))?;
        }
    }
    Ok(())
}

/// Forgets pending credentials (after setup failed or was cancelled).
pub fn discard_pending() -> Result<(), Error> {
    for user in SandboxUser::ALL {
        remove_if_present(&pending_path(user)?)?;
    }
    Ok(())
}

/// Deletes every stored credential, pending or committed (the last step of uninstall).
pub fn remove_all() -> Result<(), Error> {
    for user in SandboxUser::ALL {
        remove_if_present(&pending_path(user)?)?;
        remove_if_present(&credential_path(user)?)?;
    }
    let dir = credentials_dir()?;
    // Only if empty: a file we did not write stays, with the folder.
    let _ = fs::remove_dir(&dir);
    Ok(())
}

fn remove_if_present(path: &std::path::Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io { context: format!("deleting {}", path.display()), source: e }),
    }
}

/// Why a stored password could not be used.
#[derive(Debug)]
pub enum LoadError {
    /// No credential file: setup has not run (or was undone).
    Missing(PathBuf),
    /// The file is there but DPAPI refused it (another user's, or damaged).
    Undecryptable(PathBuf, io::Error),
    /// It decrypted to something that is not a password we generate.
    Invalid(PathBuf, String),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Missing(p) => write!(f, "{}: no stored password (run `palisade setup --elevated`)", p.display()),
            LoadError::Undecryptable(p, e) => write!(
                f,
                "{}: DPAPI cannot decrypt it for this user ({e}); run `palisade setup --elevated` again",
                p.display()
            ),
            LoadError::Invalid(p, why) => write!(f, "{}: {why}; run `palisade setup --elevated` again", p.display()),
            LoadError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for LoadError {}

/// Decrypts the committed password of `user`.
pub fn load(user: SandboxUser) -> Result<Password, LoadError> {
    let path = credential_path(user).map_err(|e| LoadError::Io(PathBuf::new(), io::Error::other(e.to_string())))?;
    let blob = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing(path)),
        Err(e) => return Err(LoadError::Io(path, e)),
    };
    let mut clear = unprotect(&blob).map_err(|e| LoadError::Undecryptable(path.clone(), e))?;
    let text = String::from_utf8(std::mem::take(&mut clear))
        .map_err(|_| LoadError::Invalid(path.clone(), "the stored password is not UTF-8".into()))?;
    Password::new(text, user.account_name()).map_err(|e| LoadError::Invalid(path, e.to_string()))
}

fn blob_of(data: &[u8]) -> CRYPT_INTEGER_BLOB {
    CRYPT_INTEGER_BLOB { cbData: data.len() as u32, pbData: data.as_ptr() as *mut u8 }
}

/// Copies a blob DPAPI allocated and frees it.
///
/// # Safety
/// `out` must have been filled by a successful `CryptProtectData`/`CryptUnprotectData`.
unsafe fn take_blob(out: CRYPT_INTEGER_BLOB) -> Vec<u8> {
    // SAFETY: DPAPI returned `cbData` readable bytes at `pbData`.
    let v = unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize) }.to_vec();
    // SAFETY: DPAPI allocates the output with LocalAlloc; freed once here.
    unsafe { LocalFree(out.pbData as HLOCAL) };
    v
}

/// `CryptProtectData` for the current user.
pub fn protect(clear: &[u8]) -> io::Result<Vec<u8>> {
    dpapi(clear, Direction::Protect)
}

/// `CryptUnprotectData` for the current user.
pub fn unprotect(blob: &[u8]) -> io::Result<Vec<u8>> {
    dpapi(blob, Direction::Unprotect)
}

enum Direction {
    Protect,
    Unprotect,
}

fn dpapi(data: &[u8], direction: Direction) -> io::Result<Vec<u8>> {
    let input = blob_of(data);
    let entropy = blob_of(ENTROPY);
    let mut out = CRYPT_INTEGER_BLOB { cbData: 0, pbData: std::ptr::null_mut() };
    // SAFETY: the input blobs point to live slices that DPAPI only reads; no description, no
    // prompt; `out` receives a LocalAlloc'd buffer that `take_blob` frees.
    let ok = unsafe {
        match direction {
            Direction::Protect => CryptProtectData(
                &input,
                std::ptr::null(),
                &entropy,
                std::ptr::null(),
                std::ptr::null(),
                CRYPTPROTECT_UI_FORBIDDEN,
                &mut out,
            ),
            Direction::Unprotect => CryptUnprotectData(
                &input,
                std::ptr::null_mut(),
                &entropy,
                std::ptr::null(),
                std::ptr::null(),
                CRYPTPROTECT_UI_FORBIDDEN,
                &mut out,
            ),
        }
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call succeeded.
    Ok(unsafe { take_blob(out) })
}
