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
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    IsValidSecurityDescriptor, DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
};
use windows_sys::Win32::System::Rpc::RPC_C_AUTHN_DEFAULT;

pub use crate::firewall::FirewallError;

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
        let ok = unsafe { ConvertStringSecurityDescriptorToSecurityDescriptorW(text.as_ptr(), SDDL_REVISION_1, &mut sd, &mut len) };
        if ok == 0 {
            return Err(FirewallError::Win32 { call: "ConvertStringSecurityDescriptorToSecurityDescriptorW", code: last_error() });
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

// ---------------------------------------------------------------------------------------------
// Reading

/// Palisade's provider, sublayer and filters, as they are in the engine.
pub fn palisade_objects() -> Result<Vec<WfpObject>, FirewallError> {
    let engine = Engine::open()?;
    let mut out = Vec::new();
    let WfpObject::Provider { key: provider_key, .. } = provider() else { unreachable!("provider() is a provider") };
    if let Some(p) = get_provider(&engine, &provider_key)? {
        out.push(p);
    }
    let sublayer = palisade_windows_elevated::firewall::sublayer();
    if let Some(s) = get_sublayer(&engine, sublayer.key())? {
        out.push(s);
    }
    for layer in [WfpLayer::AleAuthConnectV4, WfpLayer::AleAuthConnectV6] {
        out.extend(filters_of_provider(&engine, &provider_key, layer)?.into_iter().map(WfpObject::Filter));
    }
    Ok(out)
}

fn get_provider(engine: &Engine, key: &str) -> Result<Option<WfpObject>, FirewallError> {
    let guid = guid_of(key)?;
    let mut p: *mut FWPM_PROVIDER0 = ptr::null_mut();
    // SAFETY: live engine handle, valid key and out pointers; the result is freed by `mem`.
    let rc = unsafe { FwpmProviderGetByKey0(engine.0, &guid, &mut p) };
    let mem = FwpmMemory(p);
    if !check_found("FwpmProviderGetByKey0", rc, FWP_E_PROVIDER_NOT_FOUND)? || mem.0.is_null() {
        return Ok(None);
    }
    // SAFETY: a non-null FWPM_PROVIDER0 from WFP, alive until `mem` drops.
    let p = unsafe { &*mem.0 };
    // SAFETY: WFP's name is null or NUL-terminated, alive until `mem` drops.
    let name = unsafe { read_wide(p.displayData.name) };
    Ok(Some(WfpObject::Provider { key: key_of(&p.providerKey), name }))
}

fn get_sublayer(engine: &Engine, key: &str) -> Result<Option<WfpObject>, FirewallError> {
    let guid = guid_of(key)?;
    let mut s: *mut FWPM_SUBLAYER0 = ptr::null_mut();
    // SAFETY: live engine handle, valid key and out pointers; the result is freed by `mem`.
    let rc = unsafe { FwpmSubLayerGetByKey0(engine.0, &guid, &mut s) };
    let mem = FwpmMemory(s);
    if !check_found("FwpmSubLayerGetByKey0", rc, FWP_E_SUBLAYER_NOT_FOUND)? || mem.0.is_null() {
        return Ok(None);
    }
    // SAFETY: a non-null FWPM_SUBLAYER0 from WFP, alive until `mem` drops.
    let s = unsafe { &*mem.0 };
    // SAFETY: WFP's name is null or NUL-terminated, alive until `mem` drops.
    let name = unsafe { read_wide(s.displayData.name) };
    // SAFETY: a non-null provider key pointer in the sublayer points to its GUID.
    let provider_key = if s.providerKey.is_null() { String::new() } else { key_of(unsafe { &*s.providerKey }) };
    Ok(Some(WfpObject::Sublayer { key: key_of(&s.subLayerKey), name, provider_key, weight: s.weight }))
}

/// Page size of filter enumeration.
const ENUM_PAGE: u32 = 64;

fn filters_of_provider(engine: &Engine, provider_key: &str, layer: WfpLayer) -> Result<Vec<InstalledFilter>, FirewallError> {
    let mut provider_guid = guid_of(provider_key)?;
    // SAFETY: an all-zero FWPM_FILTER_ENUM_TEMPLATE0 is valid (null pointers, no conditions);
    // the fields that matter are set below.
    let mut template: FWPM_FILTER_ENUM_TEMPLATE0 = unsafe { std::mem::zeroed() };
    template.providerKey = addr_of_mut!(provider_guid);
    template.layerKey = layer_guid(layer);
    template.enumType = FWP_FILTER_ENUM_OVERLAPPING;
    template.actionMask = u32::MAX;
    let mut handle: HANDLE = ptr::null_mut();
    // SAFETY: live engine handle; the template and the GUID it points to outlive the call.
    check("FwpmFilterCreateEnumHandle0", unsafe { FwpmFilterCreateEnumHandle0(engine.0, &template, &mut handle) })?;
    let result = enumerate_filters(engine, handle, &provider_guid, layer);
    // SAFETY: the handle came from FwpmFilterCreateEnumHandle0 and is destroyed once.
    let rc = unsafe { FwpmFilterDestroyEnumHandle0(engine.0, handle) };
    let filters = result?;
    check("FwpmFilterDestroyEnumHandle0", rc)?;
    Ok(filters)
}

fn enumerate_filters(engine: &Engine, handle: HANDLE, provider_guid: &GUID, layer: WfpLayer) -> Result<Vec<InstalledFilter>, FirewallError> {
    let mut out = Vec::new();
    loop {
        let mut entries: *mut *mut FWPM_FILTER0 = ptr::null_mut();
        let mut n = 0u32;
        // SAFETY: live engine and enumeration handles; valid out pointers. The array is freed
        // by `mem` (one FwpmFreeMemory0 releases the array and the filters in it).
        let rc = unsafe { FwpmFilterEnum0(engine.0, handle, ENUM_PAGE, &mut entries, &mut n) };
        let mem = FwpmMemory(entries);
        check("FwpmFilterEnum0", rc)?;
        if mem.0.is_null() || n == 0 {
            break;
        }
        // SAFETY: WFP returned an array of `n` filter pointers, alive until `mem` drops.
        let page = unsafe { std::slice::from_raw_parts(mem.0, n as usize) };
        for &f in page {
            if f.is_null() {
                continue;
            }
            // SAFETY: a non-null filter in the array, alive until `mem` drops.
            let f = unsafe { &*f };
            // The template already selects the provider; checked again so nothing else is
            // ever reported (and deleted) as Palisade's.
            // SAFETY: a non-null provider key pointer in the filter points to its GUID.
            let ours = !f.providerKey.is_null() && same_guid(unsafe { &*f.providerKey }, provider_guid);
            if !ours {
                continue;
            }
            out.push(filter_fields(f, layer).to_filter());
        }
        if n < ENUM_PAGE {
            break;
        }
    }
    Ok(out)
}

/// A filter WFP returned, in Palisade's spelling.
fn filter_fields(f: &FWPM_FILTER0, layer: WfpLayer) -> FilterFields {
    let conditions = if f.numFilterConditions == 0 {
        Vec::new()
    } else if f.filterCondition.is_null() {
        vec![FilterCondition::Other(format!("{} conditions missing", f.numFilterConditions))]
    } else {
        // SAFETY: WFP returned `numFilterConditions` conditions at a non-null pointer, alive
        // as long as the filter.
        unsafe { std::slice::from_raw_parts(f.filterCondition, f.numFilterConditions as usize) }.iter().map(read_condition).collect()
    };
    // SAFETY: the name is null or NUL-terminated, alive as long as the filter.
    let name = unsafe { read_wide(f.displayData.name) };
    FilterFields {
        key: key_of(&f.filterKey),
        name,
        sublayer_key: key_of(&f.subLayerKey),
        layer,
        permit: match f.action.r#type {
            FWP_ACTION_PERMIT => Some(true),
            FWP_ACTION_BLOCK => Some(false),
            _ => None,
        },
        // SAFETY: the union member read is the one `type` names; the UINT64 pointer is checked.
        weight: unsafe {
            match f.weight.r#type {
                FWP_UINT8 => FilterWeight::Range(f.weight.Anonymous.uint8),
                FWP_UINT64 if !f.weight.Anonymous.uint64.is_null() => FilterWeight::Full(*f.weight.Anonymous.uint64),
                _ => FilterWeight::Other,
            }
        },
        conditions,
        persistent: f.flags & FWPM_FILTER_FLAG_PERSISTENT != 0,
    }
}

