//! One pool's whole decision at one tick, pure: from the pool's policy, its jobs (after
//! cross-pool de-duplication), its group and tags, and `now`, it returns the plan, the
//! tag values the group should carry, and typed notes. The Lambda's tick and the
//! simulator's forge-scaler policy both call [`step`], so what the benchmark measures is
//! the code that runs in Lambda. It must not do I/O, read the clock or log: the shell
//! (`tick`) observes, applies and reports around it.
//!
//! Stale jobs are judged in one place only: the planner's unschedulable guard
//! (`plan::plan`); the step passes the job ids along so its reasons can name them.

use crate::adaptive::{self, AdaptiveSettings, ArrivalHistory};
use crate::model::{tags, Group, GroupState, JobRef, Observation, Plan, PoolJobs, Queue};
use crate::plan::plan;
use crate::policy::Policy;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

/// Arrival times kept in the `forge-scaler:arrivals` tag before it is fitted to 256 chars.
pub const ARRIVALS_KEPT: usize = 128;

/// How a pool's instances decide when to leave (the value the function publishes in the
/// group's idle-timeout tag).
#[derive(Debug, Clone, PartialEq)]
pub enum IdleRule {
    Fixed(Duration),
    /// Computed each tick from the pool's own arrivals (`adaptive::idle_timeout`).
    Adaptive(AdaptiveSettings),
}

/// Everything one pool's step needs, as plain data.
#[derive(Debug, Clone)]
pub struct PoolInput<'a> {
    pub policy: &'a Policy,
    pub idle: &'a IdleRule,
    /// Whether the group's instances read tags (Auto Scaling pools; command fleets don't).
    pub instance_tags: bool,
    /// The pool's jobs after cross-pool de-duplication ([`deduplicate`]).
    pub jobs: &'a PoolJobs,
    pub group: &'a GroupState,
    /// Notes decided before the step (jobs already counted for another pool).
    pub notes: Vec<Note>,
}

/// What the tick noted about a pool besides the planner's reasons, as values that render
/// themselves (the shell logs them; `plan --record` stores them for a faithful replay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum Note {
    /// Jobs another pool (first by name) already counted.
    AlreadyCounted { first_pool: String, ids: Vec<String> },
    /// The forge's answer was cut short (page or request budget, or the deadline): the
    /// counts are a lower bound of demand.
    Partial { why: String },
    /// The adaptive idle timeout chosen for the pool's instances.
    AdaptiveIdle {
        #[serde(with = "crate::policy::humantime_serde")]
        timeout: Duration,
    },
    /// A note from an older recording, kept as its text.
    #[serde(untagged)]
    Text(String),
}

impl Note {
    /// Notes that come after the planner's reasons (they follow from the plan).
    fn after_plan(&self) -> bool {
        matches!(self, Note::AdaptiveIdle { .. })
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::AlreadyCounted { first_pool, ids } => {
                write!(f, "job(s) {} already counted for pool {first_pool}", list(ids))
            }
            Note::Partial { why } => write!(f, "partial count, a lower bound of demand: {why}"),
            Note::AdaptiveIdle { timeout } => write!(
                f,
                "adaptive idle timeout {} for the instances (from the pool's recent arrivals)",
                humantime::format_duration(*timeout)
            ),
            Note::Text(text) => f.write_str(text),
        }
    }
}

/// "a, b, c" or "a, b, ... (12 in all)".
fn list(ids: &[String]) -> String {
    const SHOWN: usize = 5;
    if ids.len() <= SHOWN {
        ids.join(", ")
    } else {
        format!("{}, ... ({} in all)", ids[..SHOWN].join(", "), ids.len())
    }
}

/// One pool's decision at one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStep {
    /// What was planned from (`plan --record` stores it).
    pub observation: Observation,
    pub plan: Plan,
    pub notes: Vec<Note>,
    /// Tags the group should carry after this tick (write those whose value differs).
    /// On a raise they include the last scale-out's time and desired capacity.
    pub tags: Vec<(&'static str, String)>,
}

impl PoolStep {
    /// The notes and the planner's reasons in the order the tick reports them.
    pub fn reasons(&self) -> Vec<String> {
        render(&self.notes, &self.plan)
    }
    /// The tags whose value differs from what the group carries now.
    pub fn tag_writes(&self, current: &BTreeMap<String, String>) -> Vec<(String, String)> {
        self.tags
            .iter()
            .filter(|(key, value)| current.get(*key) != Some(value))
            .map(|(key, value)| (key.to_string(), value.clone()))
            .collect()
    }
    /// Pending jobs that count as demand (after the unschedulable guard).
    pub fn pending_counted(&self) -> u32 {
        self.observation.queue.pending - self.plan.left_out().min(self.observation.queue.pending)
    }
}

