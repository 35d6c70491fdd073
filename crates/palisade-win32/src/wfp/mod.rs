//! Windows Filtering Platform objects of the network fence: Palisade's persistent provider, its
//! sublayer, and the filters at `FWPM_LAYER_ALE_AUTH_CONNECT_V4/V6` that match the offline
//! account through `FWPM_CONDITION_ALE_USER_ID` (see `palisade_windows_elevated::firewall`).
//!
//! * [`palisade_objects`]: the provider and sublayer by key (`FwpmProviderGetByKey0`,
//!   `FwpmSubLayerGetByKey0`) and every filter of Palisade's provider in the two layers
//!   (`FwpmFilterEnum0`), read back condition by condition (`fence_api::FilterFields`).
//! * [`add_object`] adds one object as persistent, replacing an object of the same key, inside
//!   one WFP transaction (so a replaced filter is never missing); a provider or sublayer that is
//!   already there as wanted is left alone (it cannot be deleted while filters use it).
//! * [`remove_object`] deletes by key; `false` if it was not there.
//!
//! Keys are the GUIDs written in the objects' key strings (`firewall::stable_key`). Every
//! buffer WFP hands out is released with `FwpmFreeMemory0`.
//!
//! Under Wine 8 (fwpuclnt) `FwpmEngineOpen0` fails with 1764 (`RPC_S_UNKNOWN_AUTHN_SERVICE`)
//! for both `RPC_C_AUTHN_DEFAULT` and `RPC_C_AUTHN_WINNT`, so every function here ends in a
//! `FirewallError::Win32` naming `FwpmEngineOpen0` (`tests/wine_firewall.rs` asserts it); the
//! structure building and reading-back is unit-tested under Wine without the engine.

use std::ptr::{self, addr_of_mut};

use palisade_windows_elevated::fence_api::{self, FilterCondition, FilterFields, FilterWeight};
use palisade_windows_elevated::firewall::{provider, InstalledFilter, WfpLayer, WfpObject};
use windows_sys::core::{GUID, PWSTR};
use windows_sys::Win32::Foundation::{
    LocalFree, ERROR_SUCCESS, FWP_E_FILTER_NOT_FOUND, FWP_E_PROVIDER_NOT_FOUND, FWP_E_SUBLAYER_NOT_FOUND, HANDLE,
};
use windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::*;
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    IsValidSecurityDescriptor, DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR,
};
use windows_sys::Win32::System::Rpc::RPC_C_AUTHN_DEFAULT;

pub use crate::firewall::FirewallError;

mod read;
mod write;

#[cfg(test)]
use read::filter_fields;
pub use read::palisade_objects;
#[cfg(test)]
use write::build_filter;
pub use write::{add_object, remove_object};

fn check(call: &'static str, rc: u32) -> Result<(), FirewallError> {
    if rc == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(FirewallError::Win32 { call, code: rc })
    }
}

/// `rc` as "was it there": `Ok(false)` for the given not-found code.
fn check_found(call: &'static str, rc: u32, not_found: i32) -> Result<bool, FirewallError> {
    if rc == not_found as u32 {
        Ok(false)
    } else {
        check(call, rc).map(|()| true)
    }
}

fn guid_of(key: &str) -> Result<GUID, FirewallError> {
    fence_api::guid_from_key(key)
        .map(GUID::from_u128)
        .map_err(|e| FirewallError::BadInput { what: format!("WFP key `{key}`"), reason: e.to_string() })
}

fn key_of(g: &GUID) -> String {
    fence_api::key_from_guid(fence_api::guid_value(g.data1, g.data2, g.data3, g.data4))
}

fn same_guid(a: &GUID, b: &GUID) -> bool {
    (a.data1, a.data2, a.data3, a.data4) == (b.data1, b.data2, b.data3, b.data4)
}

