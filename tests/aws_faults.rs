//! The AWS and SSM cells of the fault matrix (TESTING.md, "Fault matrix"), through the real
//! `forge-scaler` binary: moto_server holds the groups and parameters, and a fault proxy in
//! front of it answers chosen operations with AWS's real error bodies (or never answers),
//! forwarding everything else to moto. Each cell checks: no panic, the faulty pool's group
//! unchanged, exactly one error line naming the operation, the exit status, the other pool
//! still acting where the fault is per-pool, and the run ending within `RUN_BOUND`.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{GroupSpec, Moto};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_forge-scaler");
const TOKEN_VAR: &str = "FORGE_SCALER_FAULTS_WP_TOKEN";
const TOKEN: &str = "wp-faults-secret-token";
const LINUX: &[(&str, &str)] = &[("platform", "linux/amd64")];
/// Every CLI run in these cells ends within this (the SDK's operation timeout is 10 s; a
/// throttled call backs off a few seconds; the machine is slow and shared).
const RUN_BOUND: Duration = Duration::from_secs(30);
/// The group every per-pool fault hits, and the one beside it that must still act.
const FAULTY: &str = "ci-faulty";
const HEALTHY: &str = "ci-healthy";

// ---------------------------------------------------------------------------------------
// The fault proxy: a loopback HTTP/1.1 server that answers matching AWS operations with a
// fault and forwards the rest to moto.
// ---------------------------------------------------------------------------------------

/// What the proxy does with a request a rule matches.
#[derive(Clone, Debug)]
enum Fault {
    /// Answers this status, content type and body, plus headers (SSM's `x-amzn-ErrorType`).
    Answer { status: u16, content_type: &'static str, body: String, headers: Vec<(&'static str, String)> },
    /// Reads the request and never answers.
    Hang,
}

/// A fault for one AWS operation, optionally only when the request names `group`.
#[derive(Clone, Debug)]
struct Rule {
    operation: &'static str,
    group: Option<&'static str>,
    fault: Fault,
}

impl Rule {
    fn on(operation: &'static str, fault: Fault) -> Rule {
        Rule { operation, group: None, fault }
    }
    fn on_group(operation: &'static str, group: &'static str, fault: Fault) -> Rule {
        Rule { operation, group: Some(group), fault }
    }
    fn matches(&self, request: &Request) -> bool {
        request.operation == self.operation && self.group.is_none_or(|g| request.body.contains(&format!("={g}")))
    }
}

/// One request the proxy saw: the operation and whether a fault answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    operation: String,
    faulted: bool,
}

struct FaultProxy {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    async fn start(upstream: &str, rules: Vec<Rule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fault proxy");
        let address = listener.local_addr().expect("proxy address");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
        let (rules, upstream, log) = (Arc::new(rules), upstream.to_string(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rules, upstream, log, client) = (rules.clone(), upstream.clone(), log.clone(), client.clone());
                tokio::spawn(async move { serve(stream, &upstream, &rules, &log, &client).await });
            }
        });
        FaultProxy { address, seen, task }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("proxy log").clone()
    }

    /// How many `operation` requests reached moto (were not faulted).
    fn forwarded(&self, operation: &str) -> usize {
        self.seen().iter().filter(|s| s.operation == operation && !s.faulted).count()
    }

    fn asked(&self, operation: &str) -> usize {
        self.seen().iter().filter(|s| s.operation == operation).count()
    }
}

/// A request as the proxy read it.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
    operation: String,
}

/// Most header bytes and body bytes the proxy reads from one request.
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buffer.len() > MAX_HEADER_BYTES {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    if length > MAX_BODY_BYTES {
        return None;
    }
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&body).to_string();
    // AWS Query (Auto Scaling): `Action=X` in the form body; AWS JSON (SSM): `x-amz-target: AmazonSSM.X`.
    let operation = body
        .split('&')
        .find_map(|p| p.strip_prefix("Action="))
        .map(str::to_string)
        .or_else(|| {
            headers
                .iter()
                .find(|(k, _)| k == "x-amz-target")
                .and_then(|(_, v)| v.rsplit('.').next())
                .map(str::to_string)
        })
        .unwrap_or_default();
    Some(Request { method, target, headers, body, operation })
}

