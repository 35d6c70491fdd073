//! What Windows Firewall (hnetcfg) and WFP (fwpuclnt) do under Wine, and what `firewall` and
//! `wfp` make of it. Runs only under Wine (prints `NOT RUN` elsewhere); everything happens in
//! the Wine prefix. Wine enforces no firewall rule or filter, so nothing here shows that the
//! fence holds: `windows_firewall_enforcement.rs` does that on real Windows.
#![cfg(windows)]

mod support;

use palisade_win32::firewall::{self, FirewallError};
use palisade_win32::wfp;
use palisade_windows_elevated::firewall::{offline_fence, provider, sublayer};
use palisade_windows_elevated::sid::Sid;
use std::io::Write;
use windows::core::BSTR;
use windows::Win32::Foundation::VARIANT_TRUE;
use windows::Win32::NetworkManagement::WindowsFirewall::{
    INetFwPolicy2, INetFwRule, INetFwRule3, NetFwPolicy2, NetFwRule, NET_FW_PROFILE2_PRIVATE,
};
use windows::Win32::System::Com::{
    CoCreateInstance, CoInitializeEx, CoUninitialize, CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED,
};
use windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::{FwpmEngineClose0, FwpmEngineOpen0};
use windows_sys::Win32::System::Rpc::{RPC_C_AUTHN_DEFAULT, RPC_C_AUTHN_WINNT};

fn outcome<T: std::fmt::Debug>(r: &windows::core::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("HRESULT {:#010x}", e.code().0 as u32),
    }
}

fn under_wine() -> Option<String> {
    let v = support::wine_version();
    match &v {
        Some(v) => println!("running under Wine {v}"),
        None => {
            let _ = writeln!(std::io::stderr(), "NOT RUN: not under Wine (this test records what Wine does)");
        }
    }
    v
}

/// Wine 8's answers, checked exactly; another Wine version only prints its answers.
fn wine_8(version: &str) -> bool {
    version.starts_with("8.")
}

const E_NOTIMPL: &str = "HRESULT 0x80004001";
const E_NOINTERFACE: &str = "HRESULT 0x80004002";
/// `RPC_S_UNKNOWN_AUTHN_SERVICE`.
const WINE_ENGINE_OPEN_ERROR: u32 = 1764;

/// The COM calls one by one, so the report shows what Wine does with each.
#[test]
fn wine_hnetcfg_call_by_call() {
    let Some(version) = under_wine() else { return };
    let mut seen = Vec::new();
    // SAFETY: plain COM calls on interfaces created here, in a COM scope left at the end;
    // every interface is dropped before CoUninitialize.
    unsafe {
        CoInitializeEx(None, COINIT_MULTITHREADED).ok().unwrap();
        {
            let policy: windows::core::Result<INetFwPolicy2> =
                CoCreateInstance(&NetFwPolicy2, None, CLSCTX_INPROC_SERVER);
            seen.push(("CoCreateInstance(NetFwPolicy2)", outcome(&policy.as_ref().map(|_| ()).map_err(Clone::clone))));
            let policy = policy.unwrap();
            seen.push(("INetFwPolicy2::CurrentProfileTypes", outcome(&policy.CurrentProfileTypes())));
            seen.push((
                "INetFwPolicy2::get_FirewallEnabled",
                outcome(&policy.get_FirewallEnabled(NET_FW_PROFILE2_PRIVATE).map(|b| b.as_bool())),
            ));
            seen.push((
                "INetFwPolicy2::LocalPolicyModifyState",
                outcome(&policy.LocalPolicyModifyState().map(|s| s.0)),
            ));
            let rules = policy.Rules();
            seen.push(("INetFwPolicy2::Rules", outcome(&rules.as_ref().map(|_| ()).map_err(Clone::clone))));
            let rules = rules.unwrap();
            seen.push(("INetFwRules::Count", outcome(&rules.Count())));
            seen.push(("INetFwRules::_NewEnum", outcome(&rules._NewEnum().map(|_| ()))));
            seen.push(("INetFwRules::Item", outcome(&rules.Item(&BSTR::from("Palisade wine probe")).map(|_| ()))));
            let rule3: windows::core::Result<INetFwRule3> = CoCreateInstance(&NetFwRule, None, CLSCTX_INPROC_SERVER);
            seen.push((
                "CoCreateInstance(NetFwRule) as INetFwRule3",
                outcome(&rule3.as_ref().map(|_| ()).map_err(Clone::clone)),
            ));
            let rule: windows::core::Result<INetFwRule> = CoCreateInstance(&NetFwRule, None, CLSCTX_INPROC_SERVER);
            seen.push((
                "CoCreateInstance(NetFwRule) as INetFwRule",
                outcome(&rule.as_ref().map(|_| ()).map_err(Clone::clone)),
            ));
            if let Ok(rule) = rule {
                seen.push(("INetFwRule::SetName", outcome(&rule.SetName(&BSTR::from("Palisade wine probe")))));
                seen.push(("INetFwRule::SetEnabled", outcome(&rule.SetEnabled(VARIANT_TRUE))));
                seen.push(("INetFwRules::Add", outcome(&rules.Add(&rule))));
                seen.push(("INetFwRules::Count after Add", outcome(&rules.Count())));
            }
            seen.push(("INetFwRules::Remove", outcome(&rules.Remove(&BSTR::from("Palisade wine probe")))));
        }
        CoUninitialize();
    }
    for (call, result) in &seen {
        println!("wine hnetcfg: {call} -> {result}");
    }
    if !wine_8(&version) {
        let _ = writeln!(
            std::io::stderr(),
            "NOT RUN: the answers above were recorded for Wine 8 only, so they are not checked"
        );
        return;
    }
    let get = |call: &str| seen.iter().find(|(c, _)| *c == call).map(|(_, r)| r.as_str()).unwrap_or("not called");
    assert_eq!(get("CoCreateInstance(NetFwPolicy2)"), "ok ()");
    assert_eq!(get("INetFwPolicy2::CurrentProfileTypes"), E_NOTIMPL);
    assert_eq!(get("INetFwPolicy2::get_FirewallEnabled"), E_NOTIMPL);
    assert_eq!(get("INetFwPolicy2::LocalPolicyModifyState"), E_NOTIMPL);
    assert_eq!(get("INetFwPolicy2::Rules"), "ok ()");
    assert_eq!(get("INetFwRules::Count"), "ok 0");
    assert_eq!(get("INetFwRules::_NewEnum"), E_NOTIMPL);
    assert_eq!(get("INetFwRules::Item"), E_NOTIMPL);
    assert_eq!(get("CoCreateInstance(NetFwRule) as INetFwRule3"), E_NOINTERFACE);
    // Success without effect: why `add_rule` cannot be trusted under Wine, and why `remove_rule` asks `Item` first and never trusts `Remove`.
    assert_eq!(get("CoCreateInstance(NetFwRule) as INetFwRule"), "ok ()");
    assert_eq!(get("INetFwRules::Add"), "ok ()");
    assert_eq!(get("INetFwRules::Count after Add"), "ok 0");
    assert_eq!(get("INetFwRules::Remove"), "ok ()");
}

