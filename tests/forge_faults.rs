//! The forge fault matrix (issue 11, item 8, forge side): every forge kind against one
//! loopback fake per cell that misbehaves in one way (accepts and never answers, slow body,
//! slow pages, 5xx, 401/403, 429 with Retry-After, malformed JSON, wrong types,
//! null/[]/{}, oversized body, endless pagination). One test per fault runs every forge
//! kind at once; each cell asserts no panic, one clear error of the right kind (or a count
//! marked partial where the paging rule says so) and that the call ended by its deadline.
//! The fake is a raw HTTP/1.1 server on 127.0.0.1 (wiremock cannot stall mid-body).

use forge_scaler::config::{Config, PoolConfig, RawConfig};
use forge_scaler::forge::{source_for, ForgeError, JobSource};
use forge_scaler::model::PoolJobs;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[path = "support/faulty_forge.rs"]
mod faulty_forge;
use faulty_forge::{FakeForge, Fault};

/// The observation deadline every cell gets.
const DEADLINE: Duration = Duration::from_millis(1500);
/// How late a call may end after its deadline (a shared, busy machine).
const SLACK: Duration = Duration::from_millis(1000);

const TOKEN: &str = "tok-SECRET-in-the-token-1";
const PASSWORD: &str = "pw-SECRET-in-the-userinfo-2";
const QUERY_SECRET: &str = "q-SECRET-in-a-query-value-3";

/// Every forge kind the scaler reads.
const KINDS: [&str; 8] = ["woodpecker", "forgejo", "gitea", "drone", "buildkite", "github", "gitlab", "generic"];

/// The forge kinds that page (and so can be cut short into a partial count).
fn pages(kind: &str) -> bool {
    matches!(kind, "github" | "gitlab" | "gitea")
}

/// A one-forge, one-pool config for `kind` at `url`, and its adapter.
fn setup(kind: &str, url: &str) -> (Arc<dyn JobSource>, PoolConfig) {
    let mut params = vec![
        ("/t/forges/f/kind".to_string(), kind.to_string()),
        ("/t/forges/f/url".to_string(), url.to_string()),
        ("/t/forges/f/token".to_string(), TOKEN.to_string()),
        ("/t/pools/p/forge".to_string(), "f".to_string()),
        ("/t/pools/p/asg".to_string(), "asg-p".to_string()),
    ];
    let extra: &[(&str, &str)] = match kind {
        "github" => &[("forges/f/repos", "acme/app"), ("pools/p/labels", "linux")],
        "gitlab" => &[("forges/f/projects", "1"), ("pools/p/run_untagged", "true")],
        "generic" => &[("forges/f/pending_pointer", "/queue/pending")],
        _ => &[],
    };
    params.extend(extra.iter().map(|(k, v)| (format!("/t/{k}"), v.to_string())));
    let config = Config::validate(&RawConfig::from_params("/t", params)).expect("test config is valid");
    let source = source_for(&config.forges["f"]).expect("adapter builds");
    (source, config.pools[0].clone())
}

/// What one cell observed.
struct Cell {
    kind: &'static str,
    answer: Result<PoolJobs, ForgeError>,
    took: Duration,
    requests: u32,
}

impl Cell {
    fn name(&self, fault: Fault) -> String {
        format!("{} x {fault:?}", self.kind)
    }

    fn error(&self, fault: Fault) -> &ForgeError {
        match &self.answer {
            Err(e) => e,
            Ok(jobs) => panic!("{}: expected an error, got {jobs:?}", self.name(fault)),
        }
    }
}

/// Runs `fault` against every forge kind at once; checks the deadline and the secrets.
async fn every_forge(fault: Fault) -> Vec<Cell> {
    every_forge_by(fault, DEADLINE).await
}

