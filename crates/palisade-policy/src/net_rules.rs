//! Network allowlist rules: which host names, addresses and ports a sandboxed command may reach
//! through Palisade's proxy. Plain data and pure functions; the proxy asks [`Allowlist::decide`].
//!
//! Entry forms (one string each; the caller adds file:line to an error):
//! - `example.com`: exactly that host. `*.example.com`: any name strictly below it (not the apex).
//! - `example.com:8443`: that port only. Without a port an allow entry means ports 80 and 443;
//!   a deny entry without a port means every port (a deny should not leak through another port).
//! - `203.0.113.7`, `203.0.113.0/24`, `2001:db8::1`, `2001:db8::/32`, `[2001:db8::1]:8443`,
//!   `203.0.113.0/24:8443`, `[2001:db8::/32]:8443`: addresses and CIDR ranges.
//!
//! Names compare case-insensitively with a trailing dot ignored. Only ASCII (punycode) names are
//! accepted: an internationalized name must be written in its `xn--` form, so that the rule and
//! the name on the wire are the same bytes. A wildcard broader than one registrable domain
//! (`*`, `*.com`, `*.co.uk`, `*.github.io`) is refused in an allow entry, judged by Mozilla's
//! public suffix list (the `psl` crate, compiled in).
//!
//! A request for an IP literal is decided only by address entries; a request for a name only by
//! name entries. (Where a name's resolved addresses land is the proxy's second check.)

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use psl::Psl;

/// Whether an entry is parsed for the allow list or the deny list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Allow,
    Deny,
}

/// What an entry names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Exactly this host name (lowercase, no trailing dot).
    Host(String),
    /// Every name strictly below this domain (`*.example.com` → `example.com`).
    Subdomains(String),
    /// An address range (a single address is a full-length prefix).
    Net(IpNet),
}

/// An address and a prefix length, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(ip, self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_v6(ip, self.prefix) == u128::from(net),
            _ => false,
        }
    }

    /// Whether every address of `other` is in `self`.
    pub fn covers(&self, other: &IpNet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    fn max_prefix(addr: IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }
}

fn mask_v4(ip: Ipv4Addr, prefix: u8) -> u32 {
    let bits = u32::from(ip);
    if prefix == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask_v6(ip: Ipv6Addr, prefix: u8) -> u128 {
    let bits = u128::from(ip);
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(prefix)))
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address it carries, so that a
/// rule for 127.0.0.0/8 cannot be dodged by writing the mapped form.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Which ports an entry covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ports {
    /// No port written: 80 and 443 in an allow entry, every port in a deny entry.
    Unspecified,
    One(u16),
}

/// One parsed allow or deny entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub target: Target,
    pub ports: Ports,
    pub kind: Kind,
}

