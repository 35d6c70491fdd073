//! Reading and changing the DACLs of files and folders, additively.
//!
//! Palisade never replaces a DACL: it reads the existing one (`GetNamedSecurityInfoW`), merges
//! its own entries into it (`SetEntriesInAclW`, which keeps the canonical order) and writes the
//! result back (`SetNamedSecurityInfoW`, which also propagates inheritable entries to the
//! folder's existing children). Removing takes out exactly the explicit entries that name
//! Palisade's SIDs with the recorded kind and inheritance, and leaves everything else as it was.
//! The DACL's protection from inheritance is kept as it is.
//!
//! The elevated setup uses the same reading and writing for its own steps: [`grant_ace`] and
//! [`remove_ace`] add or remove one recorded [`AceSpec`] ([`grant_ace`] through a handle to the
//! object it checked, since the user may swap the path for a junction), [`file_security`] reads a path's owner
//! and entries as the facts it plans with, and only the folders Palisade creates get a whole
//! descriptor of Palisade's ([`create_directory`], [`reset_directory`]).

use std::ffi::c_void;
use std::io;
use std::os::windows::io::OwnedHandle;
use std::path::Path;

use palisade_windows_elevated::ace::{AceSpec, Inheritance, RawAce};
use palisade_windows_plan::ace::{flags as ace_flags, Ace, AceKind};
use palisade_windows_plan::audit::FolderSecurity;
use palisade_windows_plan::grant_target::check_opened;
pub use palisade_windows_plan::grant_target::GrantRefusal;
use palisade_windows_plan::path::WinPath;
use palisade_windows_plan::sid::SidString;
use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_INVALID_NAME, ERROR_PATH_NOT_FOUND};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW, GetSecurityInfo, SetEntriesInAclW,
    SetNamedSecurityInfoW, SetSecurityInfo, DENY_ACCESS, EXPLICIT_ACCESS_W, GRANT_ACCESS, NO_MULTIPLE_TRUSTEE,
    SDDL_REVISION_1, SE_FILE_OBJECT, TRUSTEE_IS_SID, TRUSTEE_IS_UNKNOWN, TRUSTEE_W,
};
use windows_sys::Win32::Security::{
    AclSizeInformation, AddAccessAllowedAceEx, AddAccessDeniedAceEx, AddAce, GetAce, GetAclInformation,
    GetSecurityDescriptorControl, GetSecurityDescriptorDacl, GetSecurityDescriptorOwner, InitializeAcl, ACE_HEADER,
    ACL, ACL_REVISION, ACL_SIZE_INFORMATION, DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES, SE_DACL_PROTECTED,
    UNPROTECTED_DACL_SECURITY_INFORMATION,
};
use windows_sys::Win32::Storage::FileSystem::{CreateDirectoryW, FILE_READ_ATTRIBUTES, READ_CONTROL, WRITE_DAC};
use windows_sys::Win32::System::SystemServices::{ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE, MAXDWORD};

use crate::ffi::{check, wide, win32, LocalMem};
use crate::object::{describe, open_unfollowed, raw};
use crate::sid::{sid_string, Sid};

/// An ACL built in memory (for a token's default DACL).
pub struct AclBuf(Vec<u32>);

impl AclBuf {
    pub fn as_ptr(&self) -> *mut ACL {
        self.0.as_ptr() as *mut ACL
    }
}

/// One entry of an ACL built from scratch.
pub struct NewAce<'a> {
    pub sid: &'a Sid,
    pub allow: bool,
    pub mask: u32,
    pub flags: u8,
}

