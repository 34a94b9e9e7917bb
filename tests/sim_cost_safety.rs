//! Cost safety in the simulator: with the function, the forge, its configuration or AWS
//! failing, with a job no agent can take and with a watchdog probe that cannot tell or is
//! stuck on busy, forge-scaler's fleet still returns to MinSize within a stated bound
//! (TESTING.md, "Cost safety (simulator)"), because instances leave by themselves. Every
//! test prints its measured figure (`-- --nocapture`).

use forge_scaler::agent::idle::IdleConfig;
use forge_scaler::sim::engine::{Faults, Measured, Millis, Sim, World};
use forge_scaler::sim::trace::Trace;
use forge_scaler::sim::{make_policy, Options};
use std::sync::atomic::AtomicU64;

const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;
const HOUR: Millis = 60 * MINUTE;
/// The world's boot delay (no jitter in these tests).
const BOOT: Millis = 60 * SECOND;
/// forge-scaler's poll interval: a job is seen within one.
const POLL: Millis = 10 * SECOND;
/// The real watchdog's default `--check-interval` (the simulated one looks exactly when a
/// verdict can change, so this is slack for the real one).
const CHECK_INTERVAL: Millis = 15 * SECOND;

/// Jobs of `duration_s` at each of `arrivals_s`.
fn trace(arrivals_s: &[u64], duration_s: u64) -> Trace {
    let mut csv = String::from("arrival_s,duration_s\n");
    for a in arrivals_s {
        csv.push_str(&format!("{a},{duration_s}\n"));
    }
    Trace::parse("faults", &csv).unwrap()
}

/// Runs forge-scaler (fixed 10 min idle timeout) on `trace` with `faults`; also returns the
/// watchdog settings its instances ran with.
fn run(trace: &Trace, faults: Faults) -> (Measured, IdleConfig) {
    run_policy("forge-scaler", trace, faults)
}

