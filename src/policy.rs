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

/// Tuning of one pool as the planner needs it. A field missing from JSON takes its value
/// from `Policy::default()`, the one source of these defaults (the config reads it too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Jobs one instance runs at once (>= 1).
    pub slots: u32,
    /// Extra instances while there is demand.
    pub spare: u32,
    /// Extra instances proportional to demand: `ceil(needed * spare_ratio)` (GitLab's
    /// `scale_factor`); finite and >= 0.
    pub spare_ratio: f64,
    /// Most extra instances `spare_ratio` adds (GitLab's `scale_factor_limit`).
    pub spare_max: Option<u32>,
    /// Cap below the group's MaxSize.
    pub max_instances: Option<u32>,
    /// Most instances added per tick.
    pub max_step: Option<u32>,
    #[serde(with = "humantime_serde")]
    pub scale_out_cooldown: Duration,
    /// A pending job this old, while ready slots of the pool stand idle, is unschedulable.
    #[serde(with = "humantime_serde")]
    pub unschedulable_after: Duration,
    /// How long a launched instance may take to serve (the watchdog's boot timeout): a job
    /// a scale-out was made for and still pending this long after it was not helped by it.
    #[serde(with = "humantime_serde")]
    pub boot_timeout: Duration,
    pub formula: Formula,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            slots: 1,
            spare: 0,
            spare_ratio: 0.0,
            spare_max: None,
            max_instances: None,
            max_step: None,
            scale_out_cooldown: Duration::ZERO,
            unschedulable_after: Duration::from_secs(30 * 60),
            boot_timeout: Duration::from_secs(10 * 60),
            formula: Formula::Default,
        }
    }
}

/// Durations as humantime strings ("90s", "10m") in JSON and TOML.
pub mod humantime_serde {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_without_the_spare_ratio_keys_parses_with_no_proportional_spare() {
        let p: Policy = serde_json::from_str(r#"{"slots":2,"spare":1,"scale_out_cooldown":"30s"}"#).unwrap();
        assert_eq!(p.spare_ratio, 0.0);
        assert_eq!(p.spare_max, None);
        assert_eq!(p.slots, 2);
        assert_eq!(p.unschedulable_after, Duration::from_secs(1800));
        assert_eq!(p.scale_out_cooldown, Duration::from_secs(30));
    }

    #[test]
    fn an_empty_policy_object_is_the_default_policy() {
        let p: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, Policy::default());
    }

    #[test]
    fn spare_ratio_and_spare_max_round_trip_through_json() {
        let p = Policy { spare_ratio: 0.25, spare_max: Some(4), ..Policy::default() };
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains(r#""spare_ratio":0.25"#), "{text}");
        assert!(text.contains(r#""spare_max":4"#), "{text}");
        assert_eq!(serde_json::from_str::<Policy>(&text).unwrap(), p);
    }

    #[test]
    fn a_bad_duration_names_the_value_and_the_expected_form() {
        let err = serde_json::from_str::<Policy>(r#"{"scale_out_cooldown":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid duration \"soon\""), "{err}");
    }
}