async fn serve(
    mut stream: TcpStream,
    upstream: &str,
    rules: &[Rule],
    log: &Mutex<Vec<Seen>>,
    client: &reqwest::Client,
) {
    let Some(request) = read_request(&mut stream).await else { return };
    let fault = rules.iter().find(|r| r.matches(&request)).map(|r| r.fault.clone());
    log.lock().expect("proxy log").push(Seen { operation: request.operation.clone(), faulted: fault.is_some() });
    let response = match fault {
        Some(Fault::Hang) => {
            // Keep the connection open and silent until the test ends.
            std::future::pending::<()>().await;
            return;
        }
        Some(Fault::Answer { status, content_type, body, headers }) => {
            let mut all = vec![("content-type".to_string(), content_type.to_string())];
            all.extend(headers.into_iter().map(|(k, v)| (k.to_string(), v)));
            all.push(("x-amzn-requestid".to_string(), "7c1d2e3f-aaaa-4bbb-8ccc-0123456789ab".to_string()));
            http_response(status, &all, body.as_bytes())
        }
        None => forward(upstream, request, client).await,
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

async fn forward(upstream: &str, request: Request, client: &reqwest::Client) -> Vec<u8> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut outgoing = client.request(method, format!("{upstream}{}", request.target));
    for (k, v) in &request.headers {
        if !matches!(k.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            outgoing = outgoing.header(k.as_str(), v.as_str());
        }
    }
    match outgoing.body(request.body).send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let headers: Vec<(String, String)> = answer
                .headers()
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "content-length" | "connection" | "transfer-encoding"))
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let body = answer.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            http_response(status, &headers, &body)
        }
        Err(e) => http_response(502, &[], format!("fault proxy: moto did not answer: {e}").as_bytes()),
    }
}

fn http_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown");
    let mut text = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A loopback endpoint that accepts connections, reads nothing and never answers.
async fn hung_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the hung endpoint");
    let address = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (format!("http://{address}"), task)
}

// AWS's error answers (tests/fixtures/aws, SOURCES.md).

fn throttling() -> Fault {
    Fault::Answer {
        status: 400,
        content_type: "text/xml",
        body: support::fixture("aws/throttling.xml"),
        headers: vec![],
    }
}

fn access_denied(action: &str) -> Fault {
    Fault::Answer {
        status: 403,
        content_type: "text/xml",
        body: support::fixture("aws/access_denied.autoscaling.xml").replace("{ACTION}", action),
        headers: vec![],
    }
}

fn above_max_size() -> Fault {
    Fault::Answer {
        status: 400,
        content_type: "text/xml",
        body: support::fixture("aws/set_desired_above_max.validation_error.xml"),
        headers: vec![],
    }
}

fn ssm_error(code: &str, fixture: &str) -> Fault {
    Fault::Answer {
        status: 400,
        content_type: "application/x-amz-json-1.1",
        body: support::fixture(fixture),
        headers: vec![("x-amzn-ErrorType", code.to_string())],
    }
}

// ---------------------------------------------------------------------------------------
// Running the binary.
// ---------------------------------------------------------------------------------------

/// One finished CLI run.
struct Run {
    output: Output,
    elapsed: Duration,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).to_string()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).to_string()
    }
    fn describe(&self) -> String {
        format!(
            "status {:?} after {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code(),
            self.elapsed,
            self.stdout(),
            self.stderr()
        )
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }
    fn pool(&self, name: &str) -> Value {
        let report = self.json();
        report["pools"]
            .as_array()
            .and_then(|pools| pools.iter().find(|p| p["pool"] == name).cloned())
            .unwrap_or_else(|| panic!("no pool {name} in {report}"))
    }
    fn error_lines(&self) -> Vec<String> {
        self.stderr().lines().filter(|l| l.starts_with("error:")).map(str::to_string).collect()
    }
    /// The one `error:` line; fails unless there is exactly one.
    fn one_error_line(&self) -> String {
        let lines = self.error_lines();
        assert_eq!(lines.len(), 1, "expected exactly one error line: {}", self.describe());
        lines[0].clone()
    }
    /// Asserts the status, and that the run neither panicked nor overran `RUN_BOUND`.
    fn assert_ended(&self, code: i32) {
        assert!(!self.stderr().contains("panicked"), "panic: {}", self.describe());
        assert_eq!(self.code(), Some(code), "{}", self.describe());
        assert!(self.elapsed < RUN_BOUND, "took {:?} (bound {RUN_BOUND:?}): {}", self.elapsed, self.describe());
    }
}

