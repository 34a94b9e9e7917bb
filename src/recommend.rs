//! Predictive floors: hour-of-week MinSize values, recommended from a pool's job history, as
//! recurring ASG scheduled actions. It owns the method (a pure function from arrivals and
//! durations to 168 floors, checked on the simulator), the two printed forms (a
//! CloudFormation snippet and `aws autoscaling` commands), the plain floors file that
//! `simulate --floors` reads, and reading the arrival history a group's tag holds. It never
//! writes to a group: applying the actions is the user's (or CloudFormation's) job.
//!
//! # The method
//! 1. Each job's need: the jobs running when it arrived (itself included), if every job
//!    started at once, over the slots of one instance, rounded up.
//! 2. Candidate floors: per hour of the week (Monday 00:00 UTC first), the `quantile`
//!    (default 0.95) of the needs of the jobs that arrived in that hour, over every week of
//!    the history; 0 for an hour with no job.
//! 3. Verify and lower: the simulator replays the history under forge-scaler (the real
//!    pool step and watchdog) with the floors as scheduled MinSize. Floors are lowered one
//!    step at a time, the step that serves the fewest jobs first (a step `l` of hour `h`
//!    serves the jobs of `h` whose need is exactly `l`); a binary search finds the longest
//!    such sequence of steps that keeps the simulated p95 wait at or under the target
//!    (p95 is close to monotone in it). When forge-scaler alone already meets the target
//!    every floor is 0; when even the candidates miss it they are returned, marked as such.

use crate::adaptive::ArrivalHistory;
use crate::cloud::{Fleet, FleetError};
use crate::model::tags;
use crate::sim::engine::{Millis, MinSizeSchedule};
use crate::sim::trace::{Trace, TraceJob};
use crate::sim::{self, Options, PolicyReport, Report};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Hours in a week: one floor each.
pub const HOURS_PER_WEEK: usize = 168;
const HOUR_MS: Millis = 3_600_000;
const WEEK_MS: Millis = HOURS_PER_WEEK as Millis * HOUR_MS;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The name of the floors' row in a `simulate --floors` report.
pub const FLOORED_POLICY: &str = "forge-scaler+floors";

/// What went wrong recommending or reading floors.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error("floors file: {0}")]
    FloorsFile(String),
    #[error("group {group}: not found")]
    NoGroup { group: String },
    #[error(
        "group {group}: no readable arrival history in its tag {tag} (the function writes it for pools with \
         idle_timeout = \"adaptive\")"
    )]
    NoHistory { group: String, tag: &'static str },
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("simulation: {0}")]
    Simulation(String),
}

/// How to recommend.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The p95 queue wait the floors must reach.
    pub target_p95: Duration,
    /// The simulated world and forge-scaler's settings the floors are verified on.
    pub options: Options,
    /// Quantile of the jobs' needs per hour for the candidate floors.
    pub quantile: f64,
    /// Where the history's first job falls in its week (see [`week_offset_ms`]).
    pub week_offset_ms: Millis,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { target_p95: Duration::from_secs(30), options: Options::default(), quantile: 0.95, week_offset_ms: 0 }
    }
}

/// The floors and what the simulator measured with and without them.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// MinSize per hour of the week, Monday 00:00 UTC first.
    pub floors: Vec<u32>,
    /// Whether the simulated p95 wait with the floors is at or under the target.
    pub target_met: bool,
    /// forge-scaler alone.
    pub plain: PolicyReport,
    /// forge-scaler with the floors.
    pub floored: PolicyReport,
    /// Simulations run to find them.
    pub simulations: usize,
}

/// Milliseconds from the Monday 00:00 UTC before `start` to `start`.
pub fn week_offset_ms(start: DateTime<Utc>) -> Millis {
    let days = start.weekday().num_days_from_monday() as Millis;
    (days * 86_400 + start.num_seconds_from_midnight() as Millis) * 1000 + start.timestamp_subsec_millis() as Millis
}

