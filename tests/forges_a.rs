//! Woodpecker, Forgejo, Gitea and Drone adapters against a loopback wiremock server serving
//! the fixtures in tests/fixtures/forges/ (provenance in each SOURCES.md) and hand-written
//! answers for behaviours the fixtures README documents. One test per documented quirk.

use chrono::{DateTime, Utc};
use forge_scaler::config::{Config, PoolConfig};
use forge_scaler::forge::{source_for, ForgeError, JobSource};
use forge_scaler::model::{JobRef, PoolJobs};
use std::sync::Arc;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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
    source.jobs(&pool).await.expect("woodpecker queue reads")
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
    assert_eq!(jobs.pending, vec![JobRef::with_id("4712", at(1_755_870_000))]);
    assert_eq!(jobs.running, vec![JobRef::with_id("4711", at(1_755_870_000))]);
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
    let server = MockServer::start().await;
    Mock::given(path("/api/queue/info"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Unauthorized"))
        .mount(&server)
        .await;
    let (source, pool) = setup("woodpecker", &server.uri(), "", "");
    let err = source.jobs(&pool).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { status: 401, .. }), "{err:?}");
    error_text(&err, "/api/queue/info");
}

#[tokio::test]
async fn woodpecker_malformed_json_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(path("/api/queue/info")).respond_with(json(r#"{"pending": [ {"id": "#)).mount(&server).await;
    let (source, pool) = setup("woodpecker", &server.uri(), "", "");
    let err = source.jobs(&pool).await.unwrap_err();
    assert!(matches!(err, ForgeError::Decode { .. }), "{err:?}");
    error_text(&err, "/api/queue/info");
}

#[tokio::test]
async fn woodpecker_server_error_names_status() {
    let server = MockServer::start().await;
    Mock::given(path("/api/queue/info"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .mount(&server)
        .await;
    let (source, pool) = setup("woodpecker", &server.uri(), "", "");
    let err = source.jobs(&pool).await.unwrap_err();
    let text = error_text(&err, "/api/queue/info");
    assert!(text.contains("502"), "{text}");
}

#[tokio::test]
async fn woodpecker_connection_refused_is_a_transport_error() {
    let url = refused_url();
    let (source, pool) = setup("woodpecker", &url, "", "");
    let err = source.jobs(&pool).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport { .. }), "{err:?}");
    let text = error_text(&err, &url);
    assert!(text.contains("connect"), "{text}");
}

#[tokio::test]
async fn woodpecker_bad_pool_label_is_a_clear_error() {
    let server = MockServer::start().await;
    let (source, pool) = setup("woodpecker", &server.uri(), "", r#"labels = "gpu""#);
    let err = source.jobs(&pool).await.unwrap_err();
    assert!(err.to_string().contains("pools/p/labels") && err.to_string().contains("\"gpu\""), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing is asked for a bad pool");
}

#[tokio::test]
async fn woodpecker_base_url_with_a_path_prefix() {
    let server = MockServer::start().await;
    Mock::given(path("/ci/api/queue/info")).respond_with(json(WP_V3)).expect(1).mount(&server).await;
    let (source, pool) = setup("woodpecker", &format!("{}/ci", server.uri()), "", r#"labels = "platform=linux/amd64""#);
    let jobs = source.jobs(&pool).await.unwrap();
    assert_eq!(jobs.pending.len(), 1);
}
