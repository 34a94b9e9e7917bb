//! CloudWatch metrics as Embedded Metric Format (EMF) log lines, namespace `ForgeScaler`:
//! a pure translation of a tick's report into JSON lines. It owns the metric names, units and
//! dimensions; it must not print, call AWS or read the clock (the caller passes the time and
//! writes the lines to stdout, where Lambda's log agent turns them into metrics).
//!
//! Per pool (dimension `Pool`): `PendingJobs`, `RunningJobs`, `DesiredBefore`,
//! `DesiredAfter` (counts of the tick; absent when the pool could not be observed),
//! `ForgeErrors` (1 when the pool's forge failed or did not answer in time, else 0), and,
//! only in the ticks where they happen: `GroupErrors` (the group could not be read),
//! `ApplyErrors` (the raise was refused), `PoolConfigErrors` (the forge has no usable
//! client), `TagWriteErrors` (a write of the group's tags failed; a raise still counts),
//! `PartialCounts` (the forge's listing was cut short: the counts are a lower bound) and
//! `UnschedulableJobs` (pending jobs the guard left out of demand). Per tick (no dimension):
//! `ConfigErrors` (problems of a configuration that failed to load this tick; the last valid
//! one stays in use) and `TickDurationMs`.

use crate::step::Note;
use crate::tick::{Action, ErrorKind, PoolReport, TickReport};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The CloudWatch namespace every metric goes to.
pub const NAMESPACE: &str = "ForgeScaler";
/// The dimension naming a pool.
pub const POOL_DIMENSION: &str = "Pool";

/// Tick-wide figures that are not in the `TickReport`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickFigures {
    /// Problems of the configuration load that failed this tick (0 when it loaded or was fresh).
    pub config_errors: u32,
    /// Wall time the tick took.
    pub tick_duration: Duration,
}

/// One EMF line per pool plus one for the tick, each a single-line JSON object.
pub fn emf_lines(report: Option<&TickReport>, figures: TickFigures, at: DateTime<Utc>) -> Vec<String> {
    let mut lines: Vec<String> = report.map(|r| r.pools.iter().map(|p| pool_line(p, at)).collect()).unwrap_or_default();
    lines.push(tick_line(figures, at));
    lines
}

/// The EMF line for one pool's outcome.
pub fn pool_line(pool: &PoolReport, at: DateTime<Utc>) -> String {
    let counts = [
        ("PendingJobs", pool.pending),
        ("RunningJobs", pool.running),
        ("DesiredBefore", pool.desired_before),
        ("DesiredAfter", pool.desired_after),
    ];
    let mut values: Vec<(&str, &str, u64)> =
        counts.iter().filter_map(|(name, v)| v.map(|v| (*name, "Count", u64::from(v)))).collect();
    let kind = pool.error_kind.filter(|_| pool.action == Action::Error);
    values.push(("ForgeErrors", "Count", u64::from(kind == Some(ErrorKind::Forge))));
    if let Some(kind) = kind.filter(|k| *k != ErrorKind::Forge) {
        values.push((kind.metric(), "Count", 1));
    }
    let step = pool.step.as_ref();
    let occasional = [
        ("TagWriteErrors", pool.warnings.len() as u64),
        ("PartialCounts", step.map_or(0, |s| s.notes.iter().any(|n| matches!(n, Note::Partial { .. })) as u64)),
        ("UnschedulableJobs", step.map_or(0, |s| u64::from(s.plan.left_out()))),
    ];
    values.extend(occasional.into_iter().filter(|(_, v)| *v > 0).map(|(name, v)| (name, "Count", v)));
    let mut properties = Map::new();
    properties.insert(POOL_DIMENSION.to_string(), Value::from(pool.pool.clone()));
    // Searchable in Logs Insights; not dimensions (each dimension combination is a billed metric).
    properties.insert("Forge".to_string(), Value::from(pool.forge.clone()));
    properties.insert("Group".to_string(), Value::from(pool.group.clone()));
    emf_object(&[POOL_DIMENSION], &values, properties, at)
}

/// The EMF line for the tick as a whole (no dimension).
pub fn tick_line(figures: TickFigures, at: DateTime<Utc>) -> String {
    let duration_ms = u64::try_from(figures.tick_duration.as_millis()).unwrap_or(u64::MAX);
    let values =
        [("ConfigErrors", "Count", u64::from(figures.config_errors)), ("TickDurationMs", "Milliseconds", duration_ms)];
    emf_object(&[], &values, Map::new(), at)
}