/// Notes before the plan, the planner's reasons, then the notes that follow from the plan:
/// the one rendering both a live tick and a replay use.
pub fn render(notes: &[Note], plan: &Plan) -> Vec<String> {
    let before = notes.iter().filter(|n| !n.after_plan()).map(Note::to_string);
    let after = notes.iter().filter(|n| n.after_plan()).map(Note::to_string);
    before.chain(plan.reason_strings()).chain(after).collect()
}

/// One pool's whole decision: plan, tags and notes. Pure.
pub fn step(input: &PoolInput<'_>, now: DateTime<Utc>) -> PoolStep {
    decide(input, now, false).0
}

/// [`step`], and how far its outcome holds ([`StepHold`]), from one computation.
pub fn step_with_hold(input: &PoolInput<'_>, now: DateTime<Utc>) -> (PoolStep, Option<StepHold>) {
    decide(input, now, true)
}

fn decide(input: &PoolInput<'_>, now: DateTime<Utc>, want_hold: bool) -> (PoolStep, Option<StepHold>) {
    let jobs = input.jobs;
    let observation = Observation {
        queue: Queue::from_jobs(&jobs.pending, &jobs.running, jobs.waiting, now),
        group: input.group.group.clone(),
    };
    let plan = plan(input.policy, &observation, now);
    let plan_hold = if !want_hold {
        None
    } else if plan.raises(&observation.group) {
        // The hold of the state the raise leaves: its instances booting, its scale-out in
        // the tags (as they will read back), the same jobs.
        let after = Observation { queue: observation.queue.clone(), group: raised(&observation.group, &plan, now) };
        let replanned = crate::plan::plan(input.policy, &after, now);
        crate::plan::hold(input.policy, &after, &replanned)
    } else {
        crate::plan::hold(input.policy, &observation, &plan)
    };
    let mut hold =
        plan_hold.map(|h| StepHold { demand_up_to: h.demand_up_to, until: None, adaptive: None, timeout_until: None });
    let mut notes = input.notes.clone();
    if let Some(why) = &jobs.partial {
        notes.push(Note::Partial { why: why.clone() });
    }
    let mut tags: Vec<(&'static str, String)> = Vec::new();
    if plan.raises(&observation.group) {
        tags.push((tags::LAST_SCALE_OUT, now.to_rfc3339_opts(SecondsFormat::Secs, true)));
        tags.push((tags::LAST_SCALE_OUT_TO, plan.desired.to_string()));
    }
    if input.instance_tags {
        let idle_timeout = match input.idle {
            IdleRule::Fixed(timeout) => *timeout,
            IdleRule::Adaptive(settings) => {
                let history = adaptive_history(&input.group.tags, jobs.pending.iter().chain(&jobs.running), now);
                let adaptive = AdaptiveHold::new(history, plan.desired, settings);
                let (timeout, timeout_until) = match &hold {
                    Some(_) => adaptive.timeout_and_until(now),
                    None => (adaptive.timeout(now), None),
                };
                tags.push((tags::ARRIVALS, adaptive.history.to_tag()));
                notes.push(Note::AdaptiveIdle { timeout });
                if let Some(hold) = &mut hold {
                    // A longer clock in the tag may fit fewer arrivals: the hold ends there.
                    hold.until = Some(adaptive.until());
                    hold.adaptive = Some(adaptive);
                    hold.timeout_until = timeout_until;
                }
                timeout
            }
        };
        tags.push((tags::IDLE_TIMEOUT, humantime::format_duration(idle_timeout).to_string()));
        tags.push((tags::BOOT_TIMEOUT, humantime::format_duration(input.policy.boot_timeout).to_string()));
    }
    (PoolStep { observation, plan, notes, tags }, hold)
}

/// The group as a raise by `plan` at `now` leaves it: desired capacity raised, the added
/// instances booting, the scale-out in the tags at the second the tag keeps.
fn raised(group: &Group, plan: &Plan, now: DateTime<Utc>) -> Group {
    let added = plan.desired.saturating_sub(group.desired);
    Group {
        desired: plan.desired,
        booting: group.booting.saturating_add(added),
        last_scale_out: Some(at_second(seconds(now))),
        last_scale_out_to: Some(plan.desired),
        ..group.clone()
    }
}

fn at_second(s: u64) -> DateTime<Utc> {
    chrono::TimeZone::timestamp_opt(&Utc, s.min(i64::MAX as u64) as i64, 0).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// How far one step's outcome holds: the planner's [`plan::Hold`](crate::plan::Hold) and the
/// tags. For the same policy, idle rule, group (MinSize, MaxSize, desired capacity, tags)
/// and waiting count, while pending + running stays at most `demand_up_to` and before
/// `until`, a later step raises nothing and asks for the same tag values, whatever the
/// jobs' ages. The simulator uses it to skip ticks that could only repeat this one.
/// When the step raises, the hold is that of the group the raise leaves (desired capacity
/// raised, its instances booting, its scale-out in the tags). None (from [`step_with_hold`])
/// when the state left would raise again or when only time holds a raise back.
#[derive(Debug, Clone, PartialEq)]
pub struct StepHold {
    pub demand_up_to: u32,
    /// None: no time limit.
    pub until: Option<DateTime<Utc>>,
    /// An adaptive idle timeout: a later step writes the arrivals tag and idle timeout this
    /// computes for its time and the jobs it sees ([`AdaptiveHold::advance`]).
    pub adaptive: Option<AdaptiveHold>,
    /// An adaptive idle timeout: while no job arrives, a later step publishes the same
    /// timeout before this instant (None: at any time; a fixed timeout never changes).
    pub timeout_until: Option<DateTime<Utc>>,
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
/// the settings' fallback.
pub fn adaptive_idle<'a>(
    group_tags: &BTreeMap<String, String>,
    jobs: impl Iterator<Item = &'a JobRef>,
    instances: u32,
    now: DateTime<Utc>,
    settings: &AdaptiveSettings,
) -> AdaptiveIdle {
    let adaptive = AdaptiveHold::new(adaptive_history(group_tags, jobs, now), instances, settings);
    AdaptiveIdle { timeout: adaptive.timeout(now), arrivals_tag: adaptive.history.to_tag() }
}

fn seconds(t: DateTime<Utc>) -> u64 {
    t.timestamp().max(0) as u64
}

/// The pool's arrival history as a step at `now` leaves it: read from the group tag, the
/// jobs created since it was written added, fitted to one tag value.
fn adaptive_history<'a>(
    group_tags: &BTreeMap<String, String>,
    jobs: impl Iterator<Item = &'a JobRef>,
    now: DateTime<Utc>,
) -> ArrivalHistory {
    let tag = group_tags.get(tags::ARRIVALS);
    // A tag AWS kept (at most 256 characters) renders no longer than it reads: fitted.
    let fitted = tag.is_none_or(|t| t.len() <= adaptive::TAG_VALUE_MAX);
    let mut history = tag.and_then(|t| ArrivalHistory::from_tag(t)).unwrap_or_default();
    let created = jobs.filter_map(|j| j.created).map(seconds);
    history.record_fitted(created, seconds(now), ARRIVALS_KEPT, fitted);
    history
}

/// What an adaptive step writes at later times for the same instance count: its history
/// with the jobs created since and a later clock, and the idle timeout of that history at
/// that time. Computed as [`adaptive_idle`] computes them.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveHold {
    history: ArrivalHistory,
    instances: u32,
    settings: AdaptiveSettings,
    timeouts: adaptive::IdleTimeouts,
}

