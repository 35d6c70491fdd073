//! The elevated OS calls setup and uninstall steps make: local accounts and groups (NetApi),
//! account rights (LSA), the sign-in screen's `UserList` value, folders with a descriptor, single
//! ACEs added or removed without replacing a DACL, profiles. Each returns `io::Error` (the
//! executor adds the step's name).

use std::ffi::c_void;
use std::io;
use std::path::Path;

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_MEMBER_IN_ALIAS, ERROR_MEMBER_NOT_IN_ALIAS};
use windows_sys::Win32::NetworkManagement::NetManagement::{
    NetApiBufferFree, NetLocalGroupAdd, NetLocalGroupAddMembers, NetLocalGroupDel, NetLocalGroupDelMembers, NetLocalGroupGetMembers,
    NetUserAdd, NetUserDel, NetUserGetInfo, NetUserGetLocalGroups, NetUserSetInfo, LOCALGROUP_INFO_1, LOCALGROUP_MEMBERS_INFO_0,
    LOCALGROUP_USERS_INFO_0, MAX_PREFERRED_LENGTH, NERR_GroupNotFound, NERR_UserNotFound, UF_ACCOUNTDISABLE, UF_DONT_EXPIRE_PASSWD,
    UF_NORMAL_ACCOUNT, UF_PASSWD_CANT_CHANGE, UF_SCRIPT, USER_INFO_1, USER_INFO_1003, USER_PRIV_USER,
};
use windows_sys::Win32::Security::Authentication::Identity::{
    LsaAddAccountRights, LsaClose, LsaEnumerateAccountRights, LsaFreeMemory, LsaNtStatusToWinError, LsaOpenPolicy, LsaRemoveAccountRights,
    LSA_HANDLE, LSA_OBJECT_ATTRIBUTES, LSA_UNICODE_STRING, POLICY_CREATE_ACCOUNT, POLICY_LOOKUP_NAMES, POLICY_VIEW_LOCAL_INFORMATION,
};
use windows_sys::Win32::Security::Authorization::{
    GetNamedSecurityInfoW, SetEntriesInAclW, SetNamedSecurityInfoW, EXPLICIT_ACCESS_W, GRANT_ACCESS, NO_MULTIPLE_TRUSTEE, SE_FILE_OBJECT,
    TRUSTEE_IS_SID, TRUSTEE_IS_UNKNOWN, TRUSTEE_W,
};
use windows_sys::Win32::Security::{
    AddAce, GetAce, GetAclInformation, GetSecurityDescriptorControl, InitializeAcl, AclSizeInformation, ACCESS_ALLOWED_ACE, ACL,
    ACL_REVISION, ACL_SIZE_INFORMATION, CONTAINER_INHERIT_ACE, DACL_SECURITY_INFORMATION, INHERITED_ACE,
    OBJECT_INHERIT_ACE, OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SECURITY_ATTRIBUTES, SE_DACL_PROTECTED, UNPROTECTED_DACL_SECURITY_INFORMATION,
};
use windows_sys::Win32::Storage::FileSystem::CreateDirectoryW;
use windows_sys::Win32::System::Registry::{RegDeleteKeyValueW, RegSetKeyValueW, HKEY_LOCAL_MACHINE, REG_DWORD};
use windows_sys::Win32::UI::Shell::DeleteProfileW;

use palisade_windows_elevated::ace::{AceKind, AceSpec, Inheritance};

use crate::win::{check, dacl_aces, from_wide_ptr, sid_string, wide, win32, Descriptor, LocalMem, OwnedSid};

/// `HKLM\...\Winlogon\SpecialAccounts\UserList`: a value 0 named after an account hides it.
pub const USER_LIST_KEY: &str = "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon\\SpecialAccounts\\UserList";

struct NetBuf(*mut u8);
impl Drop for NetBuf {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by a NetApi call, freed once.
            unsafe { NetApiBufferFree(self.0 as *const c_void) };
        }
    }
}

