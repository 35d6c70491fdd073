//! Proving the offline account's network fence before each offline command.
//!
//! Setup's firewall rules and WFP filters (see [`crate::fence_api`]) are only as good as their
//! being in force: Group Policy can override local rules, and filters can be removed. So
//! before it starts an offline command, the runner (running as `PalisadeOffline`) makes
//! non-blocking TCP connects as itself — to an outside address that never answers
//! ([`OUTSIDE_PROBE`], TEST-NET-1, and [`OUTSIDE_PROBE_V6`], IPv6's documentation prefix) and to
//! a loopback port the CLI listens on for this purpose (not a proxy port), at 127.0.0.1 and at
//! `::1` — and refuses to start the command unless the fence stopped them. Each pair is reported
//! as one outcome ([`combine`]), so the protocol carries two, as before IPv6 was probed: the
//! fence covers both families, and a machine without IPv6 has nothing to leak through it.
//!
//! A WFP block at `ALE_AUTH_CONNECT` fails `connect` synchronously with `WSAEACCES`; an
//! unblocked connect is in progress (`WSAEWOULDBLOCK`) or connected at once. The runner gives
//! a connect in progress no time to finish: in progress already means "not blocked". The CLI
//! checks, after the runner reported, that its listener accepted nothing either.
//!
//! No route to the outside address (a machine without a default route) is not a leak now: the
//! connect did not get out, though not because of the fence; the loopback connect, which always
//! has a route, still has to be blocked. Any other error proves nothing, and an enforcing probe
//! then refuses as well (fail closed).

use crate::check_report::FenceProbe;
use crate::protocol::ProbeOutcome;

/// The outside address: 192.0.2.1 (TEST-NET-1, RFC 5737: never routed on the internet), port 9
/// (discard). Nothing answers there, so an unblocked connect stays in progress.
pub const OUTSIDE_PROBE: ([u8; 4], u16) = ([192, 0, 2, 1], 9);

/// The outside address over IPv6: 2001:db8::1 (the documentation prefix, RFC 3849: never routed
/// on the internet), port 9.
pub const OUTSIDE_PROBE_V6: ([u16; 8], u16) = ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 9);

/// How the outside connects are named in messages.
const OUTSIDE_NAMES: &str = "192.0.2.1:9 or [2001:db8::1]:9";

/// Winsock error codes the classification knows.
pub mod wsa {
    pub const EACCES: i32 = 10013;
    pub const EWOULDBLOCK: i32 = 10035;
    pub const EINPROGRESS: i32 = 10036;
    pub const EALREADY: i32 = 10037;
    pub const EAFNOSUPPORT: i32 = 10047;
    pub const EADDRNOTAVAIL: i32 = 10049;
    pub const ENETUNREACH: i32 = 10051;
    pub const EISCONN: i32 = 10056;
    pub const ETIMEDOUT: i32 = 10060;
    pub const ECONNREFUSED: i32 = 10061;
    pub const EHOSTUNREACH: i32 = 10065;
}

/// How a non-blocking connect call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectResult {
    /// Connected at once.
    Connected,
    /// Still in progress when the runner stopped looking.
    Pending,
    /// Failed with this Winsock error code.
    Error(i32),
}

/// What one connect shows about the fence.
pub fn classify(r: ConnectResult) -> ProbeOutcome {
    match r {
        ConnectResult::Connected | ConnectResult::Pending => ProbeOutcome::Open,
        ConnectResult::Error(wsa::EACCES) => ProbeOutcome::Blocked,
        // Under way or answered by the far end (a refusal is an answer): it got out.
        ConnectResult::Error(
            wsa::EWOULDBLOCK | wsa::EINPROGRESS | wsa::EALREADY | wsa::EISCONN | wsa::ECONNREFUSED | wsa::ETIMEDOUT,
        ) => ProbeOutcome::Open,
        // No route, or (IPv6 on a machine without it) no address or protocol to connect from.
        ConnectResult::Error(wsa::ENETUNREACH | wsa::EHOSTUNREACH | wsa::EADDRNOTAVAIL | wsa::EAFNOSUPPORT) => {
            ProbeOutcome::NoRoute
        }
        ConnectResult::Error(code) => ProbeOutcome::Failed(code as u32),
    }
}

