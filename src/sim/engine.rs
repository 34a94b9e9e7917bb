//! The simulated world one policy runs against: a forge queue (FIFO), an Auto Scaling
//! Group (boot delay with seeded jitter, MinSize/MaxSize enforced as AWS does, decrementing
//! terminate refused at MinSize, an optional warm pool: `warm`), instances with slots,
//! per-second or hourly billing, and the event loop on a virtual clock (a binary heap;
//! arrivals stream from the trace).
//! It owns the capacity model every policy shares, the failures injected into it (`Faults`:
//! failing ticks, refused SetDesiredCapacity, watchdog probes that cannot tell or are stuck
//! on busy, jobs no agent takes) and the measurements; it decides nothing about scaling:
//! that is the policy's (see `policies`).

use super::trace::TraceJob;
use super::warm::{WarmMeasured, WarmPool, WarmPoolConfig};
use crate::agent::idle::{self, IdleConfig, Look, Verdict};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Virtual time: milliseconds since the trace's first job.
pub type Millis = u64;

pub const SECOND: Millis = 1000;

/// How instances are billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// Per second with a 60 s minimum (EC2 Linux).
    PerSecond,
    /// Whole hours, rounded up.
    Hourly,
}

/// The capacity model every policy shares.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// Jobs one instance runs at once.
    pub slots: u32,
    /// The group's MaxSize.
    pub max_instances: u32,
    /// The group's MinSize.
    pub min_instances: u32,
    pub boot: Duration,
    /// Boot delays are uniform in boot * [1 - jitter, 1 + jitter].
    pub boot_jitter: f64,
    pub billing: Billing,
    pub seed: u64,
    /// Failures injected into the world (cost-safety scenarios); none by default.
    pub faults: Faults,
    /// Scheduled MinSize (ASG scheduled actions by hour of the week); none by default.
    pub min_size_schedule: Option<MinSizeSchedule>,
    /// The group's warm pool of stopped instances (`warm`); none by default.
    pub warm_pool: Option<WarmPoolConfig>,
}

/// MinSize set by recurring ASG scheduled actions, one value per hour of the week (UTC).
/// At each hour where the value changes the group's MinSize changes as a scheduled action
/// does: raising it above desired launches up to it; lowering it only lowers the bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinSizeSchedule {
    /// 168 values, Monday 00:00 UTC first.
    pub hourly: Vec<u32>,
    /// Where virtual time 0 falls in its week: milliseconds since Monday 00:00 UTC.
    pub week_offset_ms: Millis,
}

impl MinSizeSchedule {
    const HOUR: Millis = 3_600_000;
    const WEEK: Millis = 168 * Self::HOUR;

    /// The hour of the week (0 = Monday 00:00 UTC) at virtual time `t`.
    pub fn hour_of_week(&self, t: Millis) -> usize {
        ((t + self.week_offset_ms) % Self::WEEK / Self::HOUR) as usize
    }

    /// MinSize at virtual time `t` (0 for an hour the schedule lacks).
    pub fn min_size_at(&self, t: Millis) -> u32 {
        self.hourly.get(self.hour_of_week(t)).copied().unwrap_or(0)
    }

    /// The first hour boundary after `t` where MinSize changes; none when it never does.
    pub fn next_change_after(&self, t: Millis) -> Option<Millis> {
        let now = self.min_size_at(t);
        let next_hour = (t + self.week_offset_ms) / Self::HOUR * Self::HOUR + Self::HOUR - self.week_offset_ms;
        (0..168).map(|k| next_hour + k * Self::HOUR).find(|&at| self.min_size_at(at) != now)
    }
}

/// Failures to inject, each as windows `[from, to)` of virtual time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The policy's ticks do nothing (the function dead, the forge down, the configuration
    /// invalid: every one of them fails the tick before it acts).
    pub ticks_fail: Vec<(Millis, Millis)>,
    /// SetDesiredCapacity is refused (AWS throttling).
    pub set_desired_fails: Vec<(Millis, Millis)>,
    /// Every watchdog probe answers "unknown" (the agent hung: the probe cannot tell).
    pub probe_unknown: Vec<(Millis, Millis)>,
    /// Every watchdog probe answers "busy" (a wedged job, a probe script that always exits 0).
    pub probe_busy: Vec<(Millis, Millis)>,
    /// Jobs no agent can take (a label nobody serves): trace job `i` with
    /// `i % no_agent_takes_one_in == 0` is listed as pending by the forge for ever and never
    /// dispatched (0: none; 1: every job).
    pub no_agent_takes_one_in: u32,
}

impl Faults {
    fn within(windows: &[(Millis, Millis)], t: Millis) -> bool {
        windows.iter().any(|&(from, to)| from <= t && t < to)
    }

    /// What the watchdog's probe answers at `t` when the truth is `truth`.
    fn probe(&self, truth: Look, t: Millis) -> Look {
        if Self::within(&self.probe_unknown, t) {
            Look::unknown()
        } else if Self::within(&self.probe_busy, t) {
            Look::busy()
        } else {
            truth
        }
    }

    /// The first start or end of a probe window after `t`: the watchdog looks then too, as
    /// the real one looks every check interval.
    fn next_probe_change(&self, t: Millis) -> Option<Millis> {
        self.probe_unknown
            .iter()
            .chain(&self.probe_busy)
            .flat_map(|&(from, to)| [from, to])
            .filter(|&edge| edge > t)
            .min()
    }

    /// A stuck-busy window ends at `t` (the probe's last busy answer was then).
    fn probe_busy_ends_at(&self, t: Millis) -> bool {
        self.probe_busy.iter().any(|&(_, to)| to == t)
    }

    /// Whether no agent can take trace job `job`.
    pub fn no_agent_takes(&self, job: usize) -> bool {
        self.no_agent_takes_one_in > 0 && job.is_multiple_of(self.no_agent_takes_one_in as usize)
    }
}

impl Default for World {
    fn default() -> Self {
        World {
            slots: 1,
            max_instances: 1000,
            min_instances: 0,
            boot: Duration::from_secs(60),
            boot_jitter: 0.1,
            billing: Billing::PerSecond,
            seed: 1,
            faults: Faults::default(),
            min_size_schedule: None,
            warm_pool: None,
        }
    }
}

