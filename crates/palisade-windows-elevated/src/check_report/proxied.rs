//! `palisade check`'s lines for the proxied account's fence (`network = allow`, see
//! `proxy_route`): its firewall rules and WFP filters as setup made them for the marker's proxy
//! ports. A broken fence here leaves offline commands offline; it makes `network = allow`
//! refuse (the runner's fence probe would find it open), so it is its own pair of lines.

use super::{list_problems, CheckInputs, CheckLine, CheckStatus, FactGroup, FenceProbe};
use crate::facts::{MachineFacts, SandboxUser, Sids};
use crate::firewall::{self, WfpObject};

pub(super) fn fence_lines(
    facts: &MachineFacts,
    inputs: &CheckInputs,
    sids: &Sids,
    accounts_unread: Option<&str>,
) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let mut add = |status, item: &str, detail: String| lines.push(CheckLine { status, item: item.to_string(), detail });
    let name = SandboxUser::Proxied.account_name();
    let (rules_item, wfp_item) = ("proxied firewall rules", "proxied WFP filters");
    let fence = match firewall::proxied_fence(&inputs.proxy_ports) {
        Ok(f) => f,
        Err(e) => {
            add(CheckStatus::Fail, rules_item, format!("the marker's proxy ports: {e}: run setup again"));
            return lines;
        }
    };
    let sid = match (accounts_unread, &sids.proxied) {
        (Some(why), _) => {
            add(CheckStatus::Unknown, rules_item, format!("unknown: {why}"));
            return lines;
        }
        (None, None) => {
            add(
                CheckStatus::Fail,
                rules_item,
                format!("{name} is missing: network = allow cannot run; run setup again"),
            );
            return lines;
        }
        (None, Some(sid)) => sid,
    };
    if let Some(why) = inputs.unread(FactGroup::FirewallRules) {
        add(CheckStatus::Unknown, rules_item, format!("unknown: {why}"));
    } else {
        let (mut missing, mut changed) = (Vec::new(), Vec::new());
        for r in &fence.rules {
            match facts.rule(&r.name) {
                None => missing.push(r.name.clone()),
                Some(x) if *x != r.render(sid) => changed.push(r.name.clone()),
                Some(_) => {}
            }
        }
        if missing.is_empty() && changed.is_empty() {
            let detail = format!("{} rules block traffic of {name} beyond loopback", fence.rules.len());
            add(CheckStatus::Ok, rules_item, detail);
        } else {
            add(CheckStatus::Fail, rules_item, list_problems(&missing, &changed));
        }
    }
    if let Some(why) = inputs.unread(FactGroup::Wfp) {
        add(CheckStatus::Unknown, wfp_item, format!("unknown: {why}"));
    } else {
        let expected: Vec<WfpObject> = fence.filters.iter().map(|x| x.render(sid)).collect();
        let (mut missing, mut changed) = (Vec::new(), Vec::new());
        for o in &expected {
            match facts.firewall.wfp.iter().find(|x| x.key() == o.key()) {
                None => missing.push(o.name().to_string()),
                Some(x) if x != o => changed.push(o.name().to_string()),
                Some(_) => {}
            }
        }
        if missing.is_empty() && changed.is_empty() {
            let ports: Vec<String> = inputs.proxy_ports.iter().map(u16::to_string).collect();
            let detail =
                format!("loopback TCP only to proxy port(s) {}, every other connect blocked", ports.join(", "));
            add(CheckStatus::Ok, wfp_item, detail);
        } else {
            add(CheckStatus::Fail, wfp_item, list_problems(&missing, &changed));
        }
    }
    if let Some(line) = probe_line(inputs.proxied_probe.as_ref()) {
        lines.push(line);
    }
    lines
}

/// The proxied account's fence probe (`palisade check --probe`), when it ran.
fn probe_line(probe: Option<&FenceProbe>) -> Option<CheckLine> {
    let item = "proxied network fence";
    let line = |status, detail: &str| CheckLine { status, item: item.into(), detail: detail.into() };
    let p = probe?;
    Some(if p.outside_reached {
        line(CheckStatus::Fail, "a connection as PalisadeProxied reached the outside")
    } else if p.loopback_reached {
        line(CheckStatus::Fail, "a connection as PalisadeProxied reached a loopback port that is not the proxy")
    } else if let Some(why) = &p.unproven {
        line(CheckStatus::Unknown, &format!("unknown: {why}"))
    } else if p.proxy_reached != Some(true) {
        line(CheckStatus::Fail, "the proxy port could not be reached: network = allow would refuse; run setup again")
    } else {
        line(CheckStatus::Ok, "proven: outside and other loopback connects blocked, the proxy port reachable")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(outside: bool, loopback: bool, proxy: Option<bool>, unproven: Option<&str>) -> FenceProbe {
        FenceProbe {
            outside_reached: outside,
            loopback_reached: loopback,
            proxy_reached: proxy,
            unproven: unproven.map(str::to_string),
        }
    }

    #[test]
    fn the_proxied_probe_line_says_what_got_through() {
        assert!(probe_line(None).is_none(), "no line without --probe");
        let status = |p: FenceProbe| probe_line(Some(&p)).unwrap().status;
        assert_eq!(status(probe(false, false, Some(true), None)), CheckStatus::Ok);
        assert_eq!(status(probe(true, false, Some(true), None)), CheckStatus::Fail);
        assert_eq!(status(probe(false, true, Some(true), None)), CheckStatus::Fail);
        assert_eq!(status(probe(false, false, Some(false), None)), CheckStatus::Fail);
        assert_eq!(status(probe(false, false, None, None)), CheckStatus::Fail);
        let l = probe_line(Some(&probe(false, false, None, Some("the probe could not run: x")))).unwrap();
        assert_eq!(l.status, CheckStatus::Unknown);
        assert!(l.detail.contains("could not run: x"), "{}", l.detail);
    }
}