/// The outcome of one connect made over IPv4 and IPv6 (`v4`, `v6`): a connect that got out
/// wins, then one that proves nothing, then a block; "no route" only if neither family had one.
/// So a machine without IPv6 (no route, no address) is judged by its IPv4 connect alone, and
/// a fence that blocks IPv4 but not IPv6 is open.
pub fn combine(v4: ProbeOutcome, v6: ProbeOutcome) -> ProbeOutcome {
    let rank = |o: ProbeOutcome| match o {
        ProbeOutcome::Open => 3,
        ProbeOutcome::Failed(_) => 2,
        ProbeOutcome::Blocked => 1,
        ProbeOutcome::NoRoute => 0,
    };
    if rank(v6) > rank(v4) {
        v6
    } else {
        v4
    }
}

fn describe(o: ProbeOutcome) -> String {
    match o {
        ProbeOutcome::Blocked => "blocked".into(),
        ProbeOutcome::Open => "got out".into(),
        ProbeOutcome::NoRoute => "had no route".into(),
        ProbeOutcome::Failed(code) => format!("failed with Winsock error {code}"),
    }
}

/// The fence is proven when both connects were blocked, or the outside one had no route and
/// the loopback one was blocked. `Err`: one line saying what got out or what proves nothing.
/// `listener_accepted`: the CLI's loopback listener accepted a connection (the runner passes
/// `false`: it cannot see the listener).
pub fn verdict(outside: ProbeOutcome, loopback: ProbeOutcome, listener_accepted: bool) -> Result<(), String> {
    verdict_as("the offline account", outside, loopback, listener_accepted)
}

/// The proxied account's fence (`network = allow`): the outside and other-loopback connects as
/// for the offline account, and the connect to the proxy's port must not be blocked (the
/// command's only way out must be there). `proxy`: that connect's outcome (`None`: the runner
/// did not report one, which proves nothing).
pub fn proxied_verdict(
    outside: ProbeOutcome,
    loopback: ProbeOutcome,
    proxy: Option<ProbeOutcome>,
    listener_accepted: bool,
) -> Result<(), String> {
    verdict_as("the proxied account", outside, loopback, listener_accepted)?;
    match proxy {
        Some(ProbeOutcome::Open) => Ok(()),
        Some(ProbeOutcome::Blocked) => Err(
            "the connect to Palisade's proxy port as the proxied account was blocked: setup's permit for that port is missing"
                .into(),
        ),
        Some(other) => Err(format!("the proxy port is not proven reachable: its connect {}", describe(other))),
        None => Err("the runner reported no connect to the proxy port".into()),
    }
}

fn verdict_as(
    account: &str,
    outside: ProbeOutcome,
    loopback: ProbeOutcome,
    listener_accepted: bool,
) -> Result<(), String> {
    let outside_name = OUTSIDE_NAMES;
    if outside == ProbeOutcome::Open {
        return Err(format!("a connect to {outside_name} as {account} was not blocked"));
    }
    if loopback == ProbeOutcome::Open || listener_accepted {
        return Err(format!("a connect to a loopback port that is not a proxy port, as {account}, was not blocked"));
    }
    match (outside, loopback) {
        (ProbeOutcome::Blocked | ProbeOutcome::NoRoute, ProbeOutcome::Blocked) => Ok(()),
        (ProbeOutcome::Blocked | ProbeOutcome::NoRoute, other) => {
            Err(format!("the network fence is not proven: the loopback connect {}", describe(other)))
        }
        (other, _) => {
            Err(format!("the network fence is not proven: the connect to {outside_name} {}", describe(other)))
        }
    }
}

/// The message of the runner's refusal and of the CLI's (exit 125), with the fix.
pub fn refusal(why: &str) -> String {
    format!("{why}; the offline account's network fence is not in force, so the command was not started")
}

/// [`refusal`] for the proxied account (`network = allow`).
pub fn proxied_refusal(why: &str) -> String {
    format!("{why}; the proxied account's network fence is not in force, so the command was not started")
}

/// The fix `palisade run` names with a refusal.
pub const FIX: &str = "run `palisade check --probe` to see the fence's state, then `palisade setup --elevated` again (as an administrator); Group Policy may override local firewall rules";

