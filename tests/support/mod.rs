//! Test harness shared by the integration tests (`mod support;`): a `moto_server` on a free
//! loopback port (killed on drop), an `SdkConfig` pointed at it with dummy credentials,
//! helpers that create groups and parameters in moto and read them back, a stub that serves a
//! fixed AWS error body (for the error paths moto cannot produce), and a Woodpecker-shaped fake
//! forge. Everything listens on 127.0.0.1 only; nothing here skips a test.
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// The availability zone moto places test groups in.
pub const ZONE: &str = "us-east-1a";
/// moto's own example AMI (moto does not validate AMIs, but this one exists there).
pub const AMI: &str = "ami-12c6146b";
/// Dummy credentials: moto accepts anything, AWS would refuse these.
pub const ACCESS_KEY_ID: &str = "AKIDFORGESCALERTEST";
pub const SECRET_ACCESS_KEY: &str = "forge-scaler-dummy-secret";

/// How long moto_server may take to start answering.
const MOTO_START_TIMEOUT: Duration = Duration::from_secs(60);

/// A `moto_server` process on a free 127.0.0.1 port; killed when dropped.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto_server and waits until it answers. Panics (never skips) if moto_server is
    /// not on PATH or does not come up.
    pub fn start() -> Moto {
        let mut last_failure = String::new();
        // A free port can be taken between our probe and moto's bind: try a few ports.
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("temp dir for the moto_server log");
            let log = dir.path().join("moto_server.log");
            let log_file = std::fs::File::create(&log).expect("moto_server log file");
            let spawned = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log handle"))
                .stderr(log_file)
                .spawn();
            let child = match spawned {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "moto_server is not on PATH: these tests need it (pip install 'moto[server]==5.2.1'); \
                     they are not skipped without it"
                ),
                Err(e) => panic!("cannot start moto_server: {e}"),
            };
            let mut moto = Moto { child, port, log, _dir: dir };
            match moto.wait_until_ready() {
                Ok(()) => return moto,
                Err(why) => last_failure = why,
            }
        }
        panic!("moto_server did not start: {last_failure}");
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < MOTO_START_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto_server exited with {status}: {}", self.log_tail()));
            }
            if answers_http(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("no answer on port {} within {MOTO_START_TIMEOUT:?}: {}", self.port, self.log_tail()))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url` or `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK configuration pointed at this moto.
    pub async fn sdk(&self) -> SdkConfig {
        sdk_config(&self.endpoint()).await
    }

    /// The environment the real binary needs to talk to this moto and nothing else.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        aws_env(&self.endpoint())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `forge-scaler` binary `bin` run in the crate root with only `endpoint` as AWS: none
/// of the user's AWS setup (profiles and config files point into `scratch`, where they do
/// not exist), `RUST_LOG` unset, and the forge token in the environment variable `token.0`.
pub fn cli_command(
    bin: &str,
    endpoint: &str,
    scratch: &std::path::Path,
    token: (&str, &str),
    args: &[&str],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(bin);
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("RUST_LOG")
        .env("AWS_CONFIG_FILE", scratch.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", scratch.join("no-aws-credentials"))
        .env(token.0, token.1)
        .kill_on_drop(true);
    for (key, value) in aws_env(endpoint) {
        command.env(key, value);
    }
    command
}

/// The environment a child process needs to reach `endpoint` with dummy credentials.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local address").port()
}

fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut first = [0u8; 12];
    matches!(stream.read(&mut first), Ok(n) if n >= 8 && first.starts_with(b"HTTP/"))
}

/// An SDK configuration for `endpoint`: region us-east-1, static dummy credentials, the
/// SDK's standard retries. Built explicitly, so the process environment does not matter.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "forge-scaler-tests",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// As `sdk_config`, with retries off: for stubs that always answer the same error.
pub async fn sdk_config_without_retries(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "forge-scaler-tests",
        ))
        .endpoint_url(endpoint)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// A group to create in moto.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub name: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub tags: Vec<(String, String)>,
}

impl GroupSpec {
    pub fn new(name: &str, min: i32, max: i32, desired: i32) -> Self {
        GroupSpec { name: name.to_string(), min, max, desired, tags: vec![] }
    }
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.push((key.to_string(), value.to_string()));
        self
    }
}

/// Creates a launch configuration (moto accepts them; new AWS accounts cannot).
pub async fn create_launch_configuration(sdk: &SdkConfig, name: &str) {
    aws_sdk_autoscaling::Client::new(sdk)
        .create_launch_configuration()
        .launch_configuration_name(name)
        .image_id(AMI)
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto: create launch configuration {name}: {}", sdk_error_text(&e)));
}

