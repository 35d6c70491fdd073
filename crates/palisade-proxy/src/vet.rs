//! The decision for one request: the allowlist on the name the client asked for, then host-side
//! resolution, then a check of every resolved address (no name may lead into the host's
//! loopback, link-local or private networks unless that address is itself allowed). The result
//! is the exact list of addresses to connect to; nothing is resolved again later.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use palisade_policy::net_rules::{canonical_ip, Allowlist, RequestHost};

use crate::resolver::Resolver;

/// Why a request was refused, in the forms each protocol can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status for an HTTP client.
    pub status: u16,
    /// SOCKS5 reply code for a SOCKS client.
    pub socks: u8,
    /// One line for the client and the record.
    pub message: String,
    /// The allowlist entry involved, if any.
    pub rule: Option<String>,
    /// Whether the allowlist itself said yes (the refusal came later: resolution, address).
    pub policy_allowed: bool,
}

impl Refusal {
    pub fn new(status: u16, socks: u8, message: String) -> Refusal {
        Refusal { status, socks, message, rule: None, policy_allowed: false }
    }
}

/// The named range an address falls in when it must not be reached through a name, if any.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [0, ..] => "unspecified (0.0.0.0/8)",
        [127, ..] => "loopback",
        [10, ..] => "private (10.0.0.0/8)",
        [172, b, ..] if (16..32).contains(&b) => "private (172.16.0.0/12)",
        [192, 168, ..] => "private (192.168.0.0/16)",
        [100, b, ..] if (64..128).contains(&b) => "carrier-grade NAT (100.64.0.0/10)",
        [169, 254, ..] => "link-local (169.254.0.0/16, cloud metadata)",
        [a, ..] if (224..240).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved or broadcast",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast",
        // IPv4-compatible (::a.b.c.d), deprecated; never a public destination.
        [0, 0, 0, 0, 0, 0, ..] => "IPv4-compatible (::/96)",
        // Local-use NAT64 (RFC 8215): translated inside the site, to whatever it maps.
        [0x64, 0xff9b, 1, ..] => "local-use NAT64 (64:ff9b:1::/48)",
        // NAT64 (RFC 6052) and 6to4 carry an IPv4 address a translator or relay goes on to:
        // judged as that address (64:ff9b::a9fe:a9fe is the metadata service).
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return special_v4(embedded_v4(hi, lo)).map(|_| "NAT64 (64:ff9b::/96, embedding a local IPv4)")
        }
        [0x2002, hi, lo, ..] => {
            return special_v4(embedded_v4(hi, lo)).map(|_| "6to4 (2002::/16, embedding a local IPv4)")
        }
        _ => return None,
    })
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// How a host appears in a client message: names as is, IPv6 in brackets.
pub fn display_host(host: &RequestHost) -> String {
    match host {
        RequestHost::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        other => other.to_string(),
    }
}

/// The entry a user would add to allow `host:port`.
fn suggestion(host: &RequestHost, port: u16) -> String {
    match (host, port) {
        (RequestHost::Ip(IpAddr::V6(v6)), 80 | 443) => v6.to_string(),
        (_, 80 | 443) => host.to_string(),
        _ => format!("{}:{port}", display_host(host)),
    }
}

pub fn not_allowed_message(host: &RequestHost, port: u16) -> String {
    let shown = match port {
        80 | 443 => display_host(host),
        _ => format!("{}:{port}", display_host(host)),
    };
    format!(
        "palisade: {shown} is not in the network allowlist (add --allow-net {} or network.allow in .palisade/config.toml)",
        suggestion(host, port)
    )
}