/// The hour of the week (0 = Monday 00:00 UTC) of virtual time `t`.
pub fn hour_of_week(t: Millis, week_offset_ms: Millis) -> usize {
    ((t + week_offset_ms) % WEEK_MS / HOUR_MS) as usize
}

/// Per job (sorted by arrival): the jobs running at its arrival, itself included, if every
/// job started when it arrived.
pub fn concurrency_at_arrival(jobs: &[TraceJob]) -> Vec<u32> {
    let mut ends: BinaryHeap<std::cmp::Reverse<Millis>> = BinaryHeap::new();
    jobs.iter()
        .map(|job| {
            while ends.peek().is_some_and(|e| e.0 <= job.arrival_ms) {
                ends.pop();
            }
            ends.push(std::cmp::Reverse(job.arrival_ms + job.duration_ms.max(1)));
            ends.len() as u32
        })
        .collect()
}

/// Instances each job needed at its arrival: `ceil(concurrency / slots)`.
fn needs(jobs: &[TraceJob], slots: u32) -> Vec<u32> {
    concurrency_at_arrival(jobs).into_iter().map(|c| c.div_ceil(slots.max(1))).collect()
}

/// The needs of the jobs that arrived in each hour of the week.
fn needs_by_hour(jobs: &[TraceJob], slots: u32, week_offset_ms: Millis) -> Vec<Vec<u32>> {
    let mut by_hour = vec![Vec::new(); HOURS_PER_WEEK];
    for (job, need) in jobs.iter().zip(needs(jobs, slots)) {
        by_hour[hour_of_week(job.arrival_ms, week_offset_ms)].push(need);
    }
    by_hour
}

/// Step 2 of the method: per hour of the week, the `quantile` of the needs of the jobs that
/// arrived in it (nearest rank); 0 for an hour with none.
pub fn candidate_floors(jobs: &[TraceJob], slots: u32, week_offset_ms: Millis, quantile: f64) -> Vec<u32> {
    needs_by_hour(jobs, slots, week_offset_ms)
        .into_iter()
        .map(|mut hour| {
            if hour.is_empty() {
                return 0;
            }
            hour.sort_unstable();
            let rank = ((quantile.clamp(0.0, 1.0) * hour.len() as f64).ceil() as usize).clamp(1, hour.len()) - 1;
            hour[rank]
        })
        .collect()
}

/// The order in which to lower the candidate floors, one step (an hour's index) at a time:
/// the step serving the fewest jobs first, then the higher step, then the earlier hour.
pub fn lowering_order(jobs: &[TraceJob], candidate: &[u32], slots: u32, week_offset_ms: Millis) -> Vec<usize> {
    let by_hour = needs_by_hour(jobs, slots, week_offset_ms);
    let mut steps: Vec<(usize, u32, usize)> = Vec::new();
    for (hour, &floor) in candidate.iter().enumerate() {
        for level in 1..=floor {
            let served = by_hour[hour].iter().filter(|&&n| n == level).count();
            steps.push((served, level, hour));
        }
    }
    steps.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    steps.into_iter().map(|(_, _, hour)| hour).collect()
}

/// The candidate floors lowered by the first `steps` steps of `order`.
fn lowered(candidate: &[u32], order: &[usize], steps: usize) -> Vec<u32> {
    let mut floors = candidate.to_vec();
    for &hour in &order[..steps] {
        floors[hour] = floors[hour].saturating_sub(1);
    }
    floors
}

/// The simulator's schedule for `floors` (none when every floor is 0).
pub fn schedule(floors: &[u32], week_offset_ms: Millis) -> Option<MinSizeSchedule> {
    floors.iter().any(|&f| f > 0).then(|| MinSizeSchedule { hourly: floors.to_vec(), week_offset_ms })
}

