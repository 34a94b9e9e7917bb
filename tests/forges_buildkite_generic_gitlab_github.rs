//! Buildkite, generic JSON, GitLab and GitHub Actions adapters against a wiremock server on
//! 127.0.0.1 serving the fixtures in tests/fixtures/forges/ (provenance in each SOURCES.md)
//! and hand-written answers for behaviour the fixtures README documents.

use forge_scaler::config::{Config, PoolConfig, RawConfig};
use forge_scaler::forge::{source_for, ForgeError, JobSource};
use std::sync::Arc;
use std::time::Duration;
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

const TOKEN: &str = "s3cr3t-token-do-not-print";

fn fixture(forge: &str, name: &str) -> String {
    let p = format!("{}/tests/fixtures/forges/{forge}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("fixture {p}: {e}"))
}

/// Builds a validated one-forge, one-pool config and the adapter for it.
fn setup(
    kind: &str,
    url: &str,
    forge_keys: &[(&str, &str)],
    pool_keys: &[(&str, &str)],
) -> (Arc<dyn JobSource>, PoolConfig) {
    let mut params = vec![
        ("/t/forges/f/kind".to_string(), kind.to_string()),
        ("/t/forges/f/url".to_string(), url.to_string()),
        ("/t/pools/p/forge".to_string(), "f".to_string()),
        ("/t/pools/p/asg".to_string(), "asg-p".to_string()),
    ];
    if !forge_keys.iter().any(|(k, _)| *k == "token") {
        params.push(("/t/forges/f/token".to_string(), TOKEN.to_string()));
    }
    params.extend(
        forge_keys.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (format!("/t/forges/f/{k}"), v.to_string())),
    );
    params.extend(pool_keys.iter().map(|(k, v)| (format!("/t/pools/p/{k}"), v.to_string())));
    let config = Config::validate(&RawConfig::from_params("/t", params)).expect("test config is valid");
    let source = source_for(&config.forges["f"]).expect("adapter builds");
    (source, config.pools[0].clone())
}

fn assert_clear(err: &ForgeError, url_part: &str, words: &[&str]) {
    let text = err.to_string();
    assert!(!text.contains(TOKEN), "token leaked into the error: {text}");
    assert!(text.contains(url_part), "error does not name the URL ({url_part}): {text}");
    for w in words {
        assert!(text.to_lowercase().contains(&w.to_lowercase()), "error lacks {w:?}: {text}");
    }
}

fn json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "application/json")
}

// ---------------------------------------------------------------- Buildkite

async fn buildkite(server: &MockServer, queue: Option<&str>) -> (Arc<dyn JobSource>, PoolConfig) {
    let pool: Vec<(&str, &str)> = queue.map(|q| vec![("labels", q)]).unwrap_or_default();
    setup("buildkite", &server.uri(), &[], &pool)
}

#[tokio::test]
async fn buildkite_reads_scheduled_running_and_waiting_of_the_pool_queue() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/metrics/queue"))
        .and(query_param("name", "gpu"))
        .and(header("authorization", format!("Token {TOKEN}").as_str()))
        .respond_with(json(fixture("buildkite", "metrics_queue.gpu.assembled.json")))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = buildkite(&server, Some("gpu")).await;
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting, jobs.requests), (3, 1, 0, 1));
    assert!(jobs.pending.iter().all(|j| j.id.is_none()), "Buildkite counts cannot be de-duplicated");
}

#[tokio::test]
async fn buildkite_pool_without_labels_reads_the_default_queue() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/metrics/queue"))
        .and(query_param("name", "default"))
        .respond_with(json(fixture("buildkite", "metrics_queue.deploy.testfixture.json")))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = buildkite(&server, None).await;
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting), (3, 1, 0));
}

#[tokio::test]
async fn buildkite_url_given_with_v3_is_not_doubled() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/metrics/queue"))
        .respond_with(json(fixture("buildkite", "metrics_queue.deploy.testfixture.json")))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = setup("buildkite", &format!("{}/v3", server.uri()), &[], &[]);
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 3);
}

#[tokio::test]
async fn buildkite_empty_objects_mean_zero() {
    let server =
        serve("/v3/metrics/queue", json(fixture("buildkite", "metrics.all.empty_objects.testfixture.json"))).await;
    let (source, pool) = buildkite(&server, None).await;
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting), (0, 0, 0));
}

#[tokio::test]
async fn buildkite_absent_counts_mean_zero() {
    let server = serve(
        "/v3/metrics/queue",
        json(fixture("buildkite", "metrics_queue.minimal_org_only.scaler_testfixture.json")),
    )
    .await;
    let (source, pool) = buildkite(&server, None).await;
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting), (0, 0, 0));
}

