//! One tick: observe every pool concurrently (forge jobs, one DescribeAutoScalingGroups for
//! all groups) within the tick budget, de-duplicate jobs across pools, step each pool (the
//! pure decision in `step`), apply raises, and report one structured event per pool. A
//! failing forge or pool skips only that pool. This is the shell around `step`: it does
//! the I/O and nothing it decides here is policy.

use crate::adaptive::AdaptiveSettings;
use crate::cloud::{Fleet, FleetError, GroupState};
use crate::config::{Config, IdleTimeout, PoolConfig};
use crate::forge::{ForgeError, JobSource};
use crate::model::{tags, Group, Observation, PoolJobs, Queue};
use crate::plan::plan;
use crate::policy::Policy;
use crate::step::{self, IdleRule, Note, PoolInput, PoolStep};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One tick's observation deadline when the configuration sets none: all pools, pages and
/// retries included, inside the Lambda's 60 s timeout with headroom.
pub const DEFAULT_TICK_BUDGET: Duration = Duration::from_secs(40);
/// How long a tick's writes (re-read, raise, tags) may take after its observation, all
/// pools together (each AWS call is also bounded by the SDK's operation timeout).
pub const APPLY_BUDGET: Duration = Duration::from_secs(10);

/// The outside world a tick talks to.
#[derive(Clone)]
pub struct Edges {
    /// One job source per configured forge, by forge name.
    pub sources: BTreeMap<String, Arc<dyn JobSource>>,
    /// The Auto Scaling fleet for `fleet = asg` pools.
    pub fleet: Arc<dyn Fleet>,
    /// Per-pool fleets for `fleet = command` pools, by pool name (the group is the pool name).
    pub command_fleets: BTreeMap<String, Arc<dyn Fleet>>,
    /// Tags a raise could not write, by group, written by the next tick that can.
    pub owed_tags: OwedTags,
}

/// Scale-out tags (key, value) a raise could not write, by group name.
pub type OwedTags = Arc<Mutex<BTreeMap<String, Vec<(String, String)>>>>;

impl Edges {
    pub fn new(
        sources: BTreeMap<String, Arc<dyn JobSource>>,
        fleet: Arc<dyn Fleet>,
        command_fleets: BTreeMap<String, Arc<dyn Fleet>>,
    ) -> Self {
        Edges { sources, fleet, command_fleets, owed_tags: Arc::default() }
    }

    /// The fleet holding a pool's capacity and the group's name in it.
    fn fleet_of<'a>(&'a self, pool: &'a PoolConfig) -> Option<(&'a Arc<dyn Fleet>, &'a str)> {
        match pool.asg() {
            Some(asg) => Some((&self.fleet, asg)),
            None => self.command_fleets.get(&pool.name).map(|f| (f, pool.name.as_str())),
        }
    }
}

/// What a pool's tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Desired capacity raised (or would be, in a plan).
    Raise,
    /// Nothing to change.
    None,
    /// The pool could not be observed, planned or applied.
    Error,
}

/// Why one pool could not act this tick. Its kind names the metric it counts in.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("forge {forge}: {source}")]
    Forge {
        forge: String,
        #[source]
        source: ForgeError,
    },
    #[error("forge {forge}: no answer within the tick budget of {budget}")]
    Deadline { forge: String, budget: String },
    #[error("Auto Scaling Group {group} not found (check pools/{pool}/asg and the region)")]
    GroupNotFound { group: String, pool: String },
    #[error("{0}")]
    Fleet(#[source] FleetError),
    #[error("{0}")]
    Apply(#[source] FleetError),
    #[error("{0}")]
    Config(String),
}

/// The kind of a pool error, as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The forge failed or did not answer in time.
    Forge,
    /// The group could not be read (missing, or its command failed).
    Group,
    /// The raise was refused.
    Apply,
    /// The pool's forge has no usable client.
    Config,
}

impl ErrorKind {
    /// The CloudWatch metric counting this kind of error.
    pub fn metric(self) -> &'static str {
        match self {
            ErrorKind::Forge => "ForgeErrors",
            ErrorKind::Group => "GroupErrors",
            ErrorKind::Apply => "ApplyErrors",
            ErrorKind::Config => "PoolConfigErrors",
        }
    }
}

impl PoolError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PoolError::Forge { .. } | PoolError::Deadline { .. } => ErrorKind::Forge,
            PoolError::GroupNotFound { .. } | PoolError::Fleet(_) => ErrorKind::Group,
            PoolError::Apply(_) => ErrorKind::Apply,
            PoolError::Config(_) => ErrorKind::Config,
        }
    }
}

/// One pool's outcome in a tick.
#[derive(Debug, Clone, Serialize)]
pub struct PoolReport {
    pub pool: String,
    pub forge: String,
    /// The Auto Scaling Group, or `command` for a command fleet (JSON key `asg`).
    #[serde(rename = "asg")]
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_before: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_after: Option<u32>,
    pub action: Action,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub error_kind: Option<ErrorKind>,
    /// Something went wrong that did not stop the pool (a raise whose tags were not written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// HTTP requests the forge observation cost.
    #[serde(skip)]
    pub requests: u32,
    /// The pool's decision, for `--record` and metrics.
    #[serde(skip)]
    pub step: Option<PoolStep>,
    #[serde(skip)]
    pub poll_hint: Option<Duration>,
}

