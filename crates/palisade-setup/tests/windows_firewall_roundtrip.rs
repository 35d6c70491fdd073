//! On real Windows, elevated, and only when asked (`PALISADE_FIREWALL_TEST=1`): installs the
//! offline fence's firewall rules and WFP objects for a made-up test SID, reads them back
//! equal, replaces them, removes them and checks that nothing is left. The SID belongs to no
//! account, so the rules and filters match no traffic while they exist.
//!
//! This shows the install/read-back/remove plumbing against the real firewall and filter
//! engine; it does not show that traffic is blocked (that needs a process running as the
//! sandbox account: `palisade check --probe`).
//!
//! Elsewhere it prints `NOT RUN: <reason>` and passes: under Wine (stubs), unelevated
//! (the firewall refuses changes), without the opt-in, or when Palisade's fence is already
//! installed on the machine (the test uses the same names and keys and would remove them).
#![cfg(windows)]

mod support;

use palisade_win32::{firewall, wfp};
use palisade_windows_elevated::firewall::{offline_fence, provider, sublayer, InstalledRule, WfpObject};
use palisade_windows_elevated::sid::Sid;
use std::io::Write;

const TEST_SID: &str = "S-1-5-21-4000000001-4000000002-4000000003-4242";

fn why_not_run() -> Option<String> {
    if let Some(v) = support::wine_version() {
        return Some(format!("under Wine {v}, whose firewall and WFP are stubs (see wine_firewall.rs)"));
    }
    if std::env::var("PALISADE_FIREWALL_TEST").as_deref() != Ok("1") {
        return Some("set PALISADE_FIREWALL_TEST=1 to let this test change the firewall".to_string());
    }
    if !support::is_elevated() {
        return Some("not elevated (run from an elevated shell)".to_string());
    }
    None
}

/// Removes whatever the test added, also when an assertion fails half-way.
struct Cleanup {
    rules: Vec<InstalledRule>,
    wfp: Vec<WfpObject>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Filters first, then sublayer, then provider: the reverse of adding.
        for o in self.wfp.iter().rev() {
            if let Err(e) = wfp::remove_object(o) {
                eprintln!("cleanup: {e}");
            }
        }
        for r in &self.rules {
            if let Err(e) = firewall::remove_rule(&r.name) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

fn sorted_by_key(mut v: Vec<WfpObject>) -> Vec<WfpObject> {
    v.sort_by(|a, b| a.key().cmp(b.key()));
    v
}

#[test]
fn fence_round_trip_on_real_windows() {
    if let Some(reason) = why_not_run() {
        let _ = writeln!(std::io::stderr(), "NOT RUN: {reason}");
        return;
    }
    let profiles = firewall::firewall_profiles().unwrap();
    println!("profiles: {profiles:?}");
    assert_eq!(profiles.len(), 3);

    let sid = Sid::parse(TEST_SID).unwrap();
    let fence = offline_fence(&[3128, 8877]).unwrap();
    let rules: Vec<InstalledRule> = fence.rules.iter().map(|r| r.render(&sid)).collect();
    let mut objects = vec![provider(), sublayer()];
    objects.extend(fence.filters.iter().map(|f| f.render(&sid)));

    let present_rules = firewall::palisade_rules().unwrap();
    let present_wfp = wfp::palisade_objects().unwrap();
    if present_rules.iter().any(|p| rules.iter().any(|r| r.name == p.name)) || !present_wfp.is_empty() {
        let _ =
            writeln!(std::io::stderr(), "NOT RUN: Palisade's fence is installed on this machine; uninstall it first");
        return;
    }
    let _cleanup = Cleanup { rules: rules.clone(), wfp: objects.clone() };

    // Rules: add, read back equal, add again (replaces, never duplicates).
    for r in &rules {
        firewall::add_rule(r).unwrap();
    }
    for _ in 0..2 {
        let back = firewall::palisade_rules().unwrap();
        for r in &rules {
            let same: Vec<&InstalledRule> = back.iter().filter(|b| b.name == r.name).collect();
            assert_eq!(same, [r], "rule `{}` read back", r.name);
        }
        firewall::add_rule(&rules[0]).unwrap();
    }

    // WFP: provider, sublayer, filters; read back equal; adding again replaces.
    for o in &objects {
        wfp::add_object(o).unwrap();
    }
    assert_eq!(sorted_by_key(wfp::palisade_objects().unwrap()), sorted_by_key(objects.clone()));
    for o in &objects {
        wfp::add_object(o).unwrap();
    }
    assert_eq!(sorted_by_key(wfp::palisade_objects().unwrap()), sorted_by_key(objects.clone()));

    // Remove: each once (true), then again (false); nothing left.
    for o in objects.iter().rev() {
        assert!(wfp::remove_object(o).unwrap(), "{} was there", o.name());
        assert!(!wfp::remove_object(o).unwrap(), "{} is gone", o.name());
    }
    for r in &rules {
        assert!(firewall::remove_rule(&r.name).unwrap(), "{} was there", r.name);
        assert!(!firewall::remove_rule(&r.name).unwrap(), "{} is gone", r.name);
    }
    assert!(wfp::palisade_objects().unwrap().is_empty());
    let left: Vec<String> = firewall::palisade_rules()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .filter(|n| rules.iter().any(|r| &r.name == n))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    println!(
        "fence round trip: {} rules and {} WFP objects added, read back equal, replaced and removed",
        rules.len(),
        objects.len()
    );
}