/// The probe as `palisade check --probe` reports it. `report`: the runner's report, if it sent
/// one; `failure`: why the probe could not run (or the runner's error).
pub fn for_check(
    report: Option<(ProbeOutcome, ProbeOutcome)>,
    listener_accepted: bool,
    failure: Option<String>,
) -> FenceProbe {
    let Some((outside, loopback)) = report else {
        let why = failure.unwrap_or_else(|| "the runner sent no probe report".into());
        return FenceProbe {
            outside_reached: false,
            loopback_reached: listener_accepted,
            proxy_reached: None,
            unproven: Some(format!("the probe could not run: {why}")),
        };
    };
    let outside_reached = outside == ProbeOutcome::Open;
    let loopback_reached = loopback == ProbeOutcome::Open || listener_accepted;
    let unproven = match verdict(outside, loopback, listener_accepted) {
        // Commands may run (nothing can get out now), but the outside half is not proven.
        Ok(()) if outside == ProbeOutcome::NoRoute => Some(
            "loopback connects are blocked, but this machine had no route to the outside, so that half is not proven"
                .into(),
        ),
        Ok(()) => None,
        Err(_) if outside_reached || loopback_reached => None,
        Err(why) => Some(why),
    };
    FenceProbe { outside_reached, loopback_reached, proxy_reached: None, unproven }
}

