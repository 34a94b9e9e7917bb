//! The group's warm pool, as EC2 Auto Scaling runs one with `PoolState: Stopped`: stopped,
//! pre-initialised instances beside the group. A scale-out takes a stopped one when there is
//! one (it starts in `start`, not the cold boot); the pool refills in the background to its
//! size (each refill is a launch that runs its pre-initialisation for a cold boot, billed as
//! running, then stops); stopped instances cost a fraction of the running price (their EBS
//! volumes). An instance leaving the group is terminated: the example fleet's warm pool has no
//! `InstanceReusePolicy`, and with a pool of fixed size a refill starts as soon as an
//! instance is taken, so the pool is never short when one leaves. It owns the pool's state
//! and its costs; the engine (`engine::Sim`) asks it at each launch.

use super::engine::{Millis, World};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use thiserror::Error;

/// The warm pool's settings (the template's `WarmPoolSize`, with `MaxGroupPreparedCapacity`
/// equal to it so the pool has that absolute size).
#[derive(Debug, Clone, PartialEq)]
pub struct WarmPoolConfig {
    /// Instances the pool keeps, stopped or pre-initialising.
    pub size: u32,
    /// A stopped instance's start to a working agent (10-30 s published).
    pub start: Duration,
    /// Price of a stopped instance-hour as a fraction of a running one (EBS only: about 0.05).
    pub stopped_cost: f64,
}

/// A warm pool setting AWS would refuse or that means nothing.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WarmPoolError {
    #[error("the stopped cost is a fraction of the running price, within 0..=1; got {0}")]
    StoppedCost(f64),
    #[error("the warm start must be a non-negative number of seconds; got {0}")]
    Start(f64),
    #[error("a warm pool of {size} is more than the group's MaxSize of {max}")]
    LargerThanMax { size: u32, max: u32 },
}

impl WarmPoolConfig {
    /// Validated settings; `start_s` in seconds, `max_instances` the group's MaxSize.
    pub fn new(size: u32, start_s: f64, stopped_cost: f64, max_instances: u32) -> Result<Self, WarmPoolError> {
        if !(stopped_cost.is_finite() && (0.0..=1.0).contains(&stopped_cost)) {
            return Err(WarmPoolError::StoppedCost(stopped_cost));
        }
        if !(start_s.is_finite() && start_s >= 0.0) {
            return Err(WarmPoolError::Start(start_s));
        }
        if size > max_instances {
            return Err(WarmPoolError::LargerThanMax { size, max: max_instances });
        }
        Ok(WarmPoolConfig { size, start: Duration::from_secs_f64(start_s), stopped_cost })
    }

    /// What a too-early leave costs the adaptive idle timeout with this pool, as the cold
    /// boot its formula `boot x (1 + wait_weight)` expects: the next job waits a warm start
    /// (billed, and weighted as wait) and the pool pays one more pre-initialisation (billed).
    pub fn equivalent_boot(&self, cold_boot: Duration, wait_weight: f64) -> Duration {
        let weight = 1.0 + wait_weight.max(0.0);
        self.start + cold_boot.div_f64(weight)
    }
}

/// What the pool cost and did over one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarmMeasured {
    /// Scale-outs served by a stopped instance (the others were cold launches).
    pub warm_starts: u64,
    /// Launches into the pool (pre-initialisations).
    pub pool_launches: u64,
    /// Billed running time of those pre-initialisations.
    pub prewarm_ms: u128,
    /// Time instances spent stopped in the pool (billed at the stopped cost).
    pub stopped_ms: u128,
}

/// The pool's state on the virtual clock. Pre-initialisations end by themselves; the pool
/// settles them lazily (when it is next asked), so it needs no events of its own.
#[derive(Debug, Clone)]
pub struct WarmPool {
    config: WarmPoolConfig,
    /// When each pre-initialising instance stops (and is ready to be taken).
    warming: Vec<Millis>,
    stopped: u32,
    /// Stopped time is counted up to here.
    counted_to: Millis,
    /// Pre-initialisation jitter, apart from the group's own boot draws so a pool does not
    /// shift them.
    rng: SmallRng,
    pub measured: WarmMeasured,
}

impl WarmPool {
    pub fn new(config: WarmPoolConfig, seed: u64) -> Self {
        WarmPool {
            config,
            warming: Vec::new(),
            stopped: 0,
            counted_to: 0,
            rng: SmallRng::seed_from_u64(seed ^ 0x5741_524d_504f_4f4c),
            measured: WarmMeasured::default(),
        }
    }

    /// Stopped instances ready to be taken at `now`.
    pub fn stopped(&mut self, now: Millis) -> u32 {
        self.settle(now);
        self.stopped
    }

    /// Pre-initialisations that ended by `now` become stopped instances, each counted as
    /// stopped from its own end.
    fn settle(&mut self, now: Millis) {
        if now < self.counted_to {
            return;
        }
        self.warming.sort_unstable();
        let done = self.warming.partition_point(|&t| t <= now);
        for i in 0..done {
            let at = self.warming[i].max(self.counted_to);
            self.measured.stopped_ms += self.stopped as u128 * (at - self.counted_to) as u128;
            self.counted_to = at;
            self.stopped += 1;
        }
        self.warming.drain(..done);
        self.measured.stopped_ms += self.stopped as u128 * (now - self.counted_to) as u128;
        self.counted_to = now;
    }

