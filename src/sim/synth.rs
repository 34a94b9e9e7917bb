//! Synthetic traces: arrivals from a rate profile (jobs per hour, one value per step,
//! repeated) as a Poisson process, durations resampled from a given trace. Seeded and
//! deterministic; pure (the caller reads and writes files).

use super::trace::{Trace, TraceJob};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum SynthError {
    #[error("rate profile: empty (give rates in jobs per hour, e.g. \"10,20,300\")")]
    EmptyProfile,
    #[error("rate profile, item {index}: {value:?} is not a non-negative number of jobs per hour")]
    BadRate { index: usize, value: String },
    #[error("profile step must be at least one second")]
    BadStep,
    #[error("the duration source trace has no jobs")]
    NoDurations,
    #[error("{jobs} jobs would be generated, more than the limit of {limit}")]
    TooMany { jobs: u64, limit: u64 },
}

/// Rates in jobs per hour, one per `step`, repeated over the whole span.
#[derive(Debug, Clone, PartialEq)]
pub struct RateProfile {
    pub per_hour: Vec<f64>,
    pub step: Duration,
}

impl RateProfile {
    pub fn constant(per_hour: f64) -> Self {
        RateProfile { per_hour: vec![per_hour], step: Duration::from_secs(3600) }
    }

    /// Parses rates separated by commas, whitespace or newlines (`#` starts a comment;
    /// a CSV with a header is fine: the last field of each line is the rate).
    pub fn parse(text: &str, step: Duration) -> Result<Self, SynthError> {
        if step < Duration::from_secs(1) {
            return Err(SynthError::BadStep);
        }
        let lines: Vec<&str> =
            text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()).collect();
        let multi_line = lines.len() > 1;
        let mut per_hour = Vec::new();
        for (line_index, line) in lines.iter().enumerate() {
            // One rate per line (the last CSV field), or one line of rates.
            let items: Vec<&str> = if multi_line {
                vec![line.rsplit(',').next().unwrap_or("").trim()]
            } else {
                line.split([',', ' ', '\t']).map(str::trim).filter(|s| !s.is_empty()).collect()
            };
            let is_header = multi_line && line_index == 0 && items.iter().all(|i| i.parse::<f64>().is_err());
            if is_header {
                continue;
            }
            for item in items {
                match item.parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => per_hour.push(v),
                    _ => return Err(SynthError::BadRate { index: per_hour.len() + 1, value: item.into() }),
                }
            }
        }
        if per_hour.is_empty() {
            return Err(SynthError::EmptyProfile);
        }
        Ok(RateProfile { per_hour, step })
    }
}

/// Most jobs one synthesis may produce (about 30 years at 300 jobs/hour).
pub const MAX_JOBS: u64 = 100_000_000;

/// Synthesizes `span` of arrivals from `profile`, each with a duration drawn from `durations`.
pub fn synthesize(
    name: &str,
    profile: &RateProfile,
    span: Duration,
    durations: &Trace,
    seed: u64,
) -> Result<Trace, SynthError> {
    if durations.jobs.is_empty() {
        return Err(SynthError::NoDurations);
    }
    if profile.per_hour.is_empty() {
        return Err(SynthError::EmptyProfile);
    }
    let step_s = profile.step.as_secs_f64();
    let span_s = span.as_secs_f64();
    let mean: f64 = profile.per_hour.iter().sum::<f64>() / profile.per_hour.len() as f64;
    let expected = (mean * span_s / 3600.0) as u64;
    if expected > MAX_JOBS {
        return Err(SynthError::TooMany { jobs: expected, limit: MAX_JOBS });
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut jobs = Vec::with_capacity(expected as usize + 16);
    let mut t = 0.0f64;
    while t < span_s {
        let step_index = (t / step_s) as usize;
        let step_end = ((step_index + 1) as f64 * step_s).min(span_s);
        let rate_per_s = profile.per_hour[step_index % profile.per_hour.len()] / 3600.0;
        if rate_per_s <= 0.0 {
            t = step_end;
            continue;
        }
        // Exponential gap; past the step's end, restart there (memoryless).
        let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let next = t - u.ln() / rate_per_s;
        if next >= step_end {
            t = step_end;
            continue;
        }
        t = next;
        let source = durations.jobs[rng.random_range(0..durations.jobs.len())];
        jobs.push(TraceJob { arrival_ms: (t * 1000.0) as u64, duration_ms: source.duration_ms });
    }
    Ok(Trace { name: name.to_string(), jobs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn durations() -> Trace {
        Trace::parse("d", "arrival_s,duration_s\n0,100\n1,200\n2,300\n").unwrap()
    }

    #[test]
    fn same_seed_same_trace_other_seed_other_trace() {
        let p = RateProfile::constant(300.0);
        let a = synthesize("a", &p, Duration::from_secs(86_400), &durations(), 7).unwrap();
        let b = synthesize("a", &p, Duration::from_secs(86_400), &durations(), 7).unwrap();
        let c = synthesize("a", &p, Duration::from_secs(86_400), &durations(), 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn matches_the_rate_within_tolerance() {
        let p = RateProfile::constant(300.0);
        let t = synthesize("a", &p, Duration::from_secs(10 * 86_400), &durations(), 1).unwrap();
        let expected = 300.0 * 240.0;
        let got = t.jobs.len() as f64;
        assert!((got - expected).abs() / expected < 0.02, "{got} jobs, expected about {expected}");
        assert!(t.jobs.iter().all(|j| [100_000, 200_000, 300_000].contains(&j.duration_ms)));
        assert!(t.jobs.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms));
    }

    #[test]
    fn profile_steps_shape_the_arrivals() {
        // 0 jobs/h in odd hours, 600 in even ones.
        let p = RateProfile::parse("600,0", Duration::from_secs(3600)).unwrap();
        let t = synthesize("a", &p, Duration::from_secs(48 * 3600), &durations(), 3).unwrap();
        assert!(t.jobs.iter().all(|j| (j.arrival_ms / 3_600_000) % 2 == 0));
        let n = t.jobs.len() as f64;
        assert!((n - 24.0 * 600.0).abs() / (24.0 * 600.0) < 0.05, "{n}");
    }

    #[test]
    fn profile_parse_errors_name_the_item() {
        let err = RateProfile::parse("10, x, 3", Duration::from_secs(300)).unwrap_err();
        assert_eq!(err, SynthError::BadRate { index: 2, value: "x".into() });
        assert_eq!(RateProfile::parse("", Duration::from_secs(300)).unwrap_err(), SynthError::EmptyProfile);
        let csv = RateProfile::parse("hour,jobs_per_hour\n0,10\n1,20\n", Duration::from_secs(3600)).unwrap();
        assert_eq!(csv.per_hour, vec![10.0, 20.0]);
    }
}
