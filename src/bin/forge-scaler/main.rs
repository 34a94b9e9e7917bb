//! The `forge-scaler` binary: the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is set,
//! otherwise the CLI. Thin: parsing, dispatch and printing; the work is in the library.

mod agent_cmd;
mod doctor_cmd;
mod lambda_cmd;
mod plan_cmd;
mod recommend_cmd;
mod run_cmd;
mod simulate_cmd;
mod ssm_cmd;
mod trace_cmd;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit statuses (DESIGN.md, "Interfaces").
pub mod exit {
    /// Every pool planned (and applied).
    pub const OK: u8 = 0;
    /// The tick could not run at all (AWS unreachable, no credentials).
    pub const TICK_FAILED: u8 = 1;
    /// Bad usage or configuration.
    pub const BAD_CONFIG: u8 = 2;
    /// Some pool errored; the others were planned and applied.
    pub const POOL_ERROR: u8 = 3;
}

#[derive(Parser, Debug)]
#[command(name = "forge-scaler", version, about = "Scale CI agent Auto Scaling Groups from a forge's pending jobs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Observe and plan without applying anything.
    Plan(plan_cmd::PlanArgs),
    /// Observe, plan and apply one tick.
    Once(plan_cmd::OnceArgs),
    /// Tick every poll_interval forever (for people without Lambda).
    Run(run_cmd::RunArgs),
    /// The instance-side watchdog: drain and terminate this instance when idle.
    Agent(Box<agent_cmd::AgentArgs>),
    /// Replay a CI trace against every policy and compare cost with queue wait.
    Simulate(simulate_cmd::SimulateArgs),
    /// Recommend hour-of-week MinSize floors for a target p95 wait, as ASG scheduled actions.
    Recommend(recommend_cmd::RecommendArgs),
    /// Trace tools.
    #[command(subcommand)]
    Trace(trace_cmd::TraceCommand),
    /// SSM Parameter Store tools.
    #[command(subcommand)]
    Ssm(ssm_cmd::SsmCommand),
    /// Check what a deployment needs (config, forges, groups, watchdogs, IAM) as a checklist.
    Doctor(doctor_cmd::DoctorArgs),
}

/// Where the configuration comes from: exactly one of a TOML file or an SSM prefix.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SSM Parameter Store prefix holding the configuration.
    #[arg(long, value_name = "PATH")]
    pub ssm_prefix: Option<String>,
}

impl ConfigArgs {
    pub fn source(&self) -> forge_scaler::app::ConfigSource {
        match (&self.config, &self.ssm_prefix) {
            (Some(file), _) => forge_scaler::app::ConfigSource::File(file.clone()),
            (None, Some(prefix)) => forge_scaler::app::ConfigSource::Ssm(prefix.clone()),
            (None, None) => unreachable!("clap requires one of --config and --ssm-prefix"),
        }
    }
}

/// Logs go to stderr: JSON under Lambda, human-readable in the CLI. `RUST_LOG` overrides the
/// level; Lambda's own log controls (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT`, set from
/// the function's logging configuration) override both.
pub fn init_logging(default_level: &str, json: bool) {
    let env = |name: &str| std::env::var(name).ok();
    let choice = log_choice(
        default_level,
        json,
        env("RUST_LOG").as_deref(),
        env("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        env("AWS_LAMBDA_LOG_FORMAT").as_deref(),
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&choice.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if choice.json { builder.json().flatten_event(true).try_init() } else { builder.compact().try_init() };
}

/// The log filter and format chosen from the defaults and the environment.
#[derive(Debug, PartialEq, Eq)]
struct LogChoice {
    filter: String,
    json: bool,
}

/// `AWS_LAMBDA_LOG_LEVEL` (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) beats `RUST_LOG`, which beats
/// the default; `AWS_LAMBDA_LOG_FORMAT` (JSON or Text) beats the default format. Unknown or
/// empty values are ignored.
fn log_choice(
    default_level: &str,
    default_json: bool,
    rust_log: Option<&str>,
    lambda_level: Option<&str>,
    lambda_format: Option<&str>,
) -> LogChoice {
    let lambda_level = lambda_level.map(|l| l.trim().to_ascii_lowercase()).and_then(|l| match l.as_str() {
        "trace" | "debug" | "info" | "warn" | "error" => Some(l),
        "fatal" => Some("error".to_string()),
        _ => None,
    });
    let rust_log = rust_log.map(str::trim).filter(|l| !l.is_empty()).map(str::to_string);
    let filter = lambda_level.or(rust_log).unwrap_or_else(|| default_level.to_string());
    let json = match lambda_format.map(|f| f.trim().to_ascii_lowercase()).as_deref() {
        Some("json") => true,
        Some("text") => false,
        _ => default_json,
    };
    LogChoice { filter, json }
}

/// A CLI piped into `head` should end quietly, not panic on a broken pipe.
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_cmd::lambda_main();
    }
    restore_sigpipe();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::TICK_FAILED);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Plan(args) => plan_cmd::plan(args).await,
            Command::Once(args) => plan_cmd::once(args).await,
            Command::Run(args) => run_cmd::run(args).await,
            Command::Agent(args) => agent_cmd::agent(*args).await,
            Command::Simulate(args) => simulate_cmd::simulate(args).await,
            Command::Recommend(args) => recommend_cmd::recommend(args).await,
            Command::Trace(cmd) => trace_cmd::trace(cmd).await,
            Command::Ssm(cmd) => ssm_cmd::ssm(cmd).await,
            Command::Doctor(args) => doctor_cmd::doctor(args).await,
        }
    });
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::{log_choice, LogChoice};

    fn choice(filter: &str, json: bool) -> LogChoice {
        LogChoice { filter: filter.to_string(), json }
    }

    #[test]
    fn without_any_setting_the_defaults_hold() {
        assert_eq!(log_choice("info", true, None, None, None), choice("info", true));
        assert_eq!(log_choice("warn", false, Some(" "), Some(""), Some("")), choice("warn", false));
    }

    #[test]
    fn rust_log_sets_the_filter() {
        assert_eq!(
            log_choice("info", true, Some("forge_scaler=debug"), None, None),
            choice("forge_scaler=debug", true)
        );
    }

    #[test]
    fn lambdas_log_level_beats_rust_log_and_fatal_means_error() {
        assert_eq!(log_choice("info", true, Some("debug"), Some("WARN"), None), choice("warn", true));
        assert_eq!(log_choice("info", true, Some("debug"), Some("FATAL"), None), choice("error", true));
        assert_eq!(log_choice("info", true, Some("debug"), Some("LOUD"), None), choice("debug", true));
    }

    #[test]
    fn lambdas_log_format_picks_json_or_text() {
        assert_eq!(log_choice("info", true, None, None, Some("Text")), choice("info", false));
        assert_eq!(log_choice("info", false, None, None, Some("JSON")), choice("info", true));
        assert_eq!(log_choice("info", false, None, None, Some("xml")), choice("info", false));
    }
}