    /// A scale-out at `now`: takes a stopped instance if there is one, and says how long it
    /// takes to start.
    pub fn take(&mut self, now: Millis) -> Option<Duration> {
        self.settle(now);
        if self.stopped == 0 {
            return None;
        }
        self.stopped -= 1;
        self.measured.warm_starts += 1;
        Some(self.config.start)
    }

    /// Launches pre-initialisations until the pool (stopped and pre-initialising) is at its
    /// size; each runs a cold boot (with the world's jitter), billed as running.
    pub fn refill(&mut self, now: Millis, world: &World) {
        self.settle(now);
        let boot_ms = world.boot.as_millis() as f64;
        let jitter = world.boot_jitter.clamp(0.0, 1.0);
        while self.stopped + (self.warming.len() as u32) < self.config.size {
            let factor = if jitter > 0.0 { self.rng.random_range(1.0 - jitter..=1.0 + jitter) } else { 1.0 };
            let prewarm = (boot_ms * factor).round() as Millis;
            self.warming.push(now + prewarm);
            self.measured.pool_launches += 1;
            self.measured.prewarm_ms += world.billed_ms(prewarm) as u128;
        }
    }

    /// Closes the books at `end` (stopped instances are billed to the end of the trace's work,
    /// as instances still up are).
    pub fn finish(&mut self, end: Millis) -> WarmMeasured {
        self.settle(end);
        self.measured.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::engine::SECOND;

    fn pool(size: u32) -> (WarmPool, World) {
        let config = WarmPoolConfig::new(size, 20.0, 0.05, 10).unwrap();
        let world = World { boot_jitter: 0.0, ..World::default() };
        (WarmPool::new(config, 1), world)
    }

    #[test]
    fn settings_outside_what_aws_accepts_are_refused_with_the_reason() {
        assert_eq!(WarmPoolConfig::new(1, 20.0, 1.5, 10), Err(WarmPoolError::StoppedCost(1.5)));
        assert_eq!(WarmPoolConfig::new(1, 20.0, -0.1, 10), Err(WarmPoolError::StoppedCost(-0.1)));
        assert!(matches!(WarmPoolConfig::new(1, 20.0, f64::NAN, 10), Err(WarmPoolError::StoppedCost(_))));
        assert_eq!(WarmPoolConfig::new(1, -1.0, 0.05, 10), Err(WarmPoolError::Start(-1.0)));
        assert_eq!(WarmPoolConfig::new(11, 20.0, 0.05, 10), Err(WarmPoolError::LargerThanMax { size: 11, max: 10 }));
        let err = WarmPoolConfig::new(11, 20.0, 0.05, 10).unwrap_err().to_string();
        assert_eq!(err, "a warm pool of 11 is more than the group's MaxSize of 10");
        assert!(WarmPoolConfig::new(10, 0.0, 1.0, 10).is_ok());
        assert!(WarmPoolConfig::new(0, 20.0, 0.0, 10).is_ok());
    }

    #[test]
    fn a_new_pool_is_not_ready_until_its_pre_initialisation_ends() {
        let (mut pool, world) = pool(2);
        pool.refill(0, &world);
        assert_eq!(pool.measured.pool_launches, 2);
        assert_eq!(pool.measured.prewarm_ms, 2 * 60 * SECOND as u128);
        assert!(pool.take(59 * SECOND).is_none(), "still pre-initialising at 59 s");
        assert_eq!(pool.take(60 * SECOND), Some(Duration::from_secs(20)));
        assert_eq!(pool.stopped(60 * SECOND), 1);
    }

    #[test]
    fn stopped_time_is_counted_from_each_pre_initialisation_end() {
        let (mut pool, world) = pool(2);
        pool.refill(0, &world);
        // Both stopped from 60 s; one taken at 100 s, the other to the end at 200 s.
        assert!(pool.take(100 * SECOND).is_some());
        pool.refill(100 * SECOND, &world); // the refill stops at 160 s
        let measured = pool.finish(200 * SECOND);
        assert_eq!(measured.stopped_ms, ((100 - 60) * 2 + (200 - 100) + (200 - 160)) as u128 * SECOND as u128);
        assert_eq!(measured.pool_launches, 3);
        assert_eq!(measured.warm_starts, 1);
    }

    #[test]
    fn the_adaptive_timeout_prices_a_leave_at_a_warm_start_plus_a_refill() {
        let config = WarmPoolConfig::new(1, 20.0, 0.05, 10).unwrap();
        // cold = boot x (1 + w); here 20 s x 4 + 300 s = 380 s = (20 + 75) x 4.
        assert_eq!(config.equivalent_boot(Duration::from_secs(300), 3.0), Duration::from_secs(95));
    }
}
