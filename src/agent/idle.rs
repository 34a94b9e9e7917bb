//! The watchdog's decision, pure: from the idle settings, what the instance has seen so far
//! and one fresh observation at `now`, whether to stay or to drain and leave. Time is a
//! parameter (seconds since an epoch the caller picks), so the simulator drives the same
//! function on a virtual clock. No I/O, no clock.
//!
//! # Every state is bounded
//! | state | bound | leaves with |
//! |---|---|---|
//! | never ready | `boot_timeout` after boot | [`Leave::NeverReady`] |
//! | ready, idle, never ran a job | `idle_timeout` after the agent was first seen ready | [`Leave::NoJobSinceBoot`] |
//! | idle after a job | `idle_timeout` after the last busy look | [`Leave::IdleTimeout`] |
//! | unknown (the probe cannot tell) | `unknown_grace` in a row, then it counts as idle | [`Leave::UnknownGrace`] |
//! | busy | `max_busy` without one idle look: a broken probe | [`Leave::MaxBusy`] |
//! | idle or unknown, old | `max_lifetime` after boot (hard cap) | [`Leave::MaxLifetime`] |
//! | idle after `max_jobs` jobs | at once | [`Leave::MaxJobs`] |
//! | rebalance recommendation | idle: at once; busy: drain now, leave when done | [`Leave::Rebalance`] |
//!
//! No separate dispatch grace for a freshly ready agent: the agents poll their forge every few
//! seconds (gitlab-runner's documented `check_interval` default is 3 s; Forgejo/Gitea runners
//! and Woodpecker ask continuously), far below the adaptive timeout's 60 s floor and the
//! 10 min default, and an idle timeout shorter than the agent's poll would be wrong for a used
//! instance as much as for a new one. So the idle clock starts when the agent is first seen
//! ready, and `boot_timeout` bounds only "never became ready".

use serde::Serialize;
use std::time::Duration;

/// Idle settings of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleConfig {
    /// How long an idle instance stays before leaving, counted from its last job or, when it
    /// ran none, from when its agent was first seen ready (default 10 min).
    pub idle_timeout: Duration,
    /// An agent never seen ready by this time after boot leaves (default 10 min). Once ready,
    /// the idle clock runs instead.
    pub boot_timeout: Duration,
    /// Hard cap on age: leave once this old, as soon as idle or unknown (None: never).
    pub max_lifetime: Option<Duration>,
    /// Billing period for hourly-billed machines: leave only in its last `billing_margin`.
    pub billing_period: Option<Duration>,
    pub billing_margin: Duration,
    /// Unknown (the probe cannot tell) this long in a row counts as idle: an agent that cannot
    /// be observed is broken, and a broken agent serves no jobs (default 15 min).
    pub unknown_grace: Duration,
    /// Busy this long without one idle look counts as a broken probe, and the instance leaves
    /// (default 24 h: longer than any sane job timeout).
    pub max_busy: Duration,
    /// Leave after this many jobs, when idle (0: no limit). Jobs are busy -> idle transitions
    /// the looks see.
    pub max_jobs: u32,
    /// Leave on an EC2 rebalance recommendation: idle at once, busy when done (default true).
    pub leave_on_rebalance: bool,
}

/// Default of [`IdleConfig::unknown_grace`].
pub const DEFAULT_UNKNOWN_GRACE: Duration = Duration::from_secs(15 * 60);
/// Default of [`IdleConfig::max_busy`].
pub const DEFAULT_MAX_BUSY: Duration = Duration::from_secs(24 * 3600);

impl Default for IdleConfig {
    fn default() -> Self {
        IdleConfig {
            idle_timeout: Duration::from_secs(600),
            boot_timeout: Duration::from_secs(600),
            max_lifetime: None,
            billing_period: None,
            billing_margin: Duration::from_secs(300),
            unknown_grace: DEFAULT_UNKNOWN_GRACE,
            max_busy: DEFAULT_MAX_BUSY,
            max_jobs: 0,
            leave_on_rebalance: true,
        }
    }
}

/// Whether the agent is running a job, as far as the probe can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Busy {
    Busy,
    Idle,
    /// The probe failed: no leaving on a guess, until `unknown_grace` says it is broken.
    Unknown,
}

/// One look at the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    pub busy: Busy,
    /// The agent is up and connected (for the boot timeout).
    pub agent_ready: bool,
    /// A supervised agent (`--wrap`) has exited by itself.
    pub agent_exited: bool,
    /// Spot interruption notice or ASG lifecycle `Terminated`.
    pub interrupted: bool,
    /// An EC2 rebalance recommendation is posted.
    pub rebalance: bool,
}

