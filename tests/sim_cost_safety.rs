//! Cost safety in the simulator: with the function, the forge or AWS failing, forge-scaler's
//! fleet still returns to MinSize within a stated bound (TESTING.md, "Cost safety
//! (simulator)"), because instances leave by themselves.

use forge_scaler::sim::engine::{Faults, Measured, Millis, Sim, World};
use forge_scaler::sim::trace::Trace;
use forge_scaler::sim::{make_policy, Options};
use std::sync::atomic::AtomicU64;

const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;
const HOUR: Millis = 60 * MINUTE;
/// forge-scaler's default idle timeout.
const IDLE_TIMEOUT: Millis = 10 * MINUTE;

/// Jobs of `duration_s` at each of `arrivals_s`.
fn trace(arrivals_s: &[u64], duration_s: u64) -> Trace {
    let mut csv = String::from("arrival_s,duration_s\n");
    for a in arrivals_s {
        csv.push_str(&format!("{a},{duration_s}\n"));
    }
    Trace::parse("faults", &csv).unwrap()
}

fn run(trace: &Trace, faults: Faults) -> Measured {
    let options =
        Options { world: World { boot_jitter: 0.0, faults, ..World::default() }, timeline: true, ..Options::default() };
    let mut policy = make_policy("forge-scaler", trace, &options).unwrap();
    let sim = Sim::new(options.world.clone(), &trace.jobs, policy.instance_idle(), true);
    sim.run(policy.as_mut(), &AtomicU64::new(0))
}

/// The first time (ms) from which the timeline shows no instance (desired 0) up to `until`.
/// A run stops once every job ran and no instance is left, so a timeline that ends before
/// `until` ends with an empty fleet within one bucket of its last sample.
fn fleet_empty_from(measured: &Measured, until: Millis, bucket: Millis) -> Option<Millis> {
    let last = measured.timeline.last().map(|s| (s.at_s * 1000.0) as Millis)?;
    if last + bucket < until {
        return Some(last + bucket);
    }
    let mut empty_from = None;
    for sample in &measured.timeline {
        let at = (sample.at_s * 1000.0) as Millis;
        if at >= until {
            break;
        }
        if sample.desired == 0 && sample.in_service == 0 {
            empty_from.get_or_insert(at);
        } else {
            empty_from = None;
        }
    }
    empty_from
}

/// The timeline's resolution for `trace` (the engine keeps 1,500 buckets).
fn bucket(trace: &Trace) -> Millis {
    ((trace.jobs.last().unwrap().arrival_ms + HOUR) / 1500).max(SECOND)
}

#[test]
fn with_the_function_dead_for_hours_the_fleet_still_returns_to_min_size_within_the_idle_timeout() {
    // A job a minute for 20 minutes, then the function (or the forge, or its
    // configuration: each fails every tick before it acts) is dead for hours.
    let arrivals: Vec<u64> = (0..20).map(|i| i * 60).collect();
    let trace = trace(&arrivals, 30);
    let dead = (25 * MINUTE, 5 * HOUR);
    let measured = run(&trace, Faults { ticks_fail: vec![dead], ..Faults::default() });
    let last_job_end = 19 * MINUTE + 30 * SECOND + 75 * SECOND; // arrival + boot bound + job
    let empty = fleet_empty_from(&measured, dead.1, bucket(&trace))
        .expect("the fleet never emptied while the function was dead");
    eprintln!("fleet empty from {} s (last job end {} s)", empty / SECOND, last_job_end / SECOND);
    assert!(
        empty <= last_job_end + IDLE_TIMEOUT + 2 * bucket(&trace),
        "empty from {} s, bound {} s",
        empty / SECOND,
        (last_job_end + IDLE_TIMEOUT) / SECOND
    );
    assert_eq!(measured.disrupted_jobs, 0);
}

#[test]
fn with_set_desired_throttled_no_launch_happens_and_the_fleet_still_returns_to_min_size() {
    // Jobs for 10 minutes; then AWS refuses SetDesiredCapacity for hours while a job waits.
    let mut arrivals: Vec<u64> = (0..10).map(|i| i * 60).collect();
    arrivals.push(30 * 60);
    let trace = trace(&arrivals, 30);
    let throttled = (15 * MINUTE, 5 * HOUR);
    let measured = run(&trace, Faults { set_desired_fails: vec![throttled], ..Faults::default() });
    assert!(measured.rejected_set_desired > 0, "the throttled job never asked for capacity");
    let last_job_end = 9 * MINUTE + 30 * SECOND + 75 * SECOND;
    let empty =
        fleet_empty_from(&measured, throttled.1, bucket(&trace)).expect("the fleet never emptied while throttled");
    eprintln!("fleet empty from {} s (last job end {} s)", empty / SECOND, last_job_end / SECOND);
    assert!(
        empty <= last_job_end + IDLE_TIMEOUT + 2 * bucket(&trace),
        "empty from {} s, bound {} s",
        empty / SECOND,
        (last_job_end + IDLE_TIMEOUT) / SECOND
    );
    // The waiting job ran once the throttling ended: every job ran.
    assert_eq!(measured.waits_s.len(), arrivals.len());
    let longest_wait = measured.waits_s.iter().copied().fold(0.0f32, f32::max);
    assert!(longest_wait as u64 * SECOND >= throttled.1 - 30 * MINUTE, "{longest_wait} s");
}