/// A temp dir for the config file and for the AWS config files that must not exist.
struct Workdir(tempfile::TempDir);

impl Workdir {
    fn new() -> Self {
        Workdir(tempfile::tempdir().expect("temp dir"))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn config(&self, text: &str) -> String {
        let path = self.path("forge-scaler.toml");
        std::fs::write(&path, text).expect("write the config");
        path.display().to_string()
    }
}

/// The binary with only `endpoint` as AWS, nothing from the user's AWS setup, `RUST_LOG` unset.
fn command(endpoint: &str, workdir: &Workdir, args: &[&str]) -> tokio::process::Command {
    support::cli_command(BIN, endpoint, workdir.0.path(), (TOKEN_VAR, TOKEN), args)
}

/// Runs a command to its end (a hard stop at twice `RUN_BOUND` so a hang fails, not blocks).
async fn finish(mut command: tokio::process::Command, label: &str) -> Run {
    let started = Instant::now();
    let output = tokio::time::timeout(RUN_BOUND * 2, command.output())
        .await
        .unwrap_or_else(|_| panic!("{label}: still running after {:?}", RUN_BOUND * 2))
        .expect("run forge-scaler");
    let run = Run { output, elapsed: started.elapsed() };
    eprintln!("cell timing: {label}: exit {:?} in {:.1?}", run.code(), run.elapsed);
    let text = format!("{}{}", run.stdout(), run.stderr());
    assert!(!text.contains(TOKEN), "{label}: the forge token leaked: {text}");
    assert!(!text.contains(support::SECRET_ACCESS_KEY), "{label}: the AWS secret leaked: {text}");
    run
}

async fn run(endpoint: &str, workdir: &Workdir, args: &[&str]) -> Run {
    finish(command(endpoint, workdir, args), &args.join(" ")).await
}

fn forge_section(name: &str, url: &str) -> String {
    format!("[forges.{name}]\nkind = \"woodpecker\"\nurl = \"{url}\"\ntoken_env = \"{TOKEN_VAR}\"\n")
}

fn pool_section(name: &str, forge: &str, asg: &str) -> String {
    format!("[pools.{name}]\nforge = \"{forge}\"\nasg = \"{asg}\"\nlabels = \"platform=linux/amd64\"\nslots = 1\n")
}

/// moto with two groups at desired 1 (`FAULTY`, `HEALTHY`), a fault proxy in front of it,
/// and a config of two pools `faulty` and `healthy`, each on its own forge with 3 jobs.
struct World {
    _moto: Moto,
    sdk: aws_config::SdkConfig,
    proxy: FaultProxy,
    workdir: Workdir,
    config: String,
    _forges: Vec<wiremock::MockServer>,
}

impl World {
    async fn new(rules: Vec<Rule>) -> World {
        let moto = Moto::start();
        let sdk = moto.sdk().await;
        for group in [FAULTY, HEALTHY] {
            support::create_group(&sdk, &GroupSpec::new(group, 0, 10, 1)).await;
        }
        let proxy = FaultProxy::start(&moto.endpoint(), rules).await;
        let (fa, fh) = (support::woodpecker_fake(3, LINUX).await, support::woodpecker_fake(3, LINUX).await);
        let workdir = Workdir::new();
        let config = workdir.config(&format!(
            "{}{}{}{}",
            forge_section("fa", &fa.uri()),
            forge_section("fh", &fh.uri()),
            pool_section("faulty", "fa", FAULTY),
            pool_section("healthy", "fh", HEALTHY)
        ));
        World { _moto: moto, sdk, proxy, workdir, config, _forges: vec![fa, fh] }
    }
    async fn run(&self, command: &str) -> Run {
        run(&self.proxy.endpoint(), &self.workdir, &[command, "--config", &self.config, "--json"]).await
    }
    async fn desired(&self, group: &str) -> i32 {
        support::desired_capacity(&self.sdk, group).await
    }
    async fn scaler_tags(&self, group: &str) -> Vec<String> {
        support::group_tags(&self.sdk, group).await.into_keys().filter(|k| k.starts_with("forge-scaler:")).collect()
    }
    /// Neither group changed: desired 1, no tags of ours.
    async fn assert_untouched(&self, group: &str, context: &str) {
        assert_eq!(self.desired(group).await, 1, "{context}: {group} changed");
        assert!(self.scaler_tags(group).await.is_empty(), "{context}: tags written on {group}");
    }
}

// ---------------------------------------------------------------------------------------
// AWS cells.
// ---------------------------------------------------------------------------------------

/// A fault on DescribeAutoScalingGroups: no pool can be planned, so the tick fails (exit 1)
/// with one error line naming the operation and `cause`; nothing written; `plan` and `once` alike.
async fn assert_describe_fault_fails_the_tick(fault: Fault, cause: &str) {
    let world = World::new(vec![Rule::on("DescribeAutoScalingGroups", fault)]).await;
    for command in ["plan", "once"] {
        let run = world.run(command).await;

        run.assert_ended(1);
        let line = run.one_error_line();
        assert!(line.contains("DescribeAutoScalingGroups") && line.contains(cause), "{command}: {}", run.describe());
        assert!(line.contains(FAULTY) && line.contains(HEALTHY), "the line names the groups: {line}");
    }
    assert_eq!(world.proxy.asked("SetDesiredCapacity") + world.proxy.asked("CreateOrUpdateTags"), 0);
    world.assert_untouched(FAULTY, "describe fault").await;
    world.assert_untouched(HEALTHY, "describe fault").await;
}

#[tokio::test]
async fn aws_throttling_on_describe_fails_the_tick_with_status_one_for_plan_and_once() {
    assert_describe_fault_fails_the_tick(throttling(), "Rate exceeded").await;
}

#[tokio::test]
async fn aws_access_denied_on_describe_fails_the_tick_with_status_one_for_plan_and_once() {
    assert_describe_fault_fails_the_tick(access_denied("DescribeAutoScalingGroups"), "AccessDenied").await;
}

/// A fault on SetDesiredCapacity for the faulty group only: `plan` writes nothing so it plans
/// both pools (exit 0); `once` fails only the faulty pool (exit 3, one error line naming the
/// operation and `cause`), its group unchanged, while the healthy pool is raised.
async fn assert_set_desired_fault_fails_only_its_pool(fault: Fault, cause: &str) {
    let world = World::new(vec![Rule::on_group("SetDesiredCapacity", FAULTY, fault)]).await;

    let plan = world.run("plan").await;

    plan.assert_ended(0);
    assert!(plan.error_lines().is_empty(), "{}", plan.describe());
    for pool in ["faulty", "healthy"] {
        assert_eq!(plan.pool(pool)["action"], "raise", "{}", plan.describe());
    }
    assert_eq!(world.proxy.asked("SetDesiredCapacity"), 0, "plan wrote nothing");

    let once = world.run("once").await;

    once.assert_ended(3);
    let line = once.one_error_line();
    assert!(line.contains("pool faulty") && line.contains("SetDesiredCapacity"), "{}", once.describe());
    assert!(line.contains(cause), "cause {cause:?} not in {line}");
    assert_eq!(once.pool("faulty")["action"], "error");
    assert_eq!(once.pool("healthy")["action"], "raise", "{}", once.describe());
    world.assert_untouched(FAULTY, "once").await;
    let healthy = world.desired(HEALTHY).await;
    assert!(healthy > 1, "the healthy pool was raised");
    assert_eq!(Some(i64::from(healthy)), once.pool("healthy")["desired_after"].as_i64());
}

#[tokio::test]
async fn aws_throttling_on_set_desired_capacity_fails_only_that_pool_and_the_other_raises() {
    assert_set_desired_fault_fails_only_its_pool(throttling(), "Rate exceeded").await;
}

#[tokio::test]
async fn aws_access_denied_on_set_desired_capacity_fails_only_that_pool_and_the_other_raises() {
    assert_set_desired_fault_fails_only_its_pool(access_denied("SetDesiredCapacity"), "AccessDenied").await;
}

#[tokio::test]
async fn aws_validation_error_above_max_size_on_set_desired_capacity_fails_only_that_pool() {
    // moto accepts any size; AWS refuses one above MaxSize (e.g. MaxSize lowered by a person
    // between our read and our write). AWS's own message reaches the error line.
    assert_set_desired_fault_fails_only_its_pool(above_max_size(), "is above max value").await;
}

#[tokio::test]
async fn aws_set_desired_capacity_that_never_answers_fails_only_that_pool_within_the_timeouts() {
    assert_set_desired_fault_fails_only_its_pool(Fault::Hang, "SetDesiredCapacity").await;
}

#[tokio::test]
async fn aws_access_denied_on_create_or_update_tags_is_a_raise_with_a_warning_and_status_zero() {
    // The raise itself went through: the pool is reported as raised (not an error), with a
    // warning naming the denied operation; the exit status is 0 (a warning is not an error).
    let world =
        World::new(vec![Rule::on_group("CreateOrUpdateTags", FAULTY, access_denied("CreateOrUpdateTags"))]).await;

    let once = world.run("once").await;

    once.assert_ended(0);
    assert!(once.error_lines().is_empty(), "{}", once.describe());
    let faulty = once.pool("faulty");
    assert_eq!(faulty["action"], "raise", "{faulty}");
    assert!(faulty.get("error").is_none(), "{faulty}");
    let warnings = faulty["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{faulty}");
    let warning = warnings[0].as_str().unwrap_or_default();
    assert!(warning.contains("CreateOrUpdateTags") && warning.contains("AccessDenied"), "{warning}");
    assert_eq!(Some(i64::from(world.desired(FAULTY).await)), faulty["desired_after"].as_i64());
    assert!(world.desired(FAULTY).await > 1);
    assert!(world.scaler_tags(FAULTY).await.is_empty(), "the denied tags are not there");
    assert!(!world.scaler_tags(HEALTHY).await.is_empty(), "the healthy pool wrote its tags");
    assert!(once.pool("healthy")["warnings"].is_null(), "{}", once.describe());
}

#[tokio::test]
async fn aws_unknown_group_is_a_pool_error_and_the_other_pools_act() {
    // moto itself: the group simply does not exist (DescribeAutoScalingGroups leaves it out).
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new(HEALTHY, 0, 10, 1)).await;
    let (fa, fh) = (support::woodpecker_fake(3, LINUX).await, support::woodpecker_fake(3, LINUX).await);
    let workdir = Workdir::new();
    let config = workdir.config(&format!(
        "{}{}{}{}",
        forge_section("fa", &fa.uri()),
        forge_section("fh", &fh.uri()),
        pool_section("faulty", "fa", "ci-nowhere"),
        pool_section("healthy", "fh", HEALTHY)
    ));

