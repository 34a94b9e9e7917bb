//! One `plan --json` run of the real binary against moto and a fake of every forge kind at
//! once (Woodpecker, Forgejo, Gitea, Drone, Buildkite, GitHub, GitLab, generic), plus a
//! command fleet: each pool is planned from its own forge under that forge's rules, and
//! nothing is written.

mod support;

use serde_json::Value;
use support::{GroupSpec, Moto};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "all-forges-secret-token";
const BIN: &str = env!("CARGO_BIN_EXE_forge-scaler");

async fn serve(server: &MockServer, route: &str, query: Option<(&str, &str)>, body: Value) {
    let mut mock = Mock::given(method("GET")).and(path(route));
    if let Some((k, v)) = query {
        mock = mock.and(query_param(k, v));
    }
    mock.respond_with(ResponseTemplate::new(200).set_body_json(body)).mount(server).await;
}

/// One fake server answering every forge's endpoint (their paths do not overlap).
async fn forges() -> MockServer {
    let now = chrono::Utc::now();
    let recent = (now - chrono::Duration::seconds(30)).to_rfc3339();
    let server = MockServer::start().await;
    // Woodpecker: 3 pending for linux/amd64, 1 for arm64 (not ours), 1 waiting on deps.
    let task =
        |id: &str, platform: &str| serde_json::json!({"id": id, "labels": {"platform": platform, "repo": "a/b"}});
    Mock::given(method("GET"))
        .and(path("/api/queue/info"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "pending": [task("1", "linux/amd64"), task("2", "linux/amd64"), task("3", "linux/amd64"), task("4", "linux/arm64")],
            "waiting_on_deps": [task("5", "linux/amd64")],
            "running": null,
        })))
        .mount(&server)
        .await;
    // Forgejo: `waiting` is pending here.
    serve(
        &server,
        "/api/v1/admin/actions/runners/jobs",
        Some(("labels", "ubuntu-latest")),
        serde_json::json!([
            {"id": 11, "runs_on": ["ubuntu-latest"], "status": "waiting"},
            {"id": 12, "runs_on": ["ubuntu-latest"], "status": "running"},
        ]),
    )
    .await;
    // Gitea: `waiting` would be blocked; queued and in_progress are asked separately.
    serve(
        &server,
        "/api/v1/admin/actions/jobs",
        Some(("status", "queued")),
        serde_json::json!({"jobs": [
            {"id": 21, "labels": ["ubuntu-latest"], "status": "queued", "created_at": recent},
            {"id": 22, "labels": ["windows"], "status": "queued", "created_at": recent},
        ], "total_count": 2}),
    )
    .await;
    serve(
        &server,
        "/api/v1/admin/actions/jobs",
        Some(("status", "in_progress")),
        serde_json::json!({"jobs": [], "total_count": 0}),
    )
    .await;
    // Drone: stages of the default platform linux/amd64.
    serve(
        &server,
        "/api/queue",
        None,
        serde_json::json!([
            {"id": 31, "status": "pending", "os": "linux", "arch": "amd64", "created": now.timestamp()},
            {"id": 32, "status": "pending", "os": "linux", "arch": "arm64", "created": now.timestamp()},
            {"id": 33, "status": "running", "os": "linux", "arch": "amd64", "created": now.timestamp()},
        ]),
    )
    .await;
    // Buildkite: counts for the queue.
    serve(
        &server,
        "/v3/metrics/queue",
        Some(("name", "builders")),
        serde_json::json!({"jobs": {"scheduled": 4, "running": 1, "waiting": 0}, "agents": {}, "organization": {"slug": "acme"}}),
    )
    .await;
    // GitHub: one queued run with a job for our labels and one for a GPU runner.
    serve(
        &server,
        "/repos/acme/app/actions/runs",
        Some(("status", "queued")),
        serde_json::json!({"total_count": 1, "workflow_runs": [{"id": 99}]}),
    )
    .await;
    serve(
        &server,
        "/repos/acme/app/actions/runs",
        Some(("status", "in_progress")),
        serde_json::json!({"total_count": 0, "workflow_runs": []}),
    )
    .await;
    serve(
        &server,
        "/repos/acme/app/actions/runs/99/jobs",
        None,
        serde_json::json!({"total_count": 2, "jobs": [
            {"id": 41, "status": "queued", "labels": ["Self-Hosted", "linux"], "created_at": recent},
            {"id": 42, "status": "queued", "labels": ["self-hosted", "gpu"], "created_at": recent},
        ]}),
    )
    .await;
    // GitLab: tags must be a subset; untagged jobs only with run_untagged.
    serve(
        &server,
        "/api/v4/projects/7/jobs",
        None,
        serde_json::json!([
            {"id": 51, "status": "pending", "tag_list": ["docker"], "created_at": recent},
            {"id": 52, "status": "pending", "tag_list": [], "created_at": recent},
            {"id": 53, "status": "running", "tag_list": ["docker"], "created_at": recent},
        ]),
    )
    .await;
    // Generic JSON: counts at pointers.
    serve(&server, "/queue.json", None, serde_json::json!({"queue": {"queued": 5, "running": 2}})).await;
    server
}

