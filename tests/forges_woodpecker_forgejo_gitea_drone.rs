//! Woodpecker, Forgejo, Gitea and Drone adapters against a loopback wiremock server serving
//! the fixtures in tests/fixtures/forges/ (provenance in each SOURCES.md) and hand-written
//! answers for behaviours the fixtures README documents. One test per documented quirk.

use chrono::{DateTime, Utc};
use forge_scaler::config::{Config, PoolConfig};
use forge_scaler::forge::{source_for, ForgeError, JobSource};
use forge_scaler::model::{JobRef, PoolJobs};
use std::sync::Arc;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A deadline far enough for any healthy loopback answer.
fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(10)
}

/// A fake forge answering `GET route` (any query) with `response`.
async fn serve(route: &str, response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path(route)).respond_with(response).mount(&server).await;
    server
}

const TOKEN: &str = "tok-SECRET-4f9a7c";

/// Builds a forge `f` of `kind` at `url` and one pool `p`, through the real config validation.
fn setup(kind: &str, url: &str, forge_extra: &str, pool_extra: &str) -> (Arc<dyn JobSource>, PoolConfig) {
    let text = format!(
        r#"
[forges.f]
kind = "{kind}"
url = "{url}"
token = "{TOKEN}"
{forge_extra}
[pools.p]
forge = "f"
asg = "g"
{pool_extra}
"#
    );
    let config = Config::from_toml(&text, |_| None).expect("test config is valid");
    let source = source_for(&config.forges["f"]).expect("adapter builds");
    (source, config.pools[0].clone())
}

fn ids(jobs: &[JobRef]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_deref().unwrap_or("-")).collect()
}

fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).insert_header("content-type", "application/json").set_body_string(body)
}

fn at(unix_s: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(unix_s, 0)
}

/// Checks an error names the URL, never the token, and returns its text.
fn error_text(err: &ForgeError, url_part: &str) -> String {
    let text = err.to_string();
    assert!(!text.contains(TOKEN), "token leaked in {text}");
    assert!(!format!("{err:?}").contains(TOKEN), "token leaked in {err:?}");
    assert!(text.contains(url_part), "{text} does not name {url_part}");
    text
}

/// A loopback URL nothing listens on.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------- Woodpecker

const WP_V2_ALL_NULL: &str = include_str!("fixtures/forges/woodpecker/queue_info.v2_picus_all_null.json");
const WP_V2_PENDING: &str = include_str!("fixtures/forges/woodpecker/queue_info.v2_picus_pending.json");
const WP_V2_PENDING_RUNNING: &str = include_str!("fixtures/forges/woodpecker/queue_info.v2_picus_pending_running.json");
const WP_V2_SDK_NULLS: &str = include_str!("fixtures/forges/woodpecker/queue_info.v2_sdk_testfixture_nulls.json");
const WP_V3: &str = include_str!("fixtures/forges/woodpecker/queue_info.v3_current.assembled.json");
const WP_V3_EMPTY: &str = include_str!("fixtures/forges/woodpecker/queue_info.v3_current_empty.assembled.json");

/// A job's id and creation time only (what these tests pin; start and repository have
/// their own tests).
fn id_and_created(jobs: &[JobRef]) -> Vec<JobRef> {
    jobs.iter().map(|j| JobRef { started: None, repo: None, ..j.clone() }).collect()
}

#[tokio::test]
async fn woodpecker_names_the_repository_from_the_repo_label() {
    let jobs = woodpecker(WP_V3, r#"labels = "platform=linux/amd64""#).await;
    assert_eq!(jobs.pending[0].repo.as_deref(), Some("octo-org/hello-world"));
    assert_eq!(jobs.pending[0].started, None, "the queue gives no start time");
}

#[tokio::test]
async fn drone_running_stages_carry_their_start_and_repository_id() {
    let jobs = drone(DR_QUEUE, "").await;
    assert_eq!(jobs.running[0].started, at(1_537_221_916));
    assert_eq!(jobs.running[0].repo.as_deref(), Some("repo-id 168"));
}

#[tokio::test]
async fn gitea_jobs_name_their_repository_from_the_job_url() {
    let jobs = gitea(GT_QUEUED, GT_EMPTY, r#"labels = "ubuntu-latest:docker://node:20""#).await;
    assert_eq!(jobs.pending[0].repo.as_deref(), Some("user5/repo4"));
    assert_eq!(jobs.pending[0].started, None, "1970 means not started");
}

async fn woodpecker(body: &str, pool_extra: &str) -> PoolJobs {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/queue/info"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(json(body))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = setup("woodpecker", &server.uri(), "", pool_extra);
    source.jobs(&pool, deadline()).await.expect("woodpecker queue reads")
}

#[tokio::test]
async fn woodpecker_v2_null_lists_accepted() {
    let jobs = woodpecker(WP_V2_ALL_NULL, "").await;
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting, jobs.requests), (0, 0, 0, 1));
}

