//! The network fences of the `PalisadeOffline` and `PalisadeProxied` accounts, as data.
//!
//! Two layers, both keyed on the account's SID through a security descriptor
//! `O:LSD:(A;;CC;;;<SID>)` (the form Windows Firewall's `LocalUserAuthorizedList` and WFP's
//! `FWPM_CONDITION_ALE_USER_ID` take; `CC` is the "match" right):
//!
//! 1. **Windows Firewall rules** (`INetFwRule3`), named `Palisade ...` in the group `Palisade`:
//!    block outbound and inbound traffic of the account to and from every address except the
//!    loopback ranges, IPv4 and IPv6. Block rules win over allow rules (including the per-program
//!    allow rules people click through), so nothing else re-opens it. They are visible in
//!    `wf.msc`, and Group Policy decides whether they count: if it turns off local rules
//!    (`AllowLocalFirewallRules = false`), setup refuses.
//! 2. **WFP filters** at `FWPM_LAYER_ALE_AUTH_CONNECT_V4/V6` in Palisade's own persistent
//!    provider and sublayer: permit TCP to loopback on each of Palisade's proxy ports, block
//!    every other connect of the account. Windows Firewall rules do **not** apply to loopback
//!    traffic, so without this layer the account could reach every service listening on
//!    `127.0.0.1`; with it, the account reaches only the proxy.
//!
//! The proxied account (`network = allow`) gets the same fence with the proxy ports setup
//! recorded ([`proxied_fence`]); the offline account's has no proxy port. The online account
//! gets no fence.
//!
//! Gaps a SID-keyed fence cannot close (see `README.md`): a connect made while impersonating
//! another token, SMB through the kernel redirector, DNS answered by the resolver service.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::facts::SandboxUser;
use crate::sid::Sid;

/// Every firewall rule Palisade adds has a name starting with this.
pub const RULE_PREFIX: &str = "Palisade";
/// The firewall rule group (`Grouping`) of Palisade's rules.
pub const RULE_GROUP: &str = "Palisade";
/// Most proxy ports the fence lets through.
pub const MAX_PROXY_PORTS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Outbound,
    Inbound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpVersion {
    V4,
    V6,
}

/// A Windows Firewall rule for a sandbox account (symbolic: the account may not exist yet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    pub name: String,
    pub description: String,
    pub direction: Direction,
    pub ip: IpVersion,
    /// Always block; kept as data so the rule reads completely.
    pub block: bool,
    /// Remote addresses in the firewall's syntax (`a.b.c.d-e.f.g.h`); any protocol, any port,
    /// every profile.
    pub remote_addresses: Vec<String>,
    pub user: SandboxUser,
}

/// A firewall rule as installed (or read back): the account resolved to its SID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledRule {
    pub name: String,
    pub grouping: String,
    pub description: String,
    pub direction: Direction,
    pub block: bool,
    /// `None` for any protocol.
    pub protocol: Option<u8>,
    pub remote_addresses: Vec<String>,
    /// `LocalUserAuthorizedList`.
    pub local_user_authorized_list: String,
    /// Applies to the domain, private and public profiles.
    pub all_profiles: bool,
    pub enabled: bool,
}

/// The security descriptor that makes a firewall rule or WFP filter match one account.
pub fn user_match_sddl(sid: &Sid) -> String {
    format!("O:LSD:(A;;CC;;;{sid})")
}

impl FirewallRule {
    pub fn render(&self, sid: &Sid) -> InstalledRule {
        InstalledRule {
            name: self.name.clone(),
            grouping: RULE_GROUP.to_string(),
            description: self.description.clone(),
            direction: self.direction,
            block: self.block,
            protocol: None,
            remote_addresses: self.remote_addresses.clone(),
            local_user_authorized_list: user_match_sddl(sid),
            all_profiles: true,
            enabled: true,
        }
    }
}