    for command in ["plan", "once"] {
        let run = run(&moto.endpoint(), &workdir, &[command, "--config", &config, "--json"]).await;

        run.assert_ended(3);
        let line = run.one_error_line();
        assert!(line.contains("pool faulty") && line.contains("ci-nowhere") && line.contains("not found"), "{line}");
        assert_eq!(run.pool("faulty")["action"], "error");
        assert_eq!(run.pool("healthy")["action"], "raise", "{command}: {}", run.describe());
        if command == "plan" {
            assert_eq!(support::desired_capacity(&sdk, HEALTHY).await, 1, "plan writes nothing");
        }
    }
    assert!(support::desired_capacity(&sdk, HEALTHY).await > 1, "once raised the healthy pool");
}

#[tokio::test]
async fn aws_hung_endpoint_ends_plan_and_once_within_the_operation_timeout_with_status_one() {
    let (endpoint, _listener) = hung_endpoint().await;
    let forge = support::woodpecker_fake(3, LINUX).await;
    let workdir = Workdir::new();
    let config = workdir.config(&format!("{}{}", forge_section("fa", &forge.uri()), pool_section("p", "fa", FAULTY)));

    for command in ["plan", "once"] {
        let run = run(&endpoint, &workdir, &[command, "--config", &config]).await;

        run.assert_ended(1);
        let line = run.one_error_line();
        assert!(line.contains("DescribeAutoScalingGroups"), "{}", run.describe());
        // The SDK's operation timeout (10 s) ends it, well before the tick budget (40 s).
        assert!(run.elapsed < Duration::from_secs(25), "{command} took {:?}", run.elapsed);
    }
}

