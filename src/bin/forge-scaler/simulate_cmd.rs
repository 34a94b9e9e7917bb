//! `simulate`: replay a CI trace (the bundled one or `--trace FILE`) under every policy and
//! print the comparison as a table or JSON, optionally an SVG timeline. Thin shell over
//! `forge_scaler::sim`.

use crate::exit;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use forge_scaler::recommend::{self, FloorsFile};
use forge_scaler::sim::warm::{WarmPoolConfig, WarmPoolError};
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
  forge-scaler simulate --trace year.csv --json --svg timeline.svg
  forge-scaler simulate --trace march.csv --svg week.svg --window 7d@2024-03-04 --trace-start 2024-03-01
  forge-scaler simulate --trace march.csv --cost-wait-svg frontier.svg
  forge-scaler simulate --trace year.csv --floors floors.json --policy forge-scaler
  forge-scaler simulate --trace year.csv --boot 300 --warm-pool 2 --warm-start 20 --stopped-cost 0.05")]
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
    /// An EC2 Auto Scaling warm pool of this many stopped, pre-initialised instances for
    /// forge-scaler's policies (the others stay cold); at most --max. 0: none.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warm_pool: u32,
    /// A warm instance's start to a working agent, in seconds (published: 10-30 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, requires = "warm_pool")]
    pub warm_start: f64,
    /// Price of a stopped instance-hour as a fraction of a running one, within 0..=1 (EBS only:
    /// about 0.05).
    #[arg(long, value_name = "F", default_value_t = 0.05, requires = "warm_pool")]
    pub stopped_cost: f64,
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
    /// The timeline shows only this window, at its own resolution: LENGTH@START, START a
    /// duration after the trace's first job (7d@30d) or a date (7d@2024-03-04, with --trace-start).
    #[arg(long, value_name = "LENGTH@START", requires = "svg")]
    pub window: Option<String>,
    /// The UTC date (or RFC 3339 time) of the trace's first job, for dates in --window.
    #[arg(long, value_name = "DATE")]
    pub trace_start: Option<String>,
    /// Also write an SVG chart of idle instance-hours against p95 wait: every policy, and
    /// forge-scaler swept over idle timeouts 0s..1h, with the frontier.
    #[arg(long, value_name = "FILE")]
    pub cost_wait_svg: Option<PathBuf>,
    /// Hour-of-week MinSize floors (the JSON `recommend --format floors` writes): adds a
    /// `forge-scaler+floors` row, forge-scaler with that MinSize scheduled in its group.
    #[arg(long, value_name = "FILE")]
    pub floors: Option<PathBuf>,
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
    let trace_start = match &args.trace_start {
        None => None,
        Some(text) => Some(sim::timeline::parse_utc(text).with_context(|| {
            format!("--trace-start {text:?}: expected a date such as 2024-03-01 or an RFC 3339 time")
        })?),
    };
    if let Some(text) = &args.window {
        options.window = Some(sim::timeline::Window::parse(text, trace_start)?);
    }

    let floors = match &args.floors {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read floors {}", path.display()))?;
            Some(FloorsFile::parse(&text).with_context(|| format!("floors {}", path.display()))?)
        }
        None => None,
    };
    if args.warm_pool > 0 {
        let pool = WarmPoolConfig::new(args.warm_pool, args.warm_start, args.stopped_cost, args.max).map_err(|e| {
            let flag = match e {
                WarmPoolError::StoppedCost(_) => "--stopped-cost",
                WarmPoolError::Start(_) => "--warm-start",
                WarmPoolError::LargerThanMax { .. } => "--warm-pool",
            };
            anyhow::anyhow!("{flag}: {e}")
        })?;
        options.warm_pool = Some(pool);
    }

    let policies = if options.only.is_empty() { sim::POLICY_NAMES.len() } else { options.only.len() };
    let total = (trace.jobs.len() * (policies + usize::from(floors.is_some()))) as u64;
    let progress = AtomicU64::new(0);
    let report = std::thread::scope(|scope| {
        let worker = scope.spawn(|| match &floors {
            Some(floors) => recommend::run_with_floors(&trace, &options, floors, &progress).map_err(|e| e.to_string()),
            None => sim::run(&trace, &options, &progress),
        });
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
    if let Some(path) = &args.cost_wait_svg {
        let timeouts: Vec<Duration> = sim::SWEEP_IDLE_TIMEOUTS_S.iter().map(|&s| Duration::from_secs(s)).collect();
        let sweep = sim::idle_timeout_sweep(&trace, &options, &timeouts);
        let svg = sim::plot::render_cost_wait(&report, &sweep)?;
        std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", sim::table(&report));
    }
    Ok(())
}
