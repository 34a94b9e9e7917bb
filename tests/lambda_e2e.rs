//! The Lambda end to end against moto (SSM + Auto Scaling) and a Woodpecker-shaped fake forge:
//! the handler called with a `LambdaEvent`, and the real binary driven by the real
//! `lambda_runtime` loop under cargo-lambda's Runtime API emulator (`cargo lambda watch
//! --only-lambda-apis`) with `cargo lambda invoke` and a scheduled-event payload.
//! cargo-lambda must be on PATH (`pip install cargo-lambda`); without it the runtime tests fail.

mod support;

use forge_scaler::app::{self, ConfigSource};
use forge_scaler::lambda::Handler;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{GroupSpec, Moto};

const GROUP: &str = "ci-linux";
const LABELS: &[(&str, &str)] = &[("platform", "linux/amd64")];
const TOKEN: &str = "wp-s3cr3t-token";

fn scheduled_event() -> serde_json::Value {
    serde_json::from_str(&support::fixture("scheduled-event.json")).expect("scheduled-event.json is JSON")
}

/// A valid configuration: one Woodpecker forge, one pool of 2 slots, one tick per invocation.
async fn put_valid_config(sdk: &aws_config::SdkConfig, prefix: &str, forge_url: &str) {
    for (key, value, secure) in [
        ("forges/wp/kind", "woodpecker", false),
        ("forges/wp/url", forge_url, false),
        ("forges/wp/token", TOKEN, true),
        ("pools/linux/forge", "wp", false),
        ("pools/linux/asg", GROUP, false),
        ("pools/linux/labels", "platform=linux/amd64", false),
        ("pools/linux/slots", "2", false),
        ("settings/loop_budget", "0s", false),
    ] {
        support::put_parameter(sdk, &format!("{prefix}/{key}"), value, secure).await;
    }
}

/// Three problems at once: slots = 0, a forge without its token, a pool naming an unknown forge.
async fn put_invalid_config(sdk: &aws_config::SdkConfig, prefix: &str, forge_url: &str) {
    for (key, value) in [
        ("forges/wp/kind", "woodpecker"),
        ("forges/wp/url", forge_url),
        ("pools/linux/forge", "wp"),
        ("pools/linux/asg", GROUP),
        ("pools/linux/slots", "0"),
        ("pools/mac/forge", "nope"),
        ("pools/mac/asg", "ci-mac"),
    ] {
        support::put_parameter(sdk, &format!("{prefix}/{key}"), value, false).await;
    }
}

fn assert_names_every_problem(message: &str) {
    for key in ["pools/linux/slots", "forges/wp/token", "pools/mac/forge"] {
        assert!(message.contains(key), "the error should name {key}: {message}");
    }
    assert!(!message.contains(TOKEN), "no token in errors");
}

// --- the handler, called directly ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_raises_the_group_then_a_second_invocation_changes_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new(GROUP, 0, 10, 1)).await;
    let forge = support::woodpecker_fake(7, LABELS).await;
    put_valid_config(&sdk, "/fs-direct", &forge.uri()).await;
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let handler = Handler::new(
        app::aws_scaler(ConfigSource::Ssm("/fs-direct".into()), &sdk)
            .with_metrics(Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()))),
    );

    let event = lambda_runtime::LambdaEvent::new(scheduled_event(), Default::default());
    let first = handler.handle(event).await.expect("first invocation");
    assert_eq!(first.ticks, 1);
    assert_eq!(first.pools[0].pending, Some(7));
    assert_eq!(first.pools[0].desired, Some(4), "ceil(7 / 2 slots) = 4");
    assert_eq!(support::desired_capacity(&sdk, GROUP).await, 4);
    let tags = support::group_tags(&sdk, GROUP).await;
    assert!(tags.contains_key("forge-scaler:last-scale-out"), "{tags:?}");
    assert_eq!(tags.get("forge-scaler:idle-timeout").map(String::as_str), Some("10m"));

    let event = lambda_runtime::LambdaEvent::new(scheduled_event(), Default::default());
    let second = handler.handle(event).await.expect("second invocation");
    assert_eq!(second.pools[0].raises, 0);
    assert_eq!(support::desired_capacity(&sdk, GROUP).await, 4);
    assert_eq!(support::group_tags(&sdk, GROUP).await, tags, "no write at all the second time");

    let lines = lines.lock().unwrap();
    let pool_line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(pool_line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ForgeScaler");
    assert_eq!(pool_line["PendingJobs"], 7);
    assert_eq!(pool_line["DesiredAfter"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_fails_on_invalid_ssm_values_naming_each_and_writes_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new(GROUP, 0, 10, 1)).await;
    let forge = support::woodpecker_fake(7, LABELS).await;
    put_invalid_config(&sdk, "/fs-invalid", &forge.uri()).await;
    let handler = Handler::new(
        app::aws_scaler(ConfigSource::Ssm("/fs-invalid".into()), &sdk).with_metrics(Arc::new(|_: &str| {})),
    );
    let event = lambda_runtime::LambdaEvent::new(scheduled_event(), Default::default());
    let err = handler.handle(event).await.expect_err("an invalid configuration fails the invocation");
    assert!(err.is_invalid_config());
    assert_names_every_problem(&err.to_string());
    assert_eq!(support::desired_capacity(&sdk, GROUP).await, 1);
    assert!(support::group_tags(&sdk, GROUP).await.is_empty());
    assert!(forge.received_requests().await.unwrap_or_default().is_empty(), "the forge was not even read");
}

// --- the real runtime loop under cargo-lambda ---------------------------------------------

/// A child process killed when dropped.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cargo_lambda() -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join("cargo-lambda")).find(|p| p.is_file()));
    found.flatten().unwrap_or_else(|| {
        panic!(
            "cargo-lambda is not on PATH: the Lambda runtime tests need it \
             (python -m venv venv && venv/bin/pip install cargo-lambda && export PATH=$PWD/venv/bin:$PATH); \
             they are not skipped without it"
        )
    })
}

