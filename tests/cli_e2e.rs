//! The real `forge-scaler` binary end to end: AWS is moto_server, the forge is a
//! Woodpecker-shaped fake, the configuration a TOML file or moto's SSM. Each test starts its
//! own servers on free loopback ports.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use support::{GroupSpec, Moto};

const BIN: &str = env!("CARGO_BIN_EXE_forge-scaler");
const TOKEN_VAR: &str = "FORGE_SCALER_E2E_WP_TOKEN";
const TOKEN: &str = "wp-e2e-secret-token";
const LINUX: &[(&str, &str)] = &[("platform", "linux/amd64")];

/// A temp dir holding the config and whatever the binary records.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Self {
        Workdir { dir: tempfile::tempdir().expect("temp dir") }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

/// A config with one Woodpecker forge at `forge_url` and the given `[pools.*]` text.
fn config_text(forge_url: &str, pools: &str) -> String {
    format!("[forges.wp]\nkind = \"woodpecker\"\nurl = \"{forge_url}\"\ntoken_env = \"{TOKEN_VAR}\"\n\n{pools}")
}

/// One pool `name` on group `asg` serving `platform=linux/amd64` with `slots`.
fn pool(name: &str, asg: &str, slots: u32) -> String {
    format!("[pools.{name}]\nforge = \"wp\"\nasg = \"{asg}\"\nlabels = \"platform=linux/amd64\"\nslots = {slots}\n")
}

/// The binary with only the given AWS endpoint reachable, in the crate root.
fn command(endpoint: &str, workdir: &Workdir, args: &[&str]) -> tokio::process::Command {
    support::cli_command(BIN, endpoint, workdir.dir.path(), (TOKEN_VAR, TOKEN), args)
}

/// Runs a command and checks that no secret reached its output.
async fn finish(mut command: tokio::process::Command) -> Output {
    let output = command.output().await.expect("run forge-scaler");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!text.contains(TOKEN), "the forge token leaked into the output: {text}");
    assert!(!text.contains(support::SECRET_ACCESS_KEY), "the AWS secret leaked into the output: {text}");
    output
}

/// Runs the binary with only the given AWS endpoint reachable.
async fn run(endpoint: &str, workdir: &Workdir, args: &[&str]) -> Output {
    finish(command(endpoint, workdir, args)).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn describe(output: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", output.status.code(), stdout(output), stderr(output))
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", describe(output)))
}

/// The report of pool `name` in `plan --json` / `once --json` output.
fn pool_report<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["pools"]
        .as_array()
        .and_then(|pools| pools.iter().find(|p| p["pool"] == name))
        .unwrap_or_else(|| panic!("no pool {name} in {report}"))
}

/// The one stderr line starting with `error:`; fails unless there is exactly one.
fn one_error_line(output: &Output) -> String {
    let text = stderr(output);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line: {}", describe(output));
    lines[0].to_string()
}

/// The forge-scaler tags on a group in moto.
async fn scaler_tags(sdk: &aws_config::SdkConfig, group: &str) -> Vec<(String, String)> {
    support::group_tags(sdk, group).await.into_iter().filter(|(k, _)| k.starts_with("forge-scaler:")).collect()
}

struct World {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    workdir: Workdir,
}

impl World {
    async fn new(groups: &[GroupSpec]) -> World {
        let moto = Moto::start();
        let sdk = moto.sdk().await;
        for group in groups {
            support::create_group(&sdk, group).await;
        }
        World { moto, sdk, workdir: Workdir::new() }
    }
    fn config(&self, text: &str) -> String {
        self.workdir.write("forge-scaler.toml", text).display().to_string()
    }
    async fn run(&self, args: &[&str]) -> Output {
        run(&self.moto.endpoint(), &self.workdir, args).await
    }
    async fn desired(&self, group: &str) -> i32 {
        support::desired_capacity(&self.sdk, group).await
    }
}