pub fn layer_guid(layer: WfpLayer) -> GUID {
    match layer {
        WfpLayer::AleAuthConnectV4 => FWPM_LAYER_ALE_AUTH_CONNECT_V4,
        WfpLayer::AleAuthConnectV6 => FWPM_LAYER_ALE_AUTH_CONNECT_V6,
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A NUL-terminated UTF-16 string WFP or advapi32 handed out, as text ("" for null).
///
/// # Safety
/// `p` is null or points to a NUL-terminated UTF-16 string that stays valid for the call.
unsafe fn read_wide(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the caller promises a terminating NUL, so every unit up to it is readable.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units were just read.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A session with the filter engine (`FwpmEngineOpen0`, not dynamic: objects added through it
/// outlive it when they are persistent).
struct Engine(HANDLE);

impl Engine {
    fn open() -> Result<Engine, FirewallError> {
        let mut h: HANDLE = ptr::null_mut();
        // SAFETY: null server name, identity and session mean "local engine, default
        // session"; `h` is a valid out pointer.
        let rc = unsafe { FwpmEngineOpen0(ptr::null(), RPC_C_AUTHN_DEFAULT as u32, ptr::null(), ptr::null(), &mut h) };
        check("FwpmEngineOpen0", rc)?;
        Ok(Engine(h))
    }

    fn begin(&self) -> Result<Transaction<'_>, FirewallError> {
        // SAFETY: a live engine handle; flags 0 is a read-write transaction.
        check("FwpmTransactionBegin0", unsafe { FwpmTransactionBegin0(self.0, 0) })?;
        Ok(Transaction { engine: self, open: true })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the handle came from FwpmEngineOpen0 and is closed once.
        unsafe { FwpmEngineClose0(self.0) };
    }
}

/// An open transaction: aborted on drop unless committed.
struct Transaction<'a> {
    engine: &'a Engine,
    open: bool,
}

impl Transaction<'_> {
    fn commit(mut self) -> Result<(), FirewallError> {
        // SAFETY: a live engine handle with this transaction open.
        check("FwpmTransactionCommit0", unsafe { FwpmTransactionCommit0(self.engine.0) })?;
        // Only a successful commit ends the transaction; after a failed one Drop aborts it.
        self.open = false;
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // SAFETY: a live engine handle with this transaction open; nothing to report if
            // the abort fails (the engine drops the transaction when the session closes).
            unsafe { FwpmTransactionAbort0(self.engine.0) };
        }
    }
}

/// Memory WFP allocated, freed with `FwpmFreeMemory0`.
struct FwpmMemory<T>(*mut T);

impl<T> Drop for FwpmMemory<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            let mut p = self.0.cast::<core::ffi::c_void>();
            // SAFETY: the pointer came from a WFP function that documents FwpmFreeMemory0 as
            // its release, and is freed once.
            unsafe { FwpmFreeMemory0(&mut p) };
        }
    }
}

/// A self-relative security descriptor made from SDDL, freed with `LocalFree`.
struct SecurityDescriptor {
    sd: PSECURITY_DESCRIPTOR,
    len: u32,
}

impl SecurityDescriptor {
    fn from_sddl(sddl: &str) -> Result<SecurityDescriptor, FirewallError> {
        let text = wide(sddl);
        let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
        let mut len = 0u32;
        // SAFETY: `text` is NUL-terminated and outlives the call; `sd` and `len` are valid
        // out pointers. On success `sd` is a LocalAlloc'd buffer of `len` bytes.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(text.as_ptr(), SDDL_REVISION_1, &mut sd, &mut len)
        };
        if ok == 0 {
            return Err(FirewallError::Win32 {
                call: "ConvertStringSecurityDescriptorToSecurityDescriptorW",
                code: last_error(),
            });
        }
        Ok(SecurityDescriptor { sd, len })
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW, freed once.
        unsafe { LocalFree(self.sd) };
    }
}

fn last_error() -> u32 {
    // SAFETY: reads the calling thread's last-error value.
    unsafe { windows_sys::Win32::Foundation::GetLastError() }
}

/// The SDDL (owner, group, DACL) of a self-relative security descriptor WFP returned, or a
/// description of why it cannot be read.
fn sddl_of_blob(blob: *const FWP_BYTE_BLOB) -> Result<String, String> {
    if blob.is_null() {
        return Err("a null security descriptor".to_string());
    }
    // SAFETY: non-null pointer into the FWPM_FILTER0 WFP returned, valid while it lives.
    let blob = unsafe { &*blob };
    // 20 bytes is the size of the self-relative header.
    if blob.data.is_null() || blob.size < 20 {
        return Err(format!("a security descriptor of {} bytes", blob.size));
    }
    // SAFETY: `data` points to `size` bytes; IsValidSecurityDescriptor only reads it.
    if unsafe { IsValidSecurityDescriptor(blob.data.cast()) } == 0 {
        return Err("an invalid security descriptor".to_string());
    }
    let mut text: PWSTR = ptr::null_mut();
    // SAFETY: a valid self-relative descriptor; `text` receives a LocalAlloc'd string, freed below.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            blob.data.cast(),
            SDDL_REVISION_1,
            OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut text,
            ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(format!("a security descriptor without SDDL (error {})", last_error()));
    }
    // SAFETY: a NUL-terminated string from the call above; freed right after reading.
    let s = unsafe { read_wide(text) };
    // SAFETY: allocated by the call above, freed once.
    unsafe { LocalFree(text.cast()) };
    Ok(s)
}

#[cfg(test)]
mod tests;