/// forge-scaler alone on `trace` with `floors` as scheduled MinSize.
pub fn simulate_floors(
    trace: &Trace,
    options: &Options,
    floors: &[u32],
    week_offset_ms: Millis,
) -> Result<PolicyReport, RecommendError> {
    let mut options = options.clone();
    options.only = vec!["forge-scaler".into()];
    options.timeline = false;
    options.world.min_size_schedule = schedule(floors, week_offset_ms);
    let report = sim::run(trace, &options, &AtomicU64::new(0)).map_err(RecommendError::Simulation)?;
    report.policies.into_iter().next().ok_or_else(|| RecommendError::Simulation("no policy ran".into()))
}

/// The whole method (see the module docs): floors for `jobs` (sorted by arrival) that keep
/// the simulated p95 wait at or under the target with the least floor.
pub fn recommend(jobs: &[TraceJob], settings: &Settings) -> Result<Recommendation, RecommendError> {
    let trace = Trace { name: "history".into(), jobs: jobs.to_vec() };
    let offset = settings.week_offset_ms;
    let target = settings.target_p95.as_secs_f64();
    let slots = settings.options.world.slots.max(1);
    let run = |floors: &[u32]| simulate_floors(&trace, &settings.options, floors, offset);
    let zero = vec![0; HOURS_PER_WEEK];
    let plain = if jobs.is_empty() { empty_report() } else { run(&zero)? };
    if jobs.is_empty() || plain.wait_p95_s <= target {
        let floored = plain.clone();
        return Ok(Recommendation { floors: zero, target_met: true, plain, floored, simulations: 1 });
    }
    let max = settings.options.world.max_instances;
    let candidate: Vec<u32> =
        candidate_floors(jobs, slots, offset, settings.quantile).into_iter().map(|f| f.min(max)).collect();
    let top = run(&candidate)?;
    if top.wait_p95_s > target {
        return Ok(Recommendation { floors: candidate, target_met: false, plain, floored: top, simulations: 2 });
    }
    let order = lowering_order(jobs, &candidate, slots, offset);
    // lo meets the target, hi does not (all steps taken = no floor = plain).
    let (mut lo, mut hi, mut best, mut simulations) = (0, order.len(), top, 2);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let measured = run(&lowered(&candidate, &order, mid))?;
        simulations += 1;
        if measured.wait_p95_s <= target {
            (lo, best) = (mid, measured);
        } else {
            hi = mid;
        }
    }
    Ok(Recommendation { floors: lowered(&candidate, &order, lo), target_met: true, plain, floored: best, simulations })
}

fn empty_report() -> PolicyReport {
    PolicyReport { policy: "forge-scaler".into(), ..PolicyReport::default() }
}

/// `simulate --floors`: every selected policy as usual, plus forge-scaler with the floors
/// (row [`FLOORED_POLICY`], right after forge-scaler's).
pub fn run_with_floors(
    trace: &Trace,
    options: &Options,
    floors: &FloorsFile,
    progress: &AtomicU64,
) -> Result<Report, RecommendError> {
    let mut report = sim::run(trace, options, progress).map_err(RecommendError::Simulation)?;
    let mut floored = simulate_floors(trace, options, &floors.hourly()?, floors.week_offset_ms())?;
    floored.policy = FLOORED_POLICY.into();
    match report.policies.iter().position(|p| p.policy == "forge-scaler") {
        Some(i) => report.policies.insert(i + 1, floored),
        None => report.policies.push(floored),
    }
    Ok(report)
}

// ---- the two printed forms ----

/// One scheduled action: from this hour of the week on, MinSize is `min_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    pub hour_of_week: usize,
    pub min_size: u32,
}