#[tokio::test]
async fn plan_json_raises_seven_jobs_on_two_slots_to_four_and_changes_nothing() {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1)]).await;
    let forge = support::woodpecker_fake(7, LINUX).await;
    let config = world.config(&config_text(&forge.uri(), &pool("linux", "ci-linux", 2)));

    let output = world.run(&["plan", "--config", &config, "--json"]).await;

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = json(&output);
    let linux = pool_report(&report, "linux");
    assert_eq!(linux["forge"], "wp");
    assert_eq!(linux["asg"], "ci-linux");
    assert_eq!(linux["pending"], 7);
    assert_eq!(linux["running"], 0);
    assert_eq!(linux["desired_before"], 1);
    assert_eq!(linux["desired_after"], 4);
    assert_eq!(linux["action"], "raise");
    let reasons = linux["reasons"].as_array().expect("reasons");
    assert!(!reasons.is_empty() && reasons.iter().all(|r| r.as_str().is_some_and(|s| !s.is_empty())), "{linux}");
    assert_eq!(world.desired("ci-linux").await, 1, "plan applies nothing");
    assert!(scaler_tags(&world.sdk, "ci-linux").await.is_empty(), "plan writes no tags");
    assert!(!forge.received_requests().await.unwrap().is_empty(), "the forge was asked");
}

#[tokio::test]
async fn plan_prints_a_readable_summary_without_json() {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1)]).await;
    let forge = support::woodpecker_fake(7, LINUX).await;
    let config = world.config(&config_text(&forge.uri(), &pool("linux", "ci-linux", 2)));

    let output = world.run(&["plan", "--config", &config]).await;

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let text = stdout(&output);
    assert!(text.contains("pool linux") && text.contains("7 pending") && text.contains("1 -> 4"), "{text}");
    assert_eq!(world.desired("ci-linux").await, 1);
}

#[tokio::test]
async fn once_raises_the_group_and_a_second_once_changes_nothing() {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1)]).await;
    let forge = support::woodpecker_fake(7, LINUX).await;
    let config = world.config(&config_text(&forge.uri(), &pool("linux", "ci-linux", 2)));

    let first = world.run(&["once", "--config", &config, "--json"]).await;

    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    assert_eq!(pool_report(&json(&first), "linux")["action"], "raise");
    assert_eq!(world.desired("ci-linux").await, 4);
    let tags_after_first = scaler_tags(&world.sdk, "ci-linux").await;
    let tag_keys: Vec<&str> = tags_after_first.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        tag_keys,
        [
            "forge-scaler:boot-timeout",
            "forge-scaler:idle-timeout",
            "forge-scaler:last-scale-out",
            "forge-scaler:last-scale-out-to"
        ],
        "the cooldown and watchdog tags are written with the raise"
    );

    let second = world.run(&["once", "--config", &config, "--json"]).await;

    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let linux = pool_report(&json(&second), "linux").clone();
    assert_eq!(linux["action"], "none", "{linux}");
    assert_eq!((linux["desired_before"].clone(), linux["desired_after"].clone()), (4.into(), 4.into()));
    assert_eq!(world.desired("ci-linux").await, 4);
    assert_eq!(scaler_tags(&world.sdk, "ci-linux").await, tags_after_first, "no tag rewritten");
}

#[tokio::test]
async fn a_target_above_the_groups_max_size_is_clamped_by_us_not_by_moto() {
    // moto accepts SetDesiredCapacity above MaxSize; AWS would refuse it. The clamp is ours.
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 3, 1)]).await;
    let forge = support::woodpecker_fake(20, LINUX).await;
    let config = world.config(&config_text(&forge.uri(), &pool("linux", "ci-linux", 1)));

    let plan = world.run(&["plan", "--config", &config, "--json"]).await;
    let once = world.run(&["once", "--config", &config, "--json"]).await;

    assert_eq!(plan.status.code(), Some(0), "{}", describe(&plan));
    assert_eq!(pool_report(&json(&plan), "linux")["desired_after"], 3);
    assert_eq!(once.status.code(), Some(0), "{}", describe(&once));
    assert_eq!(world.desired("ci-linux").await, 3);
}

