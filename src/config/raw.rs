//! The raw key tree, all strings, read from SSM parameters or a TOML file, and written back
//! as SSM parameters. Only the shape is checked here; values are judged by validation.

use super::forge::SECRET_KEYS;
use super::keys::suggestion;
use super::{ConfigError, Problem};
use std::collections::BTreeMap;

/// The raw tree: `forges/<name>/<key>`, `pools/<name>/<key>`, `settings/<key>`, all strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    pub forges: BTreeMap<String, BTreeMap<String, String>>,
    pub pools: BTreeMap<String, BTreeMap<String, String>>,
    pub settings: BTreeMap<String, String>,
    /// Problems found while reading the source (misplaced keys, bad TOML types).
    pub read_problems: Vec<Problem>,
}

impl RawConfig {
    /// Builds the tree from SSM parameters `(full name, value)` under `prefix`.
    pub fn from_params(prefix: &str, params: impl IntoIterator<Item = (String, String)>) -> Self {
        let prefix = prefix.trim_end_matches('/');
        let mut raw = RawConfig::default();
        for (name, value) in params {
            let rest = name.strip_prefix(prefix).unwrap_or(&name).trim_start_matches('/');
            let parts: Vec<&str> = rest.split('/').collect();
            match parts.as_slice() {
                ["forges", forge, key] if !forge.is_empty() => {
                    raw.forges.entry(forge.to_string()).or_default().insert(key.to_string(), value);
                }
                ["pools", pool, key] if !pool.is_empty() => {
                    raw.pools.entry(pool.to_string()).or_default().insert(key.to_string(), value);
                }
                ["settings", key] => {
                    raw.settings.insert(key.to_string(), value);
                }
                _ => raw.read_problems.push(Problem::new(
                    name.clone(),
                    "unexpected parameter: expected <prefix>/forges/<forge>/<key>, <prefix>/pools/<pool>/<key> or <prefix>/settings/<key>",
                )),
            }
        }
        raw
    }

    /// Parses a TOML file with the same tree. `env` resolves a secret given as
    /// `<secret>_env = "VAR"` (`token_env`, `webhook_secret_env`). A syntax error names its
    /// line and column.
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            problems: vec![Problem::new("(file)", toml_error_message(text, &e))],
        })?;
        let mut raw = RawConfig::default();
        for (section, value) in table {
            match (section.as_str(), value) {
                ("forges" | "pools", toml::Value::Table(named)) => {
                    for (name, body) in named {
                        let base = format!("{section}/{name}");
                        let toml::Value::Table(body) = body else {
                            raw.read_problems.push(Problem::new(base, "must be a table"));
                            continue;
                        };
                        let secrets_allowed = section == "forges";
                        let map = read_toml_keys(&base, body, secrets_allowed, &env, &mut raw.read_problems);
                        let tree = if secrets_allowed { &mut raw.forges } else { &mut raw.pools };
                        tree.insert(name, map);
                    }
                }
                ("settings", toml::Value::Table(body)) => {
                    raw.settings = read_toml_keys("settings", body, false, &env, &mut raw.read_problems);
                }
                (other, _) => {
                    let hint = match suggestion(other, ["forges", "pools", "settings"]) {
                        Some(close) => format!(" (did you mean `{close}`?)"),
                        None => String::new(),
                    };
                    raw.read_problems.push(Problem::new(
                        other.to_string(),
                        format!("unknown section: expected [forges.NAME], [pools.NAME] or [settings]{hint}"),
                    ))
                }
            }
        }
        Ok(raw)
    }

    /// The flat `(relative path, value)` list this tree would be stored as in SSM.
    pub fn to_params(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, keys) in &self.forges {
            for (k, v) in keys {
                out.push((format!("forges/{name}/{k}"), v.clone()));
            }
        }
        for (name, keys) in &self.pools {
            for (k, v) in keys {
                out.push((format!("pools/{name}/{k}"), v.clone()));
            }
        }
        for (k, v) in &self.settings {
            out.push((format!("settings/{k}"), v.clone()));
        }
        out
    }
}