/// An existing local account: whether it is disabled, and its local groups' names.
pub fn user_info(name: &str) -> io::Result<Option<(bool, Vec<String>)>> {
    let w = wide(name)?;
    let mut buf = NetBuf(std::ptr::null_mut());
    // SAFETY: `buf.0` receives a NetApi buffer freed by `NetBuf`.
    let rc = unsafe { NetUserGetInfo(std::ptr::null(), w.as_ptr(), 1, &mut buf.0) };
    if rc == NERR_UserNotFound {
        return Ok(None);
    }
    win32(rc)?;
    // SAFETY: level 1 returns one USER_INFO_1.
    let flags = unsafe { (*(buf.0 as *const USER_INFO_1)).usri1_flags };
    let mut groups = NetBuf(std::ptr::null_mut());
    let (mut read, mut total) = (0u32, 0u32);
    // SAFETY: level 0 returns `read` LOCALGROUP_USERS_INFO_0 entries in `groups`.
    win32(unsafe {
        NetUserGetLocalGroups(std::ptr::null(), w.as_ptr(), 0, 0, &mut groups.0, MAX_PREFERRED_LENGTH, &mut read, &mut total)
    })?;
    let mut names = Vec::new();
    for i in 0..read as usize {
        // SAFETY: `i` < `read` entries of the returned array.
        let e = unsafe { &*(groups.0 as *const LOCALGROUP_USERS_INFO_0).add(i) };
        // SAFETY: the name is a NUL-terminated string inside the buffer.
        names.push(unsafe { from_wide_ptr(e.lgrui0_name) });
    }
    Ok(Some((flags & UF_ACCOUNTDISABLE != 0, names)))
}

/// The SIDs of a local group's members; `None` when there is no such group.
pub fn group_members(name: &str) -> io::Result<Option<Vec<String>>> {
    let w = wide(name)?;
    let mut buf = NetBuf(std::ptr::null_mut());
    let (mut read, mut total, mut resume) = (0u32, 0u32, 0usize);
    // SAFETY: level 0 returns `read` LOCALGROUP_MEMBERS_INFO_0 entries.
    let rc = unsafe {
        NetLocalGroupGetMembers(std::ptr::null(), w.as_ptr(), 0, &mut buf.0, MAX_PREFERRED_LENGTH, &mut read, &mut total, &mut resume)
    };
    if rc == NERR_GroupNotFound || rc == windows_sys::Win32::Foundation::ERROR_NO_SUCH_ALIAS {
        return Ok(None);
    }
    win32(rc)?;
    let mut out = Vec::new();
    for i in 0..read as usize {
        // SAFETY: `i` < `read`; each entry holds a SID pointer into the buffer.
        let e = unsafe { &*(buf.0 as *const LOCALGROUP_MEMBERS_INFO_0).add(i) };
        // SAFETY: the SID is valid while `buf` lives.
        out.push(unsafe { sid_string(e.lgrmi0_sid)? });
    }
    Ok(Some(out))
}

pub fn create_group(name: &str, comment: &str) -> io::Result<()> {
    let (mut n, mut c) = (wide(name)?, wide(comment)?);
    let info = LOCALGROUP_INFO_1 { lgrpi1_name: n.as_mut_ptr(), lgrpi1_comment: c.as_mut_ptr() };
    // SAFETY: `info` and its strings outlive the call.
    win32(unsafe { NetLocalGroupAdd(std::ptr::null(), 1, &info as *const _ as *const u8, std::ptr::null_mut()) })
}

pub fn delete_group(name: &str) -> io::Result<()> {
    let n = wide(name)?;
    // SAFETY: `n` is NUL-terminated.
    win32(unsafe { NetLocalGroupDel(std::ptr::null(), n.as_ptr()) })
}