fn emf_object(
    dimensions: &[&str],
    values: &[(&str, &str, u64)],
    mut root: Map<String, Value>,
    at: DateTime<Utc>,
) -> String {
    let metrics: Vec<Value> = values.iter().map(|(name, unit, _)| json!({ "Name": name, "Unit": unit })).collect();
    root.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": metrics,
            }],
        }),
    );
    for (name, _, value) in values {
        root.insert(name.to_string(), Value::from(*value));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn pool(name: &str, action: Action, counts: Option<(u32, u32, u32, u32)>) -> PoolReport {
        PoolReport {
            pool: name.into(),
            forge: "wp".into(),
            group: format!("ci-{name}"),
            pending: counts.map(|c| c.0),
            running: counts.map(|c| c.1),
            waiting: counts.map(|_| 0),
            desired_before: counts.map(|c| c.2),
            desired_after: counts.map(|c| c.3),
            action,
            reasons: vec![],
            error: (action == Action::Error).then(|| "forge wp: HTTP 500".to_string()),
            error_kind: (action == Action::Error).then_some(ErrorKind::Forge),
            warnings: vec![],
            requests: 1,
            step: None,
            poll_hint: None,
        }
    }

    fn parse(line: &str) -> Value {
        assert!(!line.contains('\n'), "an EMF record is one line: {line}");
        serde_json::from_str(line).unwrap()
    }

    /// Every metric the `_aws` block declares is a number at the root, and vice versa.
    fn declared_metrics(v: &Value) -> Vec<(String, String)> {
        let directives = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        assert_eq!(directives[0]["Namespace"], NAMESPACE);
        directives[0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let name = m["Name"].as_str().unwrap().to_string();
                assert!(v[&name].is_u64(), "metric {name} has no numeric value at the root");
                (name, m["Unit"].as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn a_pool_line_has_the_emf_shape_with_pool_dimension() {
        let line = pool_line(&pool("linux", Action::Raise, Some((7, 1, 1, 4))), at());
        let v = parse(&line);
        assert_eq!(v["_aws"]["Timestamp"], at().timestamp_millis());
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Pool"]]));
        assert_eq!(v["Pool"], "linux");
        let names: Vec<String> = declared_metrics(&v).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["PendingJobs", "RunningJobs", "DesiredBefore", "DesiredAfter", "ForgeErrors"]);
        assert_eq!(v["PendingJobs"], 7);
        assert_eq!(v["RunningJobs"], 1);
        assert_eq!(v["DesiredBefore"], 1);
        assert_eq!(v["DesiredAfter"], 4);
        assert_eq!(v["ForgeErrors"], 0);
        assert_eq!(v["Group"], "ci-linux");
    }

    #[test]
    fn an_errored_pool_reports_only_forge_errors() {
        let v = parse(&pool_line(&pool("mac", Action::Error, None), at()));
        assert_eq!(declared_metrics(&v), [("ForgeErrors".to_string(), "Count".to_string())]);
        assert_eq!(v["ForgeErrors"], 1);
        assert!(v.get("PendingJobs").is_none());
    }

    #[test]
    fn a_missing_group_counts_as_a_group_error_not_a_forge_error() {
        let mut p = pool("mac", Action::Error, None);
        p.error_kind = Some(ErrorKind::Group);
        let v = parse(&pool_line(&p, at()));
        assert_eq!(v["ForgeErrors"], 0);
        assert_eq!(v["GroupErrors"], 1);
    }

    #[test]
    fn a_raise_whose_tags_failed_counts_a_tag_write_error() {
        let mut p = pool("linux", Action::Raise, Some((7, 1, 1, 4)));
        p.warnings.push("raised, but the group's tags were not written".into());
        let v = parse(&pool_line(&p, at()));
        assert_eq!(v["TagWriteErrors"], 1);
        assert_eq!(v["ForgeErrors"], 0);
        assert_eq!(v["DesiredAfter"], 4);
    }

    #[test]
    fn the_tick_line_has_no_dimension_and_milliseconds() {
        let figures = TickFigures { config_errors: 3, tick_duration: Duration::from_millis(1234) };
        let v = parse(&tick_line(figures, at()));
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(
            declared_metrics(&v),
            [
                ("ConfigErrors".to_string(), "Count".to_string()),
                ("TickDurationMs".to_string(), "Milliseconds".to_string())
            ]
        );
        assert_eq!(v["ConfigErrors"], 3);
        assert_eq!(v["TickDurationMs"], 1234);
    }

    #[test]
    fn one_line_per_pool_then_the_tick() {
        let report =
            TickReport { pools: vec![pool("a", Action::None, Some((0, 0, 1, 1))), pool("b", Action::Error, None)] };
        let lines = emf_lines(Some(&report), TickFigures::default(), at());
        assert_eq!(lines.len(), 3);
        assert_eq!(parse(&lines[0])["Pool"], "a");
        assert_eq!(parse(&lines[1])["Pool"], "b");
        assert!(parse(&lines[2]).get("TickDurationMs").is_some());
    }

    #[test]
    fn a_tick_that_could_not_run_still_reports_the_tick_line() {
        let lines = emf_lines(None, TickFigures { config_errors: 2, tick_duration: Duration::ZERO }, at());
        assert_eq!(lines.len(), 1);
        assert_eq!(parse(&lines[0])["ConfigErrors"], 2);
    }
}