impl PoolReport {
    fn decided(pool: &str, forge: &str, group: &str, step: PoolStep, requests: u32) -> Self {
        let obs = &step.observation;
        PoolReport {
            pool: pool.to_string(),
            forge: forge.to_string(),
            group: group.to_string(),
            pending: Some(step.pending_counted()),
            running: Some(obs.queue.running),
            waiting: Some(obs.queue.waiting),
            desired_before: Some(obs.group.desired),
            desired_after: Some(step.plan.desired),
            action: if step.plan.raises(&obs.group) { Action::Raise } else { Action::None },
            reasons: step.reasons(),
            error: None,
            error_kind: None,
            warnings: Vec::new(),
            requests,
            step: Some(step),
            poll_hint: None,
        }
    }

    fn failed(pool: &PoolConfig, error: PoolError) -> Self {
        PoolReport {
            pool: pool.name.clone(),
            forge: pool.forge.clone(),
            group: pool.fleet_name().to_string(),
            pending: None,
            running: None,
            waiting: None,
            desired_before: None,
            desired_after: None,
            action: Action::Error,
            reasons: vec![],
            error: Some(error.to_string()),
            error_kind: Some(error.kind()),
            warnings: Vec::new(),
            requests: 0,
            step: None,
            poll_hint: None,
        }
    }
}

/// All pools' outcomes in a tick.
#[derive(Debug, Clone, Serialize)]
pub struct TickReport {
    pub pools: Vec<PoolReport>,
}

impl TickReport {
    pub fn any_error(&self) -> bool {
        self.pools.iter().any(|p| p.action == Action::Error)
    }
    /// The shortest poll interval a forge asked for, if any.
    pub fn poll_hint(&self) -> Option<Duration> {
        self.pools.iter().filter_map(|p| p.poll_hint).min()
    }
    /// The observation as `plan --observation` reads it.
    pub fn recorded(&self, config: &Config, now: DateTime<Utc>) -> RecordedObservation {
        let pools = self
            .pools
            .iter()
            .filter_map(|r| {
                let step = r.step.as_ref()?;
                let policy = config.pool(&r.pool)?.policy.clone();
                Some(RecordedPool {
                    pool: r.pool.clone(),
                    forge: r.forge.clone(),
                    asg: r.group.clone(),
                    policy,
                    queue: step.observation.queue.clone(),
                    group: step.observation.group.clone(),
                    notes: step.notes.clone(),
                })
            })
            .collect();
        RecordedObservation { now, pools }
    }
}

/// A whole tick's observation, as written by `plan --record` and read by `plan --observation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedObservation {
    pub now: DateTime<Utc>,
    pub pools: Vec<RecordedPool>,
}

/// One pool of a recorded observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedPool {
    pub pool: String,
    /// The forge and group the pool read (informational; absent in hand-written files).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub forge: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub asg: String,
    #[serde(default)]
    pub policy: Policy,
    pub queue: Queue,
    pub group: Group,
    /// What the tick noted besides the plan (duplicates left out, a partial count, the
    /// adaptive timeout), so a replay reports the same reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

impl RecordedObservation {
    /// Plans every recorded pool with no network at all: the planner on the recorded
    /// queue and group, rendered with the recorded notes exactly as the tick rendered them.
    pub fn plan_all(&self) -> TickReport {
        let pools = self
            .pools
            .iter()
            .map(|p| {
                let observation = Observation { queue: p.queue.clone(), group: p.group.clone() };
                let plan = plan(&p.policy, &observation, self.now);
                let step = PoolStep { observation, plan, notes: p.notes.clone(), tags: Vec::new() };
                PoolReport::decided(&p.pool, &p.forge, &p.asg, step, 0)
            })
            .collect();
        TickReport { pools }
    }
}

/// Why a whole tick could not run (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("cannot read the Auto Scaling Groups: {0}")]
    Describe(#[source] FleetError),
    #[error("cannot read the Auto Scaling Groups: no answer within the tick budget of {0}")]
    DescribeDeadline(String),
}

/// The idle rule a pool's configuration asks for.
pub fn idle_rule(pool: &PoolConfig) -> IdleRule {
    match pool.idle_timeout {
        IdleTimeout::Fixed(d) => IdleRule::Fixed(d),
        IdleTimeout::Adaptive => IdleRule::Adaptive(AdaptiveSettings::default()),
    }
}

/// What one pool's observation gave: its jobs and its group, or why not.
type Observed = Result<(PoolJobs, GroupState), PoolError>;

/// Runs one tick at `now` within the configuration's tick budget. With `apply = false`
/// nothing is written anywhere.
pub async fn tick(config: &Config, edges: &Edges, now: DateTime<Utc>, apply: bool) -> Result<TickReport, TickError> {
    tick_within(config, edges, now, apply, tick_budget(config)).await
}

