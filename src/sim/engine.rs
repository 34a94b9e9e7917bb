//! The simulated world one policy runs against: a forge queue (FIFO), an Auto Scaling
//! Group (boot delay with seeded jitter, MinSize/MaxSize enforced as AWS does, decrementing
//! terminate refused at MinSize), instances with slots, per-second or hourly billing, and
//! the event loop on a virtual clock (a binary heap; arrivals stream from the trace).
//! It owns the capacity model every policy shares and the measurements; it decides nothing
//! about scaling: that is the policy's (see `policies`).

use super::trace::TraceJob;
use crate::agent::idle::{self, IdleConfig, Look, Verdict};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
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
}

/// Failures to inject, each as windows `[from, to)` of virtual time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The policy's ticks do nothing (the function dead, the forge down, the configuration
    /// invalid: every one of them fails the tick before it acts).
    pub ticks_fail: Vec<(Millis, Millis)>,
    /// SetDesiredCapacity is refused (AWS throttling).
    pub set_desired_fails: Vec<(Millis, Millis)>,
}

impl Faults {
    fn within(windows: &[(Millis, Millis)], t: Millis) -> bool {
        windows.iter().any(|&(from, to)| from <= t && t < to)
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    // Order within one millisecond: jobs end, instances get ready, (arrivals), leave
    // checks, removals, then the policy looks.
    /// An instance's job (instance, job) ended.
    JobDone(usize, usize),
    Ready(usize),
    LeaveCheck(usize, u32),
    Remove(usize),
    Tick,
}

fn rank(e: &Event) -> u8 {
    match e {
        Event::JobDone(..) => 0,
        Event::Ready(_) => 1,
        Event::LeaveCheck(..) => 3,
        Event::Remove(_) => 4,
        Event::Tick => 5,
    }
}
const ARRIVAL_RANK: u8 = 2;

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

/// One point of the timeline (for the plot): maxima over a time bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub at_s: f64,
    pub pending: u32,
    pub desired: u32,
    pub in_service: u32,
}

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
    pending: VecDeque<usize>,
    running: u32,
    /// Per trace job: whether it runs now (what a forge's "running" listing shows).
    job_running: Vec<bool>,
    booting: u32,
    ready: u32,
    heap: BinaryHeap<Reverse<(Millis, u8, u64, Event)>>,
    seq: u64,
    rng: SmallRng,
    instance_idle: Option<InstanceIdle>,
    uncovered: VecDeque<Millis>,
    pub measured: Measured,
    bucket_ms: Option<Millis>,
    /// The state at the last timeline record (it holds until the next event).
    held: Sample,
    last_done: Millis,
}

