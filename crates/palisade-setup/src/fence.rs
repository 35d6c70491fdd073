//! The network fence's OS side (Windows Firewall and WFP) behind a small trait, so that the
//! executor builds and is tested while `firewall.rs` and `wfp.rs` are written in parallel, and
//! so that a test can stand in for them where Wine has no firewall.

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

/// The fence of this build: the real firewall and WFP code once it is part of the crate
/// (feature `system-fence`), otherwise an explicit "not built" error for every call, so setup
/// stops at the `firewall` step instead of pretending.
pub fn system() -> Box<dyn Fence> {
    #[cfg(feature = "system-fence")]
    {
        Box::new(SystemFence)
    }
    #[cfg(not(feature = "system-fence"))]
    {
        Box::new(NotBuilt)
    }
}

/// Stands in until `firewall.rs`/`wfp.rs` are built in.
pub struct NotBuilt;

const NOT_BUILT: &str = "this palisade-setup was built without Windows Firewall and WFP support (feature `system-fence`)";

impl Fence for NotBuilt {
    fn profiles(&self) -> Result<Vec<FirewallProfileFact>, String> {
        Err(NOT_BUILT.into())
    }
    fn rules(&self) -> Result<Vec<InstalledRule>, String> {
        Err(NOT_BUILT.into())
    }
    fn wfp_objects(&self) -> Result<Vec<WfpObject>, String> {
        Err(NOT_BUILT.into())
    }
    fn add_rule(&self, _: &InstalledRule) -> Result<(), String> {
        Err(NOT_BUILT.into())
    }
    fn remove_rule(&self, _: &str) -> Result<bool, String> {
        Err(NOT_BUILT.into())
    }
    fn add_wfp(&self, _: &WfpObject) -> Result<(), String> {
        Err(NOT_BUILT.into())
    }
    fn remove_wfp(&self, _: &WfpObject) -> Result<bool, String> {
        Err(NOT_BUILT.into())
    }
}

/// The real fence, through `crate::firewall` and `crate::wfp`.
#[cfg(feature = "system-fence")]
pub struct SystemFence;

#[cfg(feature = "system-fence")]
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