impl Look {
    pub fn idle() -> Self {
        Look { busy: Busy::Idle, agent_ready: true, agent_exited: false, interrupted: false, rebalance: false }
    }
    pub fn busy() -> Self {
        Look { busy: Busy::Busy, ..Look::idle() }
    }
    pub fn unknown() -> Self {
        Look { busy: Busy::Unknown, ..Look::idle() }
    }
}

/// What the instance remembers between looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// When the instance booted (seconds since the caller's epoch).
    pub booted_at: Duration,
    /// The last look that saw a job running.
    pub last_busy: Option<Duration>,
    /// The first look that saw the agent ready.
    pub ready_at: Option<Duration>,
    /// The first busy look since the last idle look (unknown looks do not reset it, so a
    /// probe flapping between busy and unknown is still bounded by `max_busy`).
    pub busy_since: Option<Duration>,
    /// The first unknown look of the current run of unknown looks.
    pub unknown_since: Option<Duration>,
    /// Jobs done: busy -> idle transitions seen.
    pub jobs_done: u32,
}

impl Memory {
    pub fn booted(at: Duration) -> Self {
        Memory { booted_at: at, ..Memory::default() }
    }

    /// The agent was seen ready at least once.
    pub fn was_ready(&self) -> bool {
        self.ready_at.is_some()
    }
}

/// Why the instance leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Leave {
    /// Idle for the idle timeout since its last job.
    IdleTimeout,
    /// Ran no job and stayed idle for the idle timeout since its agent became ready.
    NoJobSinceBoot,
    /// The agent never became ready within the boot timeout.
    NeverReady,
    AgentExited,
    Interrupted,
    /// Reached `max_lifetime` while idle or unknown.
    MaxLifetime,
    /// The probe could not tell for `unknown_grace` in a row.
    UnknownGrace,
    /// Busy for `max_busy` without an idle look: the probe is taken as broken.
    MaxBusy,
    /// Ran `max_jobs` jobs and is idle.
    MaxJobs,
    /// An EC2 rebalance recommendation.
    Rebalance,
}

impl Leave {
    /// The reason as it appears in the `leave` event and the `InstancesLeft` metric.
    pub fn name(self) -> &'static str {
        match self {
            Leave::IdleTimeout => "idle_timeout",
            Leave::NoJobSinceBoot => "no_job_since_boot",
            Leave::NeverReady => "never_ready",
            Leave::AgentExited => "agent_exited",
            Leave::Interrupted => "interrupted",
            Leave::MaxLifetime => "max_lifetime",
            Leave::UnknownGrace => "unknown_grace",
            Leave::MaxBusy => "max_busy",
            Leave::MaxJobs => "max_jobs",
            Leave::Rebalance => "rebalance",
        }
    }

    /// Every reason, for documentation and tests.
    pub const ALL: [Leave; 10] = [
        Leave::IdleTimeout,
        Leave::NoJobSinceBoot,
        Leave::NeverReady,
        Leave::AgentExited,
        Leave::Interrupted,
        Leave::MaxLifetime,
        Leave::UnknownGrace,
        Leave::MaxBusy,
        Leave::MaxJobs,
        Leave::Rebalance,
    ];

    /// The instance goes away whatever the recheck says, so a drained agent stays drained
    /// (it finishes its job and takes no new one) rather than being started again.
    pub fn keeps_draining(self) -> bool {
        matches!(self, Leave::Interrupted | Leave::Rebalance)
    }
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stay. `until`: the earliest time at which, with the current state lasting (idle stays
    /// idle, busy stays busy, unknown stays unknown), the verdict becomes `Leave`.
    Stay { until: Option<Duration> },
    /// Drain, then terminate with decrement.
    Leave(Leave),
}

