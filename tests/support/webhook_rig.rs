//! A running `forge-scaler run --webhook-listen 127.0.0.1:0` against moto and a fake GitHub
//! (one repository, whose queued jobs the rig sets), for tests/webhooks.rs and
//! benches/webhooks.rs. Everything on loopback; the child is killed on drop.
#![allow(dead_code)]

use super::support::{self, GroupSpec, Moto};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const BIN: &str = env!("CARGO_BIN_EXE_forge-scaler");
pub const SECRET: &str = "webhook-rig-hook-secret";
pub const TOKEN: &str = "webhook-rig-forge-token";
pub const GROUP: &str = "ci-webhooks";
pub const FORGE: &str = "gh";

/// The fake GitHub's queue: `generation` makes fresh job ids (a new job each time), `queued`
/// how many jobs wait.
#[derive(Default)]
pub struct Queue {
    pub generation: AtomicU32,
    pub queued: AtomicU32,
}

struct FakeGithub(Arc<Queue>);

impl Respond for FakeGithub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let status = request.url.query_pairs().find(|(k, _)| k == "status").map(|(_, v)| v.to_string());
        let generation = self.0.generation.load(Ordering::SeqCst);
        let queued = self.0.queued.load(Ordering::SeqCst);
        let created = chrono::Utc::now().to_rfc3339();
        let body = if path.ends_with("/actions/runs") {
            if status.as_deref() == Some("queued") && queued > 0 {
                serde_json::json!({"total_count": 1, "workflow_runs": [{"id": 1000 + generation}]})
            } else {
                serde_json::json!({"total_count": 0, "workflow_runs": []})
            }
        } else if path.ends_with("/jobs") {
            let jobs: Vec<_> = (0..queued)
                .map(|i| {
                    serde_json::json!({"id": generation * 1000 + i, "status": "queued",
                    "labels": ["self-hosted", "linux", "x64"], "created_at": created})
                })
                .collect();
            serde_json::json!({"total_count": jobs.len(), "jobs": jobs})
        } else {
            return ResponseTemplate::new(404);
        };
        ResponseTemplate::new(200).set_body_json(body)
    }
}

pub struct Rig {
    pub moto: Moto,
    pub sdk: aws_config::SdkConfig,
    pub forge: MockServer,
    pub queue: Arc<Queue>,
    /// `http://127.0.0.1:PORT/webhooks/gh`
    pub url: String,
    pub http: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Starts moto (one group, 0..100), the fake forge (nothing queued) and the scaler with
    /// `poll_interval`; returns once the webhook server listens and the first tick is done.
    pub async fn start(poll_interval: &str) -> Rig {
        let moto = Moto::start();
        let sdk = moto.sdk().await;
        support::create_group(&sdk, &GroupSpec::new(GROUP, 0, 100, 0)).await;
        let queue = Arc::new(Queue::default());
        let forge = MockServer::start().await;
        Mock::given(method("GET")).respond_with(FakeGithub(queue.clone())).mount(&forge).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            r#"[settings]
poll_interval = "{poll_interval}"

[forges.{FORGE}]
kind = "github"
url = "{forge}"
repos = "octo-org/example-workflow"
token_env = "RIG_FORGE_TOKEN"
webhook_secret_env = "RIG_WEBHOOK_SECRET"

[pools.linux]
forge = "{FORGE}"
asg = "{GROUP}"
labels = "self-hosted,linux,x64"
scale_out_cooldown = "0s"
"#,
            forge = forge.uri()
        );
        let config_path = dir.path().join("forge-scaler.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut command = tokio::process::Command::new(BIN);
        command
            .args(["run", "--config"])
            .arg(&config_path)
            .args(["--webhook-listen", "127.0.0.1:0"])
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_DEFAULT_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env_remove("RUST_LOG")
            .env("AWS_CONFIG_FILE", dir.path().join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("no-aws-credentials"))
            .env("RIG_FORGE_TOKEN", TOKEN)
            .env("RIG_WEBHOOK_SECRET", SECRET)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in moto.env() {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start forge-scaler run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = tokio::sync::oneshot::channel::<String>();
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut port_tx = Some(port_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("webhooks: listening on http://") {
                    if let Some(tx) = port_tx.take() {
                        let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                    }
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let addr = match tokio::time::timeout(Duration::from_secs(30), port_rx).await {
            Ok(Ok(addr)) => addr,
            _ => panic!("forge-scaler did not say where it listens: {}", stderr.lock().unwrap()),
        };
        let rig = Rig {
            moto,
            sdk,
            forge,
            queue,
            url: format!("http://{addr}/webhooks/{FORGE}"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client"),
            stderr,
            child,
            _dir: dir,
        };
        rig.wait_for("the first tick", Duration::from_secs(30), || async { rig.ticks().await >= 1 }).await;
        // The first tick's SetDesiredCapacity/tags are written after the forge read: let it end.
        tokio::time::sleep(Duration::from_millis(300)).await;
        rig
    }

    /// Ticks the scaler ran so far: each reads the queued runs exactly once.
    pub async fn ticks(&self) -> usize {
        let requests = self.forge.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| {
                r.url.path().ends_with("/actions/runs") && r.url.query().unwrap_or("").contains("status=queued")
            })
            .count()
    }

    /// Every request the fake forge received so far.
    pub async fn forge_requests(&self) -> usize {
        self.forge.received_requests().await.unwrap_or_default().len()
    }

    /// Makes `queued` fresh jobs wait at the forge.
    pub fn set_queue(&self, queued: u32) {
        self.queue.generation.fetch_add(1, Ordering::SeqCst);
        self.queue.queued.store(queued, Ordering::SeqCst);
    }

    pub async fn desired(&self) -> i32 {
        support::desired_capacity(&self.sdk, GROUP).await
    }

    /// What the scaler printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls `done` every 10 ms; panics (with stderr) when `within` passes first.
    pub async fn wait_for<F, Fut>(&self, what: &str, within: Duration, done: F) -> Duration
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !done().await {
            assert!(start.elapsed() < within, "{what} did not happen within {within:?}: {}", self.stderr());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        start.elapsed()
    }

    /// POSTs `body` with `headers`; returns the status.
    pub async fn post(&self, headers: &[(&str, String)], body: Vec<u8>) -> u16 {
        let mut request = self.http.post(&self.url).body(body);
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        request.send().await.expect("webhook POST").status().as_u16()
    }

    /// A `workflow_job` webhook signed with `secret`.
    pub async fn post_github(&self, event: &str, body: &[u8], secret: &str) -> u16 {
        let signature = format!("sha256={}", forge_scaler::webhook::sign::hmac_sha256_hex(secret, &[body]));
        self.post(
            &[
                ("x-github-event", event.to_string()),
                ("x-hub-signature-256", signature),
                ("content-type", "application/json".to_string()),
            ],
            body.to_vec(),
        )
        .await
    }

    pub async fn stop(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        self.stderr()
    }
}

/// The queued `workflow_job` fixture.
pub fn queued_job() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/github-workflow-job-queued.json"))
        .expect("fixture")
}