impl Entry {
    /// Parses one entry; the error is one line without a location.
    pub fn parse(text: &str, kind: Kind) -> Result<Entry, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty network entry".into());
        }
        if !text.is_ascii() {
            return Err(format!(
                "network entry {text:?} is not ASCII; write an internationalized name in its \
                 punycode form (xn--...)"
            ));
        }
        if text.contains("://") {
            return Err(format!(
                "network entry {text:?} is not a host, host:port, address or CIDR range \
                 (write example.com, not a URL)"
            ));
        }
        let (addr_part, ports) = split_port(text)?;
        if let Some(net) = parse_net(addr_part).map_err(|e| format!("network entry {e}"))? {
            if kind == Kind::Allow && net.prefix == 0 {
                return Err(format!("network entry {text:?} allows every address; name the ranges you need"));
            }
            return Ok(Entry { target: Target::Net(net), ports, kind });
        }
        let target = if let Some(base) = addr_part.strip_prefix("*.") {
            let base = normalize_name(base).map_err(|e| format!("network entry {text:?}: {e}"))?;
            if kind == Kind::Allow && is_public_suffix(&base) {
                return Err(format!(
                    "network entry {text:?} is broader than one registrable domain \
                     ({base} is a public suffix); name the domain, e.g. *.example.{base}"
                ));
            }
            Target::Subdomains(base)
        } else if addr_part == "*" {
            return Err(format!(
                "network entry {text:?} matches every host; name the hosts you need \
                 (or turn the network fully on)"
            ));
        } else {
            Target::Host(normalize_name(addr_part).map_err(|e| format!("network entry {text:?}: {e}"))?)
        };
        Ok(Entry { target, ports, kind })
    }

    fn port_matches(&self, port: u16) -> bool {
        match (self.ports, self.kind) {
            (Ports::One(p), _) => p == port,
            (Ports::Unspecified, Kind::Allow) => port == 80 || port == 443,
            (Ports::Unspecified, Kind::Deny) => true,
        }
    }

    /// The ports an allow entry covers, as a small list (for coverage checks).
    fn allow_ports(&self) -> &'static [u16] {
        const WEB: [u16; 2] = [80, 443];
        match self.ports {
            Ports::Unspecified => &WEB,
            Ports::One(_) => &[],
        }
    }

    /// Whether this entry matches a request for `host` on `port`.
    pub fn matches(&self, host: &RequestHost, port: u16) -> bool {
        if !self.port_matches(port) {
            return false;
        }
        match (&self.target, host) {
            (Target::Host(h), RequestHost::Name(n)) => h == n,
            (Target::Subdomains(base), RequestHost::Name(n)) => is_strictly_below(n, base),
            (Target::Net(net), RequestHost::Ip(ip)) => net.contains(*ip),
            _ => false,
        }
    }

    /// Whether every (host, port) this allow entry admits is admitted by `wider` alone.
    fn covered_by(&self, wider: &Entry) -> bool {
        let hosts = match (&self.target, &wider.target) {
            (Target::Host(a), Target::Host(b)) => a == b,
            (Target::Host(a), Target::Subdomains(b)) => is_strictly_below(a, b),
            (Target::Subdomains(a), Target::Subdomains(b)) => a == b || is_strictly_below(a, b),
            (Target::Net(a), Target::Net(b)) => b.covers(a),
            _ => false,
        };
        if !hosts {
            return false;
        }
        match self.ports {
            Ports::One(p) => wider.port_matches(p),
            Ports::Unspecified => self.allow_ports().iter().all(|&p| wider.port_matches(p)),
        }
    }
}

impl fmt::Display for Entry {
    /// The canonical form, which parses back to the same entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = match self.ports {
            Ports::One(p) => Some(p),
            Ports::Unspecified => None,
        };
        match (&self.target, port) {
            (Target::Host(h), None) => write!(f, "{h}"),
            (Target::Host(h), Some(p)) => write!(f, "{h}:{p}"),
            (Target::Subdomains(b), None) => write!(f, "*.{b}"),
            (Target::Subdomains(b), Some(p)) => write!(f, "*.{b}:{p}"),
            (Target::Net(n), port) => {
                let full = n.prefix == IpNet::max_prefix(n.addr);
                let body = if full { n.addr.to_string() } else { format!("{}/{}", n.addr, n.prefix) };
                match (n.addr, port) {
                    (_, None) => write!(f, "{body}"),
                    (IpAddr::V4(_), Some(p)) => write!(f, "{body}:{p}"),
                    (IpAddr::V6(_), Some(p)) => write!(f, "[{body}]:{p}"),
                }
            }
        }
    }
}

/// Splits `addr[:port]`, `[v6][:port]`; a bare IPv6 address (several colons) has no port.
fn split_port(text: &str) -> Result<(&str, Ports), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(format!("network entry {text:?} has '[' without ']'"));
        };
        if after.is_empty() {
            return Ok((inside, Ports::Unspecified));
        }
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("network entry {text:?}: expected ':port' after ']'"));
        };
        return Ok((inside, Ports::One(parse_port(port, text)?)));
    }
    if text.matches(':').count() > 1 {
        return Ok((text, Ports::Unspecified));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Ports::One(parse_port(port, text)?))),
        None => Ok((text, Ports::Unspecified)),
    }
}

fn parse_port(port: &str, text: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(format!("network entry {text:?}: port {port:?} is not a number from 1 to 65535")),
    }
}

