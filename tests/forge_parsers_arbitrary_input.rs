//! Every forge response parser (the pure `parse_*` each adapter's `jobs` uses) under
//! proptest: arbitrary bytes, and arbitrary JSON placed where each forge's fields go. No
//! input panics; a parse either fails or yields counts within their bounds. The cargo-fuzz
//! targets in fuzz/ drive the same functions for longer (TESTING.md, "Fuzzing").

use forge_scaler::config::DronePlatform;
use forge_scaler::forge::{buildkite, drone, forgejo, generic, gitea, github, gitlab, labels, woodpecker};
use forge_scaler::model::PoolJobs;
use forge_scaler::redact;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[a-z0-9:=/ _-]{0,12}".prop_map(Value::from),
        prop_oneof![Just("queued"), Just("waiting"), Just("running"), Just("pending"), Just("in_progress")]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("status".to_string()),
                    Just("labels".to_string()),
                    Just("runs_on".to_string()),
                    Just("tag_list".to_string()),
                    Just("created".to_string()),
                    Just("created_at".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Each forge's answer shape with arbitrary JSON in its fields.
fn shaped(kind: usize, value: Value) -> Value {
    match kind {
        0 => json!({"pending": value.clone(), "running": [value.clone()], "waiting_on_deps": value}),
        1 => json!([value.clone(), {"id": 1, "runs_on": value.clone(), "status": "waiting"}]),
        2 => json!({"jobs": [value.clone()], "total_count": value}),
        3 => json!({"jobs": {"scheduled": value.clone(), "running": value}}),
        4 => json!({"workflow_runs": [value.clone()], "jobs": [value]}),
        _ => json!([value.clone(), {"id": 7, "status": "pending", "tag_list": value}]),
    }
}

fn bounded(jobs: &PoolJobs, input_len: usize) {
    assert!(jobs.pending.len() + jobs.running.len() <= input_len, "more jobs than input bytes");
    assert_eq!(jobs.partial, None, "one page is never partial by itself");
}

/// Runs every parser on `body`.
fn every_parser(body: &[u8]) {
    let agent = labels::woodpecker_agent_labels(Some(&["platform=linux/amd64".to_string()])).unwrap();
    let names = labels::runner_label_names(Some(&["ubuntu".to_string(), "docker:docker://node:20".to_string()]));
    let runner = labels::parse_pairs(&["region=eu".to_string()]).unwrap();
    let tags = ["docker".to_string(), "linux".to_string()];
    if let Ok(jobs) = woodpecker::parse_queue_info(body, &agent) {
        bounded(&jobs, body.len());
    }
    if let Ok(jobs) = forgejo::parse_jobs(body, &names, 1) {
        bounded(&jobs, body.len());
    }
    if let Ok(jobs) = gitea::parse_page(body, &names) {
        bounded(&jobs, body.len());
    }
    if let Ok(jobs) = drone::parse_queue(body, &DronePlatform::default(), &runner) {
        bounded(&jobs, body.len());
    }
    if let Ok(jobs) = gitlab::parse_page(body, &tags, true) {
        bounded(&jobs, body.len());
    }
    if let Ok((runs, jobs)) = github::parse_pages(body, body, &tags) {
        assert!(runs.len() <= body.len());
        bounded(&jobs, body.len());
    }
    if let Ok(jobs) = buildkite::parse_metrics(body) {
        assert!(jobs.pending.len() as u64 <= buildkite::MAX_COUNT && jobs.running.len() as u64 <= buildkite::MAX_COUNT);
    }
    if let Ok(jobs) = generic::parse_counts(body, "/jobs/scheduled", Some("/jobs/0")) {
        assert!(jobs.pending.len() as u64 <= generic::MAX_COUNT && jobs.running.len() as u64 <= generic::MAX_COUNT);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_forge_parser_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..600)) {
        every_parser(&body);
    }

    #[test]
    fn no_forge_parser_panics_on_arbitrary_json_in_any_forge_shape(kind in 0usize..6, value in any_json()) {
        let body = serde_json::to_vec(&shaped(kind, value)).unwrap();
        every_parser(&body);
    }

    #[test]
    fn redacted_urls_never_show_a_password_or_a_query_value(
        password in "[A-Z0-9]{8,16}",
        value in "[A-Z0-9]{8,16}",
        key in "[a-z_]{1,10}",
        path in "(/[a-z]{1,6}){0,3}",
    ) {
        let text = format!("https://user:{password}@ci.example.com{path}?{key}={value}&page=2");
        let shown = redact::redact_url(&text);
        prop_assert!(!shown.contains(&password) && !shown.contains(&value), "{}", shown);
        prop_assert!(shown.starts_with("https://ci.example.com"), "{}", shown);
        prop_assert!(!redact::redact_url(&text.replace("https://", "https//")).contains(&password));
    }
}