impl Action {
    /// Unix cron in UTC, as ASG `Recurrence` takes it (day of week 0 = Sunday).
    pub fn recurrence(&self) -> String {
        format!("0 {} * * {}", self.hour_of_week % 24, (self.hour_of_week / 24 + 1) % 7)
    }
    /// `forge-scaler-floor-mon-0900`.
    pub fn name(&self) -> String {
        format!("forge-scaler-floor-{}-{:02}00", DAYS[self.hour_of_week / 24 % 7], self.hour_of_week % 24)
    }
    /// `ForgeScalerFloorMon0900` (CloudFormation logical ids are alphanumeric).
    pub fn logical_id(&self) -> String {
        let day = DAYS[self.hour_of_week / 24 % 7];
        format!("ForgeScalerFloor{}{}{:02}00", day[..1].to_uppercase(), &day[1..], self.hour_of_week % 24)
    }
}

/// One action per change of floor, around the week (the last hour precedes the first). A
/// week with one floor throughout needs one weekly action (none when that floor is 0).
pub fn actions(floors: &[u32]) -> Vec<Action> {
    let n = floors.len();
    if n == 0 {
        return Vec::new();
    }
    let changes: Vec<Action> = (0..n)
        .filter(|&h| floors[h] != floors[(h + n - 1) % n])
        .map(|h| Action { hour_of_week: h, min_size: floors[h] })
        .collect();
    if changes.is_empty() && floors[0] > 0 {
        return vec![Action { hour_of_week: 0, min_size: floors[0] }];
    }
    changes
}

/// The floors as runs, one line each: `mon 09:00-17:00 UTC  MinSize 1`.
pub fn describe_runs(floors: &[u32]) -> String {
    let acts = actions(floors);
    let mut out = String::new();
    if acts.is_empty() {
        out.push_str("MinSize 0 all week\n");
        return out;
    }
    for (i, action) in acts.iter().enumerate() {
        let end = acts.get(i + 1).map_or(acts[0].hour_of_week + HOURS_PER_WEEK, |next| next.hour_of_week);
        let hour = |h: usize| format!("{} {:02}:00", DAYS[h / 24 % 7], h % 24);
        let _ = writeln!(
            out,
            "{} - {} UTC  MinSize {}",
            hour(action.hour_of_week),
            hour(end % HOURS_PER_WEEK),
            action.min_size
        );
    }
    out
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A CloudFormation `Resources:` snippet: one `AWS::AutoScaling::ScheduledAction` per
/// action, MinSize only (DesiredCapacity and MaxSize left alone), recurring, UTC.
pub fn cloudformation(actions: &[Action], group: &str) -> String {
    let mut out = String::from("Resources:\n");
    if actions.is_empty() {
        out.truncate(0);
        out.push_str("Resources: {}  # every floor is 0: no scheduled action\n");
        return out;
    }
    for action in actions {
        let _ = write!(
            out,
            "  {}:\n    Type: AWS::AutoScaling::ScheduledAction\n    Properties:\n      \
             AutoScalingGroupName: {}\n      Recurrence: {}\n      TimeZone: Etc/UTC\n      MinSize: {}\n",
            action.logical_id(),
            quoted(group),
            quoted(&action.recurrence()),
            action.min_size
        );
    }
    out
}

/// One `aws autoscaling put-scheduled-update-group-action` command per action.
pub fn cli_commands(actions: &[Action], group: &str) -> String {
    let mut out = String::new();
    for action in actions {
        let _ = writeln!(
            out,
            "aws autoscaling put-scheduled-update-group-action --auto-scaling-group-name {} \
             --scheduled-action-name {} --recurrence \"{}\" --time-zone Etc/UTC --min-size {}",
            shell_word(group),
            action.name(),
            action.recurrence(),
            action.min_size
        );
    }
    out
}

/// `s` as one shell word (single-quoted unless it is plainly safe).
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// ---- the plain floors file (`recommend --format floors`, `simulate --floors`) ----

/// MinSize for each hour of each day, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Week {
    pub mon: Vec<u32>,
    pub tue: Vec<u32>,
    pub wed: Vec<u32>,
    pub thu: Vec<u32>,
    pub fri: Vec<u32>,
    pub sat: Vec<u32>,
    pub sun: Vec<u32>,
}

