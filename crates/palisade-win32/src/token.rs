//! The caller's access token, and the restricted token a command runs with.
//!
//! `CreateRestrictedToken` with `WRITE_RESTRICTED` makes every *write* access check pass twice:
//! once with the token's normal groups (what the user may do) and once with only the
//! restricting SIDs (which Palisade chooses). Reads are not affected. With
//! `DISABLE_MAX_PRIVILEGE` every privilege but `SeChangeNotifyPrivilege` is removed. A
//! restricted version of the caller's own token may be given to `CreateProcessAsUserW` without
//! any privilege.

use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Security::{
    CreateRestrictedToken, GetTokenInformation, IsTokenRestricted, LookupPrivilegeNameW, SetTokenInformation,
    TokenDefaultDacl, TokenElevation, TokenGroups, TokenIntegrityLevel, TokenOwner, TokenPrivileges, TokenUser, ACL,
    DISABLE_MAX_PRIVILEGE, SID_AND_ATTRIBUTES, TOKEN_ADJUST_DEFAULT, TOKEN_ASSIGN_PRIMARY, TOKEN_DEFAULT_DACL,
    TOKEN_DUPLICATE, TOKEN_ELEVATION, TOKEN_GROUPS, TOKEN_INFORMATION_CLASS, TOKEN_MANDATORY_LABEL, TOKEN_OWNER,
    TOKEN_PRIVILEGES, TOKEN_QUERY, TOKEN_USER, WRITE_RESTRICTED,
};
use windows_sys::Win32::System::SystemServices::{
    SE_GROUP_ENABLED, SE_GROUP_INTEGRITY, SE_GROUP_LOGON_ID, SE_GROUP_USE_FOR_DENY_ONLY,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use crate::acl::{self, NewAce};
use crate::ffi::{check, from_wide_buf};
use crate::sid::Sid;

/// The calling process's token and what the backend needs to know about it.
pub struct OwnToken {
    handle: OwnedHandle,
    pub user: Sid,
    /// The logon session's SID (`S-1-5-5-X-Y`), which the desktop, the window station and
    /// objects created with the default DACL grant access to.
    pub logon: Option<Sid>,
    pub elevated: bool,
    /// Whether the caller itself already runs restricted (e.g. Palisade inside a sandbox).
    pub restricted: bool,
    /// The mandatory integrity level's RID (0x2000 medium, 0x3000 high), if known.
    pub integrity_rid: Option<u32>,
    /// The token's groups (`TokenGroups`), in the token's order.
    pub groups: Vec<TokenGroup>,
}

/// One group of a token and its `SE_GROUP_*` attributes.
#[derive(Clone, Debug)]
pub struct TokenGroup {
    pub sid: Sid,
    pub attributes: u32,
}

impl TokenGroup {
    /// Deny-only: matches deny ACEs, never allow ACEs, and cannot be enabled again.
    pub fn is_deny_only(&self) -> bool {
        self.attributes & SE_GROUP_USE_FOR_DENY_ONLY as u32 != 0
    }

    pub fn is_enabled(&self) -> bool {
        self.attributes & SE_GROUP_ENABLED as u32 != 0
    }

    /// The mandatory integrity label (`S-1-16-X`), listed among the groups but not one.
    pub fn is_integrity_label(&self) -> bool {
        self.attributes & SE_GROUP_INTEGRITY as u32 != 0
    }
}

impl OwnToken {
    /// The groups that can grant this token access: enabled ones and disabled ones a process
    /// could enable again (`AdjustTokenGroups`); neither deny-only groups nor the integrity
    /// label.
    pub fn usable_groups(&self) -> impl Iterator<Item = &Sid> {
        self.groups.iter().filter(|g| !g.is_deny_only() && !g.is_integrity_label()).map(|g| &g.sid)
    }
}

/// A token-information buffer, aligned for the structures read from it.
fn info(token: &OwnedHandle, class: TOKEN_INFORMATION_CLASS) -> io::Result<Vec<u64>> {
    let mut needed: u32 = 0;
    // SAFETY: a size query with no buffer; the call only writes `needed`.
    unsafe { GetTokenInformation(token.as_raw_handle() as HANDLE, class, std::ptr::null_mut(), 0, &mut needed) };
    if needed == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u64; (needed as usize).div_ceil(8)];
    // SAFETY: `buf` holds `needed` bytes.
    check(unsafe {
        GetTokenInformation(
            token.as_raw_handle() as HANDLE,
            class,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            &mut needed,
        )
    })?;
    Ok(buf)
}

