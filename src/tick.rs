//! One tick: observe every pool concurrently (forge jobs, one DescribeAutoScalingGroups for
//! all groups), de-duplicate jobs across pools, plan each pool, apply raises, and report one
//! structured event per pool. A failing forge or pool skips only that pool.

use crate::adaptive::{self, AdaptiveSettings, ArrivalHistory};
use crate::cloud::{
    Fleet, FleetError, GroupState, TAG_ARRIVALS, TAG_BOOT_TIMEOUT, TAG_IDLE_TIMEOUT, TAG_LAST_SCALE_OUT,
};
use crate::config::{Config, IdleTimeout, PoolConfig};
use crate::forge::JobSource;
use crate::model::{JobRef, Observation, Plan, PoolJobs, Queue, Reason};
use crate::plan::plan;
use crate::policy::Policy;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The outside world a tick talks to.
#[derive(Clone)]
pub struct Edges {
    /// One job source per configured forge, by forge name.
    pub sources: BTreeMap<String, Arc<dyn JobSource>>,
    /// The Auto Scaling fleet for `fleet = asg` pools.
    pub fleet: Arc<dyn Fleet>,
    /// Per-pool fleets for `fleet = command` pools, by pool name (the group is the pool name).
    pub command_fleets: BTreeMap<String, Arc<dyn Fleet>>,
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

/// One pool's outcome in a tick.
#[derive(Debug, Clone, Serialize)]
pub struct PoolReport {
    pub pool: String,
    pub forge: String,
    pub asg: String,
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
    /// HTTP requests the forge observation cost.
    #[serde(skip)]
    pub requests: u32,
    /// What was planned from, for `--record` and metrics.
    #[serde(skip)]
    pub observation: Option<Observation>,
    #[serde(skip)]
    pub plan: Option<Plan>,
    #[serde(skip)]
    pub poll_hint: Option<Duration>,
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
                let obs = r.observation.clone()?;
                let policy = config.pool(&r.pool)?.policy.clone();
                // The tick puts its own notes (jobs left out before planning) before the
                // planner's reasons; keep them so a replay reports the same reasons.
                let planned = r.plan.as_ref().map_or(0, |p| p.reason_strings().len());
                let notes = r.reasons[..r.reasons.len().saturating_sub(planned)].to_vec();
                Some(RecordedPool {
                    pool: r.pool.clone(),
                    forge: r.forge.clone(),
                    asg: r.asg.clone(),
                    policy,
                    queue: obs.queue,
                    group: obs.group,
                    notes,
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
    pub group: crate::model::Group,
    /// What the tick left out before planning (duplicates, unschedulable jobs), as reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl RecordedObservation {
    /// Plans every recorded pool with no network at all.
    pub fn plan_all(&self) -> TickReport {
        let pools = self
            .pools
            .iter()
            .map(|p| {
                let obs = Observation { queue: p.queue.clone(), group: p.group.clone() };
                let planned = plan(&p.policy, &obs, self.now);
                let mut r = report(p.pool.clone(), p.forge.clone(), p.asg.clone(), &obs, &planned, 0);
                r.reasons.splice(0..0, p.notes.iter().cloned());
                r
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
}

fn report(pool: String, forge: String, asg: String, obs: &Observation, planned: &Plan, requests: u32) -> PoolReport {
    PoolReport {
        pool,
        forge,
        asg,
        pending: Some(obs.queue.pending - unschedulable(planned)),
        running: Some(obs.queue.running),
        waiting: Some(obs.queue.waiting),
        desired_before: Some(obs.group.desired),
        desired_after: Some(planned.desired),
        action: if planned.raises(&obs.group) { Action::Raise } else { Action::None },
        reasons: planned.reason_strings(),
        error: None,
        requests,
        observation: Some(obs.clone()),
        plan: Some(planned.clone()),
        poll_hint: None,
    }
}

/// Pending jobs the planner left out as unschedulable.
fn unschedulable(planned: &Plan) -> u32 {
    planned.reasons.iter().map(|r| if let Reason::Unschedulable { jobs, .. } = r { *jobs } else { 0 }).sum()
}

/// "a, b, c" or "a, b, ... (12 in all)".
fn name_jobs(ids: &[String]) -> String {
    const SHOWN: usize = 5;
    if ids.len() <= SHOWN {
        ids.join(", ")
    } else {
        format!("{}, ... ({} in all)", ids[..SHOWN].join(", "), ids.len())
    }
}

fn error_report(pool: &PoolConfig, message: String) -> PoolReport {
    PoolReport {
        pool: pool.name.clone(),
        forge: pool.forge.clone(),
        asg: pool.fleet_name().to_string(),
        pending: None,
        running: None,
        waiting: None,
        desired_before: None,
        desired_after: None,
        action: Action::Error,
        reasons: vec![],
        error: Some(message),
        requests: 0,
        observation: None,
        plan: None,
        poll_hint: None,
    }
}

/// The idle timeout to publish for a pool this tick; `adaptive` is computed elsewhere and
/// passed in by the caller (None: leave the tag alone).
pub fn idle_timeout_tag(pool: &PoolConfig, adaptive: Option<Duration>) -> Option<String> {
    match pool.idle_timeout {
        IdleTimeout::Fixed(d) => Some(humantime::format_duration(d).to_string()),
        IdleTimeout::Adaptive => adaptive.map(|d| humantime::format_duration(d).to_string()),
    }
}

/// The adaptive idle timeout of one pool at one tick, and the arrivals tag to write back.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveIdle {
    pub timeout: Duration,
    pub arrivals_tag: String,
}

/// Reads the pool's arrival history from its group tag, adds the jobs created since the tag
/// was written, and computes the idle timeout (`adaptive::idle_timeout`). Jobs without a
/// creation time (count-only forges) add nothing; with too little history the timeout is
/// the adaptive module's fallback (10 min).
pub fn adaptive_idle<'a>(
    tags: &BTreeMap<String, String>,
    jobs: impl Iterator<Item = &'a JobRef>,
    instances: u32,
    now: DateTime<Utc>,
) -> AdaptiveIdle {
    let now_s = now.timestamp().max(0) as u64;
    let mut history = tags.get(TAG_ARRIVALS).and_then(|t| ArrivalHistory::from_tag(t)).unwrap_or_default();
    let created = jobs.filter_map(|j| j.created).map(|c| c.timestamp().max(0) as u64);
    history.record(created, now_s, 128);
    let timeout = adaptive::idle_timeout(&history.arrivals_s, instances.max(1), now_s, &AdaptiveSettings::default());
    AdaptiveIdle { timeout: Duration::from_secs(timeout.as_secs()), arrivals_tag: history.to_tag() }
}

/// Runs one tick at `now`. With `apply = false` nothing is written anywhere.
pub async fn tick(config: &Config, edges: &Edges, now: DateTime<Utc>, apply: bool) -> Result<TickReport, TickError> {
    // Observe: the groups (one call for all ASGs) and every pool's jobs, concurrently.
    let asg_names: Vec<String> = {
        let mut names: Vec<String> = config.pools.iter().filter_map(|p| p.asg().map(str::to_string)).collect();
        names.sort();
        names.dedup();
        names
    };
    let describe_asgs = async {
        if asg_names.is_empty() {
            Ok(BTreeMap::new())
        } else {
            edges.fleet.describe(&asg_names).await
        }
    };
    // TODO(lead): the tick budget (settings.tick_budget) once it exists; 40 s fits the Lambda.
    let forge_deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let observe_jobs = futures::future::join_all(config.pools.iter().map(|pool| async move {
        match edges.sources.get(&pool.forge) {
            Some(source) => source.jobs(pool, forge_deadline).await.map_err(|e| format!("forge {}: {e}", pool.forge)),
            None => Err(format!("forge {}: no job source configured", pool.forge)),
        }
    }));
    let describe_commands = futures::future::join_all(config.pools.iter().map(|pool| async move {
        match edges.command_fleets.get(&pool.name) {
            Some(fleet) => Some(fleet.describe(std::slice::from_ref(&pool.name)).await),
            None => None,
        }
    }));
    let (groups, jobs, command_groups) = futures::join!(describe_asgs, observe_jobs, describe_commands);
    let groups = groups.map_err(TickError::Describe)?;

    // De-duplicate: a job two pools could serve counts once, for the first pool by name.
    let mut seen: HashMap<(String, String), String> = HashMap::new();
    let mut reports = Vec::with_capacity(config.pools.len());
    for ((pool, jobs), command_group) in config.pools.iter().zip(jobs).zip(command_groups) {
        let state: Result<GroupState, String> = match (pool.asg(), command_group) {
            (Some(asg), _) => groups.get(asg).cloned().ok_or_else(|| {
                format!("Auto Scaling Group {asg} not found (check pools/{}/asg and the region)", pool.name)
            }),
            (None, Some(Ok(mut described))) => {
                described.remove(&pool.name).ok_or_else(|| "command fleet reported no size".to_string())
            }
            (None, Some(Err(e))) => Err(e.to_string()),
            (None, None) => Err("no command fleet configured".to_string()),
        };
        let jobs: PoolJobs = match jobs {
            Ok(j) => j,
            Err(e) => {
                reports.push(error_report(pool, e));
                continue;
            }
        };
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                reports.push(error_report(pool, e));
                continue;
            }
        };
        let mut duplicates: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut fresh = |list: &[JobRef]| -> Vec<JobRef> {
            let mut kept = Vec::with_capacity(list.len());
            for job in list {
                if let Some(id) = &job.id {
                    match seen.entry((pool.forge.clone(), id.clone())) {
                        Entry::Occupied(first) => {
                            duplicates.entry(first.get().clone()).or_default().push(id.clone());
                            continue;
                        }
                        Entry::Vacant(slot) => {
                            slot.insert(pool.name.clone());
                        }
                    }
                }
                kept.push(job.clone());
            }
            kept
        };
        let pending = fresh(&jobs.pending);
        let running = fresh(&jobs.running);
        let mut reasons_extra = Vec::new();
        for (first_pool, ids) in &duplicates {
            reasons_extra.push(format!("job(s) {} already counted for pool {first_pool}", name_jobs(ids)));
        }
        let threshold = chrono::Duration::from_std(pool.policy.unschedulable_after).unwrap_or(chrono::Duration::MAX);
        let stale: Vec<String> = pending
            .iter()
            .filter(|j| j.created.is_some_and(|c| now.signed_duration_since(c) > threshold))
            .map(|j| j.id.clone().unwrap_or_else(|| "?".into()))
            .collect();
        if !stale.is_empty() {
            tracing::warn!(
                target: "forge_scaler::tick",
                pool = %pool.name,
                jobs = ?stale,
                "pending jobs look unschedulable: no agent takes them (labels, a broken image?)"
            );
            reasons_extra.push(format!(
                "job(s) {} pending longer than {}: not counted",
                name_jobs(&stale),
                humantime::format_duration(pool.policy.unschedulable_after)
            ));
        }
        let obs =
            Observation { queue: Queue::from_jobs(&pending, &running, jobs.waiting, now), group: state.group.clone() };
        let planned = plan(&pool.policy, &obs, now);
        let mut r =
            report(pool.name.clone(), pool.forge.clone(), pool.fleet_name().to_string(), &obs, &planned, jobs.requests);
        r.poll_hint = jobs.poll_hint;
        r.reasons.splice(0..0, reasons_extra);
        let adaptive = (pool.idle_timeout == IdleTimeout::Adaptive)
            .then(|| adaptive_idle(&state.tags, pending.iter().chain(&running), planned.desired, now));
        if let Some(a) = &adaptive {
            r.reasons.push(format!(
                "adaptive idle timeout {} for the instances (from the pool's recent arrivals)",
                humantime::format_duration(a.timeout)
            ));
        }

        if apply {
            let (fleet, group_name): (&Arc<dyn Fleet>, &str) = match pool.asg() {
                Some(asg) => (&edges.fleet, asg),
                None => (&edges.command_fleets[&pool.name], pool.name.as_str()),
            };
            if let Err(e) = apply_pool(
                fleet.as_ref(),
                group_name,
                &state,
                &planned,
                obs.queue.pending,
                instance_tags(pool, adaptive.as_ref()),
                now,
            )
            .await
            {
                r.action = Action::Error;
                r.desired_after = Some(state.group.desired);
                r.error = Some(e.to_string());
            }
        }
        reports.push(r);
    }
    for r in &reports {
        log_report(r, apply);
    }
    Ok(TickReport { pools: reports })
}

/// The tags the instances read, as they should be after this tick (ASG pools only).
fn instance_tags(pool: &PoolConfig, adaptive: Option<&AdaptiveIdle>) -> Vec<(&'static str, String)> {
    if pool.asg().is_none() {
        return Vec::new();
    }
    [
        (TAG_IDLE_TIMEOUT, idle_timeout_tag(pool, adaptive.map(|a| a.timeout))),
        (TAG_ARRIVALS, adaptive.map(|a| a.arrivals_tag.clone())),
        (TAG_BOOT_TIMEOUT, Some(humantime::format_duration(pool.boot_timeout).to_string())),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| (key, v)))
    .collect()
}

/// Raises the group when the plan says so and writes the tags that changed.
async fn apply_pool(
    fleet: &dyn Fleet,
    group: &str,
    state: &GroupState,
    planned: &Plan,
    queued: u32,
    wanted_tags: Vec<(&'static str, String)>,
    now: DateTime<Utc>,
) -> Result<(), FleetError> {
    let mut tags = Vec::new();
    if planned.raises(&state.group) {
        fleet.raise(group, planned.desired, queued).await?;
        tags.push((TAG_LAST_SCALE_OUT.to_string(), now.to_rfc3339_opts(SecondsFormat::Secs, true)));
    }
    for (key, value) in wanted_tags {
        if state.tags.get(key) != Some(&value) {
            tags.push((key.to_string(), value));
        }
    }
    if !tags.is_empty() {
        fleet.set_tags(group, &tags).await?;
    }
    Ok(())
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
        asg = %r.asg,
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
        "pool ticked"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::memory::MemoryFleet;
    use crate::forge::ForgeError;
    use crate::model::JobRef;
    use async_trait::async_trait;

    /// A job source that answers from a table of pool name -> jobs, or fails.
    struct FakeSource(BTreeMap<String, Result<PoolJobs, String>>);

    #[async_trait]
    impl JobSource for FakeSource {
        async fn jobs(&self, pool: &PoolConfig, _deadline: tokio::time::Instant) -> Result<PoolJobs, ForgeError> {
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
        Edges { sources, fleet, command_fleets: BTreeMap::new() }
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
    async fn unschedulable_jobs_are_named_and_not_counted() {
        let fleet = Arc::new(MemoryFleet::new().with_group("ci-linux", 0, 10, 0));
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
        assert!(report.pools[0].reasons.iter().any(|r| r == "job(s) old-1 pending longer than 30m: not counted"));
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
        let a = adaptive_idle(&BTreeMap::new(), std::iter::empty(), 1, now());
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
}