impl AdaptiveHold {
    fn new(history: ArrivalHistory, instances: u32, settings: &AdaptiveSettings) -> Self {
        let instances = instances.max(1);
        let timeouts = adaptive::IdleTimeouts::new(&history.arrivals_s, instances, settings);
        AdaptiveHold { history, instances, settings: settings.clone(), timeouts }
    }
    /// As a later step at `now` that sees jobs created at `created` (pending ones, and
    /// running ones not seen before) records them; its timeout's gaps follow.
    pub fn advance(&mut self, created: impl Iterator<Item = DateTime<Utc>>, now: DateTime<Utc>) {
        let shape =
            |h: &ArrivalHistory| (h.arrivals_s.len(), h.arrivals_s.first().copied(), h.arrivals_s.last().copied());
        let before = shape(&self.history);
        self.history.record_fitted(created.map(seconds), seconds(now), ARRIVALS_KEPT, true);
        if shape(&self.history) != before {
            self.timeouts = adaptive::IdleTimeouts::new(&self.history.arrivals_s, self.instances, &self.settings);
        }
    }
    /// The first instant at which the history's tag gets a longer clock (a step may then
    /// fit fewer arrivals): the hold ends there.
    pub fn until(&self) -> DateTime<Utc> {
        at_second(self.history.fits_alike_until())
    }
    /// The idle timeout a step at `now` would publish.
    pub fn timeout(&self, now: DateTime<Utc>) -> Duration {
        Duration::from_secs(self.timeouts.at(seconds(now)).as_secs())
    }
    /// The idle timeout a step at `now` would publish, and the first instant after `now` at
    /// which it may change (None: never).
    pub fn timeout_and_until(&self, now: DateTime<Utc>) -> (Duration, Option<DateTime<Utc>>) {
        let (timeout, until) = self.timeouts.at_and_until(seconds(now));
        (Duration::from_secs(timeout.as_secs()), until.map(at_second))
    }
    /// The arrivals tag a step at `now` would write.
    pub fn arrivals_tag(&self, now: DateTime<Utc>) -> String {
        let mut history = self.history.clone();
        history.record_fitted(std::iter::empty(), seconds(now), ARRIVALS_KEPT, true);
        history.to_tag()
    }
}

