//! The autoscalers the simulator compares, each a small model of its published behaviour
//! and timing defaults (research notes in the README's simulator section): forge-scaler (the real
//! planner, fixed or adaptive idle timeout), Vespene's formula, buildkite-agent-scaler,
//! woodpecker-autoscaler, drone-autoscaler, GitLab's docker-autoscaler and a static fleet.
//! They decide; the engine (`engine::Sim`) owns the world and the measurements.

use super::engine::{Autoscaler, InstanceIdle, InstanceState, Millis, Sim, SECOND};
use crate::adaptive::AdaptiveSettings;
use crate::agent::idle::IdleConfig;
use crate::model::{tags, GroupState, JobRef, PoolJobs};
use crate::policy::{Formula, Policy};
use crate::runloop::next_tick_at;
use crate::step::{self, IdleRule, PoolInput};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const MINUTE: Millis = 60 * SECOND;

/// A schedule of invocations every `period`, each ticking every `poll` while the next
/// tick would still start within `budget` of the invocation's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocations {
    pub period: Millis,
    pub poll: Millis,
    pub budget: Millis,
}

impl Invocations {
    /// forge-scaler's Lambda: every minute, polls at 0, 10, ... 50 s.
    pub const FORGE_SCALER: Invocations = Invocations { period: MINUTE, poll: 10 * SECOND, budget: 50 * SECOND };
    /// buildkite-agent-scaler's Lambda: every minute, LAMBDA_INTERVAL 10 s, LAMBDA_TIMEOUT 50 s
    /// (polls at 0..40 s: the 50 s timeout wins the race with the fifth interval).
    pub const BUILDKITE: Invocations = Invocations { period: MINUTE, poll: 10 * SECOND, budget: 40 * SECOND };

    pub fn every(period: Millis) -> Self {
        Invocations { period, poll: period, budget: 0 }
    }

    /// The first tick at or after `t`.
    pub fn at_or_after(&self, t: Millis) -> Millis {
        if t == 0 {
            return 0;
        }
        self.next_after(t - 1)
    }

    /// The last tick strictly before `t` (None before the first).
    pub fn prev_before(&self, t: Millis) -> Option<Millis> {
        if t == 0 {
            return None;
        }
        // Every period starts an invocation, so one tick lies in [t - period, t).
        let mut tick = self.at_or_after(t.saturating_sub(self.period));
        loop {
            let next = self.next_after(tick);
            if next >= t {
                return Some(tick);
            }
            tick = next;
        }
    }

    /// The first tick strictly after `t`: within an invocation, the Lambda loop's own
    /// schedule (`runloop::next_tick_at`); past its budget, the next invocation.
    pub fn next_after(&self, t: Millis) -> Millis {
        let base = t / self.period * self.period;
        let last = base + (t - base) / self.poll * self.poll;
        let next = next_tick_at(at(base), at(last), ms(self.poll), Some(ms(self.budget))).map(millis);
        match next {
            Some(next) if next < base + self.period => next,
            _ => base + self.period,
        }
    }
}

/// An [`Invocations`] schedule as its tick offsets within one period, found once with the
/// Lambda loop's own rule (`Invocations::next_after`); every period repeats them, so each
/// question is arithmetic. Answers exactly as the `Invocations` it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticks {
    period: Millis,
    /// Ascending, the first 0 (every period starts an invocation).
    offsets: Vec<Millis>,
}

impl Ticks {
    pub fn new(schedule: Invocations) -> Self {
        let mut offsets = vec![0];
        let mut last = 0;
        loop {
            let next = schedule.next_after(last);
            if next >= schedule.period {
                break;
            }
            offsets.push(next);
            last = next;
        }
        Ticks { period: schedule.period.max(1), offsets }
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: Millis) -> Millis {
        let base = t / self.period * self.period;
        let into = t - base;
        match self.offsets.iter().find(|&&o| o > into) {
            Some(&o) => base + o,
            None => base + self.period,
        }
    }

    /// The first tick at or after `t`.
    pub fn at_or_after(&self, t: Millis) -> Millis {
        if t == 0 {
            return 0;
        }
        self.next_after(t - 1)
    }

    /// The last tick strictly before `t` (None before the first).
    pub fn prev_before(&self, t: Millis) -> Option<Millis> {
        let last = t.checked_sub(1)?;
        let base = last / self.period * self.period;
        let into = last - base;
        self.offsets.iter().rev().find(|&&o| o <= into).map(|&o| base + o)
    }
}

fn ms(t: Millis) -> Duration {
    Duration::from_millis(t)
}

fn millis(t: DateTime<Utc>) -> Millis {
    (t - epoch()).num_milliseconds().max(0) as Millis
}

fn epoch() -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600, 0).single().unwrap_or_default() // 2026-01-01T00:00:00Z
}

/// The wall-clock time of simulated millisecond `t` (the simulator's epoch is 2026-01-01).
pub fn sim_time(t: Millis) -> DateTime<Utc> {
    at(t)
}

fn at(t: Millis) -> DateTime<Utc> {
    epoch() + chrono::Duration::milliseconds(t as i64)
}