#[test]
fn wine_fwpuclnt_engine_open() {
    let Some(version) = under_wine() else { return };
    for (label, authn) in
        [("RPC_C_AUTHN_DEFAULT", RPC_C_AUTHN_DEFAULT as u32), ("RPC_C_AUTHN_WINNT", RPC_C_AUTHN_WINNT)]
    {
        let mut h = std::ptr::null_mut();
        // SAFETY: null server, identity and session; a valid out pointer; closed if opened.
        let rc = unsafe { FwpmEngineOpen0(std::ptr::null(), authn, std::ptr::null(), std::ptr::null(), &mut h) };
        println!("wine fwpuclnt: FwpmEngineOpen0({label}) -> {rc}");
        if rc == 0 {
            // SAFETY: opened just above.
            unsafe { FwpmEngineClose0(h) };
        } else if wine_8(&version) {
            assert_eq!(rc, WINE_ENGINE_OPEN_ERROR);
        }
    }
}

fn assert_failed_call<T: std::fmt::Debug>(r: Result<T, FirewallError>, call: &str, code: u32) {
    let e = r.expect_err("Wine 8 has no firewall to do this");
    println!("  -> {e}");
    let text = e.to_string();
    assert!(text.starts_with(&format!("{call} failed: ")) && !text.contains('\n'), "{text}");
    assert_eq!(e.code(), Some(code), "{text}");
}

/// The public interface under Wine: every call ends in the typed error naming the call Wine
/// does not implement.
#[test]
fn wine_public_interface() {
    let Some(version) = under_wine() else { return };
    let sid = Sid::parse("S-1-5-21-1-2-3-4242").unwrap();
    let fence = offline_fence(&[3128]).unwrap();
    let rule = fence.rules[0].render(&sid);
    let filter = fence.filters[0].render(&sid);
    if !wine_8(&version) {
        println!("firewall_profiles -> {:?}", firewall::firewall_profiles());
        println!("palisade_rules -> {:?}", firewall::palisade_rules());
        println!("palisade_objects -> {:?}", wfp::palisade_objects());
        let _ = writeln!(
            std::io::stderr(),
            "NOT RUN: the answers above were recorded for Wine 8 only, so they are not checked"
        );
        return;
    }
    let notimpl = 0x8000_4001;
    println!("firewall_profiles");
    assert_failed_call(firewall::firewall_profiles(), "INetFwPolicy2::CurrentProfileTypes", notimpl);
    println!("firewall_facts");
    assert_failed_call(firewall::firewall_facts(), "INetFwPolicy2::CurrentProfileTypes", notimpl);
    println!("palisade_rules");
    assert_failed_call(firewall::palisade_rules(), "INetFwRules::_NewEnum", notimpl);
    println!("add_rule");
    assert_failed_call(firewall::add_rule(&rule), "INetFwRules::Item", notimpl);
    println!("remove_rule");
    assert_failed_call(firewall::remove_rule(&rule.name), "INetFwRules::Item", notimpl);
    for (what, r) in [
        ("palisade_objects", wfp::palisade_objects().map(|_| ())),
        ("add_object(provider)", wfp::add_object(&provider())),
        ("add_object(sublayer)", wfp::add_object(&sublayer())),
        ("add_object(filter)", wfp::add_object(&filter)),
        ("remove_object(filter)", wfp::remove_object(&filter).map(|_| ())),
    ] {
        println!("{what}");
        assert_failed_call(r, "FwpmEngineOpen0", WINE_ENGINE_OPEN_ERROR);
    }
    println!(
        "NOT EXERCISED under Wine: adding, reading back and removing rules and filters (Wine's \
         hnetcfg and fwpuclnt are stubs), and whether they block anything (Wine enforces no \
         firewall); see windows_firewall_enforcement.rs for real Windows"
    );
}
