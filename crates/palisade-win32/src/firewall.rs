//! Windows Firewall rules of the network fence, through the firewall's COM API
//! (`HNetCfg.FwPolicy2` = `INetFwPolicy2`, rules as `INetFwRule3`).
//!
//! * [`firewall_profiles`]: per profile, whether the firewall is on and whether it applies
//!   locally added rules (Group Policy's "apply local firewall rules", seen through
//!   `LocalPolicyModifyState` for the profiles in force and the policy value
//!   `AllowLocalPolicyMerge` for every profile).
//! * [`palisade_rules`]: every rule whose name starts with `Palisade`, read back field by field
//!   (`fence_api::RuleFields`; a rule narrowed by hand reads back as unequal to Palisade's).
//! * [`add_rule`] replaces any rule of the same name (and checks the rule is there afterwards);
//!   [`remove_rule`] deletes every rule of a name.
//!
//! COM is entered (multithreaded) for each call and left again when the call is done; a thread
//! that is already in a single-threaded apartment keeps it.
//!
//! Under Wine 8 (hnetcfg) the policy object and its rule collection are created, but
//! `CurrentProfileTypes`, `FirewallEnabled`, `LocalPolicyModifyState`, `_NewEnum` and `Item`
//! return `E_NOTIMPL`, `NetFwRule` has no `INetFwRule3` (`E_NOINTERFACE`), and `Add`/`Remove`
//! return success without effect (`Count` stays 0). Every function here therefore ends in a
//! `FirewallError::Com` naming the unimplemented call (`tests/wine_firewall.rs` asserts each).
//! Because `Remove` can report success without removing, [`remove_rule`] asks `Item` before
//! and after and never trusts `Remove` alone. The error type is shared with the `wfp` module.

use palisade_windows_elevated::facts::{FirewallFacts, FirewallProfile, FirewallProfileFact};
use palisade_windows_elevated::fence_api::{self, RuleFields};
use palisade_windows_elevated::firewall::{InstalledRule, RULE_PREFIX};
use windows::core::{Interface, BSTR, HRESULT};
use windows::Win32::Foundation::{ERROR_FILE_NOT_FOUND, RPC_E_CHANGED_MODE, VARIANT_BOOL};
use windows::Win32::NetworkManagement::WindowsFirewall::{
    INetFwPolicy2, INetFwRule, INetFwRule3, INetFwRules, NetFwPolicy2, NetFwRule, NET_FW_ACTION, NET_FW_PROFILE_TYPE2,
    NET_FW_RULE_DIRECTION,
};
use windows::Win32::System::Com::{
    CoCreateInstance, CoInitializeEx, CoUninitialize, IDispatch, CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED,
};
use windows::Win32::System::Ole::IEnumVARIANT;
use windows::Win32::System::Variant::{VariantClear, VARIANT, VT_DISPATCH};

