//! The simulator: a discrete-event replay of CI traces against a simulated forge queue and
//! Auto Scaling Group, driving the real planner and the real agent idle logic, and the
//! models of the other autoscalers on the same capacity model.
//!
//! - [`trace`]: the CSV trace format and its statistics.
//! - [`engine`]: the world (queue, group, instances, billing) and the event loop.
//! - [`policies`]: forge-scaler and the baselines.
//! - [`synth`]: synthetic traces from a rate profile.
//! - [`timeline`]: per time bucket, means and maxima of the queue and the group, over a window.
//! - [`plot`]: the SVG timeline and the cost-against-wait chart.
//! - [`warm`]: the group's warm pool of stopped instances.
//!
//! [`run`] replays one trace under every policy (one thread each) and reports.

pub mod engine;
pub mod plot;
pub mod policies;
pub mod synth;
pub mod timeline;
pub mod trace;
pub mod warm;

use crate::adaptive::AdaptiveSettings;
use engine::{Autoscaler, Measured, Sample, World};
use policies::{Buildkite, Drone, ForgeScaler, Gitlab, StaticFleet, Woodpecker};
use serde::Serialize;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use trace::Trace;
use warm::WarmPoolConfig;

/// The trace bundled into the binary (`simulate` with no `--trace`).
pub const BUNDLED_TRACE_NAME: &str = "travis-jackson-databind";
pub const BUNDLED_TRACE: &str = include_str!("../../assets/traces/travis-jackson-databind.csv");

/// Every policy, in report order.
pub const POLICY_NAMES: [&str; 8] =
    ["static", "buildkite", "woodpecker", "drone", "gitlab", "forge-scaler", "forge-scaler-adaptive", "vespene"];

/// The policies a warm pool (`Options::warm_pool`) applies to; the others stay cold.
pub const WARM_POOL_POLICIES: [&str; 2] = ["forge-scaler", "forge-scaler-adaptive"];

/// The baselines forge-scaler is compared against (static is a reference only).
pub const OTHER_AUTOSCALERS: [&str; 4] = ["buildkite", "woodpecker", "drone", "gitlab"];

/// What to simulate besides the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub world: World,
    /// forge-scaler's fixed idle timeout (its default: 10 min).
    pub idle_timeout: Duration,
    pub adaptive: AdaptiveSettings,
    /// GitLab's idle_count (jobs of warm capacity kept).
    pub gitlab_idle_count: u32,
    /// forge-scaler also ticks one second after each arrival (signed forge webhooks).
    pub webhooks: bool,
    /// forge-scaler's proportional spare and its cap (`spare_ratio`, `spare_max`).
    pub spare_ratio: f64,
    pub spare_max: Option<u32>,
    /// A warm pool for forge-scaler's groups ([`WARM_POOL_POLICIES`]); none by default.
    pub warm_pool: Option<WarmPoolConfig>,
    /// Policies to run (names from [`POLICY_NAMES`]); empty: all.
    pub only: Vec<String>,
    /// Keep a timeline for the plot.
    pub timeline: bool,
    /// The part of the run the timeline covers (default: all of it).
    pub window: Option<timeline::Window>,
    /// forge-scaler's policies skip looks that could only repeat their last one (event
    /// skipping: cost grows with events, not ticks). Off only to check it changes nothing.
    pub skip_events: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            world: World::default(),
            idle_timeout: Duration::from_secs(600),
            adaptive: AdaptiveSettings::default(),
            gitlab_idle_count: 0,
            webhooks: false,
            spare_ratio: 0.0,
            spare_max: None,
            warm_pool: None,
            only: Vec::new(),
            timeline: false,
            window: None,
            skip_events: true,
        }
    }
}

/// Cost floors no autoscaler can beat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bounds {
    /// Sum of job time / slots: every slot busy, zero idle.
    pub work_instance_hours: f64,
    /// A fresh instance per job: wait = boot, cost = boot + job (billed) per job.
    pub reactive_instance_hours: f64,
}

