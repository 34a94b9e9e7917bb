//! Webhook-triggered ticks end to end: the real binary (`run --webhook-listen 127.0.0.1:0`,
//! poll interval 10 minutes) against moto and a fake GitHub. A signed job webhook raises the
//! group within a second; a bad signature, an unrelated payload and an oversize body cause
//! no tick (the fake forge counts every request; a tick always reads it first); a flood is
//! coalesced. The Lambda Function URL path runs under cargo-lambda's emulator (`cargo lambda
//! watch`, which also serves Function URLs), with the real binary and the real runtime loop.

mod support;
#[path = "support/webhook_rig.rs"]
mod webhook_rig;

use std::time::Duration;
use webhook_rig::{queued_job, Rig, SECRET, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_raises_the_group_within_a_second_while_the_poll_interval_is_ten_minutes() {
    let rig = Rig::start("10m").await;
    assert_eq!(rig.desired().await, 0, "nothing queued at the first tick");
    rig.set_queue(3);
    let sent = std::time::Instant::now();
    assert_eq!(rig.post_github("workflow_job", &queued_job(), SECRET).await, 202);
    rig.wait_for("desired 3", Duration::from_secs(5), || async { rig.desired().await == 3 }).await;
    let reaction = sent.elapsed();
    assert!(reaction < Duration::from_secs(1), "webhook -> desired 3 took {reaction:?}");
    assert_eq!(rig.ticks().await, 2, "the first tick and the webhook's");
    let stderr = rig.stop().await;
    assert!(!stderr.contains(SECRET) && !stderr.contains(TOKEN), "a secret leaked: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_an_unrelated_payload_and_an_oversize_body_cause_no_tick() {
    let rig = Rig::start("10m").await;
    rig.set_queue(2);
    let before = rig.forge_requests().await;
    // Wrong secret, no signature at all.
    assert_eq!(rig.post_github("workflow_job", &queued_job(), "not-the-secret").await, 401);
    assert_eq!(rig.post(&[("x-github-event", "workflow_job".into())], queued_job()).await, 401);
    // Authentic but unrelated: a ping, a completed job, a job for labels no pool has.
    let ping = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/github-ping.json")).unwrap();
    assert_eq!(rig.post_github("ping", &ping, SECRET).await, 200);
    let completed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/webhooks/github-workflow-job-completed.json"
    ))
    .unwrap();
    assert_eq!(rig.post_github("workflow_job", &completed, SECRET).await, 200);
    let gpu = String::from_utf8(queued_job()).unwrap().replace(r#""linux", "x64""#, r#""gpu""#);
    assert_eq!(rig.post_github("workflow_job", gpu.as_bytes(), SECRET).await, 200);
    // Over 1 MiB, even when correctly signed.
    let mut big = queued_job();
    big.resize(1024 * 1024 + 1, b' ');
    assert_eq!(rig.post_github("workflow_job", &big, SECRET).await, 413);
    // Over 1 MiB without a Content-Length (chunked): cut off while reading.
    assert_eq!(chunked_post(&rig.url, 1024 * 1024 + 1).await, 413);
    // Unknown forge, wrong method.
    let other = rig.url.replace("/webhooks/gh", "/webhooks/nope");
    let status = rig.http.post(&other).body(queued_job()).send().await.unwrap().status().as_u16();
    assert_eq!(status, 404);
    assert_eq!(rig.http.get(&rig.url).send().await.unwrap().status().as_u16(), 405);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.forge_requests().await, before, "no tick: the forge was not asked anything");
    assert_eq!(rig.desired().await, 0, "and the group was not raised");
    let stderr = rig.stop().await;
    assert!(stderr.contains("unauthorized webhook"), "{stderr}");
}