/// The WFP layer a filter sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WfpLayer {
    /// `FWPM_LAYER_ALE_AUTH_CONNECT_V4`
    AleAuthConnectV4,
    /// `FWPM_LAYER_ALE_AUTH_CONNECT_V6`
    AleAuthConnectV6,
}

/// A WFP filter for a sandbox account (symbolic).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WfpFilter {
    pub name: String,
    pub layer: WfpLayer,
    pub permit: bool,
    /// Match only loopback traffic (`FWP_CONDITION_FLAG_IS_LOOPBACK`).
    pub loopback_only: bool,
    /// Match only TCP to this remote port.
    pub tcp_remote_port: Option<u16>,
    /// Higher wins inside Palisade's sublayer.
    pub weight: u8,
    pub user: SandboxUser,
}

/// A WFP filter as installed or read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledFilter {
    pub key: String,
    pub name: String,
    pub sublayer_key: String,
    pub layer: WfpLayer,
    pub permit: bool,
    pub loopback_only: bool,
    pub tcp_remote_port: Option<u16>,
    pub weight: u8,
    /// The `FWPM_CONDITION_ALE_USER_ID` security descriptor.
    pub user_sddl: String,
    pub persistent: bool,
}

/// A Palisade object in WFP as installed or read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum WfpObject {
    Provider { key: String, name: String },
    Sublayer { key: String, name: String, provider_key: String, weight: u16 },
    Filter(InstalledFilter),
}

impl WfpObject {
    pub fn key(&self) -> &str {
        match self {
            WfpObject::Provider { key, .. } | WfpObject::Sublayer { key, .. } => key,
            WfpObject::Filter(f) => &f.key,
        }
    }
    pub fn name(&self) -> &str {
        match self {
            WfpObject::Provider { name, .. } | WfpObject::Sublayer { name, .. } => name,
            WfpObject::Filter(f) => &f.name,
        }
    }
}

pub const PROVIDER_NAME: &str = "Palisade";
pub const SUBLAYER_NAME: &str = "Palisade sandbox fence";

pub fn provider() -> WfpObject {
    WfpObject::Provider { key: stable_key(PROVIDER_NAME), name: PROVIDER_NAME.to_string() }
}

pub fn sublayer() -> WfpObject {
    WfpObject::Sublayer {
        key: stable_key(SUBLAYER_NAME),
        name: SUBLAYER_NAME.to_string(),
        provider_key: stable_key(PROVIDER_NAME),
        weight: 0x8000,
    }
}

impl WfpFilter {
    pub fn key(&self) -> String {
        stable_key(&self.name)
    }

    pub fn render(&self, sid: &Sid) -> WfpObject {
        WfpObject::Filter(InstalledFilter {
            key: self.key(),
            name: self.name.clone(),
            sublayer_key: stable_key(SUBLAYER_NAME),
            layer: self.layer,
            permit: self.permit,
            loopback_only: self.loopback_only,
            tcp_remote_port: self.tcp_remote_port,
            weight: self.weight,
            user_sddl: user_match_sddl(sid),
            persistent: true,
        })
    }
}

/// A GUID-shaped key derived from a name, so the same filter gets the same key on every
/// machine and every run (idempotent adds, deletes by key). Not cryptographic: two FNV-1a
/// hashes, formatted as an RFC 9562 version-8 ("custom") UUID.
pub fn stable_key(name: &str) -> String {
    let h = |offset: u64| name.bytes().fold(offset, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    let a = h(0xcbf2_9ce4_8422_2325);
    let b = h(0x8422_2325_cbf2_9ce4 ^ name.len() as u64);
    let v = (u128::from(a) << 64) | u128::from(b);
    let v = (v & !(0xf << 76)) | (0x8 << 76); // version 8
    let v = (v & !(0x3 << 62)) | (0x2 << 62); // RFC variant
    let s = format!("{v:032x}");
    format!("{{{}-{}-{}-{}-{}}}", &s[0..8], &s[8..12], &s[12..16], &s[16..20], &s[20..32])
}

/// Why the fence cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    #[error("proxy port 0 is not a port")]
    PortZero,
    #[error("proxy port {0} is listed twice")]
    DuplicatePort(u16),
    #[error("{0} proxy ports given, at most {MAX_PROXY_PORTS}")]
    TooManyPorts(usize),
}