#[tokio::test]
async fn buildkite_waiting_jobs_are_not_demand() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/metrics/queue"))
        .and(query_param("name", "deploy"))
        .respond_with(json(r#"{"jobs":{"scheduled":0,"running":0,"waiting":4,"total":0}}"#.to_string()))
        .mount(&server)
        .await;
    let (source, pool) = buildkite(&server, Some("deploy")).await;
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting), (0, 0, 4));
}

#[tokio::test]
async fn buildkite_official_fixtures_omit_waiting_which_means_zero() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/metrics/queue"))
        .and(query_param("name", "deploy"))
        .respond_with(json(fixture("buildkite", "metrics_queue.deploy.testfixture.json")))
        .mount(&server)
        .await;
    let (source, pool) = buildkite(&server, Some("deploy")).await;
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting), (3, 1, 0));
}

#[tokio::test]
async fn buildkite_cluster_token_answer_with_cluster_name_is_read() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/metrics/queue"))
        .respond_with(json(
            r#"{"agents":{"idle":0,"busy":0,"total":0},"jobs":{"scheduled":2,"running":0,"waiting":3,"total":2},"organization":{"slug":"buildkite"},"cluster":{"name":"Default cluster"}}"#.to_string(),
        ))
        .mount(&server)
        .await;
    let (source, pool) = buildkite(&server, Some("linux")).await;
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.waiting), (2, 0, 3));
}

#[tokio::test]
async fn buildkite_poll_duration_header_becomes_the_poll_hint() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/metrics/queue"))
        .respond_with(
            json(fixture("buildkite", "metrics_queue.gpu.assembled.json"))
                .insert_header("Buildkite-Agent-Metrics-Poll-Duration", "25"),
        )
        .mount(&server)
        .await;
    let (source, pool) = buildkite(&server, Some("gpu")).await;
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().poll_hint, Some(Duration::from_secs(25)));

    let quiet = MockServer::start().await;
    Mock::given(path("/v3/metrics/queue"))
        .respond_with(json(fixture("buildkite", "metrics_queue.gpu.assembled.json")))
        .mount(&quiet)
        .await;
    let (source, pool) = buildkite(&quiet, Some("gpu")).await;
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().poll_hint, None);
}

#[tokio::test]
async fn buildkite_401_with_message_is_an_unauthorized_error_without_the_token() {
    let server = MockServer::start().await;
    Mock::given(path("/v3/metrics/queue"))
        .respond_with(
            ResponseTemplate::new(401).set_body_raw(
                fixture("buildkite", "metrics_queue.401_error.scaler_testfixture.json"),
                "application/json",
            ),
        )
        .mount(&server)
        .await;
    let (source, pool) = buildkite(&server, None).await;
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 401, .. }), "{err:?}");
    assert_clear(&err, "/v3/metrics/queue", &["unauthorized", "401", "token"]);
}

#[tokio::test]
async fn buildkite_malformed_json_is_a_decode_error() {
    let server = serve("/v3/metrics/queue", json(r#"{"jobs": {"scheduled": "#.to_string())).await;
    let (source, pool) = buildkite(&server, None).await;
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    assert_clear(&err, "/v3/metrics/queue", &["json"]);
}

#[tokio::test]
async fn buildkite_server_error_names_the_status() {
    let server = serve("/v3/metrics/queue", ResponseTemplate::new(502).set_body_string("bad gateway")).await;
    let (source, pool) = buildkite(&server, None).await;
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Status { status: 502, .. }), "{err:?}");
    assert_clear(&err, "/v3/metrics/queue", &["502", "bad gateway"]);
}

/// A loopback port nothing listens on.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn buildkite_connection_refused_is_a_transport_error() {
    let url = refused_url();
    let (source, pool) = setup("buildkite", &url, &[], &[]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport { .. }), "{err:?}");
    assert_clear(&err, &url, &["connect"]);
}

// ---------------------------------------------------------------- generic

fn generic(server: &MockServer, route: &str, forge_keys: &[(&str, &str)]) -> (Arc<dyn JobSource>, PoolConfig) {
    setup("generic", &format!("{}{route}", server.uri()), forge_keys, &[])
}

#[tokio::test]
async fn generic_reads_counts_at_the_pointers_with_bearer_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/queue"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(json(r#"{"queue":{"queued":5,"running":[{"id":1},{"id":2}]}}"#.to_string()))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) =
        generic(&server, "/api/queue", &[("pending_pointer", "/queue/queued"), ("running_pointer", "/queue/running")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.requests), (5, 2, 1));
}

