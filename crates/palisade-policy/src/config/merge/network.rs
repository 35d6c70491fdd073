//! The network setting through the layers, in one place. Its mode goes off < allow < on, and in
//! `allow` mode its allowlist has allow and deny entries.
//!
//! - The user file and the command line set the mode; `allow` entries of the user file are the
//!   list, the command line's `--allow-net` entries are added to it (the user's own layers may
//!   loosen each other, as for every other setting).
//! - The project file may only narrow: a mode no more open than the one below it, allow entries
//!   each covered by the list below it (when the mode below is `allow`), and deny entries.
//!   The command line may not undo that: no more open mode, no entry outside the project's list.
//! - Deny entries from every layer add up; deny wins over allow.
//! - The managed file bounds it: `allow_network = false` allows only `off`; a `[network] allow`
//!   list is the most any allowlist may admit (every effective allow entry must be covered by
//!   one of its entries, and `on` is refused); its `deny` entries are always in force. What a
//!   layer asked for beyond that is refused naming that layer's line; only the built-in default
//!   is ever clamped.

use super::{at_source, blame, forbidden_by_admin, project_says, val, Val};
use crate::config::parse::{At, List, ManagedSettings, TIGHTEN_ONLY};
use crate::config::{ConfigError, Layer, Source};
use crate::net_rules::{Allowlist, Entry};
use crate::Network;

pub(super) struct NetworkLayers {
    /// The mode (for `allow`, the entries are kept apart below and joined by `finish`).
    pub(super) value: Val<Network>,
    allow: Vec<Val<Entry>>,
    deny: Vec<Val<Entry>>,
    /// Where the project file narrowed the network, how open it left it, and (in `allow` mode)
    /// its list, which the command line may not go beyond.
    project: Option<(Source, u8, Option<Vec<Entry>>)>,
}

/// Whether `upper`'s allow entries admit everything `entry` admits.
fn covered(upper: &[Entry], entry: &Entry) -> bool {
    let upper = Allowlist { allow: upper.to_vec(), deny: Vec::new() };
    upper.narrow(&Allowlist { allow: vec![entry.clone()], deny: Vec::new() }).dropped.is_empty()
}

fn entries(list: &Option<List<Entry>>, layer: &Layer) -> Vec<Val<Entry>> {
    list.iter().flat_map(|l| l.items.iter().map(|i| val(i.v.clone(), at_source(layer, i.line)))).collect()
}

/// The mode a file asks for: its `mode`, or `allow` when it lists allow entries without one.
fn asked(mode: &Option<At<Network>>, allow: &Option<List<Entry>>) -> Option<At<Network>> {
    match (mode, allow) {
        (Some(m), _) => Some(m.clone()),
        (None, Some(l)) => Some(At { v: Network::Allow(Allowlist::default()), line: l.line }),
        (None, None) => None,
    }
}