/// The floors as `recommend --format floors` writes them and `simulate --floors` reads
/// them: `{"timezone":"UTC","trace_start":"<RFC 3339>","target_p95_s":30.0,"week":{"mon":[24
/// values],...}}`. `trace_start` is the wall-clock time of the history's first job: the
/// simulator places the week's hours from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloorsFile {
    pub timezone: String,
    pub trace_start: DateTime<Utc>,
    pub target_p95_s: f64,
    pub week: Week,
}

impl FloorsFile {
    pub fn new(floors: &[u32], trace_start: DateTime<Utc>, target_p95: Duration) -> Self {
        let day = |d: usize| (0..24).map(|h| floors.get(d * 24 + h).copied().unwrap_or(0)).collect();
        FloorsFile {
            timezone: "UTC".into(),
            trace_start,
            target_p95_s: target_p95.as_secs_f64(),
            week: Week { mon: day(0), tue: day(1), wed: day(2), thu: day(3), fri: day(4), sat: day(5), sun: day(6) },
        }
    }

    /// Parses and checks a floors file (JSON).
    pub fn parse(text: &str) -> Result<FloorsFile, RecommendError> {
        let file: FloorsFile = serde_json::from_str(text).map_err(|e| RecommendError::FloorsFile(e.to_string()))?;
        if file.timezone != "UTC" {
            return Err(RecommendError::FloorsFile(format!("timezone must be \"UTC\", found {:?}", file.timezone)));
        }
        file.hourly()?;
        Ok(file)
    }

    /// The 168 floors, Monday 00:00 UTC first.
    pub fn hourly(&self) -> Result<Vec<u32>, RecommendError> {
        let w = &self.week;
        let mut floors = Vec::with_capacity(HOURS_PER_WEEK);
        for (name, day) in DAYS.iter().zip([&w.mon, &w.tue, &w.wed, &w.thu, &w.fri, &w.sat, &w.sun]) {
            if day.len() != 24 {
                return Err(RecommendError::FloorsFile(format!("{name} has {} values, expected 24", day.len())));
            }
            floors.extend_from_slice(day);
        }
        Ok(floors)
    }

    pub fn week_offset_ms(&self) -> Millis {
        week_offset_ms(self.trace_start)
    }

    pub fn to_json(&self) -> String {
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"timezone\": {},", quoted(&self.timezone));
        let _ = writeln!(out, "  \"trace_start\": {},", quoted(&self.trace_start.to_rfc3339()));
        let _ = writeln!(out, "  \"target_p95_s\": {},", serde_json::json!(self.target_p95_s));
        out.push_str("  \"week\": {\n");
        let w = &self.week;
        let days = [&w.mon, &w.tue, &w.wed, &w.thu, &w.fri, &w.sat, &w.sun];
        for (i, (name, day)) in DAYS.iter().zip(days).enumerate() {
            let comma = if i < 6 { "," } else { "" };
            let _ = writeln!(out, "    \"{name}\": {}{comma}", serde_json::json!(day));
        }
        out.push_str("  }\n}\n");
        out
    }
}

// ---- the history a group's tag holds (`recommend --from-group`) ----

/// The arrival history the function keeps in the group's `forge-scaler:arrivals` tag.
pub async fn history_from_group(fleet: &dyn Fleet, group: &str) -> Result<ArrivalHistory, RecommendError> {
    let groups = fleet.describe(&[group.to_string()]).await?;
    let state = groups.get(group).ok_or_else(|| RecommendError::NoGroup { group: group.into() })?;
    state
        .tags
        .get(tags::ARRIVALS)
        .and_then(|t| ArrivalHistory::from_tag(t))
        .filter(|h| !h.arrivals_s.is_empty())
        .ok_or_else(|| RecommendError::NoHistory { group: group.into(), tag: tags::ARRIVALS })
}