/// A normal local account: member of Users (NetUserAdd's default), password never expires, the
/// account cannot change it, no home folder.
pub fn create_user(name: &str, password: &str, comment: &str) -> io::Result<()> {
    let (mut n, mut p, mut c) = (wide(name)?, wide(password)?, wide(comment)?);
    let info = USER_INFO_1 {
        usri1_name: n.as_mut_ptr(),
        usri1_password: p.as_mut_ptr(),
        usri1_password_age: 0,
        usri1_priv: USER_PRIV_USER,
        usri1_home_dir: std::ptr::null_mut(),
        usri1_comment: c.as_mut_ptr(),
        usri1_flags: UF_SCRIPT | UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD | UF_PASSWD_CANT_CHANGE,
        usri1_script_path: std::ptr::null_mut(),
    };
    // SAFETY: `info` and its strings outlive the call.
    let r = win32(unsafe { NetUserAdd(std::ptr::null(), 1, &info as *const _ as *const u8, std::ptr::null_mut()) });
    p.iter_mut().for_each(|x| *x = 0);
    r
}

pub fn set_password(name: &str, password: &str) -> io::Result<()> {
    let (n, mut p) = (wide(name)?, wide(password)?);
    let info = USER_INFO_1003 { usri1003_password: p.as_mut_ptr() };
    // SAFETY: `info` and its string outlive the call.
    let r = win32(unsafe { NetUserSetInfo(std::ptr::null(), n.as_ptr(), 1003, &info as *const _ as *const u8, std::ptr::null_mut()) });
    p.iter_mut().for_each(|x| *x = 0);
    r
}

pub fn delete_user(name: &str) -> io::Result<()> {
    let n = wide(name)?;
    // SAFETY: `n` is NUL-terminated.
    win32(unsafe { NetUserDel(std::ptr::null(), n.as_ptr()) })
}

/// Adds the SID to the group (already a member is fine).
pub fn add_member(group: &str, member_sid: &str) -> io::Result<()> {
    let (g, sid) = (wide(group)?, OwnedSid::parse(member_sid)?);
    let info = LOCALGROUP_MEMBERS_INFO_0 { lgrmi0_sid: sid.as_psid() };
    // SAFETY: one entry that outlives the call.
    let rc = unsafe { NetLocalGroupAddMembers(std::ptr::null(), g.as_ptr(), 0, &info as *const _ as *const u8, 1) };
    if rc == ERROR_MEMBER_IN_ALIAS {
        return Ok(());
    }
    win32(rc)
}

/// Removes the SID from the group (not a member is fine).
pub fn remove_member(group: &str, member_sid: &str) -> io::Result<()> {
    let (g, sid) = (wide(group)?, OwnedSid::parse(member_sid)?);
    let info = LOCALGROUP_MEMBERS_INFO_0 { lgrmi0_sid: sid.as_psid() };
    // SAFETY: one entry that outlives the call.
    let rc = unsafe { NetLocalGroupDelMembers(std::ptr::null(), g.as_ptr(), 0, &info as *const _ as *const u8, 1) };
    if rc == ERROR_MEMBER_NOT_IN_ALIAS {
        return Ok(());
    }
    win32(rc)
}

/// Sets `UserList\<name>` = 0.
pub fn hide_from_sign_in(name: &str) -> io::Result<()> {
    let (k, v) = (wide(USER_LIST_KEY)?, wide(name)?);
    let zero = 0u32;
    // SAFETY: 4 bytes of DWORD data; RegSetKeyValueW creates the subkey if missing.
    win32(unsafe { RegSetKeyValueW(HKEY_LOCAL_MACHINE, k.as_ptr(), v.as_ptr(), REG_DWORD, &zero as *const u32 as *const c_void, 4) })
}

/// Deletes `UserList\<name>` (absent is fine).
pub fn unhide_from_sign_in(name: &str) -> io::Result<()> {
    let (k, v) = (wide(USER_LIST_KEY)?, wide(name)?);
    // SAFETY: both strings are NUL-terminated.
    let rc = unsafe { RegDeleteKeyValueW(HKEY_LOCAL_MACHINE, k.as_ptr(), v.as_ptr()) };
    if rc == ERROR_FILE_NOT_FOUND {
        return Ok(());
    }
    win32(rc)
}

