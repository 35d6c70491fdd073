//! Translations between the fence's platform-free types (`firewall`) and the values the Windows
//! Firewall COM API (`INetFwRule3`, `INetFwPolicy2`) and the WFP management API (`FWPM_*`)
//! take and return. Everything here is pure so it is unit-tested on every platform;
//! `palisade-setup` only copies these values into and out of the API structures.
//!
//! Reading back never fails on odd data: a rule or filter that has something Palisade's types
//! cannot express (an extra condition, a port restriction, an unknown action) is still reported
//! — so uninstall finds it and `check` sees it — but with an `(unrecognized: ...)` text in its
//! user field, so it never compares equal to a planned rule or filter and setup replaces it.

use std::net::IpAddr;

use crate::facts::FirewallProfile;
use crate::firewall::{Direction, InstalledFilter, InstalledRule, WfpLayer};

/// The text that marks a read-back rule or filter as not matching any planned one.
pub fn unrecognized(what: &str) -> String {
    format!("(unrecognized: {what})")
}

// ---------------------------------------------------------------------------------------------
// Keys

/// A WFP key that is not `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a GUID key in braces")]
pub struct KeyError(pub String);

/// The GUID a key string stands for, as the 128-bit number written in it (the value
/// `GUID::from_u128` takes).
pub fn guid_from_key(key: &str) -> Result<u128, KeyError> {
    let err = || KeyError(key.to_string());
    let inner = key.strip_prefix('{').and_then(|k| k.strip_suffix('}')).ok_or_else(err)?;
    let groups: Vec<&str> = inner.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] || !groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(err());
    }
    u128::from_str_radix(&groups.concat(), 16).map_err(|_| err())
}

/// The key string of a GUID, formatted as `firewall::stable_key` formats keys (lowercase, braces).
pub fn key_from_guid(value: u128) -> String {
    let s = format!("{value:032x}");
    format!("{{{}-{}-{}-{}-{}}}", &s[0..8], &s[8..12], &s[12..16], &s[16..20], &s[20..32])
}

/// A GUID's fields (`Data1`, `Data2`, `Data3`, `Data4`) from its 128-bit value.
pub fn guid_fields(value: u128) -> (u32, u16, u16, [u8; 8]) {
    ((value >> 96) as u32, (value >> 80) as u16, (value >> 64) as u16, (value as u64).to_be_bytes())
}

/// The 128-bit value of a GUID from its fields.
pub fn guid_value(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> u128 {
    (u128::from(data1) << 96)
        | (u128::from(data2) << 80)
        | (u128::from(data3) << 64)
        | u128::from(u64::from_be_bytes(data4))
}

// ---------------------------------------------------------------------------------------------
// Windows Firewall rules

/// `NET_FW_IP_PROTOCOL_ANY`.
pub const FW_PROTOCOL_ANY: i32 = 256;
/// `NET_FW_RULE_DIR_IN`, `NET_FW_RULE_DIR_OUT`.
pub const FW_DIR_IN: i32 = 1;
pub const FW_DIR_OUT: i32 = 2;
/// `NET_FW_ACTION_BLOCK`, `NET_FW_ACTION_ALLOW`.
pub const FW_ACTION_BLOCK: i32 = 0;
pub const FW_ACTION_ALLOW: i32 = 1;
/// `NET_FW_PROFILE2_ALL`.
pub const FW_PROFILES_ALL: i32 = 0x7fff_ffff;
/// `NET_FW_MODIFY_STATE_GP_OVERRIDE`: Group Policy keeps local rules out of the current profiles.
pub const FW_MODIFY_STATE_GP_OVERRIDE: i32 = 1;

/// `NET_FW_PROFILE2_DOMAIN`/`PRIVATE`/`PUBLIC`.
pub fn profile_bit(p: FirewallProfile) -> i32 {
    match p {
        FirewallProfile::Domain => 1,
        FirewallProfile::Private => 2,
        FirewallProfile::Public => 4,
    }
}

/// The subkey of `HKLM\SOFTWARE\Policies\Microsoft\WindowsFirewall` holding a profile's Group
/// Policy settings.
pub fn policy_subkey(p: FirewallProfile) -> &'static str {
    match p {
        FirewallProfile::Domain => "DomainProfile",
        FirewallProfile::Private => "PrivateProfile",
        FirewallProfile::Public => "PublicProfile",
    }
}