/// The whole fence of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub rules: Vec<FirewallRule>,
    /// Provider, sublayer, then filters (the order in which they must be added).
    pub filters: Vec<WfpFilter>,
}

/// The fence of the offline account: firewall rules blocking everything but loopback in both
/// directions, WFP filters permitting loopback TCP to the proxy ports (setup gives none: an
/// offline command reaches no port at all) and blocking the rest.
pub fn offline_fence(proxy_ports: &[u16]) -> Result<Fence, FenceError> {
    account_fence(SandboxUser::Offline, proxy_ports)
}

/// The fence of the proxied account (`network = allow`, see [`crate::proxy_route`]): the same
/// shape as the offline one, with WFP permits for loopback TCP to the proxy ports setup
/// recorded. A command of this account reaches those ports and nothing else.
pub fn proxied_fence(proxy_ports: &[u16]) -> Result<Fence, FenceError> {
    account_fence(SandboxUser::Proxied, proxy_ports)
}

/// The fence of a fenced account (its rules and filters named after it).
fn account_fence(user: SandboxUser, proxy_ports: &[u16]) -> Result<Fence, FenceError> {
    if proxy_ports.len() > MAX_PROXY_PORTS {
        return Err(FenceError::TooManyPorts(proxy_ports.len()));
    }
    for (i, p) in proxy_ports.iter().enumerate() {
        if *p == 0 {
            return Err(FenceError::PortZero);
        }
        if proxy_ports[..i].contains(p) {
            return Err(FenceError::DuplicatePort(*p));
        }
    }
    let id = user.id();
    let mut rules = Vec::new();
    for direction in [Direction::Outbound, Direction::Inbound] {
        for ip in [IpVersion::V4, IpVersion::V6] {
            let (dir, verb) = match direction {
                Direction::Outbound => ("outbound", "to"),
                Direction::Inbound => ("inbound", "from"),
            };
            let v = match ip {
                IpVersion::V4 => "IPv4",
                IpVersion::V6 => "IPv6",
            };
            rules.push(FirewallRule {
                name: format!("{RULE_PREFIX} {id}: block {dir} {v}"),
                description: format!(
                    "Blocks traffic of {} {verb} every {v} address except loopback (Palisade sandbox; remove with `palisade setup --uninstall`)",
                    user.account_name()
                ),
                direction,
                ip,
                block: true,
                remote_addresses: non_loopback_ranges(ip),
                user,
            });
        }
    }
    let mut filters = Vec::new();
    let mut sorted = proxy_ports.to_vec();
    sorted.sort_unstable();
    for (layer, v) in [(WfpLayer::AleAuthConnectV4, "IPv4"), (WfpLayer::AleAuthConnectV6, "IPv6")] {
        for p in &sorted {
            filters.push(WfpFilter {
                name: format!("{RULE_PREFIX} {id}: permit loopback TCP {p} {v}"),
                layer,
                permit: true,
                loopback_only: true,
                tcp_remote_port: Some(*p),
                weight: 10,
                user,
            });
        }
        filters.push(WfpFilter {
            name: format!("{RULE_PREFIX} {id}: block all connects {v}"),
            layer,
            permit: false,
            loopback_only: false,
            tcp_remote_port: None,
            weight: 1,
            user,
        });
    }
    Ok(Fence { rules, filters })
}