/// One policy's results (the `simulate --json` fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyReport {
    pub policy: String,
    pub instance_hours: f64,
    pub idle_instance_hours: f64,
    pub wait_p50_s: f64,
    pub wait_p95_s: f64,
    pub wait_p99_s: f64,
    pub wait_max_s: f64,
    pub reaction_p95_s: f64,
    pub launches: u64,
    pub disrupted_jobs: u64,
    pub peak_instances: u32,
    /// Scale-outs served from the warm pool (`launches` counts them too).
    pub warm_launches: u64,
    /// Launches into the warm pool (pre-initialisations).
    pub pool_launches: u64,
    /// Billed running time of the pool's pre-initialisations.
    pub prewarm_hours: f64,
    /// Instance-hours stopped in the warm pool.
    pub stopped_hours: f64,
    /// What it all costs in running instance-hours: instance_hours + prewarm_hours +
    /// stopped_cost x stopped_hours (= instance_hours without a warm pool).
    pub cost_instance_hours: f64,
    #[serde(skip)]
    pub timeline: Vec<Sample>,
    #[serde(skip)]
    pub jobs_run: usize,
}

/// The whole comparison (the `simulate --json` document).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub trace: String,
    pub jobs: usize,
    pub slots: u32,
    pub boot_s: f64,
    pub bounds: Bounds,
    /// The warm pool forge-scaler's policies ran with, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_pool: Option<WarmPoolReport>,
    pub policies: Vec<PolicyReport>,
}

/// The warm pool's settings, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarmPoolReport {
    pub size: u32,
    pub start_s: f64,
    pub stopped_cost: f64,
    pub policies: Vec<String>,
}

impl Report {
    pub fn policy(&self, name: &str) -> Option<&PolicyReport> {
        self.policies.iter().find(|p| p.policy == name)
    }
}

/// Builds the named policy for this trace and world.
pub fn make_policy(name: &str, trace: &Trace, options: &Options) -> Option<Box<dyn Autoscaler>> {
    let world = &options.world;
    let (slots, max) = (world.slots.max(1), world.max_instances);
    Some(match name {
        "static" => {
            let p95 = trace.concurrency_at_arrival_quantile(0.95).max(1);
            Box::new(StaticFleet { instances: p95.div_ceil(slots).min(max) })
        }
        "buildkite" => Box::new(Buildkite::default()),
        "woodpecker" => Box::new(Woodpecker::default()),
        "drone" => Box::new(Drone::default()),
        "gitlab" => Box::new(Gitlab::new(options.gitlab_idle_count)),
        "forge-scaler" | "forge-scaler-adaptive" => {
            let scaler = if name == "forge-scaler" {
                ForgeScaler::fixed(slots, max, options.idle_timeout)
            } else {
                let mut settings = options.adaptive.clone();
                if let Some(pool) = &options.warm_pool {
                    settings.boot = pool.equivalent_boot(settings.boot, settings.wait_weight);
                }
                ForgeScaler::adaptive(slots, max, settings)
            };
            let scaler = scaler
                .spare_ratio(options.spare_ratio, options.spare_max)
                .with_webhooks(options.webhooks)
                .with_skipping(options.skip_events);
            match world.billing {
                engine::Billing::Hourly => Box::new(scaler.billed_hourly()),
                engine::Billing::PerSecond => Box::new(scaler),
            }
        }
        "vespene" => Box::new(ForgeScaler::vespene(slots, max).with_skipping(options.skip_events)),
        _ => return None,
    })
}