impl World {
    /// Billed milliseconds for an instance that lived `life_ms`.
    pub fn billed_ms(&self, life_ms: Millis) -> Millis {
        match self.billing {
            Billing::PerSecond => life_ms.max(60 * SECOND),
            Billing::Hourly => life_ms.max(1).div_ceil(3_600_000) * 3_600_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Booting,
    Ready,
    /// Takes no new job; leaves when its removal event fires.
    Draining,
    Gone,
}

/// One instance of the simulated group.
#[derive(Debug, Clone)]
pub struct Instance {
    pub launched_at: Millis,
    pub ready_at: Millis,
    pub state: InstanceState,
    pub busy: u32,
    /// Last job start or end on it.
    pub last_work: Option<Millis>,
    /// The forge server's record of its last work, as Woodpecker keeps it (see
    /// [`Instance::server_last_work`]).
    server_last_work: Option<Millis>,
    idle_since: Option<Millis>,
    idle_ms: Millis,
    memory: idle::Memory,
    leave_version: u32,
    /// Its place in the simulation's dispatch candidates, while it is one.
    candidate_at: Option<u32>,
}

/// Woodpecker's server writes an agent's `LastWork` at most once a minute.
const LAST_WORK_THROTTLE: Millis = 60 * SECOND;

impl Instance {
    /// The agent's `LastWork` as a Woodpecker server holds it at `now`: `Init`, `Extend`,
    /// `Log` and `Done` call `updateAgentLastWork`, which writes the time only when the
    /// stored one is at least a minute old. A running job logs and extends its lease
    /// continuously, so while busy the stored time steps forward a minute at a time.
    pub fn server_last_work(&self, now: Millis) -> Option<Millis> {
        match self.server_last_work {
            Some(stored) if self.busy > 0 && now >= stored => {
                Some(stored + (now - stored) / LAST_WORK_THROTTLE * LAST_WORK_THROTTLE)
            }
            stored => stored,
        }
    }

    /// A call that refreshes `LastWork` (`Init` at a job's start, `Done` at its end),
    /// made while the instance still counts its jobs as before the call.
    fn refresh_server_last_work(&mut self, now: Millis) {
        let stored = self.server_last_work(now);
        self.server_last_work = match stored {
            Some(t) if t + LAST_WORK_THROTTLE > now => Some(t),
            _ => Some(now),
        };
    }

    /// Since when it has run nothing (its last job's end, or since it was ready).
    pub fn idle_since(&self) -> Option<Millis> {
        if self.busy > 0 || self.state != InstanceState::Ready {
            return None;
        }
        Some(self.last_work.unwrap_or(self.ready_at))
    }
}

/// An event's instance or trace job (as `u32`: heap entries stay 32 bytes).
type Index = u32;

fn index(i: usize) -> Index {
    Index::try_from(i).expect("fewer than 2^32 instances and trace jobs")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    // Order within one millisecond: jobs end, instances get ready, (arrivals), leave
    // checks, removals, then the policy looks.
    /// An instance's job (instance, job) ended.
    JobDone(Index, Index),
    Ready(Index),
    LeaveCheck(Index, u32),
    Remove(Index),
    /// A scheduled action changes MinSize.
    MinSize,
    Tick,
}

fn rank(e: &Event) -> u8 {
    match e {
        Event::JobDone(..) => 0,
        Event::Ready(_) | Event::MinSize => 1,
        Event::LeaveCheck(..) => 3,
        Event::Remove(_) => 4,
        Event::Tick => 5,
    }
}
const ARRIVAL_RANK: u8 = 2;

/// An event in the queue: the earliest first, then by rank, then in the order scheduled.
#[derive(Debug, Clone, Copy)]
struct Scheduled {
    at: Millis,
    /// The rank in the top 8 bits, the scheduling sequence number below (unique).
    order: u64,
    event: Event,
}

impl Scheduled {
    fn new(at: Millis, event: Event, seq: u64) -> Self {
        debug_assert!(seq < 1 << 56);
        Scheduled { at, order: (rank(&event) as u64) << 56 | seq, event }
    }

    fn rank(&self) -> u8 {
        (self.order >> 56) as u8
    }

    /// Time, then rank, then scheduling order, as one number.
    fn key(&self) -> u128 {
        (self.at as u128) << 64 | self.order as u128
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Reversed: the max-heap's top is the earliest.
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key().cmp(&self.key())
    }
}

/// One autoscaler under test.
pub trait Autoscaler: Send {
    fn name(&self) -> &'static str;
    /// The instance-side idle rule, when the policy's instances leave by themselves.
    fn instance_idle(&self) -> Option<InstanceIdle>;
    /// Before the first job: launch a fixed fleet, ask for the first tick.
    fn start(&mut self, sim: &mut Sim<'_>) {
        sim.request_tick(0);
    }
    /// One look at the queue and the group; returns when to look next.
    fn tick(&mut self, sim: &mut Sim<'_>) -> Option<Millis>;
    /// The first scheduled look at or after `t` (the engine skips looks while the queue
    /// and the group are both empty: nothing can happen then).
    fn tick_at_or_after(&self, t: Millis) -> Millis;
    /// A job just arrived; an extra look at the returned time (a runner that polls for jobs).
    fn on_arrival(&mut self, _sim: &Sim<'_>) -> Option<Millis> {
        None
    }
    /// A look at `at` failed (a fault window): it acts on nothing; the schedule goes on.
    fn failed_tick(&mut self, at: Millis) -> Option<Millis> {
        Some(self.tick_at_or_after(at + 1))
    }
    /// Called after every event: a policy that stopped looking because its looks could only
    /// repeat the last one (event skipping) returns when to look again once that ends.
    fn wake(&mut self, _sim: &Sim<'_>) -> Option<Millis> {
        None
    }
}

/// An instance-side idle rule: the real watchdog logic plus how long draining takes.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceIdle {
    pub config: IdleConfig,
    /// From the leave decision to the terminate call (Buildkite sleeps 10 s for logs).
    pub drain: Duration,
}

/// A SetDesiredCapacity outside MinSize/MaxSize, refused as AWS does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

pub use super::timeline::Sample;
use super::timeline::{State, Timeline, Window};

/// What one policy's run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub instance_ms: u128,
    pub idle_ms: u128,
    pub waits_s: Vec<f32>,
    pub reactions_s: Vec<f32>,
    pub launches: u64,
    pub disrupted_jobs: u64,
    pub peak_instances: u32,
    pub rejected_set_desired: u64,
    pub timeline: Vec<Sample>,
    /// The warm pool's starts and costs (all zero without one).
    pub warm: WarmMeasured,
}

/// The running simulation of one policy.
pub struct Sim<'t> {
    pub world: World,
    jobs: &'t [TraceJob],
    next_arrival: usize,
    now: Millis,
    desired: u32,
    instances: Vec<Instance>,
    alive: Vec<usize>,
    /// The instances a job can be dispatched to (Ready, a slot free), each with its
    /// dispatch key: kept up to date at every change of state, busy or last work, so a
    /// dispatch looks at these few instead of every alive one.
    candidates: Vec<DispatchKey>,
    pending: VecDeque<usize>,
    running: u32,
    /// Per trace job: whether it runs now (what a forge's "running" listing shows).
    job_running: Vec<bool>,
    booting: u32,
    ready: u32,
    heap: BinaryHeap<Scheduled>,
    seq: u64,
    rng: SmallRng,
    warm: Option<WarmPool>,
    instance_idle: Option<InstanceIdle>,
    uncovered: VecDeque<Millis>,
    pub measured: Measured,
    /// The timeline the plots draw, when asked for.
    timeline: Option<Timeline>,
    last_done: Millis,
}