#[tokio::test]
async fn the_config_can_come_from_an_ssm_prefix() {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1)]).await;
    let forge = support::woodpecker_fake(7, LINUX).await;
    let prefix = "/forge-scaler/e2e";
    for (key, value, secure) in [
        ("forges/wp/kind", "woodpecker", false),
        ("forges/wp/url", forge.uri().as_str(), false),
        ("forges/wp/token", TOKEN, true),
        ("pools/linux/forge", "wp", false),
        ("pools/linux/asg", "ci-linux", false),
        ("pools/linux/labels", "platform=linux/amd64", false),
        ("pools/linux/slots", "2", false),
    ] {
        support::put_parameter(&world.sdk, &format!("{prefix}/{key}"), value, secure).await;
    }

    let plan = world.run(&["plan", "--ssm-prefix", prefix, "--json"]).await;

    assert_eq!(plan.status.code(), Some(0), "{}", describe(&plan));
    assert_eq!(pool_report(&json(&plan), "linux")["desired_after"], 4);
    assert_eq!(world.desired("ci-linux").await, 1);
    let authorizations: Vec<String> = forge
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| r.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string))
        .collect();
    assert!(authorizations.iter().any(|a| a == &format!("Bearer {TOKEN}")), "decrypted SecureString token used");

    let once = world.run(&["once", "--ssm-prefix", &format!("{prefix}/"), "--json"]).await;

    assert_eq!(once.status.code(), Some(0), "{}", describe(&once));
    assert_eq!(world.desired("ci-linux").await, 4);
}

#[tokio::test]
async fn an_empty_ssm_prefix_is_a_config_error() {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1)]).await;

    let output = world.run(&["plan", "--ssm-prefix", "/forge-scaler/nothing-here"]).await;

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(one_error_line(&output).contains("/forge-scaler/nothing-here"));
}

/// A broken forge: exit 3, one error line naming the pool, the forge and the cause, nothing changed.
async fn assert_broken_forge(forge_url: &str, cause: &[&str]) {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1)]).await;
    let config = world.config(&config_text(forge_url, &pool("linux", "ci-linux", 2)));

    for command in ["plan", "once"] {
        let output = world.run(&[command, "--config", &config]).await;

        assert_eq!(output.status.code(), Some(3), "{command}: {}", describe(&output));
        let line = one_error_line(&output);
        assert!(line.contains("pool linux") && line.contains("wp"), "{line}");
        assert!(cause.iter().any(|c| line.to_lowercase().contains(c)), "cause {cause:?} not in {line}");
        let report = stdout(&output);
        assert!(report.contains("pool linux") && report.contains("not planned"), "{}", describe(&output));
        assert!(
            !report.to_lowercase().contains("error:"),
            "the cause is printed once, on stderr: {}",
            describe(&output)
        );
        assert_eq!(world.desired("ci-linux").await, 1, "{command} changed the group");
        assert!(scaler_tags(&world.sdk, "ci-linux").await.is_empty(), "{command} wrote tags");
    }
}

#[tokio::test]
async fn a_forge_answering_malformed_json_is_a_pool_error() {
    let forge = support::woodpecker_broken(200, "{\"pending\": [").await;
    assert_broken_forge(&forge.uri(), &["json"]).await;
}

#[tokio::test]
async fn a_forge_refusing_the_token_is_a_pool_error() {
    let forge = support::woodpecker_broken(401, "{\"message\":\"Unauthorized\"}").await;
    assert_broken_forge(&forge.uri(), &["401", "unauthorized"]).await;
}

#[tokio::test]
async fn an_unreachable_forge_is_a_pool_error() {
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    assert_broken_forge(&closed, &["connect", "refused"]).await;
}

#[tokio::test]
async fn a_broken_forge_does_not_stop_the_other_pools() {
    let world = World::new(&[GroupSpec::new("ci-good", 0, 10, 0), GroupSpec::new("ci-bad", 0, 10, 0)]).await;
    let good = support::woodpecker_fake(3, LINUX).await;
    let bad = support::woodpecker_broken(500, "internal error").await;
    let config = world.config(&format!(
        "[forges.good]\nkind = \"woodpecker\"\nurl = \"{}\"\ntoken_env = \"{TOKEN_VAR}\"\n\
         [forges.bad]\nkind = \"woodpecker\"\nurl = \"{}\"\ntoken_env = \"{TOKEN_VAR}\"\n\
         [pools.a]\nforge = \"good\"\nasg = \"ci-good\"\nlabels = \"platform=linux/amd64\"\n\
         [pools.b]\nforge = \"bad\"\nasg = \"ci-bad\"\nlabels = \"platform=linux/amd64\"\n",
        good.uri(),
        bad.uri()
    ));

    let output = world.run(&["once", "--config", &config, "--json"]).await;

    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let report = json(&output);
    assert_eq!(pool_report(&report, "a")["action"], "raise");
    assert_eq!(pool_report(&report, "b")["action"], "error");
    assert!(pool_report(&report, "b")["error"].as_str().is_some_and(|e| e.contains("500")), "{report}");
    assert_eq!(world.desired("ci-good").await, 3);
    assert_eq!(world.desired("ci-bad").await, 0);
}