/// Nearest-rank quantile (0..=1) of `values` (reordered in place); 0 for none.
pub fn quantile(values: &mut [f32], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    *values.select_nth_unstable_by(rank, f32::total_cmp).1 as f64
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn summarize(name: &str, mut m: Measured, stopped_cost: f64) -> PolicyReport {
    let hours = |ms: u128| round3(ms as f64 / 3_600_000.0);
    let cost_ms = m.instance_ms as f64 + m.warm.prewarm_ms as f64 + stopped_cost * m.warm.stopped_ms as f64;
    PolicyReport {
        policy: name.to_string(),
        instance_hours: hours(m.instance_ms),
        idle_instance_hours: hours(m.idle_ms),
        wait_p50_s: round3(quantile(&mut m.waits_s, 0.50)),
        wait_p95_s: round3(quantile(&mut m.waits_s, 0.95)),
        wait_p99_s: round3(quantile(&mut m.waits_s, 0.99)),
        wait_max_s: round3(quantile(&mut m.waits_s, 1.0)),
        reaction_p95_s: round3(quantile(&mut m.reactions_s, 0.95)),
        launches: m.launches,
        disrupted_jobs: m.disrupted_jobs,
        peak_instances: m.peak_instances,
        warm_launches: m.warm.warm_starts,
        pool_launches: m.warm.pool_launches,
        prewarm_hours: hours(m.warm.prewarm_ms),
        stopped_hours: hours(m.warm.stopped_ms),
        cost_instance_hours: round3(cost_ms / 3_600_000.0),
        jobs_run: m.waits_s.len(),
        timeline: m.timeline,
    }
}

/// The two reference bounds for this trace and world.
pub fn bounds(trace: &Trace, world: &World) -> Bounds {
    let slots = world.slots.max(1) as f64;
    let boot_ms = world.boot.as_millis() as u64;
    let reactive: u128 = trace.jobs.iter().map(|j| world.billed_ms(boot_ms + j.duration_ms) as u128).sum();
    Bounds {
        work_instance_hours: round3(trace.work_ms() as f64 / slots / 3_600_000.0),
        reactive_instance_hours: round3(reactive as f64 / 3_600_000.0),
    }
}

/// Replays `trace` under every selected policy, one thread each. `progress` counts
/// replayed arrivals over all policies (total: jobs x policies).
pub fn run(trace: &Trace, options: &Options, progress: &AtomicU64) -> Result<Report, String> {
    let names: Vec<&str> = if options.only.is_empty() {
        POLICY_NAMES.to_vec()
    } else {
        let mut names = Vec::new();
        for wanted in &options.only {
            let Some(name) = POLICY_NAMES.iter().find(|n| **n == wanted.as_str()) else {
                return Err(format!("unknown policy {wanted:?} (known: {})", POLICY_NAMES.join(", ")));
            };
            names.push(*name);
        }
        names
    };
    let policies: Vec<PolicyReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|&name| {
                scope.spawn(move || {
                    let mut policy = make_policy(name, trace, options).expect("names come from POLICY_NAMES");
                    let mut world = options.world.clone();
                    world.warm_pool = options.warm_pool.clone().filter(|_| WARM_POOL_POLICIES.contains(&name));
                    let stopped_cost = world.warm_pool.as_ref().map_or(0.0, |pool| pool.stopped_cost);
                    let mut sim = engine::Sim::new(world, &trace.jobs, policy.instance_idle(), options.timeline);
                    if let Some(window) = options.window {
                        sim = sim.timeline_window(window);
                    }
                    summarize(name, sim.run(policy.as_mut(), progress), stopped_cost)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a policy thread panicked")).collect()
    });
    Ok(Report {
        trace: trace.name.clone(),
        jobs: trace.jobs.len(),
        slots: options.world.slots,
        boot_s: options.world.boot.as_secs_f64(),
        bounds: bounds(trace, &options.world),
        warm_pool: options.warm_pool.as_ref().filter(|pool| pool.size > 0).map(|pool| WarmPoolReport {
            size: pool.size,
            start_s: pool.start.as_secs_f64(),
            stopped_cost: pool.stopped_cost,
            policies: WARM_POOL_POLICIES.iter().map(|p| p.to_string()).collect(),
        }),
        policies,
    })
}

/// forge-scaler's fixed idle timeouts the cost-against-wait chart sweeps.
pub const SWEEP_IDLE_TIMEOUTS_S: [u64; 9] = [0, 30, 60, 120, 300, 600, 1200, 1800, 3600];

/// forge-scaler (fixed idle timeout) once per timeout of `timeouts`, each labelled with its
/// timeout (`"5m"`), one thread each; the other options as given.
pub fn idle_timeout_sweep(trace: &Trace, options: &Options, timeouts: &[Duration]) -> Vec<(String, PolicyReport)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = timeouts
            .iter()
            .map(|&timeout| {
                scope.spawn(move || {
                    let options = Options {
                        idle_timeout: timeout,
                        only: vec!["forge-scaler".into()],
                        timeline: false,
                        ..options.clone()
                    };
                    let report = run(trace, &options, &AtomicU64::new(0)).expect("forge-scaler is a known policy");
                    let label = humantime::format_duration(timeout).to_string();
                    (label, report.policies.into_iter().next().expect("one policy was run"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a sweep thread panicked")).collect()
    })
}

/// Indices of the points (p95 wait, idle hours) that no other point beats on both (lower or
/// equal on both, lower on one), by increasing wait: the frontier of the trade-off.
pub fn frontier(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0).then(points[a].1.total_cmp(&points[b].1)));
    let mut best = Vec::new();
    let mut lowest = f64::INFINITY;
    for i in order {
        if points[i].1 < lowest {
            lowest = points[i].1;
            best.push(i);
        }
    }
    best
}

/// The report as a table (the CLI's default output).
pub fn table(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {} ({} jobs), slots {}, boot {} s; bounds: work {:.2} instance-h, reactive {:.2} instance-h",
        report.trace,
        report.jobs,
        report.slots,
        report.boot_s,
        report.bounds.work_instance_hours,
        report.bounds.reactive_instance_hours
    );
    if let Some(pool) = &report.warm_pool {
        let _ = writeln!(
            out,
            "warm pool for {}: {} stopped instances, start {} s, stopped at {} of the running price; \
             cost-h = inst-h + pre-init hours + stopped hours x that price; warm = launches served from the pool",
            pool.policies.join(", "),
            pool.size,
            pool.start_s,
            pool.stopped_cost
        );
    }
    let warm = report.warm_pool.is_some();
    let _ = write!(
        out,
        "{:<22} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>9} {:>5}",
        "policy", "inst-h", "idle-h", "p50 s", "p95 s", "p99 s", "max s", "react95 s", "launches", "disrupted", "peak"
    );
    let _ = if warm { writeln!(out, " {:>10} {:>8} {:>8}", "cost-h", "warm", "pre-init") } else { writeln!(out) };
    for p in &report.policies {
        let _ = write!(
            out,
            "{:<22} {:>10.2} {:>10.2} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>8} {:>9} {:>5}",
            p.policy,
            p.instance_hours,
            p.idle_instance_hours,
            p.wait_p50_s,
            p.wait_p95_s,
            p.wait_p99_s,
            p.wait_max_s,
            p.reaction_p95_s,
            p.launches,
            p.disrupted_jobs,
            p.peak_instances
        );
        let _ = if warm {
            writeln!(out, " {:>10.2} {:>8} {:>8}", p.cost_instance_hours, p.warm_launches, p.pool_launches)
        } else {
            writeln!(out)
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_one(policy: &str, csv: &str, slots: u32, max: u32) -> PolicyReport {
        let trace = Trace::parse("t", csv).unwrap();
        let mut options = Options { only: vec![policy.into()], ..Options::default() };
        options.world = World { slots, max_instances: max, boot_jitter: 0.0, ..World::default() };
        let report = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        report.policies.into_iter().next().unwrap()
    }

    fn bundled(options: Options) -> PolicyReport {
        let trace = Trace::parse(BUNDLED_TRACE_NAME, BUNDLED_TRACE).unwrap();
        let report = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        report.policies.into_iter().next().unwrap()
    }

    #[test]
    fn the_frontier_keeps_the_points_nothing_beats_on_both_wait_and_idle_hours() {
        // (wait, idle): b beats a on both; c is faster than b but costs more; d is beaten by b.
        let points = [(60.0, 10.0), (50.0, 5.0), (10.0, 20.0), (70.0, 6.0), (50.0, 5.0)];
        assert_eq!(frontier(&points), vec![2, 1]);
        assert_eq!(frontier(&[]), Vec::<usize>::new());
    }

    #[test]
    fn a_longer_idle_timeout_costs_more_idle_hours_and_never_more_wait_in_the_sweep() {
        let trace = Trace::parse(BUNDLED_TRACE_NAME, BUNDLED_TRACE).unwrap();
        let timeouts = [Duration::from_secs(0), Duration::from_secs(600), Duration::from_secs(3600)];
        let sweep = idle_timeout_sweep(&trace, &Options::default(), &timeouts);
        let labels: Vec<&str> = sweep.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["0s", "10m", "1h"]);
        for pair in sweep.windows(2) {
            assert!(pair[1].1.idle_instance_hours > pair[0].1.idle_instance_hours, "{pair:?}");
            assert!(pair[1].1.wait_p95_s <= pair[0].1.wait_p95_s, "{pair:?}");
        }
        // The 10-minute point is the default forge-scaler run.
        let plain = bundled(Options { only: vec!["forge-scaler".into()], ..Options::default() });
        assert_eq!(sweep[1].1, plain);
    }

    #[test]
    fn a_window_zooms_the_timeline_and_its_means_match_the_run() {
        let trace = Trace::parse(BUNDLED_TRACE_NAME, BUNDLED_TRACE).unwrap();
        let day = 86_400_000;
        let window = timeline::Window { from: 30 * day, to: 37 * day };
        let options =
            Options { only: vec!["forge-scaler".into()], timeline: true, window: Some(window), ..Options::default() };
        let report = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        let t = &report.policies[0].timeline;
        assert_eq!(t.len() as u64, timeline::BUCKETS);
        assert_eq!(t[0].at_s, 30.0 * 86_400.0);
        assert!(t.iter().all(|s| s.mean_in_service as f64 <= s.in_service as f64 + 1e-6));
        // Instance-hours within the window, from the means, are at most the run's whole.
        let bucket_h = (t[1].at_s - t[0].at_s) / 3600.0;
        let in_window: f64 = t.iter().map(|s| s.mean_in_service as f64 * bucket_h).sum();
        assert!(in_window > 0.0 && in_window <= report.policies[0].instance_hours, "{in_window}");
    }

    #[test]
    fn both_charts_render_as_svg_with_every_policy_named() {
        let trace = Trace::parse(BUNDLED_TRACE_NAME, BUNDLED_TRACE).unwrap();
        let options =
            Options { only: vec!["buildkite".into(), "forge-scaler".into()], timeline: true, ..Options::default() };
        let report = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        let timeline = plot::render(&report).unwrap();
        assert!(timeline.starts_with("<svg") && timeline.contains("buildkite") && timeline.contains("in-service"));
        let sweep =
            idle_timeout_sweep(&trace, &Options::default(), &[Duration::from_secs(60), Duration::from_secs(600)]);
        let chart = plot::render_cost_wait(&report, &sweep).unwrap();
        assert!(chart.starts_with("<svg") && chart.contains("buildkite") && chart.contains("10m"));
    }

    #[test]
    fn webhooks_make_forge_scaler_react_within_a_second_and_change_nothing_else() {
        let only = vec!["forge-scaler".to_string()];
        let polled = bundled(Options { only: only.clone(), ..Options::default() });
        let hooked = bundled(Options { only, webhooks: true, ..Options::default() });
        assert!(polled.reaction_p95_s >= 5.0, "{polled:?}");
        assert!(hooked.reaction_p95_s <= 1.0, "{hooked:?}");
        assert!(hooked.wait_p95_s < polled.wait_p95_s);
        assert_eq!(hooked.launches, polled.launches, "earlier, not more");
        assert_eq!(hooked.jobs_run, polled.jobs_run);
    }

    #[test]
    fn a_spare_ratio_buys_wait_with_instances() {
        let only = vec!["forge-scaler".to_string()];
        let plain = bundled(Options { only: only.clone(), ..Options::default() });
        let spared = bundled(Options { only, spare_ratio: 0.5, ..Options::default() });
        assert!(spared.instance_hours > plain.instance_hours);
        assert!(spared.wait_p95_s <= plain.wait_p95_s);
    }

    #[test]
    fn one_job_waits_the_boot_and_pays_boot_job_and_idle_timeout() {
        let p = run_one("forge-scaler", "arrival_s,duration_s\n0,100\n", 1, 1000);
        assert_eq!(p.wait_max_s, 60.0);
        assert_eq!(p.launches, 1);
        // 60 s boot + 100 s job + 600 s idle.
        assert_eq!(p.instance_hours, round3(760.0 / 3600.0));
        assert_eq!(p.idle_instance_hours, round3(660.0 / 3600.0));
        assert_eq!(p.reaction_p95_s, 0.0);
    }

    #[test]
    fn a_burst_launches_ceil_n_over_slots() {
        let csv = "arrival_s,duration_s\n".to_string() + &"0,100\n".repeat(7);
        let p = run_one("forge-scaler", &csv, 3, 1000);
        assert_eq!(p.launches, 3);
        assert_eq!(p.peak_instances, 3);
        assert_eq!(p.wait_max_s, 60.0);
    }

    #[test]
    fn a_gap_longer_than_the_idle_timeout_launches_again() {
        let p = run_one("forge-scaler", "arrival_s,duration_s\n0,100\n2000,100\n", 1, 1000);
        assert_eq!(p.launches, 2);
        assert_eq!(p.wait_p50_s, 60.0);
        let p = run_one("forge-scaler", "arrival_s,duration_s\n0,100\n400,100\n", 1, 1000);
        assert_eq!(p.launches, 1);
        assert_eq!(p.wait_p50_s, 0.0);
        // One instance from 0 to 500 + 600.
        assert_eq!(p.instance_hours, round3(1100.0 / 3600.0));
    }

    #[test]
    fn max_instances_caps_a_burst() {
        let csv = "arrival_s,duration_s\n".to_string() + &"0,100\n".repeat(10);
        let p = run_one("forge-scaler", &csv, 1, 4);
        assert_eq!(p.launches, 4);
        assert_eq!(p.peak_instances, 4);
        // Jobs 9 and 10 run in the third round: 60 + 2 * 100.
        assert_eq!(p.wait_max_s, 260.0);
    }

    #[test]
    fn short_lived_instance_is_billed_the_minimum() {
        let mut world = World { boot: Duration::from_secs(5), ..World::default() };
        assert_eq!(world.billed_ms(30_000), 60_000);
        world.billing = engine::Billing::Hourly;
        assert_eq!(world.billed_ms(3_700_000), 7_200_000);
    }

    #[test]
    fn reaction_is_arrival_to_the_covering_scale_out() {
        // A job at 5 s is seen by the 10 s tick.
        let p = run_one("forge-scaler", "arrival_s,duration_s\n5,100\n", 1, 1000);
        assert_eq!(p.reaction_p95_s, 5.0);
        assert_eq!(p.wait_max_s, 65.0);
    }

    #[test]
    fn every_policy_runs_every_job_and_disrupts_none() {
        let csv = "arrival_s,duration_s\n0,100\n0,300\n30,50\n900,20\n910,700\n5000,60\n5001,60\n5002,60\n";
        for name in POLICY_NAMES {
            let p = run_one(name, csv, 2, 1000);
            assert_eq!(p.jobs_run, 8, "{name}");
            assert_eq!(p.disrupted_jobs, 0, "{name}");
            assert!(p.instance_hours * 3600.0 >= 1350.0 / 2.0, "{name}: {}", p.instance_hours);
        }
    }

    #[test]
    fn buildkite_cooldown_delays_the_second_scale_out() {
        // Second job 60 s after the first, while the first instance is busy: the 300 s
        // cooldown holds it until 300 s, then boot.
        let p = run_one("buildkite", "arrival_s,duration_s\n0,1000\n60,100\n", 1, 1000);
        assert_eq!(p.wait_max_s, 300.0 - 60.0 + 60.0);
    }

    #[test]
    fn a_buildkite_agent_leaves_its_idle_period_plus_its_sleep_after_its_last_job() {
        // One 100 s job at 0 s: the 0 s poll raises desired to 1 (no cooldown yet); boot 60 s,
        // the job runs 60..160 s; the agent disconnects after 600 s idle (760 s), sleeps 10 s
        // and terminates with decrement at 770 s. Billed 770 s, idle 60 + 610 = 670 s.
        let p = run_one("buildkite", "arrival_s,duration_s\n0,100\n", 1, 1000);
        assert_eq!((p.launches, p.wait_max_s), (1, 60.0));
        assert_eq!(p.instance_hours, round3(770.0 / 3600.0));
        assert_eq!(p.idle_instance_hours, round3(670.0 / 3600.0));
    }

    #[test]
    fn woodpecker_overshoots_while_agents_boot() {
        // Boot longer than the reconcile interval: booting agents add no workers, so the
        // next reconcile adds another agent for the same job.
        let trace = Trace::parse("t", "arrival_s,duration_s\n0,100\n").unwrap();
        let mut options = Options { only: vec!["woodpecker".into()], ..Options::default() };
        options.world = World { boot: Duration::from_secs(150), boot_jitter: 0.0, ..World::default() };
        let report = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        assert_eq!(report.policies[0].launches, 3);
    }

    #[test]
    fn static_fleet_is_sized_at_p95_concurrency() {
        let csv = "arrival_s,duration_s\n".to_string() + &"0,100\n".repeat(4);
        let p = run_one("static", &csv, 1, 1000);
        assert_eq!(p.launches, 4);
        assert_eq!(p.wait_max_s, 0.0);
    }

    #[test]
    fn same_seed_same_report() {
        let trace = Trace::parse("t", BUNDLED_TRACE).unwrap();
        let trace = Trace { jobs: trace.jobs[..300].to_vec(), ..trace };
        let options = Options { only: vec!["forge-scaler".into(), "woodpecker".into()], ..Options::default() };
        let a = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        let b = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn hourly_billing_keeps_forge_scaler_instances_to_the_end_of_the_paid_hour() {
        let trace = Trace::parse("t", "arrival_s,duration_s\n0,100\n1500,100\n").unwrap();
        let mut options = Options { only: vec!["forge-scaler".into()], ..Options::default() };
        options.world = World { boot_jitter: 0.0, billing: engine::Billing::Hourly, ..World::default() };
        let report = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        // The instance stays through the paid hour, so the second job finds it warm.
        assert_eq!(report.policies[0].launches, 1);
        assert_eq!(report.policies[0].instance_hours, 1.0);
        assert_eq!(report.policies[0].wait_p50_s, 0.0);
    }

    /// forge-scaler alone, boots of exactly 60 s, with a warm pool of `size` (start 20 s).
    fn run_warm(csv: &str, size: u32, stopped_cost: f64) -> PolicyReport {
        let trace = Trace::parse("t", csv).unwrap();
        let mut options = Options { only: vec!["forge-scaler".into()], ..Options::default() };
        options.world = World { boot_jitter: 0.0, ..World::default() };
        options.warm_pool = Some(WarmPoolConfig::new(size, 20.0, stopped_cost, 1000).unwrap());
        let report = run(&trace, &options, &AtomicU64::new(0)).unwrap();
        report.policies.into_iter().next().unwrap()
    }

    #[test]
    fn a_job_arriving_while_the_pool_still_pre_initialises_gets_a_cold_launch() {
        // The pool's instance launches at 0 s and is stopped and ready only at 60 s.
        let p = run_warm("arrival_s,duration_s\n0,100\n", 1, 0.05);
        assert_eq!((p.launches, p.warm_launches, p.pool_launches), (1, 0, 1));
        assert_eq!(p.wait_max_s, 60.0);
        // The group's instance as without a pool: 60 s boot + 100 s job + 600 s idle.
        assert_eq!(p.instance_hours, round3(760.0 / 3600.0));
        // Its pre-initialisation (60 s) is billed as running; it is stopped from 60 s to the
        // last job's end at 160 s.
        assert_eq!(p.prewarm_hours, round3(60.0 / 3600.0));
        assert_eq!(p.stopped_hours, round3(100.0 / 3600.0));
        assert_eq!(p.cost_instance_hours, round3((760.0 + 60.0 + 0.05 * 100.0) / 3600.0));
    }

    /// One job at 1,000 s, a pool of one (pre-initialised 0..60 s, stopped from 60 s):
    /// - the 1,000 s tick takes the stopped instance: ready at 1,020 s, so the job waits 20 s;
    ///   it runs to 1,120 s and the instance leaves 600 s later: 720 s billed, 620 s idle;
    /// - the pool refills at 1,000 s: a second pre-initialisation (60 s billed), stopped from
    ///   1,060 s;
    /// - stopped: 60..1,000 s and 1,060..1,120 s (the last job's end): 1,000 s.
    #[test]
    fn a_stopped_instance_serves_a_job_after_the_warm_start_and_the_refill_is_billed() {
        let p = run_warm("arrival_s,duration_s\n1000,100\n", 1, 0.05);
        assert_eq!((p.launches, p.warm_launches, p.pool_launches), (1, 1, 2));
        assert_eq!(p.wait_max_s, 20.0);
        assert_eq!(p.instance_hours, round3(720.0 / 3600.0));
        assert_eq!(p.idle_instance_hours, round3(620.0 / 3600.0));
        assert_eq!(p.prewarm_hours, round3(120.0 / 3600.0));
        assert_eq!(p.stopped_hours, round3(1000.0 / 3600.0));
        assert_eq!(p.cost_instance_hours, round3((720.0 + 120.0 + 0.05 * 1000.0) / 3600.0));
    }

    #[test]
    fn stopped_hours_are_priced_at_the_stopped_cost() {
        let csv = "arrival_s,duration_s\n1000,100\n";
        let free = run_warm(csv, 1, 0.0);
        let full = run_warm(csv, 1, 1.0);
        assert_eq!(free.cost_instance_hours, round3((720.0 + 120.0) / 3600.0));
        assert_eq!(full.cost_instance_hours, round3((720.0 + 120.0 + 1000.0) / 3600.0));
        assert_eq!((free.wait_max_s, free.instance_hours), (full.wait_max_s, full.instance_hours));
    }

    #[test]
    fn a_second_job_while_the_refill_pre_initialises_gets_a_cold_launch() {
        // 1,000 s: the stopped instance (ready 1,020 s); 1,001 s: the refill is still
        // pre-initialising (to 1,060 s), so the 1,010 s tick launches cold (ready 1,070 s).
        let p = run_warm("arrival_s,duration_s\n1000,100\n1001,100\n", 1, 0.05);
        assert_eq!((p.launches, p.warm_launches, p.pool_launches), (2, 1, 2));
        assert_eq!(p.wait_p50_s, 20.0);
        assert_eq!(p.wait_max_s, 69.0);
    }

    #[test]
    fn a_warm_pool_applies_to_forge_scaler_only_and_a_slow_boot_waits_less_with_it() {
        let slow = World { boot: Duration::from_secs(300), ..World::default() };
        let only = vec!["forge-scaler".to_string(), "buildkite".to_string()];
        let cold = Options { world: slow.clone(), only: only.clone(), ..Options::default() };
        let warm = Options {
            warm_pool: Some(WarmPoolConfig::new(2, 20.0, 0.05, 1000).unwrap()),
            world: slow,
            only,
            ..Options::default()
        };
        let trace = Trace::parse(BUNDLED_TRACE_NAME, BUNDLED_TRACE).unwrap();
        let cold = run(&trace, &cold, &AtomicU64::new(0)).unwrap();
        let warm = run(&trace, &warm, &AtomicU64::new(0)).unwrap();
        assert_eq!(cold.policy("buildkite"), warm.policy("buildkite"), "peers stay cold");
        let (cold, warm) = (cold.policy("forge-scaler").unwrap(), warm.policy("forge-scaler").unwrap());
        assert_eq!((cold.warm_launches, cold.cost_instance_hours), (0, cold.instance_hours));
        assert!(warm.warm_launches > warm.launches / 2, "{warm:?}");
        assert!(warm.wait_p50_s < cold.wait_p50_s / 2.0, "{warm:?} against {cold:?}");
        assert!(warm.cost_instance_hours > warm.instance_hours);
    }

    #[test]
    fn unknown_policy_is_an_error() {
        let trace = Trace::parse("t", "arrival_s,duration_s\n0,1\n").unwrap();
        let options = Options { only: vec!["nope".into()], ..Options::default() };
        let err = run(&trace, &options, &AtomicU64::new(0)).unwrap_err();
        assert!(err.contains("unknown policy \"nope\""), "{err}");
    }
}