/// One tick whose observation ends within `budget` (a pool whose forge is later is an
/// error for that pool; the others act), and whose writes end within [`APPLY_BUDGET`]
/// after that.
pub async fn tick_within(
    config: &Config,
    edges: &Edges,
    now: DateTime<Utc>,
    apply: bool,
    budget: Duration,
) -> Result<TickReport, TickError> {
    let observed = observe(config, edges, budget).await?;
    let ok: Vec<(&PoolConfig, &PoolJobs)> =
        config.pools.iter().zip(&observed).filter_map(|(pool, o)| Some((pool, &o.as_ref().ok()?.0))).collect();
    let mut deduplicated =
        step::deduplicate(ok.iter().map(|(p, j)| (p.name.as_str(), p.forge.as_str(), *j))).into_iter();

    let mut decided = Vec::with_capacity(config.pools.len());
    for (pool, observed) in config.pools.iter().zip(observed) {
        let (jobs, group) = match observed {
            Ok(o) => o,
            Err(e) => {
                decided.push((pool, PoolReport::failed(pool, e), None));
                continue;
            }
        };
        let (kept, notes) = deduplicated.next().unwrap_or_default();
        let idle = idle_rule(pool);
        let input = PoolInput {
            policy: &pool.policy,
            idle: &idle,
            instance_tags: pool.asg().is_some(),
            jobs: &kept,
            group: &group,
            notes,
        };
        let step = step::step(&input, now);
        let mut report = PoolReport::decided(&pool.name, &pool.forge, pool.fleet_name(), step, jobs.requests);
        report.poll_hint = jobs.poll_hint;
        decided.push((pool, report, Some(group)));
    }

    let deadline = tokio::time::Instant::now() + APPLY_BUDGET;
    let reports = futures::future::join_all(decided.into_iter().map(|(pool, mut report, group)| async move {
        if let (true, Some(group)) = (apply, group) {
            if tokio::time::timeout_at(deadline, apply_pool(edges, pool, &group, &mut report)).await.is_err() {
                let e = PoolError::Apply(FleetError::Service {
                    operation: "apply",
                    message: format!("no answer within {}", humantime::format_duration(APPLY_BUDGET)),
                });
                report.action = Action::Error;
                report.error = Some(e.to_string());
                report.error_kind = Some(e.kind());
            }
        }
        report
    }))
    .await;
    for r in &reports {
        log_report(r, apply);
    }
    Ok(TickReport { pools: reports })
}

fn tick_budget(config: &Config) -> Duration {
    let _ = config;
    DEFAULT_TICK_BUDGET
}

/// Reads every pool's jobs and group concurrently, each forge within the tick budget.
async fn observe(config: &Config, edges: &Edges, budget: Duration) -> Result<Vec<Observed>, TickError> {
    let deadline = tokio::time::Instant::now() + budget;
    let budget_text = humantime::format_duration(budget).to_string();
    let asg_names: Vec<String> = {
        let mut names: Vec<String> = config.pools.iter().filter_map(|p| p.asg().map(str::to_string)).collect();
        names.sort();
        names.dedup();
        names
    };
    let describe_asgs = async {
        if asg_names.is_empty() {
            return Ok(BTreeMap::new());
        }
        match tokio::time::timeout_at(deadline, edges.fleet.describe(&asg_names)).await {
            Ok(described) => described.map_err(TickError::Describe),
            Err(_) => Err(TickError::DescribeDeadline(budget_text.clone())),
        }
    };
    let jobs =
        futures::future::join_all(config.pools.iter().map(|pool| observe_jobs(edges, pool, deadline, &budget_text)));
    let commands = futures::future::join_all(config.pools.iter().map(|pool| async move {
        let fleet = edges.command_fleets.get(&pool.name)?;
        let described = tokio::time::timeout_at(deadline, fleet.describe(std::slice::from_ref(&pool.name))).await;
        Some(described)
    }));
    let (groups, jobs, commands) = futures::join!(describe_asgs, jobs, commands);
    let groups = groups?;
    Ok(config
        .pools
        .iter()
        .zip(jobs)
        .zip(commands)
        .map(|((pool, jobs), command)| {
            let group = match (pool.asg(), command) {
                (Some(asg), _) => groups
                    .get(asg)
                    .cloned()
                    .ok_or_else(|| PoolError::GroupNotFound { group: asg.to_string(), pool: pool.name.clone() }),
                (None, Some(Ok(Ok(mut described)))) => described.remove(&pool.name).ok_or_else(|| {
                    PoolError::Fleet(FleetError::Command {
                        pool: pool.name.clone(),
                        message: "reported no size".to_string(),
                    })
                }),
                (None, Some(Ok(Err(e)))) => Err(PoolError::Fleet(e)),
                (None, Some(Err(_))) => Err(PoolError::Fleet(FleetError::Command {
                    pool: pool.name.clone(),
                    message: format!("size_command gave no answer within the tick budget of {budget_text}"),
                })),
                (None, None) => Err(PoolError::Config(format!("pool {}: no command fleet configured", pool.name))),
            };
            Ok((jobs?, group?))
        })
        .collect())
}