fn config(forge: &str, size_file: &std::path::Path) -> String {
    format!(
        r#"
[forges.wp]
kind = "woodpecker"
url = "{forge}"
token_env = "ALL_FORGES_TOKEN"
[forges.fj]
kind = "forgejo"
url = "{forge}"
token_env = "ALL_FORGES_TOKEN"
[forges.gt]
kind = "gitea"
url = "{forge}"
token_env = "ALL_FORGES_TOKEN"
[forges.dr]
kind = "drone"
url = "{forge}"
token_env = "ALL_FORGES_TOKEN"
[forges.bk]
kind = "buildkite"
url = "{forge}"
token_env = "ALL_FORGES_TOKEN"
[forges.gh]
kind = "github"
url = "{forge}"
repos = "acme/app"
token_env = "ALL_FORGES_TOKEN"
[forges.gl]
kind = "gitlab"
url = "{forge}"
projects = "7"
token_env = "ALL_FORGES_TOKEN"
[forges.q]
kind = "generic"
url = "{forge}/queue.json"
pending_pointer = "/queue/queued"
running_pointer = "/queue/running"

[pools.p-woodpecker]
forge = "wp"
asg = "ci-woodpecker"
labels = "platform=linux/amd64"
[pools.p-forgejo]
forge = "fj"
asg = "ci-forgejo"
labels = "ubuntu-latest:docker://node:20"
[pools.p-gitea]
forge = "gt"
asg = "ci-gitea"
labels = "ubuntu-latest"
[pools.p-drone]
forge = "dr"
asg = "ci-drone"
[pools.p-buildkite]
forge = "bk"
asg = "ci-buildkite"
labels = "builders"
slots = 2
[pools.p-github]
forge = "gh"
asg = "ci-github"
labels = "self-hosted,linux,x64"
[pools.p-gitlab]
forge = "gl"
asg = "ci-gitlab"
labels = "docker"
[pools.p-generic]
forge = "q"
asg = "ci-generic"
policy = "vespene"
running_weight = 0.5
[pools.p-command]
forge = "q"
fleet = "command"
max_instances = 3
command = "echo $FORGE_SCALER_SIZE > {size}"
size_command = "cat {size}"
"#,
        size = size_file.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn one_plan_json_run_plans_a_pool_of_every_forge_kind() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let groups = ["woodpecker", "forgejo", "gitea", "drone", "buildkite", "github", "gitlab", "generic"];
    for g in groups {
        support::create_group(&sdk, &GroupSpec::new(&format!("ci-{g}"), 0, 10, 0)).await;
    }
    let forge = forges().await;
    let dir = tempfile::tempdir().unwrap();
    let size_file = dir.path().join("size");
    std::fs::write(&size_file, "1\n").unwrap();
    let config_path = dir.path().join("all.toml");
    std::fs::write(&config_path, config(&forge.uri(), &size_file)).unwrap();

    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["plan", "--config", config_path.to_str().unwrap(), "--json"])
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("ALL_FORGES_TOKEN", TOKEN);
    for (k, v) in moto.env() {
        command.env(k, v);
    }
    let output = command.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN), "the token leaked");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let pool = |name: &str| -> Value {
        report["pools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pool"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {stdout}"))
    };
    // (pool, pending, running, desired_after)
    let expected = [
        ("p-woodpecker", 3, 0, 3), // arm64 task not ours; the waiting one is not demand
        ("p-forgejo", 1, 1, 2),
        ("p-gitea", 1, 0, 1),     // the windows job is not ours
        ("p-drone", 1, 1, 2),     // the arm64 stage is not ours
        ("p-buildkite", 4, 1, 3), // 5 jobs at 2 slots
        ("p-github", 1, 0, 1),    // labels compared case-insensitively; the gpu job is not ours
        ("p-gitlab", 1, 1, 2),    // the untagged job needs run_untagged
        ("p-generic", 5, 2, 6),   // vespene: 5 + 2 * 0.5 = 6
        ("p-command", 5, 2, 3),   // same queue, capped at max_instances 3 (command fleet at 1)
    ];
    for (name, pending, running, desired_after) in expected {
        let p = pool(name);
        assert_eq!(
            (p["pending"].as_u64(), p["running"].as_u64(), p["desired_after"].as_u64(), p["action"].as_str()),
            (Some(pending), Some(running), Some(desired_after), Some("raise")),
            "{name}: {p}"
        );
    }
    for g in groups {
        assert_eq!(support::desired_capacity(&sdk, &format!("ci-{g}")).await, 0, "plan writes nothing to ci-{g}");
    }
    assert_eq!(std::fs::read_to_string(&size_file).unwrap().trim(), "1", "plan runs no fleet command");
}