/// forge-scaler: the Lambda's own pool step (`step::step`, the same function the tick
/// calls) on the Lambda's schedule (`runloop::next_tick_at`), the group's tags kept as the
/// real group keeps them, and the real watchdog logic on the instances.
pub struct ForgeScaler {
    name: &'static str,
    policy: Policy,
    schedule: Ticks,
    idle: IdleConfig,
    rule: IdleRule,
    /// Signed webhooks: a tick one second after each arrival, besides the polls.
    webhooks: bool,
    /// The webhook tick already asked for (one per instant is enough).
    webhook_tick: Option<Millis>,
    /// The poll that last scheduled the next one (a second look at the same instant must not
    /// start a second chain of polls).
    polled_at: Option<Millis>,
    /// The simulated group's tags, as the function writes and reads them.
    tags: BTreeMap<String, String>,
    last_tick: Option<Millis>,
    /// Event skipping: looks that could only repeat the last one are not made.
    skip: bool,
    /// The last look changed nothing, and looks in this state would change nothing either.
    held: Option<Held>,
    /// The chain of polls stopped on `held`; `wake` restarts it.
    asleep: bool,
    /// The poll the sleeping chain asked for when its hold's time ends.
    far_poll: Option<Millis>,
    /// Polls given up by a chain that woke before them (ignored when they come).
    stale_polls: Vec<Millis>,
    /// Looks made (pool steps run).
    looks: u64,
    /// Adaptive: the last look skipped since the last one made (its arrivals tag, which
    /// records its time, is written when the next look is made).
    skipped_at: Option<Millis>,
    /// Adaptive: the idle timeout of the hold stays the same before this time.
    timeout_until: Millis,
}

/// A look that changed nothing, and how far looks after it would change nothing either
/// (`step::step_with_hold`), in the simulator's terms.
#[derive(Debug, Clone, PartialEq)]
struct Held {
    demand_up_to: u32,
    desired: u32,
    until: Option<Millis>,
    /// Adaptive: what later looks write, while no job arrives (jobs arrived at the look).
    adaptive: Option<(step::AdaptiveHold, usize)>,
}

impl ForgeScaler {
    /// The default policy and a fixed idle timeout (default 10 min).
    pub fn fixed(slots: u32, max_instances: u32, idle_timeout: Duration) -> Self {
        let idle = IdleConfig { idle_timeout, ..IdleConfig::default() };
        ForgeScaler {
            name: "forge-scaler",
            policy: Policy {
                slots,
                max_instances: Some(max_instances),
                boot_timeout: idle.boot_timeout,
                ..Policy::default()
            },
            schedule: Ticks::new(Invocations::FORGE_SCALER),
            idle,
            rule: IdleRule::Fixed(idle_timeout),
            webhooks: false,
            webhook_tick: None,
            polled_at: None,
            tags: BTreeMap::new(),
            last_tick: None,
            skip: true,
            held: None,
            asleep: false,
            far_poll: None,
            stale_polls: Vec::new(),
            looks: 0,
            skipped_at: None,
            timeout_until: 0,
        }
    }

    /// The default policy with `idle_timeout = "adaptive"`.
    pub fn adaptive(slots: u32, max_instances: u32, settings: AdaptiveSettings) -> Self {
        let mut scaler = Self::fixed(slots, max_instances, settings.fallback);
        scaler.name = "forge-scaler-adaptive";
        scaler.rule = IdleRule::Adaptive(settings);
        scaler
    }

    /// For hourly-billed machines: the watchdog leaves only in the last minutes of a paid hour.
    pub fn billed_hourly(mut self) -> Self {
        self.idle.billing_period = Some(Duration::from_secs(3600));
        self
    }

    /// Vespene's stock formula (weights 1, 1, multiplier 1/slots so one instance serves
    /// `slots` builds, excess 0), re-evaluated every 5 minutes (`reevaluate_minutes`);
    /// workers exit after 5 idle minutes (`--max-wait-minutes=5`).
    pub fn vespene(slots: u32, max_instances: u32) -> Self {
        let formula = Formula::Vespene {
            queued_weight: 1.0,
            running_weight: 1.0,
            multiplier: 1.0 / slots.max(1) as f64,
            excess: 0.0,
        };
        let five_minutes = Duration::from_secs(300);
        let mut scaler = Self::fixed(slots, max_instances, five_minutes);
        scaler.name = "vespene";
        scaler.policy.formula = formula;
        scaler.idle.boot_timeout = five_minutes;
        scaler.policy.boot_timeout = five_minutes;
        scaler.schedule = Ticks::new(Invocations::every(5 * MINUTE));
        scaler
    }

    /// With the pool's proportional spare (`spare_ratio`, `spare_max`).
    pub fn spare_ratio(mut self, ratio: f64, max: Option<u32>) -> Self {
        self.policy.spare_ratio = ratio;
        self.policy.spare_max = max;
        self
    }

    /// With signed forge webhooks: each arrival triggers a tick one second later.
    pub fn with_webhooks(mut self, webhooks: bool) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// Whether looks that could only repeat the last one are skipped (default: yes; the
    /// results are the same either way, only faster).
    pub fn with_skipping(mut self, skip: bool) -> Self {
        self.skip = skip;
        self
    }

    /// Looks made so far (pool steps run).
    pub fn looks(&self) -> u64 {
        self.looks
    }

    /// Whether a look now could only repeat the last one: the state is within its hold.
    /// An empty world (nothing queued, nothing up) ends a hold: the engine then skips
    /// looks to the next arrival by itself, and a sleeping chain must not outlive that.
    fn holds(&self, sim: &Sim<'_>) -> bool {
        let empty = sim.pending() == 0 && sim.in_service() + sim.booting() == 0;
        !empty
            && self.held.as_ref().is_some_and(|h| {
                sim.desired() == h.desired
                    && sim.pending() + sim.running() <= h.demand_up_to
                    && h.until.is_none_or(|until| sim.now() < until)
            })
    }

    /// Within the hold and, under an adaptive one, no job arrived since the last look or
    /// replay (a new job is history to record at the next poll): the chain may sleep.
    fn quiet(&self, sim: &Sim<'_>) -> bool {
        self.holds(sim)
            && self.held.as_ref().and_then(|h| h.adaptive.as_ref()).is_none_or(|(_, arrived)| sim.arrived() == *arrived)
    }