/// Every address of the family except the loopback range (`127.0.0.0/8`, `::1`), as firewall
/// ranges.
pub fn non_loopback_ranges(ip: IpVersion) -> Vec<String> {
    match ip {
        IpVersion::V4 => complement(&[(0x7f00_0000, 0x7fff_ffff)], u128::from(u32::MAX))
            .into_iter()
            .map(|(a, b)| range_text(Ipv4Addr::from(a as u32), Ipv4Addr::from(b as u32), a == b))
            .collect(),
        IpVersion::V6 => complement(&[(1, 1)], u128::MAX)
            .into_iter()
            .map(|(a, b)| range_text(Ipv6Addr::from(a), Ipv6Addr::from(b), a == b))
            .collect(),
    }
}

fn range_text<T: std::fmt::Display>(a: T, b: T, single: bool) -> String {
    if single {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// The ranges of `0..=max` not covered by `excluded` (sorted, disjoint, inclusive ranges).
pub fn complement(excluded: &[(u128, u128)], max: u128) -> Vec<(u128, u128)> {
    let mut ex = excluded.to_vec();
    ex.sort_unstable();
    let mut out = Vec::new();
    let mut next: Option<u128> = Some(0);
    for (a, b) in ex {
        if let Some(n) = next {
            if a > n {
                out.push((n, a - 1));
            }
            if b >= n {
                next = b.checked_add(1).filter(|v| *v <= max);
            }
        }
    }
    if let Some(n) = next {
        out.push((n, max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> Sid {
        Sid::parse("S-1-5-21-1-2-3-1011").unwrap()
    }

    #[test]
    fn ranges_exclude_exactly_loopback() {
        assert_eq!(non_loopback_ranges(IpVersion::V4), vec!["0.0.0.0-126.255.255.255", "128.0.0.0-255.255.255.255"]);
        assert_eq!(non_loopback_ranges(IpVersion::V6), vec!["::", "::2-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]);
    }

    #[test]
    fn complement_covers_everything_else() {
        assert_eq!(complement(&[], 10), vec![(0, 10)]);
        assert_eq!(complement(&[(0, 10)], 10), vec![]);
        assert_eq!(complement(&[(0, 0)], 10), vec![(1, 10)]);
        assert_eq!(complement(&[(10, 10)], 10), vec![(0, 9)]);
        assert_eq!(complement(&[(5, 6), (2, 3)], 10), vec![(0, 1), (4, 4), (7, 10)]);
        assert_eq!(complement(&[(2, 6), (3, 4)], 10), vec![(0, 1), (7, 10)]);
        assert_eq!(complement(&[(u128::MAX, u128::MAX)], u128::MAX), vec![(0, u128::MAX - 1)]);
        // Exhaustive check on a small universe: every value is in exactly one of the two.
        let ex = [(3u128, 5u128), (9, 9), (12, 15)];
        let c = complement(&ex, 15);
        for v in 0..=15u128 {
            let in_ex = ex.iter().any(|(a, b)| (*a..=*b).contains(&v));
            let in_c = c.iter().filter(|(a, b)| (*a..=*b).contains(&v)).count();
            assert_eq!(in_c, usize::from(!in_ex), "{v}");
        }
    }

    #[test]
    fn offline_fence_fixture() {
        let f = offline_fence(&[8877, 3128]).unwrap();
        let names: Vec<&str> = f.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Palisade offline: block outbound IPv4",
                "Palisade offline: block outbound IPv6",
                "Palisade offline: block inbound IPv4",
                "Palisade offline: block inbound IPv6"
            ]
        );
        assert!(f.rules.iter().all(|r| r.block && r.user == SandboxUser::Offline && r.name.starts_with(RULE_PREFIX)));
        let r = f.rules[0].render(&sid());
        assert_eq!(r.local_user_authorized_list, "O:LSD:(A;;CC;;;S-1-5-21-1-2-3-1011)");
        assert_eq!(r.grouping, "Palisade");
        assert!(r.all_profiles && r.enabled && r.protocol.is_none());
        let names: Vec<&str> = f.filters.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Palisade offline: permit loopback TCP 3128 IPv4",
                "Palisade offline: permit loopback TCP 8877 IPv4",
                "Palisade offline: block all connects IPv4",
                "Palisade offline: permit loopback TCP 3128 IPv6",
                "Palisade offline: permit loopback TCP 8877 IPv6",
                "Palisade offline: block all connects IPv6"
            ]
        );
        // Permits outweigh the block inside Palisade's sublayer.
        for p in f.filters.iter().filter(|f| f.permit) {
            assert!(p.loopback_only && p.tcp_remote_port.is_some());
            let block = f.filters.iter().find(|b| !b.permit && b.layer == p.layer).unwrap();
            assert!(p.weight > block.weight);
            assert!(!block.loopback_only && block.tcp_remote_port.is_none());
        }
        let WfpObject::Filter(inst) = f.filters[0].render(&sid()) else { panic!() };
        assert_eq!(inst.user_sddl, "O:LSD:(A;;CC;;;S-1-5-21-1-2-3-1011)");
        assert_eq!(inst.sublayer_key, sublayer().key());
        assert!(inst.persistent);
    }

    #[test]
    fn proxied_fence_is_named_after_its_account_and_permits_only_the_ports() {
        let f = proxied_fence(&[47_311, 47_310]).unwrap();
        assert!(f.rules.iter().all(|r| r.user == SandboxUser::Proxied && r.name.starts_with("Palisade proxied: ")));
        assert_eq!(f.rules.len(), 4);
        let permits: Vec<(WfpLayer, Option<u16>)> =
            f.filters.iter().filter(|x| x.permit).map(|x| (x.layer, x.tcp_remote_port)).collect();
        assert_eq!(
            permits,
            [
                (WfpLayer::AleAuthConnectV4, Some(47_310)),
                (WfpLayer::AleAuthConnectV4, Some(47_311)),
                (WfpLayer::AleAuthConnectV6, Some(47_310)),
                (WfpLayer::AleAuthConnectV6, Some(47_311)),
            ]
        );
        assert!(f.filters.iter().all(|x| x.user == SandboxUser::Proxied && x.name.starts_with("Palisade proxied: ")));
        assert!(f.filters.iter().filter(|x| x.permit).all(|x| x.loopback_only));
        assert_eq!(f.filters.iter().filter(|x| !x.permit && x.tcp_remote_port.is_none()).count(), 2);
        // No name (hence no key) is shared with the offline fence.
        let offline = offline_fence(&[47_310]).unwrap();
        for x in &f.filters {
            assert!(offline.filters.iter().all(|o| o.key() != x.key()));
        }
        assert_eq!(proxied_fence(&[0]), Err(FenceError::PortZero));
    }

    #[test]
    fn no_proxy_means_block_everything() {
        let f = offline_fence(&[]).unwrap();
        assert!(f.filters.iter().all(|f| !f.permit));
        assert_eq!(f.filters.len(), 2);
    }

    #[test]
    fn bad_ports_are_refused() {
        assert_eq!(offline_fence(&[0]), Err(FenceError::PortZero));
        assert_eq!(offline_fence(&[80, 80]), Err(FenceError::DuplicatePort(80)));
        assert_eq!(offline_fence(&[1; 17]), Err(FenceError::TooManyPorts(17)));
    }

    #[test]
    fn keys_are_stable_and_distinct() {
        let k = stable_key("Palisade");
        assert_eq!(k, stable_key("Palisade"));
        assert_eq!(k.len(), 38);
        assert!(k.starts_with('{') && k.ends_with('}'));
        assert_eq!(&k[15..16], "8");
        let f = offline_fence(&[1, 2, 3]).unwrap();
        let mut keys: Vec<String> = f.filters.iter().map(|f| f.key()).collect();
        keys.push(provider().key().to_string());
        keys.push(sublayer().key().to_string());
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }
}
