//! `agent`: the instance watchdog's flags (systemd-friendly), turned into
//! `agent::host::WatchdogSettings`; the work is in the library.

use crate::exit;
use clap::{Args, ValueEnum};
use forge_scaler::agent::drain::{ControlSpec, StopSignal};
use forge_scaler::agent::host::{self, Outcome, SdkSource, WatchdogSettings};
use forge_scaler::agent::idle::IdleConfig;
use forge_scaler::agent::imds::DEFAULT_ENDPOINT;
use forge_scaler::agent::probe::{ProbeSpec, DEFAULT_DOCKER_SOCKET, DEFAULT_WOODPECKER_VARZ};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    forge-scaler agent --woodpecker-varz --wrap -- woodpecker-agent\n  \
    forge-scaler agent --wrap -- buildkite-agent start --disconnect-after-idle-timeout 600\n  \
    forge-scaler agent --docker-label io.drone.build.number --stop-cmd 'docker stop drone-runner' \\\n      \
    --start-cmd 'docker start drone-runner'")]
pub struct AgentArgs {
    /// Time between checks.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = duration)]
    check_interval: Duration,
    /// Idle time before leaving, unless the group's tag forge-scaler:idle-timeout says otherwise.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    idle_timeout: Duration,
    /// An agent never ready by this time after boot leaves (tag forge-scaler:boot-timeout
    /// overrides). Once ready, the idle timeout runs, also before the first job.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    boot_timeout: Duration,
    /// Hard cap on age: leave once this old, as soon as idle or unknown (also while the probe
    /// keeps failing).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    max_lifetime: Option<Duration>,
    /// The probe unable to tell busy from idle this long in a row counts as idle (a broken
    /// agent serves no jobs): the instance leaves once its idle timeout also ran out.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = duration)]
    unknown_grace: Duration,
    /// Busy this long without one idle reading counts as a broken probe: the instance
    /// leaves (a job running longer is lost; set it above your longest job timeout).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = duration)]
    max_busy: Duration,
    /// Leave after this many jobs, as soon as idle (0: no limit). Jobs are busy-to-idle
    /// changes the checks see.
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_jobs: u32,
    /// On an EC2 rebalance recommendation: leave (idle: at once; busy: take no new job and
    /// leave when done) or ignore it.
    #[arg(long, value_enum, default_value = "leave")]
    on_rebalance: RebalanceArg,
    /// Time between writes of the group tag forge-scaler:heartbeat:<instance-id> (0s: none).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration)]
    heartbeat_interval: Duration,
    /// Billing period of hourly-billed machines: leave only in its last --billing-margin.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    billing_period: Option<Duration>,
    /// The last part of each billing period in which an idle instance may leave.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration)]
    billing_margin: Duration,

    /// Instance metadata service (IMDSv2).
    #[arg(long, value_name = "URL", env = "AWS_EC2_METADATA_SERVICE_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    imds_endpoint: Url,

    /// Probe the Woodpecker agent's /varz (running_count); the agent is then stopped with
    /// SIGKILL, and only while nothing runs.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = DEFAULT_WOODPECKER_VARZ)]
    woodpecker_varz: Option<Url>,
    /// Busy while a running container carries this label (KEY or KEY=VALUE); repeatable.
    #[arg(long, value_name = "LABEL")]
    docker_label: Vec<String>,
    /// Busy while a running container's name starts with this; repeatable.
    #[arg(long, value_name = "PREFIX")]
    docker_name_prefix: Vec<String>,
    /// Docker Engine API socket for --docker-label / --docker-name-prefix.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DOCKER_SOCKET)]
    docker_socket: PathBuf,
    /// Shell command: exit 0 = busy, 1 = idle, anything else or a timeout = unknown (stay).
    #[arg(long, value_name = "CMD")]
    probe: Option<String>,
    /// Timeout of each probe and metadata request.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    probe_timeout: Duration,

    /// Shell command that stops the agent taking jobs (instead of signalling the wrapped agent).
    #[arg(long, value_name = "CMD")]
    stop_cmd: Option<String>,
    /// Shell command that starts the agent again when a drain is aborted.
    #[arg(long, value_name = "CMD")]
    start_cmd: Option<String>,
    /// Signal that stops the wrapped agent (default: kill with --woodpecker-varz, else term).
    #[arg(long, value_enum)]
    stop_signal: Option<SignalArg>,
    /// How long to wait for the agent to exit after the stop, and for stop/start commands.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    stop_grace: Duration,