    /// A skipped look's outcome under an adaptive hold: the idle timeout it would publish
    /// (applied when it changes); its arrivals tag waits for the next look made.
    fn replay(&mut self, sim: &mut Sim<'_>) {
        let now = sim.now();
        let last_tick = self.last_tick;
        let skipped_at = self.skipped_at;
        let Some((adaptive, arrived)) = self.held.as_mut().and_then(|h| h.adaptive.as_mut()) else {
            return;
        };
        if sim.arrived() != *arrived {
            // The jobs this look would see (as `jobs` lists them), after the clock of the
            // last skipped look.
            if let Some(skipped) = skipped_at {
                adaptive.advance(std::iter::empty(), at(skipped));
            }
            let created = sim.pending_arrivals().chain(sim.running_arrivals_since(last_tick)).map(at);
            adaptive.advance(created, at(now));
            *arrived = sim.arrived();
            self.timeout_until = 0;
        }
        self.skipped_at = Some(now);
        self.last_tick = Some(now);
        if now < self.timeout_until {
            return;
        }
        let (timeout, until) = adaptive.timeout_and_until(at(now));
        self.timeout_until = until.map_or(Millis::MAX, millis);
        let value = humantime::format_duration(timeout).to_string();
        if self.tags.get(tags::IDLE_TIMEOUT) != Some(&value) {
            if let Ok(timeout) = humantime::parse_duration(&value) {
                sim.set_idle_timeout(timeout);
            }
            self.tags.insert(tags::IDLE_TIMEOUT.to_string(), value);
        }
    }

    /// Adaptive: the polls a sleeping chain did not make before `upto` count as skipped
    /// looks (the latest one that would not have failed).
    fn note_unmade_polls(&mut self, sim: &Sim<'_>, upto: Millis) {
        if self.held.as_ref().is_none_or(|h| h.adaptive.is_none()) {
            return;
        }
        let mut poll = self.schedule.prev_before(upto);
        while let Some(p) = poll {
            if self.polled_at.is_some_and(|last| p <= last) || self.skipped_at.is_some_and(|s| p <= s) {
                return;
            }
            if !sim.looks_fail_at(p) {
                self.skipped_at = Some(p);
                return;
            }
            poll = self.schedule.prev_before(p);
        }
    }

    /// The simulated group's tags as the function left them.
    pub fn group_tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    /// The next poll, asked for by a poll only: a webhook's extra look (off the schedule, or
    /// a second look at a poll's instant) leaves the chain of polls alone.
    fn next_poll(&mut self, now: Millis) -> Option<Millis> {
        let on_schedule = self.schedule.at_or_after(now) == now;
        if self.webhooks && (!on_schedule || self.polled_at == Some(now)) {
            return None;
        }
        self.polled_at = Some(now);
        Some(self.schedule.next_after(now))
    }

    /// What the forge's API would list at `now`: pending jobs with their creation times;
    /// running jobs, dated where they arrived since the last look (older ones were already
    /// recorded, and their times change nothing).
    fn jobs(&self, sim: &Sim<'_>) -> PoolJobs {
        let dated = |t: Millis| JobRef::created_at(Some(at(t)));
        let pending = sim.pending_arrivals().map(dated).collect();
        let running_now = sim.running() as usize;
        let mut running: Vec<JobRef> =
            sim.running_arrivals_since(self.last_tick).map(dated).take(running_now).collect();
        running.resize(running_now, JobRef::anonymous());
        PoolJobs { pending, running, ..PoolJobs::default() }
    }
}

impl Autoscaler for ForgeScaler {
    fn name(&self) -> &'static str {
        self.name
    }
    fn on_arrival(&mut self, sim: &Sim<'_>) -> Option<Millis> {
        // The forge posts the job's webhook; the function ticks about a second later.
        let at = sim.now() + SECOND;
        if !self.webhooks || self.webhook_tick.is_some_and(|t| t >= sim.now()) {
            return None;
        }
        self.webhook_tick = Some(at);
        Some(at)
    }
    fn tick_at_or_after(&self, t: Millis) -> Millis {
        self.schedule.at_or_after(t)
    }
    fn instance_idle(&self) -> Option<InstanceIdle> {
        Some(InstanceIdle { config: self.idle.clone(), drain: Duration::ZERO })
    }
    fn tick(&mut self, sim: &mut Sim<'_>) -> Option<Millis> {
        let now = sim.now();
        if let Some(i) = self.stale_polls.iter().position(|&t| t == now) {
            self.stale_polls.swap_remove(i);
            return None;
        }
        if self.far_poll == Some(now) {
            // The sleeping chain's own poll: the polls before it were not made.
            self.note_unmade_polls(sim, now);
        }
        if self.holds(sim) {
            self.replay(sim);
        } else {
            self.look(sim);
        }
        let next = self.next_poll(now)?;
        // This look is the chain's poll: it sleeps while looks could only repeat it.
        self.asleep = false;
        if self.far_poll == Some(now) {
            self.far_poll = None;
        }
        let Some(held) = self.held.as_ref().filter(|_| self.quiet(sim)) else {
            return Some(next);
        };
        let mut until = held.until;
        if held.adaptive.is_some() {
            until = Some(until.map_or(self.timeout_until, |u| u.min(self.timeout_until)));
        }
        if until.is_some_and(|u| u <= next) {
            return Some(next);
        }
        self.asleep = true;
        self.far_poll = until.filter(|&u| u < Millis::MAX).map(|u| self.schedule.at_or_after(u));
        self.far_poll
    }
    fn failed_tick(&mut self, at: Millis) -> Option<Millis> {
        if let Some(i) = self.stale_polls.iter().position(|&t| t == at) {
            self.stale_polls.swap_remove(i);
            return None;
        }
        if self.far_poll == Some(at) {
            // The sleeping chain's poll failed: the chain goes on from it, awake.
            self.far_poll = None;
            self.asleep = false;
        }
        Some(self.schedule.at_or_after(at + 1))
    }
    fn wake(&mut self, sim: &Sim<'_>) -> Option<Millis> {
        if !self.asleep || self.quiet(sim) {
            return None;
        }
        self.asleep = false;
        self.stale_polls.extend(self.far_poll.take());
        // The first poll that has not happened yet.
        let at = self.schedule.at_or_after(sim.now());
        let at = if self.polled_at == Some(at) { self.schedule.next_after(at) } else { at };
        self.note_unmade_polls(sim, at);
        Some(at)
    }
}