/// Decides `host:port` and, when allowed, returns the addresses to connect to.
pub async fn vet(
    allowlist: &Allowlist,
    resolver: &Resolver,
    host: &RequestHost,
    port: u16,
    resolve_timeout: Duration,
    host_addresses: &[IpAddr],
    host_networks: &[(IpAddr, u8)],
) -> Result<(Vec<IpAddr>, Option<String>), Refusal> {
    let decision = allowlist.decide_host(host, port);
    if !decision.allowed {
        let message = match &decision.rule {
            Some(rule) => format!("palisade: {} is refused by the network deny rule {rule}", display_host(host)),
            None => not_allowed_message(host, port),
        };
        let mut r = Refusal::new(403, crate::socks::REPLY_NOT_ALLOWED, message);
        r.rule = decision.rule;
        return Err(r);
    }
    let rule = decision.rule;
    let refuse = |status, socks, message| Refusal { status, socks, message, rule: rule.clone(), policy_allowed: true };
    let name = match host {
        RequestHost::Ip(ip) => return Ok((vec![*ip], rule)),
        RequestHost::Name(name) => name,
    };
    let addrs = match tokio::time::timeout(resolve_timeout, resolver.resolve(name, port)).await {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(e)) => {
            let msg = format!("palisade: could not resolve {name}: {e}");
            return Err(refuse(502, crate::socks::REPLY_HOST_UNREACHABLE, msg));
        }
        Err(_) => {
            let msg = format!("palisade: resolving {name} took longer than {} s", resolve_timeout.as_secs_f32());
            return Err(refuse(504, crate::socks::REPLY_HOST_UNREACHABLE, msg));
        }
    };
    for &addr in &addrs {
        if let Some(deny) = allowlist.deny_for_address(addr, port) {
            let msg = format!("palisade: {name} resolves to {addr}, refused by the network deny rule {deny}");
            return Err(refuse(403, crate::socks::REPLY_NOT_ALLOWED, msg));
        }
        if let Some(range) = special_range(addr) {
            if allowlist.allow_for_address(addr, port).is_none() {
                let article = if range.starts_with(['a', 'e', 'i', 'o', 'u', 'I']) { "an" } else { "a" };
                let msg = format!(
                    "palisade: {name} resolves to {addr}, {article} {range} address; a name may not lead to the host or its local network unless that address is allowed"
                );
                return Err(refuse(403, crate::socks::REPLY_NOT_ALLOWED, msg));
            }
        }
        if host_addresses.contains(&canonical_ip(addr)) && allowlist.allow_for_address(addr, port).is_none() {
            let msg = format!(
                "palisade: {name} resolves to {addr}, an address of this host; a name may not lead to the host or its local network unless that address is allowed"
            );
            return Err(refuse(403, crate::socks::REPLY_NOT_ALLOWED, msg));
        }
        if let Some((net, prefix)) = local_network(addr, host_networks) {
            if allowlist.allow_for_address(addr, port).is_none() {
                let msg = format!(
                    "palisade: {name} resolves to {addr}, in this host's local network {net}/{prefix}; a name may not lead to the host or its local network unless that address is allowed"
                );
                return Err(refuse(403, crate::socks::REPLY_NOT_ALLOWED, msg));
            }
        }
    }
    Ok((addrs.into_iter().map(canonical_ip).collect(), rule))
}

/// The host's directly connected network (`(interface address, prefix length)`) that `addr`
/// lies in, if any: on-link neighbours and gateways, whatever their range (a VPC or a LAN with
/// public or documentation addresses is as local as a private one). A prefix of 0 is ignored.
pub fn local_network(addr: IpAddr, host_networks: &[(IpAddr, u8)]) -> Option<(IpAddr, u8)> {
    let addr = canonical_ip(addr);
    host_networks.iter().copied().find(|&(net, prefix)| {
        prefix > 0
            && match (canonical_ip(net), addr) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let bits = u32::from(prefix.min(32));
                    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let bits = u32::from(prefix.min(128));
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_the_hosts_networks_are_local() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let nets = [(ip("192.0.2.2"), 24), (ip("2001:db8:5::10"), 64), (ip("198.51.100.7"), 0)];
        assert_eq!(local_network(ip("192.0.2.1"), &nets), Some((ip("192.0.2.2"), 24)));
        assert_eq!(local_network(ip("192.0.2.254"), &nets), Some((ip("192.0.2.2"), 24)));
        assert_eq!(local_network(ip("::ffff:192.0.2.77"), &nets), Some((ip("192.0.2.2"), 24)));
        assert_eq!(local_network(ip("192.0.3.1"), &nets), None);
        assert_eq!(local_network(ip("2001:db8:5::1"), &nets), Some((ip("2001:db8:5::10"), 64)));
        assert_eq!(local_network(ip("2001:db8:6::1"), &nets), None);
        // A prefix of 0 would take in everything: ignored.
        assert_eq!(local_network(ip("203.0.113.9"), &nets), None);
        assert_eq!(local_network(ip("10.0.0.1"), &[(ip("10.1.2.3"), 32)]), None);
        assert_eq!(local_network(ip("10.1.2.3"), &[(ip("10.1.2.3"), 32)]), Some((ip("10.1.2.3"), 32)));
    }

    #[test]
    fn ranges() {
        for (ip, special) in [
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("10.1.1.1", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("100.128.0.1", false),
            ("0.0.0.0", true),
            ("224.0.0.1", true),
            ("255.255.255.255", true),
            ("192.0.2.1", false),
            ("198.51.100.1", false),
            ("203.0.113.1", false),
            ("8.8.8.8", false),
            ("::1", true),
            ("::", true),
            ("fe80::1", true),
            ("fd00::1", true),
            ("fc00::1", true),
            ("ff02::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:203.0.113.1", false),
            ("::127.0.0.1", true),
            ("2001:db8::1", false),
            ("2606:4700::1", false),
            ("fec0::1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::808:808", false),
            ("64:ff9b:1::808:808", true),
            ("2002:a00:1::1", true),
            ("2002:808:808::1", false),
        ] {
            assert_eq!(special_range(ip.parse().unwrap()).is_some(), special, "{ip}");
        }
    }

    #[test]
    fn messages() {
        let h = RequestHost::parse("example.org").unwrap();
        assert_eq!(
            not_allowed_message(&h, 443),
            "palisade: example.org is not in the network allowlist (add --allow-net example.org or network.allow in .palisade/config.toml)"
        );
        assert!(not_allowed_message(&h, 8443).contains("--allow-net example.org:8443 "));
        let v6 = RequestHost::parse("[2001:db8::1]").unwrap();
        assert!(not_allowed_message(&v6, 8443).contains("--allow-net [2001:db8::1]:8443 "));
        assert!(not_allowed_message(&v6, 443).contains("--allow-net 2001:db8::1 "));
    }
}