/// Creates an Auto Scaling Group (and a launch configuration named after it) in moto.
pub async fn create_group(sdk: &SdkConfig, group: &GroupSpec) {
    let launch_configuration = format!("{}-lc", group.name);
    create_launch_configuration(sdk, &launch_configuration).await;
    let tags: Vec<aws_sdk_autoscaling::types::Tag> = group
        .tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(&group.name)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(false)
                .build()
        })
        .collect();
    aws_sdk_autoscaling::Client::new(sdk)
        .create_auto_scaling_group()
        .auto_scaling_group_name(&group.name)
        .launch_configuration_name(&launch_configuration)
        .min_size(group.min)
        .max_size(group.max)
        .desired_capacity(group.desired)
        .availability_zones(ZONE)
        .set_tags(if tags.is_empty() { None } else { Some(tags) })
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto: create group {}: {}", group.name, sdk_error_text(&e)));
}

/// A group's desired capacity as moto holds it.
pub async fn desired_capacity(sdk: &SdkConfig, group: &str) -> i32 {
    describe_group(sdk, group).await.desired_capacity().unwrap_or_else(|| panic!("group {group} has no desired"))
}

/// A group's tags as moto holds them.
pub async fn group_tags(sdk: &SdkConfig, group: &str) -> std::collections::BTreeMap<String, String> {
    describe_group(sdk, group)
        .await
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect()
}

async fn describe_group(sdk: &SdkConfig, group: &str) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    let answer = aws_sdk_autoscaling::Client::new(sdk)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto: describe {group}: {}", sdk_error_text(&e)));
    answer.auto_scaling_groups().first().cloned().unwrap_or_else(|| panic!("moto has no group {group}"))
}

/// Writes one SSM parameter in moto (SecureString when `secure`).
pub async fn put_parameter(sdk: &SdkConfig, name: &str, value: &str, secure: bool) {
    let kind = if secure {
        aws_sdk_ssm::types::ParameterType::SecureString
    } else {
        aws_sdk_ssm::types::ParameterType::String
    };
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto: put parameter {name}: {}", sdk_error_text(&e)));
}

/// One SSM parameter's decrypted value as moto holds it.
pub async fn get_parameter(sdk: &SdkConfig, name: &str) -> String {
    aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto: get parameter {name}: {}", sdk_error_text(&e)))
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default()
        .to_string()
}

fn sdk_error_text<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A fixture file from tests/fixtures/, as text.
pub fn fixture(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A stub that answers every request with one fixed AWS error: `status`, `content_type`, the
/// body, and any extra headers (SSM's `x-amzn-ErrorType`). Point an `SdkConfig` at `uri()`.
pub async fn aws_error_stub(status: u16, content_type: &str, body: &str, headers: &[(&str, &str)]) -> MockServer {
    let server = MockServer::start().await;
    let mut response = ResponseTemplate::new(status)
        .insert_header("content-type", content_type)
        .insert_header("x-amzn-requestid", "6942d58c-7708-426a-bcbf-035b12fb4396")
        .set_body_raw(body.as_bytes().to_vec(), content_type);
    for (name, value) in headers {
        response = response.insert_header(*name, *value);
    }
    Mock::given(wiremock::matchers::any()).respond_with(response).mount(&server).await;
    server
}

/// The Auto Scaling (AWS Query) error stub: XML `ErrorResponse` with HTTP 400.
pub async fn autoscaling_error_stub(body: &str) -> MockServer {
    aws_error_stub(400, "text/xml", body, &[]).await
}

/// The SSM (AWS JSON 1.1) error stub: `{"__type": code, ...}` with HTTP 400.
pub async fn ssm_error_stub(code: &str, body: &str) -> MockServer {
    aws_error_stub(400, "application/x-amz-json-1.1", body, &[("x-amzn-ErrorType", code)]).await
}

/// One task in the Woodpecker fake's queue: its labels (`k=v`).
pub fn woodpecker_task(id: u32, labels: &[(&str, &str)]) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> =
        labels.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect();
    serde_json::json!({
        "id": id.to_string(),
        "labels": labels,
        "dependencies": null,
        "run_on": null,
        "dep_status": {},
        "agent_id": 0
    })
}

/// The body of Woodpecker's `GET /api/queue/info` (>= 3.10 shape: empty lists are `[]`)
/// with `pending` tasks each carrying `labels`.
pub fn woodpecker_queue_info(pending: u32, labels: &[(&str, &str)]) -> serde_json::Value {
    let tasks: Vec<serde_json::Value> = (1..=pending).map(|id| woodpecker_task(id, labels)).collect();
    serde_json::json!({
        "pending": tasks,
        "waiting_on_deps": [],
        "running": [],
        "stats": {
            "worker_count": 0,
            "pending_count": pending,
            "waiting_on_deps_count": 0,
            "running_count": 0
        },
        "paused": false
    })
}

/// A Woodpecker-shaped fake forge: `GET /api/queue/info` answers `pending` tasks with
/// `labels`. Its `uri()` is the forge's `url`.
pub async fn woodpecker_fake(pending: u32, labels: &[(&str, &str)]) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/queue/info"))
        .respond_with(ResponseTemplate::new(200).set_body_json(woodpecker_queue_info(pending, labels)))
        .mount(&server)
        .await;
    server
}

/// A Woodpecker-shaped fake that answers `GET /api/queue/info` with a fixed status and body
/// (malformed JSON, 401, ...).
pub async fn woodpecker_broken(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/queue/info"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json"))
        .mount(&server)
        .await;
    server
}