fn read_condition(c: &FWPM_FILTER_CONDITION0) -> FilterCondition {
    let v = &c.conditionValue;
    let k = &c.fieldKey;
    match (v.r#type, c.matchType) {
        (FWP_SECURITY_DESCRIPTOR_TYPE, FWP_MATCH_EQUAL) if same_guid(k, &FWPM_CONDITION_ALE_USER_ID) => {
            // SAFETY: `type` says the live union member is `sd`.
            let sd = unsafe { v.Anonymous.sd };
            match sddl_of_blob(sd) {
                Ok(s) => FilterCondition::UserSddl(s),
                Err(why) => FilterCondition::Other(format!("user condition with {why}")),
            }
        }
        (FWP_UINT32, FWP_MATCH_FLAGS_ALL_SET) if same_guid(k, &FWPM_CONDITION_FLAGS) => {
            // SAFETY: `type` says the live union member is `uint32`.
            let flags = unsafe { v.Anonymous.uint32 };
            if flags == FWP_CONDITION_FLAG_IS_LOOPBACK {
                FilterCondition::Loopback
            } else {
                FilterCondition::Other(format!("flags condition {flags:#x}"))
            }
        }
        (FWP_UINT8, FWP_MATCH_EQUAL) if same_guid(k, &FWPM_CONDITION_IP_PROTOCOL) => {
            // SAFETY: `type` says the live union member is `uint8`.
            FilterCondition::IpProtocol(unsafe { v.Anonymous.uint8 })
        }
        (FWP_UINT16, FWP_MATCH_EQUAL) if same_guid(k, &FWPM_CONDITION_IP_REMOTE_PORT) => {
            // SAFETY: `type` says the live union member is `uint16`.
            FilterCondition::RemotePort(unsafe { v.Anonymous.uint16 })
        }
        (t, m) => FilterCondition::Other(format!("condition {} match {m} type {t}", key_of(k))),
    }
}

