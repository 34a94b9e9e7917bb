//! The pure core against real-shaped payloads (tests/fixtures/webhooks/, built from the
//! forges' documented examples), signed here with the configured secret.

use super::*;
use crate::config::Config;
use chrono::TimeZone;

const SECRET: &str = "It's a Secret to Everybody";

const CONFIG: &str = r#"
[forges.gh]
kind = "github"
url = "https://api.github.com"
token = "gh-token"
webhook_secret = "It's a Secret to Everybody"
repos = ["octo-org/example-workflow"]

[forges.gl]
kind = "gitlab"
url = "https://gitlab.example.com"
token = "gl-token"
webhook_secret = "It's a Secret to Everybody"
projects = ["380"]

[forges.bk]
kind = "buildkite"
url = "https://agent.buildkite.com"
token = "bk-token"
webhook_secret = "It's a Secret to Everybody"

[forges.gt]
kind = "gitea"
url = "https://gitea.example.com"
token = "gt-token"
webhook_secret = "It's a Secret to Everybody"

[forges.fj]
kind = "forgejo"
url = "https://forgejo.example.com"
token = "fj-token"
webhook_secret = "It's a Secret to Everybody"

[forges.wp]
kind = "woodpecker"
url = "https://ci.example.com"
token = "wp-token"
webhook_secret = "It's a Secret to Everybody"

[forges.nosecret]
kind = "github"
url = "https://api.github.com"
token = "gh-token"
repos = ["octo-org/example-workflow"]

[pools.gh-linux]
forge = "gh"
asg = "ci-gh-linux"
labels = ["self-hosted", "Linux", "X64"]

[pools.gh-arm]
forge = "gh"
asg = "ci-gh-arm"
labels = ["self-hosted", "linux", "arm64"]

[pools.gl-docker]
forge = "gl"
asg = "ci-gl-docker"
labels = ["docker", "linux", "aws"]

[pools.gl-untagged]
forge = "gl"
asg = "ci-gl-untagged"
run_untagged = true

[pools.bk-large]
forge = "bk"
asg = "ci-bk-large"
labels = ["linux-large"]

[pools.bk-default]
forge = "bk"
asg = "ci-bk-default"

[pools.gt-ubuntu]
forge = "gt"
asg = "ci-gt-ubuntu"
labels = ["ubuntu-latest:docker://node:20-bookworm"]

[pools.fj-docker]
forge = "fj"
asg = "ci-fj-docker"
labels = ["docker:docker://node:20"]

[pools.wp-linux]
forge = "wp"
asg = "ci-wp-linux"
"#;

fn config() -> Config {
    Config::from_toml(CONFIG, |_| None).expect("the test configuration is valid")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/webhooks/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    Headers::from_pairs(pairs.iter().copied())
}

fn github_signature(body: &[u8]) -> String {
    format!("sha256={}", sign::hmac_sha256_hex(SECRET, &[body]))
}

fn github(event: &str, body: &[u8]) -> Verdict {
    let sig = github_signature(body);
    judge(&config(), "gh", &headers(&[("X-GitHub-Event", event), ("X-Hub-Signature-256", &sig)]), body, now())
}

fn tick(pools: &[&str]) -> Verdict {
    Verdict::Tick(pools.iter().map(|p| p.to_string()).collect())
}

// --- GitHub ----------------------------------------------------------------------------

#[test]
fn a_signed_github_queued_job_ticks_the_pools_whose_labels_take_it() {
    let verdict = github("workflow_job", &fixture("github-workflow-job-queued.json"));
    assert_eq!(verdict, tick(&["gh-linux"]), "labels compare case-insensitively; the arm pool lacks x64");
    assert_eq!(verdict.status(), 202);
}

#[test]
fn the_github_documented_signature_example_verifies() {
    // docs.github.com, "Validating webhook deliveries": secret "It's a Secret to Everybody",
    // payload "Hello, World!".
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert!(github::authenticate(SECRET, &headers(&[("x-hub-signature-256", sig)]), b"Hello, World!").is_ok());
}

