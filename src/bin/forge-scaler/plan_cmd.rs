//! `plan` and `once`: one tick, printed for people or as JSON.

use crate::{exit, init_logging, ConfigArgs};
use anyhow::Context;
use clap::Args;
use forge_scaler::app::{self, ConfigSource, LoadError};
use forge_scaler::cloud::ssm::SsmStore;
use forge_scaler::config::Config;
use forge_scaler::tick::{self, Action, RecordedObservation, TickReport};
use std::path::PathBuf;

/// `plan` takes its own config flags rather than `ConfigArgs`: clap requires a required group
/// even when flattened as optional, which made `plan --observation FILE` demand a config.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE", conflicts_with = "ssm_prefix", required_unless_present_any = ["ssm_prefix", "observation"])]
    config: Option<PathBuf>,
    /// SSM Parameter Store prefix holding the configuration.
    #[arg(long, value_name = "PATH")]
    ssm_prefix: Option<String>,
    /// Plan from a recorded observation file, with no network at all.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "ssm_prefix", "record"])]
    observation: Option<PathBuf>,
    /// Also write what was observed, for `plan --observation`.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Warnings, but not the SDK's own (e.g. the IMDS region probe on a machine that is not EC2).
const LOG_FILTER: &str = "warn,aws_config=error";

#[derive(Args, Debug)]
pub struct OnceArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn plan(args: PlanArgs) -> u8 {
    init_logging(LOG_FILTER, false);
    if let Some(path) = &args.observation {
        return match plan_from_file(path) {
            Ok(report) => print_report(&report, args.json, false),
            Err(e) => {
                eprintln!("error: {e:#}");
                exit::BAD_CONFIG
            }
        };
    }
    let source = match (args.config, args.ssm_prefix) {
        (Some(file), None) => ConfigSource::File(file),
        (None, Some(prefix)) => ConfigSource::Ssm(prefix),
        _ => {
            eprintln!("error: give one of --config FILE, --ssm-prefix PATH or --observation FILE");
            return exit::BAD_CONFIG;
        }
    };
    one_tick(source, false, args.json, args.record).await
}

pub async fn once(args: OnceArgs) -> u8 {
    init_logging(LOG_FILTER, false);
    one_tick(args.config.source(), true, args.json, None).await
}

fn plan_from_file(path: &PathBuf) -> anyhow::Result<TickReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let recorded: RecordedObservation =
        serde_json::from_str(&text).with_context(|| format!("{} is not a recorded observation", path.display()))?;
    Ok(recorded.plan_all())
}

/// Loads the config, runs one tick, prints it; returns the exit status.
pub async fn one_tick(source: ConfigSource, apply: bool, json: bool, record: Option<PathBuf>) -> u8 {
    // A config file is read and validated before AWS is touched, so a bad file is exit 2 on any
    // machine; an SSM prefix needs the SDK first.
    let (loaded, sdk) = match &source {
        ConfigSource::File(_) => (source.load(None).await, None),
        ConfigSource::Ssm(_) => {
            let sdk = match aws_sdk().await {
                Ok(sdk) => sdk,
                Err(code) => return code,
            };
            (source.load(Some(&SsmStore::new(&sdk))).await, Some(sdk))
        }
    };
    let config: Config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            return if e.is_invalid_config() || matches!(e, LoadError::Invalid(_)) {
                exit::BAD_CONFIG
            } else {
                exit::TICK_FAILED
            };
        }
    };
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => match aws_sdk().await {
            Ok(sdk) => sdk,
            Err(code) => return code,
        },
    };
    let apply = apply && !config.settings.dry_run;
    let (edges, forge_errors) = app::edges(&config, &sdk);
    for e in &forge_errors {
        eprintln!("warning: {e}");
    }
    let now = chrono::Utc::now();
    let report = match tick::tick(&config, &edges, now, apply).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            return exit::TICK_FAILED;
        }
    };
    if let Some(path) = record {
        let recorded = report.recorded(&config, now);
        let text = serde_json::to_string_pretty(&recorded).expect("observation serializes");
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::TICK_FAILED;
        }
    }
    print_report(&report, json, apply)
}

/// The AWS SDK configuration from the standard environment; exit 1 when it has no region (every
/// call would fail with a less helpful "missing signing region").
async fn aws_sdk() -> Result<aws_config::SdkConfig, u8> {
    let sdk = app::aws_sdk_config().await;
    if sdk.region().is_none() {
        eprintln!("error: no AWS region: set AWS_REGION (or `region` in the AWS profile) to the groups' region");
        return Err(exit::TICK_FAILED);
    }
    Ok(sdk)
}

/// Multi-line messages (the SDK's credential chain report) as one line.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

fn print_report(report: &TickReport, json: bool, applied: bool) -> u8 {
    if json {
        println!("{}", serde_json::to_string_pretty(report).expect("report serializes"));
    } else {
        for p in &report.pools {
            let target = match (p.forge.is_empty(), p.group.is_empty()) {
                (true, true) => String::new(),
                _ => format!(" (forge {}, group {})", p.forge, p.group),
            };
            match p.action {
                Action::Error => {
                    println!("pool {}{target}: ERROR: {}", p.pool, p.error.as_deref().unwrap_or("unknown"))
                }
                action => {
                    let verb = match (action, applied) {
                        (Action::Raise, true) => "raised",
                        (Action::Raise, false) => "would raise",
                        _ => "unchanged",
                    };
                    println!(
                        "pool {}{target}: {} pending, {} running; desired {} -> {} ({verb})",
                        p.pool,
                        p.pending.unwrap_or(0),
                        p.running.unwrap_or(0),
                        p.desired_before.unwrap_or(0),
                        p.desired_after.unwrap_or(0),
                    );
                }
            }
            for r in &p.reasons {
                println!("  - {r}");
            }
            for w in &p.warnings {
                println!("  ! warning: {w}");
            }
        }
    }
    // One line per failed pool on stderr, whatever the format, so scripts and people see why.
    for p in report.pools.iter().filter(|p| p.action == Action::Error) {
        let cause = one_line(p.error.as_deref().unwrap_or("unknown error"));
        eprintln!("error: pool {} (forge {}, group {}): {cause}", p.pool, p.forge, p.group);
    }
    if report.any_error() {
        exit::POOL_ERROR
    } else {
        exit::OK
    }
}
