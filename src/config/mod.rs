//! Configuration: the raw key tree (from SSM parameters or a TOML file) and its validation,
//! once, into a typed `Config`. Every problem is listed at once; nothing past this module
//! sees raw strings. Tokens are `Secret`s that never print.
//!
//! Each section's keys are one table (`forge::FORGE_KEYS`, `pool::POOL_KEYS`,
//! `settings::SETTINGS_KEYS`) whose entries hold a key's name, where it applies, its
//! documented default, its doc line and its parser: adding a key is adding one entry.

mod forge;
mod keys;
mod partial;
mod pool;
mod raw;
mod settings;

pub use forge::{
    ForgeConfig, ForgeKind, Scope, DEFAULT_MAX_RESPONSE_BYTES, FORGE_KEYS, MIN_RESPONSE_BYTES, SECRET_KEYS,
};
pub use keys::{Applies, Key};
pub use pool::{DronePlatform, FleetSpec, IdleTimeout, PoolConfig, DEFAULT_IDLE_TIMEOUT, POOL_KEYS};
pub use raw::{is_secret_param, RawConfig};
pub use settings::{Settings, SETTINGS_KEYS};

use std::collections::BTreeMap;
use std::fmt;

/// A secret (a token, a webhook secret). Its `Debug` never shows the value, and it has no
/// `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for building an auth header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One thing wrong with the configuration, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem in a configuration, listed at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem(s)): ", self.problems.len())?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub forges: BTreeMap<String, ForgeConfig>,
    /// Sorted by name: a job two pools could serve counts for the first.
    pub pools: Vec<PoolConfig>,
    pub settings: Settings,
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