#[tokio::test]
async fn generic_numeric_string_counts_and_running_pointer_is_optional() {
    let server = serve("/vespene/queue", json(r#"{"pending":"7","running":"3"}"#.to_string())).await;
    let (source, pool) = generic(&server, "/vespene/queue", &[("pending_pointer", "/pending")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len()), (7, 0));
}

#[tokio::test]
async fn generic_custom_auth_header_and_scheme() {
    let server = MockServer::start().await;
    Mock::given(path("/q"))
        .and(header("x-api-key", format!("Key {TOKEN}").as_str()))
        .respond_with(json(r#"{"n":2}"#.to_string()))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) =
        generic(&server, "/q", &[("pending_pointer", "/n"), ("auth_header", "X-Api-Key"), ("auth_scheme", "Key")]);
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 2);
}

#[tokio::test]
async fn generic_without_token_sends_no_auth_header() {
    let server = MockServer::start().await;
    Mock::given(path("/q")).respond_with(json(r#"{"n":1}"#.to_string())).expect(1).mount(&server).await;
    let (source, pool) = generic(&server, "/q", &[("pending_pointer", "/n"), ("token", "")]);
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 1);
    let requests = server.received_requests().await.unwrap();
    assert!(requests.iter().all(|r| !r.headers.contains_key("authorization")), "sent an auth header without a token");
}

#[tokio::test]
async fn generic_missing_pointer_is_an_error_naming_it() {
    let server = serve("/q", json(r#"{"queued":1}"#.to_string())).await;
    let (source, pool) = generic(&server, "/q", &[("pending_pointer", "/stats/pending")]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert_clear(&err, "/q", &["pending_pointer", "/stats/pending"]);
}

#[tokio::test]
async fn generic_non_number_value_is_an_error_naming_the_pointer() {
    let server = serve("/q", json(r#"{"queued":3,"running":{"count":2}}"#.to_string())).await;
    let (source, pool) = generic(&server, "/q", &[("pending_pointer", "/queued"), ("running_pointer", "/running")]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert_clear(&err, "/q", &["running_pointer", "/running", "not a count"]);
}

#[tokio::test]
async fn generic_401_and_malformed_json_are_clear_errors() {
    let server = serve("/denied", ResponseTemplate::new(401)).await;
    Mock::given(path("/broken")).respond_with(json("<html>oops</html>".to_string())).mount(&server).await;
    let (source, pool) = generic(&server, "/denied", &[("pending_pointer", "/n")]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 401, .. }), "{err:?}");
    assert_clear(&err, "/denied", &["unauthorized"]);
    let (source, pool) = generic(&server, "/broken", &[("pending_pointer", "/n")]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    assert_clear(&err, "/broken", &["json"]);
}

// ---------------------------------------------------------------- GitLab

use wiremock::matchers::query_param_is_missing;

fn gitlab(server: &MockServer, projects: &str, pool_keys: &[(&str, &str)]) -> (Arc<dyn JobSource>, PoolConfig) {
    setup("gitlab", &server.uri(), &[("projects", projects)], pool_keys)
}

fn gitlab_job(id: u64, status: &str, tags: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "id": id, "status": status, "tag_list": tags, "created_at": "2026-11-22T10:00:00.000Z",
        "stage": "test", "name": format!("job{id}"), "runner": null
    })
}

fn jobs_page(jobs: &[serde_json::Value]) -> ResponseTemplate {
    json(serde_json::Value::Array(jobs.to_vec()).to_string())
}

#[tokio::test]
async fn gitlab_running_jobs_carry_their_start_and_the_project() {
    let mut running = gitlab_job(3, "running", &["docker"]);
    running["started_at"] = serde_json::json!("2026-11-22T10:00:30.000Z");
    let server = serve("/api/v4/projects/7/jobs", jobs_page(&[running])).await;
    let (source, pool) = gitlab(&server, "7", &[("labels", "docker")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    let job = &jobs.running[0];
    assert_eq!((job.started.unwrap() - job.created.unwrap()).num_seconds(), 30);
    assert_eq!(job.repo.as_deref(), Some("7"));
}

#[tokio::test]
async fn gitlab_counts_pending_and_running_jobs_whose_tags_the_runner_has() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/projects/7/jobs"))
        .and(query_param("scope[]", "pending"))
        .and(query_param("scope[]", "running"))
        .and(query_param("per_page", "100"))
        .and(header("private-token", TOKEN))
        .respond_with(jobs_page(&[
            gitlab_job(1, "pending", &["docker", "aws"]),
            gitlab_job(2, "pending", &["docker"]),
            gitlab_job(3, "running", &["aws"]),
            gitlab_job(4, "pending", &["docker", "gpu"]),
            gitlab_job(5, "running", &["windows"]),
            gitlab_job(6, "created", &["docker"]),
            gitlab_job(7, "waiting_for_resource", &["docker"]),
            gitlab_job(8, "manual", &["docker"]),
            gitlab_job(9, "scheduled", &["docker"]),
        ]))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = gitlab(&server, "7", &[("labels", "docker, aws")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    let ids = |v: &[forge_scaler::model::JobRef]| v.iter().map(|j| j.id.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&jobs.pending), ["1", "2"]);
    assert_eq!(ids(&jobs.running), ["3"]);
    assert_eq!(jobs.requests, 1);
    let created = jobs.pending[0].created.expect("created_at is read");
    assert_eq!(created.to_rfc3339(), "2026-11-22T10:00:00+00:00");
}

#[tokio::test]
async fn gitlab_docs_example_statuses_are_illustrative_and_not_demand() {
    let server = serve(
        "/api/v4/projects/1/jobs",
        json(fixture("gitlab", "projects_jobs.scope_pending_running.docs_example.json")),
    )
    .await;
    let (source, pool) = gitlab(&server, "1", &[("labels", "docker runner,ubuntu18,win10-2004")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len()), (0, 0), "status \"failed\" is neither pending nor running");
}

#[tokio::test]
async fn gitlab_empty_page_is_an_empty_array() {
    let server = serve("/api/v4/projects/1/jobs", json(fixture("gitlab", "projects_jobs.empty.derived.json"))).await;
    let (source, pool) = gitlab(&server, "1", &[]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.requests), (0, 0, 1));
}

#[tokio::test]
async fn gitlab_untagged_jobs_count_only_with_run_untagged() {
    let server = serve(
        "/api/v4/projects/1/jobs",
        jobs_page(&[gitlab_job(1, "pending", &[]), gitlab_job(2, "pending", &["docker"])]),
    )
    .await;
    let (source, pool) = gitlab(&server, "1", &[("labels", "docker")]);
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 1);
    let (source, pool) = gitlab(&server, "1", &[("labels", "docker"), ("run_untagged", "true")]);
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 2);
    let (source, pool) = gitlab(&server, "1", &[("run_untagged", "true")]);
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 1, "no tags: only untagged jobs");
}

#[tokio::test]
async fn gitlab_offset_pagination_follows_x_next_page() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param_is_missing("page"))
        .respond_with(
            jobs_page(&[gitlab_job(9, "pending", &[]), gitlab_job(8, "running", &[])])
                .insert_header("x-page", "1")
                .insert_header("x-next-page", "2")
                .insert_header("x-total-pages", "2")
                .insert_header("x-total", "3"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param("page", "2"))
        .and(query_param("scope[]", "pending"))
        .respond_with(
            jobs_page(&[gitlab_job(7, "pending", &[])])
                .insert_header("x-page", "2")
                .insert_header("x-next-page", "")
                .insert_header("x-total-pages", "2"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = gitlab(&server, "1", &[("run_untagged", "true")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.requests), (2, 1, 2));
}

#[tokio::test]
async fn gitlab_above_10000_records_totals_are_omitted_and_x_next_page_still_leads() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param_is_missing("page"))
        .respond_with(
            jobs_page(&[gitlab_job(9, "pending", &[])]).insert_header("x-next-page", "2").insert_header("x-page", "1"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param("page", "2"))
        .respond_with(jobs_page(&[gitlab_job(8, "pending", &[])]).insert_header("x-page", "2"))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = gitlab(&server, "1", &[("run_untagged", "true")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.requests), (2, 2));
    assert_eq!(jobs.partial, None, "the last page was read: the count is whole");
}

#[tokio::test]
async fn gitlab_keyset_pagination_follows_link() {
    let server = MockServer::start().await;
    let next = format!(
        "<{}/api/v4/projects/1/jobs?cursor=eyJpZCI6IjQyIn0&pagination=keyset&per_page=100&scope%5B%5D=pending&scope%5B%5D=running>; rel=\"next\"",
        server.uri()
    );
    // Above 10,000 records GitLab omits x-total and x-total-pages: only the Link remains.
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param_is_missing("cursor"))
        .respond_with(jobs_page(&[gitlab_job(50, "pending", &[])]).insert_header("link", next.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param("cursor", "eyJpZCI6IjQyIn0"))
        .respond_with(jobs_page(&[gitlab_job(42, "pending", &[])]))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = gitlab(&server, "1", &[("run_untagged", "true")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.requests), (2, 2));
    assert_eq!(jobs.partial, None, "the last page was read: the count is whole");
}

#[tokio::test]
async fn gitlab_link_to_the_public_host_stays_on_the_configured_host() {
    // The docs' Link header names https://gitlab.example.com; the token must not go there.
    let server = MockServer::start().await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param_is_missing("page"))
        .respond_with(jobs_page(&[gitlab_job(3, "pending", &[])]).insert_header(
            "link",
            "<https://gitlab.example.com/api/v4/projects/1/jobs?page=2&per_page=100>; rel=\"next\", <https://gitlab.example.com/api/v4/projects/1/jobs?page=2&per_page=100>; rel=\"last\"",
        ))
        .mount(&server)
        .await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param("page", "2"))
        .respond_with(jobs_page(&[gitlab_job(2, "running", &[])]))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = gitlab(&server, "1", &[("run_untagged", "true")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len()), (1, 1));
}

#[tokio::test]
async fn gitlab_reads_every_project_and_encodes_paths() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v4/projects/group%2Fapp/jobs"))
        .respond_with(jobs_page(&[gitlab_job(1, "pending", &["docker"])]))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/api/v4/projects/12/jobs"))
        .respond_with(jobs_page(&[gitlab_job(2, "pending", &["docker"]), gitlab_job(1, "pending", &["docker"])]))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = gitlab(&server, "group%2Fapp, 12, group/app", &[("labels", "docker")]);
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!(jobs.pending.len(), 2, "job 1 seen in two listings counts once");
    assert_eq!(jobs.requests, 3);
}

#[tokio::test]
async fn gitlab_more_pages_than_max_requests_per_tick_is_a_partial_count_of_the_pages_read() {
    let server =
        serve("/api/v4/projects/1/jobs", jobs_page(&[gitlab_job(1, "pending", &[])]).insert_header("x-next-page", "2"))
            .await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param("page", "2"))
        .respond_with(jobs_page(&[gitlab_job(2, "pending", &[])]).insert_header("x-next-page", "3"))
        .with_priority(1)
        .mount(&server)
        .await;
    let (source, pool) = setup(
        "gitlab",
        &server.uri(),
        &[("projects", "1"), ("max_requests_per_tick", "2")],
        &[("run_untagged", "true")],
    );
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.requests), (2, 2), "what the two pages held, a lower bound");
    let why = jobs.partial.expect("the count says it is partial");
    assert!(why.contains("max_requests_per_tick") && why.contains("2 pages"), "{why}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "no request beyond the budget");
}