/// Whether the firewall applies locally added rules in a profile. Group Policy's "Apply local
/// firewall rules: No" is the policy value `AllowLocalPolicyMerge = 0`; for the profiles in force
/// now the firewall also says so itself through `LocalPolicyModifyState`.
pub fn local_rules_honored(current: bool, modify_state: i32, allow_local_policy_merge: Option<u32>) -> bool {
    if allow_local_policy_merge == Some(0) {
        return false;
    }
    !(current && modify_state == FW_MODIFY_STATE_GP_OVERRIDE)
}

pub fn direction_to_api(d: Direction) -> i32 {
    match d {
        Direction::Inbound => FW_DIR_IN,
        Direction::Outbound => FW_DIR_OUT,
    }
}

pub fn protocol_to_api(p: Option<u8>) -> i32 {
    p.map_or(FW_PROTOCOL_ANY, i32::from)
}

/// The `RemoteAddresses` text for a list: comma-separated, `*` for any address.
pub fn addresses_to_api(list: &[String]) -> String {
    if list.is_empty() {
        "*".to_string()
    } else {
        list.join(",")
    }
}

/// A `RemoteAddresses` text as the list Palisade writes: `*` is the empty list; Windows shows a
/// single address as `a/255.255.255.255` or `a/128` and may spell IPv6 differently, so single
/// addresses and ranges are put into Rust's canonical form; anything else is kept as it is.
pub fn addresses_from_api(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|e| !e.is_empty() && *e != "*").map(normalize_address).collect()
}

fn normalize_address(entry: &str) -> String {
    if let Ok(a) = entry.parse::<IpAddr>() {
        return a.to_string();
    }
    if let Some((a, b)) = entry.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()) {
            if a.is_ipv4() == b.is_ipv4() {
                return if a == b { a.to_string() } else { format!("{a}-{b}") };
            }
        }
    }
    if let Some((a, mask)) = entry.split_once('/') {
        if let Ok(a) = a.trim().parse::<IpAddr>() {
            let full = match a {
                IpAddr::V4(_) => ["32", "255.255.255.255"].contains(&mask.trim()),
                IpAddr::V6(_) => mask.trim() == "128",
            };
            if full {
                return a.to_string();
            }
        }
    }
    entry.to_string()
}

/// A firewall rule's properties as `INetFwRule3` has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFields {
    pub name: String,
    pub description: String,
    pub grouping: String,
    pub direction: i32,
    pub action: i32,
    pub protocol: i32,
    pub remote_addresses: String,
    pub local_user_authorized_list: String,
    pub profiles: i32,
    pub enabled: bool,
    /// Properties Palisade leaves at their defaults; read back so a rule narrowed by hand is
    /// not taken for Palisade's.
    pub local_addresses: String,
    pub local_ports: String,
    pub remote_ports: String,
    pub application_name: String,
    pub service_name: String,
    pub interface_types: String,
}

impl RuleFields {
    /// What to set on a new `INetFwRule3` for a rule. The defaulted properties are not set.
    pub fn for_rule(rule: &InstalledRule) -> RuleFields {
        RuleFields {
            name: rule.name.clone(),
            description: rule.description.clone(),
            grouping: rule.grouping.clone(),
            direction: direction_to_api(rule.direction),
            action: if rule.block { FW_ACTION_BLOCK } else { FW_ACTION_ALLOW },
            protocol: protocol_to_api(rule.protocol),
            remote_addresses: addresses_to_api(&rule.remote_addresses),
            local_user_authorized_list: rule.local_user_authorized_list.clone(),
            profiles: if rule.all_profiles { FW_PROFILES_ALL } else { 0 },
            enabled: rule.enabled,
            local_addresses: "*".to_string(),
            local_ports: String::new(),
            remote_ports: String::new(),
            application_name: String::new(),
            service_name: String::new(),
            interface_types: "All".to_string(),
        }
    }

