//! The watchdog's decision, pure: from the idle settings, what the instance has seen so far
//! and one fresh observation at `now`, whether to stay or to drain and leave. Time is a
//! parameter (seconds since an epoch the caller picks), so the simulator drives the same
//! function on a virtual clock. No I/O, no clock.

use serde::Serialize;
use std::time::Duration;

/// Idle settings of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleConfig {
    /// How long an instance that has run a job stays idle before leaving (default 10 min).
    pub idle_timeout: Duration,
    /// An instance that has run no job since boot waits at least this long; an agent never
    /// ready by then leaves (default 10 min).
    pub boot_timeout: Duration,
    /// Leave once this old, as soon as idle (None: never).
    pub max_lifetime: Option<Duration>,
    /// Billing period for hourly-billed machines: leave only in its last `billing_margin`.
    pub billing_period: Option<Duration>,
    pub billing_margin: Duration,
}

impl Default for IdleConfig {
    fn default() -> Self {
        IdleConfig {
            idle_timeout: Duration::from_secs(600),
            boot_timeout: Duration::from_secs(600),
            max_lifetime: None,
            billing_period: None,
            billing_margin: Duration::from_secs(300),
        }
    }
}

/// Whether the agent is running a job, as far as the probe can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Busy {
    Busy,
    Idle,
    /// The probe failed: never leave on a guess.
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
}

impl Look {
    pub fn idle() -> Self {
        Look { busy: Busy::Idle, agent_ready: true, agent_exited: false, interrupted: false }
    }
    pub fn busy() -> Self {
        Look { busy: Busy::Busy, ..Look::idle() }
    }
}

/// What the instance remembers between looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// When the instance booted (seconds since the caller's epoch).
    pub booted_at: Duration,
    /// The last look that saw a job running.
    pub last_busy: Option<Duration>,
    /// The agent was seen ready at least once.
    pub was_ready: bool,
}

impl Memory {
    pub fn booted(at: Duration) -> Self {
        Memory { booted_at: at, last_busy: None, was_ready: false }
    }
}

/// Why the instance leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Leave {
    IdleTimeout,
    /// Ran no job since boot and waited out the boot timeout.
    NoJobSinceBoot,
    /// The agent never became ready within the boot timeout.
    NeverReady,
    AgentExited,
    Interrupted,
    MaxLifetime,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stay. `until`: the earliest time at which, with no job arriving, the verdict becomes
    /// `Leave` (None: not while the current state lasts, e.g. busy or unknown).
    Stay { until: Option<Duration> },
    /// Drain, then terminate with decrement.
    Leave(Leave),
}

/// Decides at `now` after taking `look`; returns the updated memory and the verdict.
pub fn decide(cfg: &IdleConfig, memory: Memory, look: Look, now: Duration) -> (Memory, Verdict) {
    let mut memory = memory;
    memory.was_ready |= look.agent_ready;
    if look.busy == Busy::Busy {
        memory.last_busy = Some(now);
    }
    if look.interrupted {
        return (memory, Verdict::Leave(Leave::Interrupted));
    }
    if look.agent_exited {
        return (memory, Verdict::Leave(Leave::AgentExited));
    }
    match look.busy {
        Busy::Busy | Busy::Unknown => return (memory, Verdict::Stay { until: None }),
        Busy::Idle => {}
    }
    let (earliest, reason) = earliest_leave(cfg, &memory);
    let leave_at = billing_window(cfg, memory.booted_at, earliest);
    if now >= leave_at {
        (memory, Verdict::Leave(reason))
    } else {
        (memory, Verdict::Stay { until: Some(leave_at) })
    }
}

/// The first instant an idle instance may leave, ignoring billing, and why.
fn earliest_leave(cfg: &IdleConfig, memory: &Memory) -> (Duration, Leave) {
    let boot_deadline = memory.booted_at + cfg.boot_timeout;
    let (mut at, mut reason) = match memory.last_busy {
        Some(last) => (last + cfg.idle_timeout, Leave::IdleTimeout),
        None if !memory.was_ready => (boot_deadline, Leave::NeverReady),
        None => ((memory.booted_at + cfg.idle_timeout).max(boot_deadline), Leave::NoJobSinceBoot),
    };
    if let Some(max) = cfg.max_lifetime {
        let old = memory.booted_at + max;
        if old < at {
            at = old;
            reason = Leave::MaxLifetime;
        }
    }
    (at, reason)
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

    #[test]
    fn busy_never_leaves() {
        let (_, v) = decide(&cfg(), Memory::booted(s(0)), Look::busy(), s(100_000));
        assert_eq!(v, Verdict::Stay { until: None });
    }

    #[test]
    fn unknown_probe_never_leaves() {
        let look = Look { busy: Busy::Unknown, ..Look::idle() };
        let (_, v) = decide(&cfg(), Memory::booted(s(0)), look, s(100_000));
        assert_eq!(v, Verdict::Stay { until: None });
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
    fn no_job_since_boot_waits_idle_and_boot_timeouts() {
        let c = IdleConfig { idle_timeout: s(60), boot_timeout: s(300), ..IdleConfig::default() };
        let (_, v) = decide(&c, Memory::booted(s(0)), Look::idle(), s(200));
        assert_eq!(v, Verdict::Stay { until: Some(s(300)) });
        let (_, v) = decide(&c, Memory::booted(s(0)), Look::idle(), s(300));
        assert_eq!(v, Verdict::Leave(Leave::NoJobSinceBoot));
    }

    #[test]
    fn never_ready_leaves_at_boot_timeout() {
        let look = Look { agent_ready: false, ..Look::idle() };
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
    fn billing_period_waits_for_the_last_minutes() {
        let c = IdleConfig { billing_period: Some(s(3600)), billing_margin: s(300), ..cfg() };
        let (m, _) = decide(&c, Memory::booted(s(0)), Look::busy(), s(100));
        // Idle timeout ends at 700 s, but the paid hour runs to 3600: leave from 3300.
        let (m, v) = decide(&c, m, Look::idle(), s(800));
        assert_eq!(v, Verdict::Stay { until: Some(s(3300)) });
        assert_eq!(decide(&c, m, Look::idle(), s(3300)).1, Verdict::Leave(Leave::IdleTimeout));
    }

    proptest! {
        #[test]
        fn never_leaves_while_busy(idle in 0u64..5000, boot in 0u64..5000, now in 0u64..100_000) {
            let c = IdleConfig { idle_timeout: s(idle), boot_timeout: s(boot), ..IdleConfig::default() };
            let (_, v) = decide(&c, Memory::booted(s(0)), Look::busy(), s(now));
            let stays = matches!(v, Verdict::Stay { .. });
            prop_assert!(stays);
        }

        #[test]
        fn never_before_idle_or_boot_timeout(idle in 1u64..5000, boot in 1u64..5000, busy_at in 0u64..10_000, now in 0u64..20_000) {
            let c = IdleConfig { idle_timeout: s(idle), boot_timeout: s(boot), ..IdleConfig::default() };
            let (m, _) = decide(&c, Memory::booted(s(0)), Look::busy(), s(busy_at));
            let now = busy_at + now;
            let (_, v) = decide(&c, m, Look::idle(), s(now));
            if let Verdict::Leave(_) = v {
                prop_assert!(now >= busy_at + idle);
            }
            let (_, v) = decide(&c, Memory::booted(s(0)), Look::idle(), s(now));
            if let Verdict::Leave(_) = v {
                prop_assert!(now >= boot && now >= idle);
            }
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
    }
}