#[tokio::test]
async fn gitlab_401_and_malformed_json_are_clear_errors() {
    let server = serve(
        "/api/v4/projects/1/jobs",
        ResponseTemplate::new(401).set_body_string(r#"{"message":"401 Unauthorized"}"#),
    )
    .await;
    Mock::given(path("/api/v4/projects/2/jobs"))
        .respond_with(json(r#"{"message":"not a list"}"#.to_string()))
        .mount(&server)
        .await;
    let (source, pool) = gitlab(&server, "1", &[]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 401, .. }), "{err:?}");
    assert_clear(&err, "/api/v4/projects/1/jobs", &["unauthorized"]);
    let (source, pool) = gitlab(&server, "2", &[]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    assert_clear(&err, "/api/v4/projects/2/jobs", &["json"]);
}

#[tokio::test]
async fn gitlab_connection_refused_is_a_transport_error() {
    let url = refused_url();
    let (source, pool) = setup("gitlab", &url, &[("projects", "1")], &[]);
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport { .. }), "{err:?}");
    assert_clear(&err, &url, &["connect"]);
}

// ---------------------------------------------------------------- GitHub Actions

const REPO: &str = "octo-org/octo-repo";
const KEDA_RUN: u64 = 30433642;

fn github(server: &MockServer, forge_keys: &[(&str, &str)], labels: &str) -> (Arc<dyn JobSource>, PoolConfig) {
    let mut keys = vec![("repos", REPO)];
    keys.extend_from_slice(forge_keys);
    setup("github", &server.uri(), &keys, &[("labels", labels)])
}