/// cargo-lambda's Runtime API emulator on a free port, plus the real binary polling it.
struct Emulator {
    port: u16,
    _function: Killed,
    _emulator: Killed,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Emulator {
    fn start(moto: &Moto, prefix: &str) -> Emulator {
        let cargo_lambda = cargo_lambda();
        let dir = tempfile::tempdir().unwrap();
        let port = support::free_port();
        let log = dir.path().join("emulator.log");
        let emulator = Command::new(&cargo_lambda)
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("emulator.err")).unwrap())
            .spawn()
            .expect("start cargo lambda watch");
        let emulator = Killed(emulator);
        wait_for_port(port, Duration::from_secs(60), &dir.path().join("emulator.err"));
        let function_log = dir.path().join("function.log");
        let function = Command::new(env!("CARGO_BIN_EXE_forge-scaler"))
            .envs(moto.env())
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("FORGE_SCALER_SSM_PREFIX", prefix)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("function.out")).unwrap())
            .stderr(std::fs::File::create(&function_log).unwrap())
            .spawn()
            .expect("start the forge-scaler binary");
        Emulator { port, _function: Killed(function), _emulator: emulator, log: function_log, _dir: dir }
    }

    /// `cargo lambda invoke` with the scheduled-event payload: Ok(response JSON) or Err(output).
    async fn invoke(&self) -> Result<serde_json::Value, String> {
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scheduled-event.json");
        let out = tokio::process::Command::new(cargo_lambda())
            .args(["lambda", "invoke", "_", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&data)
            .args(["--output-format", "json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), out)
            .await
            .expect("cargo lambda invoke did not answer within 120 s")
            .expect("run cargo lambda invoke");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.success() {
            serde_json::from_str(&stdout).map_err(|e| format!("response is not JSON ({e}): {stdout}"))
        } else {
            Err(format!("{stdout}\n{stderr}"))
        }
    }

    fn function_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn wait_for_port(port: u16, limit: Duration, log: &std::path::Path) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cargo lambda watch did not listen on {port}: {}", std::fs::read_to_string(log).unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_loop_raises_on_a_scheduled_event_and_then_changes_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new(GROUP, 0, 10, 1)).await;
    let forge = support::woodpecker_fake(7, LABELS).await;
    put_valid_config(&sdk, "/fs-runtime", &forge.uri()).await;
    let emulator = Emulator::start(&moto, "/fs-runtime");

    let first = emulator.invoke().await.unwrap_or_else(|e| panic!("first invoke: {e}\n{}", emulator.function_log()));
    assert_eq!(first["ticks"], 1, "{first}");
    assert_eq!(first["pools"][0]["pool"], "linux");
    assert_eq!(first["pools"][0]["desired"], 4);
    assert_eq!(first["pools"][0]["raises"], 1);
    assert_eq!(support::desired_capacity(&sdk, GROUP).await, 4);
    let tags = support::group_tags(&sdk, GROUP).await;

    let second = emulator.invoke().await.unwrap_or_else(|e| panic!("second invoke: {e}\n{}", emulator.function_log()));
    assert_eq!(second["pools"][0]["raises"], 0, "{second}");
    assert_eq!(second["pools"][0]["desired"], 4);
    assert_eq!(support::desired_capacity(&sdk, GROUP).await, 4);
    assert_eq!(support::group_tags(&sdk, GROUP).await, tags);

    let log = emulator.function_log();
    assert!(log.lines().any(|l| l.starts_with('{') && l.contains("pool ticked")), "JSON logs: {log}");
    assert!(!log.contains(TOKEN), "no token in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_loop_fails_the_invocation_on_invalid_ssm_values_with_no_aws_write() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new(GROUP, 0, 10, 1)).await;
    let forge = support::woodpecker_fake(7, LABELS).await;
    put_invalid_config(&sdk, "/fs-runtime-invalid", &forge.uri()).await;
    let emulator = Emulator::start(&moto, "/fs-runtime-invalid");

    let err = emulator.invoke().await.expect_err("an invalid configuration fails the invocation");
    assert!(err.contains("ConfigInvalid"), "{err}");
    assert_names_every_problem(&err);
    assert_eq!(support::desired_capacity(&sdk, GROUP).await, 1);
    assert!(support::group_tags(&sdk, GROUP).await.is_empty());
    assert!(forge.received_requests().await.unwrap_or_default().is_empty());
}