#[tokio::test]
async fn woodpecker_v2_pending_and_running_with_redacted_data() {
    // picus captures: `data` present, `dependencies: null`, platform label empty (ignored).
    let jobs = woodpecker(WP_V2_PENDING, "").await;
    assert_eq!(ids(&jobs.pending), ["11", "12"]);
    assert!(jobs.pending.iter().all(|j| j.created.is_none()), "2.x tasks carry no created time");
    let jobs = woodpecker(WP_V2_PENDING_RUNNING, "").await;
    assert_eq!(ids(&jobs.pending), ["12"]);
    assert_eq!(ids(&jobs.running), ["11"]);
}

#[tokio::test]
async fn woodpecker_empty_task_label_is_ignored() {
    // The picus tasks carry `"platform": ""`; an agent with a different platform still takes them.
    let jobs = woodpecker(WP_V2_PENDING, r#"labels = "platform=linux/arm64""#).await;
    assert_eq!(jobs.pending.len(), 2);
}

#[tokio::test]
async fn woodpecker_v3_empty_lists_accepted() {
    let jobs = woodpecker(WP_V3_EMPTY, "").await;
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting), (0, 0, 0));
}

#[tokio::test]
async fn woodpecker_v3_fields_ids_and_created_reported() {
    let jobs = woodpecker(WP_V3, r#"labels = "platform=linux/amd64""#).await;
    assert_eq!(id_and_created(&jobs.pending), vec![JobRef::with_id("4712", at(1_755_870_000))]);
    assert_eq!(id_and_created(&jobs.running), vec![JobRef::with_id("4711", at(1_755_870_000))]);
}

#[tokio::test]
async fn woodpecker_legacy_capitalised_keys_tolerated() {
    // SDK mock: `Dependencies`, `DepStatus`, `RunOn`, `Paused`, `completed_count`; no waiting_on_deps key.
    let jobs = woodpecker(WP_V2_SDK_NULLS, r#"labels = "platform=linux/amd64""#).await;
    assert_eq!(ids(&jobs.running), ["4696"]);
    assert!(jobs.pending.is_empty());
}

#[tokio::test]
async fn woodpecker_labels_follow_the_server_rule() {
    let body = r#"{
      "pending": [
        {"id":"1","labels":{"platform":"linux/amd64","repo":"acme/app","org-id":"3","woodpecker-ci.org/event":"push"},"created":1755870000},
        {"id":"2","labels":{"platform":"linux/arm64","repo":"acme/app","org-id":"3"}},
        {"id":"3","labels":{"platform":"linux/amd64","repo":"acme/app","gpu":"true"}},
        {"id":"4","labels":{"platform":"linux/amd64","backend":"docker","repo":"acme/app"}}
      ],
      "waiting_on_deps": [], "running": [], "stats": {}, "paused": false, "some_future_key": {"x": 1}
    }"#;
    // Platform only: gpu and backend tasks need labels the agent lacks.
    let jobs = woodpecker(body, r#"labels = "platform=linux/amd64""#).await;
    assert_eq!(ids(&jobs.pending), ["1"]);
    // Wildcards and more labels.
    let jobs = woodpecker(body, r#"labels = ["platform=*", "backend=docker", "gpu=*"]"#).await;
    assert_eq!(ids(&jobs.pending), ["1", "2", "3", "4"]);
    // A required label: only tasks that carry gpu=true.
    let jobs = woodpecker(body, r#"labels = ["platform=linux/amd64", "!gpu=true"]"#).await;
    assert_eq!(ids(&jobs.pending), ["3"]);
    // repo given by the pool replaces the implied repo=*.
    let jobs = woodpecker(body, r#"labels = ["platform=linux/amd64", "repo=acme/other"]"#).await;
    assert!(jobs.pending.is_empty());
    // No labels at all: every task here carries a platform, so none matches.
    let jobs = woodpecker(body, "").await;
    assert!(jobs.pending.is_empty());
}

#[tokio::test]
async fn woodpecker_waiting_on_deps_is_not_demand() {
    let body = r#"{"pending":[],"running":[],"waiting_on_deps":[
        {"id":"5","labels":{"platform":"linux/amd64","repo":"a/b"},"dependencies":["4"]},
        {"id":"6","labels":{"platform":"linux/arm64","repo":"a/b"},"dependencies":["4"]}]}"#;
    let jobs = woodpecker(body, r#"labels = "platform=linux/amd64""#).await;
    assert!(jobs.pending.is_empty() && jobs.running.is_empty());
    assert_eq!(jobs.waiting, 1, "only the matching blocked task counts for the deadlock guard");
}

#[tokio::test]
async fn woodpecker_401_is_an_unauthorized_error_without_the_token() {
    let server = serve("/api/queue/info", ResponseTemplate::new(401).set_body_string("Unauthorized")).await;
    let (source, pool) = setup("woodpecker", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 401, .. }), "{err:?}");
    error_text(&err, "/api/queue/info");
}

#[tokio::test]
async fn woodpecker_malformed_json_is_a_decode_error() {
    let server = serve("/api/queue/info", json(r#"{"pending": [ {"id": "#)).await;
    let (source, pool) = setup("woodpecker", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    error_text(&err, "/api/queue/info");
}

#[tokio::test]
async fn woodpecker_server_error_names_status() {
    let server = serve("/api/queue/info", ResponseTemplate::new(502).set_body_string("bad gateway")).await;
    let (source, pool) = setup("woodpecker", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    let text = error_text(&err, "/api/queue/info");
    assert!(text.contains("502"), "{text}");
}

#[tokio::test]
async fn woodpecker_connection_refused_is_a_transport_error() {
    let url = refused_url();
    let (source, pool) = setup("woodpecker", &url, "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport { .. }), "{err:?}");
    let text = error_text(&err, &url);
    assert!(text.contains("connect"), "{text}");
}

#[tokio::test]
async fn woodpecker_bad_pool_label_is_a_clear_error() {
    let server = MockServer::start().await;
    // Validation refuses this label at load (config::pool tests); an adapter handed such a
    // pool anyway still refuses it without a request.
    let (source, mut pool) = setup("woodpecker", &server.uri(), "", "");
    pool.labels = Some(vec!["gpu".to_string()]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(err.to_string().contains("pools/p/labels") && err.to_string().contains("\"gpu\""), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing is asked for a bad pool");
}

#[tokio::test]
async fn woodpecker_base_url_with_a_path_prefix() {
    let server = MockServer::start().await;
    Mock::given(path("/ci/api/queue/info")).respond_with(json(WP_V3)).expect(1).mount(&server).await;
    let (source, pool) = setup("woodpecker", &format!("{}/ci", server.uri()), "", r#"labels = "platform=linux/amd64""#);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!(jobs.pending.len(), 1);
}

// ---------------------------------------------------------------- Forgejo

const FJ_NULL: &str = include_str!("fixtures/forges/forgejo/runners_jobs.empty_null.derived.json");
const FJ_V11: &str = include_str!("fixtures/forges/forgejo/runners_jobs.v11.assembled.json");
const FJ_V17: &str = include_str!("fixtures/forges/forgejo/runners_jobs.v17_main.assembled.json");
const FJ_ADMIN: &str = "/api/v1/admin/actions/runners/jobs";
const FJ_ADMIN_LEGACY: &str = "/api/v1/admin/runners/jobs";

/// Serves `body` at the admin path with the token header and the given `labels` query.
async fn forgejo(body: &str, labels_query: &str, pool_extra: &str) -> PoolJobs {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(FJ_ADMIN))
        .and(query_param("labels", labels_query))
        .and(header("authorization", format!("token {TOKEN}").as_str()))
        .respond_with(json(body))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = setup("forgejo", &server.uri(), "", pool_extra);
    source.jobs(&pool, deadline()).await.expect("forgejo jobs read")
}

#[tokio::test]
async fn forgejo_null_body_means_no_jobs() {
    let jobs = forgejo(FJ_NULL, "ubuntu-latest", r#"labels = "ubuntu-latest""#).await;
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting, jobs.requests), (0, 0, 0, 1));
}

#[tokio::test]
async fn forgejo_v11_shape_with_null_needs_is_read() {
    let jobs = forgejo(FJ_V11, "ubuntu-latest", r#"labels = "ubuntu-latest""#).await;
    assert_eq!(jobs.pending, vec![JobRef::with_id("393", None)]);
}

#[tokio::test]
async fn forgejo_v15_run_id_attempt_handle_are_ignored() {
    let jobs = forgejo(FJ_V17, "ubuntu-latest", r#"labels = "ubuntu-latest""#).await;
    assert_eq!(ids(&jobs.pending), ["393"]);
    assert!(jobs.running.is_empty());
}

#[tokio::test]
async fn forgejo_waiting_means_queued_for_a_runner_and_running_is_running() {
    let body = r#"[
      {"id":1,"repo_id":1,"owner_id":1,"name":"a","needs":null,"runs_on":["docker"],"task_id":0,"status":"waiting"},
      {"id":2,"repo_id":1,"owner_id":1,"name":"b","needs":["a"],"runs_on":["docker"],"task_id":51,"status":"running"}
    ]"#;
    let jobs = forgejo(body, "docker", r#"labels = "docker""#).await;
    assert_eq!(ids(&jobs.pending), ["1"]);
    assert_eq!(ids(&jobs.running), ["2"]);
    assert_eq!(jobs.waiting, 0);
}

#[tokio::test]
async fn forgejo_blocked_is_never_demand() {
    // The server never returns blocked jobs; if one appears it is not pending.
    let body = r#"[{"id":3,"runs_on":["docker"],"status":"blocked"}]"#;
    let jobs = forgejo(body, "docker", r#"labels = "docker""#).await;
    assert!(jobs.pending.is_empty() && jobs.running.is_empty());
}

#[tokio::test]
async fn forgejo_runner_labels_sent_by_name_and_checked_again() {
    // `name:docker://image` labels are sent by name; a server that ignores the filter
    // (older builds) still only yields jobs whose runs_on the runner has.
    let body = r#"[
      {"id":1,"runs_on":["ubuntu-latest"],"status":"waiting"},
      {"id":2,"runs_on":["ubuntu-latest","gpu"],"status":"waiting"},
      {"id":3,"runs_on":[],"status":"waiting"},
      {"id":4,"runs_on":["docker"],"status":"running"}
    ]"#;
    let jobs = forgejo(body, "ubuntu-latest,docker", r#"labels = ["ubuntu-latest:docker://node:20", "docker"]"#).await;
    assert_eq!(ids(&jobs.pending), ["1", "3"]);
    assert_eq!(ids(&jobs.running), ["4"]);
}

#[tokio::test]
async fn forgejo_absent_labels_send_an_empty_filter() {
    // `labels=` (empty) asks only for jobs with empty runs_on.
    let body = r#"[{"id":3,"runs_on":[],"status":"waiting"},{"id":1,"runs_on":["docker"],"status":"waiting"}]"#;
    let jobs = forgejo(body, "", "").await;
    assert_eq!(ids(&jobs.pending), ["3"]);
}

#[tokio::test]
async fn forgejo_admin_404_falls_back_to_the_legacy_path_and_remembers_it() {
    let server = MockServer::start().await;
    Mock::given(path(FJ_ADMIN))
        .respond_with(ResponseTemplate::new(404).set_body_string("Not Found"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(FJ_ADMIN_LEGACY))
        .and(header("authorization", format!("token {TOKEN}").as_str()))
        .and(query_param("labels", "ubuntu-latest"))
        .respond_with(json(FJ_V11))
        .expect(2)
        .mount(&server)
        .await;
    let (source, pool) = setup("forgejo", &server.uri(), r#"scope = "admin""#, r#"labels = "ubuntu-latest""#);
    let first = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((ids(&first.pending), first.requests), (vec!["393"], 2));
    let second = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((ids(&second.pending), second.requests), (vec!["393"], 1), "the working path is asked first");
}

#[tokio::test]
async fn forgejo_both_admin_paths_404_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    let (source, pool) = setup("forgejo", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    let text = error_text(&err, FJ_ADMIN_LEGACY);
    assert!(text.contains(FJ_ADMIN) && text.contains("404") && text.contains("Forgejo 11"), "{text}");
}

#[tokio::test]
async fn forgejo_non_admin_scopes_do_not_fall_back() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    let (source, pool) = setup("forgejo", &server.uri(), r#"scope = "org:acme""#, "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Status { status: 404, .. }), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn forgejo_each_scope_has_its_path() {
    for (scope, want) in [
        ("admin", FJ_ADMIN),
        ("org:acme", "/api/v1/orgs/acme/actions/runners/jobs"),
        ("repo:acme/app", "/api/v1/repos/acme/app/actions/runners/jobs"),
        ("user", "/api/v1/user/actions/runners/jobs"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET")).and(path(want)).respond_with(json(FJ_V11)).expect(1).mount(&server).await;
        let (source, pool) =
            setup("forgejo", &server.uri(), &format!("scope = \"{scope}\""), r#"labels = "ubuntu-latest""#);
        let jobs = source.jobs(&pool, deadline()).await.unwrap_or_else(|e| panic!("scope {scope}: {e}"));
        assert_eq!(ids(&jobs.pending), ["393"], "scope {scope}");
    }
}

#[tokio::test]
async fn forgejo_401_is_an_unauthorized_error_without_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string(r#"{"message":"token is required"}"#))
        .mount(&server)
        .await;
    let (source, pool) = setup("forgejo", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 401, .. }), "{err:?}");
    error_text(&err, FJ_ADMIN);
}

#[tokio::test]
async fn forgejo_malformed_json_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(json("<html>login</html>")).mount(&server).await;
    let (source, pool) = setup("forgejo", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    error_text(&err, FJ_ADMIN);
}

#[tokio::test]
async fn forgejo_connection_refused_is_a_transport_error() {
    let url = refused_url();
    let (source, pool) = setup("forgejo", &url, "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport { .. }), "{err:?}");
    error_text(&err, &url);
}

// ---------------------------------------------------------------- Gitea

const GT_QUEUED: &str = include_str!("fixtures/forges/gitea/actions_jobs.status_queued.assembled.json");
const GT_EMPTY: &str = include_str!("fixtures/forges/gitea/actions_jobs.empty.derived.json");
const GT_ADMIN: &str = "/api/v1/admin/actions/jobs";

/// Serves `queued` and `in_progress` first pages at the admin path (token header required).
async fn gitea(queued: &str, in_progress: &str, pool_extra: &str) -> PoolJobs {
    let server = MockServer::start().await;
    for (status, body) in [("queued", queued), ("in_progress", in_progress)] {
        Mock::given(method("GET"))
            .and(path(GT_ADMIN))
            .and(query_param("status", status))
            .and(query_param("page", "1"))
            .and(header("authorization", format!("token {TOKEN}").as_str()))
            .respond_with(json(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    let (source, pool) = setup("gitea", &server.uri(), "", pool_extra);
    source.jobs(&pool, deadline()).await.expect("gitea jobs read")
}

/// A Gitea job object with the given id, runs-on labels and status.
fn gitea_job(id: u64, labels: &[&str], status: &str) -> String {
    let labels: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
    format!(
        r#"{{"id":{id},"url":"https://gitea.example.com/api/v1/repos/o/r/actions/jobs/{id}","run_id":7,"name":"j{id}",
            "labels":[{}],"run_attempt":1,"head_sha":"c2d72f5","status":"{status}","steps":[],
            "created_at":"2026-07-16T10:00:00Z","started_at":"1970-01-01T00:00:00Z","completed_at":"1970-01-01T00:00:00Z"}}"#,
        labels.join(",")
    )
}

fn gitea_page(jobs: &[String], total: Option<usize>) -> String {
    match total {
        Some(t) => format!(r#"{{"jobs":[{}],"total_count":{t}}}"#, jobs.join(",")),
        None => format!(r#"{{"jobs":[{}]}}"#, jobs.join(",")),
    }
}

#[tokio::test]
async fn gitea_queued_job_read_with_id_and_created_at() {
    let jobs = gitea(GT_QUEUED, GT_EMPTY, r#"labels = "ubuntu-latest:docker://node:20""#).await;
    assert_eq!(id_and_created(&jobs.pending), vec![JobRef::with_id("198", "2026-07-16T10:00:00Z".parse().ok())]);
    assert!(jobs.running.is_empty());
    assert_eq!(jobs.requests, 2);
}

#[tokio::test]
async fn gitea_empty_list_means_no_jobs() {
    let jobs = gitea(GT_EMPTY, GT_EMPTY, r#"labels = "ubuntu-latest""#).await;
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting, jobs.requests), (0, 0, 0, 2));
}

#[tokio::test]
async fn gitea_waiting_means_blocked_not_pending() {
    let queued = gitea_page(&[gitea_job(1, &["docker"], "waiting"), gitea_job(2, &["docker"], "queued")], Some(2));
    let jobs = gitea(&queued, GT_EMPTY, r#"labels = "docker""#).await;
    assert_eq!(ids(&jobs.pending), ["2"]);
    assert_eq!(jobs.waiting, 1, "a blocked job is not demand, only the deadlock guard's");
}

#[tokio::test]
async fn gitea_zero_time_is_not_a_time() {
    // Unstarted jobs carry 1970-01-01T00:00:00Z for started_at (and, here, created_at).
    let job = gitea_job(5, &[], "queued")
        .replace(r#""created_at":"2026-07-16T10:00:00Z""#, r#""created_at":"1970-01-01T00:00:00Z""#);
    let jobs = gitea(&gitea_page(&[job], Some(1)), GT_EMPTY, "").await;
    assert_eq!(id_and_created(&jobs.pending), vec![JobRef::with_id("5", None)]);
}

#[tokio::test]
async fn gitea_in_progress_with_runner_fields_is_running() {
    let running = gitea_job(8, &["docker"], "in_progress").replace(
        r#""status":"in_progress""#,
        r#""status":"in_progress","runner_id":3,"runner_name":"i-0abc","head_branch":"main""#,
    );
    let jobs = gitea(GT_EMPTY, &gitea_page(&[running], Some(1)), r#"labels = "docker""#).await;
    assert_eq!(ids(&jobs.running), ["8"]);
    assert!(jobs.pending.is_empty());
}

#[tokio::test]
async fn gitea_labels_filtered_client_side() {
    let queued = gitea_page(
        &[
            gitea_job(1, &["ubuntu-latest"], "queued"),
            gitea_job(2, &["ubuntu-latest", "gpu"], "queued"),
            gitea_job(3, &[], "queued"),
            gitea_job(4, &["windows"], "queued"),
        ],
        Some(4),
    );
    let jobs = gitea(&queued, GT_EMPTY, r#"labels = ["ubuntu-latest:docker://node:20", "docker"]"#).await;
    assert_eq!(ids(&jobs.pending), ["1", "3"]);
    let jobs = gitea(&queued, GT_EMPTY, "").await;
    assert_eq!(ids(&jobs.pending), ["3"], "no labels: only jobs without runs-on");
}

#[tokio::test]
async fn gitea_workflow_jobs_key_accepted() {
    let body = format!(r#"{{"total_count":1,"workflow_jobs":[{}]}}"#, gitea_job(11, &[], "queued"));
    let jobs = gitea(&body, GT_EMPTY, "").await;
    assert_eq!(ids(&jobs.pending), ["11"]);
}

/// Serves `pages` of queued jobs (page n = pages[n-1]) with optional per-page headers.
async fn gitea_paged(pages: Vec<(String, Option<&str>)>) -> (PoolJobs, usize) {
    let server = MockServer::start().await;
    for (n, (body, total_header)) in pages.iter().enumerate() {
        let mut response = json(body);
        if let Some(t) = total_header {
            response = response.insert_header("x-total-count", *t);
        }
        Mock::given(path(GT_ADMIN))
            .and(query_param("status", "queued"))
            .and(query_param("page", (n + 1).to_string().as_str()))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    Mock::given(path(GT_ADMIN))
        .and(query_param("status", "in_progress"))
        .respond_with(json(GT_EMPTY))
        .mount(&server)
        .await;
    let (source, pool) = setup("gitea", &server.uri(), "", "");
    let jobs = source.jobs(&pool, deadline()).await.expect("gitea pages read");
    let queued_requests = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().unwrap_or("").contains("status=queued"))
        .count();
    (jobs, queued_requests)
}

fn gitea_jobs(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|id| gitea_job(id, &[], "queued")).collect()
}

#[tokio::test]
async fn gitea_pagination_reads_every_page_up_to_total_count() {
    let (jobs, asked) = gitea_paged(vec![
        (gitea_page(&gitea_jobs(1..51), Some(120)), None),
        (gitea_page(&gitea_jobs(51..101), Some(120)), None),
        (gitea_page(&gitea_jobs(101..121), Some(120)), None),
    ])
    .await;
    assert_eq!(jobs.pending.len(), 120);
    assert_eq!(
        jobs.pending.iter().filter_map(|j| j.id.as_deref()).collect::<std::collections::BTreeSet<_>>().len(),
        120
    );
    assert_eq!(asked, 3);
    assert_eq!(jobs.requests, 4, "three queued pages and one in_progress page");
}

#[tokio::test]
async fn gitea_pagination_follows_x_total_count_when_the_body_has_none() {
    // A server whose page size is below ours (MAX_RESPONSE_ITEMS = 30) still pages to the total.
    let (jobs, asked) = gitea_paged(vec![
        (gitea_page(&gitea_jobs(1..31), None), Some("45")),
        (gitea_page(&gitea_jobs(31..46), None), Some("45")),
    ])
    .await;
    assert_eq!((jobs.pending.len(), asked), (45, 2));
}

#[tokio::test]
async fn gitea_pagination_stops_on_a_short_page_without_totals() {
    let (jobs, asked) = gitea_paged(vec![
        (gitea_page(&gitea_jobs(1..51), None), None),
        (gitea_page(&gitea_jobs(51..53), None), None),
        (gitea_page(&gitea_jobs(900..950), None), None),
    ])
    .await;
    assert_eq!((jobs.pending.len(), asked), (52, 2));
}

#[tokio::test]
async fn gitea_pagination_stops_on_an_empty_page() {
    // total_count went stale (jobs started meanwhile): an empty page ends the walk.
    let (jobs, asked) = gitea_paged(vec![
        (gitea_page(&gitea_jobs(1..51), Some(80)), None),
        (gitea_page(&[], Some(80)), None),
        (gitea_page(&gitea_jobs(900..950), Some(80)), None),
    ])
    .await;
    assert_eq!((jobs.pending.len(), asked), (50, 2));
}

#[tokio::test]
async fn gitea_server_ignoring_page_stops_after_a_repeated_page() {
    let server = MockServer::start().await;
    Mock::given(path(GT_ADMIN))
        .and(query_param("status", "queued"))
        .respond_with(json(&gitea_page(&gitea_jobs(1..51), None)))
        .mount(&server)
        .await;
    Mock::given(path(GT_ADMIN))
        .and(query_param("status", "in_progress"))
        .respond_with(json(GT_EMPTY))
        .mount(&server)
        .await;
    let (source, pool) = setup("gitea", &server.uri(), "", "");
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!(jobs.pending.len(), 50, "the repeated page is not counted twice");
    assert_eq!(jobs.requests, 3);
    let why = jobs.partial.expect("a server ignoring `page` makes the count partial, and says so");
    assert!(why.contains("page 2"), "{why}");
}

#[tokio::test]
async fn gitea_each_scope_has_its_path() {
    for (scope, want) in [
        ("admin", GT_ADMIN),
        ("org:acme", "/api/v1/orgs/acme/actions/jobs"),
        ("repo:acme/app", "/api/v1/repos/acme/app/actions/jobs"),
        ("user", "/api/v1/user/actions/jobs"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(want))
            .and(query_param("status", "queued"))
            .respond_with(json(GT_QUEUED))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(want))
            .and(query_param("status", "in_progress"))
            .respond_with(json(GT_EMPTY))
            .expect(1)
            .mount(&server)
            .await;
        let (source, pool) =
            setup("gitea", &server.uri(), &format!("scope = \"{scope}\""), r#"labels = "ubuntu-latest""#);
        let jobs = source.jobs(&pool, deadline()).await.unwrap_or_else(|e| panic!("scope {scope}: {e}"));
        assert_eq!(ids(&jobs.pending), ["198"], "scope {scope}");
    }
}

#[tokio::test]
async fn gitea_401_is_an_unauthorized_error_without_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_string(r#"{"message":"token does not have required scope"}"#))
        .mount(&server)
        .await;
    let (source, pool) = setup("gitea", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 403, .. }), "{err:?}");
    error_text(&err, GT_ADMIN);
}

#[tokio::test]
async fn gitea_malformed_json_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(json(r#"{"jobs": "none"}"#)).mount(&server).await;
    let (source, pool) = setup("gitea", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    error_text(&err, GT_ADMIN);
}

#[tokio::test]
async fn gitea_unknown_status_400_names_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_string(r#"{"message":"invalid status"}"#))
        .mount(&server)
        .await;
    let (source, pool) = setup("gitea", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    let text = error_text(&err, "/actions/jobs?status=***");
    assert!(text.contains("400") && text.contains("invalid status"), "{text}");
}

#[tokio::test]
async fn gitea_connection_refused_is_a_transport_error() {
    let url = refused_url();
    let (source, pool) = setup("gitea", &url, "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport { .. }), "{err:?}");
    error_text(&err, &url);
}

// ---------------------------------------------------------------- Drone

const DR_EMPTY: &str = include_str!("fixtures/forges/drone/queue.empty.derived.json");
const DR_QUEUE: &str = include_str!("fixtures/forges/drone/queue.pending_running.assembled.json");

async fn drone(body: &str, pool_extra: &str) -> PoolJobs {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/queue"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(json(body))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = setup("drone", &server.uri(), "", pool_extra);
    source.jobs(&pool, deadline()).await.expect("drone queue reads")
}

/// A Drone stage without the omitempty fields unless `extra` adds them.
fn drone_stage(id: u64, status: &str, os: &str, arch: &str, extra: &str) -> String {
    format!(
        r#"{{"id":{id},"repo_id":1,"build_id":2,"number":1,"name":"default","status":"{status}","errignore":false,
            "exit_code":0,"os":"{os}","arch":"{arch}","started":0,"stopped":0,"created":1755870050,"updated":1755870050,
            "version":1,"on_success":true,"on_failure":false{extra}}}"#
    )
}

#[tokio::test]
async fn drone_empty_queue_is_no_jobs() {
    let jobs = drone(DR_EMPTY, "").await;
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.requests), (0, 0, 1));
}

#[tokio::test]
async fn drone_fixture_platform_and_labels_pick_the_pool() {
    // 1001: running linux/amd64, no labels. 1002: pending linux/arm64 with instance=large.
    let jobs = drone(DR_QUEUE, "").await;
    assert_eq!(ids(&jobs.running), ["1001"]);
    assert!(jobs.pending.is_empty());
    let jobs = drone(DR_QUEUE, "arch = \"arm64\"\nlabels = \"instance=large\"").await;
    assert_eq!(id_and_created(&jobs.pending), vec![JobRef::with_id("1002", at(1_537_221_914))]);
    assert!(jobs.running.is_empty());
    let jobs = drone(DR_QUEUE, "arch = \"arm64\"").await;
    assert!(jobs.pending.is_empty(), "a runner without the stage's labels does not take it");
}

#[tokio::test]
async fn drone_omitempty_kind_and_type_count_as_pipeline_docker() {
    let body = format!(
        "[{},{},{}]",
        drone_stage(1, "pending", "linux", "amd64", ""),
        drone_stage(2, "pending", "linux", "amd64", r#","kind":"pipeline","type":"exec""#),
        drone_stage(3, "pending", "linux", "amd64", r#","kind":"pipeline","type":"docker""#)
    );
    let jobs = drone(&body, "").await;
    assert_eq!(ids(&jobs.pending), ["1", "3"]);
    let jobs = drone(&body, "type = \"exec\"").await;
    assert_eq!(ids(&jobs.pending), ["2"]);
}

#[tokio::test]
async fn drone_runner_with_extra_labels_does_not_take_an_unlabeled_stage() {
    let body = format!(
        "[{},{},{}]",
        drone_stage(1, "pending", "linux", "amd64", ""),
        drone_stage(2, "pending", "linux", "amd64", r#","labels":{"size":"large"}"#),
        drone_stage(3, "pending", "linux", "amd64", r#","labels":{"size":"large","zone":"a"}"#)
    );
    assert_eq!(ids(&drone(&body, r#"labels = "size=large""#).await.pending), ["2"]);
    assert_eq!(ids(&drone(&body, "").await.pending), ["1"]);
    assert_eq!(ids(&drone(&body, r#"labels = ["zone=a", "size=large"]"#).await.pending), ["3"]);
}

#[tokio::test]
async fn drone_os_arch_variant_and_kernel() {
    let body = format!(
        "[{},{},{},{},{}]",
        drone_stage(1, "pending", "linux", "arm", r#","variant":"v7""#),
        drone_stage(2, "pending", "linux", "arm", r#","variant":"v6""#),
        drone_stage(3, "pending", "linux", "arm", ""),
        drone_stage(4, "pending", "windows", "amd64", r#","kernel":"1809""#),
        drone_stage(5, "pending", "windows", "amd64", r#","kernel":"1903""#)
    );
    assert_eq!(ids(&drone(&body, "arch = \"arm\"\nvariant = \"v7\"").await.pending), ["1", "3"]);
    assert_eq!(ids(&drone(&body, "arch = \"arm\"").await.pending), ["3"]);
    assert_eq!(ids(&drone(&body, "os = \"windows\"\nkernel = \"1809\"").await.pending), ["4"]);
    assert!(drone(&body, "").await.pending.is_empty(), "the default linux/amd64 pool takes none of these");
}

#[tokio::test]
async fn drone_running_stages_are_running_with_created_times() {
    let body = format!(
        "[{},{}]",
        drone_stage(7, "running", "linux", "amd64", r#","machine":"i-0abc""#),
        drone_stage(8, "pending", "linux", "amd64", "")
    );
    let jobs = drone(&body, "").await;
    assert_eq!(id_and_created(&jobs.running), vec![JobRef::with_id("7", at(1_755_870_050))]);
    assert_eq!(id_and_created(&jobs.pending), vec![JobRef::with_id("8", at(1_755_870_050))]);
}

#[tokio::test]
async fn drone_waiting_on_dependencies_and_blocked_are_not_demand() {
    // Neither is in /api/queue today; should a server list them, they are not demand, and
    // only a dependency wait feeds the deadlock guard (blocked = awaiting approval).
    let body = format!(
        "[{},{},{}]",
        drone_stage(1, "waiting_on_dependencies", "linux", "amd64", ""),
        drone_stage(2, "blocked", "linux", "amd64", ""),
        drone_stage(3, "waiting_on_dependencies", "linux", "arm64", "")
    );
    let jobs = drone(&body, "").await;
    assert!(jobs.pending.is_empty() && jobs.running.is_empty());
    assert_eq!(jobs.waiting, 1);
}

#[tokio::test]
async fn drone_stage_without_repo_id_is_read() {
    // drone-go's Stage has no repo_id; stages shaped like it still count.
    let body = drone_stage(4, "pending", "linux", "amd64", "").replace(r#""repo_id":1,"#, "");
    assert!(!body.contains("repo_id"));
    let jobs = drone(&format!("[{body}]"), "").await;
    assert_eq!(ids(&jobs.pending), ["4"]);
}

#[tokio::test]
async fn drone_401_is_an_unauthorized_error_without_the_token() {
    let server = serve("/api/queue", ResponseTemplate::new(401).set_body_string(r#"{"message":"Unauthorized"}"#)).await;
    let (source, pool) = setup("drone", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 401, .. }), "{err:?}");
    error_text(&err, "/api/queue");
}

#[tokio::test]
async fn drone_oss_build_501_names_the_status() {
    let server = serve("/api/queue", ResponseTemplate::new(501).set_body_string("Not Implemented")).await;
    let (source, pool) = setup("drone", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    let text = error_text(&err, "/api/queue");
    assert!(text.contains("501"), "{text}");
}

#[tokio::test]
async fn drone_malformed_json_is_a_decode_error() {
    let server = serve("/api/queue", json(r#"[{"id": 1, "status": }]"#)).await;
    let (source, pool) = setup("drone", &server.uri(), "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    error_text(&err, "/api/queue");
}

#[tokio::test]
async fn drone_connection_refused_is_a_transport_error() {
    let url = refused_url();
    let (source, pool) = setup("drone", &url, "", "");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport { .. }), "{err:?}");
    error_text(&err, &url);
}

#[tokio::test]
async fn drone_bad_pool_label_is_a_clear_error() {
    let server = MockServer::start().await;
    // Validation refuses this label at load (config::pool tests); an adapter handed such a
    // pool anyway still refuses it without a request.
    let (source, mut pool) = setup("drone", &server.uri(), "", "");
    pool.labels = Some(vec!["large".to_string()]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(err.to_string().contains("pools/p/labels"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}