impl<'t> Sim<'t> {
    pub fn new(world: World, jobs: &'t [TraceJob], instance_idle: Option<InstanceIdle>, timeline: bool) -> Self {
        let span = jobs.last().map_or(0, |j| j.arrival_ms) + 3_600_000;
        let mut warm = world.warm_pool.clone().filter(|c| c.size > 0).map(|c| WarmPool::new(c, world.seed));
        if let Some(pool) = warm.as_mut() {
            pool.refill(0, &world);
        }
        Sim {
            warm,
            rng: SmallRng::seed_from_u64(world.seed),
            world,
            jobs,
            next_arrival: 0,
            now: 0,
            desired: 0,
            instances: Vec::new(),
            alive: Vec::new(),
            candidates: Vec::new(),
            pending: VecDeque::new(),
            running: 0,
            job_running: vec![false; jobs.len()],
            booting: 0,
            ready: 0,
            heap: BinaryHeap::new(),
            seq: 0,
            instance_idle,
            uncovered: VecDeque::new(),
            measured: Measured { waits_s: Vec::with_capacity(jobs.len()), ..Measured::default() },
            timeline: timeline.then(|| Timeline::whole_run(span)),
            last_done: 0,
        }
    }

    // ---- what policies read ----
    pub fn now(&self) -> Millis {
        self.now
    }
    pub fn pending(&self) -> u32 {
        self.pending.len() as u32
    }
    pub fn running(&self) -> u32 {
        self.running
    }
    pub fn desired(&self) -> u32 {
        self.desired
    }
    pub fn min_size(&self) -> u32 {
        self.world.min_instances
    }
    pub fn max_size(&self) -> u32 {
        self.world.max_instances
    }
    pub fn slots(&self) -> u32 {
        self.world.slots
    }
    /// Instances past boot (InService), draining ones included.
    pub fn in_service(&self) -> u32 {
        self.alive.len() as u32 - self.booting
    }
    pub fn booting(&self) -> u32 {
        self.booting
    }
    /// Ready instances that take jobs.
    pub fn ready_taking_jobs(&self) -> u32 {
        self.ready
    }
    /// Ages (whole seconds) of the pending jobs, oldest first.
    pub fn pending_ages_s(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending.iter().map(|&j| (self.now - self.jobs[j].arrival_ms) / SECOND)
    }
    /// Arrival times (ms) of the pending jobs, oldest first.
    pub fn pending_arrivals(&self) -> impl Iterator<Item = Millis> + '_ {
        self.pending.iter().map(|&j| self.jobs[j].arrival_ms)
    }
    /// Arrival times (ms) of the jobs that arrived in `(after, now]` and run now.
    pub fn running_arrivals_since(&self, after: Option<Millis>) -> impl Iterator<Item = Millis> + '_ {
        let upto = self.next_arrival;
        let from = match after {
            None => 0,
            Some(a) => self.jobs[..upto].partition_point(|j| j.arrival_ms <= a),
        };
        (from..upto).filter(|&j| self.job_running[j]).map(|j| self.jobs[j].arrival_ms)
    }
    /// Arrival times (ms) of jobs that arrived in `(after, now]`.
    pub fn arrivals_since(&self, after: Option<Millis>) -> impl Iterator<Item = Millis> + '_ {
        let upto = self.next_arrival;
        let from = match after {
            None => 0,
            Some(a) => self.jobs[..upto].partition_point(|j| j.arrival_ms <= a),
        };
        self.jobs[from..upto].iter().map(|j| j.arrival_ms)
    }
    /// Alive instances (booting, ready or draining), oldest first.
    pub fn alive(&self) -> impl Iterator<Item = (usize, &Instance)> + '_ {
        self.alive.iter().map(|&i| (i, &self.instances[i]))
    }
    pub fn instance(&self, id: usize) -> &Instance {
        &self.instances[id]
    }
    /// Jobs arrived so far.
    pub fn arrived(&self) -> usize {
        self.next_arrival
    }
    /// Whether a look at `t` fails (a fault window).
    pub fn looks_fail_at(&self, t: Millis) -> bool {
        Faults::within(&self.world.faults.ticks_fail, t)
    }

    // ---- what policies do ----
    /// SetDesiredCapacity(HonorCooldown=false): outside MinSize/MaxSize it is refused;
    /// above the current desired it launches instances at once; below it the group
    /// terminates the newest instances (no modelled policy does this).
    pub fn set_desired(&mut self, desired: u32) -> Result<(), Rejected> {
        if Faults::within(&self.world.faults.set_desired_fails, self.now) {
            self.measured.rejected_set_desired += 1;
            return Err(Rejected);
        }
        if desired < self.world.min_instances || desired > self.world.max_instances {
            self.measured.rejected_set_desired += 1;
            return Err(Rejected);
        }
        while self.desired < desired {
            self.launch();
        }
        while self.desired > desired {
            let Some(&newest) = self.alive.last() else { break };
            self.remove(newest);
        }
        Ok(())
    }

    /// TerminateInstanceInAutoScalingGroup(ShouldDecrementDesiredCapacity=true) on one
    /// instance; refused (the instance stays) when it would go below MinSize.
    pub fn terminate_decrement(&mut self, id: usize) -> Result<(), Rejected> {
        if self.instances[id].state == InstanceState::Gone {
            return Ok(());
        }
        if self.desired <= self.world.min_instances {
            return Err(Rejected);
        }
        self.remove(id);
        Ok(())
    }

    /// Stops an instance taking jobs and terminates it (with decrement) after `after`, or
    /// when its running jobs end, whichever is later.
    pub fn drain_then_terminate(&mut self, id: usize, after: Duration) {
        let inst = &mut self.instances[id];
        if matches!(inst.state, InstanceState::Gone | InstanceState::Draining) {
            return;
        }
        match inst.state {
            InstanceState::Booting => self.booting -= 1,
            InstanceState::Ready => self.ready -= 1,
            _ => {}
        }
        inst.state = InstanceState::Draining;
        inst.leave_version += 1;
        self.sync_candidate(id);
        let at = self.now + after.as_millis() as Millis;
        self.push(at, Event::Remove(index(id)));
    }

    /// Changes the watchdog's idle timeout (the group tag) and re-decides every idle instance.
    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        let Some(rule) = &mut self.instance_idle else { return };
        if rule.config.idle_timeout == timeout {
            return;
        }
        rule.config.idle_timeout = timeout;
        let idle: Vec<usize> = self
            .alive
            .iter()
            .copied()
            .filter(|&i| self.instances[i].state == InstanceState::Ready && self.instances[i].busy == 0)
            .collect();
        for id in idle {
            self.instances[id].leave_version += 1;
            self.check_leave(id);
        }
    }

    /// Asks for a policy look at `at` (not before now). The policy avoids duplicates.
    pub fn request_tick(&mut self, at: Millis) {
        self.push(at, Event::Tick);
    }

    // ---- internals ----
    fn push(&mut self, at: Millis, event: Event) {
        self.seq += 1;
        self.heap.push(Scheduled::new(at.max(self.now), event, self.seq));
    }

    fn launch(&mut self) {
        // A stopped instance of the warm pool when there is one, else a cold launch.
        let now = self.now;
        let boot = self.warm.as_mut().and_then(|pool| pool.take(now)).unwrap_or(self.world.boot);
        let boot_ms = boot.as_millis() as f64;
        let jitter = self.world.boot_jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 { self.rng.random_range(1.0 - jitter..=1.0 + jitter) } else { 1.0 };
        let ready_at = self.now + (boot_ms * factor).round() as Millis;
        if let Some(pool) = self.warm.as_mut() {
            pool.refill(self.now, &self.world);
        }
        let id = self.instances.len();
        self.instances.push(Instance {
            launched_at: self.now,
            ready_at,
            state: InstanceState::Booting,
            busy: 0,
            last_work: None,
            server_last_work: None,
            idle_since: Some(self.now),
            idle_ms: 0,
            memory: idle::Memory::booted(Duration::ZERO),
            leave_version: 0,
            candidate_at: None,
        });
        self.alive.push(id);
        self.desired += 1;
        self.booting += 1;
        self.measured.launches += 1;
        self.measured.peak_instances = self.measured.peak_instances.max(self.alive.len() as u32);
        self.push(ready_at, Event::Ready(index(id)));
        // This launch covers the oldest jobs no capacity was coming for.
        for _ in 0..self.world.slots {
            let Some(arrival) = self.uncovered.pop_front() else { break };
            self.measured.reactions_s.push((self.now - arrival) as f32 / 1000.0);
        }
    }

    /// Launches instances that are ready at once and never leave (the static fleet).
    pub fn launch_ready(&mut self, count: u32) {
        // A fixed fleet is there from the start: it takes nothing from a warm pool.
        let pool = self.warm.take();
        for _ in 0..count.min(self.world.max_instances) {
            let saved = self.world.boot;
            self.world.boot = Duration::ZERO;
            self.launch();
            self.world.boot = saved;
        }
        self.warm = pool;
    }

    fn remove(&mut self, id: usize) {
        let now = self.now;
        let inst = &mut self.instances[id];
        match inst.state {
            InstanceState::Gone => return,
            InstanceState::Booting => self.booting -= 1,
            InstanceState::Ready => self.ready -= 1,
            InstanceState::Draining => {}
        }
        self.measured.disrupted_jobs += inst.busy as u64;
        self.running -= inst.busy;
        inst.busy = 0;
        if let Some(since) = inst.idle_since.take() {
            inst.idle_ms += now - since;
        }
        inst.state = InstanceState::Gone;
        let life = now - inst.launched_at;
        let billed = self.world.billed_ms(life);
        self.measured.instance_ms += billed as u128;
        self.measured.idle_ms += (inst.idle_ms + (billed - life)) as u128;
        self.sync_candidate(id);
        if let Some(pos) = self.alive.iter().position(|&i| i == id) {
            self.alive.remove(pos);
        }
        self.desired -= 1;
    }

    /// No pending job is one an agent can take.
    fn only_stuck_pending(&self) -> bool {
        let faults = &self.world.faults;
        self.pending.is_empty()
            || (faults.no_agent_takes_one_in > 0 && self.pending.iter().all(|&job| faults.no_agent_takes(job)))
    }

    fn capacity_jobs(&self) -> u64 {
        (self.booting as u64 + self.ready as u64) * self.world.slots as u64
    }

    /// Jobs that no running, booting or ready slot will serve: the oldest are dropped when
    /// capacity frees up by itself (no scale-out needed for them).
    fn trim_uncovered(&mut self) {
        let demand = self.running as u64 + self.pending.len() as u64;
        let short = demand.saturating_sub(self.capacity_jobs()) as usize;
        while self.uncovered.len() > short {
            self.uncovered.pop_front();
        }
    }

    fn arrive(&mut self, job: usize) {
        self.pending.push_back(job);
        let demand = self.running as u64 + self.pending.len() as u64;
        if demand > self.capacity_jobs() + self.uncovered.len() as u64 {
            self.uncovered.push_back(self.now);
        }
        self.dispatch();
    }

    /// Gives pending jobs to ready instances: the busiest first, then the most recently
    /// used, so the others stay idle and can leave.
    fn dispatch(&mut self) {
        while self.ready > 0 {
            // The oldest job an agent can take (jobs no agent takes stay listed as pending).
            let faults = &self.world.faults;
            let next = if faults.no_agent_takes_one_in == 0 {
                (!self.pending.is_empty()).then_some(0)
            } else {
                self.pending.iter().position(|&job| !faults.no_agent_takes(job))
            };
            let Some(next) = next else { return };
            #[cfg(any(test, debug_assertions))]
            self.assert_candidates();
            // Keys are unique (they end with the id): the greatest is the one instance the
            // key picks, whatever the candidates' order.
            let Some(&key) = self.candidates.iter().max() else { return };
            let id = dispatch_key_id(key);
            let job = self.pending.remove(next).unwrap_or_default();
            self.start(id, job);
        }
    }

    /// Puts instance `id` in or out of the dispatch candidates, with its current key; called
    /// after every change of its state, busy or last work.
    fn sync_candidate(&mut self, id: usize) {
        let inst = &self.instances[id];
        let wanted = inst.state == InstanceState::Ready && inst.busy < self.world.slots;
        let key = dispatch_key(id, inst);
        match (inst.candidate_at, wanted) {
            (Some(at), true) => self.candidates[at as usize] = key,
            (Some(at), false) => {
                self.candidates.swap_remove(at as usize);
                if let Some(&moved) = self.candidates.get(at as usize) {
                    self.instances[dispatch_key_id(moved)].candidate_at = Some(at);
                }
                self.instances[id].candidate_at = None;
            }
            (None, true) => {
                self.instances[id].candidate_at = Some(self.candidates.len() as u32);
                self.candidates.push(key);
            }
            (None, false) => {}
        }
    }

    /// The dispatch candidates are exactly the alive instances that are Ready with a free
    /// slot, each with its current key (what a scan of every alive instance would find).
    #[cfg(any(test, debug_assertions))]
    fn assert_candidates(&self) {
        let slots = self.world.slots;
        let mut scan: Vec<DispatchKey> = self
            .alive
            .iter()
            .copied()
            .filter(|&i| self.instances[i].state == InstanceState::Ready && self.instances[i].busy < slots)
            .map(|i| dispatch_key(i, &self.instances[i]))
            .collect();
        let mut kept = self.candidates.clone();
        scan.sort_unstable();
        kept.sort_unstable();
        assert_eq!(kept, scan, "dispatch candidates at {}", self.now);
        for (at, &key) in self.candidates.iter().enumerate() {
            let id = dispatch_key_id(key);
            assert_eq!(self.instances[id].candidate_at, Some(at as u32), "instance {id}'s candidate place");
        }
    }

    fn start(&mut self, id: usize, job: usize) {
        let now = self.now;
        let TraceJob { arrival_ms, duration_ms } = self.jobs[job];
        self.measured.waits_s.push((now - arrival_ms) as f32 / 1000.0);
        self.running += 1;
        self.job_running[job] = true;
        let inst = &mut self.instances[id];
        if inst.busy == 0 {
            if let Some(since) = inst.idle_since.take() {
                inst.idle_ms += now - since;
            }
        }
        inst.refresh_server_last_work(now);
        inst.busy += 1;
        inst.last_work = Some(now);
        inst.leave_version += 1;
        if let Some(rule) = &self.instance_idle {
            let look = self.world.faults.probe(Look::busy(), now);
            inst.memory = idle::decide(&rule.config, inst.memory, look, ms(now)).0;
        }
        self.sync_candidate(id);
        self.push(now + duration_ms, Event::JobDone(index(id), index(job)));
    }

    /// The watchdog looks at an idle instance: leave now, or schedule the next look.
    fn check_leave(&mut self, id: usize) {
        let Some(rule) = &self.instance_idle else { return };
        let inst = &mut self.instances[id];
        if inst.state != InstanceState::Ready || inst.busy > 0 {
            return;
        }
        let faults = &self.world.faults;
        let mut memory = inst.memory;
        if faults.probe_busy_ends_at(self.now) && memory.busy_since.is_some() {
            // The probe said busy until this instant, then idle.
            memory = idle::decide(&rule.config, memory, Look::busy(), ms(self.now)).0;
        }
        let look = faults.probe(Look::idle(), self.now);
        let (memory, verdict) = idle::decide(&rule.config, memory, look, ms(self.now));
        inst.memory = memory;
        // The verdict holds while the probe's answer does; a probe window's edge is a new look.
        let change = faults.next_probe_change(self.now);
        match verdict {
            Verdict::Leave(_) => {
                let drain = rule.drain;
                if drain.is_zero() {
                    self.leave_or_stay(id);
                } else {
                    self.drain_then_terminate(id, drain);
                }
            }
            Verdict::Stay { until } => {
                let version = inst.leave_version;
                let at = until.map(|at| at.as_millis() as Millis).into_iter().chain(change).min();
                if let Some(at) = at {
                    self.push(at, Event::LeaveCheck(index(id), version));
                }
            }
        }
    }

    /// Terminate with decrement; at MinSize the instance undrains and looks again in a minute.
    fn leave_or_stay(&mut self, id: usize) {
        if self.terminate_decrement(id).is_err() {
            let inst = &mut self.instances[id];
            if inst.state == InstanceState::Draining {
                inst.state = InstanceState::Ready;
                self.ready += 1;
            }
            inst.leave_version += 1;
            let version = inst.leave_version;
            self.sync_candidate(id);
            self.push(self.now + 60 * SECOND, Event::LeaveCheck(index(id), version));
            self.dispatch();
        }
    }

    /// Keeps the timeline over `window` only, at that window's own resolution.
    pub fn timeline_window(mut self, window: Window) -> Self {
        if self.timeline.is_some() {
            self.timeline = Some(Timeline::new(window));
        }
        self
    }

    fn record_timeline(&mut self) {
        let state = State { pending: self.pending.len() as u32, desired: self.desired, in_service: self.in_service() };
        if let Some(timeline) = &mut self.timeline {
            timeline.change(self.now, state);
        }
    }

    /// A job on instance `id` ended at `at`; false when the instance was already gone (the
    /// job was disrupted and counted then).
    fn job_done(&mut self, id: usize, job: usize, at: Millis) -> bool {
        self.job_running[job] = false;
        if self.instances[id].state == InstanceState::Gone {
            return false;
        }
        self.running -= 1;
        self.last_done = at;
        let inst = &mut self.instances[id];
        inst.refresh_server_last_work(at);
        inst.busy -= 1;
        inst.last_work = Some(at);
        if inst.busy == 0 {
            if inst.state != InstanceState::Gone {
                inst.idle_since = Some(at);
            }
            if let Some(rule) = &self.instance_idle {
                let look = self.world.faults.probe(Look::busy(), at);
                inst.memory = idle::decide(&rule.config, inst.memory, look, ms(at)).0;
            }
        }
        self.sync_candidate(id);
        self.dispatch();
        if self.instances[id].busy == 0 {
            if self.instances[id].state == InstanceState::Draining {
                self.push(at, Event::Remove(index(id)));
            } else {
                self.check_leave(id);
            }
        }
        true
    }

    /// Instance `id` finished booting at `at` (unless it left meanwhile): it takes jobs.
    fn instance_ready(&mut self, id: usize, at: Millis) {
        let inst = &mut self.instances[id];
        if inst.state == InstanceState::Booting {
            inst.state = InstanceState::Ready;
            inst.memory = idle::Memory::booted(ms(at));
            self.booting -= 1;
            self.ready += 1;
            self.sync_candidate(id);
            self.dispatch();
            self.check_leave(id);
        }
    }

    /// The policy looks (or, in a fault window, its look fails) and asks for its next look;
    /// false when nothing is queued, nothing is up and no job is left to arrive.
    fn policy_tick(&mut self, policy: &mut dyn Autoscaler, at: Millis) -> bool {
        let next =
            if Faults::within(&self.world.faults.ticks_fail, at) { policy.failed_tick(at) } else { policy.tick(self) };
        if let Some(mut next) = next {
            // Nothing queued, nothing up: skip to the next arrival.
            if self.pending.is_empty() && self.alive.is_empty() {
                match self.jobs.get(self.next_arrival) {
                    Some(job) if job.arrival_ms > next => {
                        next = policy.tick_at_or_after(job.arrival_ms);
                    }
                    Some(_) => {}
                    None => return false,
                }
            }
            self.request_tick(next);
        }
        true
    }

    /// The scheduled action due now: MinSize takes the schedule's value (capped at
    /// MaxSize), desired is raised to it when below (launching), and the next change is
    /// scheduled. Lowering MinSize leaves desired alone.
    fn scheduled_min_size(&mut self) {
        let Some(schedule) = &self.world.min_size_schedule else { return };
        let min = schedule.min_size_at(self.now).min(self.world.max_instances);
        let next = schedule.next_change_after(self.now);
        self.world.min_instances = min;
        while self.desired < min {
            self.launch();
        }
        if let Some(at) = next {
            self.push(at, Event::MinSize);
        }
    }

    /// Runs the whole trace under `policy`; `progress` counts arrivals for a progress bar.
    pub fn run(mut self, policy: &mut dyn Autoscaler, progress: &AtomicU64) -> Measured {
        self.scheduled_min_size();
        policy.start(&mut self);
        let last_arrival = self.jobs.last().map_or(0, |j| j.arrival_ms);
        let mut reported = 0u64;
        loop {
            let next_event = self.heap.peek().map(|e| (e.at, e.rank()));
            let next_job = self.jobs.get(self.next_arrival).map(|j| (j.arrival_ms, ARRIVAL_RANK));
            let take_job = match (next_job, next_event) {
                (Some(j), Some(e)) => j <= e,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_job {
                let job = self.next_arrival;
                self.now = self.jobs[job].arrival_ms;
                self.next_arrival += 1;
                self.arrive(job);
                if let Some(at) = policy.on_arrival(&self) {
                    self.request_tick(at);
                }
                if let Some(at) = policy.wake(&self) {
                    self.request_tick(at);
                }
                if self.next_arrival as u64 - reported >= 4096 {
                    progress.fetch_add(self.next_arrival as u64 - reported, Ordering::Relaxed);
                    reported = self.next_arrival as u64;
                }
            } else {
                let Some(Scheduled { at, event, .. }) = self.heap.pop() else { break };
                self.now = at;
                match event {
                    Event::JobDone(id, job) => {
                        if !self.job_done(id as usize, job as usize, at) {
                            continue; // disrupted: counted when it was removed
                        }
                    }
                    Event::Ready(id) => self.instance_ready(id as usize, at),
                    Event::LeaveCheck(id, version) => {
                        let id = id as usize;
                        if self.instances[id].leave_version == version {
                            self.check_leave(id);
                        }
                    }
                    Event::Remove(id) => {
                        let id = id as usize;
                        // A busy draining instance is removed when its last job ends.
                        if self.instances[id].busy == 0 && self.instances[id].state == InstanceState::Draining {
                            self.leave_or_stay(id);
                        }
                    }
                    Event::MinSize => self.scheduled_min_size(),
                    Event::Tick => {
                        if !self.policy_tick(policy, at) {
                            continue; // no more arrivals and nothing up: nothing to look at
                        }
                    }
                }
                if let Some(at) = policy.wake(&self) {
                    self.request_tick(at);
                }
                // Done: every job ran and nothing is left but the policy's own clock.
                // (Jobs no agent takes stay pending: the run then goes on to the horizon.)
                let jobs_done = self.next_arrival == self.jobs.len() && self.only_stuck_pending() && self.running == 0;
                let nothing_left = self.alive.is_empty() && self.pending.is_empty();
                if jobs_done && (nothing_left || self.now > last_arrival + 6 * 3_600_000) {
                    break;
                }
            }
            #[cfg(any(test, debug_assertions))]
            self.assert_candidates();
            self.trim_uncovered();
            self.record_timeline();
        }
        progress.fetch_add(self.next_arrival as u64 - reported, Ordering::Relaxed);
        if let Some(timeline) = self.timeline.take() {
            self.measured.timeline = timeline.finish(self.now);
        }
        // Instances still up at the end (a static fleet, a warm pool) are billed to the end
        // of the trace's work.
        let end = self.last_done;
        let still: Vec<usize> = self.alive.clone();
        for id in still {
            self.now = end.max(self.instances[id].launched_at);
            self.remove(id);
        }
        if let Some(pool) = self.warm.as_mut() {
            self.measured.warm = pool.finish(end);
        }
        self.measured
    }
}