/// One pool's jobs within the deadline.
async fn observe_jobs(
    edges: &Edges,
    pool: &PoolConfig,
    deadline: tokio::time::Instant,
    budget: &str,
) -> Result<PoolJobs, PoolError> {
    let forge = &pool.forge;
    let Some(source) = edges.sources.get(forge) else {
        return Err(PoolError::Config(format!("forge {forge}: no job source configured")));
    };
    match tokio::time::timeout_at(deadline, source.jobs(pool)).await {
        Ok(Ok(jobs)) => Ok(jobs),
        Ok(Err(source)) => Err(PoolError::Forge { forge: forge.clone(), source }),
        Err(_) => Err(PoolError::Deadline { forge: forge.clone(), budget: budget.to_string() }),
    }
}

/// Raises the group when the plan says so, never below what AWS holds at the moment of
/// the write, and writes the tags that changed (plus any a failed write still owes). A
/// raise whose tags cannot be written stays a raise, with a warning.
async fn apply_pool(edges: &Edges, pool: &PoolConfig, state: &GroupState, report: &mut PoolReport) {
    let Some(step) = report.step.clone() else { return };
    let Some((fleet, group)) = edges.fleet_of(pool) else { return };
    let mut writes = step.tag_writes(&state.tags);
    if step.plan.raises(&state.group) {
        match raise_without_lowering(fleet.as_ref(), group, step.plan.desired, step.pending_counted()).await {
            Ok(Raised::Done) => {}
            Ok(Raised::AlreadyAt(now_desired)) => {
                report.action = Action::None;
                report.desired_after = Some(now_desired);
                report.reasons.push(format!(
                    "desired capacity is already {now_desired} (changed outside during this tick): left as it is"
                ));
                writes.retain(|(k, _)| k != tags::LAST_SCALE_OUT && k != tags::LAST_SCALE_OUT_TO);
            }
            Err(e) => {
                let e = PoolError::Apply(e);
                report.action = Action::Error;
                report.desired_after = Some(state.group.desired);
                report.error = Some(e.to_string());
                report.error_kind = Some(e.kind());
                return;
            }
        }
    }
    let owed = edges.owed_tags.lock().ok().and_then(|mut owed| owed.remove(group)).unwrap_or_default();
    if !writes.iter().any(|(k, _)| k == tags::LAST_SCALE_OUT) && owed_is_newer(&owed, &state.group) {
        writes.extend(owed);
    }
    if writes.is_empty() {
        return;
    }
    if let Err(e) = fleet.set_tags(group, &writes).await {
        if report.action == Action::Raise {
            report.warnings.push(format!("raised, but the group's tags were not written (the next tick retries): {e}"));
            let scale_out: Vec<_> =
                writes.into_iter().filter(|(k, _)| k == tags::LAST_SCALE_OUT || k == tags::LAST_SCALE_OUT_TO).collect();
            if let Ok(mut owed) = edges.owed_tags.lock() {
                owed.insert(group.to_string(), scale_out);
            }
        } else {
            report.warnings.push(format!("the group's tags were not written: {e}"));
        }
    }
}