fn runs_path() -> String {
    format!("/repos/{REPO}/actions/runs")
}

fn jobs_path(run: u64) -> String {
    format!("/repos/{REPO}/actions/runs/{run}/jobs")
}

fn gh_runs(ids: &[u64]) -> ResponseTemplate {
    let runs: Vec<_> = ids.iter().map(|id| serde_json::json!({"id": id, "status": "queued"})).collect();
    json(serde_json::json!({"total_count": ids.len(), "workflow_runs": runs}).to_string())
}

fn gh_job(id: u64, status: &str, labels: &[&str]) -> serde_json::Value {
    serde_json::json!({"id": id, "run_id": 1, "status": status, "labels": labels, "created_at": "2026-11-22T09:30:00Z",
        "runner_id": null, "runner_name": null})
}

fn gh_jobs(jobs: &[serde_json::Value]) -> ResponseTemplate {
    json(serde_json::json!({"total_count": jobs.len(), "jobs": jobs}).to_string())
}

/// Runs listing for one status.
async fn mount_runs(server: &MockServer, status: &str, body: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(runs_path()))
        .and(query_param("status", status))
        .and(query_param("per_page", "100"))
        .respond_with(body)
        .mount(server)
        .await;
}

#[tokio::test]
async fn github_counts_queued_and_in_progress_jobs_with_the_api_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(path(runs_path()))
        .and(query_param("status", "queued"))
        .respond_with(json(fixture("github", "actions_runs.status_queued.keda_testfixture.json")))
        .expect(1)
        .mount(&server)
        .await;
    mount_runs(&server, "in_progress", gh_runs(&[77])).await;
    Mock::given(path(jobs_path(KEDA_RUN)))
        .and(query_param("per_page", "100"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(json(fixture("github", "actions_run_jobs.queued_labels.keda_testfixture.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(jobs_path(77)))
        .respond_with(gh_jobs(&[
            gh_job(1, "in_progress", &["self-hosted", "foo"]),
            gh_job(2, "queued", &["self-hosted", "gpu"]),
            gh_job(3, "completed", &["self-hosted"]),
        ]))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "self-hosted,foo,bar");
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    let ids = |v: &[forge_scaler::model::JobRef]| v.iter().map(|j| j.id.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&jobs.pending), ["399444496"]);
    assert_eq!(ids(&jobs.running), ["1"]);
    assert_eq!(jobs.requests, 4);
}

#[tokio::test]
async fn github_in_progress_run_with_queued_jobs_counts_them() {
    let server = MockServer::start().await;
    mount_runs(&server, "queued", json(fixture("github", "actions_runs.empty.keda_testfixture.json"))).await;
    mount_runs(&server, "in_progress", gh_runs(&[5])).await;
    Mock::given(path(jobs_path(5)))
        .respond_with(gh_jobs(&[gh_job(10, "in_progress", &["linux"]), gh_job(11, "queued", &["linux"])]))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "linux");
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len()), (1, 1));
    assert_eq!(jobs.pending[0].created.unwrap().to_rfc3339(), "2026-11-22T09:30:00+00:00");
}