// ---------------------------------------------------------------------------------------------
// Adding and removing

/// Adds one object, persistent, replacing an object of the same key.
pub fn add_object(obj: &WfpObject) -> Result<(), FirewallError> {
    let engine = Engine::open()?;
    match obj {
        WfpObject::Provider { key, name } => {
            if get_provider(&engine, key)?.as_ref() == Some(obj) {
                return Ok(());
            }
            let tx = engine.begin()?;
            delete_provider(&engine, key)?;
            add_provider(&engine, key, name)?;
            tx.commit()
        }
        WfpObject::Sublayer { key, name, provider_key, weight } => {
            if get_sublayer(&engine, key)?.as_ref() == Some(obj) {
                return Ok(());
            }
            let tx = engine.begin()?;
            delete_sublayer(&engine, key)?;
            add_sublayer(&engine, key, name, provider_key, *weight)?;
            tx.commit()
        }
        WfpObject::Filter(f) => {
            let tx = engine.begin()?;
            delete_filter(&engine, &f.key)?;
            add_filter(&engine, f)?;
            tx.commit()
        }
    }
}

/// Deletes one object by key; `false` if it was not there.
pub fn remove_object(obj: &WfpObject) -> Result<bool, FirewallError> {
    let engine = Engine::open()?;
    match obj {
        WfpObject::Provider { key, .. } => delete_provider(&engine, key),
        WfpObject::Sublayer { key, .. } => delete_sublayer(&engine, key),
        WfpObject::Filter(f) => delete_filter(&engine, &f.key),
    }
}

