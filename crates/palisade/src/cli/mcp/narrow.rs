//! A tool call's policy request applied to the server's loaded policy. It works on the loaded
//! `Policy` directly (not through the configuration layers): the layers have already produced
//! the most the server may allow, and a call may only take things away from it. Anything that
//! would add (a writable root, a network setting or an allowed host the loaded policy lacks) is
//! refused with a message naming it, never trimmed silently.

use palisade::policy::net_rules::Allowlist;
use palisade::{Mode, Network, Policy};
use std::path::PathBuf;

/// What a call may ask for; every field only narrows. `None` keeps the loaded value.
#[derive(Default, Debug)]
pub(super) struct Narrowing {
    pub(super) read_only: Option<bool>,
    pub(super) network: Option<String>,
    pub(super) allow_net: Option<Vec<String>>,
    /// The extra writable roots to keep (each inside one the loaded policy has).
    pub(super) writable: Option<Vec<PathBuf>>,
}

impl Narrowing {
    pub(super) fn is_empty(&self) -> bool {
        self.read_only.is_none() && self.network.is_none() && self.allow_net.is_none() && self.writable.is_none()
    }
}

/// The loaded policy with the request applied, or why the request would widen it.
pub(super) fn narrow(loaded: &Policy, req: &Narrowing) -> Result<Policy, String> {
    let mut policy = loaded.clone();
    match req.read_only {
        Some(true) => policy.mode = Mode::ReadOnly,
        Some(false) if loaded.mode == Mode::ReadOnly => {
            return Err("read_only: false would widen the policy: the server's policy is read-only".into())
        }
        _ => {}
    }
    if let Some(roots) = &req.writable {
        let loaded_roots = loaded.write_roots();
        for root in roots {
            let inside = loaded.mode != Mode::ReadOnly && loaded_roots.iter().any(|r| root.starts_with(r));
            if !inside {
                return Err(format!(
                    "writable: {} is not inside a writable root of the server's policy (a call may only narrow it)",
                    root.display()
                ));
            }
        }
        policy.writable_roots = roots.clone();
    }
    let wanted = match (&req.network, &req.allow_net) {
        (None, None) => None,
        (Some(n), _) => Some(n.as_str()),
        // Hosts alone mean "only these", which is the allowlist mode.
        (None, Some(_)) => Some("allow"),
    };
    if let Some(wanted) = wanted {
        policy.network = narrow_network(&loaded.network, wanted, req.allow_net.as_deref())?;
    }
    Ok(policy)
}

fn narrow_network(loaded: &Network, wanted: &str, hosts: Option<&[String]>) -> Result<Network, String> {
    let parse_hosts =
        |hosts: &[String]| Allowlist::parse(hosts, &[] as &[String]).map_err(|e| format!("allow_net: {e}"));
    match (wanted, loaded) {
        ("off", _) if hosts.is_some_and(|h| !h.is_empty()) => {
            Err("allow_net given with network \"off\": leave one of them out".into())
        }
        ("off", _) => Ok(Network::Off),
        ("on", Network::On) => Ok(Network::On),
        ("allow", Network::On) => Ok(Network::Allow(parse_hosts(hosts.unwrap_or_default())?)),
        ("allow", Network::Allow(current)) => match hosts {
            None => Ok(Network::Allow(current.clone())),
            Some(hosts) => {
                let narrowed = current.narrow(&parse_hosts(hosts)?);
                if let Some(first) = narrowed.dropped.first() {
                    return Err(format!(
                        "allow_net: {first} is not allowed by the server's policy (a call may only narrow the allowlist)"
                    ));
                }
                Ok(Network::Allow(narrowed.allowlist))
            }
        },
        ("on" | "allow", _) => Err(format!(
            "network \"{wanted}\" would widen the policy: the server's network setting is \"{}\"",
            loaded.as_str()
        )),
        (other, _) => Err(format!("unknown network setting {other:?} (expected off, allow or on)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(network: Network) -> Policy {
        let mut p = Policy::new("/ws", None);
        p.network = network;
        p.writable_roots = vec![PathBuf::from("/cache")];
        p
    }

    #[test]
    fn read_only_narrows_and_cannot_be_undone() {
        let p = narrow(&base(Network::Off), &Narrowing { read_only: Some(true), ..Default::default() }).unwrap();
        assert_eq!(p.mode, Mode::ReadOnly);
        let mut ro = base(Network::Off);
        ro.mode = Mode::ReadOnly;
        assert!(narrow(&ro, &Narrowing { read_only: Some(false), ..Default::default() }).is_err());
    }

    #[test]
    fn network_only_narrows() {
        let off = base(Network::Off);
        for wanted in ["on", "allow"] {
            let err = narrow(&off, &Narrowing { network: Some(wanted.into()), ..Default::default() }).unwrap_err();
            assert!(err.contains("widen"), "{err}");
        }
        assert!(narrow(&off, &Narrowing { allow_net: Some(vec!["example.com".into()]), ..Default::default() }).is_err());
        let on = base(Network::On);
        let p = narrow(&on, &Narrowing { allow_net: Some(vec!["example.com".into()]), ..Default::default() }).unwrap();
        assert!(matches!(p.network, Network::Allow(_)));
        assert!(matches!(
            narrow(&on, &Narrowing { network: Some("off".into()), ..Default::default() }).unwrap().network,
            Network::Off
        ));
    }

    #[test]
    fn allowlist_keeps_only_covered_hosts() {
        let list = Allowlist::parse(&["*.example.com"], &[] as &[&str]).unwrap();
        let allow = base(Network::Allow(list));
        let ok = Narrowing { allow_net: Some(vec!["api.example.com".into()]), ..Default::default() };
        assert!(narrow(&allow, &ok).is_ok());
        let wide = Narrowing { allow_net: Some(vec!["evil.test".into()]), ..Default::default() };
        assert!(narrow(&allow, &wide).unwrap_err().contains("evil.test"));
    }

    #[test]
    fn writable_roots_only_shrink() {
        let p = base(Network::Off);
        let inner = Narrowing { writable: Some(vec![PathBuf::from("/cache/sub")]), ..Default::default() };
        assert_eq!(narrow(&p, &inner).unwrap().writable_roots, vec![PathBuf::from("/cache/sub")]);
        let outer = Narrowing { writable: Some(vec![PathBuf::from("/etc")]), ..Default::default() };
        assert!(narrow(&p, &outer).is_err());
    }
}
