//! Opening a file or folder itself (never what a link on its last component points to) and
//! asking the handle what it is, so that an elevated caller acts on exactly the object it
//! checked: [`open_unfollowed`], then [`describe`] for the facts that
//! [`palisade_windows_plan::grant_target::check_opened`] judges.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;

use palisade_windows_plan::grant_target::OpenedObject;
use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FileAttributeTagInfo, FileStandardInfo, GetFileInformationByHandleEx, GetFinalPathNameByHandleW,
    FILE_ATTRIBUTE_TAG_INFO, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_NAME_NORMALIZED,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_STANDARD_INFO, OPEN_EXISTING, VOLUME_NAME_DOS,
};

use crate::ffi::{check, wide};

/// The raw handle of an owned one, for the Win32 calls.
pub fn raw(h: &OwnedHandle) -> HANDLE {
    h.as_raw_handle() as HANDLE
}

/// Opens the file or folder at `path` with `access`, without following a reparse point on
/// its last component (`FILE_FLAG_OPEN_REPARSE_POINT`; `FILE_FLAG_BACKUP_SEMANTICS` lets a
/// folder be opened). Reparse points on the folders above it are followed as usual: the final
/// path ([`final_path`]) shows where the handle really is.
pub fn open_unfollowed(path: &Path, access: u32) -> io::Result<OwnedHandle> {
    let w = wide(path)?;
    // SAFETY: a NUL-terminated path and no security attributes or template; the handle is
    // owned from here.
    let h = unsafe {
        CreateFileW(
            w.as_ptr(),
            access,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle owned by nobody else.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as _) })
}

/// `GetFinalPathNameByHandleW` with normalized (long) names and the DOS volume name:
/// `\\?\C:\Users\me\src`.
pub fn final_path(h: &OwnedHandle) -> io::Result<String> {
    let mut buf = vec![0u16; 512];
    loop {
        // SAFETY: the buffer's length in characters is passed.
        let n = unsafe {
            GetFinalPathNameByHandleW(
                raw(h),
                buf.as_mut_ptr(),
                buf.len() as u32,
                FILE_NAME_NORMALIZED | VOLUME_NAME_DOS,
            )
        } as usize;
        if n == 0 {
            return Err(io::Error::last_os_error());
        }
        if n < buf.len() {
            return Ok(String::from_utf16_lossy(&buf[..n]));
        }
        // `n` is the size needed, terminator included.
        buf.resize(n + 1, 0);
    }
}

/// What the handle says about its object: attributes, reparse tag, number of names, final
/// path. The handle needs `FILE_READ_ATTRIBUTES`.
pub fn describe(h: &OwnedHandle) -> io::Result<OpenedObject> {
    let mut tag = FILE_ATTRIBUTE_TAG_INFO { FileAttributes: 0, ReparseTag: 0 };
    // SAFETY: the buffer is a FILE_ATTRIBUTE_TAG_INFO and its size is passed.
    check(unsafe {
        GetFileInformationByHandleEx(
            raw(h),
            FileAttributeTagInfo,
            (&mut tag as *mut FILE_ATTRIBUTE_TAG_INFO).cast(),
            std::mem::size_of::<FILE_ATTRIBUTE_TAG_INFO>() as u32,
        )
    })?;
    let mut std_info = FILE_STANDARD_INFO {
        AllocationSize: 0,
        EndOfFile: 0,
        NumberOfLinks: 0,
        DeletePending: false,
        Directory: false,
    };
    // SAFETY: the buffer is a FILE_STANDARD_INFO and its size is passed; the system writes its
    // two BOOLEAN fields as 0 or 1, valid values of `bool`.
    check(unsafe {
        GetFileInformationByHandleEx(
            raw(h),
            FileStandardInfo,
            (&mut std_info as *mut FILE_STANDARD_INFO).cast(),
            std::mem::size_of::<FILE_STANDARD_INFO>() as u32,
        )
    })?;
    Ok(OpenedObject {
        attributes: tag.FileAttributes,
        reparse_tag: tag.ReparseTag,
        links: std_info.NumberOfLinks,
        final_path: final_path(h)?,
    })
}