struct Policy(LSA_HANDLE);
impl Drop for Policy {
    fn drop(&mut self) {
        // SAFETY: a handle LsaOpenPolicy returned, closed once.
        unsafe { LsaClose(self.0) };
    }
}

fn nt(status: i32) -> io::Result<()> {
    if status >= 0 {
        Ok(())
    } else {
        // SAFETY: a pure conversion of a status code.
        Err(io::Error::from_raw_os_error(unsafe { LsaNtStatusToWinError(status) } as i32))
    }
}

fn open_policy(access: i32) -> io::Result<Policy> {
    // SAFETY: LSA_OBJECT_ATTRIBUTES is plain data; zeroed is its documented initial state.
    let attrs: LSA_OBJECT_ATTRIBUTES = unsafe { std::mem::zeroed() };
    let mut h: LSA_HANDLE = 0;
    // SAFETY: local system (null name), valid attributes and out-pointer.
    nt(unsafe { LsaOpenPolicy(std::ptr::null(), &attrs, access as u32, &mut h) })?;
    Ok(Policy(h))
}

/// The names of the LSA account rights the SID itself holds.
pub fn account_rights(sid: &str) -> io::Result<Vec<String>> {
    let policy = open_policy(POLICY_LOOKUP_NAMES | POLICY_VIEW_LOCAL_INFORMATION)?;
    let sid = OwnedSid::parse(sid)?;
    let mut rights: *mut LSA_UNICODE_STRING = std::ptr::null_mut();
    let mut count = 0u32;
    // SAFETY: valid handle and SID; `rights` receives LSA memory freed below.
    let status = unsafe { LsaEnumerateAccountRights(policy.0, sid.as_psid(), &mut rights, &mut count) };
    // STATUS_OBJECT_NAME_NOT_FOUND: the SID holds no rights.
    if status == 0xC000_0034u32 as i32 {
        return Ok(Vec::new());
    }
    nt(status)?;
    let mut out = Vec::new();
    for i in 0..count as usize {
        // SAFETY: `i` < `count` strings of the returned array; lengths are in bytes.
        let s = unsafe { &*rights.add(i) };
        // SAFETY: `Buffer` holds `Length` bytes.
        let chars = unsafe { std::slice::from_raw_parts(s.Buffer, s.Length as usize / 2) };
        out.push(String::from_utf16_lossy(chars));
    }
    // SAFETY: freeing what LsaEnumerateAccountRights allocated.
    unsafe { LsaFreeMemory(rights as *const c_void) };
    Ok(out)
}

fn lsa_strings(names: &[&str]) -> io::Result<(Vec<Vec<u16>>, Vec<LSA_UNICODE_STRING>)> {
    let mut bufs: Vec<Vec<u16>> = names.iter().map(|n| n.encode_utf16().collect()).collect();
    let strings = bufs
        .iter_mut()
        .map(|b| LSA_UNICODE_STRING { Length: (b.len() * 2) as u16, MaximumLength: (b.len() * 2) as u16, Buffer: b.as_mut_ptr() })
        .collect();
    Ok((bufs, strings))
}

pub fn add_account_rights(sid: &str, rights: &[&str]) -> io::Result<()> {
    let policy = open_policy(POLICY_LOOKUP_NAMES | POLICY_CREATE_ACCOUNT)?;
    let sid = OwnedSid::parse(sid)?;
    let (_bufs, strings) = lsa_strings(rights)?;
    // SAFETY: `strings` point into `_bufs`, alive for the call.
    nt(unsafe { LsaAddAccountRights(policy.0, sid.as_psid(), strings.as_ptr(), strings.len() as u32) })
}