/// Opens this process's token with the rights needed to derive a restricted primary token.
pub fn open_own() -> io::Result<OwnToken> {
    let mut h: HANDLE = std::ptr::null_mut();
    let access = TOKEN_QUERY | TOKEN_DUPLICATE | TOKEN_ASSIGN_PRIMARY | TOKEN_ADJUST_DEFAULT;
    // SAFETY: GetCurrentProcess returns a pseudo-handle; `h` receives a new handle we own.
    check(unsafe { OpenProcessToken(GetCurrentProcess(), access, &mut h) })?;
    // SAFETY: `h` is a fresh handle owned by nobody else.
    let handle = unsafe { OwnedHandle::from_raw_handle(h as _) };

    let user_buf = info(&handle, TokenUser)?;
    // SAFETY: the buffer holds a TOKEN_USER whose SID points into the same buffer.
    let user = unsafe { Sid::copy_from((*(user_buf.as_ptr() as *const TOKEN_USER)).User.Sid) }?;

    // Read as before: a token whose groups cannot be read has no logon SID (the backend then
    // refuses to confine) and no groups.
    let groups = groups(&handle).unwrap_or_default();
    let logon = groups
        .iter()
        .find(|g| g.attributes & (SE_GROUP_LOGON_ID as u32) == SE_GROUP_LOGON_ID as u32)
        .map(|g| g.sid.clone());
    let elevated = info(&handle, TokenElevation)
        // SAFETY: the buffer holds a TOKEN_ELEVATION.
        .map(|b| unsafe { (*(b.as_ptr() as *const TOKEN_ELEVATION)).TokenIsElevated != 0 })
        .unwrap_or(false);
    let integrity_rid = info(&handle, TokenIntegrityLevel).ok().and_then(|b| {
        // SAFETY: the buffer holds a TOKEN_MANDATORY_LABEL whose SID points into it.
        let sid = unsafe { Sid::copy_from((*(b.as_ptr() as *const TOKEN_MANDATORY_LABEL)).Label.Sid) }.ok()?;
        sid.to_string_form().rsplit('-').next()?.parse().ok()
    });
    // SAFETY: a valid token handle.
    let restricted = unsafe { IsTokenRestricted(handle.as_raw_handle() as HANDLE) } != 0;
    Ok(OwnToken { handle, user, logon, elevated, restricted, integrity_rid, groups })
}

/// A token's groups and their attributes (`TokenGroups`), copied out of the system's buffer.
pub fn groups(token: &OwnedHandle) -> io::Result<Vec<TokenGroup>> {
    let buf = info(token, TokenGroups)?;
    // SAFETY: the buffer holds a TOKEN_GROUPS with GroupCount entries whose SIDs point into
    // the same buffer, which lives until the SIDs are copied below.
    let list = unsafe {
        let p = buf.as_ptr() as *const TOKEN_GROUPS;
        std::slice::from_raw_parts((*p).Groups.as_ptr(), (*p).GroupCount as usize)
    };
    list.iter()
        .map(|g| {
            // SAFETY: a SID the system wrote into `buf`, alive for the copy.
            let sid = unsafe { Sid::copy_from(g.Sid) }?;
            Ok(TokenGroup { sid, attributes: g.Attributes })
        })
        .collect()
}

/// What the command's token looks like.
pub struct TokenSpec<'a> {
    /// Write access needs one of `restricting` too (WRITE_RESTRICTED). When false the token is
    /// only stripped of its privileges (full-access mode).
    pub write_restricted: bool,
    pub restricting: &'a [Sid],
    /// Groups made deny-only (e.g. Administrators when running elevated). When there are any,
    /// the token's default owner is set to the user, so that what the command creates is owned
    /// by the user and not by a group it can no longer use (an elevated token's default owner
    /// is Administrators).
    pub deny_only: &'a [Sid],
    /// The DACL of the objects the command creates without an explicit security descriptor
    /// (its pipes, events, threads, process). A restricting SID must be granted in it, or the
    /// command could not write its own objects.
    pub default_dacl: &'a [NewAce<'a>],
}