/// One TOML table's keys as strings. With `secrets_allowed` (forge tables), a secret may be
/// given as `<secret>_env = "VAR"`, resolved through `env`; giving both forms is a problem.
fn read_toml_keys(
    base: &str,
    body: toml::Table,
    secrets_allowed: bool,
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let secret_of_env_key =
        |key: &str| key.strip_suffix("_env").filter(|k| secrets_allowed && SECRET_KEYS.contains(k)).map(str::to_string);
    let given_twice: Vec<String> =
        body.keys().filter_map(|k| secret_of_env_key(k)).filter(|secret| body.contains_key(secret.as_str())).collect();
    let mut map = BTreeMap::new();
    for (key, v) in body {
        let full = format!("{base}/{key}");
        let secret = secret_of_env_key(&key);
        if let Some(twice) = given_twice.iter().find(|s| **s == key || Some(*s) == secret.as_ref()) {
            problems.push(Problem::new(full, format!("give {twice} or {twice}_env, not both")));
            continue;
        }
        match (secret, toml_scalar(&v)) {
            (Some(secret), _) => match v.as_str().map(|var| (var, env(var))) {
                Some((_, Some(value))) => {
                    map.insert(secret, value);
                }
                Some((var, None)) => {
                    problems.push(Problem::new(full, format!("environment variable {var} is not set")))
                }
                None => problems.push(Problem::new(full, "must be a variable name")),
            },
            (None, Some(text)) => {
                map.insert(key, text);
            }
            (None, None) => problems.push(Problem::new(full, "must be a string, number, boolean or array of strings")),
        }
    }
    map
}

/// Whether a relative SSM path (`forges/<forge>/<key>`) holds a secret, to be stored as a
/// SecureString.
pub fn is_secret_param(relative: &str) -> bool {
    match relative.split('/').collect::<Vec<_>>().as_slice() {
        ["forges", _, key] => SECRET_KEYS.contains(key),
        _ => false,
    }
}

/// "not valid TOML: line L, column C: message", both counted from 1, when the error has a place.
fn toml_error_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let mut start = span.start.min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("not valid TOML: line {line}, column {column}: {message}")
        }
        None => format!("not valid TOML: {message}"),
    }
}

