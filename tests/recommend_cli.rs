//! `recommend` and `simulate --floors` end to end through the real binary: on a small trace
//! (weekdays 9-17 only) the CloudFormation snippet parses as a template (PyYAML through
//! scripts/cfn-yaml-to-json.py, and cfn-lint) with one MinSize-only scheduled action per
//! change of floor,
//! the commands have the AWS CLI's shape, the floors file changes what `simulate` reports,
//! and `--from-group` reads the arrivals tag of a group in moto.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn forge_scaler() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forge-scaler"));
    command.env_remove("RUST_LOG").env_remove("AWS_LAMBDA_RUNTIME_API");
    command
}

/// Three weeks from Monday 2026-01-05 00:00 UTC: on weekdays from 9 to 17, a 5-minute job
/// every 20 minutes; nothing else.
fn office_hours_trace(dir: &Path) -> PathBuf {
    let mut csv = String::from("arrival_s,duration_s\n");
    for week in 0..3u64 {
        for day in 0..5u64 {
            let start = week * 7 * 86_400 + day * 86_400 + 9 * 3600;
            for k in 0..24 {
                csv.push_str(&format!("{},300\n", start + k * 1200));
            }
        }
    }
    let path = dir.join("office.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

const MONDAY: &str = "2026-01-05T00:00:00Z";

fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{:?}: {}", command, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn recommend(trace: &Path, format: &str) -> String {
    let trace = trace.to_str().unwrap();
    run_ok(
        forge_scaler()
            .args(["recommend", "--trace", trace, "--trace-start", MONDAY, "--group", "ci-linux"])
            .args(["--format", format]),
    )
}

#[test]
fn the_cloudformation_snippet_parses_and_sets_min_size_at_each_change_of_floor() {
    let dir = tempfile::tempdir().unwrap();
    let snippet = recommend(&office_hours_trace(dir.path()), "cloudformation");
    let file = dir.path().join("snippet.yaml");
    std::fs::write(&file, &snippet).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cfn-yaml-to-json.py");
    let out =
        Command::new("python3").arg(script).arg(&file).output().expect(
            "run python3 scripts/cfn-yaml-to-json.py (install requirements-test.txt: PyYAML comes with cfn-lint)",
        );
    assert!(out.status.success(), "{}\n{snippet}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let resources = doc["Resources"].as_object().unwrap();
    // Up at 9 and down at 17 on each weekday.
    assert_eq!(resources.len(), 10, "{snippet}");
    let mut seen = Vec::new();
    for (id, resource) in resources {
        assert_eq!(resource["Type"], "AWS::AutoScaling::ScheduledAction", "{id}");
        let props = resource["Properties"].as_object().unwrap();
        let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["AutoScalingGroupName", "MinSize", "Recurrence", "TimeZone"], "{id}");
        assert_eq!(props["AutoScalingGroupName"], "ci-linux");
        assert_eq!(props["TimeZone"], "Etc/UTC");
        let recurrence = props["Recurrence"].as_str().unwrap();
        let fields: Vec<&str> = recurrence.split(' ').collect();
        assert_eq!(fields.len(), 5, "{recurrence}");
        assert_eq!(&fields[..1], ["0"]);
        assert_eq!(&fields[2..4], ["*", "*"]);
        seen.push((fields[1].to_string(), fields[4].to_string(), props["MinSize"].as_u64().unwrap()));
    }
    seen.sort();
    let mut expected: Vec<(String, String, u64)> =
        (1..=5).flat_map(|d| [("9".to_string(), d.to_string(), 1), ("17".to_string(), d.to_string(), 0)]).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // cfn-lint (pinned in requirements-test.txt) checks the resources against the
    // CloudFormation schema.
    let template = dir.path().join("template.yaml");
    std::fs::write(&template, format!("AWSTemplateFormatVersion: '2010-09-09'\n{snippet}")).unwrap();
    let lint = Command::new("cfn-lint").arg(&template).output().expect("run cfn-lint (install requirements-test.txt)");
    assert!(lint.status.success(), "{}\n{snippet}", String::from_utf8_lossy(&lint.stdout));
}

#[test]
fn the_commands_are_put_scheduled_update_group_action_calls_with_min_size_only() {
    let dir = tempfile::tempdir().unwrap();
    let commands = recommend(&office_hours_trace(dir.path()), "commands");
    assert_eq!(commands.lines().count(), 10, "{commands}");
    for line in commands.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(&words[..3], ["aws", "autoscaling", "put-scheduled-update-group-action"], "{line}");
        let value = |flag: &str| {
            let at = words.iter().position(|w| *w == flag).unwrap_or_else(|| panic!("{flag} missing: {line}"));
            words[at + 1]
        };
        assert_eq!(value("--auto-scaling-group-name"), "ci-linux");
        assert!(value("--scheduled-action-name").starts_with("forge-scaler-floor-"), "{line}");
        assert!(["0", "1"].contains(&value("--min-size")), "{line}");
        assert_eq!(value("--time-zone"), "Etc/UTC");
        // --recurrence "0 H * * D": the quoted cron is five words.
        let at = words.iter().position(|w| *w == "--recurrence").unwrap();
        assert!(words[at + 1].starts_with('"') && words[at + 5].ends_with('"'), "{line}");
        assert!(!line.contains("--desired-capacity") && !line.contains("--max-size"), "{line}");
    }
    // The default form holds both, with a summary.
    let text = recommend(&office_hours_trace(dir.path()), "text");
    assert!(text.contains("\nResources:\n") && text.contains("\naws autoscaling put-scheduled-update-group-action"));
    assert!(text.contains("mon 09:00 - mon 17:00 UTC  MinSize 1"), "{text}");
}