#[tokio::test]
async fn github_a_run_listed_under_both_statuses_counts_once() {
    let server = MockServer::start().await;
    mount_runs(&server, "queued", gh_runs(&[5])).await;
    mount_runs(&server, "in_progress", gh_runs(&[5])).await;
    Mock::given(path(jobs_path(5)))
        .respond_with(gh_jobs(&[gh_job(11, "queued", &["linux"])]))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "linux");
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 1);
}

#[tokio::test]
async fn github_labels_nothing_implied_and_case_insensitive() {
    let server = MockServer::start().await;
    mount_runs(&server, "queued", gh_runs(&[1, 2])).await;
    mount_runs(&server, "in_progress", json(fixture("github", "actions_runs.empty.keda_testfixture.json"))).await;
    // Job 399444496 carries self-hosted,foo,bar (KEDA fixture); run 2 has a job with foo,bar only.
    Mock::given(path(jobs_path(1)))
        .respond_with(json(fixture("github", "actions_run_jobs.queued_labels.keda_testfixture.json")))
        .mount(&server)
        .await;
    Mock::given(path(jobs_path(2)))
        .respond_with(gh_jobs(&[gh_job(20, "queued", &["FOO", "Bar"])]))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "foo,bar");
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!(
        jobs.pending.iter().map(|j| j.id.clone().unwrap()).collect::<Vec<_>>(),
        ["20"],
        "self-hosted is not implied"
    );
    let (source, pool) = github(&server, &[], "Self-Hosted,FOO,bar");
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 2);
}

#[tokio::test]
async fn github_labels_may_be_an_empty_list() {
    let server = MockServer::start().await;
    mount_runs(&server, "queued", gh_runs(&[1, 2])).await;
    mount_runs(&server, "in_progress", json(fixture("github", "actions_runs.empty.keda_testfixture.json"))).await;
    Mock::given(path(jobs_path(1)))
        .respond_with(json(fixture("github", "actions_run_jobs.only_custom_labels.keda_testfixture.json")))
        .mount(&server)
        .await;
    // `labels: []` asks for nothing, so any runner could take it (same job id: counted once).
    Mock::given(path(jobs_path(2)))
        .respond_with(json(fixture("github", "actions_run_jobs.no_labels.keda_testfixture.json")))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "gpu");
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 1, "only the label-less job");
    let (source, pool) = github(&server, &[], "foo,bar");
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 1, "same job id in both runs counts once");
}

#[tokio::test]
async fn github_completed_jobs_of_the_official_example_are_not_demand() {
    let server = MockServer::start().await;
    mount_runs(&server, "queued", gh_runs(&[29679449])).await;
    mount_runs(&server, "in_progress", json(fixture("github", "actions_runs.empty.keda_testfixture.json"))).await;
    Mock::given(path(jobs_path(29679449)))
        .respond_with(json(fixture("github", "actions_run_jobs.official_example.json")))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "self-hosted,linux,x64,gpu");
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len()), (0, 0));
}

