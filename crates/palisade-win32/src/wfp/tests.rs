//! Unit tests of the wfp module (kept in their own file so every file stays short).

use super::*;
use palisade_windows_elevated::firewall::{offline_fence, stable_key};
use palisade_windows_elevated::sid::Sid;

#[test]
fn keys_become_the_guids_written_in_them() {
    let g = guid_of("{c38d57d1-05a7-4c33-904f-7fbceee60e82}").unwrap();
    assert!(same_guid(&g, &FWPM_LAYER_ALE_AUTH_CONNECT_V4));
    assert_eq!(key_of(&FWPM_LAYER_ALE_AUTH_CONNECT_V6), "{4a72393b-319f-44bc-84c3-ba54dcb3b6b4}");
    let k = stable_key("Palisade");
    assert_eq!(key_of(&guid_of(&k).unwrap()), k);
    assert!(matches!(guid_of("Palisade"), Err(FirewallError::BadInput { .. })));
}

#[test]
fn sddl_round_trips_through_a_security_descriptor() {
    let sddl = "O:LSD:(A;;CC;;;S-1-5-21-1-2-3-1011)";
    let sd = SecurityDescriptor::from_sddl(sddl).unwrap();
    let blob = FWP_BYTE_BLOB { size: sd.len, data: sd.sd.cast() };
    assert_eq!(sddl_of_blob(&blob).unwrap(), sddl);
    assert!(sddl_of_blob(ptr::null()).is_err());
    let short = FWP_BYTE_BLOB { size: 4, data: sd.sd.cast() };
    assert!(sddl_of_blob(&short).is_err());
    assert!(matches!(SecurityDescriptor::from_sddl("not sddl"), Err(FirewallError::Win32 { .. })));
}

#[test]
fn filters_read_back_from_the_structures_they_are_added_with() {
    let sid = Sid::parse("S-1-5-21-1-2-3-1011").unwrap();
    for spec in offline_fence(&[3128, 8877]).unwrap().filters {
        let WfpObject::Filter(f) = spec.render(&sid) else { panic!() };
        let mut built = build_filter(&f).unwrap();
        assert!(same_guid(&built.filter.layerKey, &layer_guid(f.layer)));
        // SAFETY: the provider key points into `built`.
        assert_eq!(key_of(unsafe { &*built.filter.providerKey }), provider().key());
        // Moving the built filter keeps its pointers valid.
        let moved = std::mem::replace(&mut built, build_filter(&f).unwrap());
        assert_eq!(filter_fields(&moved.filter, f.layer).to_filter(), f);
        // An unknown condition makes it unequal, not an error.
        // SAFETY: the condition array is owned by `built` and has at least one entry.
        unsafe { (*built.filter.filterCondition).fieldKey = FWPM_CONDITION_IP_LOCAL_PORT };
        let odd = filter_fields(&built.filter, f.layer).to_filter();
        assert!(odd.user_sddl.starts_with("(unrecognized: "), "{odd:?}");
    }
}

#[test]
fn filters_palisade_cannot_express_are_refused() {
    let sid = Sid::parse("S-1-5-21-1-2-3-1011").unwrap();
    let WfpObject::Filter(f) = offline_fence(&[]).unwrap().filters[0].render(&sid) else { panic!() };
    let heavy = InstalledFilter { weight: 16, ..f.clone() };
    assert!(matches!(build_filter(&heavy), Err(FirewallError::BadInput { .. })));
    let bad_sddl = InstalledFilter { user_sddl: "not sddl".into(), ..f.clone() };
    assert!(matches!(
        build_filter(&bad_sddl),
        Err(FirewallError::Win32 { call: "ConvertStringSecurityDescriptorToSecurityDescriptorW", .. })
    ));
    let bad_key = InstalledFilter { key: "Palisade".into(), ..f };
    assert!(matches!(build_filter(&bad_key), Err(FirewallError::BadInput { .. })));
}