fn delete_provider(engine: &Engine, key: &str) -> Result<bool, FirewallError> {
    let guid = guid_of(key)?;
    // SAFETY: live engine handle; the key outlives the call.
    let rc = unsafe { FwpmProviderDeleteByKey0(engine.0, &guid) };
    check_found("FwpmProviderDeleteByKey0", rc, FWP_E_PROVIDER_NOT_FOUND)
}

fn delete_sublayer(engine: &Engine, key: &str) -> Result<bool, FirewallError> {
    let guid = guid_of(key)?;
    // SAFETY: live engine handle; the key outlives the call.
    let rc = unsafe { FwpmSubLayerDeleteByKey0(engine.0, &guid) };
    check_found("FwpmSubLayerDeleteByKey0", rc, FWP_E_SUBLAYER_NOT_FOUND)
}

fn delete_filter(engine: &Engine, key: &str) -> Result<bool, FirewallError> {
    let guid = guid_of(key)?;
    // SAFETY: live engine handle; the key outlives the call.
    let rc = unsafe { FwpmFilterDeleteByKey0(engine.0, &guid) };
    check_found("FwpmFilterDeleteByKey0", rc, FWP_E_FILTER_NOT_FOUND)
}

fn display_data(name: &mut [u16]) -> FWPM_DISPLAY_DATA0 {
    FWPM_DISPLAY_DATA0 { name: name.as_mut_ptr(), description: ptr::null_mut() }
}

fn empty_blob() -> FWP_BYTE_BLOB {
    FWP_BYTE_BLOB { size: 0, data: ptr::null_mut() }
}

fn add_provider(engine: &Engine, key: &str, name: &str) -> Result<(), FirewallError> {
    let mut name = wide(name);
    let p = FWPM_PROVIDER0 {
        providerKey: guid_of(key)?,
        displayData: display_data(&mut name),
        flags: FWPM_PROVIDER_FLAG_PERSISTENT,
        providerData: empty_blob(),
        serviceName: ptr::null_mut(),
    };
    // SAFETY: live engine handle; the structure and the name it points to outlive the call;
    // a null descriptor means the default security.
    check("FwpmProviderAdd0", unsafe { FwpmProviderAdd0(engine.0, &p, ptr::null_mut()) })
}

fn add_sublayer(engine: &Engine, key: &str, name: &str, provider_key: &str, weight: u16) -> Result<(), FirewallError> {
    let mut name = wide(name);
    let mut provider = guid_of(provider_key)?;
    let s = FWPM_SUBLAYER0 {
        subLayerKey: guid_of(key)?,
        displayData: display_data(&mut name),
        flags: FWPM_SUBLAYER_FLAG_PERSISTENT,
        providerKey: addr_of_mut!(provider),
        providerData: empty_blob(),
        weight,
    };
    // SAFETY: live engine handle; the structure and everything it points to outlive the call.
    check("FwpmSubLayerAdd0", unsafe { FwpmSubLayerAdd0(engine.0, &s, ptr::null_mut()) })
}

/// An `FWPM_FILTER0` together with everything it points to. The pointers in `filter` lead into
/// heap buffers (vectors, a box, LocalAlloc'd descriptors) owned here, so they stay valid when
/// the value moves, for as long as it lives.
struct BuiltFilter {
    filter: FWPM_FILTER0,
    _name: Vec<u16>,
    _provider: Box<GUID>,
    _conditions: Vec<FWPM_FILTER_CONDITION0>,
    _blobs: Vec<FWP_BYTE_BLOB>,
    _descriptors: Vec<SecurityDescriptor>,
}

