//! The `simulate` and `trace synth` commands end to end: the binary's JSON on the bundled
//! trace, a trace file with a bad row, and a synthesized trace replayed.

use std::process::Command;

fn forge_scaler() -> Command {
    Command::new(env!("CARGO_BIN_EXE_forge-scaler"))
}

#[test]
fn simulate_json_of_the_bundled_trace_has_every_policy() {
    let out = forge_scaler().args(["simulate", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["trace"], "travis-jackson-databind");
    assert_eq!(doc["jobs"], 2843);
    assert_eq!(doc["slots"], 1);
    assert_eq!(doc["boot_s"], 60.0);
    assert!(doc["bounds"]["work_instance_hours"].as_f64().unwrap() > 0.0);
    assert!(doc["bounds"]["reactive_instance_hours"].as_f64().unwrap() > 0.0);
    let policies = doc["policies"].as_array().unwrap();
    let names: Vec<&str> = policies.iter().map(|p| p["policy"].as_str().unwrap()).collect();
    for name in
        ["static", "buildkite", "woodpecker", "drone", "gitlab", "forge-scaler", "forge-scaler-adaptive", "vespene"]
    {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for p in policies {
        for field in [
            "instance_hours",
            "idle_instance_hours",
            "wait_p50_s",
            "wait_p95_s",
            "wait_p99_s",
            "wait_max_s",
            "reaction_p95_s",
        ] {
            assert!(p[field].as_f64().is_some(), "{field} of {}", p["policy"]);
        }
        assert_eq!(p["disrupted_jobs"], 0, "{}", p["policy"]);
        assert!(p["launches"].as_u64().is_some() && p["peak_instances"].as_u64().is_some());
    }
}

#[test]
fn simulate_table_is_the_default() {
    let out = forge_scaler().args(["simulate", "--policy", "forge-scaler"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("policy") && text.contains("forge-scaler"), "{text}");
}

#[test]
fn a_bad_trace_row_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "arrival_s,duration_s\n0,10\n5,abc\n").unwrap();
    let out = forge_scaler().args(["simulate", "--trace"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("duration_s"), "{err}");
}

#[test]
fn synth_writes_a_trace_that_simulate_replays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("day.csv");
    let out = forge_scaler()
        .args(["trace", "synth", "--rate-per-hour", "30", "--days", "1", "--seed", "4", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).unwrap();
    let rows = text.lines().count() - 1;
    assert!((600..=840).contains(&rows), "{rows} rows for 30/h over a day");
    let svg = dir.path().join("day.svg");
    let out = forge_scaler()
        .args(["simulate", "--json", "--policy", "forge-scaler", "--policy", "woodpecker", "--trace"])
        .arg(&path)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["jobs"].as_u64().unwrap() as usize, rows);
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains("pending jobs"), "{}", &drawn[..200.min(drawn.len())]);
}

#[test]
fn simulate_with_a_warm_pool_reports_warm_launches_and_the_pool_cost() {
    let out = forge_scaler()
        .args(["simulate", "--json", "--policy", "forge-scaler", "--policy", "woodpecker"])
        .args(["--boot", "300", "--warm-pool", "2", "--warm-start", "20", "--stopped-cost", "0.05"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["warm_pool"]["size"], 2);
    assert_eq!(doc["warm_pool"]["start_s"], 20.0);
    let policy = |name: &str| doc["policies"].as_array().unwrap().iter().find(|p| p["policy"] == name).unwrap().clone();
    let (scaler, peer) = (policy("forge-scaler"), policy("woodpecker"));
    assert!(scaler["warm_launches"].as_u64().unwrap() > 0);
    assert!(scaler["cost_instance_hours"].as_f64().unwrap() > scaler["instance_hours"].as_f64().unwrap());
    assert_eq!(peer["warm_launches"], 0, "peers stay cold");
    assert_eq!(peer["cost_instance_hours"], peer["instance_hours"]);
}

#[test]
fn warm_pool_flags_outside_what_aws_accepts_are_refused_naming_the_flag() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--warm-pool", "2", "--stopped-cost", "1.5"],
            "--stopped-cost: the stopped cost is a fraction of the running price, within 0..=1; got 1.5",
        ),
        (&["--warm-pool", "2", "--warm-start=-3"], "--warm-start: the warm start must be a non-negative"),
        (
            &["--warm-pool", "11", "--max", "10"],
            "--warm-pool: a warm pool of 11 is more than the group's MaxSize of 10",
        ),
        (&["--stopped-cost", "0.1"], "--warm-pool <N>"),
    ];
    for (args, expected) in cases {
        let out = forge_scaler().arg("simulate").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