/// Runs the policy `name` on `trace` with `faults` and the simulator's defaults.
fn run_policy(name: &str, trace: &Trace, faults: Faults) -> (Measured, IdleConfig) {
    let options =
        Options { world: World { boot_jitter: 0.0, faults, ..World::default() }, timeline: true, ..Options::default() };
    let mut policy = make_policy(name, trace, &options).unwrap();
    let idle = policy.instance_idle().expect("forge-scaler's instances leave by themselves");
    let config = idle.config.clone();
    let sim = Sim::new(options.world.clone(), &trace.jobs, Some(idle), true);
    (sim.run(policy.as_mut(), &AtomicU64::new(0)), config)
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

/// Asserts the fleet is empty from at most `bound` after `from` up to `until` (within the
/// timeline's resolution) and prints the figure.
fn assert_empty_within(measured: &Measured, trace: &Trace, until: Millis, from: Millis, bound: Millis, what: &str) {
    let bucket = bucket(trace);
    let empty = fleet_empty_from(measured, until, bucket).unwrap_or_else(|| panic!("the fleet never emptied {what}"));
    eprintln!(
        "{what}: fleet at MinSize from {} s: {} s after {} s (bound {} s; timeline resolution {} s)",
        empty / SECOND,
        empty.saturating_sub(from) / SECOND,
        from / SECOND,
        bound / SECOND,
        bucket as f64 / 1000.0
    );
    assert!(
        empty <= from + bound + bucket,
        "{what}: empty from {} s, bound {} s after {} s",
        empty / SECOND,
        bound / SECOND,
        from / SECOND
    );
}

/// When the last job that ended before `before` ended. Jobs of one duration start in
/// arrival order (the queue is FIFO), so the n-th wait is the n-th job's; `ran_s` are the
/// arrivals of the jobs an agent could take, in order, and every one of them ran.
fn last_job_end(measured: &Measured, ran_s: &[u64], duration_s: u64, before: Millis) -> Millis {
    assert_eq!(measured.waits_s.len(), ran_s.len(), "not every job ran");
    let end = |(&arrival, &wait): (&u64, &f32)| arrival * SECOND + (wait * 1000.0) as Millis + duration_s * SECOND;
    ran_s.iter().zip(&measured.waits_s).map(end).filter(|&end| end < before).max().unwrap()
}

fn longest_wait_s(measured: &Measured) -> f32 {
    measured.waits_s.iter().copied().fold(0.0f32, f32::max)
}

#[test]
fn with_the_function_dead_for_hours_the_fleet_still_returns_to_min_size_within_the_idle_timeout() {
    // A job a minute for 20 minutes, then the function is dead (no invocation) for hours.
    let arrivals: Vec<u64> = (0..20).map(|i| i * 60).collect();
    let trace = trace(&arrivals, 30);
    let dead = (25 * MINUTE, 5 * HOUR);
    let (measured, idle) = run(&trace, Faults { ticks_fail: vec![dead], ..Faults::default() });
    let end = last_job_end(&measured, &arrivals, 30, dead.1);
    assert_empty_within(&measured, &trace, dead.1, end, idle.idle_timeout.as_millis() as Millis, "function dead");
    assert_eq!(measured.disrupted_jobs, 0);
}

#[test]
fn with_the_forge_down_the_fleet_returns_to_min_size_and_scales_out_again_when_it_is_back() {
    // A burst, then the forge is down for hours (every tick fails at the forge; no job can
    // be queued or taken meanwhile), then a second burst once it is back.
    let mut arrivals: Vec<u64> = (0..10).map(|i| i * 60).collect();
    arrivals.extend((0..10).map(|i| 3 * 3600 + 5 * 60 + i * 60));
    let trace = trace(&arrivals, 30);
    let down = (12 * MINUTE, 3 * HOUR);
    let (measured, idle) = run(&trace, Faults { ticks_fail: vec![down], ..Faults::default() });
    let end = last_job_end(&measured, &arrivals, 30, down.1);
    assert_empty_within(&measured, &trace, down.1, end, idle.idle_timeout.as_millis() as Millis, "forge down");
    // Back up: the second burst launches as usual (a poll and a boot at most).
    assert_eq!(measured.waits_s.len(), arrivals.len());
    let longest = longest_wait_s(&measured);
    eprintln!("forge down: longest wait {longest} s");
    assert!(longest as Millis * SECOND <= POLL + BOOT, "{longest} s");
    assert_eq!(measured.disrupted_jobs, 0);
}

#[test]
fn with_the_configuration_invalid_jobs_wait_and_the_fleet_still_returns_to_min_size() {
    // Jobs for 10 minutes; then an invalid configuration is deployed (every invocation fails
    // at cold start and scales nothing) while a job waits; it is fixed after 2 hours.
    let mut arrivals: Vec<u64> = (0..10).map(|i| i * 60).collect();
    arrivals.push(30 * 60);
    let trace = trace(&arrivals, 30);
    let invalid = (15 * MINUTE, 2 * HOUR);
    let (measured, idle) = run(&trace, Faults { ticks_fail: vec![invalid], ..Faults::default() });
    let end = last_job_end(&measured, &arrivals, 30, invalid.1);
    assert_empty_within(&measured, &trace, invalid.1, end, idle.idle_timeout.as_millis() as Millis, "config invalid");
    // Slow, not lost: the waiting job counts as demand once the configuration is valid again
    // (age alone never excludes a job) and runs within a poll and a boot.
    assert_eq!(measured.waits_s.len(), arrivals.len());
    let longest = longest_wait_s(&measured) as Millis * SECOND;
    let earliest = invalid.1 - 30 * MINUTE;
    eprintln!(
        "config invalid: the waiting job waited {} s (window closed {} s after it arrived)",
        longest / SECOND,
        earliest / SECOND
    );
    assert!(longest >= earliest && longest <= earliest + POLL + BOOT, "{} s", longest / SECOND);
}

#[test]
fn with_set_desired_throttled_no_launch_happens_and_the_fleet_still_returns_to_min_size() {
    // Jobs for 10 minutes; then AWS refuses SetDesiredCapacity for hours while a job waits.
    let mut arrivals: Vec<u64> = (0..10).map(|i| i * 60).collect();
    arrivals.push(30 * 60);
    let trace = trace(&arrivals, 30);
    let throttled = (15 * MINUTE, 5 * HOUR);
    let (measured, idle) = run(&trace, Faults { set_desired_fails: vec![throttled], ..Faults::default() });
    assert!(measured.rejected_set_desired > 0, "the throttled job never asked for capacity");
    let end = last_job_end(&measured, &arrivals, 30, throttled.1);
    assert_empty_within(&measured, &trace, throttled.1, end, idle.idle_timeout.as_millis() as Millis, "throttled");
    // The waiting job ran once the throttling ended: every job ran.
    assert_eq!(measured.waits_s.len(), arrivals.len());
    let longest_wait = longest_wait_s(&measured);
    assert!(longest_wait as u64 * SECOND >= throttled.1 - 30 * MINUTE, "{longest_wait} s");
}

#[test]
fn a_job_no_agent_can_take_alone_costs_one_launch_and_the_fleet_returns_to_min_size() {
    // One job with a label no agent serves, and nothing else for the 6 hours the run lasts:
    // the launch made for it became ready and did not take it, so until another scale-out it
    // is left out of demand and costs nothing more.
    let arrivals = [0];
    let trace = trace(&arrivals, 30);
    let (measured, idle) = run(&trace, Faults { no_agent_takes_one_in: 1, ..Faults::default() });
    eprintln!("no agent takes it, alone: {} launches in 6 h", measured.launches);
    assert_eq!(measured.launches, 1);
    assert!(measured.waits_s.is_empty(), "the job was dispatched");
    // Its instance boots, stays its idle timeout (it never gets a job) and leaves.
    let bound = POLL + BOOT + idle.idle_timeout.as_millis() as Millis;
    assert_empty_within(&measured, &trace, 5 * HOUR, 0, bound, "no agent takes it, alone");
}

#[test]
fn a_job_no_agent_can_take_costs_at_most_one_launch_per_boot_timeout() {
    // A job with a label no agent serves is queued first and stays pending for ever; real
    // jobs come every 12 minutes for 3 hours, just after the previous instances left, so every
    // one of them is a fresh scale-out after which the stuck job counts as demand again (the
    // worst case for the guard with the default 10 min timeouts).
    let span = 3 * HOUR;
    let real: Vec<u64> = (1..=(span / (12 * MINUTE))).map(|i| i * 12 * 60).collect();
    let mut arrivals = vec![0];
    arrivals.extend(&real);
    let faults = Faults { no_agent_takes_one_in: u32::MAX, ..Faults::default() }; // job 0 only
    let (measured, idle) = run(&trace(&arrivals, 30), faults);
    let (baseline, _) = run(&trace(&real, 30), Faults::default());

    let boot_timeout = idle.boot_timeout.as_millis() as Millis;
    let extra = measured.launches - baseline.launches;
    let bound = span.div_ceil(boot_timeout) + 1;
    eprintln!(
        "no agent takes it: {extra} extra launches in 3 h ({} with it, {} without; bound {bound})",
        measured.launches, baseline.launches
    );
    assert!(extra <= bound, "{extra} extra launches, bound {bound}");
    // It was never dispatched; every other job ran, none disrupted.
    assert_eq!(measured.waits_s.len(), real.len());
    assert_eq!(measured.disrupted_jobs, 0);
    // The fleet is back at MinSize once the last scale-out is boot_timeout old: the stuck job
    // still counts until then, its instance boots and leaves after its idle timeout.
    let last_scale_out = *real.last().unwrap() * SECOND + POLL;
    let bound = boot_timeout + POLL + BOOT + idle.idle_timeout.as_millis() as Millis;
    let run_end = *real.last().unwrap() * SECOND + 5 * HOUR;
    assert_empty_within(&measured, &trace(&arrivals, 30), run_end, last_scale_out, bound, "no agent takes it");
}

#[test]
fn under_the_adaptive_idle_timeout_a_job_no_agent_can_take_still_costs_at_most_one_launch_per_scale_out() {
    // The same stuck job and real jobs every 12 minutes, with the adaptive idle timeout: its
    // instances leave 30 s after they go idle, long before the boot timeout. Before the guard
    // also read "the launched instances came and left", the stuck job was demand again after
    // every departure: a launch every boot + 30 s (337 launches in these 3 hours against 15).
    let span = 3 * HOUR;
    let real: Vec<u64> = (1..=(span / (12 * MINUTE))).map(|i| i * 12 * 60).collect();
    let mut arrivals = vec![0];
    arrivals.extend(&real);
    let faults = Faults { no_agent_takes_one_in: u32::MAX, ..Faults::default() }; // job 0 only
    let (measured, idle) = run_policy("forge-scaler-adaptive", &trace(&arrivals, 30), faults);
    let (baseline, _) = run_policy("forge-scaler-adaptive", &trace(&real, 30), Faults::default());
    let extra = measured.launches.saturating_sub(baseline.launches);
    let bound = span.div_ceil(idle.boot_timeout.as_millis() as Millis) + 1;
    eprintln!(
        "adaptive, no agent takes it: {extra} extra launches in 3 h ({} with it, {} without; bound {bound})",
        measured.launches, baseline.launches
    );
    assert!(extra <= bound, "{extra} extra launches, bound {bound}");
    assert_eq!(measured.waits_s.len(), real.len());
    assert_eq!(measured.disrupted_jobs, 0);
}

#[test]
fn with_every_probe_unknown_the_fleet_returns_to_min_size_within_unknown_grace_and_idle_timeout() {
    // The watchdog's probe cannot tell (the agent hung, its port closed) from the first boot
    // on, while a job comes every minute for 20 minutes.
    let arrivals: Vec<u64> = (0..20).map(|i| i * 60).collect();
    let trace = trace(&arrivals, 30);
    let unknown = (0, 5 * HOUR);
    let (measured, idle) = run(&trace, Faults { probe_unknown: vec![unknown], ..Faults::default() });
    let end = last_job_end(&measured, &arrivals, 30, unknown.1);
    let bound = (idle.unknown_grace + idle.idle_timeout).as_millis() as Millis + CHECK_INTERVAL;
    assert_empty_within(&measured, &trace, unknown.1, end, bound, "every probe unknown");
    assert_eq!(measured.waits_s.len(), arrivals.len());
    assert_eq!(measured.disrupted_jobs, 0);
}

#[test]
fn with_a_probe_stuck_busy_the_fleet_returns_to_min_size_within_max_busy() {
    // The probe answers busy whatever the agent does (a probe script that always exits 0)
    // for 25 hours, while a job comes every minute for 20 minutes; the next job comes at 25.5 h.
    let mut arrivals: Vec<u64> = (0..20).map(|i| i * 60).collect();
    arrivals.push(25 * 3600 + 30 * 60);
    let trace = trace(&arrivals, 30);
    let stuck = (0, 25 * HOUR);
    let (measured, idle) = run(&trace, Faults { probe_busy: vec![stuck], ..Faults::default() });
    // Each instance's first look is busy when it is ready (by the last job's boot at the
    // latest) and it leaves max_busy later, without one idle look.
    let last_ready = arrivals[19] * SECOND + POLL + BOOT;
    let max_busy = idle.max_busy.as_millis() as Millis;
    assert_empty_within(&measured, &trace, stuck.1, last_ready, max_busy + CHECK_INTERVAL, "probe stuck busy");
    // Not before: the watchdog trusts a busy probe up to max_busy.
    let empty = fleet_empty_from(&measured, stuck.1, bucket(&trace)).unwrap();
    assert!(empty >= max_busy, "left after {} s, before max_busy", empty / SECOND);
    assert_eq!(measured.waits_s.len(), arrivals.len());
    assert_eq!(measured.disrupted_jobs, 0);
}