/// Builds an ACL holding `entries` in the order given (callers put deny entries first).
pub fn build(entries: &[NewAce<'_>]) -> io::Result<AclBuf> {
    // ACL header, then per entry the ACE header and mask (8 bytes) and the SID.
    let size: u32 = std::mem::size_of::<ACL>() as u32 + entries.iter().map(|e| 8 + e.sid.len()).sum::<u32>();
    let size = size.next_multiple_of(4);
    let buf = AclBuf(vec![0u32; size as usize / 4]);
    // SAFETY: the buffer is `size` bytes, aligned to 4.
    check(unsafe { InitializeAcl(buf.as_ptr(), size, ACL_REVISION) })?;
    for e in entries {
        // SAFETY: the ACL was initialised with room for every entry; the SID is valid.
        let ok = unsafe {
            if e.allow {
                AddAccessAllowedAceEx(buf.as_ptr(), ACL_REVISION, e.flags as u32, e.mask, e.sid.as_psid())
            } else {
                AddAccessDeniedAceEx(buf.as_ptr(), ACL_REVISION, e.flags as u32, e.mask, e.sid.as_psid())
            }
        };
        check(ok)?;
    }
    Ok(buf)
}

/// A file's DACL as read from disk.
struct Dacl {
    /// The security descriptor the DACL points into.
    _sd: LocalMem,
    /// Null when the object has no DACL at all (everyone has full access).
    dacl: *mut ACL,
    protected: bool,
    owner: Option<Sid>,
}

/// One allow or deny entry of a DACL, with a pointer to its raw bytes.
struct Entry {
    ptr: *const c_void,
    size: u16,
    kind: Option<AceKind>,
    flags: u8,
    mask: u32,
    sid: Option<Sid>,
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error().map(|c| c as u32), Some(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND | ERROR_INVALID_NAME))
}