impl ForgeScaler {
    /// One look: the Lambda's pool step on what the forge and the group show now, applied
    /// as the tick applies it; remembers how far its outcome holds when it changed nothing.
    fn look(&mut self, sim: &mut Sim<'_>) {
        let now = sim.now();
        self.looks += 1;
        // Adaptive: the arrivals tag the last skipped look would have written.
        if let (Some(skipped), Some(held)) = (self.skipped_at.take(), &self.held) {
            if let Some((adaptive, _)) = &held.adaptive {
                self.tags.insert(tags::ARRIVALS.to_string(), adaptive.arrivals_tag(at(skipped)));
            }
        }
        let jobs = self.jobs(sim);
        let group = GroupState::new(
            sim.min_size(),
            sim.max_size(),
            sim.desired(),
            sim.in_service(),
            sim.booting(),
            std::mem::take(&mut self.tags),
        );
        let input = PoolInput {
            policy: &self.policy,
            idle: &self.rule,
            instance_tags: true,
            jobs: &jobs,
            group: &group,
            notes: Vec::new(),
        };
        let (decided, hold) =
            if self.skip { step::step_with_hold(&input, at(now)) } else { (step::step(&input, at(now)), None) };
        self.tags = group.tags;
        self.last_tick = Some(now);
        self.held = None;
        // As the tick applies: a refused raise writes no tag; otherwise the tags that changed.
        let raises = decided.plan.raises(&group.group);
        if raises && sim.set_desired(decided.plan.desired).is_err() {
            return;
        }
        let writes = decided.tag_writes(&self.tags);
        // The hold is of the state this look leaves (its raise and tags applied).
        if let Some(hold) = hold {
            if hold.adaptive.is_some() {
                self.timeout_until = hold.timeout_until.map_or(Millis::MAX, millis);
            }
            self.held = Some(Held {
                demand_up_to: hold.demand_up_to,
                desired: sim.desired(),
                until: hold.until.map(millis),
                adaptive: hold.adaptive.map(|a| (a, sim.arrived())),
            });
        }
        for (key, value) in writes {
            if key == tags::IDLE_TIMEOUT {
                if let Ok(timeout) = humantime::parse_duration(&value) {
                    sim.set_idle_timeout(timeout);
                }
            }
            self.tags.insert(key, value);
        }
    }
}

/// buildkite-agent-scaler with its SAM template's defaults: 10 s polls in a 1-minute Lambda,
/// 300 s scale-out cooldown, scale-in disabled; agents disconnect after 600 s idle
/// (elastic stack ScaleInIdlePeriod), sleep 10 s, and terminate with decrement.
pub struct Buildkite {
    pub cooldown: Millis,
    last_out: Option<Millis>,
}

impl Default for Buildkite {
    fn default() -> Self {
        Buildkite { cooldown: 300 * SECOND, last_out: None }
    }
}

impl Autoscaler for Buildkite {
    fn name(&self) -> &'static str {
        "buildkite"
    }
    fn tick_at_or_after(&self, t: Millis) -> Millis {
        Invocations::BUILDKITE.at_or_after(t)
    }
    fn instance_idle(&self) -> Option<InstanceIdle> {
        Some(InstanceIdle {
            config: IdleConfig {
                idle_timeout: Duration::from_secs(600),
                boot_timeout: Duration::ZERO,
                ..IdleConfig::default()
            },
            drain: Duration::from_secs(10),
        })
    }
    fn tick(&mut self, sim: &mut Sim<'_>) -> Option<Millis> {
        let now = sim.now();
        let slots = sim.slots();
        let required = sim.pending() + sim.running();
        let mut desired = required.div_ceil(slots);
        let actual = sim.in_service();
        let group_desired = sim.desired();
        // Availability boost: jobs exist, the group converged, under half the agents connected.
        if required > 0 && actual > 0 && actual == group_desired {
            let connected = sim.ready_taking_jobs() as f64;
            if connected / (actual as f64) < 0.5 {
                desired = desired.max(group_desired + 1);
            }
        }
        let desired = desired.clamp(sim.min_size(), sim.max_size());
        let n = if actual > 0 { actual } else { group_desired };
        if desired > n && desired > group_desired {
            let cooled = self.last_out.is_none_or(|t| now >= t + self.cooldown);
            if cooled && sim.set_desired(desired).is_ok() {
                self.last_out = Some(now);
            }
        }
        Some(Invocations::BUILDKITE.next_after(now))
    }
}

/// woodpecker-autoscaler: reconcile every minute; its worker-count formula, in which
/// booting agents add nothing (so it keeps adding while they boot, its #137); drains and
/// removes agents whose server-side `LastWork` is older than AGENT_IDLE_TIMEOUT (10 min),
/// oldest first. `LastWork` is refreshed by the running job's calls (at most once a
/// minute, [`super::engine::Instance::server_last_work`]), so a busy agent is never drained.
pub struct Woodpecker {
    pub interval: Millis,
    pub idle_timeout: Millis,
}