pub fn remove_account_rights(sid: &str, rights: &[&str]) -> io::Result<()> {
    let policy = open_policy(POLICY_LOOKUP_NAMES)?;
    let sid = OwnedSid::parse(sid)?;
    let (_bufs, strings) = lsa_strings(rights)?;
    // SAFETY: `strings` point into `_bufs`, alive for the call.
    nt(unsafe { LsaRemoveAccountRights(policy.0, sid.as_psid(), false, strings.as_ptr(), strings.len() as u32) })
}

/// Creates the folder with exactly this descriptor (SDDL: owner and DACL).
pub fn create_directory(path: &Path, sddl: &str) -> io::Result<()> {
    let sd = Descriptor::from_sddl(sddl)?;
    let w = wide(path)?;
    let sa = SECURITY_ATTRIBUTES { nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32, lpSecurityDescriptor: sd.as_ptr(), bInheritHandle: 0 };
    // SAFETY: `sa` and the descriptor outlive the call.
    check(unsafe { CreateDirectoryW(w.as_ptr(), &sa) })
}

/// Resets an existing folder's owner and DACL to the descriptor's (a folder Palisade owns:
/// setup refused the folder if someone else owned it).
pub fn reset_directory(path: &Path, sddl: &str, protected: bool) -> io::Result<()> {
    let sd = Descriptor::from_sddl(sddl)?;
    let mut owner: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let (mut present, mut defaulted) = (0, 0);
    // SAFETY: reading pointers into `sd`, which outlives their use.
    unsafe {
        check(windows_sys::Win32::Security::GetSecurityDescriptorOwner(sd.as_ptr(), &mut owner, &mut defaulted))?;
        check(windows_sys::Win32::Security::GetSecurityDescriptorDacl(sd.as_ptr(), &mut present, &mut dacl, &mut defaulted))?;
    }
    let protection = if protected { PROTECTED_DACL_SECURITY_INFORMATION } else { UNPROTECTED_DACL_SECURITY_INFORMATION };
    let w = wide(path)?;
    // SAFETY: owner and DACL point into `sd`.
    win32(unsafe {
        SetNamedSecurityInfoW(w.as_ptr() as _, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION | protection, owner, std::ptr::null_mut(), dacl, std::ptr::null())
    })
}

fn ace_flags(inheritance: Inheritance) -> u8 {
    match inheritance {
        Inheritance::None => 0,
        Inheritance::ContainerAndObject => (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) as u8,
    }
}

/// Reads `path`'s DACL and whether it is protected. The descriptor owns the DACL.
fn read_dacl(w: &[u16]) -> io::Result<(LocalMem, *mut ACL, bool)> {
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: valid out-pointers; `sd` is LocalAlloc'd and owns `dacl`.
    win32(unsafe {
        GetNamedSecurityInfoW(w.as_ptr(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, std::ptr::null_mut(), std::ptr::null_mut(), &mut dacl, std::ptr::null_mut(), &mut sd)
    })?;
    let sd = LocalMem(sd);
    let (mut control, mut rev) = (0u16, 0u32);
    // SAFETY: `sd` is the descriptor just returned.
    check(unsafe { GetSecurityDescriptorControl(sd.0, &mut control, &mut rev) })?;
    Ok((sd, dacl, control & SE_DACL_PROTECTED != 0))
}

fn write_dacl(w: &[u16], dacl: *const ACL, protected: bool) -> io::Result<()> {
    // Keep the protection as it was: neither flag would let Windows decide.
    let protection = if protected { PROTECTED_DACL_SECURITY_INFORMATION } else { UNPROTECTED_DACL_SECURITY_INFORMATION };
    // SAFETY: `dacl` is valid for the call (the caller owns it).
    win32(unsafe {
        SetNamedSecurityInfoW(w.as_ptr() as _, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION | protection, std::ptr::null_mut(), std::ptr::null_mut(), dacl, std::ptr::null())
    })
}

/// Adds one allow ACE for `sid` to `path`'s DACL, keeping every existing entry
/// (`SetEntriesInAcl` with `GRANT_ACCESS` merges it into the old DACL).
pub fn grant_ace(path: &Path, ace: &AceSpec, sid: &str) -> io::Result<()> {
    if ace.kind != AceKind::Allow {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "setup only adds allow entries"));
    }
    let w = wide(path)?;
    let (_sd, old, protected) = read_dacl(&w)?;
    let sid = OwnedSid::parse(sid)?;
    let entry = EXPLICIT_ACCESS_W {
        grfAccessPermissions: ace.rights.mask(),
        grfAccessMode: GRANT_ACCESS,
        grfInheritance: ace_flags(ace.inheritance) as u32,
        Trustee: TRUSTEE_W {
            pMultipleTrustee: std::ptr::null_mut(),
            MultipleTrusteeOperation: NO_MULTIPLE_TRUSTEE,
            TrusteeForm: TRUSTEE_IS_SID,
            TrusteeType: TRUSTEE_IS_UNKNOWN,
            ptstrName: sid.as_psid() as *mut u16,
        },
    };
    let mut new: *mut ACL = std::ptr::null_mut();
    // SAFETY: one entry; `old` lives in `_sd`; `new` is LocalAlloc'd and freed below.
    win32(unsafe { SetEntriesInAclW(1, &entry, old, &mut new) })?;
    let new = LocalMem(new as *mut c_void);
    write_dacl(&w, new.0 as *const ACL, protected)
}

