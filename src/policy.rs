//! Validated tuning of one pool, the planner's input besides the observation: slots,
//! spare, caps, step, cooldown, the unschedulable guard and the formula. Plain data.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which formula turns the queue into a target instance count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Formula {
    /// ceil((pending + running) / slots) + spare.
    #[default]
    Default,
    /// Vespene's stock formula:
    /// ceil((pending * queued_weight + running * running_weight) * multiplier + excess).
    Vespene { queued_weight: f64, running_weight: f64, multiplier: f64, excess: f64 },
}

impl Formula {
    pub fn vespene_defaults() -> Self {
        Formula::Vespene { queued_weight: 1.0, running_weight: 1.0, multiplier: 1.0, excess: 0.0 }
    }
}

/// Tuning of one pool as the planner needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Jobs one instance runs at once (>= 1).
    #[serde(default = "one")]
    pub slots: u32,
    /// Extra instances while there is demand.
    #[serde(default)]
    pub spare: u32,
    /// Cap below the group's MaxSize.
    #[serde(default)]
    pub max_instances: Option<u32>,
    /// Most instances added per tick.
    #[serde(default)]
    pub max_step: Option<u32>,
    #[serde(default, with = "humantime_serde_opt")]
    pub scale_out_cooldown: Duration,
    /// A pending job this old, while ready slots of the pool stand idle, is unschedulable.
    #[serde(default = "default_unschedulable_after", with = "humantime_serde_opt")]
    pub unschedulable_after: Duration,
    /// How long a launched instance may take to serve (the watchdog's boot timeout): a job
    /// a scale-out was made for and still pending this long after it was not helped by it.
    #[serde(default = "default_boot_timeout", with = "humantime_serde_opt")]
    pub boot_timeout: Duration,
    #[serde(default)]
    pub formula: Formula,
}

fn one() -> u32 {
    1
}

pub fn default_unschedulable_after() -> Duration {
    Duration::from_secs(30 * 60)
}

pub fn default_boot_timeout() -> Duration {
    Duration::from_secs(10 * 60)
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            slots: 1,
            spare: 0,
            max_instances: None,
            max_step: None,
            scale_out_cooldown: Duration::ZERO,
            unschedulable_after: default_unschedulable_after(),
            boot_timeout: default_boot_timeout(),
            formula: Formula::Default,
        }
    }
}

/// Durations as humantime strings ("90s", "10m") in JSON and TOML.
pub mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {text:?}: {e} (write e.g. \"90s\" or \"10m\")"))
        })
    }
}