/// Reads `path`'s DACL (and owner); `None` if the path does not exist.
fn read(path: &Path, with_owner: bool) -> io::Result<Option<Dacl>> {
    match read_existing(path, with_owner) {
        Ok(d) => Ok(Some(d)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads `path`'s DACL (and owner); a missing path is an error.
fn read_existing(path: &Path, with_owner: bool) -> io::Result<Dacl> {
    let w = wide(path)?;
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut owner: PSID = std::ptr::null_mut();
    let mut sd = LocalMem::null();
    let info =
        if with_owner { DACL_SECURITY_INFORMATION | OWNER_SECURITY_INFORMATION } else { DACL_SECURITY_INFORMATION };
    // SAFETY: `w` is NUL-terminated; on success `sd.0` receives a LocalAlloc'd descriptor
    // (freed by `LocalMem`) and `dacl` and `owner` point into it.
    let r = unsafe {
        GetNamedSecurityInfoW(
            w.as_ptr(),
            SE_FILE_OBJECT,
            info,
            if with_owner { &mut owner } else { std::ptr::null_mut() },
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd.0,
        )
    };
    win32(r)?;
    let mut control: u16 = 0;
    let mut revision: u32 = 0;
    // SAFETY: `sd.0` is the descriptor the system just returned.
    check(unsafe { GetSecurityDescriptorControl(sd.0, &mut control, &mut revision) })?;
    // SAFETY: `owner` is null or points into the descriptor we hold.
    let owner = if owner.is_null() { None } else { unsafe { Sid::copy_from(owner) }.ok() };
    Ok(Dacl { _sd: sd, dacl, protected: control & SE_DACL_PROTECTED != 0, owner })
}

impl Dacl {
    fn entries(&self) -> io::Result<Vec<Entry>> {
        if self.dacl.is_null() {
            return Ok(Vec::new());
        }
        let mut info = ACL_SIZE_INFORMATION { AceCount: 0, AclBytesInUse: 0, AclBytesFree: 0 };
        // SAFETY: `dacl` is a valid ACL inside the descriptor we hold; `info` is the right size.
        check(unsafe {
            GetAclInformation(
                self.dacl,
                (&mut info as *mut ACL_SIZE_INFORMATION).cast(),
                std::mem::size_of_val(&info) as u32,
                AclSizeInformation,
            )
        })?;
        let mut out = Vec::with_capacity(info.AceCount as usize);
        for i in 0..info.AceCount {
            let mut ace: *mut c_void = std::ptr::null_mut();
            // SAFETY: `i` is below the ACL's entry count.
            check(unsafe { GetAce(self.dacl, i, &mut ace) })?;
            // SAFETY: every ACE starts with an ACE_HEADER.
            let header = unsafe { std::ptr::read_unaligned(ace as *const ACE_HEADER) };
            let kind = match header.AceType as u32 {
                ACCESS_ALLOWED_ACE_TYPE => Some(AceKind::Allow),
                ACCESS_DENIED_ACE_TYPE => Some(AceKind::Deny),
                _ => None,
            };
            let (mask, sid) = if kind.is_some() && header.AceSize >= 8 + 8 {
                // SAFETY: ACCESS_ALLOWED_ACE and ACCESS_DENIED_ACE are a header, a 4-byte mask
                // and the SID, all within AceSize bytes.
                unsafe {
                    let mask = std::ptr::read_unaligned((ace as *const u8).add(4) as *const u32);
                    let sid = Sid::copy_from((ace as *mut u8).add(8) as PSID).ok();
                    (mask, sid)
                }
            } else {
                (0, None)
            };
            out.push(Entry { ptr: ace, size: header.AceSize, kind, flags: header.AceFlags, mask, sid });
        }
        Ok(out)
    }

    /// The security information flags that keep the DACL's protection as it is.
    fn protection_flag(&self) -> u32 {
        if self.protected {
            PROTECTED_DACL_SECURITY_INFORMATION
        } else {
            UNPROTECTED_DACL_SECURITY_INFORMATION
        }
    }
}

fn write(path: &Path, acl: *const ACL, protection: u32) -> io::Result<()> {
    let w = wide(path)?;
    // SAFETY: `w` is NUL-terminated and `acl` a valid ACL that outlives the call. For a folder
    // the call also updates the inherited entries of everything beneath it.
    win32(unsafe {
        SetNamedSecurityInfoW(
            w.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | protection,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            acl,
            std::ptr::null(),
        )
    })
}

/// A folder's owner and DACL as the audit classifies them ([`FolderSecurity`]): only allow and
/// deny entries are kept (object and callback entries never name the broad groups the audit
/// asks about). `None` if the path does not exist.
pub fn security(path: &Path) -> io::Result<Option<FolderSecurity>> {
    let Some(d) = read(path, true)? else {
        return Ok(None);
    };
    let owner = d.owner.as_ref().and_then(|o| SidString::canonicalize(&o.to_string_form()).ok());
    if d.dacl.is_null() {
        return Ok(Some(FolderSecurity { owner, dacl: None }));
    }
    let mut aces = Vec::new();
    for e in d.entries()? {
        let (Some(kind), Some(sid)) = (e.kind, e.sid.as_ref()) else {
            continue;
        };
        // Any SID Windows stored, even one `parse` would refuse (no sub-authority).
        let Ok(trustee) = SidString::canonicalize(&sid.to_string_form()) else {
            continue;
        };
        aces.push(Ace { trustee, kind, mask: e.mask, flags: e.flags });
    }
    Ok(Some(FolderSecurity { owner, dacl: Some(aces) }))
}

/// What [`add`] or [`remove`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The DACL was changed.
    Changed,
    /// Nothing to do: the entries were already there (add) or already gone (remove).
    Unchanged,
    /// The path does not exist.
    Missing,
}

fn same_entry(e: &Entry, ace: &Ace, sid: &Sid) -> bool {
    let inherit_bits = ace_flags::OBJECT_INHERIT_ACE
        | ace_flags::CONTAINER_INHERIT_ACE
        | ace_flags::NO_PROPAGATE_INHERIT_ACE
        | ace_flags::INHERIT_ONLY_ACE;
    e.flags & ace_flags::INHERITED_ACE == 0
        && e.kind == Some(ace.kind)
        && e.flags & inherit_bits == ace.flags & inherit_bits
        && e.sid.as_ref() == Some(sid)
}

/// Adds `aces` (explicit entries) to the DACL of `path`, keeping every entry already there.
/// Entries already present with at least the same rights are not added twice; when nothing is
/// missing the DACL is not written at all.
pub fn add(path: &Path, aces: &[Ace]) -> io::Result<Outcome> {
    let Some(d) = read(path, false)? else {
        return Ok(Outcome::Missing);
    };
    let existing = d.entries()?;
    let sids: Vec<Sid> = aces.iter().map(|a| Sid::parse(a.trustee.as_str())).collect::<io::Result<_>>()?;
    let mut entries: Vec<EXPLICIT_ACCESS_W> = Vec::new();
    for (ace, sid) in aces.iter().zip(&sids) {
        if existing.iter().any(|e| same_entry(e, ace, sid) && e.mask & ace.mask == ace.mask) {
            continue;
        }
        entries.push(EXPLICIT_ACCESS_W {
            grfAccessPermissions: ace.mask,
            grfAccessMode: match ace.kind {
                AceKind::Allow => GRANT_ACCESS,
                AceKind::Deny => DENY_ACCESS,
            },
            grfInheritance: (ace.flags & !ace_flags::INHERITED_ACE) as u32,
            Trustee: TRUSTEE_W {
                pMultipleTrustee: std::ptr::null_mut(),
                MultipleTrusteeOperation: NO_MULTIPLE_TRUSTEE,
                TrusteeForm: TRUSTEE_IS_SID,
                TrusteeType: TRUSTEE_IS_UNKNOWN,
                ptstrName: sid.as_psid().cast(),
            },
        });
    }
    if entries.is_empty() {
        return Ok(Outcome::Unchanged);
    }
    let mut new_acl = LocalMem::null();
    let mut new_ptr: *mut ACL = std::ptr::null_mut();
    // SAFETY: `entries` point at SIDs in `sids`, alive for the call; the old ACL is the one we
    // read (or null); on success `new_ptr` is a LocalAlloc'd ACL freed by `new_acl`.
    win32(unsafe { SetEntriesInAclW(entries.len() as u32, entries.as_ptr(), d.dacl, &mut new_ptr) })?;
    new_acl.0 = new_ptr.cast();
    write(path, new_ptr, d.protection_flag())?;
    Ok(Outcome::Changed)
}

/// Removes `ace`'s rights from the explicit entries of `path`'s DACL that match it (same
/// trustee, kind and inheritance), except the rights in `keep` (which other recorded entries of
/// the same kind still need: the system merges entries for one trustee into one ACE). An entry
/// left with no rights is dropped. Inherited entries and every other entry stay.
pub fn remove(path: &Path, ace: &Ace, keep: u32) -> io::Result<Outcome> {
    let Some(d) = read(path, false)? else {
        return Ok(Outcome::Missing);
    };
    if d.dacl.is_null() {
        return Ok(Outcome::Unchanged);
    }
    let sid = Sid::parse(ace.trustee.as_str())?;
    let existing = d.entries()?;
    let drop_bits = ace.mask & !keep;
    let mut changed = false;
    // Each entry as bytes to copy into the new ACL, with its mask rewritten where needed.
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(existing.len());
    for e in &existing {
        // SAFETY: `e.ptr` points at `e.size` bytes of an ACE inside the old ACL, still alive.
        let mut bytes = unsafe { std::slice::from_raw_parts(e.ptr as *const u8, e.size as usize) }.to_vec();
        if same_entry(e, ace, &sid) && e.mask & drop_bits != 0 {
            changed = true;
            let mask = e.mask & !drop_bits;
            if mask == 0 {
                continue;
            }
            bytes[4..8].copy_from_slice(&mask.to_le_bytes());
        }
        out.push(bytes);
    }
    if !changed {
        return Ok(Outcome::Unchanged);
    }
    rewrite(path, &d, &out)?;
    Ok(Outcome::Changed)
}

/// Writes `entries` (whole ACEs, in order) as `path`'s DACL, in place of `d`, the DACL read
/// from it (not null), keeping its revision and protection.
fn rewrite(path: &Path, d: &Dacl, entries: &[Vec<u8>]) -> io::Result<()> {
    // SAFETY: `d.dacl` is a valid ACL; its header says its revision and size.
    let (revision, size) = unsafe { ((*d.dacl).AclRevision as u32, (*d.dacl).AclSize as u32) };
    let size = size.max(std::mem::size_of::<ACL>() as u32).next_multiple_of(4);
    let buf = AclBuf(vec![0u32; size as usize / 4]);
    // SAFETY: the buffer is `size` bytes, at least the old ACL's size, which held every entry.
    check(unsafe { InitializeAcl(buf.as_ptr(), size, revision) })?;
    for bytes in entries {
        // SAFETY: `bytes` is a complete ACE copied from the old ACL.
        check(unsafe { AddAce(buf.as_ptr(), revision, MAXDWORD, bytes.as_ptr().cast(), bytes.len() as u32) })?;
    }
    write(path, buf.as_ptr(), d.protection_flag())
}

/// A path's owner, DACL protection and allow and deny entries, as the elevated setup's facts
/// hold them.
#[derive(Clone, Debug)]
pub struct Security {
    pub owner: String,
    pub protected: bool,
    pub aces: Vec<RawAce>,
}

/// Reads the owner and DACL of `path` (allow and deny entries; other kinds are skipped);
/// `None` when it does not exist.
pub fn file_security(path: &Path) -> io::Result<Option<Security>> {
    let Some(d) = read(path, true)? else {
        return Ok(None);
    };
    let owner = match &d.owner {
        // SAFETY: `o` holds a valid SID.
        Some(o) => unsafe { sid_string(o.as_psid())? },
        None => String::new(),
    };
    let mut aces = Vec::new();
    for e in d.entries()? {
        let Some(kind) = e.kind else {
            continue;
        };
        let sid = e
            .sid
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "an access entry without a valid SID"))?;
        aces.push(RawAce {
            ace_type: match kind {
                AceKind::Allow => 0,
                AceKind::Deny => 1,
            },
            flags: e.flags,
            mask: e.mask,
            // SAFETY: `sid` holds a valid SID.
            sid: unsafe { sid_string(sid.as_psid())? },
        });
    }
    Ok(Some(Security { owner, protected: d.protected, aces }))
}