/// [`for_check`] for the proxied account: `report` carries the proxy port's connect too.
pub fn for_check_proxied(
    report: Option<(ProbeOutcome, ProbeOutcome, Option<ProbeOutcome>)>,
    listener_accepted: bool,
    failure: Option<String>,
) -> FenceProbe {
    let Some((outside, loopback, proxy)) = report else {
        return for_check(None, listener_accepted, failure);
    };
    let outside_reached = outside == ProbeOutcome::Open;
    let loopback_reached = loopback == ProbeOutcome::Open || listener_accepted;
    let proxy_reached = proxy.map(|p| p == ProbeOutcome::Open);
    let unproven = match proxied_verdict(outside, loopback, proxy, listener_accepted) {
        Ok(()) => None,
        // Said by the fields: what got out, or the proxy port not reached.
        Err(_) if outside_reached || loopback_reached || proxy_reached == Some(false) => None,
        Err(why) => Some(why),
    };
    FenceProbe { outside_reached, loopback_reached, proxy_reached, unproven }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProbeOutcome::*;

    #[test]
    fn connects_are_classified() {
        assert_eq!(classify(ConnectResult::Error(10013)), Blocked);
        assert_eq!(classify(ConnectResult::Error(10035)), Open);
        assert_eq!(classify(ConnectResult::Pending), Open);
        assert_eq!(classify(ConnectResult::Connected), Open);
        assert_eq!(classify(ConnectResult::Error(10061)), Open);
        assert_eq!(classify(ConnectResult::Error(10051)), NoRoute);
        assert_eq!(classify(ConnectResult::Error(10065)), NoRoute);
        assert_eq!(classify(ConnectResult::Error(10055)), Failed(10055));
        assert_eq!(classify(ConnectResult::Error(0)), Failed(0));
    }

    #[test]
    fn both_families_must_be_stopped_and_a_missing_one_does_not_count() {
        // A machine without IPv6: the IPv4 connect decides.
        for v4 in [Blocked, Open, NoRoute, Failed(1)] {
            assert_eq!(combine(v4, NoRoute), v4);
            assert_eq!(classify(ConnectResult::Error(10049)), NoRoute);
            assert_eq!(classify(ConnectResult::Error(10047)), NoRoute);
        }
        // IPv6 open or unproven wins over a blocked IPv4, whichever way round.
        assert_eq!(combine(Blocked, Open), Open);
        assert_eq!(combine(Open, Blocked), Open);
        assert_eq!(combine(Blocked, Failed(7)), Failed(7));
        assert_eq!(combine(Failed(7), Open), Open);
        assert_eq!(combine(NoRoute, Blocked), Blocked);
        assert_eq!(combine(Blocked, Blocked), Blocked);
        // So an IPv6 hole refuses the command.
        assert!(verdict(combine(Blocked, Open), Blocked, false).unwrap_err().contains("[2001:db8::1]:9"));
        assert!(verdict(Blocked, combine(Blocked, Open), false).unwrap_err().contains("loopback"));
        assert_eq!(verdict(combine(Blocked, NoRoute), combine(Blocked, NoRoute), false), Ok(()));
    }

    #[test]
    fn only_blocked_connects_prove_the_fence() {
        assert_eq!(verdict(Blocked, Blocked, false), Ok(()));
        // No route outside: nothing got out; the loopback connect still has to be blocked.
        assert_eq!(verdict(NoRoute, Blocked, false), Ok(()));
        let open = [
            (Open, Blocked, false),
            (Blocked, Open, false),
            (NoRoute, Open, false),
            (Blocked, Blocked, true),
            (Open, Open, true),
            (Failed(1), Open, false),
        ];
        for (o, l, a) in open {
            let e = verdict(o, l, a).unwrap_err();
            assert!(e.contains("was not blocked") && !e.contains('\n'), "{o:?} {l:?} {a}: {e}");
        }
        for (o, l) in [(Failed(10055), Blocked), (Blocked, Failed(10055)), (Blocked, NoRoute), (NoRoute, NoRoute)] {
            let e = verdict(o, l, false).unwrap_err();
            assert!(e.contains("not proven"), "{o:?} {l:?}: {e}");
        }
        assert!(refusal("x").starts_with("x; ") && FIX.contains("palisade check --probe"));
    }

    #[test]
    fn the_proxied_fence_needs_the_proxy_reachable_and_the_rest_blocked() {
        assert_eq!(proxied_verdict(Blocked, Blocked, Some(Open), false), Ok(()));
        assert_eq!(proxied_verdict(NoRoute, Blocked, Some(Open), false), Ok(()));
        // What gets out is named first, whatever the proxy connect did.
        for (o, l, a) in [(Open, Blocked, false), (Blocked, Open, false), (Blocked, Blocked, true)] {
            let e = proxied_verdict(o, l, Some(Open), a).unwrap_err();
            assert!(
                e.contains("as the proxied account, was not blocked")
                    || e.contains("as the proxied account was not blocked"),
                "{e}"
            );
        }
        let e = proxied_verdict(Blocked, Blocked, Some(Blocked), false).unwrap_err();
        assert!(e.contains("proxy port") && e.contains("blocked") && !e.contains('\n'), "{e}");
        let e = proxied_verdict(Blocked, Blocked, Some(Failed(10055)), false).unwrap_err();
        assert!(e.contains("not proven reachable") && e.contains("10055"), "{e}");
        assert!(proxied_verdict(Blocked, Blocked, Some(NoRoute), false).is_err());
        assert!(proxied_verdict(Blocked, Blocked, None, false).unwrap_err().contains("no connect to the proxy port"));
        assert!(proxied_refusal("x").contains("proxied account's network fence"));
        // The offline wording is unchanged.
        assert!(verdict(Open, Blocked, false).unwrap_err().contains("as the offline account"));
    }

    #[test]
    fn the_proxied_check_sees_the_proxy_port_too() {
        let p = for_check_proxied(Some((Blocked, Blocked, Some(Open))), false, None);
        assert_eq!(
            p,
            FenceProbe { outside_reached: false, loopback_reached: false, proxy_reached: Some(true), unproven: None }
        );
        let p = for_check_proxied(Some((Blocked, Blocked, Some(Blocked))), false, None);
        assert_eq!((p.proxy_reached, p.unproven), (Some(false), None));
        let p = for_check_proxied(Some((Open, Blocked, Some(Open))), false, None);
        assert!(p.outside_reached && p.unproven.is_none());
        let p = for_check_proxied(Some((Blocked, Blocked, None)), false, None);
        assert!(p.unproven.unwrap().contains("no connect to the proxy port"));
        let p = for_check_proxied(None, false, Some("the runner could not start".into()));
        assert!(p.unproven.unwrap().contains("the runner could not start"));
    }

    #[test]
    fn the_check_sees_proven_open_and_unknown() {
        let p = for_check(Some((Blocked, Blocked)), false, None);
        assert_eq!(
            p,
            FenceProbe { outside_reached: false, loopback_reached: false, proxy_reached: None, unproven: None }
        );
        let p = for_check(Some((Open, Blocked)), false, None);
        assert!(p.outside_reached && !p.loopback_reached && p.unproven.is_none());
        let p = for_check(Some((NoRoute, Blocked)), true, None);
        assert!(p.loopback_reached && !p.outside_reached);
        let p = for_check(Some((NoRoute, Blocked)), false, None);
        assert!(!p.loopback_reached && !p.outside_reached && p.unproven.unwrap().contains("no route"));
        let p = for_check(Some((Blocked, Failed(5))), false, None);
        assert!(!p.outside_reached && !p.loopback_reached && p.unproven.unwrap().contains("Winsock error 5"));
        let p = for_check(None, false, Some("the runner could not start".into()));
        assert!(p.unproven.unwrap().contains("the runner could not start"));
    }
}