/// The `FWPM_FILTER0` that adds `f`: in Palisade's provider, conditions from
/// `fence_api::filter_conditions`, weight as a range (`FWP_UINT8`).
fn build_filter(f: &InstalledFilter) -> Result<BuiltFilter, FirewallError> {
    let what = || format!("WFP filter `{}`", f.name);
    if f.weight > 15 {
        return Err(FirewallError::BadInput { what: what(), reason: format!("weight range {} is above 15", f.weight) });
    }
    let conditions = fence_api::filter_conditions(f);
    let mut descriptors = Vec::new();
    for c in &conditions {
        if let FilterCondition::UserSddl(s) = c {
            descriptors.push(SecurityDescriptor::from_sddl(s)?);
        }
    }
    // Complete before any pointer into it is taken, so it never reallocates afterwards.
    let mut blobs: Vec<FWP_BYTE_BLOB> = descriptors.iter().map(|d| FWP_BYTE_BLOB { size: d.len, data: d.sd.cast() }).collect();
    let mut wfp_conditions = Vec::with_capacity(conditions.len());
    let mut next_blob = 0;
    for c in &conditions {
        // SAFETY: an all-zero FWP_CONDITION_VALUE0 is FWP_EMPTY; the member set below is the
        // one `type` names.
        let mut value: FWP_CONDITION_VALUE0 = unsafe { std::mem::zeroed() };
        let (field, matching) = match c {
            FilterCondition::UserSddl(_) => {
                value.r#type = FWP_SECURITY_DESCRIPTOR_TYPE;
                value.Anonymous.sd = addr_of_mut!(blobs[next_blob]);
                next_blob += 1;
                (FWPM_CONDITION_ALE_USER_ID, FWP_MATCH_EQUAL)
            }
            FilterCondition::Loopback => {
                value.r#type = FWP_UINT32;
                value.Anonymous.uint32 = FWP_CONDITION_FLAG_IS_LOOPBACK;
                (FWPM_CONDITION_FLAGS, FWP_MATCH_FLAGS_ALL_SET)
            }
            FilterCondition::IpProtocol(p) => {
                value.r#type = FWP_UINT8;
                value.Anonymous.uint8 = *p;
                (FWPM_CONDITION_IP_PROTOCOL, FWP_MATCH_EQUAL)
            }
            FilterCondition::RemotePort(p) => {
                value.r#type = FWP_UINT16;
                value.Anonymous.uint16 = *p;
                (FWPM_CONDITION_IP_REMOTE_PORT, FWP_MATCH_EQUAL)
            }
            FilterCondition::Other(d) => return Err(FirewallError::BadInput { what: what(), reason: format!("unknown condition {d}") }),
        };
        wfp_conditions.push(FWPM_FILTER_CONDITION0 { fieldKey: field, matchType: matching, conditionValue: value });
    }
    let mut name = wide(&f.name);
    let WfpObject::Provider { key: provider_key, .. } = provider() else { unreachable!("provider() is a provider") };
    let mut provider_guid = Box::new(guid_of(&provider_key)?);
    // SAFETY: an all-zero FWPM_FILTER0 is valid (null pointers, FWP_EMPTY values, no context);
    // the fields that matter are set below.
    let mut filter: FWPM_FILTER0 = unsafe { std::mem::zeroed() };
    filter.filterKey = guid_of(&f.key)?;
    filter.displayData = display_data(&mut name);
    filter.flags = if f.persistent { FWPM_FILTER_FLAG_PERSISTENT } else { FWPM_FILTER_FLAG_NONE };
    filter.providerKey = &mut *provider_guid;
    filter.layerKey = layer_guid(f.layer);
    filter.subLayerKey = guid_of(&f.sublayer_key)?;
    filter.weight.r#type = FWP_UINT8;
    filter.weight.Anonymous.uint8 = f.weight;
    filter.numFilterConditions = wfp_conditions.len() as u32;
    filter.filterCondition = wfp_conditions.as_mut_ptr();
    filter.action.r#type = if f.permit { FWP_ACTION_PERMIT } else { FWP_ACTION_BLOCK };
    Ok(BuiltFilter {
        filter,
        _name: name,
        _provider: provider_guid,
        _conditions: wfp_conditions,
        _blobs: blobs,
        _descriptors: descriptors,
    })
}

fn add_filter(engine: &Engine, f: &InstalledFilter) -> Result<(), FirewallError> {
    let built = build_filter(f)?;
    let mut id = 0u64;
    // SAFETY: live engine handle; `built` owns everything the filter points to and outlives
    // the call.
    let rc = unsafe { FwpmFilterAdd0(engine.0, &built.filter, ptr::null_mut(), &mut id) };
    check("FwpmFilterAdd0", rc)
}

#[cfg(test)]
mod tests;