/// The inheritance flags of an [`AceSpec`].
fn inheritance_flags(inheritance: Inheritance) -> u8 {
    match inheritance {
        Inheritance::None => 0,
        Inheritance::ContainerAndObject => ace_flags::OBJECT_INHERIT_ACE | ace_flags::CONTAINER_INHERIT_ACE,
    }
}

/// What [`grant_ace`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Granted {
    /// The entry was merged into the object's DACL.
    Done,
    /// The object at the path is not the one the grant names (see
    /// [`palisade_windows_plan::grant_target`]); nothing was written.
    Refused(GrantRefusal),
}

/// Adds one allow ACE for `sid` to the DACL of the object at `path`, keeping every existing
/// entry (`SetEntriesInAcl` with `GRANT_ACCESS` merges it into the old DACL).
///
/// The elevated setup grants on paths the unelevated user controls, so the object is opened
/// once by handle without following a link on its last component, checked
/// ([`check_opened`]: not a reparse point, one name, its final path is `path`), and its DACL is
/// read and written through that same handle (`GetSecurityInfo` / `SetSecurityInfo`, which
/// also propagates inheritable entries to the folder's existing children, as the by-name
/// call did). Swapping the path for a junction after the check changes nothing: the handle
/// still names the object that was checked.
pub fn grant_ace(path: &WinPath, ace: &AceSpec, sid: &str) -> io::Result<Granted> {
    if ace.kind != AceKind::Allow {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "setup only adds allow entries"));
    }
    let h = open_unfollowed(Path::new(path.as_str()), READ_CONTROL | WRITE_DAC | FILE_READ_ATTRIBUTES)?;
    if let Err(refusal) = check_opened(path, &describe(&h)?) {
        return Ok(Granted::Refused(refusal));
    }
    let d = read_handle(&h)?;
    let sid = Sid::parse(sid)?;
    let entry = EXPLICIT_ACCESS_W {
        grfAccessPermissions: ace.rights.mask(),
        grfAccessMode: GRANT_ACCESS,
        grfInheritance: inheritance_flags(ace.inheritance) as u32,
        Trustee: TRUSTEE_W {
            pMultipleTrustee: std::ptr::null_mut(),
            MultipleTrusteeOperation: NO_MULTIPLE_TRUSTEE,
            TrusteeForm: TRUSTEE_IS_SID,
            TrusteeType: TRUSTEE_IS_UNKNOWN,
            ptstrName: sid.as_psid().cast(),
        },
    };
    let mut new_acl = LocalMem::null();
    let mut new_ptr: *mut ACL = std::ptr::null_mut();
    // SAFETY: one entry naming `sid`, alive for the call; the old ACL is the one we read (or
    // null); on success `new_ptr` is a LocalAlloc'd ACL freed by `new_acl`.
    win32(unsafe { SetEntriesInAclW(1, &entry, d.dacl, &mut new_ptr) })?;
    new_acl.0 = new_ptr.cast();
    // SAFETY: a handle opened with WRITE_DAC; `new_ptr` is a valid ACL that outlives the call.
    win32(unsafe {
        SetSecurityInfo(
            raw(&h),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | d.protection_flag(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            new_ptr,
            std::ptr::null(),
        )
    })?;
    Ok(Granted::Done)
}