#[tokio::test]
async fn github_pagination_follows_link_next() {
    let server = MockServer::start().await;
    let next = format!("<{}{}?status=queued&per_page=100&page=2>; rel=\"next\"", server.uri(), runs_path());
    Mock::given(path(runs_path()))
        .and(query_param("status", "queued"))
        .and(query_param_is_missing("page"))
        .respond_with(gh_runs(&[1]).insert_header("link", next.as_str()))
        .mount(&server)
        .await;
    Mock::given(path(runs_path()))
        .and(query_param("status", "queued"))
        .and(query_param("page", "2"))
        .respond_with(gh_runs(&[2]))
        .expect(1)
        .mount(&server)
        .await;
    mount_runs(&server, "in_progress", gh_runs(&[])).await;
    let next_jobs = format!("<{}{}?per_page=100&page=2>; rel=\"next\"", server.uri(), jobs_path(2));
    Mock::given(path(jobs_path(1))).respond_with(gh_jobs(&[gh_job(1, "queued", &["x"])])).mount(&server).await;
    Mock::given(path(jobs_path(2)))
        .and(query_param_is_missing("page"))
        .respond_with(gh_jobs(&[gh_job(2, "queued", &["x"])]).insert_header("link", next_jobs.as_str()))
        .mount(&server)
        .await;
    Mock::given(path(jobs_path(2)))
        .and(query_param("page", "2"))
        .respond_with(gh_jobs(&[gh_job(3, "in_progress", &["x"])]))
        .expect(1)
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "x");
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.running.len(), jobs.requests), (2, 1, 6));
}

#[tokio::test]
async fn github_etag_304_costs_no_quota() {
    let server = MockServer::start().await;
    mount_runs(&server, "in_progress", gh_runs(&[])).await;
    let not_modified = || ResponseTemplate::new(304).insert_header("x-ratelimit-remaining", "4990");
    Mock::given(path(runs_path()))
        .and(query_param("status", "queued"))
        .and(header("if-none-match", "\"runs-q\""))
        .respond_with(not_modified())
        .with_priority(1)
        .mount(&server)
        .await;
    mount_runs(&server, "queued", gh_runs(&[5]).insert_header("etag", "\"runs-q\"")).await;
    Mock::given(path(jobs_path(5)))
        .and(header("if-none-match", "W/\"jobs-5\""))
        .respond_with(not_modified())
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(jobs_path(5)))
        .respond_with(gh_jobs(&[gh_job(11, "queued", &["linux"])]).insert_header("etag", "W/\"jobs-5\""))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "linux");
    let first = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((first.pending.len(), first.requests), (1, 3));
    let second = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!(second.pending, first.pending, "a 304 reuses the cached body");
    // The in_progress listing had no ETag, so it is the one request that costs quota.
    assert_eq!(second.requests, 1);
    let revalidated =
        server.received_requests().await.unwrap().iter().filter(|r| r.headers.contains_key("if-none-match")).count();
    assert_eq!(revalidated, 2);
}

#[tokio::test]
async fn github_rate_limit_spent_means_no_request_until_reset() {
    let server = MockServer::start().await;
    let reset = (chrono::Utc::now().timestamp() + 1800).to_string();
    Mock::given(path(runs_path()))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.as_str())
                .set_body_string(r#"{"message":"API rate limit exceeded"}"#),
        )
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "linux");
    for _ in 0..3 {
        let err = source.jobs(&pool, deadline()).await.unwrap_err();
        match &err {
            ForgeError::RateLimited { reset_in, .. } => {
                assert!(*reset_in > Duration::from_secs(1700) && *reset_in <= Duration::from_secs(1800), "{reset_in:?}")
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        assert_clear(&err, "/actions/runs", &["rate limit"]);
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "no request until the reset");
}

#[tokio::test]
async fn github_secondary_limit_429_retry_after_pauses_requests() {
    let server = MockServer::start().await;
    Mock::given(path(runs_path()))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "linux");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(
        matches!(err, ForgeError::RateLimited { reset_in, .. } if reset_in <= Duration::from_secs(120) && reset_in > Duration::from_secs(100)),
        "{err:?}"
    );
    assert!(matches!(source.jobs(&pool, deadline()).await.unwrap_err(), ForgeError::RateLimited { .. }));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn github_success_leaving_no_quota_blocks_the_next_tick() {
    let server = MockServer::start().await;
    let reset = (chrono::Utc::now().timestamp() + 600).to_string();
    mount_runs(&server, "queued", gh_runs(&[])).await;
    mount_runs(
        &server,
        "in_progress",
        gh_runs(&[]).insert_header("x-ratelimit-remaining", "0").insert_header("x-ratelimit-reset", reset.as_str()),
    )
    .await;
    let (source, pool) = github(&server, &[], "linux");
    assert_eq!(source.jobs(&pool, deadline()).await.unwrap().pending.len(), 0);
    assert!(matches!(source.jobs(&pool, deadline()).await.unwrap_err(), ForgeError::RateLimited { .. }));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn github_403_with_quota_left_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(path(runs_path()))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "4999")
                .set_body_string(r#"{"message":"Resource not accessible by personal access token"}"#),
        )
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "linux");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 403, .. }), "{err:?}");
    assert_clear(&err, "/actions/runs", &["unauthorized", "token"]);
}

