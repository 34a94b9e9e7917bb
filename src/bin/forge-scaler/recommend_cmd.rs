//! `recommend`: hour-of-week MinSize floors for a target p95 wait, from a trace or from the
//! arrival history a group's tag holds, printed as a CloudFormation snippet and as
//! `aws autoscaling` commands (or as the floors file `simulate --floors` reads). Thin shell
//! over `forge_scaler::recommend`.

use crate::exit;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use forge_scaler::recommend::{self, FloorsFile, Recommendation, Settings};
use forge_scaler::sim::{self, trace::Trace, Options};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A summary, the CloudFormation snippet and the AWS CLI commands, as comments and
    /// sections.
    Text,
    /// Only the CloudFormation `Resources:` snippet (YAML).
    Cloudformation,
    /// Only the `aws autoscaling put-scheduled-update-group-action` commands.
    Commands,
    /// The floors file (JSON) that `simulate --floors` reads.
    Floors,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("history").required(true).args(["trace", "from_group"])))]
#[command(after_help = "Examples:
  forge-scaler recommend --trace history.csv --trace-start 2024-03-01T00:00:00Z --target-p95 30s --group ci-linux
  forge-scaler recommend --trace history.csv --trace-start 2024-03-01T00:00:00Z --format floors > floors.json
  forge-scaler simulate --trace history.csv --floors floors.json --policy forge-scaler
  forge-scaler recommend --from-group ci-linux --job-duration 8m

The floors keep the simulated p95 queue wait of forge-scaler (the real pool step and watchdog,
the same world as `simulate`) at or under --target-p95 with the least MinSize: per hour of the
week (UTC), the 95th percentile of the instances the jobs arriving in it needed, then lowered,
least useful step first, as far as the simulated p95 still holds.")]
pub struct RecommendArgs {
    /// CSV trace `arrival_s,duration_s[,labels][,project]` of the pool's jobs.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Read the arrival history the function keeps in this group's `forge-scaler:arrivals`
    /// tag (pools with idle_timeout = "adaptive"; about the last 50 arrivals: see the README).
    #[arg(long, value_name = "NAME")]
    pub from_group: Option<String>,
    /// Wall-clock time (RFC 3339) of the trace's first job: hours of the week count from it.
    #[arg(long = "trace-start", alias = "start", value_name = "TIME", default_value = "2026-01-01T00:00:00Z")]
    pub start: DateTime<Utc>,
    /// The p95 queue wait the floors must reach.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub target_p95: Duration,
    /// The Auto Scaling Group named in the output (default: --from-group's, else `ci-agents`).
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// With --from-group: the run time assumed for each job (the tag keeps arrivals only).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub job_duration: Duration,
    /// Jobs one instance runs at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub slots: u32,
    /// Launch to a working agent, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub boot: f64,
    /// The group's MaxSize.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max: u32,
    /// forge-scaler's idle timeout.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub async fn recommend(args: RecommendArgs) -> u8 {
    match run(args).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::BAD_CONFIG
        }
    }
}

async fn run(args: RecommendArgs) -> anyhow::Result<()> {
    if !(args.boot.is_finite() && args.boot >= 0.0) {
        bail!("--boot must be a non-negative number of seconds, got {}", args.boot);
    }
    let (name, jobs, start) = match (&args.trace, &args.from_group) {
        (Some(path), _) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read trace {}", path.display()))?;
            let name = path.file_stem().map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned());
            let trace = Trace::parse(&name, &text)?;
            (name, trace.jobs, args.start)
        }
        (None, Some(group)) => {
            let sdk = forge_scaler::app::aws_sdk_config().await;
            let fleet = forge_scaler::cloud::asg::AsgFleet::new(&sdk);
            let history = recommend::history_from_group(&fleet, group).await?;
            let covered = recommend::hours_covered(&history);
            eprintln!(
                "note: the tag {} of group {group} holds {} arrivals covering {covered} of the week's 168 hours; \
                 floors outside them are 0 for want of data, and each job is taken to run {}. For a whole week \
                 or more, export the pool's job history as a trace and use --trace.",
                forge_scaler::model::tags::ARRIVALS,
                history.arrivals_s.len(),
                humantime::format_duration(args.job_duration),
            );
            let (jobs, start) = recommend::jobs_from_history(&history, args.job_duration);
            (format!("group {group}"), jobs, start)
        }
        (None, None) => unreachable!("clap requires --trace or --from-group"),
    };
    let mut options = Options { idle_timeout: args.idle_timeout, ..Options::default() };
    options.world.slots = args.slots;
    options.world.boot = Duration::from_secs_f64(args.boot);
    options.world.max_instances = args.max;
    options.adaptive.boot = options.world.boot;
    let settings = Settings {
        target_p95: args.target_p95,
        options,
        week_offset_ms: recommend::week_offset_ms(start),
        ..Settings::default()
    };
    let jobs_len = jobs.len();
    let found = tokio::task::spawn_blocking(move || recommend::recommend(&jobs, &settings))
        .await
        .context("the recommendation panicked")??;
    let group = args.group.clone().or(args.from_group.clone()).unwrap_or_else(|| "ci-agents".into());
    let actions = recommend::actions(&found.floors);
    if !found.target_met {
        eprintln!(
            "warning: even the candidate floors give a simulated p95 wait of {:.1} s, above the target {}; \
             these are the candidates",
            found.floored.wait_p95_s,
            humantime::format_duration(args.target_p95)
        );
    }
    if actions.len() > 125 {
        eprintln!("warning: {} scheduled actions; AWS allows 125 per group by default", actions.len());
    }
    match args.format {
        Format::Floors => print!("{}", FloorsFile::new(&found.floors, start, args.target_p95).to_json()),
        Format::Cloudformation => print!("{}", recommend::cloudformation(&actions, &group)),
        Format::Commands => print!("{}", recommend::cli_commands(&actions, &group)),
        Format::Text => {
            print!("{}", summary(&name, jobs_len, start, &args, &found));
            println!("\n# (a) CloudFormation: add to the Resources of the stack that holds the group");
            print!("{}", recommend::cloudformation(&actions, &group));
            println!("\n# (b) AWS CLI");
            print!("{}", recommend::cli_commands(&actions, &group));
        }
    }
    Ok(())
}

fn summary(name: &str, jobs: usize, start: DateTime<Utc>, args: &RecommendArgs, found: &Recommendation) -> String {
    let line = |label: &str, p: &sim::PolicyReport| {
        format!(
            "#   {label:<22} p95 wait {:>7.1} s, idle {:>9.2} instance-h, {:>9.2} instance-h, {} launches\n",
            p.wait_p95_s, p.idle_instance_hours, p.instance_hours, p.launches
        )
    };
    let mut out = format!(
        "# forge-scaler recommend: {name} ({jobs} jobs from {}), target p95 wait {}, slots {}, boot {} s\n",
        start.to_rfc3339(),
        humantime::format_duration(args.target_p95),
        args.slots,
        args.boot
    );
    out.push_str("# simulated (forge-scaler, the same world as `simulate`):\n");
    out.push_str(&line("without floors", &found.plain));
    out.push_str(&line("with these floors", &found.floored));
    out.push_str("# MinSize by hour of the week (UTC):\n");
    for run in recommend::describe_runs(&found.floors).lines() {
        out.push_str(&format!("#   {run}\n"));
    }
    out
}