/// A firewall or WFP call that failed, or input that cannot be handed to it.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A COM method (Windows Firewall) returned a failure HRESULT.
    #[error("{call} failed: HRESULT {hresult:#010x}")]
    Com { call: &'static str, hresult: u32 },
    /// A Win32 or WFP function returned an error code (WFP's are `FWP_E_*`, 0x8032xxxx).
    #[error("{call} failed: error {code} ({code:#010x})")]
    Win32 { call: &'static str, code: u32 },
    /// The object to add cannot be expressed through the API.
    #[error("cannot install {what}: {reason}")]
    BadInput { what: String, reason: String },
    /// The system said it did something it did not do.
    #[error("{call} had no effect: {what}")]
    NoEffect { call: &'static str, what: String },
}

impl FirewallError {
    /// The HRESULT or error code, if a call failed.
    pub fn code(&self) -> Option<u32> {
        match self {
            FirewallError::Com { hresult, .. } => Some(*hresult),
            FirewallError::Win32 { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn com_error(call: &'static str) -> impl FnOnce(windows::core::Error) -> FirewallError {
    move |e| FirewallError::Com { call, hresult: e.code().0 as u32 }
}

/// `HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)`: what `INetFwRules::Item` returns for a name
/// that is not there.
const RULE_NOT_FOUND: HRESULT = HRESULT::from_win32(ERROR_FILE_NOT_FOUND.0);

/// Most rules of one name `remove_rule` deletes before it gives up (a `Remove` that reports
/// success without removing would otherwise loop forever).
const MAX_SAME_NAME: usize = 64;

/// COM entered on this thread for the length of one call.
struct ComScope {
    leave: bool,
}

impl ComScope {
    fn enter() -> Result<ComScope, FirewallError> {
        // SAFETY: plain call with no pointers; balanced by `CoUninitialize` in `Drop` when it
        // succeeds (S_OK or S_FALSE both count).
        let hr = unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) };
        if hr == RPC_E_CHANGED_MODE {
            // The thread is already in a single-threaded apartment; COM is usable as it is.
            return Ok(ComScope { leave: false });
        }
        hr.ok().map_err(com_error("CoInitializeEx"))?;
        Ok(ComScope { leave: true })
    }
}

impl Drop for ComScope {
    fn drop(&mut self) {
        if self.leave {
            // SAFETY: balances the successful `CoInitializeEx` of `enter`; every interface
            // created in the scope is declared after it and so released before this runs.
            unsafe { CoUninitialize() };
        }
    }
}

fn open_policy() -> Result<INetFwPolicy2, FirewallError> {
    // SAFETY: creates the in-process firewall policy object; the CLSID is a constant.
    unsafe { CoCreateInstance(&NetFwPolicy2, None, CLSCTX_INPROC_SERVER) }
        .map_err(com_error("CoCreateInstance(NetFwPolicy2)"))
}

fn policy_rules(policy: &INetFwPolicy2) -> Result<INetFwRules, FirewallError> {
    // SAFETY: COM method on a live interface; returns an owned interface.
    unsafe { policy.Rules() }.map_err(com_error("INetFwPolicy2::Rules"))
}

/// Per profile: firewall on, local rules honored.
pub fn firewall_profiles() -> Result<Vec<FirewallProfileFact>, FirewallError> {
    let _com = ComScope::enter()?;
    let policy = open_policy()?;
    // SAFETY: COM property reads on a live interface, results by value.
    let current = unsafe { policy.CurrentProfileTypes() }.map_err(com_error("INetFwPolicy2::CurrentProfileTypes"))?;
    // SAFETY: as above.
    let modify_state =
        unsafe { policy.LocalPolicyModifyState() }.map_err(com_error("INetFwPolicy2::LocalPolicyModifyState"))?;
    let mut facts = Vec::new();
    for profile in FirewallProfile::ALL {
        let bit = fence_api::profile_bit(profile);
        // SAFETY: as above; the profile type is one of the three single-profile constants.
        let enabled = unsafe { policy.get_FirewallEnabled(NET_FW_PROFILE_TYPE2(bit)) }
            .map_err(com_error("INetFwPolicy2::get_FirewallEnabled"))?;
        let merge = policy_dword(fence_api::policy_subkey(profile), "AllowLocalPolicyMerge")?;
        facts.push(FirewallProfileFact {
            profile,
            enabled: enabled.as_bool(),
            local_rules_honored: fence_api::local_rules_honored(current & bit != 0, modify_state.0, merge),
        });
    }
    Ok(facts)
}

/// A DWORD under `HKLM\SOFTWARE\Policies\Microsoft\WindowsFirewall\<subkey>`, `None` if not set.
fn policy_dword(subkey: &str, value: &str) -> Result<Option<u32>, FirewallError> {
    use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS};
    use windows_sys::Win32::System::Registry::{RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_DWORD};
    let key = wide(&format!("SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\{subkey}"));
    let name = wide(value);
    let mut data: u32 = 0;
    let mut size = std::mem::size_of::<u32>() as u32;
    // SAFETY: both strings are NUL-terminated and outlive the call; `data` has room for the
    // DWORD that RRF_RT_REG_DWORD restricts the value to, and `size` says so.
    let rc = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            name.as_ptr(),
            RRF_RT_REG_DWORD,
            std::ptr::null_mut(),
            std::ptr::addr_of_mut!(data).cast(),
            &mut size,
        )
    };
    match rc {
        ERROR_SUCCESS => Ok(Some(data)),
        ERROR_FILE_NOT_FOUND => Ok(None),
        code => Err(FirewallError::Win32 { call: "RegGetValueW(WindowsFirewall policy)", code }),
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Everything `MachineFacts::firewall` holds: profiles, Palisade's rules, its WFP objects.
pub fn firewall_facts() -> Result<FirewallFacts, FirewallError> {
    Ok(FirewallFacts { profiles: firewall_profiles()?, rules: palisade_rules()?, wfp: crate::wfp::palisade_objects()? })
}

/// Every rule whose name starts with `Palisade`, read back.
pub fn palisade_rules() -> Result<Vec<InstalledRule>, FirewallError> {
    let _com = ComScope::enter()?;
    let policy = open_policy()?;
    let rules = policy_rules(&policy)?;
    let mut out = Vec::new();
    for rule in all_rules(&rules)? {
        // SAFETY: COM property read on a live interface.
        let name = unsafe { rule.Name() }.map_err(com_error("INetFwRule::Name"))?.to_string();
        if name.starts_with(RULE_PREFIX) {
            let rule3: INetFwRule3 = rule.cast().map_err(com_error("QueryInterface(INetFwRule3)"))?;
            out.push(read_rule(&rule3)?.to_rule());
        }
    }
    Ok(out)
}

/// Every rule of the collection, through its `IEnumVARIANT`.
fn all_rules(rules: &INetFwRules) -> Result<Vec<INetFwRule>, FirewallError> {
    // SAFETY: COM method on a live interface; returns an owned interface.
    let unknown = unsafe { rules._NewEnum() }.map_err(com_error("INetFwRules::_NewEnum"))?;
    let items: IEnumVARIANT = unknown.cast().map_err(com_error("QueryInterface(IEnumVARIANT)"))?;
    let mut out = Vec::new();
    loop {
        let mut slot = [VARIANT::default()];
        let mut fetched = 0u32;
        // SAFETY: `slot` is one zeroed (VT_EMPTY) VARIANT the enumerator fills; `fetched` is a
        // valid out pointer.
        let hr = unsafe { items.Next(&mut slot, &mut fetched) };
        hr.ok().map_err(com_error("IEnumVARIANT::Next"))?;
        if fetched == 0 {
            break;
        }
        // SAFETY: the VARIANT was filled by `Next`; its `vt` says which union member is live,
        // and the dispatch pointer is only read (cloned, adding a reference) when it is
        // VT_DISPATCH. `VariantClear` then releases the VARIANT's own reference.
        let dispatch: Option<IDispatch> = unsafe {
            let inner = &slot[0].Anonymous.Anonymous;
            let d = if inner.vt == VT_DISPATCH { (*inner.Anonymous.pdispVal).clone() } else { None };
            VariantClear(&mut slot[0]).map_err(com_error("VariantClear"))?;
            d
        };
        if let Some(d) = dispatch {
            out.push(d.cast().map_err(com_error("QueryInterface(INetFwRule)"))?);
        }
        if hr != windows::Win32::Foundation::S_OK {
            break; // S_FALSE: fewer than asked, the end.
        }
    }
    Ok(out)
}

fn read_rule(rule: &INetFwRule3) -> Result<RuleFields, FirewallError> {
    let text = |r: windows::core::Result<BSTR>, call| r.map(|b| b.to_string()).map_err(com_error(call));
    // SAFETY: COM property reads on a live interface, results returned by value (BSTRs owned
    // and freed by `BSTR`'s Drop).
    Ok(unsafe {
        RuleFields {
            name: text(rule.Name(), "INetFwRule::Name")?,
            description: text(rule.Description(), "INetFwRule::Description")?,
            grouping: text(rule.Grouping(), "INetFwRule::Grouping")?,
            direction: rule.Direction().map_err(com_error("INetFwRule::Direction"))?.0,
            action: rule.Action().map_err(com_error("INetFwRule::Action"))?.0,
            protocol: rule.Protocol().map_err(com_error("INetFwRule::Protocol"))?,
            remote_addresses: text(rule.RemoteAddresses(), "INetFwRule::RemoteAddresses")?,
            local_user_authorized_list: text(rule.LocalUserAuthorizedList(), "INetFwRule3::LocalUserAuthorizedList")?,
            profiles: rule.Profiles().map_err(com_error("INetFwRule::Profiles"))?,
            enabled: rule.Enabled().map_err(com_error("INetFwRule::Enabled"))?.as_bool(),
            local_addresses: text(rule.LocalAddresses(), "INetFwRule::LocalAddresses")?,
            local_ports: text(rule.LocalPorts(), "INetFwRule::LocalPorts")?,
            remote_ports: text(rule.RemotePorts(), "INetFwRule::RemotePorts")?,
            application_name: text(rule.ApplicationName(), "INetFwRule::ApplicationName")?,
            service_name: text(rule.ServiceName(), "INetFwRule::ServiceName")?,
            interface_types: text(rule.InterfaceTypes(), "INetFwRule::InterfaceTypes")?,
        }
    })
}

fn write_rule(rule: &INetFwRule3, f: &RuleFields) -> Result<(), FirewallError> {
    let b = |s: &str| BSTR::from(s);
    // SAFETY: COM property writes on a live interface; each BSTR lives for its call.
    // Protocol is set before anything that depends on it, as the API requires.
    unsafe {
        rule.SetName(&b(&f.name)).map_err(com_error("INetFwRule::SetName"))?;
        rule.SetDescription(&b(&f.description)).map_err(com_error("INetFwRule::SetDescription"))?;
        rule.SetGrouping(&b(&f.grouping)).map_err(com_error("INetFwRule::SetGrouping"))?;
        rule.SetProtocol(f.protocol).map_err(com_error("INetFwRule::SetProtocol"))?;
        rule.SetDirection(NET_FW_RULE_DIRECTION(f.direction)).map_err(com_error("INetFwRule::SetDirection"))?;
        rule.SetAction(NET_FW_ACTION(f.action)).map_err(com_error("INetFwRule::SetAction"))?;
        rule.SetRemoteAddresses(&b(&f.remote_addresses)).map_err(com_error("INetFwRule::SetRemoteAddresses"))?;
        rule.SetLocalUserAuthorizedList(&b(&f.local_user_authorized_list))
            .map_err(com_error("INetFwRule3::SetLocalUserAuthorizedList"))?;
        rule.SetProfiles(f.profiles).map_err(com_error("INetFwRule::SetProfiles"))?;
        rule.SetEnabled(VARIANT_BOOL::from(f.enabled)).map_err(com_error("INetFwRule::SetEnabled"))?;
    }
    Ok(())
}

/// Adds the rule, first removing every rule of the same name.
pub fn add_rule(rule: &InstalledRule) -> Result<(), FirewallError> {
    if !rule.all_profiles {
        return Err(FirewallError::BadInput {
            what: format!("firewall rule `{}`", rule.name),
            reason: "Palisade's rules apply to every profile".to_string(),
        });
    }
    let fields = RuleFields::for_rule(rule);
    let _com = ComScope::enter()?;
    let policy = open_policy()?;
    let rules = policy_rules(&policy)?;
    remove_by_name(&rules, &rule.name)?;
    // SAFETY: creates an in-process, unattached rule object; the CLSID is a constant.
    let new: INetFwRule3 = unsafe { CoCreateInstance(&NetFwRule, None, CLSCTX_INPROC_SERVER) }
        .map_err(com_error("CoCreateInstance(NetFwRule)"))?;
    write_rule(&new, &fields)?;
    // SAFETY: COM method on live interfaces; the collection takes its own reference.
    unsafe { rules.Add(&new) }.map_err(com_error("INetFwRules::Add"))?;
    // `Add` can report success without adding (Wine does): look the rule up again.
    // SAFETY: COM method on a live interface; the BSTR lives for the call.
    match unsafe { rules.Item(&BSTR::from(rule.name.as_str())) } {
        Ok(_) => Ok(()),
        Err(e) if e.code() == RULE_NOT_FOUND => Err(FirewallError::NoEffect {
            call: "INetFwRules::Add",
            what: format!("no rule named `{}` afterwards", rule.name),
        }),
        Err(e) => Err(com_error("INetFwRules::Item")(e)),
    }
}

/// Removes every rule of that name; `false` if there was none.
pub fn remove_rule(name: &str) -> Result<bool, FirewallError> {
    let _com = ComScope::enter()?;
    let policy = open_policy()?;
    let rules = policy_rules(&policy)?;
    remove_by_name(&rules, name)
}

fn remove_by_name(rules: &INetFwRules, name: &str) -> Result<bool, FirewallError> {
    let name = BSTR::from(name);
    let mut removed = false;
    for _ in 0..MAX_SAME_NAME {
        // SAFETY: COM method on a live interface; the BSTR lives for the call.
        match unsafe { rules.Item(&name) } {
            Ok(_) => {}
            Err(e) if e.code() == RULE_NOT_FOUND => return Ok(removed),
            Err(e) => return Err(com_error("INetFwRules::Item")(e)),
        }
        // SAFETY: as above.
        unsafe { rules.Remove(&name) }.map_err(com_error("INetFwRules::Remove"))?;
        removed = true;
    }
    Err(FirewallError::NoEffect { call: "INetFwRules::Remove", what: format!("a rule named `{name}` is still there") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_and_name_the_call() {
        let e = FirewallError::Com { call: "INetFwRules::Add", hresult: 0x8000_4001 };
        assert_eq!(e.to_string(), "INetFwRules::Add failed: HRESULT 0x80004001");
        assert_eq!(e.code(), Some(0x8000_4001));
        let e = FirewallError::Win32 { call: "FwpmFilterAdd0", code: 0x8032_0009 };
        assert_eq!(e.to_string(), "FwpmFilterAdd0 failed: error 2150760457 (0x80320009)");
        assert_eq!(RULE_NOT_FOUND.0 as u32, 0x8007_0002);
    }

    #[test]
    fn com_can_be_entered_twice_on_one_thread() {
        let a = ComScope::enter().unwrap();
        let b = ComScope::enter().unwrap();
        assert!(a.leave && b.leave);
        drop(b);
        drop(a);
    }

    #[test]
    fn a_single_threaded_apartment_is_kept() {
        use windows::Win32::System::Com::COINIT_APARTMENTTHREADED;
        std::thread::spawn(|| {
            // SAFETY: plain call; balanced below.
            unsafe { CoInitializeEx(None, COINIT_APARTMENTTHREADED) }.ok().unwrap();
            let scope = ComScope::enter().unwrap();
            assert!(!scope.leave, "an STA thread must not be uninitialized by the scope");
            drop(scope);
            // SAFETY: balances the CoInitializeEx above.
            unsafe { CoUninitialize() };
        })
        .join()
        .unwrap();
    }
}