impl Default for Woodpecker {
    fn default() -> Self {
        Woodpecker { interval: MINUTE, idle_timeout: 10 * MINUTE }
    }
}

impl Autoscaler for Woodpecker {
    fn name(&self) -> &'static str {
        "woodpecker"
    }
    fn tick_at_or_after(&self, t: Millis) -> Millis {
        t.div_ceil(self.interval) * self.interval
    }
    fn instance_idle(&self) -> Option<InstanceIdle> {
        None
    }
    fn tick(&mut self, sim: &mut Sim<'_>) -> Option<Millis> {
        let now = sim.now();
        let per_agent = sim.slots() as i64;
        let connected: Vec<(usize, u32, Option<Millis>)> = sim
            .alive()
            .filter(|(_, i)| i.state == InstanceState::Ready)
            .map(|(id, i)| (id, i.busy, i.server_last_work(now)))
            .collect();
        let worker_count: i64 = connected.iter().map(|&(_, busy, _)| per_agent - busy as i64).sum();
        let running = sim.running() as i64;
        let available = (worker_count + running + per_agent - 1) / per_agent;
        let required = (sim.pending() as i64 + running + per_agent - 1) / per_agent;
        let pool = sim.alive().filter(|(_, i)| i.state != InstanceState::Draining).count() as i64;
        let low = -(pool - sim.min_size() as i64);
        let high = sim.max_size() as i64 - pool;
        let delta = (required - available).clamp(low.min(0), high.max(0));
        if delta > 0 {
            let _ = sim.set_desired(sim.desired() + delta as u32);
        } else if delta < 0 {
            let idle_for = self.idle_timeout;
            let drain: Vec<usize> = connected
                .iter()
                .filter(|&&(_, _, last_work)| last_work.is_none_or(|w| now.saturating_sub(w) >= idle_for))
                .map(|&(id, _, _)| id)
                .take((-delta) as usize)
                .collect();
            for id in drain {
                // no_schedule, then removed once it has no task.
                sim.drain_then_terminate(id, Duration::ZERO);
            }
        }
        Some((now / self.interval + 1) * self.interval)
    }
}

/// drone-autoscaler: plans every 5 minutes; capacity counts every server not stopped
/// (booting ones too); scales down newest first, only servers idle and older than
/// DRONE_POOL_MIN_AGE (55 min), as many as keep POOL_MIN (the group's MinSize) and none
/// while fewer running servers than that would remain ([`drone_removals`]); a collector
/// destroys marked servers every 10 s.
pub struct Drone {
    pub interval: Millis,
    pub min_age: Millis,
    pub collector: Millis,
}

impl Default for Drone {
    fn default() -> Self {
        Drone { interval: 5 * MINUTE, min_age: 55 * MINUTE, collector: 10 * SECOND }
    }
}

impl Autoscaler for Drone {
    fn name(&self) -> &'static str {
        "drone"
    }
    fn tick_at_or_after(&self, t: Millis) -> Millis {
        t.div_ceil(self.interval) * self.interval
    }
    fn instance_idle(&self) -> Option<InstanceIdle> {
        None
    }
    fn tick(&mut self, sim: &mut Sim<'_>) -> Option<Millis> {
        let now = sim.now();
        let concurrency = sim.slots() as i64;
        let servers: Vec<(usize, u32, Millis, InstanceState)> = sim
            .alive()
            .filter(|(_, i)| i.state != InstanceState::Draining)
            .map(|(id, i)| (id, i.busy, i.launched_at, i.state))
            .collect();
        let count = servers.len() as i64;
        let capacity = count * concurrency;
        let free = (capacity - sim.running() as i64).max(0);
        let short = sim.pending() as i64 - free;
        let diff = if short >= 0 { (short + concurrency - 1) / concurrency } else { short / concurrency };
        if diff > 0 {
            let add = diff.min(sim.max_size() as i64 - count);
            if add > 0 {
                let _ = sim.set_desired(sim.desired() + add as u32);
            }
        } else if diff < 0 {
            let running_servers = servers.iter().filter(|s| s.3 == InstanceState::Ready).count() as i64;
            let removals = drone_removals(count, -diff, sim.min_size() as i64, running_servers);
            let marked: Vec<usize> = servers
                .iter()
                .rev()
                .filter(|&&(_, busy, launched, state)| {
                    busy == 0 && state == InstanceState::Ready && now - launched >= self.min_age
                })
                .map(|&(id, ..)| id)
                .take(removals)
                .collect();
            let collect_at = (now / self.collector + 1) * self.collector;
            for id in marked {
                sim.drain_then_terminate(id, Duration::from_millis(collect_at - now));
            }
        }
        Some((now / self.interval + 1) * self.interval)
    }
}

/// How many servers drone-autoscaler's planner marks when it has `surplus` servers too many:
/// `serverFloor` lowers the count so that `count - removals >= min` (`count`: every server not
/// stopped, booting ones too), then `mark` removes none at all when fewer than `min` running
/// servers would remain. The idle and min-age filters come after, in the caller.
fn drone_removals(count: i64, surplus: i64, min: i64, running_servers: i64) -> usize {
    let removals = surplus.min(count - min).max(0);
    if running_servers - removals < min {
        0
    } else {
        removals as usize
    }
}

/// GitLab docker-autoscaler (taskscaler + fleeting AWS plugin): the runner polls for jobs
/// every 3 s (check_interval) and asks for capacity at once; wanted instances =
/// ceil((in use + pending + idle_count) / capacity_per_instance); every minute it removes
/// instances idle longer than idle_time (20 min in GitLab's AWS example). In preemptive mode
/// (the default when idle_count > 0) the runner takes a job from GitLab only when idle
/// capacity is up, so GitLab's queue is not demand: wanted = ceil((in use + idle_count) /
/// capacity_per_instance), re-evaluated at the runner's first check after each instance is up.
pub struct Gitlab {
    pub idle_count: u32,
    pub idle_time: Millis,
    pub update_interval: Millis,
    pub check_interval: Millis,
    /// `preemptive_mode`: unset in GitLab's config, it is `idle_count > 0`.
    pub preemptive: bool,
    next_update: Millis,
    trigger_at: Option<Millis>,
    /// Looks asked for at the runner's check after an instance comes up (preemptive mode).
    ready_looks: BTreeSet<Millis>,
}

