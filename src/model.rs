//! Plain data shared by every layer: what a forge's queue and a group look like to the
//! planner, and the plan it returns. No I/O, no clock, no SDK or wire types here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The group tags forge-scaler writes (the function) and reads (the function and the
/// instance watchdog). They carry a stateless function's memory between ticks.
pub mod tags {
    /// Time of the last scale-out (RFC 3339); cooldowns derive from it.
    pub const LAST_SCALE_OUT: &str = "forge-scaler:last-scale-out";
    /// The desired capacity that scale-out set; the unschedulable guard reads it.
    pub const LAST_SCALE_OUT_TO: &str = "forge-scaler:last-scale-out-to";
    /// The watchdog's idle timeout (humantime).
    pub const IDLE_TIMEOUT: &str = "forge-scaler:idle-timeout";
    /// The watchdog's boot timeout (humantime).
    pub const BOOT_TIMEOUT: &str = "forge-scaler:boot-timeout";
    /// A pool's recent job arrivals, for the adaptive idle timeout.
    pub const ARRIVALS: &str = "forge-scaler:arrivals";
}

/// One job as a forge adapter reports it: enough to de-duplicate across pools, to apply
/// the unschedulable guard, and to measure queue wait and cost per repository. Count-only
/// sources (Buildkite, generic) report jobs with no id; those are never de-duplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRef {
    pub id: Option<String>,
    pub created: Option<DateTime<Utc>>,
    /// When a running job started, where the forge's listing says.
    pub started: Option<DateTime<Utc>>,
    /// The job's repository (`owner/name` or a project path), where the listing says.
    pub repo: Option<String>,
}

impl JobRef {
    pub fn anonymous() -> Self {
        JobRef::default()
    }
    pub fn with_id(id: impl Into<String>, created: Option<DateTime<Utc>>) -> Self {
        JobRef { id: Some(id.into()), created, ..JobRef::default() }
    }
    /// A job of unknown id created at `created` (count-only listings, the simulator).
    pub fn created_at(created: Option<DateTime<Utc>>) -> Self {
        JobRef { created, ..JobRef::default() }
    }
    pub fn started(mut self, started: Option<DateTime<Utc>>) -> Self {
        self.started = started;
        self
    }
    pub fn with_job_id(mut self, id: Option<String>) -> Self {
        self.id = id;
        self
    }
    pub fn repo(mut self, repo: Option<String>) -> Self {
        self.repo = repo.filter(|r| !r.is_empty());
        self
    }
}

/// What one forge adapter saw for one pool in one tick, before cross-pool de-duplication.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolJobs {
    /// Jobs waiting for an agent that this pool's agents could take.
    pub pending: Vec<JobRef>,
    /// Jobs running on agents that carry this pool's labels.
    pub running: Vec<JobRef>,
    /// Jobs matching the pool that wait on dependencies (not demand; deadlock guard only).
    pub waiting: u32,
    /// HTTP requests this observation cost.
    pub requests: u32,
    /// A poll interval the forge asked for (Buildkite's poll-duration header).
    pub poll_hint: Option<Duration>,
    /// Why the count is partial, if it is: a page or request budget or the deadline ended
    /// the reading, so `pending`/`running` are a lower bound of demand (never more). A
    /// sentence for people; it never holds a URL query value or a credential.
    pub partial: Option<String>,
}

impl PoolJobs {
    /// `n` anonymous jobs (count-only sources).
    pub fn anonymous(n: u32) -> Vec<JobRef> {
        (0..n).map(|_| JobRef::anonymous()).collect()
    }
}

/// The queue as the planner sees it for one pool, after de-duplication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub pending: u32,
    pub running: u32,
    #[serde(default)]
    pub waiting: u32,
    /// Ages (seconds) of the pending jobs whose creation time the forge gave; may be
    /// shorter than `pending` (jobs of unknown age are always demand).
    #[serde(default)]
    pub pending_ages_s: Vec<u64>,
    /// The ids of those same jobs, in the same order, where the forge gave one (so the
    /// planner can name the jobs it leaves out); may be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_ids: Vec<String>,
}

impl Queue {
    /// Builds the planner's view from de-duplicated jobs at `now`.
    pub fn from_jobs(pending: &[JobRef], running: &[JobRef], waiting: u32, now: DateTime<Utc>) -> Self {
        let dated = || pending.iter().filter_map(|j| Some((j.created?, j)));
        let pending_ages_s = dated().map(|(c, _)| (now - c).num_seconds().max(0) as u64).collect();
        let pending_ids = if pending.iter().any(|j| j.id.is_some()) {
            dated().map(|(_, j)| j.id.clone().unwrap_or_else(|| "?".into())).collect()
        } else {
            Vec::new()
        };
        Queue { pending: pending.len() as u32, running: running.len() as u32, waiting, pending_ages_s, pending_ids }
    }
}

/// One Auto Scaling Group (or command fleet) as read at this tick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    #[serde(default)]
    pub in_service: u32,
    #[serde(default)]
    pub booting: u32,
    /// From the group's tag `forge-scaler:last-scale-out` (RFC 3339).
    #[serde(default)]
    pub last_scale_out: Option<DateTime<Utc>>,
    /// From the tag `forge-scaler:last-scale-out-to`: the desired capacity it set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_out_to: Option<u32>,
}

/// One group as read at a tick: the planner's `Group` plus its tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupState {
    pub group: Group,
    pub tags: BTreeMap<String, String>,
}

