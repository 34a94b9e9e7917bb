//! Validating what can be validated: every forge and pool that is valid on its own, beside the
//! list of every problem, so `forge-scaler doctor` can still check the healthy pieces of a
//! configuration with broken ones.

use super::forge::validate_forge;
use super::pool::validate_pool;
use super::settings::validate_settings;
use super::{Config, Problem, RawConfig};
use std::collections::BTreeMap;

impl Config {
    /// Every forge and pool with no problem of its own, and every problem (as
    /// [`Config::validate`] lists them). A pool whose own keys are valid is kept even when its
    /// forge is not (its group can still be checked); `settings` falls back to defaults for
    /// keys with problems. When the problem list is empty the config equals `validate`'s.
    pub fn validate_partial(raw: &RawConfig) -> (Config, Vec<Problem>) {
        let mut problems = raw.read_problems.clone();
        let read_problem_under = |base: &str| raw.read_problems.iter().any(|p| p.key.starts_with(base));
        let mut forges = BTreeMap::new();
        for (name, keys) in &raw.forges {
            let before = problems.len();
            let forge = validate_forge(name, keys, &mut problems);
            if let Some(forge) = forge.filter(|_| problems.len() == before) {
                if !read_problem_under(&format!("forges/{name}/")) {
                    forges.insert(name.clone(), forge);
                }
            }
        }
        let mut pools = Vec::new();
        for (name, keys) in &raw.pools {
            let before = problems.len();
            let pool = validate_pool(name, keys, raw, &mut problems);
            if let Some(pool) = pool.filter(|_| problems.len() == before) {
                if !read_problem_under(&format!("pools/{name}/")) {
                    pools.push(pool);
                }
            }
        }
        if raw.pools.is_empty() {
            problems.push(Problem::new("pools", "no pool configured: add pools/<name>/forge and pools/<name>/asg"));
        }
        let settings = validate_settings(&raw.settings, &mut problems);
        (Config { forges, pools, settings }, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const MIXED: &str = r#"
[forges.good]
kind = "woodpecker"
url = "https://ci.example.com"
token = "t"
[forges.broken]
kind = "forgejo"
url = "https://code.example.com"
[pools.healthy]
forge = "good"
asg = "ci-healthy"
[pools.on_broken_forge]
forge = "broken"
asg = "ci-on-broken"
[pools.bad_slots]
forge = "good"
asg = "ci-bad"
slots = 0
"#;

    #[test]
    fn a_broken_forge_and_a_broken_pool_hide_neither_the_healthy_forge_nor_the_other_pools() {
        let raw = RawConfig::from_toml(MIXED, no_env).unwrap();
        let (config, problems) = Config::validate_partial(&raw);
        assert_eq!(config.forges.keys().collect::<Vec<_>>(), vec!["good"]);
        let pools: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pools, vec!["healthy", "on_broken_forge"]);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["forges/broken/token", "pools/bad_slots/slots"]);
    }

    #[test]
    fn a_valid_configuration_validates_partially_to_the_same_config_with_no_problem() {
        let text =
            MIXED.replace("url = \"https://code.example.com\"", "url = \"https://code.example.com\"\ntoken = \"u\"");
        let text = text.replace("slots = 0", "slots = 2");
        let raw = RawConfig::from_toml(&text, no_env).unwrap();
        let (config, problems) = Config::validate_partial(&raw);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config, Config::validate(&raw).unwrap());
    }
}