impl Gitlab {
    pub fn new(idle_count: u32) -> Self {
        Gitlab {
            idle_count,
            idle_time: 20 * MINUTE,
            update_interval: MINUTE,
            check_interval: 3 * SECOND,
            preemptive: idle_count > 0,
            next_update: 0,
            trigger_at: None,
            ready_looks: BTreeSet::new(),
        }
    }
}

impl Autoscaler for Gitlab {
    fn name(&self) -> &'static str {
        "gitlab"
    }
    fn tick_at_or_after(&self, t: Millis) -> Millis {
        t.div_ceil(self.update_interval) * self.update_interval
    }
    fn instance_idle(&self) -> Option<InstanceIdle> {
        None
    }
    fn on_arrival(&mut self, sim: &Sim<'_>) -> Option<Millis> {
        let at = (sim.now() / self.check_interval + 1) * self.check_interval;
        if self.trigger_at.is_some_and(|t| t >= sim.now()) {
            return None;
        }
        self.trigger_at = Some(at);
        Some(at)
    }
    fn tick(&mut self, sim: &mut Sim<'_>) -> Option<Millis> {
        let now = sim.now();
        if self.trigger_at.is_some_and(|t| t <= now) {
            self.trigger_at = None;
        }
        self.ready_looks.retain(|&t| t > now);
        let slots = sim.slots();
        let queued = if self.preemptive { 0 } else { sim.pending() };
        let wanted = ((sim.running() + queued + self.idle_count).div_ceil(slots)).min(sim.max_size());
        let current = sim.alive().filter(|(_, i)| i.state != InstanceState::Draining).count() as u32;
        if wanted > current {
            let _ = sim.set_desired(sim.desired() + (wanted - current));
        } else if wanted < current {
            let mut idle: Vec<(Millis, usize)> = sim
                .alive()
                .filter_map(|(id, i)| i.idle_since().map(|since| (since, id)))
                .filter(|&(since, _)| now.saturating_sub(since) >= self.idle_time)
                .collect();
            idle.sort_unstable();
            for (_, id) in idle.into_iter().take((current - wanted) as usize) {
                let _ = sim.terminate_decrement(id);
            }
        }
        if self.preemptive {
            // A job takes the new idle capacity at the runner's next check: in use grows.
            let check = self.check_interval;
            let up: Vec<Millis> = sim
                .alive()
                .filter(|(_, i)| i.state == InstanceState::Booting)
                .map(|(_, i)| i.ready_at.div_ceil(check) * check)
                .filter(|&at| at > now)
                .collect();
            for at in up {
                if self.ready_looks.insert(at) {
                    sim.request_tick(at);
                }
            }
        }
        if now >= self.next_update {
            self.next_update = (now / self.update_interval + 1) * self.update_interval;
            Some(self.next_update)
        } else {
            None
        }
    }
}

/// A fixed fleet sized at the trace's p95 concurrency: a reference, not an autoscaler.
pub struct StaticFleet {
    pub instances: u32,
}

