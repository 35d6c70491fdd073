//! Reading: Palisade's provider, sublayer and filters as they are in the engine, read back
//! condition by condition.

use super::*;

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

pub(super) fn get_provider(engine: &Engine, key: &str) -> Result<Option<WfpObject>, FirewallError> {
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

pub(super) fn get_sublayer(engine: &Engine, key: &str) -> Result<Option<WfpObject>, FirewallError> {
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

fn filters_of_provider(
    engine: &Engine,
    provider_key: &str,
    layer: WfpLayer,
) -> Result<Vec<InstalledFilter>, FirewallError> {
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

fn enumerate_filters(
    engine: &Engine,
    handle: HANDLE,
    provider_guid: &GUID,
    layer: WfpLayer,
) -> Result<Vec<InstalledFilter>, FirewallError> {
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
pub(super) fn filter_fields(f: &FWPM_FILTER0, layer: WfpLayer) -> FilterFields {
    let conditions = if f.numFilterConditions == 0 {
        Vec::new()
    } else if f.filterCondition.is_null() {
        vec![FilterCondition::Other(format!("{} conditions missing", f.numFilterConditions))]
    } else {
        // SAFETY: WFP returned `numFilterConditions` conditions at a non-null pointer, alive
        // as long as the filter.
        unsafe { std::slice::from_raw_parts(f.filterCondition, f.numFilterConditions as usize) }
            .iter()
            .map(read_condition)
            .collect()
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
