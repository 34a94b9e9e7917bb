//! The run loop the Lambda and `forge-scaler run` share: a configuration cache (loaded once,
//! re-read when older than `config_ttl`, the last valid one kept when a reload is invalid),
//! the clients built once per cold start (again only when a reload changes the forges or
//! fleets), and the inner loop (tick, then again every `poll_interval` while the next tick
//! would still start within the budget). The Lambda handler around it is `lambda`.
//!
//! The decision "tick again, and when?" is the pure [`next_tick_at`]; time and sleeping come
//! from an injected [`Clock`], metrics lines go to an injected sink. This module must not plan
//! (that is `plan`), talk to a forge or AWS itself (that is `tick` through `Edges`), or read
//! process environment.

use crate::app::{ConfigSource, LoadError};
use crate::cloud::ParamStore;
use crate::config::Config;
use crate::forge::ForgeError;
use crate::metrics::{self, TickFigures};
use crate::tick::{self, Action, Edges, TickError, TickReport};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Time a tick may need after it starts: an invocation's last tick starts at least this
/// long before the function's deadline, and no tick observes past the deadline less
/// [`crate::tick::APPLY_BUDGET`] (so its writes still fit).
pub const TICK_HEADROOM: Duration = Duration::from_secs(10);

/// Wall-clock time and sleeping, injectable so tests never wait.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    async fn sleep(&self, duration: Duration);
}

/// The real clock: `Utc::now` and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}

/// When the next tick should start, or `None` when it would start past the budget.
///
/// Ticks run at a fixed rate from the start of the previous one: `last_tick_start + interval`.
/// The loop started at `loop_start`; with a `budget`, a tick that would start later than
/// `loop_start + budget` does not run. Without a budget (the `run` command) it always runs.
pub fn next_tick_at(
    loop_start: DateTime<Utc>,
    last_tick_start: DateTime<Utc>,
    interval: Duration,
    budget: Option<Duration>,
) -> Option<DateTime<Utc>> {
    let next = last_tick_start + chrono::Duration::from_std(interval).ok()?;
    match budget {
        None => Some(next),
        Some(budget) => {
            let latest = loop_start + chrono::Duration::from_std(budget).ok()?;
            (next <= latest).then_some(next)
        }
    }
}

/// The interval to the next tick: `poll_interval`, or longer when a forge asked for it
/// (Buildkite's poll-duration header is a lower bound).
pub fn tick_interval(poll_interval: Duration, forge_hint: Option<Duration>) -> Duration {
    forge_hint.map_or(poll_interval, |hint| hint.max(poll_interval))
}

/// The loop budget of one invocation: `loop_budget`, shortened so the last tick starts at
/// least [`TICK_HEADROOM`] before the deadline. An unknown deadline (0, or already past at
/// the start) leaves `loop_budget` alone.
pub fn invocation_budget(loop_budget: Duration, start: DateTime<Utc>, deadline: Option<DateTime<Utc>>) -> Duration {
    match deadline.and_then(|d| (d - start).to_std().ok()) {
        Some(remaining) if !remaining.is_zero() => loop_budget.min(remaining.saturating_sub(TICK_HEADROOM)),
        _ => loop_budget,
    }
}

/// Builds the edges (job sources, fleets) for a configuration. Called at cold start and when
/// a reload changes the forges or the fleets.
pub type EdgesFactory = Arc<dyn Fn(&Config) -> (Edges, Vec<ForgeError>) + Send + Sync>;

/// Where EMF metric lines go (stdout in production).
pub type MetricsSink = Arc<dyn Fn(&str) + Send + Sync>;

/// How long the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One Lambda invocation: ticks within `loop_budget` (and before the deadline); a tick
    /// that cannot run at all ends the loop with an error.
    Invocation { deadline: Option<DateTime<Utc>> },
    /// `forge-scaler run`: until stopped; a tick that cannot run is logged and retried.
    Forever,
}