/// As `every_forge`, with another deadline.
async fn every_forge_by(fault: Fault, deadline: Duration) -> Vec<Cell> {
    // Every adapter is built before any clock starts: building an HTTP client costs CPU
    // that would otherwise eat into the cells already running on this thread.
    let mut prepared = Vec::new();
    for kind in KINDS {
        let fake = FakeForge::start(kind, fault).await;
        let base = format!("http://127.0.0.1:{}", fake.port);
        let url = if kind == "generic" { format!("{base}/queue") } else { base };
        let (source, pool) = setup(kind, &url);
        prepared.push((kind, fake, source, pool));
    }
    let cells = prepared.into_iter().map(|(kind, fake, source, pool)| async move {
        let started = Instant::now();
        let answer = source.jobs(&pool, started + deadline).await;
        let took = started.elapsed();
        Cell { kind, answer, took, requests: fake.requests() }
    });
    let cells = futures::future::join_all(cells).await;
    for cell in &cells {
        assert!(cell.took <= deadline + SLACK, "{}: took {:?}, past the deadline", cell.name(fault), cell.took);
        let text = match &cell.answer {
            Ok(jobs) => format!("{jobs:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        assert!(!text.contains(TOKEN), "{}: token in {text}", cell.name(fault));
    }
    cells
}

fn assert_zero_or_decode_error(cells: &[Cell], fault: Fault) {
    for cell in cells {
        match &cell.answer {
            Ok(jobs) => {
                assert!(jobs.pending.is_empty() && jobs.running.is_empty(), "{}: {jobs:?}", cell.name(fault));
                assert_eq!(jobs.partial, None, "{}", cell.name(fault));
            }
            Err(ForgeError::Decode { url, message }) => {
                assert!(url.starts_with("http://127.0.0.1:") && !message.is_empty(), "{}", cell.name(fault))
            }
            Err(other) => panic!("{}: neither zero jobs nor a decode error: {other}", cell.name(fault)),
        }
    }
}

#[tokio::test]
async fn every_forge_that_accepts_and_never_answers_fails_with_a_deadline_error_by_the_deadline() {
    for cell in every_forge(Fault::NeverAnswers).await {
        let err = cell.error(Fault::NeverAnswers);
        assert!(matches!(err, ForgeError::Deadline { .. }), "{}: {err}", cell.name(Fault::NeverAnswers));
        assert!(cell.took >= DEADLINE, "{}: gave up early", cell.name(Fault::NeverAnswers));
        assert!(err.to_string().contains("deadline"), "{err}");
    }
}

#[tokio::test]
async fn every_forge_with_a_slow_body_fails_with_a_deadline_error_by_the_deadline() {
    for cell in every_forge(Fault::SlowBody).await {
        let err = cell.error(Fault::SlowBody);
        assert!(matches!(err, ForgeError::Deadline { .. }), "{}: {err}", cell.name(Fault::SlowBody));
    }
}

#[tokio::test]
async fn every_forge_with_slow_pages_ends_by_the_deadline_paging_forges_with_a_partial_count() {
    for cell in every_forge(Fault::SlowPages).await {
        let name = cell.name(Fault::SlowPages);
        let jobs = cell.answer.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        if pages(cell.kind) {
            let why = jobs.partial.as_deref().unwrap_or_else(|| panic!("{name}: not marked partial: {jobs:?}"));
            assert!(why.contains("deadline"), "{name}: {why}");
            assert!(!why.contains("127.0.0.1") && !why.contains("page="), "{name}: a URL in {why}");
            assert!(cell.requests >= 2, "{name}: {} requests", cell.requests);
        } else {
            assert_eq!((jobs.pending.len(), jobs.partial.as_deref(), cell.requests), (1, None, 1), "{name}");
        }
    }
}

#[tokio::test]
async fn every_forge_answering_5xx_is_a_status_error_with_a_scrubbed_excerpt() {
    for cell in every_forge(Fault::ServerError).await {
        match cell.error(Fault::ServerError) {
            ForgeError::Status { status: 502, message, url } => {
                assert!(message.contains("upstream exploded"), "{message}");
                assert!(message.contains("***"), "the echoed token is masked: {message}");
                assert!(url.starts_with("http://127.0.0.1:"), "{url}");
            }
            other => panic!("{}: {other}", cell.name(Fault::ServerError)),
        }
    }
}

#[tokio::test]
async fn every_forge_answering_401_or_403_is_an_unauthorized_error() {
    for (fault, want) in [(Fault::Unauthorized, 401), (Fault::Forbidden, 403)] {
        for cell in every_forge(fault).await {
            match cell.error(fault) {
                ForgeError::Unauthorized { status, .. } => assert_eq!(*status, want, "{}", cell.name(fault)),
                other => panic!("{}: {other}", cell.name(fault)),
            }
            assert_eq!(cell.requests, 1, "{}: no retry of a refused token", cell.name(fault));
        }
    }
}

#[tokio::test]
async fn every_forge_answering_429_with_retry_after_is_a_rate_limit_error_saying_when() {
    for cell in every_forge(Fault::TooManyRequests).await {
        match cell.error(Fault::TooManyRequests) {
            ForgeError::RateLimited { reset_in, .. } => {
                assert_eq!(*reset_in, Duration::from_secs(30), "{}", cell.name(Fault::TooManyRequests))
            }
            other => panic!("{}: {other}", cell.name(Fault::TooManyRequests)),
        }
        assert_eq!(cell.requests, 1, "{}: no retry inside the tick", cell.name(Fault::TooManyRequests));
    }
}

#[tokio::test]
async fn every_forge_answering_malformed_json_is_a_decode_error() {
    for cell in every_forge(Fault::MalformedJson).await {
        let err = cell.error(Fault::MalformedJson);
        assert!(matches!(err, ForgeError::Decode { .. }), "{}: {err}", cell.name(Fault::MalformedJson));
    }
}

#[tokio::test]
async fn every_forge_answering_wrong_types_is_a_decode_error() {
    for cell in every_forge(Fault::WrongTypes).await {
        let err = cell.error(Fault::WrongTypes);
        assert!(matches!(err, ForgeError::Decode { .. }), "{}: {err}", cell.name(Fault::WrongTypes));
    }
}

#[tokio::test]
async fn every_forge_answering_null_empty_array_or_empty_object_sees_no_jobs_or_a_decode_error() {
    for fault in [Fault::Null, Fault::EmptyArray, Fault::EmptyObject] {
        let cells = every_forge(fault).await;
        assert_zero_or_decode_error(&cells, fault);
        let generic = cells.iter().find(|c| c.kind == "generic").unwrap();
        assert!(generic.answer.is_err(), "generic x {fault:?}: a missing pointer is never zero");
    }
}

#[tokio::test]
async fn every_forge_answering_an_oversized_body_stops_reading_at_the_cap() {
    // A long deadline: the cap, not the deadline, must end these reads. Every forge streams at
    // once here, so a stream may also meet the process's shared budget for answers in flight
    // first (8 forges x the 8 MiB cap pass 32 MiB): that too ends it, as its own error.
    for fault in [Fault::OversizedAnnounced, Fault::OversizedStream] {
        let mut capped = 0;
        for cell in every_forge_by(fault, Duration::from_secs(8)).await {
            match cell.error(fault) {
                ForgeError::TooLarge { limit, .. } => {
                    assert_eq!(*limit, forge_scaler::forge::http::DEFAULT_MAX_RESPONSE_BYTES, "{}", cell.name(fault));
                    capped += 1;
                }
                ForgeError::MemoryBudget { budget, .. } if fault == Fault::OversizedStream => {
                    assert_eq!(*budget, forge_scaler::forge::http::BODIES_IN_FLIGHT_BYTES, "{}", cell.name(fault))
                }
                other => panic!("{}: {other}", cell.name(fault)),
            }
            let quick =
                if fault == Fault::OversizedAnnounced { Duration::from_secs(3) } else { Duration::from_secs(6) };
            assert!(cell.took < quick, "{}: took {:?}: the cap must end it", cell.name(fault), cell.took);
        }
        assert!(capped >= 1, "{fault:?}: at least one forge must have been stopped by its own cap");
    }
}

#[tokio::test]
async fn every_forge_with_endless_pagination_stops_at_its_budget_paging_forges_with_a_partial_count() {
    // A long deadline: the budget, not the deadline, must end the paging.
    for cell in every_forge_by(Fault::EndlessPagination, Duration::from_secs(8)).await {
        let name = cell.name(Fault::EndlessPagination);
        let jobs = cell.answer.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        let why = jobs.partial.as_deref();
        let (budget, counted) = match cell.kind {
            // Default max_requests_per_tick = 50: the two runs listings, then 48 jobs pages.
            "github" => (50, 48 * 100),
            "gitlab" => (50, 50 * 100),
            // gitea::MAX_PAGES for each of the two statuses.
            "gitea" => (80, 80 * 50),
            _ => (1, 1),
        };
        assert_eq!(cell.requests, budget, "{name}: requests");
        assert_eq!(jobs.pending.len() + jobs.running.len(), counted, "{name}: the pages read, counted once");
        if pages(cell.kind) {
            let why = why.unwrap_or_else(|| panic!("{name}: not marked partial"));
            assert!(why.contains("budget"), "{name}: {why}");
        } else {
            assert_eq!(why, None, "{name}: one answer is a whole answer");
        }
    }
}

#[tokio::test]
async fn every_forge_echoing_the_request_leaks_no_secret_from_the_token_userinfo_or_query() {
    // Secrets everywhere a user could put one: the token, the URL's userinfo, a query value.
    let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let captured = captured.clone();
        move || CaptureWriter(captured.clone())
    };
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(writer).finish();
    let _logs = tracing::subscriber::set_default(subscriber);
    let secrets = [TOKEN, PASSWORD, QUERY_SECRET];
    for fault in [Fault::EchoesTheRequest, Fault::ServerError, Fault::NeverAnswers, Fault::Unauthorized] {
        let mut prepared = Vec::new();
        for kind in KINDS {
            let fake = FakeForge::start(kind, fault).await;
            let path = if kind == "generic" { "/queue" } else { "/" };
            let url = format!("http://ci-user:{PASSWORD}@127.0.0.1:{}{path}?api_key={QUERY_SECRET}", fake.port);
            let (source, pool) = setup(kind, &url);
            prepared.push((kind, fake, source, pool));
        }
        let cells = prepared.into_iter().map(|(kind, _fake, source, pool)| async move {
            let answer = source.jobs(&pool, Instant::now() + Duration::from_millis(500)).await;
            let shown = match &answer {
                Ok(jobs) => format!("{jobs:?}"),
                Err(e) => format!("{e} | {e:?}"),
            };
            (kind, shown, answer.is_err())
        });
        for (kind, shown, failed) in futures::future::join_all(cells).await {
            assert!(failed, "{kind} x {fault:?}: expected an error");
            for secret in secrets {
                assert!(!shown.contains(secret), "{kind} x {fault:?}: {secret} in {shown}");
            }
        }
    }
    let logs = String::from_utf8_lossy(&captured.lock().unwrap()).to_string();
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} in the logs: {logs}");
    }
}

/// A `tracing` writer into a shared buffer.
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