/// Reads the DACL of the object `h` was opened on (with `READ_CONTROL`).
fn read_handle(h: &OwnedHandle) -> io::Result<Dacl> {
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd = LocalMem::null();
    // SAFETY: a handle opened with READ_CONTROL; on success `sd.0` receives a LocalAlloc'd
    // descriptor (freed by `LocalMem`) that `dacl` points into.
    win32(unsafe {
        GetSecurityInfo(
            raw(h),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd.0,
        )
    })?;
    let mut control: u16 = 0;
    let mut revision: u32 = 0;
    // SAFETY: `sd.0` is the descriptor the system just returned.
    check(unsafe { GetSecurityDescriptorControl(sd.0, &mut control, &mut revision) })?;
    Ok(Dacl { _sd: sd, dacl, protected: control & SE_DACL_PROTECTED != 0, owner: None })
}

/// Removes exactly the explicit ACE (kind, inheritance flags, mask, SID) from `path`'s DACL,
/// keeping every other entry. `false`: it was not there.
pub fn remove_ace(path: &Path, ace: &AceSpec, sid: &str) -> io::Result<bool> {
    let d = read_existing(path, false)?;
    let sid = Sid::parse(sid)?;
    let existing = d.entries()?;
    let want_flags = inheritance_flags(ace.inheritance);
    let inherit_mask = ace_flags::OBJECT_INHERIT_ACE | ace_flags::CONTAINER_INHERIT_ACE | ace_flags::INHERITED_ACE;
    let Some(index) = existing.iter().position(|e| {
        e.kind == Some(ace.kind)
            && e.flags & ace_flags::INHERITED_ACE == 0
            && e.flags & inherit_mask == want_flags
            && e.mask == ace.rights.mask()
            && e.sid.as_ref() == Some(&sid)
    }) else {
        return Ok(false);
    };
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(existing.len());
    for (i, e) in existing.iter().enumerate() {
        if i != index {
            // SAFETY: `e.ptr` points at `e.size` bytes of an ACE inside the old ACL, still alive.
            out.push(unsafe { std::slice::from_raw_parts(e.ptr as *const u8, e.size as usize) }.to_vec());
        }
    }
    rewrite(path, &d, &out)?;
    Ok(true)
}