/// Decides at `now` after taking `look`; returns the updated memory and the verdict.
pub fn decide(cfg: &IdleConfig, memory: Memory, look: Look, now: Duration) -> (Memory, Verdict) {
    let memory = remember(memory, look, now);
    if look.interrupted {
        return (memory, Verdict::Leave(Leave::Interrupted));
    }
    if look.agent_exited {
        return (memory, Verdict::Leave(Leave::AgentExited));
    }
    if look.rebalance && cfg.leave_on_rebalance && look.busy != Busy::Unknown {
        // Idle: leave at once. Busy: drain now (no new job), leave when done. Unknown: the
        // unknown bound below decides, since nothing says the agent is done.
        return (memory, Verdict::Leave(Leave::Rebalance));
    }
    let verdict = match look.busy {
        Busy::Busy => {
            let since = memory.busy_since.unwrap_or(now);
            at_or_stay(now, since + cfg.max_busy, Leave::MaxBusy)
        }
        Busy::Unknown => {
            let since = memory.unknown_since.unwrap_or(now);
            let (idle_at, _) = idle_rule(cfg, &memory);
            let counts_as_idle = (since + cfg.unknown_grace).max(idle_at);
            let (at, reason) = capped_by_lifetime(cfg, &memory, counts_as_idle, Leave::UnknownGrace);
            at_or_stay(now, billing_window(cfg, memory.booted_at, at), reason)
        }
        Busy::Idle if cfg.max_jobs > 0 && memory.jobs_done >= cfg.max_jobs => Verdict::Leave(Leave::MaxJobs),
        Busy::Idle => {
            let (idle_at, reason) = idle_rule(cfg, &memory);
            let (at, reason) = capped_by_lifetime(cfg, &memory, idle_at, reason);
            at_or_stay(now, billing_window(cfg, memory.booted_at, at), reason)
        }
    };
    (memory, verdict)
}

/// Folds one look into the memory.
fn remember(memory: Memory, look: Look, now: Duration) -> Memory {
    let mut memory = memory;
    if look.agent_ready && memory.ready_at.is_none() {
        memory.ready_at = Some(now);
    }
    match look.busy {
        Busy::Busy => {
            memory.last_busy = Some(now);
            memory.busy_since.get_or_insert(now);
            memory.unknown_since = None;
        }
        Busy::Idle => {
            if memory.busy_since.take().is_some() {
                memory.jobs_done = memory.jobs_done.saturating_add(1);
            }
            memory.unknown_since = None;
        }
        Busy::Unknown => {
            memory.unknown_since.get_or_insert(now);
        }
    }
    memory
}

fn at_or_stay(now: Duration, at: Duration, reason: Leave) -> Verdict {
    if now >= at {
        Verdict::Leave(reason)
    } else {
        Verdict::Stay { until: Some(at) }
    }
}

/// The first instant an idle instance may leave by the idle and boot rules, and why.
fn idle_rule(cfg: &IdleConfig, memory: &Memory) -> (Duration, Leave) {
    match (memory.last_busy, memory.ready_at) {
        (Some(last), _) => (last + cfg.idle_timeout, Leave::IdleTimeout),
        (None, Some(ready)) => (ready + cfg.idle_timeout, Leave::NoJobSinceBoot),
        (None, None) => (memory.booted_at + cfg.boot_timeout, Leave::NeverReady),
    }
}