impl GroupState {
    /// Builds the state, deriving `last_scale_out` (and the desired it set) from the tags.
    pub fn new(
        min: u32,
        max: u32,
        desired: u32,
        in_service: u32,
        booting: u32,
        tags: BTreeMap<String, String>,
    ) -> Self {
        let last_scale_out = tags
            .get(tags::LAST_SCALE_OUT)
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.with_timezone(&Utc));
        let last_scale_out_to = tags.get(tags::LAST_SCALE_OUT_TO).and_then(|t| t.trim().parse().ok());
        let group = Group { min, max, desired, in_service, booting, last_scale_out, last_scale_out_to };
        GroupState { group, tags }
    }
}

/// Everything the planner needs about one pool at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub queue: Queue,
    pub group: Group,
}

/// Why the planner decided what it did, as values; the shell renders them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// demand = pending + running, needed = ceil(demand / slots).
    Demand {
        pending: u32,
        running: u32,
        slots: u32,
        needed: u32,
    },
    /// Vespene formula result.
    Weighted {
        pending: u32,
        running: u32,
        target: u32,
    },
    Spare {
        spare: u32,
    },
    /// `ceil(needed x spare_ratio)` extra instances (at most `spare_max`).
    ProportionalSpare {
        ratio: f64,
        spare: u32,
    },
    /// Pending jobs older than `unschedulable_after` left out of demand because ready
    /// slots of the pool stood idle and did not take them.
    Unschedulable {
        jobs: u32,
        older_than_s: u64,
        idle_slots: u32,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        ids: Vec<String>,
    },
    /// Pending jobs left out of demand because the scale-out made after they were created
    /// (to `to` instances, `launched_s_ago`) had spare slots and did not take them within
    /// the boot timeout.
    LaunchDidNotHelp {
        jobs: u32,
        to: u32,
        launched_s_ago: u64,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        ids: Vec<String>,
    },
    /// Jobs wait on dependencies, nothing runs, no instance: start one.
    DeadlockGuard {
        waiting: u32,
    },
    RaisedToMin {
        min: u32,
    },
    CappedAt {
        ceiling: u32,
        wanted: u32,
    },
    Cooldown {
        remaining_s: u64,
    },
    MaxStep {
        step: u32,
        wanted: u32,
    },
    /// Target is at or below the current desired; instances leave by themselves.
    Enough {
        desired: u32,
        target: u32,
    },
    Raise {
        from: u32,
        to: u32,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Demand { pending, running, slots, needed } => write!(
                f,
                "{pending} pending + {running} running jobs at {slots} slot(s) per instance need {needed} instance(s)"
            ),
            Reason::Weighted { pending, running, target } => write!(
                f,
                "weighted formula over {pending} pending and {running} running jobs gives {target} instance(s)"
            ),
            Reason::Spare { spare } => write!(f, "{spare} spare instance(s) added while there is demand"),
            Reason::ProportionalSpare { ratio, spare } => {
                write!(f, "{spare} spare instance(s) added in proportion to demand (spare_ratio {ratio})")
            }
            Reason::Unschedulable { jobs, older_than_s, idle_slots, ids } => write!(
                f,
                "{jobs} pending job(s){} older than {older_than_s}s left out of demand: {idle_slots} slot(s) stand idle and no agent takes them (labels or a broken image?)",
                name_jobs(ids)
            ),
            Reason::LaunchDidNotHelp { jobs, to, launched_s_ago, ids } => write!(
                f,
                "{jobs} pending job(s){} left out of demand: the scale-out to {to} made {launched_s_ago}s ago had room for them and no agent took them within the boot timeout, or its instances left idle without them (labels or a broken image?)",
                name_jobs(ids)
            ),
            Reason::DeadlockGuard { waiting } => write!(
                f,
                "{waiting} job(s) wait on dependencies with no instance running: starting one so they can proceed"
            ),
            Reason::RaisedToMin { min } => write!(f, "raised to the group's MinSize {min}"),
            Reason::CappedAt { ceiling, wanted } => {
                write!(f, "wanted {wanted} instance(s), capped at {ceiling} (MaxSize / max_instances)")
            }
            Reason::Cooldown { remaining_s } => {
                write!(f, "scale-out cooldown: {remaining_s}s left since the last scale-out")
            }
            Reason::MaxStep { step, wanted } => {
                write!(f, "wanted +{wanted}, limited to +{step} per tick (max_step)")
            }
            Reason::Enough { desired, target } => write!(
                f,
                "target {target} <= desired {desired}: nothing to add (idle instances leave by themselves)"
            ),
            Reason::Raise { from, to } => write!(f, "raise desired capacity from {from} to {to}"),
        }
    }
}

/// " (a, b, c)" or " (a, b, ... 12 in all)"; empty when no job is named.
pub fn name_jobs(ids: &[String]) -> String {
    const SHOWN: usize = 5;
    match ids.len() {
        0 => String::new(),
        n if n <= SHOWN => format!(" ({})", ids.join(", ")),
        n => format!(" ({}, ... {n} in all)", ids[..SHOWN].join(", ")),
    }
}

/// The planner's decision for one pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The desired capacity to set; never below the group's current desired.
    pub desired: u32,
    /// Unclamped-by-step target the policy wanted (for reports and the simulator).
    pub target: u32,
    pub reasons: Vec<Reason>,
}

impl Plan {
    pub fn raises(&self, group: &Group) -> bool {
        self.desired > group.desired
    }
    pub fn reason_strings(&self) -> Vec<String> {
        self.reasons.iter().map(|r| r.to_string()).collect()
    }
    /// Pending jobs the unschedulable guard left out of demand.
    pub fn left_out(&self) -> u32 {
        self.reasons
            .iter()
            .map(|r| match r {
                Reason::Unschedulable { jobs, .. } | Reason::LaunchDidNotHelp { jobs, .. } => *jobs,
                _ => 0,
            })
            .sum()
    }
}
