//! Event skipping changes no result: forge-scaler's policies skip the looks that could only
//! repeat their last one (`step::step_with_hold`), and every policy measures exactly the same with
//! and without skipping, on traces and settings chosen to reach every hold and wake path.

use forge_scaler::sim::engine::{Billing, Faults, Measured, Millis, Sim, World};
use forge_scaler::sim::synth::{synthesize, RateProfile};
use forge_scaler::sim::trace::{Trace, TraceJob};
use forge_scaler::sim::{make_policy, Options, BUNDLED_TRACE, BUNDLED_TRACE_NAME, POLICY_NAMES};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;
const HOUR: Millis = 60 * MINUTE;

fn measure(trace: &Trace, options: &Options, name: &str) -> Measured {
    let mut policy = make_policy(name, trace, options).unwrap();
    let sim = Sim::new(options.world.clone(), &trace.jobs, policy.instance_idle(), options.timeline);
    sim.run(policy.as_mut(), &AtomicU64::new(0))
}

/// Every policy, skipping and not: the same costs, waits, reactions, launches, disruptions,
/// peaks and refused calls, to the millisecond and the job.
fn assert_skipping_changes_nothing(trace: &Trace, options: &Options) {
    for name in POLICY_NAMES {
        let skipped = measure(trace, &Options { skip_events: true, ..options.clone() }, name);
        let every = measure(trace, &Options { skip_events: false, ..options.clone() }, name);
        let summary = |m: &Measured| {
            (m.instance_ms, m.idle_ms, m.launches, m.disrupted_jobs, m.peak_instances, m.rejected_set_desired)
        };
        let case = format!("{name} on {} ({} jobs)", trace.name, trace.jobs.len());
        assert_eq!(summary(&skipped), summary(&every), "{case}");
        assert_eq!(skipped.waits_s.len(), every.waits_s.len(), "{case}");
        let first_wait = skipped.waits_s.iter().zip(&every.waits_s).position(|(a, b)| a != b);
        assert_eq!(first_wait, None, "{case}: waits differ from this job on");
        assert_eq!(skipped.reactions_s, every.reactions_s, "{case}");
        assert!(skipped == every, "{case}");
    }
}

fn quiet() -> Options {
    Options { world: World { boot_jitter: 0.0, ..World::default() }, ..Options::default() }
}

fn bundled() -> Trace {
    Trace::parse(BUNDLED_TRACE_NAME, BUNDLED_TRACE).unwrap()
}

/// Bursts of hundreds of jobs an hour, quiet hours, a trickle; short, hour-long and
/// two-hour jobs; arrival times to the millisecond (several in one second).
fn bursts_and_long_jobs(seed: u64) -> Trace {
    let durations = Trace {
        name: "durations".into(),
        jobs: [5, 40, 90, 300, 1_200, 3_600, 7_200]
            .iter()
            .map(|&s| TraceJob { arrival_ms: 0, duration_ms: s * SECOND })
            .collect(),
    };
    let profile = RateProfile::parse("0 0 900 0 40 0 0 300 5 0 0 0", Duration::from_secs(600)).unwrap();
    synthesize("bursts", &profile, Duration::from_secs(12 * 3600), &durations, seed).unwrap()
}

/// Jobs hours apart, a few arriving in the same second as a poll, just after it.
fn sparse() -> Trace {
    let mut jobs = Vec::new();
    for hour in 0..30u64 {
        let at = hour * 2 * HOUR + (hour % 7) * 10 * SECOND;
        jobs.push(TraceJob { arrival_ms: at + hour % 3 * 300, duration_ms: (60 + hour * 37 % 900) * SECOND });
        if hour % 4 == 0 {
            jobs.push(TraceJob { arrival_ms: at + 10 * SECOND + 1, duration_ms: 30 * SECOND });
        }
    }
    Trace { name: "sparse".into(), jobs }
}

#[test]
fn skipping_changes_nothing_on_the_bundled_trace() {
    assert_skipping_changes_nothing(&bundled(), &Options::default());
    assert_skipping_changes_nothing(&bundled(), &Options { webhooks: true, ..quiet() });
}

#[test]
fn skipping_changes_nothing_on_bursts_and_long_jobs() {
    for seed in 1..=3 {
        assert_skipping_changes_nothing(&bursts_and_long_jobs(seed), &Options::default());
    }
    let trace = bursts_and_long_jobs(4);
    assert_skipping_changes_nothing(&trace, &Options { webhooks: true, ..Options::default() });
    let mut capped = Options { spare_ratio: 0.5, spare_max: Some(3), ..Options::default() };
    capped.world.slots = 3;
    capped.world.max_instances = 6;
    assert_skipping_changes_nothing(&trace, &capped);
}

#[test]
fn skipping_changes_nothing_with_a_floor_hourly_billing_or_adaptive_settings() {
    let trace = bursts_and_long_jobs(5);
    let mut floor = quiet();
    floor.world.min_instances = 2;
    assert_skipping_changes_nothing(&trace, &floor);
    let mut hourly = Options::default();
    hourly.world.billing = Billing::Hourly;
    assert_skipping_changes_nothing(&trace, &hourly);
    let mut eager = Options { idle_timeout: Duration::from_secs(60), ..Options::default() };
    eager.adaptive.floor = Duration::ZERO;
    eager.adaptive.wait_weight = 0.5;
    assert_skipping_changes_nothing(&trace, &eager);
    assert_skipping_changes_nothing(&sparse(), &eager);
    assert_skipping_changes_nothing(&sparse(), &Options { webhooks: true, ..Options::default() });
}

#[test]
fn skipping_changes_nothing_with_faults() {
    let trace = bursts_and_long_jobs(6);
    let faults = Faults {
        ticks_fail: vec![(25 * MINUTE, 40 * MINUTE + 5 * SECOND), (4 * HOUR, 5 * HOUR)],
        set_desired_fails: vec![(70 * MINUTE, 80 * MINUTE), (7 * HOUR + 1, 8 * HOUR)],
        ..Faults::default()
    };
    let mut options = Options::default();
    options.world.faults = faults;
    assert_skipping_changes_nothing(&trace, &options);
    assert_skipping_changes_nothing(&trace, &Options { webhooks: true, ..options });
}

#[test]
fn skipping_changes_nothing_with_stuck_jobs_and_faulty_probes() {
    // Jobs no agent takes (the unschedulable guard's exclusions change with time alone),
    // probes that answer unknown, then stuck on busy.
    let trace = bursts_and_long_jobs(7);
    let faults = Faults {
        probe_unknown: vec![(30 * MINUTE, 2 * HOUR)],
        probe_busy: vec![(3 * HOUR, 4 * HOUR)],
        no_agent_takes_one_in: 17,
        ..Faults::default()
    };
    let mut options = Options::default();
    options.world.faults = faults;
    assert_skipping_changes_nothing(&trace, &options);
}
