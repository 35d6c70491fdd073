//! `palisade check`'s lines for the proxied account's fence (`network = allow`, see
//! `proxy_route`): its firewall rules and WFP filters as setup made them for the marker's proxy
//! ports. A broken fence here leaves offline commands offline; it makes `network = allow`
//! refuse (the runner's fence probe would find it open), so it is its own pair of lines.

use super::{list_problems, CheckInputs, CheckLine, CheckStatus, FactGroup};
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
    lines
}
