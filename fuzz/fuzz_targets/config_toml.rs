//! The config parser: any text as a TOML config file, then as SSM parameters (a line each,
//! `name=value`). Validation either succeeds, with every invariant the planner relies on
//! (min <= max, slots >= 1), or lists problems; it never panics and never echoes a secret.
#![no_main]
use forge_scaler::config::{Config, FleetSpec, RawConfig};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-value-7";

fn check(result: Result<Config, forge_scaler::config::ConfigError>) {
    match result {
        Ok(config) => {
            for pool in &config.pools {
                assert!(pool.policy.slots >= 1, "a valid pool has at least one slot");
                if let (FleetSpec::Command { min_instances, .. }, Some(max)) = (&pool.fleet, pool.policy.max_instances) {
                    assert!(*min_instances <= max, "a valid command pool has min <= max");
                }
            }
            assert!(!format!("{config:?}").contains(SECRET), "a secret in Debug");
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty(), "an error says something");
            assert!(!text.contains(SECRET), "a secret in an error: {text}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env = |name: &str| (name == "FUZZ_TOKEN").then(|| SECRET.to_string());
    check(Config::from_toml(&text, env));
    // The secret goes only where a secret belongs (a token or a webhook secret); elsewhere an
    // error may rightly quote the value it refuses.
    let params = text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| {
        let k = if k.starts_with('/') { k.to_string() } else { format!("/f/{k}") };
        let secret_key = k.ends_with("/token") || k.ends_with("secret");
        let v = if secret_key { v.replace("$SECRET", SECRET) } else { v.to_string() };
        (k, v)
    });
    check(Config::validate(&RawConfig::from_params("/f", params)));
});