// ---------------------------------------------------------------------------------------
// SSM cells.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn ssm_missing_prefix_is_a_config_error_saying_it_holds_no_parameters() {
    let moto = Moto::start();
    let workdir = Workdir::new();
    for command in ["plan", "once"] {
        let run = run(&moto.endpoint(), &workdir, &[command, "--ssm-prefix", "/forge-scaler/nothing-here"]).await;

        run.assert_ended(2);
        let line = run.one_error_line();
        assert!(line.contains("/forge-scaler/nothing-here") && line.contains("holds no parameters"), "{line}");
    }
}

#[tokio::test]
async fn ssm_invalid_values_are_all_listed_with_status_two_and_nothing_is_written() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new(FAULTY, 0, 10, 1)).await;
    let forge = support::woodpecker_fake(3, LINUX).await;
    let prefix = "/forge-scaler/invalid";
    for (key, value, secure) in [
        ("forges/wp/kind", "woodpecker", false),
        ("forges/wp/url", "not a url", false),
        ("forges/wp/token", TOKEN, true),
        ("pools/linux/forge", "wp", false),
        ("pools/linux/asg", FAULTY, false),
        ("pools/linux/slots", "zero", false),
        ("pools/linux/max_instances", "-3", false),
        ("pools/other/forge", "nope", false),
        ("pools/other/asg", HEALTHY, false),
    ] {
        support::put_parameter(&sdk, &format!("{prefix}/{key}"), value, secure).await;
    }
    let workdir = Workdir::new();
    for command in ["plan", "once"] {
        let run = run(&moto.endpoint(), &workdir, &[command, "--ssm-prefix", prefix]).await;

        run.assert_ended(2);
        let line = run.one_error_line();
        for key in ["forges/wp/url", "pools/linux/slots", "pools/linux/max_instances", "pools/other/forge"] {
            assert!(line.contains(key), "{key} not listed: {line}");
        }
    }
    assert_eq!(support::desired_capacity(&sdk, FAULTY).await, 1);
    assert!(forge.received_requests().await.unwrap_or_default().is_empty(), "a bad config asks no forge");
}