impl Autoscaler for StaticFleet {
    fn name(&self) -> &'static str {
        "static"
    }
    fn tick_at_or_after(&self, t: Millis) -> Millis {
        t
    }
    fn instance_idle(&self) -> Option<InstanceIdle> {
        None
    }
    fn start(&mut self, sim: &mut Sim<'_>) {
        sim.launch_ready(self.instances);
    }
    fn tick(&mut self, _sim: &mut Sim<'_>) -> Option<Millis> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::engine::World;
    use crate::sim::trace::TraceJob;
    use std::sync::atomic::AtomicU64;

    /// Runs `jobs` under `policy` with boots of exactly 60 s, one slot, MinSize 0.
    fn replay(policy: &mut dyn Autoscaler, jobs: &[TraceJob]) -> crate::sim::engine::Measured {
        replay_in(World::default(), policy, jobs)
    }

    /// A 1,500 s job and a 10 s job both queued at 0 s, under woodpecker's defaults
    /// (reconcile every 60 s, AGENT_IDLE_TIMEOUT 600 s), boot 60 s:
    /// - 0 s: two pending, no agent: two agents created; both connect at 60 s and take a job.
    ///   `Init` at 60 s writes both agents' `LastWork` = 60 s.
    /// - short agent: its job ends at 70 s; `Done` at 70 s is within a minute of the last
    ///   write, so `LastWork` stays 60 s. At the 660 s reconcile (one running, one free
    ///   slot: delta -1) 660 - 60 >= 600: drained and removed. Billed 660 s, of which 10 s
    ///   worked: 650 s idle (60 s boot + 590 s).
    /// - long agent: its job's `Extend`/`Log` calls move `LastWork` a minute at a time, to
    ///   1,560 s when the job ends at 1,560 s; so it is not drained while running (the old
    ///   model, reading only the job start, drained it at 660 s and removed it at 1,560 s).
    ///   At 2,160 s, 2,160 - 1,560 >= 600: removed. Billed 2,160 s, 1,500 s worked: 660 s idle.
    ///
    /// Total: 2,820 s billed, 1,310 s idle. (The 2,880 s / 1,370 s lets `Done` at
    /// 70 s rewrite `LastWork`; woodpecker's `updateAgentLastWork` skips writes within a
    /// minute of the last one, so the short agent goes a reconcile earlier.)
    #[test]
    fn a_woodpecker_agent_running_a_job_longer_than_its_idle_timeout_is_kept_until_idle_after_it() {
        let jobs = [
            TraceJob { arrival_ms: 0, duration_ms: 1_500 * SECOND },
            TraceJob { arrival_ms: 0, duration_ms: 10 * SECOND },
        ];
        let measured = replay(&mut Woodpecker::default(), &jobs);
        assert_eq!(measured.launches, 2);
        assert_eq!(measured.disrupted_jobs, 0);
        assert_eq!(measured.instance_ms, (660 + 2_160) as u128 * SECOND as u128);
        assert_eq!(measured.idle_ms, (650 + 660) as u128 * SECOND as u128);
    }

    /// The same two jobs when the short one runs 70 s (60..130 s): its `Log`/`Extend` at
    /// 120 s writes `LastWork` = 120 s, `Done` at 130 s is throttled, so the short agent
    /// leaves at the first reconcile 600 s after 120 s: 720 s.
    #[test]
    fn a_running_woodpecker_job_refreshes_last_work_once_a_minute() {
        let jobs = [
            TraceJob { arrival_ms: 0, duration_ms: 1_500 * SECOND },
            TraceJob { arrival_ms: 0, duration_ms: 70 * SECOND },
        ];
        let measured = replay(&mut Woodpecker::default(), &jobs);
        assert_eq!(measured.instance_ms, (720 + 2_160) as u128 * SECOND as u128);
    }

    /// Runs `jobs` under `policy` in `world` with no boot jitter.
    fn replay_in(world: World, policy: &mut dyn Autoscaler, jobs: &[TraceJob]) -> crate::sim::engine::Measured {
        let world = World { boot_jitter: 0.0, ..world };
        Sim::new(world, jobs, policy.instance_idle(), false).run(policy, &AtomicU64::new(0))
    }

    /// drone's `serverFloor` lowers the removal count to what keeps `POOL_MIN` servers; it
    /// does not skip the scale-down. MinSize 1, boot 60 s, plans every 300 s, min age 3,300 s:
    /// - 0 s: three 10 s jobs pending, no server: three created (ready 60 s, jobs 60..70 s).
    /// - every plan from 300 s: free 3, diff -3, removals min(3, 3 - 1) = 2, and with three
    ///   running, 3 - 2 >= 1, so `mark` goes on; only servers 3,300 s old qualify. At 3,300 s
    ///   all three are: the two newest are marked, the collector destroys them at 3,310 s.
    /// - later plans: diff -1, removals min(1, 1 - 1) = 0. The 10 s job at 4,000 s runs on the
    ///   survivor at once (4,000..4,010 s); the survivor is billed to the last job's end.
    ///
    /// Total: 2 x 3,310 + 4,010 = 10,630 s. (Skipping the scale-down when 3 - 3 < 1, as the
    /// old model did, kept all three to 4,010 s: 12,030 s.)
    #[test]
    fn a_drone_pool_above_its_minimum_removes_down_to_it_rather_than_skipping_the_scale_down() {
        let jobs = [
            TraceJob { arrival_ms: 0, duration_ms: 10 * SECOND },
            TraceJob { arrival_ms: 0, duration_ms: 10 * SECOND },
            TraceJob { arrival_ms: 0, duration_ms: 10 * SECOND },
            TraceJob { arrival_ms: 4_000 * SECOND, duration_ms: 10 * SECOND },
        ];
        let world = World { min_instances: 1, ..World::default() };
        let measured = replay_in(world, &mut Drone::default(), &jobs);
        assert_eq!(measured.launches, 3);
        assert_eq!(measured.disrupted_jobs, 0);
        assert_eq!(measured.instance_ms, (2 * 3_310 + 4_010) as u128 * SECOND as u128);
        assert_eq!(measured.waits_s, vec![60.0, 60.0, 60.0, 0.0]);
    }

    /// drone's `mark` aborts when fewer than `POOL_MIN` running servers would remain; servers
    /// still being created count in the surplus but not as running. Boot 360 s (longer than
    /// the 300 s plan interval), MinSize 0, min age 3,300 s:
    /// - 0 s: job A (3,000 s) pending: server S1 created; ready 360 s, runs A 360..3,360 s.
    ///   Plans up to 3,300 s see no surplus (A pending, then running).
    /// - 3,550 s: job B (100 s) runs on S1; 3,560 s: job C (10 s) waits. 3,600 s plan: one
    ///   pending, no free slot: S2 created (ready 3,960 s). 3,650 s: C runs on S1 to 3,660 s.
    /// - 3,900 s plan: free 2, diff -2, removals 2, but only S1 runs: 1 - 2 < 0, abort (the old
    ///   model removed S1 here, at 3,910 s).
    /// - 4,200 s plan: both run, 2 - 2 >= 0: S1 (4,200 s old) is marked, destroyed at 4,210 s;
    ///   S2 (600 s old) is too young. 6,900 s plan: S2 is 3,300 s old: destroyed at 6,910 s.
    ///
    /// Total: 4,210 + 3,310 = 7,520 s (old model: 3,910 + 3,310 = 7,220 s).
    #[test]
    fn drone_removes_nothing_while_servers_still_booting_leave_fewer_running_than_it_would_remove() {
        let jobs = [
            TraceJob { arrival_ms: 0, duration_ms: 3_000 * SECOND },
            TraceJob { arrival_ms: 3_550 * SECOND, duration_ms: 100 * SECOND },
            TraceJob { arrival_ms: 3_560 * SECOND, duration_ms: 10 * SECOND },
        ];
        let world = World { boot: Duration::from_secs(360), ..World::default() };
        let measured = replay_in(world, &mut Drone::default(), &jobs);
        assert_eq!(measured.launches, 2);
        assert_eq!(measured.disrupted_jobs, 0);
        assert_eq!(measured.instance_ms, (4_210 + 3_310) as u128 * SECOND as u128);
    }

    /// With `idle_count` > 0 GitLab's runner is in preemptive mode (its default then): it asks
    /// GitLab for a job only when idle capacity is there, so jobs beyond it stay in GitLab's
    /// queue where taskscaler cannot see them; it keeps `idle_count` slots free beyond the
    /// ones in use. idle_count 2, five 600 s jobs at 0 s, boot 60 s, one slot:
    /// - 0 s: nothing in use: 2 instances (ready 60 s).
    /// - 60 s: jobs 1, 2 start on them; the runner's next check (60 s) acquires them: in use 2,
    ///   wanted 4: 2 more (ready 120 s). 120 s: jobs 3, 4 start, in use 4: 2 more (ready 180 s).
    /// - 180 s: job 5 starts, in use 5: wanted 7, 6 up: 1 more (ready 240 s).
    ///
    /// Waits 60, 60, 120, 120, 180 s, 7 launches. (Counting GitLab's queue as taskscaler
    /// demand, as the old model did, launched 7 at 0 s: every job waited 60 s.)
    #[test]
    fn gitlab_with_an_idle_count_sees_only_the_jobs_its_idle_capacity_lets_it_take() {
        let jobs = [TraceJob { arrival_ms: 0, duration_ms: 600 * SECOND }; 5];
        let measured = replay(&mut Gitlab::new(2), &jobs);
        assert_eq!(measured.launches, 7);
        assert_eq!(measured.waits_s, vec![60.0, 60.0, 120.0, 120.0, 180.0]);
        assert_eq!(measured.disrupted_jobs, 0);
    }

    /// With `idle_count` 0 (not preemptive) the runner takes every job GitLab offers and waits
    /// for capacity, so the whole queue is demand: five jobs queued at 0 s launch five
    /// instances at the 0 s look, all ready at 60 s.
    #[test]
    fn gitlab_without_an_idle_count_asks_capacity_for_every_queued_job_at_once() {
        let jobs = [TraceJob { arrival_ms: 0, duration_ms: 600 * SECOND }; 5];
        let measured = replay(&mut Gitlab::new(0), &jobs);
        assert_eq!(measured.launches, 5);
        assert_eq!(measured.waits_s, vec![60.0; 5]);
    }

    #[test]
    fn forge_scaler_skips_the_looks_that_could_only_repeat_the_last_one_and_measures_the_same() {
        let trace = crate::sim::trace::Trace::parse("t", crate::sim::BUNDLED_TRACE).unwrap();
        // Polls every 10 s: most look at an unchanged fleet. Polls every 5 minutes: fewer do.
        let fixed = || ForgeScaler::fixed(1, 1000, Duration::from_secs(600));
        let vespene = || ForgeScaler::vespene(2, 1000);
        let adaptive = || ForgeScaler::adaptive(1, 1000, AdaptiveSettings::default());
        for (make, fewer) in [(&fixed as &dyn Fn() -> ForgeScaler, 3), (&vespene, 1), (&adaptive, 3)] {
            let (mut skipping, mut every) = (make(), make().with_skipping(false));
            let skipped = replay(&mut skipping, &trace.jobs);
            assert_eq!(skipped, replay(&mut every, &trace.jobs), "{}", every.name());
            let (made, all) = (skipping.looks(), every.looks());
            assert!(made * fewer < all && made > 0, "{}: {made} of {all}", every.name());
        }
    }

    fn ticks(schedule: Invocations, upto: Millis) -> Vec<Millis> {
        let mut out = vec![schedule.at_or_after(0)];
        while let Some(&last) = out.last() {
            let next = schedule.next_after(last);
            if next > upto {
                break;
            }
            out.push(next);
        }
        out.into_iter().map(|t| t / SECOND).collect()
    }

    #[test]
    fn forge_scaler_ticks_every_10_s_within_a_50_s_budget() {
        assert_eq!(ticks(Invocations::FORGE_SCALER, 70 * SECOND), vec![0, 10, 20, 30, 40, 50, 60, 70]);
    }

    #[test]
    fn buildkite_polls_five_times_a_minute() {
        assert_eq!(ticks(Invocations::BUILDKITE, 70 * SECOND), vec![0, 10, 20, 30, 40, 60, 70]);
        assert_eq!(Invocations::BUILDKITE.at_or_after(45 * SECOND), 60 * SECOND);
        assert_eq!(Invocations::BUILDKITE.at_or_after(40 * SECOND), 40 * SECOND);
    }

    #[test]
    fn ticks_answer_as_the_invocations_they_were_made_from() {
        let schedules = [Invocations::FORGE_SCALER, Invocations::BUILDKITE, Invocations::every(5 * MINUTE)];
        for schedule in schedules {
            let table = Ticks::new(schedule);
            // Every 250 ms over three periods, and odd instants far out.
            let far = (0..200u64).map(|i| 1_000_000_007 * i + i * i * 131);
            for t in (0..3 * schedule.period).step_by(250).chain(far) {
                assert_eq!(table.next_after(t), schedule.next_after(t), "{schedule:?} next_after {t}");
                assert_eq!(table.at_or_after(t), schedule.at_or_after(t), "{schedule:?} at_or_after {t}");
                assert_eq!(table.prev_before(t), schedule.prev_before(t), "{schedule:?} prev_before {t}");
            }
        }
    }

    #[test]
    fn every_five_minutes() {
        assert_eq!(ticks(Invocations::every(5 * MINUTE), 11 * MINUTE), vec![0, 300, 600]);
    }
}