/// A bad config: exit 2, one error line naming `key`, nothing asked or changed.
async fn assert_bad_config(pools: &str, key: &str) {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1)]).await;
    let forge = support::woodpecker_fake(7, LINUX).await;
    let config = world.config(&config_text(&forge.uri(), pools));

    for command in ["plan", "once"] {
        let output = world.run(&[command, "--config", &config]).await;

        assert_eq!(output.status.code(), Some(2), "{command}: {}", describe(&output));
        let line = one_error_line(&output);
        assert!(line.contains(key), "{key} not named in {line}");
    }
    assert_eq!(world.desired("ci-linux").await, 1);
    assert!(forge.received_requests().await.unwrap().is_empty(), "a bad config observes nothing");
}

#[tokio::test]
async fn zero_slots_is_a_config_error_naming_the_key() {
    assert_bad_config(&pool("linux", "ci-linux", 0), "pools/linux/slots").await;
}

#[tokio::test]
async fn a_pool_naming_an_unknown_forge_is_a_config_error_naming_the_key() {
    assert_bad_config("[pools.linux]\nforge = \"nope\"\nasg = \"ci-linux\"\n", "pools/linux/forge").await;
}

#[tokio::test]
async fn a_missing_config_file_is_a_config_error() {
    let workdir = Workdir::new();
    let missing = workdir.path("missing.toml").display().to_string();
    let closed = format!("http://127.0.0.1:{}", support::free_port());

    let output = run(&closed, &workdir, &["plan", "--config", &missing]).await;

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(one_error_line(&output).contains("missing.toml"));
}

#[tokio::test]
async fn plan_from_the_example_observation_needs_no_network() {
    let workdir = Workdir::new();
    // Every AWS call would fail: nothing listens there.
    let closed = format!("http://127.0.0.1:{}", support::free_port());

    let output = run(&closed, &workdir, &["plan", "--observation", "examples/busy-queue.json", "--json"]).await;

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = json(&output);
    let linux = pool_report(&report, "linux");
    assert_eq!((linux["desired_before"].clone(), linux["desired_after"].clone()), (1.into(), 4.into()));
    assert_eq!(linux["action"], "raise");
    // arm64: one pending job is older than unschedulable_after while one of the two ready
    // slots stands idle, so no agent takes it; 4 pending + 1 running + 1 spare = 6, capped
    // at max_instances 6, raised by at most max_step 2 from 2.
    let arm64 = pool_report(&report, "arm64");
    assert_eq!((arm64["pending"].clone(), arm64["desired_after"].clone()), (4.into(), 4.into()), "{arm64}");
}

#[tokio::test]
async fn plan_record_writes_an_observation_that_replans_the_same() {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1), GroupSpec::new("ci-big", 1, 4, 1)]).await;
    let forge = support::woodpecker_fake(7, LINUX).await;
    let config = world
        .config(&config_text(&forge.uri(), &format!("{}{}", pool("linux", "ci-linux", 2), pool("zbig", "ci-big", 1))));
    let recorded = world.workdir.path("recorded.json").display().to_string();

    let live = world.run(&["plan", "--config", &config, "--json", "--record", &recorded]).await;
    let replayed = world.run(&["plan", "--observation", &recorded, "--json"]).await;

    assert_eq!(live.status.code(), Some(0), "{}", describe(&live));
    assert_eq!(replayed.status.code(), Some(0), "{}", describe(&replayed));
    let (live, replayed) = (json(&live), json(&replayed));
    for name in ["linux", "zbig"] {
        for field in ["forge", "asg", "pending", "running", "desired_before", "desired_after", "action", "reasons"] {
            assert_eq!(pool_report(&live, name)[field], pool_report(&replayed, name)[field], "{name}.{field}");
        }
    }
    assert_eq!(pool_report(&live, "zbig")["desired_after"], 1, "jobs counted once, for linux first");
    assert_eq!(world.desired("ci-linux").await, 1);
}