/// The tag's arrivals as jobs of `job_duration` each (the tag holds no durations), and the
/// wall-clock time of the first.
pub fn jobs_from_history(history: &ArrivalHistory, job_duration: Duration) -> (Vec<TraceJob>, DateTime<Utc>) {
    let first = history.arrivals_s.first().copied().unwrap_or(0);
    let duration_ms = job_duration.as_millis() as Millis;
    let jobs = history.arrivals_s.iter().map(|&a| TraceJob { arrival_ms: (a - first) * 1000, duration_ms }).collect();
    (jobs, DateTime::from_timestamp(first as i64, 0).unwrap_or_default())
}

/// How many of the week's hours the history covers (from its first arrival to when it was
/// last updated): floors outside them are 0 for want of data.
pub fn hours_covered(history: &ArrivalHistory) -> usize {
    let first = history.arrivals_s.first().copied().unwrap_or(0);
    let last = history.seen_until_s.max(history.arrivals_s.last().copied().unwrap_or(0));
    let hours = (last / 3600).saturating_sub(first / 3600) + 1;
    (hours as usize).min(HOURS_PER_WEEK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::engine::World;

    /// Monday 2026-01-05 00:00 UTC.
    fn monday() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn job(arrival_s: u64, duration_s: u64) -> TraceJob {
        TraceJob { arrival_ms: arrival_s * 1000, duration_ms: duration_s * 1000 }
    }

    /// Four weeks from a Monday 00:00: on weekdays from 9 to 17, a 5-minute job every 20
    /// minutes; nothing else.
    fn weekday_office_hours() -> Vec<TraceJob> {
        let mut jobs = Vec::new();
        for week in 0..4 {
            for day in 0..5 {
                let start = week * 7 * 86_400 + day * 86_400 + 9 * 3600;
                for k in 0..24 {
                    jobs.push(job(start + k * 1200, 300));
                }
            }
        }
        jobs
    }

    fn settings() -> Settings {
        let world = World { boot_jitter: 0.0, ..World::default() };
        Settings { options: Options { world, ..Options::default() }, ..Settings::default() }
    }

    #[test]
    fn the_week_offset_counts_from_monday_midnight_utc() {
        assert_eq!(week_offset_ms(monday()), 0);
        let thursday = DateTime::parse_from_rfc3339("2026-01-01T01:30:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(week_offset_ms(thursday), (3 * 86_400 + 5400) * 1000);
        assert_eq!(hour_of_week(0, week_offset_ms(thursday)), 3 * 24 + 1);
        // A week later, the same hour.
        assert_eq!(hour_of_week(WEEK_MS, week_offset_ms(thursday)), 3 * 24 + 1);
    }

    #[test]
    fn concurrency_at_arrival_counts_the_jobs_still_running() {
        let jobs = [job(0, 100), job(10, 100), job(50, 10), job(100, 5), job(200, 1)];
        assert_eq!(concurrency_at_arrival(&jobs), vec![1, 2, 3, 2, 1]);
    }

    #[test]
    fn candidate_floors_of_a_weekday_burst_are_in_its_hours_only() {
        let floors = candidate_floors(&weekday_office_hours(), 1, 0, 0.95);
        for (hour, &floor) in floors.iter().enumerate() {
            let office = hour / 24 < 5 && (9..17).contains(&(hour % 24));
            assert_eq!(floor, u32::from(office), "hour {hour}");
        }
    }

    #[test]
    fn candidate_floors_follow_the_slots_and_the_quantile() {
        // Three jobs at once every Monday 10:00 for 20 weeks; once, five.
        let mut jobs = Vec::new();
        for week in 0..20u64 {
            let at = week * 7 * 86_400 + 10 * 3600;
            let n = if week == 7 { 5 } else { 3 };
            jobs.extend((0..n).map(|_| job(at, 600)));
        }
        assert_eq!(candidate_floors(&jobs, 1, 0, 0.95)[10], 3);
        assert_eq!(candidate_floors(&jobs, 2, 0, 0.95)[10], 2);
        assert_eq!(candidate_floors(&jobs, 1, 0, 1.0)[10], 5);
        // Shifted: the same jobs, with the history starting on a Wednesday.
        assert_eq!(candidate_floors(&jobs, 1, 2 * 86_400_000, 0.95)[2 * 24 + 10], 3);
    }

    #[test]
    fn the_step_serving_fewest_jobs_is_lowered_first() {
        // Hour 10: needs 1,2,3 (one job each, then one more need-1 job); hour 11: need 1 x 3.
        let mut jobs = vec![job(10 * 3600, 900), job(10 * 3600 + 1, 900), job(10 * 3600 + 2, 900)];
        jobs.push(job(10 * 3600 + 1000, 10));
        jobs.extend([job(11 * 3600, 10), job(11 * 3600 + 100, 10), job(11 * 3600 + 200, 10)]);
        let candidate = candidate_floors(&jobs, 1, 0, 1.0);
        assert_eq!((candidate[10], candidate[11]), (3, 1));
        assert_eq!(lowering_order(&jobs, &candidate, 1, 0), vec![10, 10, 10, 11]);
    }

    #[test]
    fn an_empty_history_recommends_no_floor() {
        let r = recommend(&[], &settings()).unwrap();
        assert_eq!(r.floors, vec![0; HOURS_PER_WEEK]);
        assert!(r.target_met);
        assert!(actions(&r.floors).is_empty());
    }

    #[test]
    fn a_target_forge_scaler_meets_alone_needs_no_floor() {
        let target_p95 = Duration::from_secs(120);
        let r = recommend(&weekday_office_hours(), &Settings { target_p95, ..settings() }).unwrap();
        assert_eq!(r.floors, vec![0; HOURS_PER_WEEK]);
        assert!(r.plain.wait_p95_s >= 60.0, "every job waits a boot: {:?}", r.plain);
    }

    #[test]
    fn a_weekday_burst_gets_floors_in_its_hours_only_and_meets_the_target() {
        let jobs = weekday_office_hours();
        let r = recommend(&jobs, &settings()).unwrap();
        assert!(r.target_met);
        assert!(r.floored.wait_p95_s <= 30.0, "{:?}", r.floored);
        assert!(r.plain.wait_p95_s >= 60.0, "{:?}", r.plain);
        for (hour, &floor) in r.floors.iter().enumerate() {
            let office = hour / 24 < 5 && (9..17).contains(&(hour % 24));
            assert!(office || floor == 0, "hour {hour} has floor {floor}");
        }
        assert!(r.floors.iter().filter(|&&f| f > 0).count() >= 30, "{:?}", r.floors);
        // Floors cost idle time; they buy the wait.
        assert!(r.floored.idle_instance_hours > r.plain.idle_instance_hours);
        assert_eq!(r.floored.jobs_run, jobs.len());
    }

    #[test]
    fn actions_are_one_per_change_of_floor_around_the_week() {
        let mut floors = vec![0; HOURS_PER_WEEK];
        for day in 0..5 {
            for hour in 9..17 {
                floors[day * 24 + hour] = 2;
            }
        }
        let acts = actions(&floors);
        assert_eq!(acts.len(), 10);
        assert_eq!(acts[0], Action { hour_of_week: 9, min_size: 2 });
        assert_eq!(acts[1], Action { hour_of_week: 17, min_size: 0 });
        assert_eq!(acts[0].recurrence(), "0 9 * * 1");
        assert_eq!(acts[9].recurrence(), "0 17 * * 5");
        assert_eq!(acts[0].name(), "forge-scaler-floor-mon-0900");
        assert_eq!(acts[9].logical_id(), "ForgeScalerFloorFri1700");
        // Sunday is cron day 0; a run across the week's end is one run.
        floors[HOURS_PER_WEEK - 1] = 1;
        floors[0] = 1;
        let acts = actions(&floors);
        assert!(acts.contains(&Action { hour_of_week: 167, min_size: 1 }));
        assert_eq!(acts.iter().find(|a| a.hour_of_week == 167).unwrap().recurrence(), "0 23 * * 0");
        assert!(!acts.iter().any(|a| a.hour_of_week == 0));
        assert!(describe_runs(&floors).contains("sun 23:00 - mon 01:00 UTC  MinSize 1"));
        // One floor all week: one weekly action; 0 all week: none.
        assert_eq!(actions(&[3; HOURS_PER_WEEK]), vec![Action { hour_of_week: 0, min_size: 3 }]);
        assert!(actions(&[0; HOURS_PER_WEEK]).is_empty());
    }

    #[test]
    fn the_printed_forms_name_the_group_and_set_min_size_only() {
        let acts = [Action { hour_of_week: 9, min_size: 2 }, Action { hour_of_week: 17, min_size: 0 }];
        let cfn = cloudformation(&acts, "ci-linux");
        assert!(cfn.starts_with("Resources:\n  ForgeScalerFloorMon0900:\n"), "{cfn}");
        assert!(cfn.contains("AutoScalingGroupName: \"ci-linux\"\n      Recurrence: \"0 9 * * 1\""), "{cfn}");
        assert_eq!(cfn.matches("MinSize:").count(), 2);
        assert!(!cfn.contains("DesiredCapacity") && !cfn.contains("MaxSize"));
        let cmds = cli_commands(&acts, "ci linux");
        assert_eq!(cmds.lines().count(), 2);
        assert!(cmds.starts_with(
            "aws autoscaling put-scheduled-update-group-action --auto-scaling-group-name 'ci linux' \
             --scheduled-action-name forge-scaler-floor-mon-0900 --recurrence \"0 9 * * 1\""
        ));
        assert!(cmds.lines().next().unwrap().ends_with("--min-size 2"));
    }

    #[test]
    fn the_floors_file_round_trips_and_rejects_a_short_day() {
        let mut floors = vec![0; HOURS_PER_WEEK];
        floors[9] = 2;
        floors[167] = 1;
        let file = FloorsFile::new(&floors, monday(), Duration::from_secs(30));
        let parsed = FloorsFile::parse(&file.to_json()).unwrap();
        assert_eq!(parsed, file);
        assert_eq!(parsed.hourly().unwrap(), floors);
        let short = file.to_json().replacen("[0,0,0,0,0,0,0,0,0,2,", "[0,0,0,0,0,0,0,0,2,", 1);
        let err = FloorsFile::parse(&short).unwrap_err().to_string();
        assert!(err.contains("mon has 23 values"), "{err}");
    }

    #[tokio::test]
    async fn the_group_tag_history_becomes_jobs_and_says_how_much_of_the_week_it_covers() {
        use crate::cloud::memory::MemoryFleet;
        let fleet = MemoryFleet::new().with_group("g", 0, 10, 0).with_group("bare", 0, 10, 0);
        let start = monday().timestamp() as u64 + 9 * 3600;
        let history =
            ArrivalHistory { seen_until_s: start + 3 * 3600, arrivals_s: vec![start, start + 60, start + 7200] };
        fleet.set_tags("g", &[(tags::ARRIVALS.to_string(), history.to_tag())]).await.unwrap();

        let read = history_from_group(&fleet, "g").await.unwrap();
        assert_eq!(read.arrivals_s, history.arrivals_s);
        assert_eq!(hours_covered(&read), 4);
        let (jobs, first) = jobs_from_history(&read, Duration::from_secs(600));
        assert_eq!(first, monday() + chrono::Duration::hours(9));
        assert_eq!(jobs.iter().map(|j| j.arrival_ms).collect::<Vec<_>>(), vec![0, 60_000, 7_200_000]);
        assert!(jobs.iter().all(|j| j.duration_ms == 600_000));

        assert!(matches!(history_from_group(&fleet, "bare").await, Err(RecommendError::NoHistory { .. })));
        assert!(matches!(history_from_group(&fleet, "nope").await, Err(RecommendError::NoGroup { .. })));
    }
}