    /// The rule as read back. Never fails; see the module comment for what is marked.
    pub fn to_rule(&self) -> InstalledRule {
        let mut odd = Vec::new();
        let direction = match self.direction {
            FW_DIR_IN => Direction::Inbound,
            FW_DIR_OUT => Direction::Outbound,
            d => {
                odd.push(format!("direction {d}"));
                Direction::Outbound
            }
        };
        let block = match self.action {
            FW_ACTION_BLOCK => true,
            FW_ACTION_ALLOW => false,
            a => {
                odd.push(format!("action {a}"));
                false
            }
        };
        let protocol = match self.protocol {
            FW_PROTOCOL_ANY => None,
            p => match u8::try_from(p) {
                Ok(p) => Some(p),
                Err(_) => {
                    odd.push(format!("protocol {p}"));
                    None
                }
            },
        };
        let any = |s: &str| s.is_empty() || s == "*";
        for (what, value, default) in [
            ("local addresses", &self.local_addresses, any(&self.local_addresses)),
            ("local ports", &self.local_ports, any(&self.local_ports)),
            ("remote ports", &self.remote_ports, any(&self.remote_ports)),
            ("program", &self.application_name, self.application_name.is_empty()),
            ("service", &self.service_name, self.service_name.is_empty()),
            (
                "interface types",
                &self.interface_types,
                self.interface_types.is_empty() || self.interface_types.eq_ignore_ascii_case("all"),
            ),
        ] {
            if !default {
                odd.push(format!("{what} {value}"));
            }
        }
        InstalledRule {
            name: self.name.clone(),
            grouping: self.grouping.clone(),
            description: self.description.clone(),
            direction,
            block,
            protocol,
            remote_addresses: addresses_from_api(&self.remote_addresses),
            local_user_authorized_list: if odd.is_empty() {
                self.local_user_authorized_list.clone()
            } else {
                unrecognized(&odd.join("; "))
            },
            all_profiles: self.profiles & 7 == 7,
            enabled: self.enabled,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WFP filters

/// IANA protocol number of TCP (`IPPROTO_TCP`).
pub const IPPROTO_TCP: u8 = 6;

/// One condition of a Palisade filter, in the order they are added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterCondition {
    /// `FWPM_CONDITION_ALE_USER_ID`, `FWP_MATCH_EQUAL`, a security descriptor from this SDDL.
    UserSddl(String),
    /// `FWPM_CONDITION_FLAGS`, `FWP_MATCH_FLAGS_ALL_SET`, `FWP_CONDITION_FLAG_IS_LOOPBACK`.
    Loopback,
    /// `FWPM_CONDITION_IP_PROTOCOL`, `FWP_MATCH_EQUAL`, `FWP_UINT8`.
    IpProtocol(u8),
    /// `FWPM_CONDITION_IP_REMOTE_PORT`, `FWP_MATCH_EQUAL`, `FWP_UINT16`.
    RemotePort(u16),
    /// Anything else, read back (described for the marker).
    Other(String),
}

/// The conditions a filter is added with (all must match).
pub fn filter_conditions(f: &InstalledFilter) -> Vec<FilterCondition> {
    let mut c = vec![FilterCondition::UserSddl(f.user_sddl.clone())];
    if f.loopback_only {
        c.push(FilterCondition::Loopback);
    }
    if let Some(p) = f.tcp_remote_port {
        c.push(FilterCondition::IpProtocol(IPPROTO_TCP));
        c.push(FilterCondition::RemotePort(p));
    }
    c
}

/// A filter's weight as WFP reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterWeight {
    /// `FWP_UINT8`: a weight range 0–15 (as added).
    Range(u8),
    /// `FWP_UINT64`: a full weight; the range is its top four bits.
    Full(u64),
    /// `FWP_EMPTY` or another type.
    Other,
}

/// A filter's fields as read back, already turned into Palisade's spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterFields {
    pub key: String,
    pub name: String,
    pub sublayer_key: String,
    pub layer: WfpLayer,
    /// `Some(true)` for `FWP_ACTION_PERMIT`, `Some(false)` for `FWP_ACTION_BLOCK`.
    pub permit: Option<bool>,
    pub weight: FilterWeight,
    pub conditions: Vec<FilterCondition>,
    pub persistent: bool,
}