/// An address or CIDR range, or `None` when the text is not address-shaped.
fn parse_net(text: &str) -> Result<Option<IpNet>, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return if prefix.is_some() {
            Err(format!("{text:?} is not a host, address or CIDR range (write example.com, not a URL)"))
        } else {
            Ok(None)
        };
    };
    let mapped = matches!(addr, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
    let addr = canonical_ip(addr);
    let max = IpNet::max_prefix(addr);
    let prefix = match prefix {
        None => max,
        Some(p) => {
            let n = p.parse::<u8>().ok().filter(|_| p.bytes().all(|b| b.is_ascii_digit()));
            let n = n.ok_or_else(|| format!("{text:?}: prefix length {p:?} is not a number"))?;
            let n = if mapped {
                n.checked_sub(96).ok_or_else(|| format!("{text:?}: prefix too short for an IPv4-mapped range"))?
            } else {
                n
            };
            if n > max {
                return Err(format!("{text:?}: prefix length {n} is longer than {max}"));
            }
            n
        }
    };
    let net = IpNet { addr, prefix };
    let masked = match addr {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(mask_v4(v4, prefix))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(mask_v6(v6, prefix))),
    };
    if masked != addr {
        return Err(format!("{text:?} has bits set after the prefix; did you mean {masked}/{prefix}?"));
    }
    Ok(Some(net))
}

/// Lowercases and checks a host name (ASCII letters, digits, '-', '_'; labels 1-63 bytes).
fn normalize_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err("a host name must be 1 to 253 characters".into());
    }
    if !name.is_ascii() {
        return Err("not ASCII; write an internationalized name in its punycode form (xn--...)".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must be 1 to 63 characters".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
        if let Some(bad) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!("{bad:?} is not allowed in a host name"));
        }
    }
    // A name whose last label is a number is read as an IPv4 address by URL parsers and by
    // inet_aton ("127.1", "0x7f.1"): it would not mean what the rule says.
    let last = name.rsplit('.').next().unwrap_or("");
    if is_numeric_label(last) {
        return Err("ends in a number, so resolvers read it as an IPv4 address; write the address".into());
    }
    Ok(name)
}