/// Why the loop could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// No valid configuration was ever loaded: nothing was scaled.
    #[error("no valid configuration, nothing scaled: {0}")]
    Config(#[source] LoadError),
    /// A tick could not run at all (e.g. AWS unreachable).
    #[error("tick could not run: {0}")]
    Tick(#[source] TickError),
}

impl LoopError {
    /// A bad configuration (as opposed to an unreachable store or AWS).
    pub fn is_invalid_config(&self) -> bool {
        matches!(self, LoopError::Config(e) if e.is_invalid_config())
    }
}

/// One pool across the ticks of a loop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PoolSummary {
    pub pool: String,
    pub group: String,
    /// Pending jobs at the last tick that observed them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<u32>,
    /// Desired capacity after the last tick that observed the group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    /// Ticks that raised (or, in dry run, would have raised) the group.
    pub raises: u32,
    /// Ticks where this pool errored.
    pub errors: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a loop did: the Lambda's response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoopSummary {
    pub ticks: u32,
    pub dry_run: bool,
    pub pools: Vec<PoolSummary>,
    /// Failed configuration reloads (the last valid configuration stayed in use).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_errors: Vec<String>,
    /// Ticks that could not run at all (`run` only; an invocation fails instead).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tick_errors: Vec<String>,
}

impl LoopSummary {
    fn add(&mut self, report: &TickReport) {
        for p in &report.pools {
            let idx = match self.pools.iter().position(|s| s.pool == p.pool) {
                Some(i) => i,
                None => {
                    self.pools.push(PoolSummary { pool: p.pool.clone(), group: p.group.clone(), ..Default::default() });
                    self.pools.len() - 1
                }
            };
            let s = &mut self.pools[idx];
            s.pending = p.pending.or(s.pending);
            s.desired = p.desired_after.or(s.desired);
            match p.action {
                Action::Raise => s.raises += 1,
                Action::Error => {
                    s.errors += 1;
                    s.last_error = p.error.clone();
                }
                Action::None => {}
            }
        }
    }
    /// Some pool errored in some tick.
    pub fn any_pool_error(&self) -> bool {
        self.pools.iter().any(|p| p.errors > 0)
    }
}

struct Loaded {
    config: Config,
    loaded_at: DateTime<Utc>,
    edges: Edges,
}

/// The scaler with its cached configuration and clients.
pub struct Scaler {
    source: ConfigSource,
    params: Option<Arc<dyn ParamStore>>,
    build_edges: EdgesFactory,
    clock: Arc<dyn Clock>,
    metrics: MetricsSink,
    loaded: Option<Loaded>,
}

/// Whether two configurations need different edges (job sources or fleets).
fn edges_differ(old: &Config, new: &Config) -> bool {
    let fleets = |c: &Config| c.pools.iter().map(|p| (p.name.clone(), p.fleet.clone())).collect::<Vec<_>>();
    old.forges != new.forges || fleets(old) != fleets(new)
}