/// A fault on GetParametersByPath: the configuration cannot be read, so nothing can run (exit
/// 1), with one error line naming the operation, the prefix and `cause`.
async fn assert_ssm_fault_fails_with_status_one(fault: Fault, cause: &[&str]) {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new(FAULTY, 0, 10, 1)).await;
    support::put_parameter(&sdk, "/forge-scaler/prod/pools/p/asg", FAULTY, false).await;
    let proxy = FaultProxy::start(&moto.endpoint(), vec![Rule::on("GetParametersByPath", fault)]).await;
    let workdir = Workdir::new();
    for command in ["plan", "once"] {
        let run = run(&proxy.endpoint(), &workdir, &[command, "--ssm-prefix", "/forge-scaler/prod"]).await;

        run.assert_ended(1);
        let line = run.one_error_line();
        assert!(line.contains("GetParametersByPath") && line.contains("/forge-scaler/prod"), "{line}");
        for c in cause {
            assert!(line.contains(c), "{c:?} not in {line}");
        }
    }
    assert_eq!(proxy.asked("DescribeAutoScalingGroups"), 0, "no tick without a configuration");
    assert_eq!(support::desired_capacity(&sdk, FAULTY).await, 1);
}

#[tokio::test]
async fn ssm_throttling_fails_with_status_one_naming_get_parameters_by_path() {
    let fault = ssm_error("ThrottlingException", "aws/throttling.ssm.json");
    assert_ssm_fault_fails_with_status_one(fault, &["ThrottlingException", "Rate exceeded"]).await;
}

#[tokio::test]
async fn ssm_access_denied_fails_with_status_one_and_names_the_permission_needed() {
    let fault = ssm_error("AccessDeniedException", "aws/access_denied.ssm.json");
    assert_ssm_fault_fails_with_status_one(fault, &["AccessDeniedException", "ssm:GetParametersByPath", "kms:Decrypt"])
        .await;
}

#[tokio::test]
async fn ssm_hung_endpoint_ends_within_the_operation_timeout_with_status_one() {
    let (endpoint, _listener) = hung_endpoint().await;
    let workdir = Workdir::new();

    let run = run(&endpoint, &workdir, &["once", "--ssm-prefix", "/forge-scaler/prod"]).await;

    run.assert_ended(1);
    assert!(run.one_error_line().contains("GetParametersByPath"), "{}", run.describe());
}