#[test]
fn a_github_webhook_with_a_bad_or_missing_signature_is_unauthorized() {
    let body = fixture("github-workflow-job-queued.json");
    let wrong = format!("sha256={}", sign::hmac_sha256_hex("another secret", &[&body]));
    for h in [
        headers(&[("X-GitHub-Event", "workflow_job"), ("X-Hub-Signature-256", &wrong)]),
        headers(&[("X-GitHub-Event", "workflow_job")]),
        headers(&[("X-GitHub-Event", "workflow_job"), ("X-Hub-Signature-256", "sha1=abc")]),
    ] {
        let verdict = judge(&config(), "gh", &h, &body, now());
        assert!(matches!(verdict, Verdict::Unauthorized(_)), "{verdict:?}");
        assert_eq!(verdict.status(), 401);
        assert!(!verdict.body().contains(SECRET));
    }
    // A body changed after signing.
    let sig = github_signature(&body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let verdict = judge(
        &config(),
        "gh",
        &headers(&[("X-GitHub-Event", "workflow_job"), ("X-Hub-Signature-256", &sig)]),
        &tampered,
        now(),
    );
    assert!(matches!(verdict, Verdict::Unauthorized(_)));
}

#[test]
fn github_pings_completed_jobs_and_other_events_are_ignored() {
    assert!(matches!(github("ping", &fixture("github-ping.json")), Verdict::Ignore(_)));
    assert!(matches!(github("workflow_job", &fixture("github-workflow-job-completed.json")), Verdict::Ignore(_)));
    assert!(matches!(github("push", br#"{"ref":"refs/heads/main"}"#), Verdict::Ignore(_)));
    assert_eq!(github("ping", &fixture("github-ping.json")).status(), 200);
}

#[test]
fn a_github_job_no_pool_takes_or_from_another_repository_is_ignored() {
    let body = String::from_utf8(fixture("github-workflow-job-queued.json")).unwrap();
    let gpu = body.replace(r#""labels": ["self-hosted", "linux", "x64"]"#, r#""labels": ["self-hosted", "gpu"]"#);
    assert!(matches!(github("workflow_job", gpu.as_bytes()), Verdict::Ignore(why) if why.contains("no pool")));
    let other = body.replace("octo-org/example-workflow", "someone/else");
    assert!(matches!(github("workflow_job", other.as_bytes()), Verdict::Ignore(why) if why.contains("repos")));
}

#[test]
fn a_signed_github_body_that_is_not_json_is_malformed() {
    let verdict = github("workflow_job", b"not json");
    assert!(matches!(verdict, Verdict::Malformed(_)));
    assert_eq!(verdict.status(), 400);
}

// --- GitLab ----------------------------------------------------------------------------

fn gitlab(token: Option<&str>, body: &[u8]) -> Verdict {
    let mut h = vec![("X-Gitlab-Event", "Job Hook")];
    if let Some(t) = token {
        h.push(("X-Gitlab-Token", t));
    }
    judge(&config(), "gl", &headers(&h), body, now())
}

#[test]
fn a_gitlab_pending_job_ticks_the_pools_whose_tags_take_it() {
    assert_eq!(gitlab(Some(SECRET), &fixture("gitlab-job-pending.json")), tick(&["gl-docker"]));
    let body = String::from_utf8(fixture("gitlab-job-pending.json")).unwrap();
    let untagged = body.replace(r#""tags": ["docker", "linux"]"#, r#""tags": []"#);
    assert_eq!(gitlab(Some(SECRET), untagged.as_bytes()), tick(&["gl-untagged"]), "untagged: run_untagged pools");
}

#[test]
fn a_gitlab_job_without_tags_in_the_payload_ticks_every_pool_of_the_forge() {
    assert_eq!(
        gitlab(Some(SECRET), &fixture("gitlab-job-pending-without-tags.json")),
        tick(&["gl-docker", "gl-untagged"])
    );
}

#[test]
fn a_gitlab_webhook_with_a_wrong_or_missing_token_is_unauthorized() {
    assert!(matches!(gitlab(Some("guess"), &fixture("gitlab-job-pending.json")), Verdict::Unauthorized(_)));
    assert!(matches!(gitlab(None, &fixture("gitlab-job-pending.json")), Verdict::Unauthorized(_)));
}

#[test]
fn gitlab_running_jobs_and_pipeline_events_are_ignored() {
    assert!(matches!(gitlab(Some(SECRET), &fixture("gitlab-job-running.json")), Verdict::Ignore(_)));
    assert!(matches!(gitlab(Some(SECRET), &fixture("gitlab-pipeline.json")), Verdict::Ignore(_)));
}

// --- Buildkite ---------------------------------------------------------------------------

fn buildkite_signed(body: &[u8], timestamp: i64) -> Verdict {
    let ts = timestamp.to_string();
    let sig = sign::hmac_sha256_hex(SECRET, &[ts.as_bytes(), b".", body]);
    let value = format!("timestamp={ts},signature={sig}");
    judge(
        &config(),
        "bk",
        &headers(&[("X-Buildkite-Event", "job.scheduled"), ("X-Buildkite-Signature", &value)]),
        body,
        now(),
    )
}

#[test]
fn a_signed_buildkite_scheduled_job_ticks_the_pool_of_its_queue() {
    let body = fixture("buildkite-job-scheduled.json");
    assert_eq!(buildkite_signed(&body, now().timestamp() - 30), tick(&["bk-large"]));
    let default_queue = fixture("buildkite-job-scheduled-default-queue.json");
    assert_eq!(buildkite_signed(&default_queue, now().timestamp()), tick(&["bk-default"]));
}

#[test]
fn a_buildkite_signature_too_far_from_now_or_wrong_is_unauthorized() {
    let body = fixture("buildkite-job-scheduled.json");
    assert!(matches!(buildkite_signed(&body, now().timestamp() - 301), Verdict::Unauthorized(_)), "a replay");
    assert!(matches!(buildkite_signed(&body, now().timestamp() + 301), Verdict::Unauthorized(_)));
    let ts = now().timestamp().to_string();
    let sig = sign::hmac_sha256_hex("wrong", &[ts.as_bytes(), b".", &body]);
    let value = format!("timestamp={ts},signature={sig}");
    let verdict = judge(&config(), "bk", &headers(&[("X-Buildkite-Signature", &value)]), &body, now());
    assert!(matches!(verdict, Verdict::Unauthorized(_)));
}

#[test]
fn the_buildkite_token_header_is_accepted_in_place_of_a_signature() {
    let body = fixture("buildkite-job-scheduled.json");
    let ok = judge(&config(), "bk", &headers(&[("X-Buildkite-Token", SECRET)]), &body, now());
    assert_eq!(ok, tick(&["bk-large"]));
    let bad = judge(&config(), "bk", &headers(&[("X-Buildkite-Token", "nope")]), &body, now());
    assert!(matches!(bad, Verdict::Unauthorized(_)));
}

#[test]
fn a_buildkite_ping_is_ignored() {
    let body = fixture("buildkite-ping.json");
    let verdict =
        judge(&config(), "bk", &headers(&[("X-Buildkite-Event", "ping"), ("X-Buildkite-Token", SECRET)]), &body, now());
    assert!(matches!(verdict, Verdict::Ignore(_)), "{verdict:?}");
}

// --- Gitea and Forgejo -------------------------------------------------------------------

#[test]
fn a_signed_gitea_queued_job_ticks_the_pools_whose_runner_labels_take_it() {
    let body = fixture("gitea-workflow-job-queued.json");
    let sig = sign::hmac_sha256_hex(SECRET, &[&body]);
    let verdict = judge(
        &config(),
        "gt",
        &headers(&[("X-Gitea-Event", "workflow_job"), ("X-Gitea-Signature", &sig)]),
        &body,
        now(),
    );
    assert_eq!(verdict, tick(&["gt-ubuntu"]));
    // The same request authenticated by X-Hub-Signature-256 alone.
    let hub = github_signature(&body);
    let verdict = judge(
        &config(),
        "gt",
        &headers(&[("X-Gitea-Event", "workflow_job"), ("X-Hub-Signature-256", &hub)]),
        &body,
        now(),
    );
    assert_eq!(verdict, tick(&["gt-ubuntu"]));
}

#[test]
fn a_signed_forgejo_waiting_job_ticks_the_pools_whose_runner_labels_take_it() {
    let body = fixture("forgejo-workflow-job-waiting.json");
    let sig = sign::hmac_sha256_hex(SECRET, &[&body]);
    let h = headers(&[("X-Forgejo-Event", "workflow_job_waiting"), ("X-Forgejo-Signature", &sig)]);
    assert_eq!(judge(&config(), "fj", &h, &body, now()), tick(&["fj-docker"]));
    let running = String::from_utf8(body).unwrap().replace(r#""status": "waiting""#, r#""status": "running""#);
    let sig = sign::hmac_sha256_hex(SECRET, &[running.as_bytes()]);
    let h = headers(&[("X-Forgejo-Event", "workflow_job_running"), ("X-Forgejo-Signature", &sig)]);
    assert!(matches!(judge(&config(), "fj", &h, running.as_bytes(), now()), Verdict::Ignore(_)));
}

#[test]
fn a_gitea_webhook_with_a_wrong_signature_or_none_is_unauthorized() {
    let body = fixture("gitea-workflow-job-queued.json");
    let sig = sign::hmac_sha256_hex("wrong", &[&body]);
    let bad = judge(
        &config(),
        "gt",
        &headers(&[("X-Gitea-Event", "workflow_job"), ("X-Gitea-Signature", &sig)]),
        &body,
        now(),
    );
    assert!(matches!(bad, Verdict::Unauthorized(_)));
    let none = judge(&config(), "gt", &headers(&[("X-Gitea-Event", "workflow_job")]), &body, now());
    assert!(matches!(none, Verdict::Unauthorized(_)));
}

#[test]
fn gitea_push_events_are_ignored() {
    let body = br#"{"ref":"refs/heads/main","commits":[]}"#;
    let sig = sign::hmac_sha256_hex(SECRET, &[body]);
    let verdict =
        judge(&config(), "gt", &headers(&[("X-Gitea-Event", "push"), ("X-Gitea-Signature", &sig)]), body, now());
    assert!(matches!(verdict, Verdict::Ignore(_)));
}

// --- What every forge shares ----------------------------------------------------------------

#[test]
fn an_unknown_forge_a_forge_without_a_secret_and_a_woodpecker_forge_are_not_found() {
    let body = fixture("github-workflow-job-queued.json");
    let sig = github_signature(&body);
    let h = headers(&[("X-GitHub-Event", "workflow_job"), ("X-Hub-Signature-256", &sig)]);
    for (forge, needle) in
        [("nope", "no forge"), ("nosecret", "webhook_secret"), ("wp", "Woodpecker sends no job webhooks")]
    {
        let verdict = judge(&config(), forge, &h, &body, now());
        assert_eq!(verdict.status(), 404, "{forge}");
        assert!(verdict.body().contains(needle), "{forge}: {}", verdict.body());
    }
}

#[test]
fn a_body_over_one_mebibyte_is_too_large_before_anything_else() {
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    let verdict = judge(&config(), "nope", &Headers::default(), &body, now());
    assert_eq!(verdict, Verdict::TooLarge);
    assert_eq!(verdict.status(), 413);
    let at_cap = vec![b' '; MAX_BODY_BYTES];
    assert_ne!(judge(&config(), "gh", &Headers::default(), &at_cap, now()), Verdict::TooLarge);
}

#[test]
fn the_forge_name_comes_from_the_webhooks_path_only() {
    assert_eq!(forge_name_in_path("/webhooks/gh"), Some("gh"));
    assert_eq!(forge_name_in_path("/webhooks/gh/"), Some("gh"));
    assert_eq!(forge_name_in_path("/webhooks/"), None);
    assert_eq!(forge_name_in_path("/webhooks/gh/extra"), None);
    assert_eq!(forge_name_in_path("/other/gh"), None);
}
