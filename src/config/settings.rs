//! The settings section (`settings/<key>`): the loop's timing and dry run, its key registry
//! and validation into `Settings`. Defaults live in `Settings::default()` only.

use super::keys::{Applies, Context, Key, Reader};
use super::Problem;
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings of the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub poll_interval: Duration,
    pub loop_budget: Duration,
    pub config_ttl: Duration,
    pub dry_run: bool,
    /// One tick's deadline for all pools, their pages and retries included.
    pub tick_budget: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: Duration::from_secs(10),
            loop_budget: Duration::from_secs(50),
            config_ttl: Duration::from_secs(60),
            dry_run: false,
            // The Lambda's timeout is 60 s: a tick started within `loop_budget` still ends in it.
            tick_budget: Duration::from_secs(40),
        }
    }
}

/// Every settings key.
pub const SETTINGS_KEYS: &[Key<Settings>] = &[
    Key {
        name: "poll_interval",
        applies: Applies::Always,
        default: "10s",
        doc: "time between ticks (> 0)",
        read: |r, s| s.poll_interval = r.positive_duration().unwrap_or(s.poll_interval),
    },
    Key {
        name: "loop_budget",
        applies: Applies::Always,
        default: "50s",
        doc: "how long one Lambda invocation keeps ticking (0s: one tick)",
        read: |r, s| s.loop_budget = r.duration().unwrap_or(s.loop_budget),
    },
    Key {
        name: "config_ttl",
        applies: Applies::Always,
        default: "60s",
        doc: "how long a loaded configuration is used before it is read again",
        read: |r, s| s.config_ttl = r.duration().unwrap_or(s.config_ttl),
    },
    Key {
        name: "dry_run",
        applies: Applies::Always,
        default: "false",
        doc: "plan and report, change nothing",
        read: |r, s| s.dry_run = r.bool().unwrap_or(s.dry_run),
    },
    Key {
        name: "tick_budget",
        applies: Applies::Always,
        default: "40s",
        doc: "one tick's deadline, all pools, pages and retries included (> 0; fits the 60 s Lambda timeout)",
        read: |r, s| s.tick_budget = r.positive_duration().unwrap_or(s.tick_budget),
    },
];

pub(crate) fn validate_settings(keys: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Settings {
    let mut r = Reader::new("settings", keys, problems);
    let mut settings = Settings::default();
    r.read_keys(SETTINGS_KEYS, &Context::default(), &mut settings);
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::defaults_that_disagree;

    fn settings(pairs: &[(&str, &str)]) -> (Settings, Vec<String>) {
        let keys: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut problems = Vec::new();
        let s = validate_settings(&keys, &mut problems);
        (s, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_documented_settings_default_is_what_a_missing_key_gets() {
        assert_eq!(defaults_that_disagree(SETTINGS_KEYS), Vec::<&str>::new());
    }

    #[test]
    fn tick_budget_defaults_to_40_seconds_inside_the_loop_budget() {
        let (s, problems) = settings(&[]);
        assert!(problems.is_empty());
        assert_eq!(s.tick_budget, Duration::from_secs(40));
        assert!(s.tick_budget < s.loop_budget);
    }

    #[test]
    fn tick_budget_is_read_as_a_duration() {
        let (s, problems) = settings(&[("tick_budget", "25s")]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.tick_budget, Duration::from_secs(25));
    }

    #[test]
    fn a_zero_or_unreadable_tick_budget_is_a_problem() {
        assert_eq!(settings(&[("tick_budget", "0s")]).1, ["settings/tick_budget: must be longer than 0s"]);
        let (_, problems) = settings(&[("tick_budget", "soon")]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("settings/tick_budget: \"soon\" is not a duration"), "{problems:?}");
    }

    #[test]
    fn a_zero_poll_interval_is_a_problem() {
        assert_eq!(settings(&[("poll_interval", "0s")]).1, ["settings/poll_interval: must be longer than 0s"]);
    }
}
