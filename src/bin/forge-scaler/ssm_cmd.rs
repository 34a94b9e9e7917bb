//! `ssm put`: validate a TOML config, then write it to SSM Parameter Store under a prefix
//! (tokens as SecureString, everything else as String). Nothing is written when the file has
//! any problem; values are never printed.

use crate::{exit, init_logging};
use clap::{Args, Subcommand};
use forge_scaler::app;
use forge_scaler::cloud::ssm::SsmStore;
use forge_scaler::cloud::ParamStore;
use forge_scaler::config::{is_secret_param, Config, RawConfig};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum SsmCommand {
    /// Validate a TOML config and write it to SSM parameters under a prefix.
    Put(PutArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  forge-scaler ssm put --config forge-scaler.toml --ssm-prefix /forge-scaler --dry-run
  forge-scaler ssm put --config forge-scaler.toml --ssm-prefix /forge-scaler")]
pub struct PutArgs {
    /// TOML configuration file (the same tree as the SSM keys).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// SSM prefix to write under, e.g. /forge-scaler (the function's FORGE_SCALER_SSM_PREFIX).
    #[arg(long, value_name = "PATH")]
    ssm_prefix: String,
    /// List the parameters that would be written, write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// One parameter to write: full name, value, and whether it is a SecureString.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub value: String,
    pub secure: bool,
}

/// The parameters a validated raw tree is stored as under `prefix`. Secrets (tokens, webhook
/// secrets) are SecureStrings.
pub fn parameters(prefix: &str, raw: &RawConfig) -> Result<Vec<Parameter>, String> {
    let prefix = prefix.trim_end_matches('/');
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.contains("//") {
        return Err(format!("--ssm-prefix {prefix:?} must be a path like /forge-scaler (starting with /)"));
    }
    Ok(raw
        .to_params()
        .into_iter()
        .map(|(relative, value)| {
            let secure = is_secret_param(&relative);
            Parameter { name: format!("{prefix}/{relative}"), value, secure }
        })
        .collect())
}

pub async fn ssm(cmd: SsmCommand) -> u8 {
    init_logging("warn", false);
    match cmd {
        SsmCommand::Put(args) => put(args).await,
    }
}

async fn put(args: PutArgs) -> u8 {
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.config.display());
            return exit::BAD_CONFIG;
        }
    };
    let raw = match RawConfig::from_toml(&text, |var| std::env::var(var).ok()) {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("error: {}: {e}", args.config.display());
            return exit::BAD_CONFIG;
        }
    };
    if let Err(e) = Config::validate(&raw) {
        eprintln!("error: {}: {e}; nothing written", args.config.display());
        return exit::BAD_CONFIG;
    }
    let params = match parameters(&args.ssm_prefix, &raw) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_CONFIG;
        }
    };
    if args.dry_run {
        for p in &params {
            println!("{} ({})", p.name, if p.secure { "SecureString" } else { "String" });
        }
        return exit::OK;
    }
    let sdk = app::aws_sdk_config().await;
    let store = SsmStore::new(&sdk);
    for (i, p) in params.iter().enumerate() {
        if let Err(e) = store.put(&p.name, &p.value, p.secure).await {
            eprintln!("error: {e} (wrote {i} of {} parameters)", params.len());
            return exit::TICK_FAILED;
        }
    }
    let secure = params.iter().filter(|p| p.secure).count();
    println!("wrote {} parameters under {} ({secure} SecureString)", params.len(), args.ssm_prefix);
    // Parameters under the prefix that the file does not have are still read by the function.
    let written: BTreeSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
    match store.get_tree(&args.ssm_prefix).await {
        Ok(existing) => {
            let stale: Vec<String> =
                existing.into_iter().map(|(name, _)| name).filter(|n| !written.contains(n.as_str())).collect();
            if !stale.is_empty() {
                eprintln!(
                    "warning: {} parameter(s) under {} are not in {} and still take effect; delete them if unwanted:",
                    stale.len(),
                    args.ssm_prefix,
                    args.config.display()
                );
                for name in stale {
                    eprintln!("  {name}");
                }
            }
        }
        Err(e) => eprintln!("warning: could not list {} to look for stale parameters: {e}", args.ssm_prefix),
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawConfig {
        RawConfig::from_toml(
            "[forges.wp]\nkind = \"woodpecker\"\nurl = \"https://ci.example\"\ntoken = \"t0k\"\n\
             [pools.linux]\nforge = \"wp\"\nasg = \"ci-linux\"\nslots = 2\n[settings]\npoll_interval = \"15s\"\n",
            |_| None,
        )
        .unwrap()
    }

    #[test]
    fn tokens_are_secure_strings_and_the_rest_plain() {
        let params = parameters("/forge-scaler/", &raw()).unwrap();
        let token = params.iter().find(|p| p.name == "/forge-scaler/forges/wp/token").unwrap();
        assert!(token.secure);
        assert_eq!(token.value, "t0k");
        let slots = params.iter().find(|p| p.name == "/forge-scaler/pools/linux/slots").unwrap();
        assert!(!slots.secure);
        assert_eq!(slots.value, "2");
        assert!(params.iter().any(|p| p.name == "/forge-scaler/settings/poll_interval" && p.value == "15s"));
        assert_eq!(params.iter().filter(|p| p.secure).count(), 1);
    }

    #[test]
    fn a_webhook_secret_is_written_as_a_secure_string() {
        let raw = RawConfig::from_toml(
            "[forges.gh]\nkind = \"github\"\nrepos = \"a/b\"\ntoken = \"t0k\"\nwebhook_secret = \"h00k\"\n",
            |_| None,
        )
        .unwrap();
        let params = parameters("/forge-scaler", &raw).unwrap();
        let hook = params.iter().find(|p| p.name == "/forge-scaler/forges/gh/webhook_secret").unwrap();
        assert!(hook.secure);
        assert_eq!(params.iter().filter(|p| p.secure).count(), 2);
    }

    #[test]
    fn what_is_written_reads_back_as_the_same_tree() {
        let params = parameters("/forge-scaler", &raw()).unwrap();
        let back = RawConfig::from_params("/forge-scaler", params.into_iter().map(|p| (p.name, p.value)));
        assert_eq!(back, raw());
    }

    #[test]
    fn a_prefix_must_be_an_absolute_path() {
        assert!(parameters("forge-scaler", &raw()).unwrap_err().contains("must be a path"));
        assert!(parameters("/", &raw()).is_err());
    }
}