/// A security descriptor built from SDDL; freed on drop.
pub struct Descriptor(LocalMem);

impl Descriptor {
    pub fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
        let w = wide(sddl)?;
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `w` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor.
        check(unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                w.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        })?;
        Ok(Descriptor(LocalMem(sd)))
    }

    pub fn as_ptr(&self) -> PSECURITY_DESCRIPTOR {
        self.0 .0
    }
}

/// Creates the folder with exactly this descriptor (SDDL: owner and DACL).
pub fn create_directory(path: &Path, sddl: &str) -> io::Result<()> {
    let sd = Descriptor::from_sddl(sddl)?;
    let w = wide(path)?;
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.as_ptr(),
        bInheritHandle: 0,
    };
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
        check(GetSecurityDescriptorOwner(sd.as_ptr(), &mut owner, &mut defaulted))?;
        check(GetSecurityDescriptorDacl(sd.as_ptr(), &mut present, &mut dacl, &mut defaulted))?;
    }
    let protection =
        if protected { PROTECTED_DACL_SECURITY_INFORMATION } else { UNPROTECTED_DACL_SECURITY_INFORMATION };
    let w = wide(path)?;
    // SAFETY: owner and DACL point into `sd`.
    win32(unsafe {
        SetNamedSecurityInfoW(
            w.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION | protection,
            owner,
            std::ptr::null_mut(),
            dacl,
            std::ptr::null(),
        )
    })
}