impl FilterFields {
    /// The filter as read back. Never fails; see the module comment for what is marked.
    pub fn to_filter(&self) -> InstalledFilter {
        let mut odd = Vec::new();
        let mut users = Vec::new();
        let mut loopback = 0;
        let mut protocols = Vec::new();
        let mut ports = Vec::new();
        for c in &self.conditions {
            match c {
                FilterCondition::UserSddl(s) => users.push(s.clone()),
                FilterCondition::Loopback => loopback += 1,
                FilterCondition::IpProtocol(p) => protocols.push(*p),
                FilterCondition::RemotePort(p) => ports.push(*p),
                FilterCondition::Other(d) => odd.push(d.clone()),
            }
        }
        if users.len() != 1 {
            odd.push(format!("{} user conditions", users.len()));
        }
        if loopback > 1 {
            odd.push("loopback condition twice".to_string());
        }
        let tcp_remote_port = match (protocols.as_slice(), ports.as_slice()) {
            ([], []) => None,
            ([IPPROTO_TCP], [p]) => Some(*p),
            _ => {
                odd.push(format!("protocols {protocols:?} with remote ports {ports:?}"));
                None
            }
        };
        let permit = self.permit.unwrap_or_else(|| {
            odd.push("an action other than permit or block".to_string());
            false
        });
        let weight = match self.weight {
            FilterWeight::Range(w) if w <= 15 => w,
            FilterWeight::Full(w) => (w >> 60) as u8,
            FilterWeight::Range(w) => {
                odd.push(format!("weight range {w}"));
                0
            }
            FilterWeight::Other => {
                odd.push("automatic weight".to_string());
                0
            }
        };
        InstalledFilter {
            key: self.key.clone(),
            name: self.name.clone(),
            sublayer_key: self.sublayer_key.clone(),
            layer: self.layer,
            permit,
            loopback_only: loopback > 0,
            tcp_remote_port,
            weight,
            user_sddl: match (odd.is_empty(), users.first()) {
                (true, Some(u)) => u.clone(),
                _ => unrecognized(&odd.join("; ")),
            },
            persistent: self.persistent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{offline_fence, provider, stable_key, sublayer, WfpObject};
    use crate::sid::Sid;

    fn sid() -> Sid {
        Sid::parse("S-1-5-21-1-2-3-1011").unwrap()
    }

    #[test]
    fn keys_round_trip_through_guids() {
        for name in ["Palisade", "Palisade sandbox fence", "x", ""] {
            let k = stable_key(name);
            let v = guid_from_key(&k).unwrap();
            assert_eq!(key_from_guid(v), k);
            let (a, b, c, d) = guid_fields(v);
            assert_eq!(guid_value(a, b, c, d), v);
        }
        let v = guid_from_key("{C38D57D1-05A7-4C33-904F-7FBCEEE60E82}").unwrap();
        assert_eq!(v, 0xc38d57d1_05a7_4c33_904f_7fbceee60e82);
        assert_eq!(guid_fields(v), (0xc38d57d1, 0x05a7, 0x4c33, [0x90, 0x4f, 0x7f, 0xbc, 0xee, 0xe6, 0x0e, 0x82]));
        assert_eq!(key_from_guid(v), "{c38d57d1-05a7-4c33-904f-7fbceee60e82}");
        for bad in [
            "",
            "{}",
            "c38d57d1-05a7-4c33-904f-7fbceee60e82",
            "{c38d57d1-05a7-4c33-904f-7fbceee60e8}",
            "{c38d57d1-05a7-4c33-904f7fbceee60e82}",
            "{g38d57d1-05a7-4c33-904f-7fbceee60e82}",
            "{+38d57d1-05a7-4c33-904f-7fbceee60e82}",
        ] {
            assert_eq!(guid_from_key(bad), Err(KeyError(bad.to_string())), "{bad}");
        }
    }

    #[test]
    fn addresses_read_back_as_written() {
        for r in offline_fence(&[]).unwrap().rules {
            let text = addresses_to_api(&r.remote_addresses);
            assert_eq!(addresses_from_api(&text), r.remote_addresses);
        }
        assert_eq!(addresses_to_api(&[]), "*");
        assert!(addresses_from_api("*").is_empty());
        assert!(addresses_from_api("").is_empty());
        // How Windows tends to spell them.
        assert_eq!(
            addresses_from_api("0.0.0.0-126.255.255.255, 128.0.0.0-255.255.255.255"),
            ["0.0.0.0-126.255.255.255", "128.0.0.0-255.255.255.255"]
        );
        assert_eq!(
            addresses_from_api("::/128,::2-FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF"),
            ["::", "::2-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
        );
        assert_eq!(
            addresses_from_api("10.0.0.1/255.255.255.255,10.0.0.2/32,10.0.0.0/255.0.0.0"),
            ["10.0.0.1", "10.0.0.2", "10.0.0.0/255.0.0.0"]
        );
        assert_eq!(
            addresses_from_api("1.2.3.4-1.2.3.4,LocalSubnet,1.2.3.4-::1"),
            ["1.2.3.4", "LocalSubnet", "1.2.3.4-::1"]
        );
    }

    #[test]
    fn rules_read_back_equal_to_what_was_written() {
        for r in offline_fence(&[3128]).unwrap().rules {
            let rule = r.render(&sid());
            let fields = RuleFields::for_rule(&rule);
            assert_eq!(fields.protocol, FW_PROTOCOL_ANY);
            assert_eq!(fields.action, FW_ACTION_BLOCK);
            assert_eq!(fields.profiles, FW_PROFILES_ALL);
            assert_eq!(fields.to_rule(), rule);
            // Windows reports "all profiles" as the three bits.
            let read = RuleFields { profiles: 7, local_ports: "*".into(), remote_ports: "*".into(), ..fields.clone() };
            assert_eq!(read.to_rule(), rule);
            let inbound = RuleFields { direction: FW_DIR_IN, ..fields.clone() }.to_rule();
            assert_eq!(inbound.direction, Direction::Inbound);
            assert!(!RuleFields { profiles: 3, ..fields.clone() }.to_rule().all_profiles);
            assert_eq!(RuleFields { protocol: 6, ..fields.clone() }.to_rule().protocol, Some(6));
        }
    }

    #[test]
    fn narrowed_or_odd_rules_never_read_back_as_palisade_rules() {
        let rule = offline_fence(&[]).unwrap().rules[0].render(&sid());
        let f = RuleFields::for_rule(&rule);
        let cases = [
            RuleFields { direction: 3, ..f.clone() },
            RuleFields { action: 2, ..f.clone() },
            RuleFields { protocol: 300, ..f.clone() },
            RuleFields { protocol: -1, ..f.clone() },
            RuleFields { remote_ports: "443".into(), ..f.clone() },
            RuleFields { local_ports: "80".into(), ..f.clone() },
            RuleFields { local_addresses: "10.0.0.1".into(), ..f.clone() },
            RuleFields { application_name: "C:\\x.exe".into(), ..f.clone() },
            RuleFields { service_name: "svc".into(), ..f.clone() },
            RuleFields { interface_types: "Wireless".into(), ..f.clone() },
        ];
        for c in cases {
            let back = c.to_rule();
            assert_eq!(back.name, rule.name);
            assert!(back.local_user_authorized_list.starts_with("(unrecognized: "), "{back:?}");
            assert_ne!(back, rule);
        }
    }

    #[test]
    fn profiles_and_group_policy() {
        assert_eq!(FirewallProfile::ALL.map(profile_bit), [1, 2, 4]);
        assert_eq!(FirewallProfile::ALL.map(policy_subkey), ["DomainProfile", "PrivateProfile", "PublicProfile"]);
        assert!(local_rules_honored(true, 0, None));
        assert!(local_rules_honored(false, FW_MODIFY_STATE_GP_OVERRIDE, None));
        assert!(!local_rules_honored(true, FW_MODIFY_STATE_GP_OVERRIDE, None));
        assert!(!local_rules_honored(false, 0, Some(0)));
        assert!(local_rules_honored(true, 2, Some(1)));
    }

    fn fields_of(f: &InstalledFilter) -> FilterFields {
        FilterFields {
            key: f.key.clone(),
            name: f.name.clone(),
            sublayer_key: f.sublayer_key.clone(),
            layer: f.layer,
            permit: Some(f.permit),
            weight: FilterWeight::Range(f.weight),
            conditions: filter_conditions(f),
            persistent: f.persistent,
        }
    }

    #[test]
    fn filters_read_back_equal_to_what_was_written() {
        let fence = offline_fence(&[3128, 8877]).unwrap();
        for f in &fence.filters {
            let WfpObject::Filter(inst) = f.render(&sid()) else { panic!() };
            let c = filter_conditions(&inst);
            assert_eq!(c[0], FilterCondition::UserSddl("O:LSD:(A;;CC;;;S-1-5-21-1-2-3-1011)".into()));
            if inst.permit {
                assert_eq!(
                    c[1..],
                    [
                        FilterCondition::Loopback,
                        FilterCondition::IpProtocol(6),
                        FilterCondition::RemotePort(inst.tcp_remote_port.unwrap())
                    ]
                );
            } else {
                assert_eq!(c.len(), 1);
            }
            let fields = fields_of(&inst);
            assert_eq!(fields.to_filter(), inst);
            // Conditions come back in any order; the weight may come back as a full weight.
            let mut rev = fields.clone();
            rev.conditions.reverse();
            rev.weight = FilterWeight::Full((u64::from(inst.weight) << 60) | 0x1234);
            assert_eq!(rev.to_filter(), inst);
        }
        assert_ne!(provider().key(), sublayer().key());
    }

    #[test]
    fn odd_filters_never_read_back_as_palisade_filters() {
        let fence = offline_fence(&[3128]).unwrap();
        let WfpObject::Filter(permit) = fence.filters[0].render(&sid()) else { panic!() };
        let f = fields_of(&permit);
        let mut cases = Vec::new();
        let mut c = f.clone();
        c.conditions.push(FilterCondition::Other("condition {x} match 0 type 1".into()));
        cases.push(c);
        let mut c = f.clone();
        c.conditions.retain(|c| !matches!(c, FilterCondition::UserSddl(_)));
        cases.push(c);
        let mut c = f.clone();
        c.conditions.push(FilterCondition::UserSddl("O:LSD:(A;;CC;;;WD)".into()));
        cases.push(c);
        let mut c = f.clone();
        c.conditions.retain(|c| !matches!(c, FilterCondition::IpProtocol(_)));
        cases.push(c);
        let mut c = f.clone();
        c.conditions.push(FilterCondition::RemotePort(80));
        cases.push(c);
        let mut c = f.clone();
        c.conditions = c
            .conditions
            .into_iter()
            .map(|c| if c == FilterCondition::IpProtocol(6) { FilterCondition::IpProtocol(17) } else { c })
            .collect();
        cases.push(c);
        cases.push(FilterFields { permit: None, ..f.clone() });
        cases.push(FilterFields { weight: FilterWeight::Other, ..f.clone() });
        cases.push(FilterFields { weight: FilterWeight::Range(16), ..f.clone() });
        for c in cases {
            let back = c.to_filter();
            assert_eq!(back.key, permit.key);
            assert!(back.user_sddl.starts_with("(unrecognized: "), "{back:?}");
            assert_ne!(back, permit);
        }
    }
}