impl Scaler {
    /// A scaler reading its configuration from `source` (SSM through `params`), building its
    /// edges with `build_edges`. Real clock; metrics to stdout.
    pub fn new(source: ConfigSource, params: Option<Arc<dyn ParamStore>>, build_edges: EdgesFactory) -> Self {
        Scaler {
            source,
            params,
            build_edges,
            clock: Arc::new(SystemClock),
            metrics: Arc::new(|line: &str| println!("{line}")),
            loaded: None,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
    }

    /// The configuration in use, once one was loaded.
    pub fn config(&self) -> Option<&Config> {
        self.loaded.as_ref().map(|l| &l.config)
    }

    /// Makes sure a valid configuration is loaded at `now`: the first time, or when the cached
    /// one is older than `config_ttl`. A failed reload keeps the last valid configuration and
    /// is returned as `Ok(Some(error))`; with no valid configuration at all it is `Err`.
    pub async fn refresh(&mut self, now: DateTime<Utc>) -> Result<Option<LoadError>, LoadError> {
        if let Some(l) = &self.loaded {
            let age = (now - l.loaded_at).to_std().unwrap_or(Duration::ZERO);
            if age < l.config.settings.config_ttl {
                return Ok(None);
            }
        }
        let result = self.source.load(self.params.as_deref()).await;
        match (result, self.loaded.as_mut()) {
            (Ok(config), None) => {
                let (edges, errors) = (self.build_edges)(&config);
                log_forge_errors(&errors);
                self.loaded = Some(Loaded { config, loaded_at: now, edges });
                Ok(None)
            }
            (Ok(config), Some(loaded)) => {
                if edges_differ(&loaded.config, &config) {
                    let (edges, errors) = (self.build_edges)(&config);
                    log_forge_errors(&errors);
                    loaded.edges = edges;
                }
                if loaded.config != config {
                    tracing::info!(target: "forge_scaler::config", "configuration changed; using the new one");
                }
                loaded.config = config;
                loaded.loaded_at = now;
                Ok(None)
            }
            (Err(e), None) => Err(e),
            (Err(e), Some(loaded)) => {
                // Retry after another TTL rather than at every tick.
                loaded.loaded_at = now;
                tracing::error!(
                    target: "forge_scaler::config",
                    error = %e,
                    "configuration reload failed; keeping the last valid configuration"
                );
                Ok(Some(e))
            }
        }
    }

    /// Ticks until the budget of `mode` is spent or `stop` turns true (checked between ticks:
    /// a tick in progress always finishes).
    pub async fn run(&mut self, mode: Mode, mut stop: watch::Receiver<bool>) -> Result<LoopSummary, LoopError> {
        let loop_start = self.clock.now();
        let mut summary = LoopSummary::default();
        loop {
            let tick_start = self.clock.now();
            let config_errors = match self.refresh(tick_start).await {
                Ok(None) => 0,
                Ok(Some(e)) => {
                    summary.config_errors.push(e.to_string());
                    problem_count(&e)
                }
                Err(e) => {
                    let figures = TickFigures { config_errors: problem_count(&e), tick_duration: Duration::ZERO };
                    self.emit(None, figures, tick_start);
                    return Err(LoopError::Config(e));
                }
            };
            let loaded = self.loaded.as_ref().expect("refresh loaded a configuration");
            let settings = loaded.config.settings.clone();
            summary.dry_run = settings.dry_run;
            let budget = tick_budget(tick::DEFAULT_TICK_BUDGET, tick_start, deadline_of(mode));
            let result = tick::tick_within(&loaded.config, &loaded.edges, tick_start, !settings.dry_run, budget).await;
            let tick_duration = (self.clock.now() - tick_start).to_std().unwrap_or(Duration::ZERO);
            let figures = TickFigures { config_errors, tick_duration };
            summary.ticks += 1;
            let hint = match result {
                Ok(report) => {
                    self.emit(Some(&report), figures, tick_start);
                    summary.add(&report);
                    report.poll_hint()
                }
                Err(e) => {
                    self.emit(None, figures, tick_start);
                    tracing::error!(target: "forge_scaler::tick", error = %e, "tick could not run");
                    match mode {
                        Mode::Invocation { .. } => return Err(LoopError::Tick(e)),
                        Mode::Forever => summary.tick_errors.push(e.to_string()),
                    }
                    None
                }
            };
            if *stop.borrow() {
                break;
            }
            let budget = match mode {
                Mode::Invocation { deadline } => Some(invocation_budget(settings.loop_budget, loop_start, deadline)),
                Mode::Forever => None,
            };
            let interval = tick_interval(settings.poll_interval, hint);
            let Some(next) = next_tick_at(loop_start, tick_start, interval, budget) else { break };
            let wait = (next - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
            if !wait.is_zero() {
                tokio::select! {
                    _ = self.clock.sleep(wait) => {}
                    _ = stopped(&mut stop) => break,
                }
            }
        }
        Ok(summary)
    }

    fn emit(&self, report: Option<&TickReport>, figures: TickFigures, at: DateTime<Utc>) {
        for line in metrics::emf_lines(report, figures, at) {
            (self.metrics)(&line);
        }
    }
}

fn problem_count(e: &LoadError) -> u32 {
    match e {
        LoadError::Invalid(c) => u32::try_from(c.problems.len()).unwrap_or(u32::MAX).max(1),
        _ => 1,
    }
}

fn log_forge_errors(errors: &[ForgeError]) {
    for e in errors {
        tracing::error!(target: "forge_scaler::config", error = %e, "forge client could not be built");
    }
}

fn deadline_of(mode: Mode) -> Option<DateTime<Utc>> {
    match mode {
        Mode::Invocation { deadline } => deadline,
        Mode::Forever => None,
    }
}

/// One tick's observation budget: the configured `tick_budget`, shortened so the tick's
/// writes still end before the invocation's deadline (never below one second).
pub fn tick_budget(configured: Duration, start: DateTime<Utc>, deadline: Option<DateTime<Utc>>) -> Duration {
    let Some(deadline) = deadline else { return configured };
    let left = (deadline - start).to_std().unwrap_or(Duration::ZERO);
    configured.min(left.saturating_sub(tick::APPLY_BUDGET)).max(Duration::from_secs(1))
}

/// Resolves when `stop` turns true; never when its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cloud::memory::MemoryFleet;
    use crate::cloud::{Fleet, ParamError};
    use crate::config::PoolConfig;
    use crate::forge::JobSource;
    use crate::model::{JobRef, PoolJobs};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    fn t(s: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").unwrap().with_timezone(&Utc)
            + chrono::Duration::seconds(i64::from(s))
    }
    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    // --- the pure decision -------------------------------------------------------------

    #[test]
    fn next_tick_is_one_interval_after_the_last_start() {
        assert_eq!(next_tick_at(t(0), t(0), secs(10), Some(secs(50))), Some(t(10)));
        assert_eq!(next_tick_at(t(0), t(30), secs(10), Some(secs(50))), Some(t(40)));
    }

    #[test]
    fn a_tick_starting_exactly_at_the_budget_still_runs() {
        assert_eq!(next_tick_at(t(0), t(40), secs(10), Some(secs(50))), Some(t(50)));
    }

    #[test]
    fn no_tick_past_the_budget() {
        assert_eq!(next_tick_at(t(0), t(50), secs(10), Some(secs(50))), None);
        assert_eq!(next_tick_at(t(0), t(41), secs(10), Some(secs(50))), None);
    }

    #[test]
    fn a_zero_budget_means_a_single_tick() {
        assert_eq!(next_tick_at(t(0), t(0), secs(10), Some(Duration::ZERO)), None);
    }

    #[test]
    fn without_a_budget_the_loop_never_ends() {
        assert_eq!(next_tick_at(t(0), t(86_400), secs(10), None), Some(t(86_410)));
    }

    #[test]
    fn a_forge_hint_longer_than_poll_interval_wins() {
        assert_eq!(tick_interval(secs(10), Some(secs(15))), secs(15));
        assert_eq!(tick_interval(secs(10), Some(secs(5))), secs(10));
        assert_eq!(tick_interval(secs(10), None), secs(10));
    }

    #[test]
    fn the_deadline_shortens_the_budget_with_headroom() {
        assert_eq!(invocation_budget(secs(50), t(0), Some(t(60))), secs(50));
        assert_eq!(invocation_budget(secs(50), t(0), Some(t(30))), secs(20));
        assert_eq!(invocation_budget(secs(50), t(0), Some(t(5))), Duration::ZERO);
        assert_eq!(invocation_budget(secs(50), t(0), None), secs(50));
        assert_eq!(invocation_budget(secs(50), t(10), Some(t(0))), secs(50), "unknown deadline");
    }

    // --- the loop, with fakes ------------------------------------------------------------

    /// A clock that only moves when slept on (or told to).
    pub(crate) struct ManualClock {
        now: Mutex<DateTime<Utc>>,
        sleeps: Mutex<Vec<Duration>>,
    }
    impl ManualClock {
        fn at(now: DateTime<Utc>) -> Arc<Self> {
            Arc::new(ManualClock { now: Mutex::new(now), sleeps: Mutex::new(vec![]) })
        }
        fn advance(&self, d: Duration) {
            *self.now.lock().unwrap() += chrono::Duration::from_std(d).unwrap();
        }
        fn sleeps(&self) -> Vec<Duration> {
            self.sleeps.lock().unwrap().clone()
        }
    }
    #[async_trait]
    impl Clock for ManualClock {
        fn now(&self) -> DateTime<Utc> {
            *self.now.lock().unwrap()
        }
        async fn sleep(&self, d: Duration) {
            self.sleeps.lock().unwrap().push(d);
            self.advance(d);
            // Let other tasks (the stopper) see the new time, as a real sleep would.
            tokio::task::yield_now().await;
        }
    }

    /// Parameters in memory; counts reads.
    #[derive(Default)]
    pub(crate) struct MemoryParams {
        values: Mutex<BTreeMap<String, String>>,
        reads: AtomicU32,
    }
    impl MemoryParams {
        fn set(&self, name: &str, value: &str) {
            self.values.lock().unwrap().insert(name.to_string(), value.to_string());
        }
    }
    #[async_trait]
    impl ParamStore for MemoryParams {
        async fn get_tree(&self, prefix: &str) -> Result<Vec<(String, String)>, ParamError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self
                .values
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
        async fn put(&self, name: &str, value: &str, _secure: bool) -> Result<(), ParamError> {
            self.set(name, value);
            Ok(())
        }
    }

    /// A forge with a fixed number of pending jobs for every pool, optionally with a poll hint.
    pub(crate) struct FixedQueue {
        pending: u32,
        hint: Option<Duration>,
        clock: Arc<ManualClock>,
        tick_cost: Duration,
    }
    #[async_trait]
    impl JobSource for FixedQueue {
        async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
            self.clock.advance(self.tick_cost);
            Ok(PoolJobs {
                pending: (0..self.pending).map(|i| JobRef::with_id(i.to_string(), None)).collect(),
                poll_hint: self.hint,
                ..PoolJobs::default()
            })
        }
    }