impl NetworkLayers {
    pub(super) fn new(default: &Network) -> NetworkLayers {
        let d = Source::default_layer;
        let (allow, deny) = match default.allowlist() {
            Some(a) => (
                a.allow.iter().map(|e| val(e.clone(), d())).collect(),
                a.deny.iter().map(|e| val(e.clone(), d())).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        NetworkLayers { value: val(default.clone(), d()), allow, deny, project: None }
    }

    pub(super) fn user(
        &mut self,
        mode: &Option<At<Network>>,
        allow: &Option<List<Entry>>,
        deny: &Option<List<Entry>>,
        layer: &Layer,
    ) {
        if let Some(n) = asked(mode, allow) {
            self.value = val(n.v, at_source(layer, n.line));
        }
        if allow.is_some() {
            self.allow = entries(allow, layer);
        }
        self.deny.extend(entries(deny, layer));
    }

    pub(super) fn project(
        &mut self,
        mode: &Option<At<Network>>,
        allow: &Option<List<Entry>>,
        deny: &Option<List<Entry>>,
        layer: &Layer,
    ) -> Result<(), ConfigError> {
        self.deny.extend(entries(deny, layer));
        let Some(n) = asked(mode, allow) else { return Ok(()) };
        let src = at_source(layer, n.line);
        if n.v.openness() > self.value.v.openness() {
            let why = format!("{TIGHTEN_ONLY}; network = \"{}\" would loosen it", n.v);
            return Err(blame(&src, "network", why));
        }
        if matches!(n.v, Network::Allow(_)) {
            if let Some(list) = allow {
                if matches!(self.value.v, Network::Allow(_)) {
                    let below: Vec<Entry> = self.allow.iter().map(|v| v.v.clone()).collect();
                    if let Some(e) = list.items.iter().find(|e| !covered(&below, &e.v)) {
                        let why = format!("{TIGHTEN_ONLY}; \"{}\" is not in the allowlist below it", e.v);
                        return Err(blame(&at_source(layer, e.line), "network.allow", why));
                    }
                }
                self.allow = entries(allow, layer);
            }
        }
        let list = matches!(n.v, Network::Allow(_)).then(|| self.allow.iter().map(|v| v.v.clone()).collect());
        self.project = Some((src.clone(), n.v.openness(), list));
        self.value = val(n.v, src);
        Ok(())
    }

    pub(super) fn command_line(&mut self, n: &Option<Network>, allow_net: &[Entry]) -> Result<(), ConfigError> {
        let asked = match (n, allow_net.is_empty()) {
            (Some(n), _) => Some(n.clone()),
            (None, false) => Some(Network::Allow(Allowlist::default())),
            (None, true) => None,
        };
        let Some(n) = asked else { return Ok(()) };
        if let Some((src, openness, list)) = &self.project {
            if n.openness() > *openness {
                let said = if *openness == 0 { "network = \"off\"" } else { "network = \"allow\"" };
                return Err(ConfigError::CommandLine { flag: "--network".into(), message: project_says(src, said) });
            }
            if let Some(e) = list.as_ref().and_then(|l| allow_net.iter().find(|e| !covered(l, e))) {
                let message = project_says(src, &format!("an allowlist without \"{e}\""));
                return Err(ConfigError::CommandLine { flag: "--allow-net".into(), message });
            }
        }
        for e in allow_net {
            if !self.allow.iter().any(|v| &v.v == e) {
                self.allow.push(val(e.clone(), Source::command_line()));
            }
        }
        self.value = val(n, Source::command_line());
        Ok(())
    }

    pub(super) fn managed(&mut self, m: &ManagedSettings, layer: &Layer) -> Result<(), ConfigError> {
        if let Some(b) = m.allow_network.as_ref().filter(|b| !b.v) {
            if !self.value.v.is_off() {
                if self.value.src.layer == Layer::Default {
                    self.value = val(Network::Off, at_source(layer, b.line));
                } else {
                    return Err(blame(
                        &self.value.src,
                        "network",
                        format!(
                            "\"{}\" is {}",
                            self.value.v,
                            forbidden_by_admin(layer, b.line, "allow_network = false".into())
                        ),
                    ));
                }
            }
        }
        if let Some(max) = &m.net_allow {
            let limit: Vec<Entry> = max.items.iter().map(|i| i.v.clone()).collect();
            let what = || format!("only what network.allow lists (line {})", max.line);
            match &self.value.v {
                Network::On if self.value.src.layer == Layer::Default => {
                    self.value = val(Network::Allow(Allowlist::default()), at_source(layer, max.line));
                    self.allow.clear();
                }
                Network::On => {
                    let why = format!("\"on\" is {}", forbidden_by_admin(layer, max.line, what()));
                    return Err(blame(&self.value.src, "network", why));
                }
                Network::Allow(_) => {
                    if let Some(e) = self.allow.iter().find(|e| !covered(&limit, &e.v)) {
                        let why = format!("\"{}\" is {}", e.v, forbidden_by_admin(layer, max.line, what()));
                        return Err(blame(&e.src, "network.allow", why));
                    }
                }
                _ => {}
            }
        }
        self.deny.extend(entries(&m.net_deny, layer));
        Ok(())
    }

    /// The effective setting, and the sources of its entries (`network.allow[i]`,
    /// `network.deny[i]`; only in `allow` mode, where they apply).
    pub(super) fn finish(self, sources: &mut Vec<(String, Source)>) -> Network {
        sources.push(("network".to_string(), self.value.src.clone()));
        if !matches!(self.value.v, Network::Allow(_)) {
            return self.value.v;
        }
        let mut list = Allowlist::default();
        for (key, from, to) in
            [("network.allow", self.allow, &mut list.allow), ("network.deny", self.deny, &mut list.deny)]
        {
            for v in from {
                if !to.contains(&v.v) {
                    sources.push((format!("{key}[{}]", to.len()), v.src));
                    to.push(v.v);
                }
            }
        }
        Network::Allow(list)
    }
}
