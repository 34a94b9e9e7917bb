//! The planner: a pure function from a pool's policy and observation at an instant to the
//! desired capacity and the reasons for it. No I/O, no clock, no logging; it never lowers
//! desired capacity (instances remove themselves).

use crate::model::{Group, Observation, Plan, Reason};
use crate::policy::{Formula, Policy};
use chrono::{DateTime, Utc};

/// Plans one pool. `now` is a parameter so the simulator can drive a virtual clock.
pub fn plan(policy: &Policy, obs: &Observation, now: DateTime<Utc>) -> Plan {
    let queue = &obs.queue;
    let group = &obs.group;
    let mut reasons = Vec::new();

    let left_out = unschedulable(policy, obs, now);
    let pending = queue.pending - left_out.iter().map(excluded).sum::<u32>().min(queue.pending);
    reasons.extend(left_out);
    let running = queue.running;
    let target = target(policy, group, pending, running, queue.waiting, Some(&mut reasons));

    if target <= group.desired {
        reasons.push(Reason::Enough { desired: group.desired, target });
        return Plan { desired: group.desired, target, reasons };
    }

    if let Some(last) = group.last_scale_out {
        let cooldown = chrono::Duration::from_std(policy.scale_out_cooldown).unwrap_or(chrono::Duration::MAX);
        let until = last.checked_add_signed(cooldown).unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now < until {
            let remaining_s = (until - now).num_seconds().max(0) as u64;
            reasons.push(Reason::Cooldown { remaining_s: remaining_s.max(1) });
            return Plan { desired: group.desired, target, reasons };
        }
    }

    let wanted = target - group.desired;
    let step = match policy.max_step {
        Some(max_step) if wanted > max_step => {
            reasons.push(Reason::MaxStep { step: max_step, wanted });
            max_step
        }
        _ => wanted,
    };
    let desired = group.desired + step;
    reasons.push(Reason::Raise { from: group.desired, to: desired });
    Plan { desired, target, reasons }
}

/// The target instance count for `pending` (counted) and `running` jobs: the formula, the
/// deadlock guard, then the group's bounds (MinSize, the ceiling). The planner's arithmetic
/// in one place: [`plan`] calls it with its reasons, [`hold`] without.
fn target(
    policy: &Policy,
    group: &Group,
    pending: u32,
    running: u32,
    waiting: u32,
    mut reasons: Option<&mut Vec<Reason>>,
) -> u32 {
    let mut say = |reason: Reason| {
        if let Some(reasons) = reasons.as_deref_mut() {
            reasons.push(reason);
        }
    };
    let demand = pending as u64 + running as u64;
    let slots = policy.slots.max(1);

    let mut target: u64 = match &policy.formula {
        Formula::Default => {
            let needed = demand.div_ceil(slots as u64);
            say(Reason::Demand { pending, running, slots, needed: saturate(needed) });
            let mut target = needed;
            if demand > 0 && policy.spare > 0 {
                target += policy.spare as u64;
                say(Reason::Spare { spare: policy.spare });
            }
            let proportional = proportional_spare(policy, needed);
            if demand > 0 && proportional > 0 {
                target += proportional as u64;
                say(Reason::ProportionalSpare { ratio: policy.spare_ratio, spare: proportional });
            }
            target
        }
        Formula::Vespene { queued_weight, running_weight, multiplier, excess } => {
            let raw = (pending as f64 * queued_weight + running as f64 * running_weight) * multiplier + excess;
            let target = if raw.is_finite() && raw > 0.0 { raw.ceil().min(u32::MAX as f64) as u64 } else { 0 };
            say(Reason::Weighted { pending, running, target: saturate(target) });
            target
        }
    };

    if demand == 0 && waiting > 0 && group.desired == 0 && target == 0 {
        target = 1;
        say(Reason::DeadlockGuard { waiting });
    }

    let cap = policy.max_instances.map_or(group.max, |m| m.min(group.max));
    let ceiling = group.min.max(cap) as u64;
    if target < group.min as u64 {
        target = group.min as u64;
        say(Reason::RaisedToMin { min: group.min });
    }
    if target > ceiling {
        say(Reason::CappedAt { ceiling: saturate(ceiling), wanted: saturate(target) });
        target = ceiling;
    }
    saturate(target)
}