/// `at`, or the max-lifetime instant when that comes first.
fn capped_by_lifetime(cfg: &IdleConfig, memory: &Memory, at: Duration, reason: Leave) -> (Duration, Leave) {
    match cfg.max_lifetime.map(|max| memory.booted_at + max) {
        Some(old) if old < at => (old, Leave::MaxLifetime),
        _ => (at, reason),
    }
}
/// With a billing period, the first instant >= `at` inside the last `margin` of a period.
fn billing_window(cfg: &IdleConfig, booted_at: Duration, at: Duration) -> Duration {
    let Some(period) = cfg.billing_period.filter(|p| !p.is_zero()) else { return at };
    let margin = cfg.billing_margin.min(period);
    let age = at.saturating_sub(booted_at).as_secs_f64();
    let period_s = period.as_secs_f64();
    let into = age % period_s;
    let window_start = period_s - margin.as_secs_f64();
    if into >= window_start {
        at
    } else {
        at + Duration::from_secs_f64(window_start - into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn cfg() -> IdleConfig {
        IdleConfig { idle_timeout: s(600), boot_timeout: s(300), ..IdleConfig::default() }
    }

    /// Feeds `looks` at the given times; the last verdict.
    fn run(c: &IdleConfig, looks: &[(u64, Look)]) -> (Memory, Verdict) {
        let mut memory = Memory::booted(s(0));
        let mut verdict = Verdict::Stay { until: None };
        for (at, look) in looks {
            (memory, verdict) = decide(c, memory, *look, s(*at));
        }
        (memory, verdict)
    }

    #[test]
    fn busy_stays_until_max_busy_then_the_probe_counts_as_broken() {
        let c = IdleConfig { max_busy: s(3600), ..cfg() };
        let (m, v) = run(&c, &[(100, Look::busy()), (3699, Look::busy())]);
        assert_eq!(v, Verdict::Stay { until: Some(s(3700)) });
        assert_eq!(decide(&c, m, Look::busy(), s(3700)).1, Verdict::Leave(Leave::MaxBusy));
    }

    #[test]
    fn an_idle_look_restarts_the_busy_bound_and_counts_a_job() {
        let c = IdleConfig { max_busy: s(3600), ..cfg() };
        let (m, _) = run(&c, &[(100, Look::busy()), (3000, Look::idle()), (3100, Look::busy())]);
        assert_eq!(m.jobs_done, 1);
        assert_eq!(decide(&c, m, Look::busy(), s(3800)).1, Verdict::Stay { until: Some(s(6700)) });
    }

    #[test]
    fn a_probe_flapping_between_busy_and_unknown_is_still_bounded_by_max_busy() {
        let c = IdleConfig { max_busy: s(3600), unknown_grace: s(600), ..cfg() };
        let mut memory = Memory::booted(s(0));
        let first_leave = (0..100u64).find_map(|i| {
            let look = if i % 2 == 0 { Look::busy() } else { Look::unknown() };
            let verdict;
            (memory, verdict) = decide(&c, memory, look, s(i * 100));
            matches!(verdict, Verdict::Leave(_)).then_some((i * 100, verdict))
        });
        assert_eq!(first_leave, Some((3600, Verdict::Leave(Leave::MaxBusy))));
    }

    #[test]
    fn unknown_stays_for_the_grace_then_counts_as_idle() {
        let c = IdleConfig { unknown_grace: s(900), ..cfg() };
        // Ran a job until 100; unknown from 200 on.
        let (m, v) =
            run(&c, &[(0, Look::busy()), (100, Look::busy()), (200, Look::unknown()), (1099, Look::unknown())]);
        assert_eq!(v, Verdict::Stay { until: Some(s(1100)) });
        assert_eq!(decide(&c, m, Look::unknown(), s(1100)).1, Verdict::Leave(Leave::UnknownGrace));
    }

    #[test]
    fn unknown_counts_as_idle_only_once_the_idle_timeout_also_ran_out() {
        let c = IdleConfig { unknown_grace: s(60), idle_timeout: s(600), ..cfg() };
        let (_, v) = run(&c, &[(100, Look::busy()), (200, Look::unknown()), (300, Look::unknown())]);
        assert_eq!(v, Verdict::Stay { until: Some(s(700)) });
    }

    #[test]
    fn a_reading_between_unknowns_restarts_the_unknown_grace() {
        let c = IdleConfig { unknown_grace: s(900), idle_timeout: s(60), ..cfg() };
        let (_, v) =
            run(&c, &[(0, Look::unknown()), (800, Look::busy()), (850, Look::unknown()), (1000, Look::unknown())]);
        assert_eq!(v, Verdict::Stay { until: Some(s(1750)) });
    }

    #[test]
    fn leaves_after_idle_timeout_since_last_job() {
        let (m, _) = decide(&cfg(), Memory::booted(s(0)), Look::busy(), s(1000));
        let (m, v) = decide(&cfg(), m, Look::idle(), s(1599));
        assert_eq!(v, Verdict::Stay { until: Some(s(1600)) });
        let (_, v) = decide(&cfg(), m, Look::idle(), s(1600));
        assert_eq!(v, Verdict::Leave(Leave::IdleTimeout));
    }

    #[test]
    fn a_ready_instance_that_never_got_a_job_leaves_at_its_idle_timeout_not_its_boot_timeout() {
        let c = IdleConfig { idle_timeout: s(60), boot_timeout: s(600), ..IdleConfig::default() };
        let not_ready = Look { agent_ready: false, ..Look::idle() };
        // Booted at 0, agent ready at 30: leaves at 90, not at 600.
        let (m, v) = run(&c, &[(0, not_ready), (30, Look::idle()), (89, Look::idle())]);
        assert_eq!(v, Verdict::Stay { until: Some(s(90)) });
        assert_eq!(decide(&c, m, Look::idle(), s(90)).1, Verdict::Leave(Leave::NoJobSinceBoot));
    }

    #[test]
    fn never_ready_leaves_at_boot_timeout() {
        let look = Look { agent_ready: false, ..Look::idle() };
        let (_, v) = decide(&cfg(), Memory::booted(s(0)), look, s(299));
        assert_eq!(v, Verdict::Stay { until: Some(s(300)) });
        let (_, v) = decide(&cfg(), Memory::booted(s(0)), look, s(300));
        assert_eq!(v, Verdict::Leave(Leave::NeverReady));
    }

    #[test]
    fn interruption_leaves_at_once_even_busy() {
        let look = Look { interrupted: true, ..Look::busy() };
        let (_, v) = decide(&cfg(), Memory::booted(s(0)), look, s(1));
        assert_eq!(v, Verdict::Leave(Leave::Interrupted));
    }

    #[test]
    fn wrapped_agent_exit_leaves() {
        let look = Look { agent_exited: true, ..Look::idle() };
        assert_eq!(decide(&cfg(), Memory::booted(s(0)), look, s(5)).1, Verdict::Leave(Leave::AgentExited));
    }

    #[test]
    fn max_lifetime_when_idle() {
        let c = IdleConfig { max_lifetime: Some(s(3600)), ..cfg() };
        let (m, _) = decide(&c, Memory::booted(s(0)), Look::busy(), s(3500));
        let (_, v) = decide(&c, m, Look::idle(), s(3600));
        assert_eq!(v, Verdict::Leave(Leave::MaxLifetime));
    }

    #[test]
    fn max_lifetime_is_a_hard_cap_also_while_the_probe_keeps_failing() {
        let c = IdleConfig { max_lifetime: Some(s(3600)), unknown_grace: s(86_400), ..cfg() };
        let (m, v) = run(&c, &[(3000, Look::busy()), (3100, Look::unknown()), (3599, Look::unknown())]);
        assert_eq!(v, Verdict::Stay { until: Some(s(3600)) });
        assert_eq!(decide(&c, m, Look::unknown(), s(3600)).1, Verdict::Leave(Leave::MaxLifetime));
    }

    #[test]
    fn max_lifetime_does_not_cut_a_running_job() {
        let c = IdleConfig { max_lifetime: Some(s(3600)), ..cfg() };
        let (_, v) = run(&c, &[(3000, Look::busy()), (5000, Look::busy())]);
        assert!(matches!(v, Verdict::Stay { .. }));
    }

    #[test]
    fn after_max_jobs_the_instance_leaves_as_soon_as_idle() {
        let c = IdleConfig { max_jobs: 2, ..cfg() };
        let (m, v) = run(&c, &[(10, Look::busy()), (20, Look::idle()), (30, Look::busy())]);
        assert_eq!(m.jobs_done, 1);
        assert!(matches!(v, Verdict::Stay { .. }), "busy with its second job");
        let (m, v) = decide(&c, m, Look::idle(), s(40));
        assert_eq!(m.jobs_done, 2);
        assert_eq!(v, Verdict::Leave(Leave::MaxJobs));
    }

    #[test]
    fn without_max_jobs_many_jobs_change_nothing() {
        let looks: Vec<(u64, Look)> =
            (0..100).map(|i| (i * 10, if i % 2 == 0 { Look::busy() } else { Look::idle() })).collect();
        let (m, v) = run(&cfg(), &looks);
        assert_eq!(m.jobs_done, 50);
        assert_eq!(v, Verdict::Stay { until: Some(s(980 + 600)) });
    }

    #[test]
    fn a_rebalance_recommendation_leaves_idle_at_once_and_drains_busy() {
        let idle = Look { rebalance: true, ..Look::idle() };
        let busy = Look { rebalance: true, ..Look::busy() };
        assert_eq!(decide(&cfg(), Memory::booted(s(0)), idle, s(5)).1, Verdict::Leave(Leave::Rebalance));
        assert_eq!(decide(&cfg(), Memory::booted(s(0)), busy, s(5)).1, Verdict::Leave(Leave::Rebalance));
        let ignore = IdleConfig { leave_on_rebalance: false, ..cfg() };
        assert!(matches!(decide(&ignore, Memory::booted(s(0)), idle, s(5)).1, Verdict::Stay { .. }));
    }

    #[test]
    fn a_rebalance_recommendation_does_not_leave_on_an_unknown_reading() {
        let unknown = Look { rebalance: true, ..Look::unknown() };
        assert!(matches!(decide(&cfg(), Memory::booted(s(0)), unknown, s(5)).1, Verdict::Stay { .. }));
    }

    #[test]
    fn billing_period_waits_for_the_last_minutes() {
        let c = IdleConfig { billing_period: Some(s(3600)), billing_margin: s(300), ..cfg() };
        let (m, _) = decide(&c, Memory::booted(s(0)), Look::busy(), s(100));
        // Idle timeout ends at 700 s, but the paid hour runs to 3600: leave from 3300.
        let (m, v) = decide(&c, m, Look::idle(), s(800));
        assert_eq!(v, Verdict::Stay { until: Some(s(3300)) });
        assert_eq!(decide(&c, m, Look::idle(), s(3300)).1, Verdict::Leave(Leave::IdleTimeout));
    }

    #[test]
    fn every_reason_has_its_own_name() {
        let names: std::collections::BTreeSet<&str> = Leave::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), Leave::ALL.len());
        for reason in Leave::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.name());
        }
    }

    fn any_look() -> impl Strategy<Value = Look> {
        (0u8..3, any::<bool>()).prop_map(|(busy, ready)| Look {
            busy: [Busy::Busy, Busy::Idle, Busy::Unknown][busy as usize],
            agent_ready: ready || busy == 0,
            ..Look::idle()
        })
    }

    proptest! {
        #[test]
        fn never_leaves_while_busy_before_max_busy(idle in 0u64..5000, boot in 0u64..5000, max_busy in 1u64..100_000, now in 0u64..100_000) {
            let c = IdleConfig { idle_timeout: s(idle), boot_timeout: s(boot), max_busy: s(max_busy), ..IdleConfig::default() };
            let (m, _) = decide(&c, Memory::booted(s(0)), Look::busy(), s(0));
            let (_, v) = decide(&c, m, Look::busy(), s(now));
            prop_assert_eq!(matches!(v, Verdict::Leave(_)), now >= max_busy);
        }

        #[test]
        fn never_before_idle_timeout_since_the_last_job_or_since_ready(idle in 1u64..5000, busy_at in 0u64..10_000, ready_at in 0u64..10_000, now in 0u64..20_000) {
            let c = IdleConfig { idle_timeout: s(idle), ..IdleConfig::default() };
            let (m, _) = decide(&c, Memory::booted(s(0)), Look::busy(), s(busy_at));
            let now_after_job = busy_at + now;
            let (_, v) = decide(&c, m, Look::idle(), s(now_after_job));
            prop_assert_eq!(matches!(v, Verdict::Leave(_)), now_after_job >= busy_at + idle);
            let (m, _) = decide(&c, Memory::booted(s(0)), Look::idle(), s(ready_at));
            let now_unused = ready_at + now;
            let (_, v) = decide(&c, m, Look::idle(), s(now_unused));
            prop_assert_eq!(v == Verdict::Leave(Leave::NoJobSinceBoot), now_unused >= ready_at + idle);
        }

        #[test]
        fn stay_until_is_when_it_leaves(idle in 1u64..5000, boot in 1u64..5000, busy_at in 0u64..10_000, period in proptest::option::of(600u64..7200)) {
            let c = IdleConfig { idle_timeout: s(idle), boot_timeout: s(boot), billing_period: period.map(s), ..IdleConfig::default() };
            let (m, _) = decide(&c, Memory::booted(s(0)), Look::busy(), s(busy_at));
            if let (_, Verdict::Stay { until: Some(t) }) = decide(&c, m, Look::idle(), s(busy_at)) {
                let leaves = matches!(decide(&c, m, Look::idle(), t).1, Verdict::Leave(_));
                prop_assert!(leaves);
            }
        }

        /// Whatever the looks so far, a state that lasts ends in a leave within its bound.
        #[test]
        fn every_state_that_lasts_ends_in_a_leave(history in proptest::collection::vec(any_look(), 0..20), last in any_look(), lifetime in proptest::option::of(1u64..200_000)) {
            let c = IdleConfig { max_lifetime: lifetime.map(s), ..cfg() };
            let mut memory = Memory::booted(s(0));
            for (i, look) in history.iter().enumerate() {
                memory = decide(&c, memory, *look, s(i as u64 * 60)).0;
            }
            let start = history.len() as u64 * 60;
            // The longest any single state may last: max_busy, or unknown_grace plus an idle timeout.
            let bound = c.max_busy.as_secs().max(c.unknown_grace.as_secs() + c.idle_timeout.as_secs()) + c.boot_timeout.as_secs();
            let mut left = false;
            let mut at = start;
            while at <= start + bound {
                let (m, v) = decide(&c, memory, last, s(at));
                memory = m;
                if let Verdict::Leave(_) = v { left = true; break; }
                at += 60;
            }
            prop_assert!(left, "no leave within {bound} s of {last:?}");
        }
    }
}