#[tokio::test]
async fn github_401_and_malformed_json_are_clear_errors() {
    let server = MockServer::start().await;
    mount_runs(&server, "queued", ResponseTemplate::new(401).set_body_string(r#"{"message":"Bad credentials"}"#)).await;
    let (source, pool) = github(&server, &[], "linux");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 401, .. }), "{err:?}");
    assert_clear(&err, "/actions/runs", &["unauthorized"]);

    let broken = MockServer::start().await;
    mount_runs(&broken, "queued", json(r#"{"workflow_runs": [{"id": "x"}]}"#.to_string())).await;
    let (source, pool) = github(&broken, &[], "linux");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    assert_clear(&err, "/actions/runs", &["json"]);
}

#[tokio::test]
async fn github_more_requests_than_max_requests_per_tick_is_a_partial_count_of_the_pages_read() {
    let server = MockServer::start().await;
    mount_runs(&server, "queued", gh_runs(&[1, 2, 3])).await;
    mount_runs(&server, "in_progress", gh_runs(&[])).await;
    Mock::given(wiremock::matchers::path_regex(r"/actions/runs/\d+/jobs$"))
        .respond_with(gh_jobs(&[gh_job(1, "queued", &["linux"])]))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[("max_requests_per_tick", "4")], "linux");
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    // Two runs listings and the jobs of runs 1 and 2; run 3's jobs were left unread.
    assert_eq!((jobs.pending.len(), jobs.requests), (1, 4), "job 1 of runs 1 and 2 counts once");
    let why = jobs.partial.expect("the count says it is partial");
    assert!(why.contains("max_requests_per_tick") && why.contains("4 pages"), "{why}");
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn github_pools_of_one_forge_in_one_tick_share_answers_through_the_etag_cache() {
    let server = MockServer::start().await;
    for status in ["queued", "in_progress"] {
        let etag = format!("\"runs-{status}\"");
        Mock::given(path(runs_path()))
            .and(query_param("status", status))
            .and(header("if-none-match", etag.as_str()))
            .respond_with(ResponseTemplate::new(304))
            .with_priority(1)
            .mount(&server)
            .await;
        let ids: &[u64] = if status == "queued" { &[5] } else { &[] };
        mount_runs(&server, status, gh_runs(ids).insert_header("etag", etag.as_str())).await;
    }
    Mock::given(path(jobs_path(5)))
        .and(header("if-none-match", "\"jobs-5\""))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(jobs_path(5)))
        .respond_with(
            gh_jobs(&[gh_job(1, "queued", &["linux"]), gh_job(2, "queued", &["linux", "gpu"])])
                .insert_header("etag", "\"jobs-5\""),
        )
        .mount(&server)
        .await;
    let (source, linux) = github(&server, &[], "linux");
    let mut gpu = linux.clone();
    gpu.labels = Some(vec!["linux".into(), "gpu".into()]);
    // Both pools observed concurrently, as the tick does.
    let (a, b) = futures::join!(source.jobs(&linux, deadline()), source.jobs(&gpu, deadline()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.pending.len(), b.pending.len()), (1, 2));
    assert_eq!(a.requests + b.requests, 3, "the second pool's requests were free 304s");
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
}

#[tokio::test]
async fn gitlab_exactly_max_requests_per_tick_pages_is_enough() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param_is_missing("page"))
        .respond_with(jobs_page(&[gitlab_job(1, "pending", &[])]).insert_header("x-next-page", "2"))
        .mount(&server)
        .await;
    Mock::given(path("/api/v4/projects/1/jobs"))
        .and(query_param("page", "2"))
        .respond_with(jobs_page(&[gitlab_job(2, "pending", &[])]).insert_header("x-next-page", ""))
        .mount(&server)
        .await;
    let (source, pool) = setup(
        "gitlab",
        &server.uri(),
        &[("projects", "1"), ("max_requests_per_tick", "2")],
        &[("run_untagged", "true")],
    );
    let jobs = source.jobs(&pool, deadline()).await.unwrap();
    assert_eq!((jobs.pending.len(), jobs.requests), (2, 2));
    assert_eq!(jobs.partial, None, "the last page was read: the count is whole");
}

#[tokio::test]
async fn github_secondary_limit_403_without_headers_waits_a_minute() {
    let server = MockServer::start().await;
    Mock::given(path(runs_path()))
        .respond_with(ResponseTemplate::new(403).insert_header("x-ratelimit-remaining", "4000").set_body_string(
            r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#,
        ))
        .mount(&server)
        .await;
    let (source, pool) = github(&server, &[], "linux");
    let err = source.jobs(&pool, deadline()).await.unwrap_err();
    assert!(
        matches!(err, ForgeError::RateLimited { reset_in, .. } if reset_in > Duration::from_secs(50) && reset_in <= Duration::from_secs(60)),
        "{err:?}"
    );
    assert!(matches!(source.jobs(&pool, deadline()).await.unwrap_err(), ForgeError::RateLimited { .. }));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