/// How far a plan that raises nothing keeps raising nothing: the planner's own answer, so
/// a caller that would only repeat it (the simulator between events) may skip it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// No raise while pending + running (as observed, before the unschedulable guard) stays
    /// at most this, for the same policy, group (min, max, desired, in-service, booting,
    /// last scale-out) and waiting count, at any later time and whatever the jobs' ages.
    pub demand_up_to: u32,
}

/// The [`Hold`] of `plan`, made by [`plan`] from `obs`; None when it raises, or when only
/// something time can end (a cooldown, the unschedulable guard leaving jobs out) keeps it
/// from raising. Why time cannot end it otherwise: the guard only ever leaves jobs out of
/// demand and the target only grows with demand, so no raise at the observed demand
/// means none at any lower counted demand; a cooldown only ever holds a raise back.
/// `None` too when the formula's target can fall as demand grows (negative Vespene weights).
pub fn hold(policy: &Policy, obs: &Observation, plan: &Plan) -> Option<Hold> {
    let (queue, group) = (&obs.queue, &obs.group);
    if plan.raises(group) {
        return None;
    }
    if let Formula::Vespene { queued_weight, running_weight, multiplier, .. } = &policy.formula {
        let grows = |w: &f64| (w * multiplier).is_nan() || w * multiplier >= 0.0;
        if !(grows(queued_weight) && grows(running_weight)) {
            return None;
        }
    }
    // The target at demand `d`, however it splits into pending and running (the target is
    // linear in each, so its largest value is at one end).
    let worst = |d: u32| {
        let all_pending = target(policy, group, d, 0, queue.waiting, None);
        let all_running = target(policy, group, 0, d, queue.waiting, None);
        all_pending.max(all_running)
    };
    let fits = |d: u32| worst(d) <= group.desired;
    let observed = queue.pending.saturating_add(queue.running);
    if !fits(0) || !fits(observed) {
        return None;
    }
    // The largest demand that still fits: double, then halve the gap.
    let (mut lo, mut hi) = (observed, None::<u32>);
    while hi.is_none() {
        let next = lo.saturating_mul(2).max(lo.saturating_add(1));
        if next == lo {
            break; // u32::MAX fits
        }
        if fits(next) {
            lo = next;
        } else {
            hi = Some(next);
        }
    }
    if let Some(mut hi) = hi {
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    Some(Hold { demand_up_to: lo })
}

/// The unschedulable guard: which pending jobs wait for something other than capacity.
/// A job is left out of demand only when capacity that could have taken it stood idle
/// while it waited, never for its age alone (after an outage, or behind a full MaxSize,
/// old jobs are real demand, and a backlog with no instances must launch):
/// - older than `unschedulable_after` while ready slots of the pool stand idle now; or
/// - created before the last scale-out, which set desired to `D`, and still pending while
///   fewer than `D x slots` jobs run, either `boot_timeout` after it, or once nothing is
///   booting and the group holds fewer than `D` (the instances that launch brought up have
///   left, and instances leave only when idle): that launch had room for it and no agent
///   took it. Until the next scale-out, such a job costs nothing more, so one job no agent
///   takes costs at most one launch per scale-out, and without other jobs one per
///   `boot + boot_timeout`, however short the idle timeout (an adaptive 30 s one included).
///
/// Jobs of unknown age (the forge gave no creation time) always count.
fn unschedulable(policy: &Policy, obs: &Observation, now: DateTime<Utc>) -> Vec<Reason> {
    let (queue, group) = (&obs.queue, &obs.group);
    let slots = policy.slots.max(1) as u64;
    let id = |i: usize| queue.pending_ids.get(i).cloned();
    let mut reasons = Vec::new();

    let idle_slots = (group.in_service as u64 * slots).saturating_sub(queue.running as u64);
    let too_old = policy.unschedulable_after.as_secs();
    let mut taken = vec![false; queue.pending_ages_s.len()];
    if idle_slots > 0 {
        let old: Vec<usize> = (0..taken.len()).filter(|&i| queue.pending_ages_s[i] > too_old).collect();
        if !old.is_empty() {
            old.iter().for_each(|&i| taken[i] = true);
            reasons.push(Reason::Unschedulable {
                jobs: old.len() as u32,
                older_than_s: too_old,
                idle_slots: saturate(idle_slots),
                ids: old.iter().filter_map(|&i| id(i)).collect(),
            });
        }
    }

    if let (Some(last), Some(to)) = (group.last_scale_out, group.last_scale_out_to) {
        let since_s = (now - last).num_seconds();
        let room = (queue.running as u64) < to as u64 * slots;
        let timed_out = since_s >= 0 && since_s as u64 >= policy.boot_timeout.as_secs();
        let came_and_left = since_s >= 0 && group.booting == 0 && group.desired < to;
        if (timed_out || came_and_left) && room {
            let before: Vec<usize> =
                (0..taken.len()).filter(|&i| !taken[i] && queue.pending_ages_s[i] >= since_s as u64).collect();
            if !before.is_empty() {
                reasons.push(Reason::LaunchDidNotHelp {
                    jobs: before.len() as u32,
                    to,
                    launched_s_ago: since_s as u64,
                    ids: before.iter().filter_map(|&i| id(i)).collect(),
                });
            }
        }
    }
    reasons
}

/// GitLab's `scale_factor` with `scale_factor_limit`: `ceil(needed x spare_ratio)` extra
/// instances, at most `spare_max`. A ratio that is not a finite number >= 0 (possible only in
/// a hand-written observation; config refuses it) adds nothing.
fn proportional_spare(policy: &Policy, needed: u64) -> u32 {
    let ratio = policy.spare_ratio;
    if !ratio.is_finite() || ratio <= 0.0 {
        return 0;
    }
    let extra = saturate((needed as f64 * ratio).ceil().min(u32::MAX as f64) as u64);
    policy.spare_max.map_or(extra, |max| extra.min(max))
}

fn excluded(reason: &Reason) -> u32 {
    match reason {
        Reason::Unschedulable { jobs, .. } | Reason::LaunchDidNotHelp { jobs, .. } => *jobs,
        _ => 0,
    }
}

fn saturate(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, Queue};
    use proptest::prelude::*;
    use std::time::Duration;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    /// Test builder: `Obs::new().pending(7).desired(1).max(10)`.
    #[derive(Clone)]
    struct Obs(Observation);
    impl Obs {
        fn new() -> Self {
            Obs(Observation { queue: Queue::default(), group: Group { min: 0, max: 10, ..Group::default() } })
        }
        fn pending(mut self, n: u32) -> Self {
            self.0.queue.pending = n;
            self
        }
        fn running(mut self, n: u32) -> Self {
            self.0.queue.running = n;
            self
        }
        fn waiting(mut self, n: u32) -> Self {
            self.0.queue.waiting = n;
            self
        }
        fn ages(mut self, ages: &[u64]) -> Self {
            self.0.queue.pending_ages_s = ages.to_vec();
            self
        }
        fn desired(mut self, n: u32) -> Self {
            self.0.group.desired = n;
            self
        }
        fn min(mut self, n: u32) -> Self {
            self.0.group.min = n;
            self
        }
        fn max(mut self, n: u32) -> Self {
            self.0.group.max = n;
            self
        }
        fn last_scale_out_secs_ago(mut self, s: i64) -> Self {
            self.0.group.last_scale_out = Some(now() - chrono::Duration::seconds(s));
            self
        }
        fn plan(&self, p: &Policy) -> Plan {
            plan(p, &self.0, now())
        }
    }

    fn slots(n: u32) -> Policy {
        Policy { slots: n, ..Policy::default() }
    }

    #[test]
    fn seven_pending_two_slots_from_one_gives_four() {
        let p = Obs::new().pending(7).desired(1).max(10).plan(&slots(2));
        assert_eq!(p.desired, 4);
        assert!(p.reasons.contains(&Reason::Raise { from: 1, to: 4 }));
    }

    #[test]
    fn empty_queue_keeps_desired() {
        let p = Obs::new().desired(3).plan(&slots(1));
        assert_eq!(p.desired, 3);
        assert!(matches!(p.reasons.last(), Some(Reason::Enough { .. })));
    }

    #[test]
    fn running_jobs_count_as_demand() {
        assert_eq!(Obs::new().pending(1).running(3).plan(&slots(2)).desired, 2);
    }

    #[test]
    fn spare_only_while_demand() {
        let p = Policy { spare: 2, ..Policy::default() };
        assert_eq!(Obs::new().pending(1).plan(&p).desired, 3);
        assert_eq!(Obs::new().plan(&p).desired, 0);
    }

    #[test]
    fn spare_ratio_adds_in_proportion_and_spare_max_caps_it() {
        let p = Policy { spare_ratio: 0.5, ..Policy::default() };
        let plan = Obs::new().pending(5).max(20).plan(&p);
        assert_eq!(plan.desired, 8, "5 needed + ceil(2.5)");
        assert!(plan.reasons.contains(&Reason::ProportionalSpare { ratio: 0.5, spare: 3 }));
        let capped = Policy { spare_ratio: 0.5, spare_max: Some(1), ..Policy::default() };
        assert_eq!(Obs::new().pending(5).max(20).plan(&capped).desired, 6);
        assert_eq!(Obs::new().max(20).plan(&p).desired, 0, "no demand, no spare");
        let nan = Policy { spare_ratio: f64::NAN, ..Policy::default() };
        assert_eq!(Obs::new().pending(5).max(20).plan(&nan).desired, 5);
    }

    #[test]
    fn clamped_to_group_max() {
        let p = Obs::new().pending(50).max(5).plan(&slots(1));
        assert_eq!(p.desired, 5);
        assert!(p.reasons.iter().any(|r| matches!(r, Reason::CappedAt { ceiling: 5, wanted: 50 })));
    }

    #[test]
    fn max_instances_caps_below_group_max() {
        let p = Policy { max_instances: Some(3), ..Policy::default() };
        assert_eq!(Obs::new().pending(9).max(10).plan(&p).desired, 3);
    }

    #[test]
    fn max_instances_below_min_does_not_panic_and_keeps_min() {
        let p = Policy { max_instances: Some(1), ..Policy::default() };
        assert_eq!(Obs::new().pending(9).min(2).max(10).plan(&p).desired, 2);
    }

    #[test]
    fn raised_to_min_when_below() {
        let p = Obs::new().min(2).desired(0).plan(&slots(1));
        assert_eq!(p.desired, 2);
    }

    #[test]
    fn max_step_limits_one_tick() {
        let p = Policy { max_step: Some(2), ..Policy::default() };
        let plan = Obs::new().pending(9).desired(1).plan(&p);
        assert_eq!(plan.desired, 3);
        assert_eq!(plan.target, 9);
    }

    #[test]
    fn cooldown_from_tag_blocks_scale_out() {
        let p = Policy { scale_out_cooldown: Duration::from_secs(300), ..Policy::default() };
        let plan = Obs::new().pending(4).desired(1).last_scale_out_secs_ago(100).plan(&p);
        assert_eq!(plan.desired, 1);
        assert!(plan.reasons.contains(&Reason::Cooldown { remaining_s: 200 }));
        let plan = Obs::new().pending(4).desired(1).last_scale_out_secs_ago(301).plan(&p);
        assert_eq!(plan.desired, 4);
    }

    #[test]
    fn zero_cooldown_ignores_recent_scale_out() {
        let plan = Obs::new().pending(4).last_scale_out_secs_ago(1).plan(&slots(1));
        assert_eq!(plan.desired, 4);
    }

    #[test]
    fn deadlock_guard_starts_one_instance_woodpecker_4125() {
        let plan = Obs::new().waiting(3).desired(0).plan(&slots(1));
        assert_eq!(plan.desired, 1);
        assert!(plan.reasons.contains(&Reason::DeadlockGuard { waiting: 3 }));
    }

    #[test]
    fn deadlock_guard_not_needed_when_an_instance_exists() {
        assert_eq!(Obs::new().waiting(3).desired(1).plan(&slots(1)).desired, 1);
    }

    #[test]
    fn deadlock_guard_respects_max_zero() {
        assert_eq!(Obs::new().waiting(3).max(0).plan(&slots(1)).desired, 0);
    }

    #[test]
    fn old_jobs_beside_idle_slots_are_not_demand() {
        // 3 pending, two of them 2 hours old, and one ready instance doing nothing: the
        // old ones are not taken by the idle slot, so only the fresh one counts.
        let mut obs = Obs::new().pending(3).ages(&[7200, 7200, 5]).desired(1);
        obs.0.group.in_service = 1;
        let plan = obs.plan(&slots(1));
        assert_eq!(plan.desired, 1);
        assert!(plan
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::Unschedulable { jobs: 2, older_than_s: 1800, idle_slots: 1, .. })));
    }

    #[test]
    fn an_old_backlog_with_no_instances_launches_after_an_outage() {
        // Seven jobs waited 31 minutes while the function (or the forge) was down, MinSize
        // 0, nothing running: the age rule alone used to plan 0 here, forever.
        let plan = Obs::new().pending(7).ages(&[1860; 7]).plan(&slots(1));
        assert_eq!(plan.desired, 7);
        assert_eq!(plan.left_out(), 0);
    }

    #[test]
    fn a_backlog_waiting_behind_busy_instances_at_max_size_still_counts() {
        // At MaxSize 4, every slot busy, 6 jobs queued an hour behind them since the last
        // scale-out to 4: once MaxSize goes up, all of them are demand.
        let mut obs = Obs::new().pending(6).running(4).ages(&[3600; 6]).desired(4).max(4);
        obs.0.group.in_service = 4;
        obs.0.group.last_scale_out = Some(now() - chrono::Duration::seconds(3000));
        obs.0.group.last_scale_out_to = Some(4);
        assert_eq!(obs.plan(&slots(1)).left_out(), 0);
        let raised = obs.max(20).plan(&slots(1));
        assert_eq!(raised.desired, 10);
    }

    #[test]
    fn a_job_no_launch_could_serve_is_left_out_after_the_boot_timeout() {
        // A launch to 1 was made for the job 11 minutes ago; the instance came, idled and
        // left (desired 0 again); the job still waits: no second launch.
        let mut obs = Obs::new().pending(1).ages(&[700]);
        obs.0.group.last_scale_out = Some(now() - chrono::Duration::seconds(660));
        obs.0.group.last_scale_out_to = Some(1);
        obs.0.queue.pending_ids = vec!["42".into()];
        let plan = obs.plan(&slots(1));
        assert_eq!(plan.desired, 0);
        assert!(plan.reasons.iter().any(|r| matches!(r, Reason::LaunchDidNotHelp { jobs: 1, to: 1, .. })));
        assert!(plan.reason_strings().iter().any(|r| r.contains("(42)")));
        // Within the boot timeout, while the instance it launched is still booting or up,
        // that launch may still serve it: it counts.
        obs.0.group.last_scale_out = Some(now() - chrono::Duration::seconds(300));
        obs.0.group.desired = 1;
        obs.0.group.booting = 1;
        assert_eq!(obs.plan(&slots(1)).left_out(), 0);
        obs.0.group.booting = 0;
        obs.0.group.in_service = 1;
        assert_eq!(obs.plan(&slots(1)).left_out(), 0, "up, not yet idle past unschedulable_after");
    }

    #[test]
    fn a_job_whose_launched_instance_came_and_left_idle_is_left_out_before_the_boot_timeout() {
        // An adaptive 30 s idle timeout: the instance launched for the job 100 s ago booted,
        // idled 30 s and left. Counting the job again would launch every ~100 s.
        let mut obs = Obs::new().pending(1).ages(&[110]);
        obs.0.group.last_scale_out = Some(now() - chrono::Duration::seconds(100));
        obs.0.group.last_scale_out_to = Some(1);
        let plan = obs.plan(&slots(1));
        assert_eq!(plan.desired, 0);
        assert!(plan.reasons.iter().any(|r| matches!(r, Reason::LaunchDidNotHelp { jobs: 1, to: 1, .. })));
        // A job created after that launch is demand as ever.
        let mut fresh = obs.clone();
        fresh.0.queue.pending_ages_s = vec![110, 20];
        fresh.0.queue.pending = 2;
        assert_eq!(fresh.plan(&slots(1)).desired, 1);
    }

    #[test]
    fn a_job_created_after_the_last_launch_is_demand() {
        let mut obs = Obs::new().pending(1).ages(&[60]);
        obs.0.group.last_scale_out = Some(now() - chrono::Duration::seconds(3600));
        obs.0.group.last_scale_out_to = Some(1);
        assert_eq!(obs.plan(&slots(1)).desired, 1);
    }

    #[test]
    fn jobs_without_age_always_count() {
        // One ready instance idles beside an old job: that one is left out, the two jobs
        // of unknown age count.
        let mut obs = Obs::new().pending(3).ages(&[7200]).desired(1);
        obs.0.group.in_service = 1;
        assert_eq!(obs.plan(&slots(1)).desired, 2);
    }

    #[test]
    fn booting_instances_already_in_desired_woodpecker_autoscaler_137() {
        // desired 4 covers 4 pending jobs even though none is in service yet.
        let mut obs = Obs::new().pending(4).desired(4);
        obs.0.group.booting = 4;
        assert_eq!(obs.plan(&slots(1)).desired, 4);
    }

    #[test]
    fn vespene_formula() {
        let p = Policy {
            formula: Formula::Vespene { queued_weight: 1.0, running_weight: 0.5, multiplier: 1.0, excess: 1.0 },
            ..Policy::default()
        };
        // 4 + 3*0.5 + 1 = 6.5 -> 7
        assert_eq!(Obs::new().pending(4).running(3).plan(&p).desired, 7);
    }

    #[test]
    fn vespene_nan_weights_plan_nothing() {
        let p = Policy {
            formula: Formula::Vespene { queued_weight: f64::NAN, running_weight: 1.0, multiplier: 1.0, excess: 0.0 },
            ..Policy::default()
        };
        assert_eq!(Obs::new().pending(4).plan(&p).desired, 0);
    }

    #[test]
    fn desired_above_ceiling_is_not_lowered() {
        let p = Policy { max_instances: Some(2), ..Policy::default() };
        assert_eq!(Obs::new().pending(1).desired(5).plan(&p).desired, 5);
    }

    #[test]
    fn a_plan_that_raises_nothing_holds_up_to_the_largest_demand_its_group_covers() {
        // Two slots on each of three instances: six jobs fit, the seventh raises.
        let obs = Obs::new().pending(1).running(2).desired(3).max(10);
        let hold = hold(&slots(2), &obs.0, &obs.plan(&slots(2))).unwrap();
        assert_eq!(hold.demand_up_to, 6);
        assert_eq!(Obs::new().pending(4).running(2).desired(3).plan(&slots(2)).desired, 3);
        assert_eq!(Obs::new().pending(5).running(2).desired(3).plan(&slots(2)).desired, 4);
    }

    #[test]
    fn a_raise_or_a_guard_or_cooldown_holding_a_raise_back_has_no_hold() {
        let p = slots(1);
        let raise = Obs::new().pending(2).desired(1);
        assert_eq!(hold(&p, &raise.0, &raise.plan(&p)), None);
        // Two old jobs beside an idle instance are left out: time ended that, so no hold.
        let mut guarded = Obs::new().pending(2).ages(&[7200, 7200]).desired(1);
        guarded.0.group.in_service = 1;
        assert_eq!(guarded.plan(&p).desired, 1);
        assert_eq!(hold(&p, &guarded.0, &guarded.plan(&p)), None);
        let cooling = Policy { scale_out_cooldown: Duration::from_secs(300), ..p };
        let cooled = Obs::new().pending(4).desired(1).last_scale_out_secs_ago(100);
        assert_eq!(hold(&cooling, &cooled.0, &cooled.plan(&cooling)), None);
    }

    #[test]
    fn a_full_group_holds_for_any_demand_and_a_floor_counts_as_capacity() {
        let full = Obs::new().running(5).desired(5).max(5);
        assert_eq!(hold(&slots(1), &full.0, &full.plan(&slots(1))).unwrap().demand_up_to, u32::MAX);
        // MaxSize 0: not even the deadlock guard can launch.
        let stuck = Obs::new().running(1).waiting(1).desired(0).max(0);
        assert_eq!(hold(&slots(1), &stuck.0, &stuck.plan(&slots(1))).unwrap().demand_up_to, u32::MAX);
        let waiting = Obs::new().waiting(1).desired(1).min(1).max(3);
        let policy = Policy { max_instances: Some(3), ..slots(1) };
        assert_eq!(hold(&policy, &waiting.0, &waiting.plan(&policy)).unwrap().demand_up_to, 1);
    }

    fn arb_case() -> impl Strategy<Value = (Policy, Observation)> {
        (
            1u32..8,
            0u32..3,
            proptest::option::of(0u32..40),
            proptest::option::of(1u32..5),
            0u32..200,
            0u32..200,
            0u32..5,
            0u32..5,
            0u32..40,
            0u32..40,
        )
            .prop_map(
                |(slots, spare, max_instances, max_step, pending, running, waiting, min, extra_max, desired_seed)| {
                    let max = min + extra_max;
                    let desired = min + desired_seed % (extra_max + 1);
                    (
                        Policy { slots, spare, max_instances, max_step, ..Policy::default() },
                        Observation {
                            queue: Queue { pending, running, waiting, ..Queue::default() },
                            group: Group { min, max, desired, ..Group::default() },
                        },
                    )
                },
            )
    }

    proptest! {
        #[test]
        fn stays_within_min_and_max((policy, obs) in arb_case()) {
            let p = plan(&policy, &obs, now());
            prop_assert!(p.desired >= obs.group.min);
            prop_assert!(p.desired <= obs.group.max);
        }

        #[test]
        fn never_lowers_desired((policy, obs) in arb_case()) {
            prop_assert!(plan(&policy, &obs, now()).desired >= obs.group.desired);
        }

        #[test]
        fn monotone_in_pending((policy, obs) in arb_case(), more in 0u32..50) {
            let mut bigger = obs.clone();
            bigger.queue.pending += more;
            prop_assert!(plan(&policy, &bigger, now()).desired >= plan(&policy, &obs, now()).desired);
        }

        #[test]
        fn an_unschedulable_verdict_needs_idle_slots_or_a_launch_with_room(
            (policy, mut obs) in arb_case(),
            ages in proptest::collection::vec(0u64..20_000, 0..20),
            in_service in 0u32..5,
            launched_s_ago in proptest::option::of(0i64..20_000),
            to in 0u32..10,
        ) {
            obs.queue.pending = obs.queue.pending.max(ages.len() as u32);
            obs.queue.pending_ages_s = ages;
            obs.group.in_service = in_service;
            obs.group.last_scale_out = launched_s_ago.map(|s| now() - chrono::Duration::seconds(s));
            obs.group.last_scale_out_to = Some(to);
            let p = plan(&policy, &obs, now());
            let idle = in_service * policy.slots > obs.queue.running;
            let launch_room = launched_s_ago.is_some() && obs.queue.running < to * policy.slots;
            if !idle && !launch_room {
                prop_assert_eq!(p.left_out(), 0);
            }
            prop_assert!(p.left_out() <= obs.queue.pending);
        }

        #[test]
        fn proportional_spare_never_exceeds_spare_max_and_is_monotone(
            (policy, obs) in arb_case(),
            ratio in 0.0f64..3.0,
            spare_max in proptest::option::of(0u32..10),
            more in 0u32..50,
        ) {
            let policy = Policy { spare_ratio: ratio, spare_max, max_step: None, ..policy };
            let p = plan(&policy, &obs, now());
            for r in &p.reasons {
                if let Reason::ProportionalSpare { spare, .. } = r {
                    prop_assert!(spare_max.is_none_or(|m| *spare <= m));
                }
            }
            let mut bigger = obs.clone();
            bigger.queue.pending += more;
            prop_assert!(plan(&policy, &bigger, now()).desired >= p.desired);
        }

        #[test]
        fn a_hold_is_exact_no_demand_within_it_raises_and_one_more_does(
            (policy, obs) in arb_case(),
            ages in proptest::collection::vec(0u64..20_000, 0..20),
            in_service in 0u32..5,
            launched_s_ago in proptest::option::of(0i64..20_000),
            to in 0u32..10,
            split in 0u32..1000,
            fewer in 0u32..50,
            ratio in proptest::option::of(0.0f64..3.0),
        ) {
            let policy = Policy { spare_ratio: ratio.unwrap_or(0.0), ..policy };
            let p = plan(&policy, &obs, now());
            let Some(h) = hold(&policy, &obs, &p) else {
                return Ok(());
            };
            // Any demand up to the hold, split any way, with any ages and launch history.
            let demand = h.demand_up_to.min(obs.queue.pending + obs.queue.running + 100).saturating_sub(fewer);
            let mut later = obs.clone();
            later.queue.pending = split.min(demand);
            later.queue.running = demand - later.queue.pending;
            later.queue.pending_ages_s = ages.into_iter().take(later.queue.pending as usize).collect();
            later.group.in_service = in_service;
            later.group.last_scale_out = launched_s_ago.map(|s| now() - chrono::Duration::seconds(s));
            later.group.last_scale_out_to = Some(to);
            prop_assert_eq!(plan(&policy, &later, now()).desired, obs.group.desired);
            // One job more raises (all pending or all running, no history to hold it back).
            if h.demand_up_to < u32::MAX {
                let more = h.demand_up_to + 1;
                let mut pending = obs.clone();
                pending.queue.pending = more;
                pending.queue.running = 0;
                let mut running = obs.clone();
                running.queue.pending = 0;
                running.queue.running = more;
                let raised = plan(&policy, &pending, now()).desired.max(plan(&policy, &running, now()).desired);
                prop_assert!(raised > obs.group.desired);
            }
        }

        #[test]
        fn covers_demand_when_room((policy, obs) in arb_case()) {
            let p = plan(&policy, &obs, now());
            let cap = policy.max_instances.map_or(obs.group.max, |m| m.min(obs.group.max)).max(obs.group.min);
            let needed = (obs.queue.pending + obs.queue.running).div_ceil(policy.slots);
            if policy.max_step.is_none() {
                prop_assert!(p.desired >= needed.min(cap));
            }
        }
    }
}