impl<'t> Sim<'t> {
    pub fn new(world: World, jobs: &'t [TraceJob], instance_idle: Option<InstanceIdle>, timeline: bool) -> Self {
        let span = jobs.last().map_or(0, |j| j.arrival_ms) + 3_600_000;
        Sim {
            rng: SmallRng::seed_from_u64(world.seed),
            world,
            jobs,
            next_arrival: 0,
            now: 0,
            desired: 0,
            instances: Vec::new(),
            alive: Vec::new(),
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
            bucket_ms: timeline.then(|| (span / 1500).max(SECOND)),
            held: Sample::default(),
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
        let at = self.now + after.as_millis() as Millis;
        self.push(at, Event::Remove(id));
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
        self.heap.push(Reverse((at.max(self.now), rank(&event), self.seq, event)));
    }

    fn launch(&mut self) {
        let boot_ms = self.world.boot.as_millis() as f64;
        let jitter = self.world.boot_jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 { self.rng.random_range(1.0 - jitter..=1.0 + jitter) } else { 1.0 };
        let ready_at = self.now + (boot_ms * factor).round() as Millis;
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
        });
        self.alive.push(id);
        self.desired += 1;
        self.booting += 1;
        self.measured.launches += 1;
        self.measured.peak_instances = self.measured.peak_instances.max(self.alive.len() as u32);
        self.push(ready_at, Event::Ready(id));
        // This launch covers the oldest jobs no capacity was coming for.
        for _ in 0..self.world.slots {
            let Some(arrival) = self.uncovered.pop_front() else { break };
            self.measured.reactions_s.push((self.now - arrival) as f32 / 1000.0);
        }
    }

    /// Launches instances that are ready at once and never leave (the static fleet).
    pub fn launch_ready(&mut self, count: u32) {
        for _ in 0..count.min(self.world.max_instances) {
            let saved = self.world.boot;
            self.world.boot = Duration::ZERO;
            self.launch();
            self.world.boot = saved;
        }
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
        if let Some(pos) = self.alive.iter().position(|&i| i == id) {
            self.alive.remove(pos);
        }
        self.desired -= 1;
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
        while !self.pending.is_empty() && self.ready > 0 {
            let slots = self.world.slots;
            let best = self
                .alive
                .iter()
                .copied()
                .filter(|&i| self.instances[i].state == InstanceState::Ready && self.instances[i].busy < slots)
                .max_by_key(|&i| {
                    let inst = &self.instances[i];
                    (inst.busy, inst.last_work.unwrap_or(inst.ready_at), Reverse(i))
                });
            let Some(id) = best else { return };
            let job = self.pending.pop_front().unwrap_or_default();
            self.start(id, job);
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
            inst.memory = idle::decide(&rule.config, inst.memory, Look::busy(), ms(now)).0;
        }
        self.push(now + duration_ms, Event::JobDone(id, job));
    }

    /// The watchdog looks at an idle instance: leave now, or schedule the next look.
    fn check_leave(&mut self, id: usize) {
        let Some(rule) = &self.instance_idle else { return };
        let inst = &mut self.instances[id];
        if inst.state != InstanceState::Ready || inst.busy > 0 {
            return;
        }
        let (memory, verdict) = idle::decide(&rule.config, inst.memory, Look::idle(), ms(self.now));
        inst.memory = memory;
        match verdict {
            Verdict::Leave(_) => {
                let drain = rule.drain;
                if drain.is_zero() {
                    self.leave_or_stay(id);
                } else {
                    self.drain_then_terminate(id, drain);
                }
            }
            Verdict::Stay { until: Some(at) } => {
                let version = inst.leave_version;
                let at = at.as_millis() as Millis;
                self.push(at, Event::LeaveCheck(id, version));
            }
            Verdict::Stay { until: None } => {}
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
            self.push(self.now + 60 * SECOND, Event::LeaveCheck(id, version));
            self.dispatch();
        }
    }

    fn record_timeline(&mut self) {
        let Some(bucket) = self.bucket_ms else { return };
        let at_s = (self.now / bucket * bucket) as f64 / 1000.0;
        let sample =
            Sample { at_s, pending: self.pending.len() as u32, desired: self.desired, in_service: self.in_service() };
        // Across buckets with no event, the state since the last one held: draw it there.
        if let Some(&last) = self.measured.timeline.last() {
            let next_bucket_s = last.at_s + bucket as f64 / 1000.0;
            if at_s > next_bucket_s {
                self.measured.timeline.push(Sample { at_s: next_bucket_s, ..self.held });
                self.measured.timeline.push(Sample { at_s: at_s - bucket as f64 / 1000.0, ..self.held });
            }
        }
        self.held = sample;
        match self.measured.timeline.last_mut() {
            Some(last) if last.at_s == at_s => {
                last.pending = last.pending.max(sample.pending);
                last.desired = last.desired.max(sample.desired);
                last.in_service = last.in_service.max(sample.in_service);
            }
            _ => self.measured.timeline.push(sample),
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
                inst.memory = idle::decide(&rule.config, inst.memory, Look::busy(), ms(at)).0;
            }
        }
        self.dispatch();
        if self.instances[id].busy == 0 {
            if self.instances[id].state == InstanceState::Draining {
                self.push(at, Event::Remove(id));
            } else {
                self.check_leave(id);
            }
        }
        true
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

    /// Runs the whole trace under `policy`; `progress` counts arrivals for a progress bar.
    pub fn run(mut self, policy: &mut dyn Autoscaler, progress: &AtomicU64) -> Measured {
        policy.start(&mut self);
        let last_arrival = self.jobs.last().map_or(0, |j| j.arrival_ms);
        let mut reported = 0u64;
        loop {
            let next_event = self.heap.peek().map(|Reverse((t, r, _, _))| (*t, *r));
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
                let Some(Reverse((at, _, _, event))) = self.heap.pop() else { break };
                self.now = at;
                match event {
                    Event::JobDone(id, job) => {
                        if !self.job_done(id, job, at) {
                            continue; // disrupted: counted when it was removed
                        }
                    }
                    Event::Ready(id) => {
                        let inst = &mut self.instances[id];
                        if inst.state == InstanceState::Booting {
                            inst.state = InstanceState::Ready;
                            inst.memory = idle::Memory::booted(ms(at));
                            self.booting -= 1;
                            self.ready += 1;
                            self.dispatch();
                            self.check_leave(id);
                        }
                    }
                    Event::LeaveCheck(id, version) => {
                        if self.instances[id].leave_version == version {
                            self.check_leave(id);
                        }
                    }
                    Event::Remove(id) => {
                        // A busy draining instance is removed when its last job ends.
                        if self.instances[id].busy == 0 && self.instances[id].state == InstanceState::Draining {
                            self.leave_or_stay(id);
                        }
                    }
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
                let jobs_done = self.next_arrival == self.jobs.len() && self.pending.is_empty() && self.running == 0;
                if jobs_done && (self.alive.is_empty() || self.now > last_arrival + 6 * 3_600_000) {
                    break;
                }
            }
            self.trim_uncovered();
            self.record_timeline();
        }
        progress.fetch_add(self.next_arrival as u64 - reported, Ordering::Relaxed);
        // Instances still up at the end (a static fleet, a warm pool) are billed to the end
        // of the trace's work.
        let end = self.last_done;
        let still: Vec<usize> = self.alive.clone();
        for id in still {
            self.now = end.max(self.instances[id].launched_at);
            self.remove(id);
        }
        self.measured
    }
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
        sim.instances[0].memory = idle::Memory::booted(ms(60_000));
        // Idle past both timeouts: the watchdog decides to leave, the group refuses.
        sim.now = 2_000_000;
        sim.check_leave(0);
        assert_eq!(sim.instances[0].state, InstanceState::Ready);
        assert_eq!(sim.desired(), 1);
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
}