/// What dispatch prefers among ready instances with a free slot, greatest first: the
/// busiest, then the most recently used (so the others stay idle and can leave), then the
/// oldest. Unique per instance.
/// Packed in one number, most significant first: busy, the last work (or ready) time, and
/// the id's complement (the oldest is greatest), so candidates compare as integers.
type DispatchKey = u128;

fn dispatch_key(id: usize, inst: &Instance) -> DispatchKey {
    let time = inst.last_work.unwrap_or(inst.ready_at);
    (inst.busy as u128) << 96 | (time as u128) << 32 | !index(id) as u128
}

fn dispatch_key_id(key: DispatchKey) -> usize {
    !(key as u32) as usize
}

fn ms(t: Millis) -> Duration {
    Duration::from_millis(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(min: u32, max: u32) -> World {
        World { min_instances: min, max_instances: max, boot_jitter: 0.0, ..World::default() }
    }

    #[test]
    fn set_desired_outside_min_and_max_is_rejected_and_changes_nothing() {
        let mut sim = Sim::new(world(1, 3), &[], None, false);
        assert_eq!(sim.set_desired(4), Err(Rejected));
        assert_eq!(sim.set_desired(0), Err(Rejected));
        assert_eq!(sim.desired(), 0);
        assert_eq!(sim.set_desired(3), Ok(()));
        assert_eq!((sim.desired(), sim.booting(), sim.measured.launches), (3, 3, 3));
        assert_eq!(sim.measured.rejected_set_desired, 2);
    }

    #[test]
    fn decrementing_terminate_is_refused_at_min_size() {
        let mut sim = Sim::new(world(1, 3), &[], None, false);
        sim.set_desired(2).unwrap();
        assert_eq!(sim.terminate_decrement(1), Ok(()));
        assert_eq!(sim.desired(), 1);
        assert_eq!(sim.terminate_decrement(0), Err(Rejected));
        assert_eq!(sim.desired(), 1);
        assert_eq!(sim.alive().count(), 1);
    }

    #[test]
    fn an_instance_at_min_size_stays_instead_of_leaving() {
        let jobs = [TraceJob { arrival_ms: 0, duration_ms: 100_000 }];
        let rule = InstanceIdle { config: IdleConfig::default(), drain: Duration::ZERO };
        let mut sim = Sim::new(world(1, 3), &jobs, Some(rule), false);
        sim.set_desired(1).unwrap();
        sim.now = 60_000;
        sim.instances[0].state = InstanceState::Ready;
        sim.booting -= 1;
        sim.ready += 1;
        sim.sync_candidate(0);
        sim.instances[0].memory = idle::Memory::booted(ms(60_000));
        // Idle past both timeouts: the watchdog decides to leave, the group refuses.
        sim.now = 2_000_000;
        sim.check_leave(0);
        assert_eq!(sim.instances[0].state, InstanceState::Ready);
        assert_eq!(sim.desired(), 1);
    }

    #[test]
    fn scheduled_min_size_launches_up_to_a_raised_floor_and_a_lowered_one_lets_instances_go() {
        // MinSize 2 during the week's second hour (virtual time 0 is Monday 00:00).
        let mut hourly = vec![0; 168];
        hourly[1] = 2;
        let schedule = MinSizeSchedule { hourly, week_offset_ms: 0 };
        assert_eq!(schedule.next_change_after(0), Some(3_600_000));
        assert_eq!(schedule.next_change_after(3_600_000), Some(7_200_000));
        assert_eq!(schedule.next_change_after(7_200_000), Some(3_600_000 + 168 * 3_600_000));
        let jobs = [TraceJob { arrival_ms: 10 * 3_600_000, duration_ms: 1000 }];
        let rule = InstanceIdle { config: IdleConfig::default(), drain: Duration::ZERO };
        let world = World { min_size_schedule: Some(schedule), ..world(0, 5) };
        let mut policy = crate::sim::policies::ForgeScaler::fixed(1, 5, Duration::from_secs(600));
        let measured = Sim::new(world, &jobs, Some(rule), false).run(&mut policy, &AtomicU64::new(0));
        // Two floor instances, then one for the job at 10:00 (the floor's left by then).
        assert_eq!(measured.launches, 3);
        // The floor's instances lived from 01:00 until about a minute after 02:00.
        let floor_ms = measured.instance_ms - 60_000 - 1000 - 600_000;
        assert!((2 * 3_600_000..2 * 3_720_000).contains(&(floor_ms as u64)), "{floor_ms}");
    }

    /// The simulated forge-scaler is the Lambda's own pool step: on the same three pending
    /// jobs, one look by the simulator and one real tick (in-memory fleet, a fake forge
    /// giving the same jobs) decide the same desired capacity and write the same tags.
    #[tokio::test]
    async fn the_simulated_forge_scaler_and_the_tick_make_the_same_decision() {
        use crate::cloud::memory::MemoryFleet;
        use crate::config::{Config, PoolConfig};
        use crate::forge::{ForgeError, JobSource};
        use crate::model::{JobRef, PoolJobs};
        use crate::sim::policies::ForgeScaler;
        use crate::tick::{tick, Edges};
        use std::collections::BTreeMap;
        use std::sync::Arc;

        let jobs = [TraceJob { arrival_ms: 0, duration_ms: 60_000 }; 3];
        let mut policy = ForgeScaler::adaptive(1, 10, crate::adaptive::AdaptiveSettings::default());
        let mut sim = Sim::new(world(0, 10), &jobs, policy.instance_idle(), false);
        for job in 0..jobs.len() {
            sim.next_arrival += 1;
            sim.arrive(job);
        }
        sim.now = 5_000;
        policy.tick(&mut sim);
        let simulated = (sim.desired(), policy.group_tags().clone());

        struct Three(chrono::DateTime<chrono::Utc>);
        #[async_trait::async_trait]
        impl JobSource for Three {
            async fn jobs(&self, _pool: &PoolConfig, _deadline: tokio::time::Instant) -> Result<PoolJobs, ForgeError> {
                Ok(PoolJobs { pending: vec![JobRef::created_at(Some(self.0)); 3], ..PoolJobs::default() })
            }
        }
        let epoch = crate::sim::policies::sim_time(0);
        let text = "[forges.wp]\nkind = \"woodpecker\"\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n\
                    [pools.p]\nforge = \"wp\"\nasg = \"g\"\nidle_timeout = \"adaptive\"\nmax_instances = 10\n";
        let config = Config::from_toml(text, |_| None).unwrap();
        let fleet = Arc::new(MemoryFleet::new().with_group("g", 0, 10, 0));
        let sources: BTreeMap<String, Arc<dyn JobSource>> = [("wp".to_string(), Arc::new(Three(epoch)) as _)].into();
        tick(
            &config,
            &Edges::new(sources, fleet.clone(), BTreeMap::new()),
            crate::sim::policies::sim_time(5_000),
            true,
        )
        .await
        .unwrap();
        let real = fleet.group("g").unwrap();
        assert_eq!(simulated, (real.group.desired, real.tags));
        assert_eq!(simulated.0, 3);
    }

    /// A dispatch takes the ready instance with a free slot that is busiest, then most
    /// recently used, then oldest; booting, draining and full instances take nothing.
    #[test]
    fn dispatch_picks_the_busiest_then_most_recently_used_free_ready_instance() {
        let jobs = [TraceJob { arrival_ms: 0, duration_ms: 1_000_000 }; 6];
        let mut sim = Sim::new(World { slots: 2, ..world(0, 10) }, &jobs, None, false);
        sim.launch_ready(4);
        for id in 0..4 {
            sim.instance_ready(id, 0);
        }
        sim.drain_then_terminate(3, Duration::from_secs(3600));
        sim.now = 10;
        sim.next_arrival = 1;
        sim.arrive(0); // all idle since 0: the oldest, 0, takes it
        assert_eq!(sim.instances[0].busy, 1);
        sim.now = 20;
        sim.next_arrival = 2;
        sim.arrive(1); // 0 is the busiest with a free slot
        assert_eq!(sim.instances[0].busy, 2);
        sim.now = 30;
        sim.next_arrival = 3;
        sim.arrive(2); // 0 is full; 1 and 2 tie on idle time: the oldest
        assert_eq!(sim.instances[1].busy, 1);
        sim.now = 40;
        sim.next_arrival = 4;
        sim.arrive(3); // 1 is busier than 2
        assert_eq!(sim.instances[1].busy, 2);
        sim.next_arrival = 5;
        sim.arrive(4); // only 2 left; 3 drains
        assert_eq!((sim.instances[2].busy, sim.instances[3].busy), (1, 0));
        sim.assert_candidates();
        assert_eq!(sim.candidates, vec![dispatch_key(2, &sim.instances[2])]);
    }

    #[test]
    fn events_come_out_by_time_then_rank_then_the_order_they_were_scheduled() {
        let mut sim = Sim::new(world(0, 3), &[], None, false);
        sim.push(20, Event::Tick);
        sim.push(10, Event::Tick);
        sim.push(10, Event::Remove(7));
        sim.push(10, Event::LeaveCheck(1, 2));
        sim.push(10, Event::MinSize);
        sim.push(10, Event::Ready(3));
        sim.push(10, Event::JobDone(4, 5));
        sim.push(10, Event::JobDone(1, 9));
        sim.now = 15;
        sim.push(5, Event::Ready(8)); // in the past: due now
        let order: Vec<(Millis, Event)> = std::iter::from_fn(|| sim.heap.pop()).map(|e| (e.at, e.event)).collect();
        use Event::*;
        let expected = [
            (10, JobDone(4, 5)),
            (10, JobDone(1, 9)),
            (10, MinSize),
            (10, Ready(3)),
            (10, LeaveCheck(1, 2)),
            (10, Remove(7)),
            (10, Tick),
            (15, Ready(8)),
            (20, Tick),
        ];
        assert_eq!(order, expected);
        assert_eq!(std::mem::size_of::<Scheduled>(), 32, "heap entries stay small");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// The dispatch candidates kept as instances change always equal a scan of every
        /// alive instance (checked at every dispatch and after every event), for every
        /// policy, with slots, bounds, warm pool, webhooks and faults.
        #[test]
        fn dispatch_candidates_always_equal_a_scan_of_the_alive_instances(
            rows in proptest::collection::vec((0u64..400, 1u64..900), 1..60),
            slots in 1u32..4,
            min in 0u32..2,
            max in 2u32..8,
            warm in 0u32..3,
            webhooks in proptest::bool::ANY,
            hourly in proptest::bool::ANY,
            fault in 0u8..6,
            window in (0u64..4000, 1u64..3000),
        ) {
            let mut arrival = 0;
            let jobs: Vec<TraceJob> = rows
                .iter()
                .map(|&(gap, duration)| {
                    arrival += gap * SECOND;
                    TraceJob { arrival_ms: arrival, duration_ms: duration * SECOND }
                })
                .collect();
            let trace = super::super::trace::Trace { name: "random".into(), jobs };
            let span = (window.0 * SECOND, (window.0 + window.1) * SECOND);
            let faults = match fault {
                1 => Faults { ticks_fail: vec![span], ..Faults::default() },
                2 => Faults { set_desired_fails: vec![span], ..Faults::default() },
                3 => Faults { probe_unknown: vec![span], ..Faults::default() },
                4 => Faults { probe_busy: vec![span], ..Faults::default() },
                5 => Faults { no_agent_takes_one_in: 3, ..Faults::default() },
                _ => Faults::default(),
            };
            let billing = if hourly { Billing::Hourly } else { Billing::PerSecond };
            let options = super::super::Options {
                world: World { slots, min_instances: min, max_instances: max, billing, faults, ..World::default() },
                webhooks,
                warm_pool: (warm > 0).then(|| WarmPoolConfig::new(warm, 20.0, 0.1, max).unwrap()),
                ..super::super::Options::default()
            };
            let report = super::super::run(&trace, &options, &AtomicU64::new(0)).unwrap();
            proptest::prop_assert_eq!(report.policies.len(), super::super::POLICY_NAMES.len());
        }
    }
}