// ---------------------------------------------------------------------------------------
// Never lower (issue 11 item 3).
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn never_lower_a_group_raised_from_outside_during_a_slow_forge_read_stays_at_its_higher_desired() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new(FAULTY, 0, 10, 1)).await;
    // Every request goes through the proxy so the test knows when `once` has read the group.
    let proxy = FaultProxy::start(&moto.endpoint(), vec![]).await;
    let forge = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/api/queue/info"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(support::woodpecker_queue_info(3, LINUX))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&forge)
        .await;
    let workdir = Workdir::new();
    let config = workdir.config(&format!("{}{}", forge_section("wp", &forge.uri()), pool_section("p", "wp", FAULTY)));

    let once = tokio::spawn(finish(
        command(&proxy.endpoint(), &workdir, &["once", "--config", &config, "--json"]),
        "once (raised meanwhile)",
    ));
    // Wait until `once` has read the group at 1 and is waiting on the slow forge.
    let waited = Instant::now();
    while proxy.forwarded("DescribeAutoScalingGroups") == 0 || forge.received_requests().await.unwrap().is_empty() {
        assert!(waited.elapsed() < RUN_BOUND, "once never read the group and the forge: {:?}", proxy.seen());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    aws_sdk_autoscaling::Client::new(&sdk)
        .set_desired_capacity()
        .auto_scaling_group_name(FAULTY)
        .desired_capacity(8)
        .send()
        .await
        .expect("a person raises the group to 8");
    let run = once.await.expect("once ran");

    run.assert_ended(0);
    let pool = run.pool("p");
    assert_eq!(pool["desired_before"], 1, "once read the group before the raise: {pool}");
    assert_eq!(pool["action"], "none", "{pool}");
    assert_eq!(pool["desired_after"], 8, "{pool}");
    let reasons = pool["reasons"].to_string();
    assert!(reasons.contains("already 8") && reasons.contains("left as it is"), "the report says so: {reasons}");
    assert_eq!(support::desired_capacity(&sdk, FAULTY).await, 8, "not lowered");
    assert_eq!(proxy.asked("SetDesiredCapacity"), 0, "no write at all: {:?}", proxy.seen());
}

// ---------------------------------------------------------------------------------------
// Secrets (issue 11 item 5): the fault scenarios at trace level, with a secret in every field.
// ---------------------------------------------------------------------------------------

/// Secrets planted in the configuration: never in stdout, stderr or any log line.
const URL_PASSWORD: &str = "urlpass-SECRET0";
const QUERY_SECRET_1: &str = "query-SECRET1";
const QUERY_SECRET_2: &str = "query-SECRET2";
const SSM_TOKEN: &str = "ssm-securestring-SECRET3";
const SSM_AUTH_SECRET: &str = "ssm-securestring-SECRET4";

fn planted() -> [&'static str; 7] {
    [TOKEN, URL_PASSWORD, QUERY_SECRET_1, QUERY_SECRET_2, SSM_TOKEN, SSM_AUTH_SECRET, support::SECRET_ACCESS_KEY]
}

/// A forge URL with a password and secret query values.
fn secret_url(base: &str) -> String {
    let base = base.trim_start_matches("http://");
    format!("http://ci-user:{URL_PASSWORD}@{base}/?api_key={QUERY_SECRET_1}&secret={QUERY_SECRET_2}")
}

/// Runs at trace level and asserts no planted secret appears anywhere in the output.
async fn run_at_trace(endpoint: &str, workdir: &Workdir, args: &[&str]) -> Run {
    let mut command = command(endpoint, workdir, args);
    command.env("RUST_LOG", "trace");
    let run = finish(command, &format!("RUST_LOG=trace {}", args.join(" "))).await;
    let text = format!("{}\n{}", run.stdout(), run.stderr());
    let leaks: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let secrets: Vec<&str> = planted().into_iter().filter(|s| line.contains(s)).collect();
            (!secrets.is_empty()).then(|| format!("{secrets:?} in: {line}"))
        })
        .collect();
    assert!(leaks.is_empty(), "{} line(s) leak a secret ({}):\n{}", leaks.len(), args.join(" "), leaks.join("\n"));
    run
}

