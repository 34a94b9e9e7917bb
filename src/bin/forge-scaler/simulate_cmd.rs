//! `simulate`: replay a CI trace (the bundled one or `--trace FILE`) under every policy and
//! print the comparison as a table or JSON, optionally an SVG timeline. Thin shell over
//! `forge_scaler::sim`.

use crate::exit;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use forge_scaler::sim::{self, engine::Billing, trace::Trace, Options};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BillingArg {
    /// Per second with a 60 s minimum (EC2 Linux).
    PerSecond,
    /// Whole hours, rounded up.
    Hourly,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  forge-scaler simulate
  forge-scaler simulate --trace year.csv --boot 90 --idle-timeout 5m --policy forge-scaler --policy buildkite
  forge-scaler simulate --trace year.csv --json --svg timeline.svg")]
pub struct SimulateArgs {
    /// CSV trace `arrival_s,duration_s[,labels][,project]` (default: the bundled
    /// travis-jackson-databind trace).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Jobs one instance runs at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub slots: u32,
    /// Launch to a working agent, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub boot: f64,
    /// Boot delays are uniform in boot * [1 - jitter, 1 + jitter] (seeded).
    #[arg(long, default_value_t = 0.1)]
    pub boot_jitter: f64,
    /// The group's MaxSize (every policy's instance cap).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max: u32,
    #[arg(long, value_enum, default_value_t = BillingArg::PerSecond)]
    pub billing: BillingArg,
    /// Seed of the boot jitter.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// forge-scaler's fixed idle timeout.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Adaptive idle timeout: instance-seconds one second of job wait is worth.
    #[arg(long, default_value_t = forge_scaler::adaptive::AdaptiveSettings::default().wait_weight)]
    pub adaptive_wait_weight: f64,
    /// Adaptive idle timeout: the shortest timeout it may choose (default 30s, the function's
    /// own: time for a fresh agent to be handed its first job; 0: leave at once when the
    /// pool's gaps say waiting never pays).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub adaptive_floor: Duration,
    /// Model signed forge webhooks for forge-scaler's policies: besides its polls, a tick one
    /// second after each job is queued (the webhook's delivery and the function's answer).
    #[arg(long)]
    pub webhooks: bool,
    /// forge-scaler's proportional spare (`spare_ratio`: ceil(needed x ratio) extra instances).
    #[arg(long, default_value_t = 0.0)]
    pub spare_ratio: f64,
    /// forge-scaler's cap on the proportional spare (`spare_max`).
    #[arg(long)]
    pub spare_max: Option<u32>,
    /// GitLab's idle_count (warm job slots it keeps; GitLab's AWS example uses 5).
    #[arg(long, default_value_t = 0)]
    pub gitlab_idle_count: u32,
    /// Only these policies (repeatable): static, buildkite, woodpecker, drone, gitlab,
    /// forge-scaler, forge-scaler-adaptive, vespene.
    #[arg(long = "policy", value_name = "NAME")]
    pub policies: Vec<String>,
    /// Make every look of forge-scaler's policies, also those that could only repeat the
    /// last one (no event skipping: the same results, slower; for checking).
    #[arg(long, hide = true)]
    pub no_skip: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write an SVG timeline (pending jobs, desired and in-service instances).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

pub async fn simulate(args: SimulateArgs) -> u8 {
    match run(args) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::BAD_CONFIG
        }
    }
}

fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if !(args.boot.is_finite() && args.boot >= 0.0) {
        bail!("--boot must be a non-negative number of seconds, got {}", args.boot);
    }
    if !(0.0..=1.0).contains(&args.boot_jitter) {
        bail!("--boot-jitter must be within 0..=1, got {}", args.boot_jitter);
    }
    let trace = match &args.trace {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read trace {}", path.display()))?;
            let name = path.file_stem().map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned());
            Trace::parse(&name, &text)?
        }
        None => Trace::parse(sim::BUNDLED_TRACE_NAME, sim::BUNDLED_TRACE)?,
    };
    let mut options = Options {
        idle_timeout: args.idle_timeout,
        gitlab_idle_count: args.gitlab_idle_count,
        webhooks: args.webhooks,
        spare_ratio: args.spare_ratio,
        spare_max: args.spare_max,
        only: args.policies.clone(),
        timeline: args.svg.is_some(),
        skip_events: !args.no_skip,
        ..Options::default()
    };
    options.world.slots = args.slots;
    options.world.boot = Duration::from_secs_f64(args.boot);
    options.world.boot_jitter = args.boot_jitter;
    options.world.max_instances = args.max;
    options.world.seed = args.seed;
    options.world.billing = match args.billing {
        BillingArg::PerSecond => Billing::PerSecond,
        BillingArg::Hourly => Billing::Hourly,
    };
    options.adaptive.boot = options.world.boot;
    if !(args.adaptive_wait_weight.is_finite() && args.adaptive_wait_weight >= 0.0) {
        bail!("--adaptive-wait-weight must be a non-negative number, got {}", args.adaptive_wait_weight);
    }
    options.adaptive.wait_weight = args.adaptive_wait_weight;
    if !(args.spare_ratio.is_finite() && args.spare_ratio >= 0.0) {
        bail!("--spare-ratio must be a non-negative number, got {}", args.spare_ratio);
    }
    options.adaptive.floor = args.adaptive_floor;

    let policies = if options.only.is_empty() { sim::POLICY_NAMES.len() } else { options.only.len() };
    let total = (trace.jobs.len() * policies) as u64;
    let progress = AtomicU64::new(0);
    let report = std::thread::scope(|scope| {
        let worker = scope.spawn(|| sim::run(&trace, &options, &progress));
        let started = Instant::now();
        let mut bar: Option<indicatif::ProgressBar> = None;
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            if bar.is_none() && started.elapsed() > Duration::from_secs(1) && std::io::stderr().is_terminal() {
                let b = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{spinner} simulating {bar:40} {percent}% of {len} job replays, eta {eta}",
                ) {
                    b.set_style(style);
                }
                bar = Some(b);
            }
            if let Some(b) = &bar {
                b.set_position(progress.load(Ordering::Relaxed));
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        worker.join().map_err(|_| anyhow::anyhow!("the simulation panicked"))
    })?;
    let report = report.map_err(anyhow::Error::msg)?;

    if let Some(path) = &args.svg {
        let svg = sim::plot::render(&report)?;
        std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", sim::table(&report));
    }
    Ok(())
}