/// Makes the command's primary token from this process's token.
pub fn restricted(own: &OwnToken, spec: &TokenSpec<'_>) -> io::Result<OwnedHandle> {
    let restricting: Vec<SID_AND_ATTRIBUTES> =
        spec.restricting.iter().map(|s| SID_AND_ATTRIBUTES { Sid: s.as_psid(), Attributes: 0 }).collect();
    let deny_only: Vec<SID_AND_ATTRIBUTES> =
        spec.deny_only.iter().map(|s| SID_AND_ATTRIBUTES { Sid: s.as_psid(), Attributes: 0 }).collect();
    let mut flags = DISABLE_MAX_PRIVILEGE;
    if spec.write_restricted {
        flags |= WRITE_RESTRICTED;
    }
    let (n_restrict, p_restrict) = if spec.write_restricted && !restricting.is_empty() {
        (restricting.len() as u32, restricting.as_ptr())
    } else {
        (0, std::ptr::null())
    };
    let mut new: HANDLE = std::ptr::null_mut();
    // SAFETY: the SID arrays point at SIDs owned by `spec`, alive for the call; `new` receives
    // a fresh token handle with the access rights of ours.
    check(unsafe {
        CreateRestrictedToken(
            own.handle.as_raw_handle() as HANDLE,
            flags,
            deny_only.len() as u32,
            if deny_only.is_empty() { std::ptr::null() } else { deny_only.as_ptr() },
            0,
            std::ptr::null(),
            n_restrict,
            p_restrict,
            &mut new,
        )
    })?;
    // SAFETY: `new` is a fresh handle owned by nobody else.
    let token = unsafe { OwnedHandle::from_raw_handle(new as _) };

    if !spec.default_dacl.is_empty() {
        let dacl = acl::build(spec.default_dacl)?;
        // SAFETY: `dacl` is built above and alive until the end of this block.
        unsafe { set_default_dacl(token.as_handle(), dacl.as_ptr())? };
    }
    if !spec.deny_only.is_empty() {
        if let Err(e) = set_default_owner(token.as_raw_handle() as HANDLE, &own.user) {
            // Wine does not implement setting TokenOwner (ERROR_INVALID_FUNCTION), and its
            // tokens hold Administrators; it enforces no token anyway. Anywhere else a failure
            // is an error.
            if crate::ffi::wine_version().is_none() {
                return Err(e);
            }
        }
    }
    Ok(token)
}

/// Sets the owner of the objects the token's processes create (`TokenOwner`).
fn set_default_owner(token: HANDLE, owner: &Sid) -> io::Result<()> {
    let value = TOKEN_OWNER { Owner: owner.as_psid() };
    // SAFETY: `value` points at a SID `owner` keeps alive for the call; the system copies it.
    check(unsafe {
        SetTokenInformation(
            token,
            TokenOwner,
            (&value as *const TOKEN_OWNER).cast(),
            std::mem::size_of::<TOKEN_OWNER>() as u32,
        )
    })
}

/// Sets the DACL that objects the token's processes create get by default.
///
/// # Safety
/// `dacl` must point to a valid ACL that stays alive for the call (the system copies it).
pub unsafe fn set_default_dacl(token: std::os::windows::io::BorrowedHandle<'_>, dacl: *const ACL) -> io::Result<()> {
    let value = TOKEN_DEFAULT_DACL { DefaultDacl: dacl as *mut ACL };
    // SAFETY: `value` points at an ACL the caller keeps alive for the call; the system copies it.
    check(unsafe {
        SetTokenInformation(
            token.as_raw_handle() as HANDLE,
            TokenDefaultDacl,
            (&value as *const TOKEN_DEFAULT_DACL).cast(),
            std::mem::size_of::<TOKEN_DEFAULT_DACL>() as u32,
        )
    })
}

/// Whether a token is restricted (has restricting SIDs).
pub fn is_restricted(token: &OwnedHandle) -> bool {
    // SAFETY: a valid token handle.
    unsafe { IsTokenRestricted(token.as_raw_handle() as HANDLE) != 0 }
}

/// The names of the privileges a token still holds (`SeChangeNotifyPrivilege`, ...).
pub fn privilege_names(token: &OwnedHandle) -> io::Result<Vec<String>> {
    let buf = info(token, TokenPrivileges)?;
    let mut names = Vec::new();
    // SAFETY: the buffer holds a TOKEN_PRIVILEGES with PrivilegeCount entries.
    let list = unsafe {
        let p = buf.as_ptr() as *const TOKEN_PRIVILEGES;
        std::slice::from_raw_parts((*p).Privileges.as_ptr(), (*p).PrivilegeCount as usize)
    };
    for priv_ in list {
        let mut name = [0u16; 128];
        let mut len = name.len() as u32;
        // SAFETY: the LUID is the token's; the buffer's length is passed.
        check(unsafe { LookupPrivilegeNameW(std::ptr::null(), &priv_.Luid, name.as_mut_ptr(), &mut len) })?;
        names.push(from_wide_buf(&name[..len as usize]).to_string_lossy().into_owned());
    }
    Ok(names)
}