#[tokio::test]
async fn secrets_stay_out_of_trace_logs_when_the_forge_fails_and_aws_refuses_writes() {
    // TOML config: the token from the environment, a password and secret query values in the
    // forge URL. The forge answers 500 for one pool; AWS denies SetDesiredCapacity for the other.
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    for group in [FAULTY, HEALTHY] {
        support::create_group(&sdk, &GroupSpec::new(group, 0, 10, 1)).await;
    }
    let proxy = FaultProxy::start(
        &moto.endpoint(),
        vec![Rule::on_group("SetDesiredCapacity", HEALTHY, access_denied("SetDesiredCapacity"))],
    )
    .await;
    let broken = support::woodpecker_broken(500, "internal error").await;
    let working = support::woodpecker_fake(3, LINUX).await;
    let workdir = Workdir::new();
    let config = workdir.config(&format!(
        "{}{}{}{}",
        forge_section("fa", &secret_url(&broken.uri())),
        forge_section("fh", &secret_url(&working.uri())),
        pool_section("faulty", "fa", FAULTY),
        pool_section("healthy", "fh", HEALTHY)
    ));

    for command in ["plan", "once"] {
        let run = run_at_trace(&proxy.endpoint(), &workdir, &[command, "--config", &config]).await;
        run.assert_ended(3);
    }
    let (hung, _listener) = hung_endpoint().await;
    let run = run_at_trace(&hung, &workdir, &["once", "--config", &config]).await;
    run.assert_ended(1);
}

#[tokio::test]
async fn secrets_stay_out_of_trace_logs_when_the_config_comes_from_ssm_and_aws_throttles() {
    // SSM config: the token and the forge URL (with its password and query secrets) are
    // SecureStrings; the forge refuses the token; then AWS throttles the describe.
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    for group in [FAULTY, HEALTHY] {
        support::create_group(&sdk, &GroupSpec::new(group, 0, 10, 1)).await;
    }
    let forge = support::woodpecker_broken(401, "{\"message\":\"Unauthorized\"}").await;
    let generic = support::woodpecker_broken(403, "{}").await;
    let prefix = "/forge-scaler/secrets";
    for (key, value, secure) in [
        ("forges/wp/kind", "woodpecker", false),
        ("forges/wp/url", secret_url(&forge.uri()).as_str(), true),
        ("forges/wp/token", SSM_TOKEN, true),
        ("forges/gen/kind", "generic", false),
        ("forges/gen/url", secret_url(&generic.uri()).as_str(), true),
        ("forges/gen/pending_pointer", "/pending", false),
        ("forges/gen/auth_header", "x-api-key", false),
        ("forges/gen/token", SSM_AUTH_SECRET, true),
        ("pools/linux/forge", "wp", false),
        ("pools/linux/asg", FAULTY, false),
        ("pools/gen/forge", "gen", false),
        ("pools/gen/asg", HEALTHY, false),
    ] {
        support::put_parameter(&sdk, &format!("{prefix}/{key}"), value, secure).await;
    }
    let workdir = Workdir::new();

    for command in ["plan", "once"] {
        let run = run_at_trace(&moto.endpoint(), &workdir, &[command, "--ssm-prefix", prefix]).await;
        run.assert_ended(3);
    }
    let throttled =
        FaultProxy::start(&moto.endpoint(), vec![Rule::on("DescribeAutoScalingGroups", throttling())]).await;
    let run = run_at_trace(&throttled.endpoint(), &workdir, &["once", "--ssm-prefix", prefix]).await;
    run.assert_ended(1);
    assert_eq!(support::desired_capacity(&sdk, FAULTY).await, 1);
}

#[tokio::test]
async fn secrets_stay_out_of_the_error_when_a_forge_url_with_credentials_is_invalid() {
    // A bad config is a fault too: its error lists every problem but no secret, even when the
    // bad value is the URL carrying them.
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let prefix = "/forge-scaler/bad-url";
    let bad_url = format!("ftp://ci-user:{URL_PASSWORD}@127.0.0.1:1/?api_key={QUERY_SECRET_1}&secret={QUERY_SECRET_2}");
    for (key, value, secure) in [
        ("forges/wp/kind", "woodpecker", false),
        ("forges/wp/url", bad_url.as_str(), true),
        ("forges/wp/token", SSM_TOKEN, true),
        ("pools/linux/forge", "wp", false),
        ("pools/linux/asg", FAULTY, false),
    ] {
        support::put_parameter(&sdk, &format!("{prefix}/{key}"), value, secure).await;
    }
    let workdir = Workdir::new();

    let run = run_at_trace(&moto.endpoint(), &workdir, &["plan", "--ssm-prefix", prefix]).await;

    run.assert_ended(2);
    assert!(run.one_error_line().contains("forges/wp/url"), "{}", run.describe());
}
