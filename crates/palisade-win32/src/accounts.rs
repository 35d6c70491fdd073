//! Local accounts and groups (NetApi), account rights (LSA), the sign-in screen's `UserList`
//! value and profiles: what the elevated setup creates and removes, and what its facts and
//! `palisade check` read. Each returns `io::Error` (the setup's executor adds the step's name).

use std::ffi::c_void;
use std::io;
use std::path::Path;

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_MEMBER_IN_ALIAS, ERROR_MEMBER_NOT_IN_ALIAS};
use windows_sys::Win32::NetworkManagement::NetManagement::{
    NERR_GroupNotFound, NERR_UserNotFound, NetApiBufferFree, NetLocalGroupAdd, NetLocalGroupAddMembers,
    NetLocalGroupDel, NetLocalGroupDelMembers, NetLocalGroupGetMembers, NetUserAdd, NetUserDel, NetUserGetInfo,
    NetUserGetLocalGroups, NetUserSetInfo, LOCALGROUP_INFO_1, LOCALGROUP_MEMBERS_INFO_0, LOCALGROUP_USERS_INFO_0,
    MAX_PREFERRED_LENGTH, UF_ACCOUNTDISABLE, UF_DONT_EXPIRE_PASSWD, UF_NORMAL_ACCOUNT, UF_PASSWD_CANT_CHANGE,
    UF_SCRIPT, USER_INFO_1, USER_INFO_1003, USER_PRIV_USER,
};
use windows_sys::Win32::Security::Authentication::Identity::{
    LsaAddAccountRights, LsaClose, LsaEnumerateAccountRights, LsaFreeMemory, LsaNtStatusToWinError, LsaOpenPolicy,
    LsaRemoveAccountRights, LSA_HANDLE, LSA_OBJECT_ATTRIBUTES, LSA_UNICODE_STRING, POLICY_CREATE_ACCOUNT,
    POLICY_LOOKUP_NAMES, POLICY_VIEW_LOCAL_INFORMATION,
};
use windows_sys::Win32::System::Registry::{RegDeleteKeyValueW, RegSetKeyValueW, HKEY_LOCAL_MACHINE, REG_DWORD};
use windows_sys::Win32::UI::Shell::DeleteProfileW;

use crate::ffi::{check, from_wide_ptr, wide, wide_secret, win32};
use crate::sid::{sid_string, Sid};

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
        NetUserGetLocalGroups(
            std::ptr::null(),
            w.as_ptr(),
            0,
            0,
            &mut groups.0,
            MAX_PREFERRED_LENGTH,
            &mut read,
            &mut total,
        )
    })?;
    let mut names = Vec::new();
    for i in 0..read as usize {
        // SAFETY: `i` < `read` entries of the returned array.
        let e = unsafe { &*(groups.0 as *const LOCALGROUP_USERS_INFO_0).add(i) };
        // SAFETY: the name is a NUL-terminated string inside the buffer.
        names.push(unsafe { from_wide_ptr(e.lgrui0_name) }.to_string_lossy().into_owned());
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
        NetLocalGroupGetMembers(
            std::ptr::null(),
            w.as_ptr(),
            0,
            &mut buf.0,
            MAX_PREFERRED_LENGTH,
            &mut read,
            &mut total,
            &mut resume,
        )
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
    let (mut n, mut p, mut c) = (wide(name)?, wide_secret(password)?, wide(comment)?);
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
    let (n, mut p) = (wide(name)?, wide_secret(password)?);
    let info = USER_INFO_1003 { usri1003_password: p.as_mut_ptr() };
    // SAFETY: `info` and its string outlive the call.
    let r = win32(unsafe {
        NetUserSetInfo(std::ptr::null(), n.as_ptr(), 1003, &info as *const _ as *const u8, std::ptr::null_mut())
    });
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
    let (g, sid) = (wide(group)?, Sid::parse(member_sid)?);
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
    let (g, sid) = (wide(group)?, Sid::parse(member_sid)?);
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
    win32(unsafe {
        RegSetKeyValueW(HKEY_LOCAL_MACHINE, k.as_ptr(), v.as_ptr(), REG_DWORD, &zero as *const u32 as *const c_void, 4)
    })
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
    let sid = Sid::parse(sid)?;
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
        .map(|b| LSA_UNICODE_STRING {
            Length: (b.len() * 2) as u16,
            MaximumLength: (b.len() * 2) as u16,
            Buffer: b.as_mut_ptr(),
        })
        .collect();
    Ok((bufs, strings))
}

pub fn add_account_rights(sid: &str, rights: &[&str]) -> io::Result<()> {
    let policy = open_policy(POLICY_LOOKUP_NAMES | POLICY_CREATE_ACCOUNT)?;
    let sid = Sid::parse(sid)?;
    let (_bufs, strings) = lsa_strings(rights)?;
    // SAFETY: `strings` point into `_bufs`, alive for the call.
    nt(unsafe { LsaAddAccountRights(policy.0, sid.as_psid(), strings.as_ptr(), strings.len() as u32) })
}

pub fn remove_account_rights(sid: &str, rights: &[&str]) -> io::Result<()> {
    let policy = open_policy(POLICY_LOOKUP_NAMES)?;
    let sid = Sid::parse(sid)?;
    let (_bufs, strings) = lsa_strings(rights)?;
    // SAFETY: `strings` point into `_bufs`, alive for the call.
    nt(unsafe { LsaRemoveAccountRights(policy.0, sid.as_psid(), false, strings.as_ptr(), strings.len() as u32) })
}

/// Deletes an account's profile folder and its `ProfileList` entry.
pub fn delete_profile(sid: &str, path: &Path) -> io::Result<()> {
    let (s, p) = (wide(sid)?, wide(path)?);
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { DeleteProfileW(s.as_ptr(), p.as_ptr(), std::ptr::null()) })
}