/// A job two pools could serve counts once, for the first pool in name order: given each
/// pool's `(name, forge, jobs)` in the order they are to be judged, returns each pool's
/// jobs without those already counted, and the note naming them. Jobs without an id
/// (count-only forges) are never de-duplicated.
pub fn deduplicate<'a>(
    pools: impl IntoIterator<Item = (&'a str, &'a str, &'a PoolJobs)>,
) -> Vec<(PoolJobs, Vec<Note>)> {
    let mut seen: HashMap<(&str, &str), &str> = HashMap::new();
    let mut out = Vec::new();
    for (pool, forge, jobs) in pools {
        let mut duplicates: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut fresh = |list: &'a [JobRef]| -> Vec<JobRef> {
            let mut kept = Vec::with_capacity(list.len());
            for job in list {
                if let Some(id) = &job.id {
                    match seen.entry((forge, id.as_str())) {
                        Entry::Occupied(first) => {
                            duplicates.entry(first.get()).or_default().push(id.clone());
                            continue;
                        }
                        Entry::Vacant(slot) => {
                            slot.insert(pool);
                        }
                    }
                }
                kept.push(job.clone());
            }
            kept
        };
        let kept = PoolJobs { pending: fresh(&jobs.pending), running: fresh(&jobs.running), ..jobs.clone() };
        let notes = duplicates
            .into_iter()
            .map(|(first_pool, ids)| Note::AlreadyCounted { first_pool: first_pool.to_string(), ids })
            .collect();
        out.push((kept, notes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, Reason};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn group(desired: u32) -> GroupState {
        GroupState { group: Group { min: 0, max: 10, desired, ..Group::default() }, tags: BTreeMap::new() }
    }

    fn pending(ids: &[&str], age_s: i64) -> PoolJobs {
        let created = Some(now() - chrono::Duration::seconds(age_s));
        PoolJobs { pending: ids.iter().map(|i| JobRef::with_id(*i, created)).collect(), ..PoolJobs::default() }
    }

    fn input<'a>(policy: &'a Policy, idle: &'a IdleRule, jobs: &'a PoolJobs, group: &'a GroupState) -> PoolInput<'a> {
        PoolInput { policy, idle, instance_tags: true, jobs, group, notes: Vec::new() }
    }

    #[test]
    fn a_raise_carries_its_time_and_desired_in_the_tags() {
        let (policy, idle, jobs, g) =
            (Policy::default(), IdleRule::Fixed(Duration::from_secs(600)), pending(&["1", "2"], 5), group(0));
        let s = step(&input(&policy, &idle, &jobs, &g), now());
        assert_eq!(s.plan.desired, 2);
        let tags: BTreeMap<_, _> = s.tags.iter().cloned().collect();
        assert_eq!(tags[tags::LAST_SCALE_OUT], "2026-11-22T12:00:00Z");
        assert_eq!(tags[tags::LAST_SCALE_OUT_TO], "2");
        assert_eq!(tags[tags::IDLE_TIMEOUT], "10m");
        assert_eq!(tags[tags::BOOT_TIMEOUT], "10m");
    }

    #[test]
    fn no_raise_writes_no_scale_out_tag_and_unchanged_tags_are_not_rewritten() {
        let (policy, idle, jobs) = (Policy::default(), IdleRule::Fixed(Duration::from_secs(600)), PoolJobs::default());
        let mut g = group(1);
        g.tags.insert(tags::IDLE_TIMEOUT.into(), "10m".into());
        let s = step(&input(&policy, &idle, &jobs, &g), now());
        assert!(s.tags.iter().all(|(k, _)| *k != tags::LAST_SCALE_OUT));
        assert_eq!(s.tag_writes(&g.tags), vec![(tags::BOOT_TIMEOUT.to_string(), "10m".to_string())]);
    }

    #[test]
    fn command_fleets_get_no_instance_tags() {
        let (policy, idle, jobs, g) =
            (Policy::default(), IdleRule::Fixed(Duration::from_secs(60)), PoolJobs::default(), group(0));
        let s = step(&PoolInput { instance_tags: false, ..input(&policy, &idle, &jobs, &g) }, now());
        assert!(s.tags.is_empty());
    }

    #[test]
    fn an_old_job_beside_an_idle_instance_is_named_once() {
        // The issue-10 bug: tick and planner each reported the stale job.
        let policy = Policy::default();
        let idle = IdleRule::Fixed(Duration::from_secs(600));
        let jobs = pending(&["old-1"], 7200);
        let mut g = group(1);
        g.group.in_service = 1;
        let s = step(&input(&policy, &idle, &jobs, &g), now());
        let reasons = s.reasons();
        assert_eq!(reasons.iter().filter(|r| r.contains("old-1")).count(), 1, "{reasons:#?}");
        assert_eq!(s.pending_counted(), 0);
        assert!(matches!(s.plan.reasons[0], Reason::Unschedulable { jobs: 1, .. }));
    }

    #[test]
    fn adaptive_pools_publish_the_timeout_after_the_plan_and_keep_arrivals() {
        let policy = Policy::default();
        let idle = IdleRule::Adaptive(AdaptiveSettings::default());
        let jobs = pending(&["1"], 5);
        let g = group(0);
        let s = step(&input(&policy, &idle, &jobs, &g), now());
        let reasons = s.reasons();
        assert!(reasons.last().unwrap().starts_with("adaptive idle timeout 10m"), "{reasons:#?}");
        let tags: BTreeMap<_, _> = s.tags.iter().cloned().collect();
        let history = ArrivalHistory::from_tag(&tags[tags::ARRIVALS]).unwrap();
        assert_eq!(history.arrivals_s.len(), 1);
        assert_eq!(tags[tags::IDLE_TIMEOUT], "10m");
    }

    #[test]
    fn a_partial_count_is_said_before_the_plan() {
        let (policy, idle, g) = (Policy::default(), IdleRule::Fixed(Duration::from_secs(600)), group(0));
        let jobs = PoolJobs { partial: Some("request budget of 2 spent".into()), ..pending(&["1"], 5) };
        let s = step(&input(&policy, &idle, &jobs, &g), now());
        assert_eq!(s.reasons()[0], "partial count, a lower bound of demand: request budget of 2 spent");
        assert_eq!(s.plan.desired, 1);
    }

    #[test]
    fn a_job_two_pools_could_serve_counts_for_the_first() {
        let (a, b) = (pending(&["1", "2"], 5), pending(&["2", "3"], 5));
        let out = deduplicate([("alpha", "wp", &a), ("beta", "wp", &b)]);
        assert_eq!(out[0].0.pending.len(), 2);
        assert_eq!(out[1].0.pending.len(), 1);
        assert_eq!(out[1].1, vec![Note::AlreadyCounted { first_pool: "alpha".into(), ids: vec!["2".into()] }]);
        assert_eq!(out[1].1[0].to_string(), "job(s) 2 already counted for pool alpha");
    }

    #[test]
    fn the_same_id_on_two_forges_is_two_jobs() {
        let (a, b) = (pending(&["1"], 5), pending(&["1"], 5));
        let out = deduplicate([("alpha", "wp", &a), ("beta", "fj", &b)]);
        assert_eq!(out[1].0.pending.len(), 1);
    }

    #[test]
    fn notes_round_trip_and_old_text_notes_still_read() {
        let notes = vec![
            Note::AlreadyCounted { first_pool: "a".into(), ids: vec!["1".into()] },
            Note::AdaptiveIdle { timeout: Duration::from_secs(90) },
        ];
        let text = serde_json::to_string(&notes).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Note>>(&text).unwrap(), notes);
        let old: Vec<Note> = serde_json::from_str(r#"["job(s) 2 already counted for pool alpha"]"#).unwrap();
        assert_eq!(old[0].to_string(), "job(s) 2 already counted for pool alpha");
    }
}
