//! The network fence's OS side (Windows Firewall and WFP, `firewall.rs` and `wfp.rs`) behind a
//! small trait, so that a test can stand in for them where Wine has no firewall.

use palisade_windows_elevated::facts::FirewallProfileFact;
use palisade_windows_elevated::firewall::{InstalledRule, WfpObject};

/// What setup needs from the firewall and WFP. Errors are one line.
pub trait Fence {
    fn profiles(&self) -> Result<Vec<FirewallProfileFact>, String>;
    /// Rules whose names start with `Palisade`.
    fn rules(&self) -> Result<Vec<InstalledRule>, String>;
    /// Palisade's provider, sublayer and filters.
    fn wfp_objects(&self) -> Result<Vec<WfpObject>, String>;
    /// Adds the rule, replacing one of the same name.
    fn add_rule(&self, rule: &InstalledRule) -> Result<(), String>;
    /// `false`: there was no such rule.
    fn remove_rule(&self, name: &str) -> Result<bool, String>;
    /// Adds the object, replacing one with the same key.
    fn add_wfp(&self, obj: &WfpObject) -> Result<(), String>;
    fn remove_wfp(&self, obj: &WfpObject) -> Result<bool, String>;
}

/// The real fence: Windows Firewall and WFP.
pub fn system() -> Box<dyn Fence> {
    Box::new(SystemFence)
}

/// The real fence, through `crate::firewall` and `crate::wfp`.
pub struct SystemFence;

impl Fence for SystemFence {
    fn profiles(&self) -> Result<Vec<FirewallProfileFact>, String> {
        crate::firewall::firewall_profiles().map_err(|e| e.to_string())
    }
    fn rules(&self) -> Result<Vec<InstalledRule>, String> {
        crate::firewall::palisade_rules().map_err(|e| e.to_string())
    }
    fn wfp_objects(&self) -> Result<Vec<WfpObject>, String> {
        crate::wfp::palisade_objects().map_err(|e| e.to_string())
    }
    fn add_rule(&self, rule: &InstalledRule) -> Result<(), String> {
        crate::firewall::add_rule(rule).map_err(|e| e.to_string())
    }
    fn remove_rule(&self, name: &str) -> Result<bool, String> {
        crate::firewall::remove_rule(name).map_err(|e| e.to_string())
    }
    fn add_wfp(&self, obj: &WfpObject) -> Result<(), String> {
        crate::wfp::add_object(obj).map_err(|e| e.to_string())
    }
    fn remove_wfp(&self, obj: &WfpObject) -> Result<bool, String> {
        crate::wfp::remove_object(obj).map_err(|e| e.to_string())
    }
}