#[tokio::test]
async fn unreachable_aws_fails_the_tick_with_status_one() {
    let workdir = Workdir::new();
    let forge = support::woodpecker_fake(7, LINUX).await;
    let config = workdir.write("forge-scaler.toml", &config_text(&forge.uri(), &pool("linux", "ci-linux", 2)));
    let closed = format!("http://127.0.0.1:{}", support::free_port());

    for command in ["plan", "once"] {
        let output = run(&closed, &workdir, &[command, "--config", &config.display().to_string()]).await;

        assert_eq!(output.status.code(), Some(1), "{command}: {}", describe(&output));
        let line = one_error_line(&output);
        assert!(line.contains("DescribeAutoScalingGroups") && line.contains("ci-linux"), "{}", describe(&output));
        assert!(line.contains("Connection refused") && !line.contains("ConnectorError"), "{line}");
    }
}

#[tokio::test]
async fn unreachable_ssm_fails_with_status_one() {
    let workdir = Workdir::new();
    let closed = format!("http://127.0.0.1:{}", support::free_port());

    let output = run(&closed, &workdir, &["plan", "--ssm-prefix", "/forge-scaler/prod"]).await;

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(one_error_line(&output).contains("GetParametersByPath"), "{}", describe(&output));
}

#[tokio::test]
async fn no_region_fails_with_status_one_and_says_so() {
    let world = World::new(&[GroupSpec::new("ci-linux", 0, 10, 1)]).await;
    let forge = support::woodpecker_fake(7, LINUX).await;
    let config = world.config(&config_text(&forge.uri(), &pool("linux", "ci-linux", 2)));
    let mut without_region = command(&world.moto.endpoint(), &world.workdir, &["once", "--config", &config]);
    without_region.env_remove("AWS_REGION");

    let output = finish(without_region).await;

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(one_error_line(&output).contains("AWS_REGION"), "{}", describe(&output));
    assert_eq!(world.desired("ci-linux").await, 1);
}

#[tokio::test]
async fn a_bad_config_file_is_reported_before_aws_is_touched() {
    let workdir = Workdir::new();
    let config = workdir.write("bad.toml", &config_text("http://127.0.0.1:9", &pool("linux", "ci-linux", 0)));
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let mut no_aws = command(&closed, &workdir, &["plan", "--config", &config.display().to_string()]);
    no_aws.env_remove("AWS_REGION").env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");

    let output = finish(no_aws).await;

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(one_error_line(&output).contains("pools/linux/slots"), "{}", describe(&output));
}

#[test]
fn the_example_config_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/forge-scaler.toml")).unwrap();
    let tokens = |var: &str| matches!(var, "WOODPECKER_TOKEN" | "FORGEJO_TOKEN").then(|| format!("token-of-{var}"));

    let config = forge_scaler::config::Config::from_toml(&text, tokens).unwrap();

    let pools: Vec<(&str, &str, Option<&str>)> =
        config.pools.iter().map(|p| (p.name.as_str(), p.forge.as_str(), p.asg())).collect();
    assert_eq!(
        pools,
        [
            ("forgejo-docker", "forgejo", Some("ci-forgejo-docker")),
            ("linux", "woodpecker", Some("ci-woodpecker-linux"))
        ]
    );
    assert_eq!(config.pool("linux").unwrap().policy.slots, 2);
    assert_eq!(config.forges["woodpecker"].token.as_ref().map(|t| t.expose()), Some("token-of-WOODPECKER_TOKEN"));
}

#[tokio::test]
async fn plan_without_a_source_names_every_source_it_accepts() {
    let workdir = Workdir::new();
    let output = run("http://127.0.0.1:9", &workdir, &["plan"]).await;

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let text = stderr(&output);
    for flag in ["--config <FILE>", "--ssm-prefix <PATH>", "--observation <FILE>"] {
        assert!(text.contains(flag), "{flag} not named: {text}");
    }
}

#[tokio::test]
async fn every_subcommand_s_long_help_has_examples() {
    let workdir = Workdir::new();
    for args in [
        &["plan", "--help"][..],
        &["once", "--help"],
        &["run", "--help"],
        &["agent", "--help"],
        &["simulate", "--help"],
        &["trace", "synth", "--help"],
        &["ssm", "put", "--help"],
        &["doctor", "--help"],
    ] {
        let output = run("http://127.0.0.1:9", &workdir, args).await;
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", describe(&output));
        let text = stdout(&output);
        assert!(text.contains("Examples:\n  forge-scaler "), "{args:?} has no examples: {text}");
    }
}
