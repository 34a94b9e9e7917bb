//! `trace synth`: write a synthetic trace (Poisson arrivals from a rate profile or a
//! constant rate, durations resampled from a trace) as CSV. Thin shell over
//! `forge_scaler::sim::synth`.

use crate::exit;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use forge_scaler::sim::{self, synth, trace::Trace};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// Synthesize a trace, e.g. a year at 300 jobs/hour:
    /// `forge-scaler trace synth --rate-per-hour 300 --days 365 --out year.csv`.
    Synth(SynthArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  forge-scaler trace synth --rate-per-hour 300 --days 365 --out year.csv
  forge-scaler trace synth --profile 5,5,40,300 --step 1h --days 7 --out week.csv")]
pub struct SynthArgs {
    /// A constant arrival rate, in jobs per hour.
    #[arg(long, conflicts_with = "profile")]
    pub rate_per_hour: Option<f64>,
    /// A rate profile in jobs per hour, one value per --step, repeated: a file (one rate
    /// per line, or CSV whose last column is the rate) or an inline list "5,5,40,300,...".
    #[arg(long, value_name = "FILE|LIST")]
    pub profile: Option<String>,
    /// Length of one profile step (e.g. 1h, 5m).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub step: Duration,
    /// Length of the trace in days.
    #[arg(long, default_value_t = 1.0)]
    pub days: f64,
    /// Trace whose job durations are resampled (default: the bundled trace).
    #[arg(long, value_name = "FILE")]
    pub durations_from: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Labels column value.
    #[arg(long, default_value = "linux")]
    pub labels: String,
    /// Project column value.
    #[arg(long, default_value = "synthetic")]
    pub project: String,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn trace(cmd: TraceCommand) -> u8 {
    let TraceCommand::Synth(args) = cmd;
    match synth_cmd(args) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::BAD_CONFIG
        }
    }
}

fn synth_cmd(args: SynthArgs) -> anyhow::Result<()> {
    if !(args.days.is_finite() && args.days > 0.0) {
        bail!("--days must be a positive number, got {}", args.days);
    }
    let profile = match (&args.rate_per_hour, &args.profile) {
        (Some(rate), None) => {
            if !(rate.is_finite() && *rate >= 0.0) {
                bail!("--rate-per-hour must be a non-negative number, got {rate}");
            }
            synth::RateProfile::constant(*rate)
        }
        (None, Some(profile)) => {
            let path = std::path::Path::new(profile);
            let text = if path.is_file() {
                std::fs::read_to_string(path).with_context(|| format!("cannot read profile {}", path.display()))?
            } else {
                profile.clone()
            };
            synth::RateProfile::parse(&text, args.step)?
        }
        _ => bail!("give --rate-per-hour N or --profile FILE|LIST"),
    };
    let durations = match &args.durations_from {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Trace::parse(&path.display().to_string(), &text)?
        }
        None => Trace::parse(sim::BUNDLED_TRACE_NAME, sim::BUNDLED_TRACE)?,
    };
    if args.labels.contains(',') || args.project.contains(',') {
        bail!("--labels and --project cannot contain commas (use ';' between labels)");
    }
    let span = Duration::from_secs_f64(args.days * 86_400.0);
    let trace = synth::synthesize("synthetic", &profile, span, &durations, args.seed)?;
    let csv = trace.to_csv(&args.labels, &args.project);
    match &args.out {
        Some(path) => std::fs::write(path, csv).with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(csv.as_bytes()).context("cannot write to standard output")?,
    }
    eprintln!("wrote {} jobs over {} days", trace.jobs.len(), args.days);
    Ok(())
}