fn toml_scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(|i| i.as_str().map(str::to_string)).collect();
            parts.map(|p| p.join(","))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use proptest::prelude::*;

    proptest! {
        /// Any text, TOML or not, gives a tree or a listed error, never a panic; the same for
        /// validating whatever tree it gives.
        #[test]
        fn arbitrary_text_never_panics_the_reader_or_the_validation(text in "\\PC{0,200}") {
            if let Ok(raw) = RawConfig::from_toml(&text, |_| None) {
                let _ = Config::validate(&raw);
            }
        }

        /// Arbitrary values under every known key never panic the validation.
        #[test]
        fn arbitrary_values_under_known_keys_never_panic_the_validation(
            values in proptest::collection::vec("\\PC{0,12}", 40),
            kind in prop::sample::select(vec!["woodpecker", "forgejo", "gitea", "drone", "buildkite", "github", "gitlab", "generic", "?"]),
        ) {
            let mut params = vec![("/p/forges/f/kind".to_string(), kind.to_string()), ("/p/pools/a/forge".to_string(), "f".to_string())];
            let keys = crate::config::FORGE_KEYS.iter().map(|k| format!("/p/forges/f/{}", k.name))
                .chain(crate::config::POOL_KEYS.iter().map(|k| format!("/p/pools/a/{}", k.name)))
                .chain(crate::config::SETTINGS_KEYS.iter().map(|k| format!("/p/settings/{}", k.name)));
            for (key, value) in keys.zip(values.iter().cycle()) {
                if key != "/p/forges/f/kind" && key != "/p/pools/a/forge" {
                    params.push((key, value.clone()));
                }
            }
            let _ = Config::validate(&RawConfig::from_params("/p", params));
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn ssm_params_build_the_tree_and_round_trip() {
        let params = vec![
            ("/ci/forges/wp/kind".to_string(), "woodpecker".to_string()),
            ("/ci/pools/linux/asg".to_string(), "ci-linux".to_string()),
            ("/ci/settings/dry_run".to_string(), "true".to_string()),
        ];
        let raw = RawConfig::from_params("/ci/", params);
        assert_eq!(raw.forges["wp"]["kind"], "woodpecker");
        assert_eq!(raw.settings["dry_run"], "true");
        let round = RawConfig::from_params("/ci", raw.to_params().into_iter().map(|(k, v)| (format!("/ci/{k}"), v)));
        assert_eq!(round, raw);
    }

    #[test]
    fn a_toml_syntax_error_names_its_line_and_column() {
        let text = "[forges.wp]\nkind = \"woodpecker\"\nurl = https://ci.example.com\n";
        let err = RawConfig::from_toml(text, no_env).unwrap_err();
        let line = err.to_string();
        assert!(line.contains("(file): not valid TOML: line 3, column 7: "), "{line}");
    }

    #[test]
    fn a_toml_error_on_the_first_line_is_line_1_column_1() {
        let err = RawConfig::from_toml("= 3\n", no_env).unwrap_err();
        assert!(err.to_string().contains("line 1, column 1: "), "{err}");
    }

    #[test]
    fn webhook_secret_env_is_resolved_like_token_env() {
        let text = "[forges.gh]\nwebhook_secret_env = \"HOOK\"\ntoken_env = \"TOK\"\n";
        let raw = RawConfig::from_toml(text, |v| Some(format!("value-of-{v}"))).unwrap();
        assert_eq!(raw.forges["gh"]["webhook_secret"], "value-of-HOOK");
        assert_eq!(raw.forges["gh"]["token"], "value-of-TOK");
        let raw = RawConfig::from_toml(text, no_env).unwrap();
        let keys: Vec<&str> = raw.read_problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["forges/gh/token_env", "forges/gh/webhook_secret_env"]);
    }

    #[test]
    fn a_secret_given_both_inline_and_from_the_environment_is_a_problem_for_each() {
        let text = "[forges.wp]\ntoken = \"t\"\ntoken_env = \"TOK\"\nurl = \"https://x\"\n";
        let raw = RawConfig::from_toml(text, |_| Some("from-env".to_string())).unwrap();
        let found: Vec<String> = raw.read_problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "forges/wp/token: give token or token_env, not both",
                "forges/wp/token_env: give token or token_env, not both"
            ]
        );
        assert_eq!(raw.forges["wp"].get("token"), None);
        assert_eq!(raw.forges["wp"]["url"], "https://x");
    }

    #[test]
    fn a_misspelt_section_suggests_the_known_one() {
        let raw = RawConfig::from_toml("[setting]\ndry_run = true\n", no_env).unwrap();
        assert_eq!(raw.read_problems.len(), 1);
        assert!(raw.read_problems[0].message.ends_with("(did you mean `settings`?)"), "{:?}", raw.read_problems);
        let raw = RawConfig::from_toml("[colours]\nx = 1\n", no_env).unwrap();
        assert!(!raw.read_problems[0].message.contains("did you mean"), "{:?}", raw.read_problems);
    }

    #[test]
    fn tokens_and_webhook_secrets_are_the_secret_params() {
        assert!(is_secret_param("forges/gh/token"));
        assert!(is_secret_param("forges/gh/webhook_secret"));
        assert!(!is_secret_param("forges/gh/url"));
        assert!(!is_secret_param("pools/token/token"));
        assert!(!is_secret_param("settings/token"));
    }
}