    /// First wait after AWS refused the terminate (MinSize) or IMDS/AWS failed; doubles.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    retry_initial: Duration,
    /// Longest wait between retries.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    retry_max: Duration,
    /// Least time between reads of the group's sizes and tags (0s: every check). Large fleets
    /// can raise it to spare the Auto Scaling API; the group is always read before leaving.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = duration)]
    group_read_interval: Duration,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,

    /// Supervise the agent command given after `--`; the instance leaves when it exits.
    #[arg(long, requires = "command")]
    wrap: bool,
    /// The agent command line (after `--`, with --wrap).
    #[arg(last = true, value_name = "CMD", requires = "wrap")]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RebalanceArg {
    Leave,
    Ignore,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SignalArg {
    Term,
    /// GitLab Runner's graceful shutdown.
    Quit,
    Kill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (write e.g. 15s, 10m, 1h)"))
}

impl AgentArgs {
    fn settings(&self) -> Result<WatchdogSettings, String> {
        let mut probes = Vec::new();
        if let Some(url) = &self.woodpecker_varz {
            probes.push(ProbeSpec::WoodpeckerVarz { url: url.clone() });
        }
        if !self.docker_label.is_empty() || !self.docker_name_prefix.is_empty() {
            probes.push(ProbeSpec::Docker {
                socket: self.docker_socket.clone(),
                labels: self.docker_label.clone(),
                name_prefixes: self.docker_name_prefix.clone(),
            });
        }
        if let Some(command) = &self.probe {
            probes.push(ProbeSpec::Command { command: command.clone() });
        }
        if probes.is_empty() && !self.wrap {
            return Err("nothing tells whether the agent is busy: give --wrap -- CMD, --woodpecker-varz, \
                        --docker-label/--docker-name-prefix, or --probe CMD"
                .into());
        }
        if self.check_interval.is_zero() {
            return Err("--check-interval must be above zero".into());
        }
        if self.max_busy.is_zero() {
            return Err("--max-busy must be above zero (it bounds how long a busy reading is believed)".into());
        }
        let stop_signal = match self.stop_signal {
            Some(SignalArg::Term) => StopSignal::Term,
            Some(SignalArg::Quit) => StopSignal::Quit,
            Some(SignalArg::Kill) => StopSignal::Kill,
            None if self.woodpecker_varz.is_some() => StopSignal::Kill,
            None => StopSignal::Term,
        };
        Ok(WatchdogSettings {
            imds_endpoint: self.imds_endpoint.clone(),
            check_interval: self.check_interval,
            idle: IdleConfig {
                idle_timeout: self.idle_timeout,
                boot_timeout: self.boot_timeout,
                max_lifetime: self.max_lifetime,
                billing_period: self.billing_period,
                billing_margin: self.billing_margin,
                unknown_grace: self.unknown_grace,
                max_busy: self.max_busy,
                max_jobs: self.max_jobs,
                leave_on_rebalance: self.on_rebalance == RebalanceArg::Leave,
            },
            probes,
            probe_timeout: self.probe_timeout,
            control: ControlSpec {
                wrap: self.wrap.then(|| self.command.clone()),
                stop_cmd: self.stop_cmd.clone(),
                start_cmd: self.start_cmd.clone(),
                stop_signal,
                stop_grace: self.stop_grace,
            },
            retry_initial: self.retry_initial,
            retry_max: self.retry_max.max(self.retry_initial),
            group_read_interval: self.group_read_interval,
            heartbeat_interval: self.heartbeat_interval,
        })
    }
}

pub async fn agent(args: AgentArgs) -> u8 {
    crate::init_logging("info", args.log_format == LogFormat::Json);
    let settings = match args.settings() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: agent: {message}");
            return exit::BAD_CONFIG;
        }
    };
    match host::run(settings, SdkSource::Environment, Box::pin(stop_signal())).await {
        Ok(Outcome::Left(reason)) => {
            tracing::info!(event = "watchdog_done", outcome = "terminating", reason = ?reason);
            exit::OK
        }
        Ok(outcome) => {
            tracing::info!(event = "watchdog_done", outcome = ?outcome);
            exit::OK
        }
        Err(e) => {
            eprintln!("error: agent: {e:#}");
            exit::TICK_FAILED
        }
    }
}

/// Completes on SIGTERM (systemd stop) or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
