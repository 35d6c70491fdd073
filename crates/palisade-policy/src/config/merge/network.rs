//! The network setting through the layers, in one place: the user file and the command line
//! set it, the project file may only turn it off (and the command line may not turn that back
//! on), and the managed file bounds it (refusing what a layer asked for, clamping only the
//! built-in default).

use super::{at_source, blame, forbidden_by_admin, project_says, val, Val};
use crate::config::parse::{At, ManagedSettings, TIGHTEN_ONLY};
use crate::config::{ConfigError, Layer, Source};
use crate::Network;

pub(super) struct NetworkLayers {
    pub(super) value: Val<Network>,
    /// Where the project file turned the network off.
    project_off: Option<Source>,
}

impl NetworkLayers {
    pub(super) fn new(default: &Network) -> NetworkLayers {
        NetworkLayers { value: val(default.clone(), Source::default_layer()), project_off: None }
    }

    pub(super) fn user(&mut self, n: &At<Network>, layer: &Layer) {
        self.value = val(n.v.clone(), at_source(layer, n.line));
    }

    pub(super) fn project(&mut self, n: &At<Network>, layer: &Layer) -> Result<(), ConfigError> {
        let src = at_source(layer, n.line);
        if !n.v.is_off() {
            return Err(blame(&src, "network", format!("{TIGHTEN_ONLY}; network = \"{}\" would loosen it", n.v)));
        }
        self.value = val(n.v.clone(), src.clone());
        self.project_off = Some(src);
        Ok(())
    }

    pub(super) fn command_line(&mut self, n: &Network) -> Result<(), ConfigError> {
        if let (false, Some(src)) = (n.is_off(), &self.project_off) {
            return Err(ConfigError::CommandLine { flag: "--network".into(), message: project_says(src, "network = \"off\"") });
        }
        self.value = val(n.clone(), Source::command_line());
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
                        format!("\"{}\" is {}", self.value.v, forbidden_by_admin(layer, b.line, "allow_network = false".into())),
                    ));
                }
            }
        }
        Ok(())
    }
}
