//! Adding and removing: one object at a time, persistent, inside one WFP transaction.

use super::read::{get_provider, get_sublayer};
use super::*;

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
pub(super) struct BuiltFilter {
    pub(super) filter: FWPM_FILTER0,
    _name: Vec<u16>,
    _provider: Box<GUID>,
    _conditions: Vec<FWPM_FILTER_CONDITION0>,
    _blobs: Vec<FWP_BYTE_BLOB>,
    _descriptors: Vec<SecurityDescriptor>,
}

/// The `FWPM_FILTER0` that adds `f`: in Palisade's provider, conditions from
/// `fence_api::filter_conditions`, weight as a range (`FWP_UINT8`).
pub(super) fn build_filter(f: &InstalledFilter) -> Result<BuiltFilter, FirewallError> {
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
    let mut blobs: Vec<FWP_BYTE_BLOB> =
        descriptors.iter().map(|d| FWP_BYTE_BLOB { size: d.len, data: d.sd.cast() }).collect();
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
            FilterCondition::Other(d) => {
                return Err(FirewallError::BadInput { what: what(), reason: format!("unknown condition {d}") })
            }
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