fn is_numeric_label(label: &str) -> bool {
    let hex = label.strip_prefix("0x").or_else(|| label.strip_prefix("0X"));
    match hex {
        Some(h) => h.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn is_strictly_below(name: &str, base: &str) -> bool {
    name.len() > base.len() + 1 && name.ends_with(base) && name.as_bytes()[name.len() - base.len() - 1] == b'.'
}

/// Whether `name` is itself a public suffix (including a single unknown label: the list's
/// implicit `*` rule makes every top-level label a suffix).
pub fn is_public_suffix(name: &str) -> bool {
    match psl::List.suffix(name.as_bytes()) {
        Some(suffix) => suffix.as_bytes() == name.as_bytes(),
        None => true,
    }
}

/// The host a client asked for, normalized: a name (lowercase, no trailing dot) or an address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestHost {
    Name(String),
    Ip(IpAddr),
}

impl RequestHost {
    /// Parses a host as sent by a client (`example.com`, `203.0.113.5`, `[2001:db8::1]`).
    pub fn parse(text: &str) -> Result<RequestHost, String> {
        let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
        if let Some(inner) = inner {
            return match inner.parse::<Ipv6Addr>() {
                Ok(v6) => Ok(RequestHost::Ip(canonical_ip(IpAddr::V6(v6)))),
                Err(_) => Err(format!("{text:?} is not an IPv6 address")),
            };
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(RequestHost::Ip(canonical_ip(ip)));
        }
        normalize_name(text).map(RequestHost::Name).map_err(|e| format!("host {text:?}: {e}"))
    }
}

impl fmt::Display for RequestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestHost::Name(n) => f.write_str(n),
            RequestHost::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The outcome of [`Allowlist::decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The entry that decided (canonical form), or `None` when nothing matched.
    pub rule: Option<String>,
}

/// Allowed and denied entries. Deny wins; nothing matched means refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    pub allow: Vec<Entry>,
    pub deny: Vec<Entry>,
}

/// The result of [`Allowlist::narrow`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Narrowed {
    pub allowlist: Allowlist,
    /// The lower layer's allow entries the managed list does not cover (for a warning).
    pub dropped: Vec<Entry>,
}

impl Allowlist {
    /// Parses allow and deny entries; the error names the offending entry.
    pub fn parse<A: AsRef<str>, D: AsRef<str>>(allow: &[A], deny: &[D]) -> Result<Allowlist, String> {
        let allow = allow.iter().map(|t| Entry::parse(t.as_ref(), Kind::Allow)).collect::<Result<_, _>>()?;
        let deny = deny.iter().map(|t| Entry::parse(t.as_ref(), Kind::Deny)).collect::<Result<_, _>>()?;
        Ok(Allowlist { allow, deny })
    }

    /// Decides a request for `host_or_ip` (a name, an address, or `[v6]`) on `port`.
    /// Text that is neither a valid name nor an address is refused with no rule.
    pub fn decide(&self, host_or_ip: &str, port: u16) -> Decision {
        match RequestHost::parse(host_or_ip) {
            Ok(host) => self.decide_host(&host, port),
            Err(_) => Decision { allowed: false, rule: None },
        }
    }

    pub fn decide_host(&self, host: &RequestHost, port: u16) -> Decision {
        if let Some(e) = self.deny.iter().find(|e| e.matches(host, port)) {
            return Decision { allowed: false, rule: Some(e.to_string()) };
        }
        match self.allow.iter().find(|e| e.matches(host, port)) {
            Some(e) => Decision { allowed: true, rule: Some(e.to_string()) },
            None => Decision { allowed: false, rule: None },
        }
    }

    /// Intersects a lower layer's list with this (managed) one, so that a lower layer can only
    /// narrow what the managed file allows:
    /// - a lower allow entry is kept, unchanged, when for each port it admits there is one
    ///   managed allow entry admitting that port whose hosts include all the entry's hosts
    ///   (`api.example.com` under `*.example.com`; `203.0.113.0/25` under `203.0.113.0/24`);
    ///   otherwise it is dropped whole (reported in `dropped`), never widened or trimmed;
    /// - a host name entry is never covered by an address entry, or the reverse;
    /// - the deny list is the union of both (a deny only narrows);
    /// - this list's own allow entries are not added: the result allows at most what both allow.
    ///
    /// A lower layer with no allow entries yields no allow entries: whether "says nothing"
    /// means "inherit" is the configuration's decision, made before calling this.
    pub fn narrow(&self, lower: &Allowlist) -> Narrowed {
        let mut allow = Vec::new();
        let mut dropped = Vec::new();
        for entry in &lower.allow {
            let ports: Vec<u16> = match entry.ports {
                Ports::One(p) => vec![p],
                Ports::Unspecified => entry.allow_ports().to_vec(),
            };
            let covered = ports.iter().all(|&p| {
                let single = Entry { ports: Ports::One(p), ..entry.clone() };
                self.allow.iter().any(|m| single.covered_by(m))
            });
            if covered {
                allow.push(entry.clone());
            } else {
                dropped.push(entry.clone());
            }
        }
        let mut deny = self.deny.clone();
        deny.extend(lower.deny.iter().filter(|d| !self.deny.contains(d)).cloned());
        Narrowed { allowlist: Allowlist { allow, deny }, dropped }
    }

    /// The deny entry matching an address a name resolved to, if any: a deny on an address range
    /// applies to names that lead there too.
    pub fn deny_for_address(&self, ip: IpAddr, port: u16) -> Option<&Entry> {
        let host = RequestHost::Ip(canonical_ip(ip));
        self.deny.iter().find(|e| e.matches(&host, port))
    }

    /// The allow entry naming this address explicitly (used to admit a name that resolves into
    /// a local or private range), unless a deny entry matches it.
    pub fn allow_for_address(&self, ip: IpAddr, port: u16) -> Option<&Entry> {
        let host = RequestHost::Ip(canonical_ip(ip));
        if self.deny_for_address(ip, port).is_some() {
            return None;
        }
        self.allow.iter().find(|e| e.matches(&host, port))
    }
}

#[cfg(test)]
#[path = "net_rules_tests.rs"]
mod tests;