/// POSTs `size` bytes chunked (no Content-Length) over a raw connection; returns the status.
async fn chunked_post(url: &str, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nx-github-event: workflow_job\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = chunk.len().min(size - sent);
        let frame = [format!("{n:x}\r\n").into_bytes(), chunk[..n].to_vec(), b"\r\n".to_vec()].concat();
        if stream.write_all(&frame).await.is_err() {
            break; // the server may answer and close before the whole body is sent
        }
        sent += n;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer[..n]).to_string();
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_valid_webhooks_is_coalesced_into_a_few_ticks() {
    let rig = Rig::start("10m").await;
    rig.set_queue(1);
    let before = rig.ticks().await;
    let body = queued_job();
    let flood: Vec<_> = (0..50).map(|_| rig.post_github("workflow_job", &body, SECRET)).collect();
    let statuses = futures::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    rig.wait_for("desired 1", Duration::from_secs(5), || async { rig.desired().await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ticks = rig.ticks().await - before;
    // One tick in flight plus one queued at any time; the 50 requests arrive within a few
    // ticks' time, so a handful of ticks serve them all.
    eprintln!("50 webhooks made {ticks} ticks");
    assert!((1..=5).contains(&ticks), "50 webhooks made {ticks} ticks");
    rig.stop().await;
}

// --- the Lambda Function URL under cargo-lambda's emulator ----------------------------------

/// A child process killed when dropped.
struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo lambda watch --only-lambda-apis` on a free port (it also serves Function URLs at
/// `/lambda-url/<function>/<path>`), and the real binary polling it as function `_`.
struct FunctionUrl {
    base: String,
    log: std::path::PathBuf,
    _function: Killed,
    _emulator: Killed,
    _dir: tempfile::TempDir,
}

impl FunctionUrl {
    fn start(moto: &support::Moto, prefix: &str) -> FunctionUrl {
        use std::process::{Command, Stdio};
        let cargo_lambda = std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("cargo-lambda")).find(|p| p.is_file()))
            .expect("cargo-lambda is not on PATH (pip install cargo-lambda); this test is not skipped without it");
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        let emulator = Command::new(&cargo_lambda)
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("emulator.err")).unwrap())
            .spawn()
            .expect("start cargo lambda watch");
        let emulator = Killed(emulator);
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "cargo lambda watch did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = dir.path().join("function.log");
        let function = Command::new(env!("CARGO_BIN_EXE_forge-scaler"))
            .envs(moto.env())
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("FORGE_SCALER_SSM_PREFIX", prefix)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the forge-scaler binary");
        FunctionUrl {
            base: format!("http://127.0.0.1:{port}/lambda-url/_"),
            log,
            _function: Killed(function),
            _emulator: emulator,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_url_ticks_on_a_signed_webhook_and_answers_401_to_an_unsigned_one() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let moto = support::Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &support::GroupSpec::new("ci-fn-url", 0, 10, 0)).await;
    let forge = MockServer::start().await;
    let runs = |status: &'static str, body: serde_json::Value| {
        Mock::given(method("GET"))
            .and(path("/repos/octo-org/example-workflow/actions/runs"))
            .and(query_param("status", status))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    runs("queued", serde_json::json!({"total_count": 1, "workflow_runs": [{"id": 7}]})).mount(&forge).await;
    runs("in_progress", serde_json::json!({"total_count": 0, "workflow_runs": []})).mount(&forge).await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/example-workflow/actions/runs/7/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"total_count": 2, "jobs": [
            {"id": 1, "status": "queued", "labels": ["self-hosted", "linux", "x64"], "created_at": chrono::Utc::now().to_rfc3339()},
            {"id": 2, "status": "queued", "labels": ["self-hosted", "linux", "x64"], "created_at": chrono::Utc::now().to_rfc3339()},
        ]})))
        .mount(&forge)
        .await;
    let prefix = "/fs-webhooks";
    for (key, value, secure) in [
        ("forges/gh/kind", "github", false),
        ("forges/gh/url", forge.uri().as_str(), false),
        ("forges/gh/token", TOKEN, true),
        ("forges/gh/repos", "octo-org/example-workflow", false),
        ("forges/gh/webhook_secret", SECRET, true),
        ("pools/linux/forge", "gh", false),
        ("pools/linux/asg", "ci-fn-url", false),
        ("pools/linux/labels", "self-hosted,linux,x64", false),
    ] {
        support::put_parameter(&sdk, &format!("{prefix}/{key}"), value, secure).await;
    }
    let function = FunctionUrl::start(&moto, prefix);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let url = format!("{}/webhooks/gh", function.base);
    let body = queued_job();

    let unsigned = http.post(&url).header("x-github-event", "workflow_job").body(body.clone()).send().await;
    let unsigned = unsigned.unwrap_or_else(|e| panic!("POST: {e}\n{}", function.log()));
    assert_eq!(unsigned.status().as_u16(), 401, "{}", function.log());
    assert!(forge.received_requests().await.unwrap_or_default().is_empty(), "no forge call on 401");
    assert_eq!(support::desired_capacity(&sdk, "ci-fn-url").await, 0);

    let signature = format!("sha256={}", forge_scaler::webhook::sign::hmac_sha256_hex(SECRET, &[&body]));
    let signed = http
        .post(&url)
        .header("x-github-event", "workflow_job")
        .header("x-hub-signature-256", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = signed.status().as_u16();
    let answer = signed.text().await.unwrap_or_default();
    assert_eq!(status, 202, "{answer}\n{}", function.log());
    assert!(answer.contains("linux"), "{answer}");
    assert_eq!(support::desired_capacity(&sdk, "ci-fn-url").await, 2, "the tick ran before the answer");
    let log = function.log();
    assert!(!log.contains(SECRET) && !log.contains(TOKEN), "a secret leaked: {log}");
}