#[test]
fn simulate_with_the_floors_file_adds_a_row_that_waits_less_and_idles_more() {
    let dir = tempfile::tempdir().unwrap();
    let trace = office_hours_trace(dir.path());
    let floors = dir.path().join("floors.json");
    std::fs::write(&floors, recommend(&trace, "floors")).unwrap();
    let out = run_ok(forge_scaler().args(["simulate", "--json", "--policy", "forge-scaler", "--trace"]).args([
        trace.as_os_str(),
        "--floors".as_ref(),
        floors.as_os_str(),
    ]));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let policies = doc["policies"].as_array().unwrap();
    let names: Vec<&str> = policies.iter().map(|p| p["policy"].as_str().unwrap()).collect();
    assert_eq!(names, ["forge-scaler", "forge-scaler+floors"]);
    let (plain, floored) = (&policies[0], &policies[1]);
    let f = |p: &serde_json::Value, k: &str| p[k].as_f64().unwrap();
    assert!(f(plain, "wait_p95_s") >= 60.0, "{plain}");
    assert!(f(floored, "wait_p95_s") <= 30.0, "{floored}");
    assert!(f(floored, "idle_instance_hours") > f(plain, "idle_instance_hours"));
    assert!(f(floored, "launches") < f(plain, "launches"));

    // A malformed file is refused, naming it.
    std::fs::write(&floors, r#"{"timezone":"UTC","trace_start":"2026-01-05T00:00:00Z","target_p95_s":30,"week":{}}"#)
        .unwrap();
    let out = forge_scaler().args(["simulate", "--trace"]).arg(&trace).arg("--floors").arg(&floors).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("floors.json"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn from_group_reads_the_arrivals_tag_and_says_how_much_of_the_week_it_covers() {
    let moto = support::Moto::start();
    let sdk = support::sdk_config(&moto.endpoint()).await;
    // 40 arrivals, one every 15 minutes from Monday 2026-01-05 09:00 UTC, read at 19:00.
    let first = 1_767_603_600u64;
    let history = forge_scaler::adaptive::ArrivalHistory {
        seen_until_s: first + 10 * 3600,
        arrivals_s: (0..40).map(|k| first + k * 900).collect(),
    };
    let group = support::GroupSpec::new("ci-tagged", 0, 10, 0).tag("forge-scaler:arrivals", &history.to_tag());
    support::create_group(&sdk, &group).await;
    support::create_group(&sdk, &support::GroupSpec::new("ci-bare", 0, 10, 0)).await;
    let scratch = tempfile::tempdir().unwrap();
    let args = ["recommend", "--from-group", "ci-tagged", "--job-duration", "2m", "--format", "commands"];
    let out =
        support::cli_command(env!("CARGO_BIN_EXE_forge-scaler"), &moto.endpoint(), scratch.path(), ("T", "t"), &args)
            .output()
            .await
            .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("holds 40 arrivals covering 11 of the week's 168 hours"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Jobs 15 minutes apart, 2 minutes long: without a floor each waits a boot (the idle
    // timeout is 10 minutes); a floor of 1 from Monday 09:00 to 19:00.
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains("--scheduled-action-name forge-scaler-floor-mon-0900"), "{stdout}");
    assert!(stdout.contains("--scheduled-action-name forge-scaler-floor-mon-1900"), "{stdout}");
    assert!(stdout.contains("--auto-scaling-group-name ci-tagged"), "{stdout}");
    assert!(stdout.lines().all(|l| l.ends_with("--min-size 1") || l.ends_with("--min-size 0")), "{stdout}");

    let args = ["recommend", "--from-group", "ci-bare"];
    let out =
        support::cli_command(env!("CARGO_BIN_EXE_forge-scaler"), &moto.endpoint(), scratch.path(), ("T", "t"), &args)
            .output()
            .await
            .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("forge-scaler:arrivals"));
}