    const PREFIX: &str = "/ci/scaler";

    pub(crate) fn params(slots: &str, extra: &[(&str, &str)]) -> Arc<MemoryParams> {
        let p = Arc::new(MemoryParams::default());
        for (k, v) in [
            ("forges/wp/kind", "woodpecker"),
            ("forges/wp/url", "http://127.0.0.1:1"),
            ("forges/wp/token", "s3cr3t-token"),
            ("pools/linux/forge", "wp"),
            ("pools/linux/asg", "ci-linux"),
            ("pools/linux/slots", slots),
        ]
        .iter()
        .chain(extra)
        {
            p.set(&format!("{PREFIX}/{k}"), v);
        }
        p
    }

    pub(crate) struct Rig {
        pub(crate) clock: Arc<ManualClock>,
        pub(crate) fleet: Arc<MemoryFleet>,
        pub(crate) params: Arc<MemoryParams>,
        pub(crate) builds: Arc<AtomicU32>,
        pub(crate) lines: Arc<Mutex<Vec<String>>>,
    }

    pub(crate) fn rig(params: Arc<MemoryParams>, pending: u32, hint: Option<Duration>) -> (Rig, Scaler) {
        let clock = ManualClock::at(t(0));
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 20, 1));
        let builds = Arc::new(AtomicU32::new(0));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let source: Arc<dyn JobSource> =
            Arc::new(FixedQueue { pending, hint, clock: clock.clone(), tick_cost: Duration::from_millis(250) });
        let (f, b) = (fleet.clone(), builds.clone());
        let factory: EdgesFactory = Arc::new(move |config: &Config| {
            b.fetch_add(1, Ordering::SeqCst);
            let sources = config.forges.keys().map(|k| (k.clone(), source.clone())).collect();
            let fleet: Arc<dyn Fleet> = f.clone();
            (Edges::new(sources, fleet, BTreeMap::new()), vec![])
        });
        let sink_lines = lines.clone();
        let scaler =
            Scaler::new(ConfigSource::Ssm(PREFIX.into()), Some(params.clone() as Arc<dyn ParamStore>), factory)
                .with_clock(clock.clone())
                .with_metrics(Arc::new(move |l: &str| sink_lines.lock().unwrap().push(l.to_string())));
        (Rig { clock, fleet, params, builds, lines }, scaler)
    }

    /// Fails a loop that never ends instead of hanging the test run.
    async fn guarded<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(20), f).await.expect("the loop did not stop")
    }

    fn no_stop() -> watch::Receiver<bool> {
        watch::channel(false).1
    }

    fn invocation() -> Mode {
        Mode::Invocation { deadline: None }
    }

    #[tokio::test]
    async fn an_invocation_ticks_every_poll_interval_within_the_budget() {
        let (rig, mut scaler) = rig(params("2", &[]), 7, None);
        let summary = scaler.run(invocation(), no_stop()).await.unwrap();
        // Ticks start at 0, 10, 20, 30, 40, 50 s: the one at 50 s still starts within 50 s.
        assert_eq!(summary.ticks, 6);
        assert_eq!(rig.clock.sleeps(), vec![Duration::from_millis(9750); 5]);
        assert_eq!(rig.fleet.group("ci-linux").unwrap().group.desired, 4);
        assert_eq!(summary.pools[0].raises, 1, "the later ticks see the same queue and change nothing");
        assert_eq!(rig.params.reads.load(Ordering::SeqCst), 1, "config_ttl 60 s: read once");
        assert_eq!(rig.builds.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_buildkite_poll_hint_stretches_the_interval() {
        let (rig, mut scaler) = rig(params("2", &[]), 1, Some(secs(20)));
        let summary = scaler.run(invocation(), no_stop()).await.unwrap();
        assert_eq!(summary.ticks, 3, "ticks at 0, 20, 40 s");
        assert!(rig.clock.sleeps().iter().all(|d| *d > secs(19)));
    }

    #[tokio::test]
    async fn the_deadline_cuts_the_loop_short() {
        let (_rig, mut scaler) = rig(params("2", &[]), 1, None);
        let summary = scaler.run(Mode::Invocation { deadline: Some(t(30)) }, no_stop()).await.unwrap();
        assert_eq!(summary.ticks, 3, "budget 30 - 10 s headroom: ticks at 0, 10, 20 s");
    }

    #[tokio::test]
    async fn a_zero_loop_budget_ticks_once() {
        let (rig, mut scaler) = rig(params("2", &[("settings/loop_budget", "0s")]), 1, None);
        assert_eq!(scaler.run(invocation(), no_stop()).await.unwrap().ticks, 1);
        assert!(rig.clock.sleeps().is_empty());
    }

    #[tokio::test]
    async fn invalid_config_at_cold_start_lists_every_problem_and_scales_nothing() {
        let p = params("0", &[("pools/mac/forge", "nope"), ("pools/mac/asg", "ci-mac")]);
        p.values.lock().unwrap().remove(&format!("{PREFIX}/forges/wp/token"));
        let (rig, mut scaler) = rig(p, 5, None);
        let err = scaler.run(invocation(), no_stop()).await.unwrap_err();
        assert!(err.is_invalid_config());
        let message = err.to_string();
        assert!(message.contains("pools/linux/slots"), "{message}");
        assert!(message.contains("pools/mac/forge"), "{message}");
        assert!(message.contains("forges/wp/token"), "{message}");
        assert!(rig.fleet.writes().is_empty());
        assert_eq!(rig.fleet.describe_calls(), 0);
        let lines = rig.lines.lock().unwrap();
        let tick: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(tick["ConfigErrors"], 3);
    }

    #[tokio::test]
    async fn an_invalid_reload_keeps_the_last_valid_config() {
        let (rig, mut scaler) = rig(params("2", &[("settings/loop_budget", "0s")]), 7, None);
        scaler.run(invocation(), no_stop()).await.unwrap();
        rig.params.set(&format!("{PREFIX}/pools/linux/slots"), "0");
        rig.clock.advance(secs(61));
        let summary = scaler.run(invocation(), no_stop()).await.unwrap();
        assert_eq!(summary.ticks, 1);
        assert_eq!(summary.config_errors.len(), 1);
        assert!(summary.config_errors[0].contains("pools/linux/slots"));
        assert_eq!(scaler.config().unwrap().pools[0].policy.slots, 2);
        let lines = rig.lines.lock().unwrap();
        let tick: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(tick["ConfigErrors"], 1);
        assert_eq!(rig.params.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_valid_reload_takes_effect_after_the_ttl_without_rebuilding_clients() {
        let (rig, mut scaler) = rig(params("2", &[("settings/loop_budget", "0s")]), 8, None);
        scaler.run(invocation(), no_stop()).await.unwrap();
        assert_eq!(rig.fleet.group("ci-linux").unwrap().group.desired, 4);
        rig.params.set(&format!("{PREFIX}/pools/linux/slots"), "1");
        rig.clock.advance(secs(30));
        scaler.run(invocation(), no_stop()).await.unwrap();
        assert_eq!(rig.fleet.group("ci-linux").unwrap().group.desired, 4, "within the TTL: old config");
        rig.clock.advance(secs(31));
        scaler.run(invocation(), no_stop()).await.unwrap();
        assert_eq!(rig.fleet.group("ci-linux").unwrap().group.desired, 8, "after the TTL: slots = 1");
        assert_eq!(rig.builds.load(Ordering::SeqCst), 1, "the forges did not change");
        rig.params.set(&format!("{PREFIX}/forges/wp/url"), "http://127.0.0.1:2");
        rig.clock.advance(secs(61));
        scaler.run(invocation(), no_stop()).await.unwrap();
        assert_eq!(rig.builds.load(Ordering::SeqCst), 2, "a forge changed: clients rebuilt");
    }

    #[tokio::test]
    async fn dry_run_applies_nothing() {
        let (rig, mut scaler) =
            rig(params("2", &[("settings/dry_run", "true"), ("settings/loop_budget", "0s")]), 7, None);
        let summary = scaler.run(invocation(), no_stop()).await.unwrap();
        assert!(summary.dry_run);
        assert_eq!(summary.pools[0].raises, 1);
        assert!(rig.fleet.writes().is_empty());
    }

    #[tokio::test]
    async fn forever_stops_after_the_current_tick_when_told() {
        let (rig, mut scaler) = rig(params("2", &[]), 1, None);
        let (tx, rx) = watch::channel(false);
        let clock = rig.clock.clone();
        // Stop once the clock passes 35 s: the loop is then asleep before the tick at 40 s.
        let stopper = tokio::spawn(async move {
            loop {
                if clock.now() >= t(35) {
                    tx.send(true).unwrap();
                    return;
                }
                tokio::task::yield_now().await;
            }
        });
        let summary = guarded(scaler.run(Mode::Forever, rx)).await.unwrap();
        stopper.await.unwrap();
        assert!(summary.ticks >= 4, "ticks at 0, 10, 20, 30 s at least: {}", summary.ticks);
        assert!(summary.ticks <= 5);
    }

    #[tokio::test]
    async fn forever_reloads_after_the_ttl() {
        let (rig, mut scaler) = rig(params("2", &[]), 1, None);
        let (tx, rx) = watch::channel(false);
        let clock = rig.clock.clone();
        let stopper = tokio::spawn(async move {
            while clock.now() < t(125) {
                tokio::task::yield_now().await;
            }
            tx.send(true).unwrap();
        });
        guarded(scaler.run(Mode::Forever, rx)).await.unwrap();
        stopper.await.unwrap();
        assert!(rig.params.reads.load(Ordering::SeqCst) >= 3, "read at 0, 60 and 120 s");
    }

    #[tokio::test]
    async fn every_tick_prints_metrics_lines() {
        let (rig, mut scaler) = rig(params("2", &[("settings/loop_budget", "0s")]), 7, None);
        scaler.run(invocation(), no_stop()).await.unwrap();
        let lines = rig.lines.lock().unwrap();
        assert_eq!(lines.len(), 2, "one pool line and one tick line");
        let pool: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(pool["Pool"], "linux");
        assert_eq!(pool["PendingJobs"], 7);
        assert_eq!(pool["DesiredAfter"], 4);
        let tick: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(tick["TickDurationMs"], 250);
        assert!(!lines.iter().any(|l| l.contains("s3cr3t")), "no token in metrics");
    }
}