/// Removes exactly the explicit ACE (type, inheritance flags, mask, SID) from `path`'s DACL,
/// keeping every other entry. `false`: it was not there.
pub fn remove_ace(path: &Path, ace: &AceSpec, sid: &str) -> io::Result<bool> {
    let w = wide(path)?;
    let (_sd, old, protected) = read_dacl(&w)?;
    // SAFETY: `old` lives in `_sd`.
    let aces = unsafe { dacl_aces(old)? };
    let want_type = if ace.kind == AceKind::Allow { 0u8 } else { 1 };
    let want_flags = ace_flags(ace.inheritance);
    let inherit_mask = (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | INHERITED_ACE) as u8;
    let Some(index) = aces.iter().position(|a| {
        a.ace_type == want_type && a.flags & INHERITED_ACE as u8 == 0 && a.flags & inherit_mask == want_flags && a.mask == ace.rights.mask() && a.sid == sid
    }) else {
        return Ok(false);
    };
    let mut info = ACL_SIZE_INFORMATION { AceCount: 0, AclBytesInUse: 0, AclBytesFree: 0 };
    // SAFETY: `old` is valid (it held the ACE just found).
    check(unsafe { GetAclInformation(old, &mut info as *mut _ as *mut c_void, std::mem::size_of::<ACL_SIZE_INFORMATION>() as u32, AclSizeInformation) })?;
    // A u32 buffer keeps the ACL DWORD-aligned.
    let mut buf = vec![0u32; (info.AclBytesInUse as usize).div_ceil(4) + 1];
    let new = buf.as_mut_ptr() as *mut ACL;
    // SAFETY: `buf` is at least as large as the old ACL, which bounds the new one.
    check(unsafe { InitializeAcl(new, (buf.len() * 4) as u32, ACL_REVISION) })?;
    let mut n = 0u32;
    for i in 0..info.AceCount {
        if i as usize == index {
            continue;
        }
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: `i` < the ACE count of `old`.
        check(unsafe { GetAce(old, i, &mut p) })?;
        // SAFETY: `p` is an ACE whose header states its size; appended at the end of `new`.
        check(unsafe { AddAce(new, ACL_REVISION, n, p, (*(p as *const ACCESS_ALLOWED_ACE)).Header.AceSize as u32) })?;
        n += 1;
    }
    write_dacl(&w, new, protected)?;
    Ok(true)
}

/// Deletes an account's profile folder and its `ProfileList` entry.
pub fn delete_profile(sid: &str, path: &Path) -> io::Result<()> {
    let (s, p) = (wide(sid)?, wide(path)?);
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { DeleteProfileW(s.as_ptr(), p.as_ptr(), std::ptr::null()) })
}