/// Whether owed scale-out tags record a later scale-out than the group's own tags.
fn owed_is_newer(owed: &[(String, String)], group: &Group) -> bool {
    let at = owed
        .iter()
        .find(|(k, _)| k == tags::LAST_SCALE_OUT)
        .and_then(|(_, v)| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc));
    match (at, group.last_scale_out) {
        (Some(owed), Some(held)) => owed > held,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The outcome of a raise that never lowers.
enum Raised {
    Done,
    /// The group already holds this much or more: nothing written.
    AlreadyAt(u32),
}

/// Re-reads the group immediately before the write and writes only above what it holds.
async fn raise_without_lowering(
    fleet: &dyn Fleet,
    group: &str,
    desired: u32,
    queued: u32,
) -> Result<Raised, FleetError> {
    let fresh = fleet.describe(&[group.to_string()]).await?;
    if let Some(now) = fresh.get(group) {
        if now.group.desired >= desired {
            return Ok(Raised::AlreadyAt(now.group.desired));
        }
    }
    fleet.raise(group, desired, queued).await?;
    Ok(Raised::Done)
}

fn log_report(r: &PoolReport, applied: bool) {
    let action = match r.action {
        Action::Raise => "raise",
        Action::None => "none",
        Action::Error => "error",
    };
    tracing::info!(
        target: "forge_scaler::tick",
        pool = %r.pool,
        forge = %r.forge,
        asg = %r.group,
        pending = r.pending,
        running = r.running,
        waiting = r.waiting,
        desired_before = r.desired_before,
        desired_after = r.desired_after,
        action,
        applied,
        requests = r.requests,
        reasons = ?r.reasons,
        error = r.error.as_deref(),
        warnings = ?r.warnings,
        "pool ticked"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::ArrivalHistory;
    use crate::cloud::memory::MemoryFleet;
    use crate::cloud::{TAG_ARRIVALS, TAG_IDLE_TIMEOUT};
    use crate::model::JobRef;
    use async_trait::async_trait;

    /// A job source that answers from a table of pool name -> jobs, or fails.
    struct FakeSource(BTreeMap<String, Result<PoolJobs, String>>);

    #[async_trait]
    impl JobSource for FakeSource {
        async fn jobs(&self, pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
            match self.0.get(&pool.name) {
                Some(Ok(j)) => Ok(j.clone()),
                Some(Err(e)) => Err(ForgeError::Other(e.clone())),
                None => Ok(PoolJobs::default()),
            }
        }
    }

    fn config(pools: &[(&str, &str, &str)]) -> Config {
        let mut text = String::from(
            "[forges.wp]\nkind = \"woodpecker\"\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n[forges.fj]\nkind = \"forgejo\"\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n",
        );
        for (name, forge, asg) in pools {
            text.push_str(&format!("[pools.{name}]\nforge = \"{forge}\"\nasg = \"{asg}\"\nslots = 2\n"));
        }
        Config::from_toml(&text, |_| None).unwrap()
    }

    fn jobs(ids: &[&str]) -> PoolJobs {
        PoolJobs { pending: ids.iter().map(|i| JobRef::with_id(*i, None)).collect(), ..PoolJobs::default() }
    }

    fn edges(fleet: Arc<MemoryFleet>, wp: FakeSource) -> Edges {
        let mut sources: BTreeMap<String, Arc<dyn JobSource>> = BTreeMap::new();
        sources.insert("wp".into(), Arc::new(wp));
        sources.insert("fj".into(), Arc::new(FakeSource(BTreeMap::new())));
        Edges::new(sources, fleet, BTreeMap::new())
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[tokio::test]
    async fn raises_and_tags_the_group() {
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 10, 1));
        let source = FakeSource([("linux".to_string(), Ok(jobs(&["1", "2", "3", "4", "5", "6", "7"])))].into());
        let cfg = config(&[("linux", "wp", "ci-linux")]);
        let report = tick(&cfg, &edges(fleet.clone(), source), now(), true).await.unwrap();
        assert_eq!(report.pools[0].desired_after, Some(4));
        assert_eq!(report.pools[0].action, Action::Raise);
        let g = fleet.group("ci-linux").unwrap();
        assert_eq!(g.group.desired, 4);
        assert_eq!(g.group.last_scale_out, Some(now()));
        assert_eq!(g.tags.get(TAG_IDLE_TIMEOUT).map(String::as_str), Some("10m"));
    }

    #[tokio::test]
    async fn dry_run_writes_nothing() {
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 10, 1));
        let source = FakeSource([("linux".to_string(), Ok(jobs(&["1", "2", "3"])))].into());
        let cfg = config(&[("linux", "wp", "ci-linux")]);
        let report = tick(&cfg, &edges(fleet.clone(), source), now(), false).await.unwrap();
        assert_eq!(report.pools[0].desired_after, Some(2));
        assert!(fleet.writes().is_empty());
    }

    #[tokio::test]
    async fn second_tick_with_same_queue_changes_nothing() {
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 10, 1));
        let source = FakeSource([("linux".to_string(), Ok(jobs(&["1", "2", "3"])))].into());
        let cfg = config(&[("linux", "wp", "ci-linux")]);
        let e = edges(fleet.clone(), source);
        tick(&cfg, &e, now(), true).await.unwrap();
        let before = fleet.writes().len();
        let second = tick(&cfg, &e, now(), true).await.unwrap();
        assert_eq!(second.pools[0].action, Action::None);
        assert_eq!(fleet.writes().len(), before);
    }

    #[tokio::test]
    async fn a_failing_forge_skips_only_its_pool() {
        let fleet = Arc::new(MemoryFleet::new().with_group("a", 0, 10, 0).with_group("b", 0, 10, 0));
        let source =
            FakeSource([("pa".to_string(), Err("HTTP 401".to_string())), ("pb".to_string(), Ok(jobs(&["9"])))].into());
        let cfg = config(&[("pa", "wp", "a"), ("pb", "wp", "b")]);
        let report = tick(&cfg, &edges(fleet.clone(), source), now(), true).await.unwrap();
        assert_eq!(report.pools[0].action, Action::Error);
        assert!(report.pools[0].error.as_deref().unwrap().contains("forge wp: HTTP 401"));
        assert_eq!(fleet.group("a").unwrap().group.desired, 0);
        assert_eq!(fleet.group("b").unwrap().group.desired, 1);
        assert!(report.any_error());
    }

    #[tokio::test]
    async fn one_describe_for_all_groups() {
        let fleet = Arc::new(MemoryFleet::new().with_group("a", 0, 10, 0).with_group("b", 0, 10, 0));
        let cfg = config(&[("pa", "wp", "a"), ("pb", "wp", "b"), ("pc", "fj", "a")]);
        tick(&cfg, &edges(fleet.clone(), FakeSource(BTreeMap::new())), now(), false).await.unwrap();
        assert_eq!(fleet.describe_calls(), 1);
    }

    #[tokio::test]
    async fn a_job_two_pools_could_serve_counts_for_the_first_by_name() {
        let fleet = Arc::new(MemoryFleet::new().with_group("a", 0, 10, 0).with_group("b", 0, 10, 0));
        let source = FakeSource(
            [("alpha".to_string(), Ok(jobs(&["1", "2"]))), ("beta".to_string(), Ok(jobs(&["2", "3", "4"])))].into(),
        );
        let cfg = config(&[("beta", "wp", "b"), ("alpha", "wp", "a")]);
        let report = tick(&cfg, &edges(fleet, source), now(), false).await.unwrap();
        assert_eq!(report.pools[0].pool, "alpha");
        assert_eq!(report.pools[0].pending, Some(2));
        assert_eq!(report.pools[1].pending, Some(2));
        assert_eq!(report.pools[1].reasons[0], "job(s) 2 already counted for pool alpha");
    }

    #[tokio::test]
    async fn unschedulable_jobs_are_named_once_and_not_counted() {
        // One ready instance stands idle while a job two hours old waits: no agent takes it.
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 10, 1));
        let old = now() - chrono::Duration::hours(2);
        let queue = PoolJobs {
            pending: vec![JobRef::with_id("old-1", Some(old)), JobRef::with_id("new-1", Some(now()))],
            ..PoolJobs::default()
        };
        let source = FakeSource([("linux".to_string(), Ok(queue))].into());
        let cfg = config(&[("linux", "wp", "ci-linux")]);
        let report = tick(&cfg, &edges(fleet, source), now(), false).await.unwrap();
        assert_eq!(report.pools[0].pending, Some(1));
        assert_eq!(report.pools[0].desired_after, Some(1));
        let naming: Vec<_> = report.pools[0].reasons.iter().filter(|r| r.contains("old-1")).collect();
        assert_eq!(naming.len(), 1, "{:#?}", report.pools[0].reasons);
        assert!(naming[0].contains("older than 1800s left out of demand"), "{naming:?}");
    }

    #[tokio::test]
    async fn an_old_backlog_with_no_instances_launches() {
        // The function was down for 31 minutes; MinSize 0, nothing up: all seven count.
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 10, 0));
        let old = Some(now() - chrono::Duration::minutes(31));
        let queue =
            PoolJobs { pending: (0..7).map(|i| JobRef::with_id(i.to_string(), old)).collect(), ..PoolJobs::default() };
        let source = FakeSource([("linux".to_string(), Ok(queue))].into());
        let cfg = config(&[("linux", "wp", "ci-linux")]);
        let report = tick(&cfg, &edges(fleet.clone(), source), now(), true).await.unwrap();
        assert_eq!(report.pools[0].desired_after, Some(4));
        assert_eq!(fleet.group("ci-linux").unwrap().group.desired, 4);
    }

    #[tokio::test]
    async fn adaptive_pools_keep_arrivals_in_a_tag_and_publish_the_timeout() {
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 10, 0));
        let text = "[forges.wp]\nkind = \"woodpecker\"\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n\
                    [pools.linux]\nforge = \"wp\"\nasg = \"ci-linux\"\nidle_timeout = \"adaptive\"\n";
        let cfg = Config::from_toml(text, |_| None).unwrap();
        // Sparse jobs: one every two hours. Each tick sees the job created just before it.
        for hour in (0..12).step_by(2) {
            let at = now() + chrono::Duration::hours(hour);
            let queue = PoolJobs {
                pending: vec![JobRef::with_id(format!("j{hour}"), Some(at - chrono::Duration::seconds(5)))],
                ..PoolJobs::default()
            };
            let source = FakeSource([("linux".to_string(), Ok(queue))].into());
            tick(&cfg, &edges(fleet.clone(), source), at, true).await.unwrap();
        }
        let tags = fleet.group("ci-linux").unwrap().tags;
        let history = ArrivalHistory::from_tag(&tags[TAG_ARRIVALS]).unwrap();
        assert_eq!(history.arrivals_s.len(), 6, "{tags:?}");
        // Hours between jobs: waiting idle never pays, so the timeout drops below the fixed 10m.
        let timeout = humantime::parse_duration(&tags[TAG_IDLE_TIMEOUT]).unwrap();
        assert!(timeout < Duration::from_secs(600), "{timeout:?}");
    }

    #[test]
    fn adaptive_without_history_falls_back_to_ten_minutes() {
        let a = step::adaptive_idle(&BTreeMap::new(), std::iter::empty(), 1, now(), &AdaptiveSettings::default());
        assert_eq!(a.timeout, Duration::from_secs(600));
        assert!(ArrivalHistory::from_tag(&a.arrivals_tag).is_some());
    }

    #[tokio::test]
    async fn a_missing_group_is_a_pool_error() {
        let fleet = Arc::new(MemoryFleet::new());
        let cfg = config(&[("linux", "wp", "nope")]);
        let report = tick(&cfg, &edges(fleet, FakeSource(BTreeMap::new())), now(), true).await.unwrap();
        assert!(report.pools[0].error.as_deref().unwrap().contains("Auto Scaling Group nope not found"));
    }

    #[tokio::test]
    async fn a_command_fleet_raises_a_fake_clouds_size() {
        let dir = tempfile::tempdir().unwrap();
        let size = dir.path().join("size");
        std::fs::write(&size, "0").unwrap();
        let text = format!(
            "[forges.wp]\nkind = \"woodpecker\"\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n\
             [pools.hz]\nforge = \"wp\"\nfleet = \"command\"\nmax_instances = 5\n\
             command = \"echo $FORGE_SCALER_SIZE > {0}\"\nsize_command = \"cat {0}\"\n",
            size.display()
        );
        let cfg = Config::from_toml(&text, |_| None).unwrap();
        let source = FakeSource([("hz".to_string(), Ok(jobs(&["1", "2", "3"])))].into());
        let mut e = edges(Arc::new(MemoryFleet::new()), source);
        e.command_fleets = crate::app::command_fleets(&cfg);
        let report = tick(&cfg, &e, now(), true).await.unwrap();
        assert_eq!(report.pools[0].action, Action::Raise, "{report:?}");
        assert_eq!(std::fs::read_to_string(&size).unwrap().trim(), "3");
        let again = tick(&cfg, &e, now(), true).await.unwrap();
        assert_eq!(again.pools[0].action, Action::None);
        assert_eq!(again.pools[0].desired_before, Some(3));
    }

    #[tokio::test]
    async fn recorded_observation_replans_the_same() {
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 10, 1));
        let source = FakeSource([("linux".to_string(), Ok(jobs(&["1", "2", "3", "4", "5", "6", "7"])))].into());
        let cfg = config(&[("linux", "wp", "ci-linux")]);
        let report = tick(&cfg, &edges(fleet, source), now(), false).await.unwrap();
        let recorded = report.recorded(&cfg, now());
        let text = serde_json::to_string(&recorded).unwrap();
        let back: RecordedObservation = serde_json::from_str(&text).unwrap();
        assert_eq!(back.plan_all().pools[0].desired_after, Some(4));
    }

    /// Every kind of pool at once: adaptive, a job two pools could serve, a stale job beside
    /// an idle instance, a partial count, and a command fleet.
    async fn every_kind_of_pool() -> (Config, TickReport) {
        let dir = tempfile::tempdir().unwrap();
        let size = dir.path().join("size");
        std::fs::write(&size, "0").unwrap();
        let text = format!(
            "[forges.wp]\nkind = \"woodpecker\"\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n\
             [pools.alpha]\nforge = \"wp\"\nasg = \"a\"\nidle_timeout = \"adaptive\"\n\
             [pools.beta]\nforge = \"wp\"\nasg = \"b\"\n\
             [pools.hz]\nforge = \"wp\"\nfleet = \"command\"\nmax_instances = 5\n\
             command = \"true\"\nsize_command = \"cat {0}\"\n",
            size.display()
        );
        let cfg = Config::from_toml(&text, |_| None).unwrap();
        let fleet = Arc::new(MemoryFleet::new().with_group("a", 0, 10, 0).with_group("b", 0, 10, 1));
        let stale = Some(now() - chrono::Duration::hours(2));
        let beta = PoolJobs {
            pending: vec![JobRef::with_id("2", None), JobRef::with_id("old-1", stale), JobRef::with_id("3", None)],
            partial: Some("request budget of 1 spent".into()),
            ..PoolJobs::default()
        };
        let source = FakeSource(
            [
                ("alpha".to_string(), Ok(jobs(&["1", "2"]))),
                ("beta".to_string(), Ok(beta)),
                ("hz".to_string(), Ok(jobs(&["9"]))),
            ]
            .into(),
        );
        let mut e = edges(fleet, source);
        e.command_fleets = crate::app::command_fleets(&cfg);
        let report = tick(&cfg, &e, now(), false).await.unwrap();
        (cfg, report)
    }

    #[tokio::test]
    async fn a_recording_of_every_kind_of_pool_replays_to_the_same_reasons_with_none_twice() {
        let (cfg, live) = every_kind_of_pool().await;
        assert!(!live.any_error(), "{live:#?}");
        let text = serde_json::to_string(&live.recorded(&cfg, now())).unwrap();
        let replay = serde_json::from_str::<RecordedObservation>(&text).unwrap().plan_all();
        for (l, r) in live.pools.iter().zip(&replay.pools) {
            assert_eq!(l.reasons, r.reasons, "pool {}", l.pool);
            assert_eq!((l.pending, l.desired_after, l.action), (r.pending, r.desired_after, r.action));
            let mut seen = std::collections::BTreeSet::new();
            assert!(l.reasons.iter().all(|x| seen.insert(x)), "a reason twice in pool {}: {:#?}", l.pool, l.reasons);
        }
        let reasons = |pool: &str| live.pools.iter().find(|p| p.pool == pool).unwrap().reasons.join("\n");
        assert!(reasons("alpha").contains("adaptive idle timeout"), "{}", reasons("alpha"));
        assert!(reasons("beta").contains("job(s) 2 already counted for pool alpha"), "{}", reasons("beta"));
        assert!(reasons("beta").contains("(old-1)"), "{}", reasons("beta"));
        assert!(reasons("beta").contains("partial count"), "{}", reasons("beta"));
        assert_eq!(live.pools.iter().find(|p| p.pool == "hz").unwrap().desired_after, Some(1));
    }

    /// A fleet that lets a person raise the group while the forge is read.
    struct RaisedMeanwhile(MemoryFleet, std::sync::atomic::AtomicBool);

    #[async_trait]
    impl Fleet for RaisedMeanwhile {
        async fn describe(&self, groups: &[String]) -> Result<BTreeMap<String, GroupState>, FleetError> {
            let first = !self.1.swap(true, std::sync::atomic::Ordering::SeqCst);
            let described = self.0.describe(groups).await;
            if first {
                self.0.set_desired("ci-linux", 8).await?;
            }
            described
        }
        async fn set_desired(&self, group: &str, desired: u32) -> Result<(), FleetError> {
            self.0.set_desired(group, desired).await
        }
        async fn set_tags(&self, group: &str, tags: &[(String, String)]) -> Result<(), FleetError> {
            self.0.set_tags(group, tags).await
        }
    }

    #[tokio::test]
    async fn a_group_raised_from_outside_during_the_tick_is_never_lowered() {
        let fleet = Arc::new(RaisedMeanwhile(
            MemoryFleet::new().with_group("ci-linux", 0, 10, 1),
            std::sync::atomic::AtomicBool::new(false),
        ));
        let source = FakeSource([("linux".to_string(), Ok(jobs(&["1", "2", "3", "4", "5"])))].into());
        let cfg = config(&[("linux", "wp", "ci-linux")]);
        let mut sources: BTreeMap<String, Arc<dyn JobSource>> = BTreeMap::new();
        sources.insert("wp".into(), Arc::new(source));
        let e = Edges::new(sources, fleet.clone(), BTreeMap::new());
        let report = tick(&cfg, &e, now(), true).await.unwrap();
        assert_eq!(fleet.0.group("ci-linux").unwrap().group.desired, 8);
        assert_eq!(report.pools[0].action, Action::None);
        assert_eq!(report.pools[0].desired_after, Some(8));
    }

    /// A fleet whose tag writes are refused (CreateOrUpdateTags denied).
    struct TagsDenied(MemoryFleet, std::sync::atomic::AtomicBool);

    #[async_trait]
    impl Fleet for TagsDenied {
        async fn describe(&self, groups: &[String]) -> Result<BTreeMap<String, GroupState>, FleetError> {
            self.0.describe(groups).await
        }
        async fn set_desired(&self, group: &str, desired: u32) -> Result<(), FleetError> {
            self.0.set_desired(group, desired).await
        }
        async fn set_tags(&self, group: &str, tags: &[(String, String)]) -> Result<(), FleetError> {
            if self.1.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(FleetError::Service { operation: "CreateOrUpdateTags", message: "AccessDenied".into() });
            }
            self.0.set_tags(group, tags).await
        }
    }

    #[tokio::test]
    async fn a_raise_whose_tags_are_denied_is_a_raise_with_a_warning_and_the_next_tick_repairs_them() {
        let fleet = Arc::new(TagsDenied(
            MemoryFleet::new().with_group("ci-linux", 0, 10, 1),
            std::sync::atomic::AtomicBool::new(true),
        ));
        let cfg = config(&[("linux", "wp", "ci-linux")]);
        let mut sources: BTreeMap<String, Arc<dyn JobSource>> = BTreeMap::new();
        sources.insert("wp".into(), Arc::new(FakeSource([("linux".to_string(), Ok(jobs(&["1", "2", "3"])))].into())));
        let e = Edges::new(sources, fleet.clone(), BTreeMap::new());
        let first = tick(&cfg, &e, now(), true).await.unwrap();
        assert_eq!(first.pools[0].action, Action::Raise);
        assert!(first.pools[0].error.is_none());
        assert!(first.pools[0].warnings[0].contains("AccessDenied"), "{:?}", first.pools[0].warnings);
        assert_eq!(fleet.0.group("ci-linux").unwrap().group.desired, 2);
        assert!(fleet.0.group("ci-linux").unwrap().group.last_scale_out.is_none());

        fleet.1.store(false, std::sync::atomic::Ordering::SeqCst);
        let later = now() + chrono::Duration::seconds(10);
        let second = tick(&cfg, &e, later, true).await.unwrap();
        assert_eq!(second.pools[0].action, Action::None);
        let group = fleet.0.group("ci-linux").unwrap().group;
        assert_eq!(group.last_scale_out, Some(now()), "the owed tag carries the raise's own time");
        assert_eq!(group.last_scale_out_to, Some(2));
    }

    /// A job source that never answers.
    struct Hung;

    #[async_trait]
    impl JobSource for Hung {
        async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_forge_that_never_answers_fails_only_its_pool_within_the_budget() {
        let fleet = Arc::new(MemoryFleet::new().with_group("a", 0, 10, 0).with_group("b", 0, 10, 0));
        let cfg = config(&[("pa", "fj", "a"), ("pb", "wp", "b")]);
        let mut sources: BTreeMap<String, Arc<dyn JobSource>> = BTreeMap::new();
        sources.insert("fj".into(), Arc::new(Hung));
        sources.insert("wp".into(), Arc::new(FakeSource([("pb".to_string(), Ok(jobs(&["1"])))].into())));
        let e = Edges::new(sources, fleet.clone(), BTreeMap::new());
        let started = std::time::Instant::now();
        let report = tick_within(&cfg, &e, now(), true, Duration::from_millis(300)).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(report.pools[0].action, Action::Error);
        assert_eq!(report.pools[0].error_kind, Some(ErrorKind::Forge));
        assert!(report.pools[0].error.as_deref().unwrap().contains("no answer within the tick budget"));
        assert_eq!(fleet.group("b").unwrap().group.desired, 1);
        assert_eq!(fleet.group("a").unwrap().group.desired, 0);
    }
}