impl Config {
    /// Validates a raw tree, listing every problem at once.
    pub fn validate(raw: &RawConfig) -> Result<Config, ConfigError> {
        let mut problems = raw.read_problems.clone();
        let mut forges = BTreeMap::new();
        for (name, keys) in &raw.forges {
            if let Some(f) = forge::validate_forge(name, keys, &mut problems) {
                forges.insert(name.clone(), f);
            }
        }
        let mut pools = Vec::new();
        for (name, keys) in &raw.pools {
            if let Some(p) = pool::validate_pool(name, keys, raw, &mut problems) {
                pools.push(p);
            }
        }
        if raw.pools.is_empty() {
            problems.push(Problem::new("pools", "no pool configured: add pools/<name>/forge and pools/<name>/asg"));
        }
        let settings = settings::validate_settings(&raw.settings, &mut problems);
        if problems.is_empty() {
            Ok(Config { forges, pools, settings })
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Reads and validates a TOML file's text.
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::validate(&RawConfig::from_toml(text, env)?)
    }

    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fixtures the config tests share.

    pub const GOOD: &str = r#"
[forges.wp]
kind = "woodpecker"
url = "https://ci.example.com"
token = "s3cr3t-token"

[pools.linux]
forge = "wp"
asg = "ci-linux"
labels = ["platform=linux/amd64", "gpu=false"]
slots = 2
spare = 1
max_step = 3
scale_out_cooldown = "30s"

[settings]
poll_interval = "5s"
"#;

    pub fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A valid `[forges.f]` table of this kind.
    pub fn forge_table(kind: &str) -> String {
        let extra = match kind {
            "github" => "repos = \"acme/app\"\n",
            "gitlab" => "projects = \"42\"\n",
            "generic" => "pending_pointer = \"/queued\"\n",
            _ => "",
        };
        format!("[forges.f]\nkind = \"{kind}\"\nurl = \"https://ci.example.com\"\ntoken = \"t\"\n{extra}")
    }

    /// A forge `f` of this kind and a pool `p` on it (ASG `ci-p`) with these extra lines.
    pub fn one_pool(kind: &str, pool_lines: &str) -> Result<super::Config, super::ConfigError> {
        let text = format!("{}\n[pools.p]\nforge = \"f\"\nasg = \"ci-p\"\n{pool_lines}\n", forge_table(kind));
        super::Config::from_toml(&text, no_env)
    }

    /// Each problem as printed (`key: message`); empty when the configuration is valid.
    pub fn problems(result: Result<super::Config, super::ConfigError>) -> Vec<String> {
        result.err().map(|e| e.problems.iter().map(ToString::to_string).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_support::{no_env, GOOD};
    use std::time::Duration;

    #[test]
    fn a_good_file_validates_with_defaults() {
        let c = Config::from_toml(GOOD, no_env).unwrap();
        let pool = c.pool("linux").unwrap();
        assert_eq!(pool.policy.slots, 2);
        assert_eq!(pool.policy.spare, 1);
        assert_eq!(pool.policy.max_step, Some(3));
        assert_eq!(pool.policy.scale_out_cooldown, Duration::from_secs(30));
        assert_eq!(pool.labels.as_deref(), Some(&["platform=linux/amd64".to_string(), "gpu=false".to_string()][..]));
        assert_eq!(pool.idle_timeout, IdleTimeout::Fixed(Duration::from_secs(600)));
        assert_eq!(pool.boot_timeout, Duration::from_secs(600));
        assert_eq!(pool.asg(), Some("ci-linux"));
        assert_eq!(c.settings.poll_interval, Duration::from_secs(5));
        assert_eq!(c.settings.loop_budget, Duration::from_secs(50));
        assert_eq!(c.forges["wp"].scope, Scope::Admin);
    }

    #[test]
    fn token_never_prints() {
        let c = Config::from_toml(GOOD, no_env).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t-token"), "{debug}");
        assert!(debug.contains("Secret(***)"));
    }

    #[test]
    fn token_env_is_resolved() {
        let text = GOOD.replace("token = \"s3cr3t-token\"", "token_env = \"WP_TOKEN\"");
        let c = Config::from_toml(&text, |v| (v == "WP_TOKEN").then(|| "from-env".to_string())).unwrap();
        assert_eq!(c.forges["wp"].token.as_ref().unwrap().expose(), "from-env");
        let err = Config::from_toml(&text, no_env).unwrap_err();
        assert!(err.to_string().contains("forges/wp/token_env: environment variable WP_TOKEN is not set"), "{err}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let text = r#"
[forges.wp]
kind = "jenkins"
[forges.fj]
kind = "forgejo"
url = "https://code.example.com"
[pools.a]
forge = "nope"
asg = "g"
slots = 0
idle_timeout = "ten minutes"
colour = "blue"
"#;
        let err = Config::from_toml(text, no_env).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"forges/wp/kind"), "{err}");
        assert!(keys.contains(&"forges/fj/token"), "{err}");
        assert!(keys.contains(&"pools/a/forge"), "{err}");
        assert!(keys.contains(&"pools/a/slots"), "{err}");
        assert!(keys.contains(&"pools/a/idle_timeout"), "{err}");
        assert!(keys.contains(&"pools/a/colour"), "{err}");
        let line = err.to_string();
        assert!(!line.contains('\n'));
        assert!(line.contains("pools/a/slots: must be at least 1"));
        assert!(line.contains("pools/a/forge: names unknown forge \"nope\""));
    }

    #[test]
    fn ssm_params_build_the_same_tree() {
        let params = vec![
            ("/ci/forges/wp/kind".to_string(), "woodpecker".to_string()),
            ("/ci/forges/wp/url".to_string(), "https://ci.example.com".to_string()),
            ("/ci/forges/wp/token".to_string(), "t".to_string()),
            ("/ci/pools/linux/forge".to_string(), "wp".to_string()),
            ("/ci/pools/linux/asg".to_string(), "ci-linux".to_string()),
            ("/ci/settings/dry_run".to_string(), "true".to_string()),
        ];
        let raw = RawConfig::from_params("/ci/", params);
        let c = Config::validate(&raw).unwrap();
        assert!(c.settings.dry_run);
        assert_eq!(c.pools[0].forge, "wp");
        let round = RawConfig::from_params("/ci", raw.to_params().into_iter().map(|(k, v)| (format!("/ci/{k}"), v)));
        assert_eq!(round.forges, raw.forges);
    }

    #[test]
    fn misplaced_parameter_is_a_problem() {
        let raw = RawConfig::from_params("/ci", vec![("/ci/pools/linux".to_string(), "x".to_string())]);
        let err = Config::validate(&raw).unwrap_err();
        assert!(err.problems.iter().any(|p| p.key == "/ci/pools/linux"), "{err}");
    }

    #[test]
    fn a_missing_token_env_is_reported_once() {
        let text = GOOD.replace("token = \"s3cr3t-token\"", "token_env = \"WP_TOKEN\"");
        let err = Config::from_toml(&text, no_env).unwrap_err();
        let about_the_token: Vec<&Problem> = err.problems.iter().filter(|p| p.key.contains("token")).collect();
        assert_eq!(about_the_token.len(), 1, "{err}");
        assert_eq!(about_the_token[0].key, "forges/wp/token_env");
    }

    #[test]
    fn a_forge_with_no_token_at_all_is_still_told_it_needs_one() {
        let text = GOOD.replace("token = \"s3cr3t-token\"\n", "");
        let err = Config::from_toml(&text, no_env).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(err.to_string().contains("forges/wp/token: missing: an API token is required"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_each_section_suggests_the_closest_known_key() {
        let text = GOOD
            .replace("token = ", "urll = \"x\"\ntoken = ")
            .replace("slots = 2", "slots = 2\nmax_instance = 4\ncolour = \"blue\"")
            .replace("poll_interval = \"5s\"", "poll_interval = \"5s\"\ntick_budgett = \"30s\"");
        let err = Config::from_toml(&text, no_env).unwrap_err();
        let line = err.to_string();
        assert!(line.contains("forges/wp/urll: unknown key (did you mean `url`?)"), "{line}");
        assert!(line.contains("pools/linux/max_instance: unknown key (did you mean `max_instances`?)"), "{line}");
        assert!(line.contains("pools/linux/colour: unknown key;"), "{line}");
        assert!(line.contains("settings/tick_budgett: unknown key (did you mean `tick_budget`?)"), "{line}");
        assert_eq!(err.problems.len(), 4, "{line}");
    }

    #[test]
    fn a_toml_syntax_error_in_a_config_file_names_line_and_column() {
        let text = GOOD.replace("slots = 2", "slots = = 2");
        let err = Config::from_toml(&text, no_env).unwrap_err();
        let line_of_slots = GOOD.lines().position(|l| l.starts_with("slots")).unwrap() + 1;
        assert!(err.to_string().contains(&format!("line {line_of_slots}, column 9: ")), "{err}");
    }

    #[test]
    fn every_key_of_every_section_is_in_the_readme_ssm_key_table() {
        let readme = include_str!("../../README.md");
        let start = readme.find("### SSM keys").expect("README has an SSM keys section");
        let section = &readme[start..];
        let section = &section[..section[4..].find("\n### ").map_or(section.len(), |end| end + 4)];
        let names = FORGE_KEYS
            .iter()
            .map(|k| format!("forges/<forge>/{}", k.name))
            .chain(POOL_KEYS.iter().map(|k| format!("pools/<pool>/{}", k.name)))
            .chain(SETTINGS_KEYS.iter().map(|k| format!("settings/{}", k.name)));
        let missing: Vec<String> = names
            .filter(|n| {
                let key = n.rsplit('/').next().unwrap();
                let base = &n[..n.len() - key.len()];
                !section.lines().any(|l| {
                    l.contains(base) && l.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == key)
                })
            })
            .collect();
        assert!(missing.is_empty(), "keys the README's SSM table does not list: {missing:?}");
    }
}
