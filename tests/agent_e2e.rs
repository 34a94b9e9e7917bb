//! The watchdog end to end: the real `forge-scaler agent` binary against a fake IMDSv2
//! (token protocol), a fake Woodpecker `/varz`, and moto_server's Auto Scaling (or, for AWS's
//! MinSize refusal that moto does not produce, a stub serving AWS's error body). Every server
//! runs on 127.0.0.1 and is started and stopped here.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "AQAEAFake-imds-session-token==";
const REGION: &str = support::REGION;

mod support;

// ---------- moto (tests/support) ----------

/// moto_server plus the few reads these tests need.
struct Moto {
    inner: support::Moto,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let inner = support::Moto::start();
        let endpoint = inner.endpoint();
        Moto { inner, endpoint }
    }

    async fn client(&self) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.inner.sdk().await)
    }

    /// Creates a group (launch configuration, one AZ) and returns its instance ids.
    async fn group(&self, name: &str, min: i32, desired: i32) -> Vec<String> {
        support::create_group(&self.inner.sdk().await, &support::GroupSpec::new(name, min, 10, desired)).await;
        self.instances(name).await
    }

    async fn instances(&self, name: &str) -> Vec<String> {
        let out =
            self.client().await.describe_auto_scaling_groups().auto_scaling_group_names(name).send().await.unwrap();
        out.auto_scaling_groups()[0].instances().iter().filter_map(|i| i.instance_id().map(str::to_string)).collect()
    }

    async fn desired(&self, name: &str) -> i32 {
        support::desired_capacity(&self.inner.sdk().await, name).await
    }

    async fn tags(&self, group: &str) -> std::collections::BTreeMap<String, String> {
        support::group_tags(&self.inner.sdk().await, group).await
    }

    async fn tag(&self, group: &str, key: &str, value: &str) {
        let tag = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(key)
            .value(value)
            .propagate_at_launch(false)
            .build();
        self.client().await.create_or_update_tags().tags(tag).send().await.unwrap();
    }
}

fn free_port() -> u16 {
    support::free_port()
}

// ---------- fake IMDS ----------

/// IMDSv2: PUT /latest/api/token with the TTL header, then GETs carrying the token.
async fn fake_imds(instance_id: &str) -> MockServer {
    let imds = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/latest/api/token"))
        .and(wiremock::matchers::header_exists("X-aws-ec2-metadata-token-ttl-seconds"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(TOKEN)
                .insert_header("X-aws-ec2-metadata-token-ttl-seconds", "21600"),
        )
        .mount(&imds)
        .await;
    for (p, body) in [("/latest/meta-data/instance-id", instance_id), ("/latest/meta-data/placement/region", REGION)] {
        Mock::given(method("GET"))
            .and(path(p))
            .and(header("X-aws-ec2-metadata-token", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_string(body.to_string()))
            .mount(&imds)
            .await;
    }
    // With the token, paths that do not exist here (no spot notice, no lifecycle state) are 404;
    // without a valid token IMDSv2 answers 401.
    Mock::given(method("GET"))
        .and(header("X-aws-ec2-metadata-token", TOKEN))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(9)
        .mount(&imds)
        .await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(401)).with_priority(10).mount(&imds).await;
    imds
}

async fn post_spot_notice(imds: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/latest/meta-data/spot/instance-action"))
        .and(header("X-aws-ec2-metadata-token", TOKEN))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"action":"terminate","time":"2026-11-22T19:00:00Z"}"#),
        )
        .mount(imds)
        .await;
}

// ---------- fake Woodpecker /varz ----------

/// A `running_count` that makes the fake answer HTTP 500 (the probe fails).
const VARZ_BROKEN: u64 = u64::MAX;

/// `running_count` from a counter, or 1 once `job_file` exists (a job that arrives when the
/// watchdog's stop command runs).
struct Varz {
    running: Arc<AtomicU64>,
    job_file: Option<PathBuf>,
}

impl Respond for Varz {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let arrived = self.job_file.as_ref().is_some_and(|f| f.exists());
        let running = if arrived { 1 } else { self.running.load(Ordering::SeqCst) };
        if running == VARZ_BROKEN {
            return ResponseTemplate::new(500);
        }
        let polling = if running == 0 { 1 } else { 0 };
        ResponseTemplate::new(200)
            .set_body_string(format!(r#"{{"polling_count":{polling},"running_count":{running},"running":{{}}}}"#))
    }
}

async fn fake_varz(running: u64, job_file: Option<PathBuf>) -> (MockServer, Arc<AtomicU64>) {
    let server = MockServer::start().await;
    let count = Arc::new(AtomicU64::new(running));
    Mock::given(method("GET"))
        .and(path("/varz"))
        .respond_with(Varz { running: count.clone(), job_file })
        .mount(&server)
        .await;
    (server, count)
}

// ---------- the watchdog process ----------

struct Watchdog {
    child: Child,
    log: PathBuf,
    stdout: PathBuf,
}

fn watchdog(dir: &Path, aws_endpoint: &str, imds: &str, args: &[&str]) -> Watchdog {
    let log = dir.join("watchdog.log");
    let stdout = dir.join("watchdog.stdout");
    let child = Command::new(env!("CARGO_BIN_EXE_forge-scaler"))
        .arg("agent")
        .args(["--imds-endpoint", imds, "--log-format", "json"])
        .args(["--check-interval", "200ms", "--probe-timeout", "1s", "--stop-grace", "2s"])
        .args(["--retry-initial", "500ms", "--retry-max", "2s"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(support::aws_env(aws_endpoint))
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-aws-credentials"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start forge-scaler agent");
    Watchdog { child, log, stdout }
}

impl Watchdog {
    /// Waits for the watchdog to exit by itself; its exit code.
    async fn exits_within(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// SIGTERM (systemd stop), then the exit code.
    async fn stop(&mut self) -> Option<i32> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.exits_within(Duration::from_secs(10)).await
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// The EMF lines the watchdog printed on stdout.
    fn emf(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    }

    /// The one `leave` event, checked against its EMF line: the reason in both.
    fn left_because(&self, reason: &str) -> Value {
        let leaves: Vec<Value> = self.events().into_iter().filter(|e| e["event"] == "leave").collect();
        assert_eq!(leaves.len(), 1, "one leave event; log:\n{}", self.dump());
        assert_eq!(leaves[0]["reason"], reason, "log:\n{}", self.dump());
        let emf = self.emf();
        assert_eq!(emf.len(), 1, "one EMF line: {emf:?}");
        assert_eq!(emf[0]["InstancesLeft"], 1);
        assert_eq!(emf[0]["Reason"], reason);
        assert_eq!(emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ForgeScaler");
        leaves[0].clone()
    }

    /// Uptime of the first check matching `pred`.
    fn first_check(&self, pred: impl Fn(&Value) -> bool) -> Option<f64> {
        self.events().into_iter().find(|e| e["event"] == "check" && pred(e)).and_then(|e| e["uptime_s"].as_f64())
    }

    fn saw(&self, event: &str) -> bool {
        self.events().iter().any(|e| e["event"] == event)
    }

    fn dump(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watchdog {
    /// Also ends a fake agent a failed test left behind (it runs in its own process group),
    /// checking that the pid is still our `sleep`.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let Some(dir) = self.log.parent() else { return };
        let Some(pid) = std::fs::read_to_string(dir.join("agent.pid")).ok().and_then(|t| t.trim().parse::<i32>().ok())
        else {
            return;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).starts_with("sleep") {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    condition()
}

fn pid_alive(pid_file: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(pid_file) else { return false };
    let Ok(pid) = text.trim().parse::<i32>() else { return false };
    unsafe { libc::kill(pid, 0) == 0 }
}

fn lines(file: &Path) -> usize {
    std::fs::read_to_string(file).map(|t| t.lines().count()).unwrap_or(0)
}

/// A fake agent that records each start and its pid, then runs until signalled.
/// The usual flags: both timeouts `timeout`, busy from the fake `/varz`, the fake agent wrapped.
fn varz_wrapped_agent<'a>(timeout: &'a str, varz_url: &'a str, agent: &'a str) -> [&'a str; 11] {
    [
        "--idle-timeout",
        timeout,
        "--boot-timeout",
        timeout,
        "--woodpecker-varz",
        varz_url,
        "--wrap",
        "--",
        "sh",
        "-c",
        agent,
    ]
}

fn fake_agent(dir: &Path) -> String {
    format!("echo start >> {0}/starts; echo $$ > {0}/agent.pid; exec sleep 600", dir.display())
}

// ---------- the tests ----------

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_agent_terminates_its_instance_and_the_group_shrinks_by_one() {
    let moto = Moto::start();
    let instances = moto.group("ci-idle", 0, 2).await;
    let me = &instances[0];
    let imds = fake_imds(me).await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(dir.path(), &moto.endpoint, &imds.uri(), &varz_wrapped_agent("2s", &varz_url, &agent));
    let code = w.exits_within(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "watchdog should leave and exit 0; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-idle").await, 1, "the terminate decrements desired");
    assert!(!moto.instances("ci-idle").await.contains(me), "this instance left the group");
    assert!(!pid_alive(&dir.path().join("agent.pid")), "the Woodpecker-style agent was killed before leaving");
    let leave =
        w.events().into_iter().find(|e| e["event"] == "check" && e["verdict"] == "leave").expect("a leave check");
    assert_eq!(leave["reason"], "NoJobSinceBoot");
    assert!(w.saw("terminating"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_agent_stays_past_its_idle_timeout() {
    let moto = Moto::start();
    let instances = moto.group("ci-busy", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, _) = fake_varz(1, None).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(dir.path(), &moto.endpoint, &imds.uri(), &varz_wrapped_agent("1s", &varz_url, &agent));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "still watching; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-busy").await, 2);
    assert!(pid_alive(&dir.path().join("agent.pid")), "the busy agent was not stopped");
    let checks: Vec<Value> = w.events().into_iter().filter(|e| e["event"] == "check").collect();
    assert!(checks.len() >= 5, "one event per check, got {}", checks.len());
    assert!(checks.iter().all(|c| c["busy"] == "Busy" && c["verdict"] == "stay"));
    assert_eq!(w.stop().await, Some(0));
    assert!(!w.saw("terminating"));
}

#[tokio::test(flavor = "multi_thread")]
async fn group_tags_override_the_idle_timeout_flag() {
    let moto = Moto::start();
    let instances = moto.group("ci-tags", 0, 2).await;
    moto.tag("ci-tags", "forge-scaler:idle-timeout", "1s").await;
    moto.tag("ci-tags", "forge-scaler:boot-timeout", "1s").await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "1h", "--boot-timeout", "1h", "--woodpecker-varz", &varz_url, "--stop-cmd", "true"],
    );
    assert_eq!(w.exits_within(Duration::from_secs(30)).await, Some(0), "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-tags").await, 1);
    let check = w.events().into_iter().find(|e| e["event"] == "check").unwrap();
    assert_eq!(check["idle_timeout"], "1s");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_arriving_during_the_drain_is_kept_and_the_agent_undrained() {
    let moto = Moto::start();
    let instances = moto.group("ci-race", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job-arrived");
    // Idle until the stop command runs; the job lands in that instant.
    let (varz, _) = fake_varz(0, Some(job.clone())).await;
    let varz_url = format!("{}/varz", varz.uri());
    let stop = format!("touch {}", job.display());
    let start = format!("echo start >> {}/undrained", dir.path().display());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &[
            "--idle-timeout",
            "1s",
            "--boot-timeout",
            "1s",
            "--woodpecker-varz",
            &varz_url,
            "--stop-cmd",
            &stop,
            "--start-cmd",
            &start,
        ],
    );
    let undrained = dir.path().join("undrained");
    assert!(
        wait_until(Duration::from_secs(20), || lines(&undrained) >= 1).await,
        "start command ran; log:\n{}",
        w.dump()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "the instance stays with its job; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-race").await, 2);
    assert!(moto.instances("ci-race").await.contains(&instances[0]));
    assert!(w.saw("drain_aborted"));
    assert!(!w.saw("terminating"));
    let after: Vec<Value> = w.events().into_iter().filter(|e| e["event"] == "check").collect();
    assert_eq!(after.last().unwrap()["busy"], "Busy", "later checks see the job");
    assert_eq!(w.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrapped_agent_exiting_by_itself_terminates_the_instance() {
    let moto = Moto::start();
    let instances = moto.group("ci-wrap", 0, 3).await;
    let imds = fake_imds(&instances[1]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "1h", "--boot-timeout", "1h", "--wrap", "--", "sh", "-c", "sleep 1; exit 0"],
    );
    assert_eq!(w.exits_within(Duration::from_secs(30)).await, Some(0), "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-wrap").await, 2);
    assert!(!moto.instances("ci-wrap").await.contains(&instances[1]));
    let leave = w.events().into_iter().find(|e| e["verdict"] == "leave").unwrap();
    assert_eq!(leave["reason"], "AgentExited");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spot_notice_drains_at_once() {
    let moto = Moto::start();
    let instances = moto.group("ci-spot", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(dir.path(), &moto.endpoint, &imds.uri(), &varz_wrapped_agent("1h", &varz_url, &agent));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "no reason to leave yet; log:\n{}", w.dump());
    post_spot_notice(&imds).await;
    let posted = Instant::now();
    assert_eq!(w.exits_within(Duration::from_secs(20)).await, Some(0), "log:\n{}", w.dump());
    assert!(posted.elapsed() < Duration::from_secs(10), "left within a few checks of the notice");
    assert_eq!(moto.desired("ci-spot").await, 1);
    let leave = w.events().into_iter().find(|e| e["verdict"] == "leave").unwrap();
    assert_eq!(leave["reason"], "Interrupted");
    assert!(!pid_alive(&dir.path().join("agent.pid")));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_imds_the_instance_never_terminates() {
    let moto = Moto::start();
    moto.group("ci-noimds", 0, 2).await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    // The agent exits at once: with an identity that would be a reason to leave.
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &closed,
        &["--idle-timeout", "1s", "--boot-timeout", "1s", "--wrap", "--", "sh", "-c", "exit 0"],
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "keeps retrying; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-noimds").await, 2);
    let retries = w.events().into_iter().filter(|e| e["event"] == "retry" && e["step"] == "imds_identity").count();
    assert!(retries >= 2, "retried IMDS with backoff, got {retries}; log:\n{}", w.dump());
    assert!(!w.saw("terminating"));
    assert_eq!(w.stop().await, Some(0));
}

// ---------- AWS's MinSize refusal (a stub: moto does not enforce MinSize) ----------

const MIN_SIZE_ERROR: &str = include_str!("fixtures/aws/terminate_below_min.validation_error.xml");

async fn stub_autoscaling(instance_id: &str, group: &str, min: u32, desired: u32) -> MockServer {
    let stub = MockServer::start().await;
    let instances = format!(
        r#"<DescribeAutoScalingInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingInstancesResult><AutoScalingInstances><member>
    <InstanceId>{instance_id}</InstanceId><AutoScalingGroupName>{group}</AutoScalingGroupName>
    <AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>InService</LifecycleState>
    <HealthStatus>HEALTHY</HealthStatus><ProtectedFromScaleIn>true</ProtectedFromScaleIn>
  </member></AutoScalingInstances></DescribeAutoScalingInstancesResult>
  <ResponseMetadata><RequestId>5e1c0f4a-1111-4a8e-9c55-000000000001</RequestId></ResponseMetadata>
</DescribeAutoScalingInstancesResponse>"#
    );
    let groups = format!(
        r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult><AutoScalingGroups><member>
    <AutoScalingGroupName>{group}</AutoScalingGroupName><MinSize>{min}</MinSize><MaxSize>10</MaxSize>
    <DesiredCapacity>{desired}</DesiredCapacity><DefaultCooldown>60</DefaultCooldown>
    <AvailabilityZones><member>us-east-1a</member></AvailabilityZones><HealthCheckType>EC2</HealthCheckType>
    <CreatedTime>2026-11-22T10:00:00Z</CreatedTime><Instances/><Tags/>
  </member></AutoScalingGroups></DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>5e1c0f4a-1111-4a8e-9c55-000000000002</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>"#
    );
    for (action, body, status) in [
        ("Action=DescribeAutoScalingInstances", instances, 200),
        ("Action=DescribeAutoScalingGroups", groups, 200),
        ("Action=TerminateInstanceInAutoScalingGroup", MIN_SIZE_ERROR.to_string(), 400),
    ] {
        Mock::given(method("POST"))
            .and(body_string_contains(action))
            .respond_with(ResponseTemplate::new(status).set_body_raw(body, "text/xml"))
            .mount(&stub)
            .await;
    }
    stub
}

async fn requests_with(stub: &MockServer, needle: &str) -> usize {
    stub.received_requests().await.unwrap().iter().filter(|r| String::from_utf8_lossy(&r.body).contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn at_min_size_the_instance_stays_and_its_agent_runs_again() {
    // The group read says one instance could leave, but another left first: AWS refuses.
    let stub = stub_autoscaling("i-0feedc0de0000001", "ci-floor", 1, 2).await;
    let imds = fake_imds("i-0feedc0de0000001").await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(dir.path(), &stub.uri(), &imds.uri(), &varz_wrapped_agent("1s", &varz_url, &agent));
    let starts = dir.path().join("starts");
    assert!(wait_until(Duration::from_secs(20), || lines(&starts) >= 2).await, "agent restarted; log:\n{}", w.dump());
    assert!(
        wait_until(Duration::from_secs(5), || pid_alive(&dir.path().join("agent.pid"))).await,
        "agent running again"
    );
    assert_eq!(w.child.try_wait().unwrap(), None, "the instance stays; log:\n{}", w.dump());
    assert!(w.saw("stay_at_min_size"));
    let terminates = requests_with(&stub, "Action=TerminateInstanceInAutoScalingGroup").await;
    assert!(terminates >= 1);
    assert_eq!(terminates, requests_with(&stub, "ShouldDecrementDesiredCapacity=true").await, "always decrementing");
    assert_eq!(requests_with(&stub, "Action=SetInstanceHealth").await, 0, "never marks itself unhealthy");
    // Backoff: not one terminate per 200 ms check.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = requests_with(&stub, "Action=TerminateInstanceInAutoScalingGroup").await;
    assert!(later <= terminates + 2, "retries back off: {terminates} then {later}");
    assert_eq!(w.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_floor_the_agent_is_not_even_drained() {
    let stub = stub_autoscaling("i-0feedc0de0000002", "ci-floor", 1, 1).await;
    let imds = fake_imds("i-0feedc0de0000002").await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(dir.path(), &stub.uri(), &imds.uri(), &varz_wrapped_agent("1s", &varz_url, &agent));
    assert!(wait_until(Duration::from_secs(20), || w.saw("stay_at_min_size")).await, "log:\n{}", w.dump());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(lines(&dir.path().join("starts")), 1, "the agent was never stopped");
    assert_eq!(requests_with(&stub, "Action=TerminateInstanceInAutoScalingGroup").await, 0);
    assert_eq!(w.stop().await, Some(0));
    assert!(!pid_alive(&dir.path().join("agent.pid")), "stopping the watchdog stops its agent");
}

// ---------- probes that fail, lifecycle, usage ----------

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_failing_after_the_agent_was_ready_stays_within_the_unknown_grace() {
    let moto = Moto::start();
    let instances = moto.group("ci-probe-down", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, running) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "6s", "--boot-timeout", "6s", "--woodpecker-varz", &varz_url, "--stop-cmd", "true"],
    );
    assert!(wait_until(Duration::from_secs(20), || w.events().iter().any(|e| e["agent_ready"] == true)).await);
    running.store(VARZ_BROKEN, Ordering::SeqCst); // from now on the probe cannot tell
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "stays on an unknown reading; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-probe-down").await, 2);
    let last = w.events().into_iter().rfind(|e| e["event"] == "check").unwrap();
    assert_eq!(last["busy"], "Unknown");
    assert!(last["uptime_s"].as_f64().unwrap() > 6.0, "checked past the timeouts");
    assert_eq!(w.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_never_ready_leaves_at_the_boot_timeout() {
    let moto = Moto::start();
    let instances = moto.group("ci-never-ready", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let nothing = format!("http://127.0.0.1:{}/varz", free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "1s", "--boot-timeout", "2s", "--woodpecker-varz", &nothing, "--stop-cmd", "true"],
    );
    assert_eq!(w.exits_within(Duration::from_secs(30)).await, Some(0), "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-never-ready").await, 1);
    let leave = w.events().into_iter().find(|e| e["verdict"] == "leave").unwrap();
    assert_eq!(leave["reason"], "NeverReady");
    assert!(leave["uptime_s"].as_f64().unwrap() >= 2.0, "not before the boot timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_terminated_drains_without_a_second_terminate() {
    let moto = Moto::start();
    let instances = moto.group("ci-lifecycle", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    Mock::given(method("GET"))
        .and(path("/latest/meta-data/autoscaling/target-lifecycle-state"))
        .and(header("X-aws-ec2-metadata-token", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_string("Terminated"))
        .mount(&imds)
        .await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(dir.path(), &moto.endpoint, &imds.uri(), &varz_wrapped_agent("1h", &varz_url, &agent));
    assert_eq!(w.exits_within(Duration::from_secs(20)).await, Some(0), "log:\n{}", w.dump());
    assert!(w.saw("terminated_by_group"));
    assert!(!w.saw("terminating"), "the group is already terminating it");
    assert_eq!(moto.desired("ci-lifecycle").await, 2, "no decrement of our own");
    assert!(!pid_alive(&dir.path().join("agent.pid")), "drained");
}

#[test]
fn without_any_way_to_tell_busy_the_agent_command_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_forge-scaler"))
        .args(["agent", "--imds-endpoint", "http://127.0.0.1:9"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--wrap") && stderr.contains("--probe"), "names the options: {stderr}");
    let bad = Command::new(env!("CARGO_BIN_EXE_forge-scaler"))
        .args(["agent", "--probe", "true", "--idle-timeout", "ten minutes"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--idle-timeout"));
}

// ---------- Docker probe (Drone shape): a fake Docker Engine API on a Unix socket ----------

/// Serves `GET /containers/json` from the file `containers` (re-read at each request).
fn fake_docker(dir: &Path, containers: PathBuf) -> PathBuf {
    use std::io::{Read, Write};
    let socket = dir.join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = std::fs::read_to_string(&containers).unwrap_or_else(|_| "[]".into());
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    socket
}

#[tokio::test(flavor = "multi_thread")]
async fn job_containers_keep_the_instance_and_their_absence_lets_it_leave() {
    let moto = Moto::start();
    let instances = moto.group("ci-docker", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let dir = tempfile::tempdir().unwrap();
    let containers = dir.path().join("containers.json");
    std::fs::write(
        &containers,
        r#"[{"Id":"r","Names":["/drone-runner"],"Labels":{},"State":"running"},
            {"Id":"j","Names":["/drone-abc"],"Labels":{"io.drone":"true","io.drone.build.number":"7"},"State":"running"}]"#,
    )
    .unwrap();
    let socket = fake_docker(dir.path(), containers.clone());
    let stop = format!("echo stop >> {}/control", dir.path().display());
    let start = format!("echo start >> {}/control", dir.path().display());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &[
            "--idle-timeout",
            "1s",
            "--boot-timeout",
            "1s",
            "--docker-socket",
            socket.to_str().unwrap(),
            "--docker-label",
            "io.drone.build.number",
            "--stop-cmd",
            &stop,
            "--start-cmd",
            &start,
        ],
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "a job container runs; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-docker").await, 2);
    // The job ends; only the runner itself is left.
    std::fs::write(&containers, r#"[{"Id":"r","Names":["/drone-runner"],"Labels":{},"State":"running"}]"#).unwrap();
    assert_eq!(w.exits_within(Duration::from_secs(20)).await, Some(0), "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-docker").await, 1);
    assert_eq!(std::fs::read_to_string(dir.path().join("control")).unwrap(), "stop\n", "drained, not undrained");
    let leave = w.events().into_iter().find(|e| e["verdict"] == "leave").unwrap();
    assert_eq!(leave["reason"], "IdleTimeout", "it had run a job");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_sparse_group_reads_the_group_is_read_again_before_leaving() {
    let moto = Moto::start();
    let instances = moto.group("ci-sparse", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &[
            "--idle-timeout",
            "3s",
            "--boot-timeout",
            "3s",
            "--woodpecker-varz",
            &varz_url,
            "--stop-cmd",
            "true",
            "--group-read-interval",
            "1h",
        ],
    );
    assert!(wait_until(Duration::from_secs(20), || w.saw("check")).await, "log:\n{}", w.dump());
    // The function lengthens the timeouts after the watchdog's first (and, by the interval, last) read.
    moto.tag("ci-sparse", "forge-scaler:idle-timeout", "1h").await;
    moto.tag("ci-sparse", "forge-scaler:boot-timeout", "1h").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "re-read the tags before leaving; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-sparse").await, 2);
    let last = w.events().into_iter().rfind(|e| e["event"] == "check").unwrap();
    assert_eq!(last["idle_timeout"], "1h");
    assert_eq!(w.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_cannot_start_leaves_at_the_boot_timeout_not_before() {
    let moto = Moto::start();
    let instances = moto.group("ci-no-agent", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "1s", "--boot-timeout", "3s", "--wrap", "--", "/nonexistent/woodpecker-agent"],
    );
    assert_eq!(w.exits_within(Duration::from_secs(30)).await, Some(0), "log:\n{}", w.dump());
    assert!(w.saw("agent_start_failed"));
    assert_eq!(moto.desired("ci-no-agent").await, 1);
    let leave = w.events().into_iter().find(|e| e["verdict"] == "leave").unwrap();
    assert_eq!(leave["reason"], "NeverReady");
    assert!(leave["uptime_s"].as_f64().unwrap() >= 3.0, "waited the boot timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_spot_notice_a_graceful_agent_finishes_its_job_before_the_instance_leaves() {
    let moto = Moto::start();
    let instances = moto.group("ci-spot-busy", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("busy");
    std::fs::write(&busy, "job 7").unwrap();
    let probe = format!("test -f {}", busy.display());
    let agent = fake_agent(dir.path());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "1h", "--boot-timeout", "1h", "--probe", &probe, "--wrap", "--", "sh", "-c", &agent],
    );
    assert!(wait_until(Duration::from_secs(20), || w.saw("check")).await, "log:\n{}", w.dump());
    post_spot_notice(&imds).await;
    assert!(wait_until(Duration::from_secs(10), || w.saw("drain_recheck")).await, "log:\n{}", w.dump());
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(&dir.path().join("agent.pid"))).await, "SIGTERM sent");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "waits for the running job; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-spot-busy").await, 2);
    assert_eq!(lines(&dir.path().join("starts")), 1, "a doomed instance is not undrained");
    std::fs::remove_file(&busy).unwrap(); // the job finishes
    assert_eq!(w.exits_within(Duration::from_secs(20)).await, Some(0), "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-spot-busy").await, 1);
}

// ---------- every state is bounded (issue 12) ----------

/// `extra` flags, then the usual ones.
fn with<'a>(extra: &[&'a str], usual: &[&'a str]) -> Vec<&'a str> {
    extra.iter().chain(usual).copied().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_unknown_for_the_unknown_grace_counts_as_idle_and_the_instance_leaves() {
    let moto = Moto::start();
    let instances = moto.group("ci-unknown", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, running) = fake_varz(1, None).await;
    let dir = tempfile::tempdir().unwrap();
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &[
            "--idle-timeout",
            "1s",
            "--boot-timeout",
            "1h",
            "--unknown-grace",
            "3s",
            "--woodpecker-varz",
            &varz_url,
            "--stop-cmd",
            "true",
        ],
    );
    assert!(wait_until(Duration::from_secs(20), || w.first_check(|c| c["busy"] == "Busy").is_some()).await);
    running.store(VARZ_BROKEN, Ordering::SeqCst); // the agent hangs: the probe cannot tell, for ever
    assert_eq!(w.exits_within(Duration::from_secs(30)).await, Some(0), "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-unknown").await, 1);
    assert!(!moto.instances("ci-unknown").await.contains(&instances[0]));
    let leave = w.left_because("unknown_grace");
    let unknown_from = w.first_check(|c| c["busy"] == "Unknown").unwrap();
    let after = leave["uptime_s"].as_f64().unwrap() - unknown_from;
    println!("measured: unknown -> leave after {after:.2} s (unknown-grace 3 s, checks every 200 ms)");
    assert!(after >= 3.0, "not before the grace: {after}");
    assert!(after < 6.0, "within a few checks of the grace: {after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_stuck_on_busy_counts_as_broken_after_max_busy_and_the_instance_leaves() {
    let moto = Moto::start();
    let instances = moto.group("ci-stuck-busy", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, _) = fake_varz(1, None).await; // says busy, for ever
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let args = with(&["--max-busy", "3s"], &varz_wrapped_agent("1h", &varz_url, &agent));
    let mut w = watchdog(dir.path(), &moto.endpoint, &imds.uri(), &args);
    assert_eq!(w.exits_within(Duration::from_secs(30)).await, Some(0), "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-stuck-busy").await, 1);
    let leave = w.left_because("max_busy");
    let busy_from = w.first_check(|c| c["busy"] == "Busy").unwrap();
    let after = leave["uptime_s"].as_f64().unwrap() - busy_from;
    println!("measured: busy -> leave after {after:.2} s (max-busy 3 s)");
    assert!((3.0..6.0).contains(&after), "{after}");
    assert!(!pid_alive(&dir.path().join("agent.pid")), "the agent was stopped before the terminate");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_max_jobs_the_instance_leaves_as_soon_as_it_is_idle() {
    let moto = Moto::start();
    let instances = moto.group("ci-max-jobs", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("busy");
    let probe = format!("test -f {}", busy.display());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "1h", "--boot-timeout", "1h", "--max-jobs", "2", "--probe", &probe, "--stop-cmd", "true"],
    );
    let jobs_done = |w: &Watchdog| {
        w.events().iter().filter(|e| e["event"] == "check").filter_map(|e| e["jobs_done"].as_u64()).max()
    };
    for job in 1..=2u64 {
        std::fs::write(&busy, "job").unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || w
                .events()
                .iter()
                .rev()
                .find(|e| e["event"] == "check")
                .is_some_and(|c| c["busy"] == "Busy"))
            .await,
            "log:\n{}",
            w.dump()
        );
        std::fs::remove_file(&busy).unwrap();
        if job == 1 {
            assert!(wait_until(Duration::from_secs(20), || jobs_done(&w) == Some(1)).await, "log:\n{}", w.dump());
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(w.child.try_wait().unwrap(), None, "one job is not two; log:\n{}", w.dump());
        }
    }
    let done = Instant::now();
    assert_eq!(w.exits_within(Duration::from_secs(20)).await, Some(0), "log:\n{}", w.dump());
    println!("measured: second job done -> exit {:.2} s (max-jobs 2)", done.elapsed().as_secs_f64());
    assert_eq!(moto.desired("ci-max-jobs").await, 1);
    let leave = w.left_because("max_jobs");
    assert_eq!(leave["jobs_done"], 2);
}

async fn post_rebalance(imds: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/latest/meta-data/events/recommendations/rebalance"))
        .and(header("X-aws-ec2-metadata-token", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"noticeTime":"2026-12-04T19:00:00Z"}"#))
        .mount(imds)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebalance_recommendation_makes_an_idle_instance_leave_at_once() {
    let moto = Moto::start();
    let instances = moto.group("ci-rebalance", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(dir.path(), &moto.endpoint, &imds.uri(), &varz_wrapped_agent("1h", &varz_url, &agent));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "idle, but its idle timeout is an hour; log:\n{}", w.dump());
    post_rebalance(&imds).await;
    let posted = Instant::now();
    assert_eq!(w.exits_within(Duration::from_secs(20)).await, Some(0), "log:\n{}", w.dump());
    println!("measured: rebalance posted -> exit {:.2} s (idle)", posted.elapsed().as_secs_f64());
    assert!(posted.elapsed() < Duration::from_secs(5), "left within a few checks");
    assert_eq!(moto.desired("ci-rebalance").await, 1);
    w.left_because("rebalance");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_rebalance_recommendation_a_busy_instance_takes_no_new_job_and_leaves_when_done() {
    let moto = Moto::start();
    let instances = moto.group("ci-rebalance-busy", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("busy");
    std::fs::write(&busy, "job 9").unwrap();
    let probe = format!("test -f {}", busy.display());
    let agent = fake_agent(dir.path());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "1h", "--boot-timeout", "1h", "--probe", &probe, "--wrap", "--", "sh", "-c", &agent],
    );
    assert!(wait_until(Duration::from_secs(20), || w.saw("check")).await, "log:\n{}", w.dump());
    post_rebalance(&imds).await;
    assert!(wait_until(Duration::from_secs(10), || w.saw("drain_recheck")).await, "log:\n{}", w.dump());
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(&dir.path().join("agent.pid"))).await, "drained: SIGTERM");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "waits for the running job; log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-rebalance-busy").await, 2);
    assert_eq!(lines(&dir.path().join("starts")), 1, "not started again: it takes no new job");
    std::fs::remove_file(&busy).unwrap(); // the job finishes
    let done = Instant::now();
    assert_eq!(w.exits_within(Duration::from_secs(20)).await, Some(0), "log:\n{}", w.dump());
    println!("measured: job done -> exit {:.2} s (rebalance, drained)", done.elapsed().as_secs_f64());
    assert_eq!(moto.desired("ci-rebalance-busy").await, 1);
    w.left_because("rebalance");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_on_rebalance_ignore_a_recommendation_changes_nothing() {
    let moto = Moto::start();
    let instances = moto.group("ci-rebalance-ignore", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    post_rebalance(&imds).await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = fake_agent(dir.path());
    let varz_url = format!("{}/varz", varz.uri());
    let args = with(&["--on-rebalance", "ignore"], &varz_wrapped_agent("1h", &varz_url, &agent));
    let mut w = watchdog(dir.path(), &moto.endpoint, &imds.uri(), &args);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-rebalance-ignore").await, 2);
    assert_eq!(w.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ready_instance_that_never_got_a_job_leaves_at_its_idle_timeout_not_its_boot_timeout() {
    let moto = Moto::start();
    let instances = moto.group("ci-never-used", 0, 2).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &["--idle-timeout", "2s", "--boot-timeout", "1h", "--woodpecker-varz", &varz_url, "--stop-cmd", "true"],
    );
    assert_eq!(w.exits_within(Duration::from_secs(30)).await, Some(0), "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-never-used").await, 1);
    let leave = w.left_because("no_job_since_boot");
    let ready = w.first_check(|c| c["agent_ready"] == true).unwrap();
    let after = leave["uptime_s"].as_f64().unwrap() - ready;
    println!("measured: ready -> leave after {after:.2} s (idle-timeout 2 s, boot-timeout 1 h)");
    assert!((2.0..5.0).contains(&after), "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn at_min_size_an_instance_whose_probe_stays_unknown_stays() {
    let moto = Moto::start();
    let instances = moto.group("ci-unknown-floor", 1, 1).await;
    let imds = fake_imds(&instances[0]).await;
    let (varz, running) = fake_varz(1, None).await;
    let dir = tempfile::tempdir().unwrap();
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &[
            "--idle-timeout",
            "1s",
            "--boot-timeout",
            "1h",
            "--unknown-grace",
            "1s",
            "--woodpecker-varz",
            &varz_url,
            "--stop-cmd",
            "true",
        ],
    );
    assert!(wait_until(Duration::from_secs(20), || w.first_check(|c| c["busy"] == "Busy").is_some()).await);
    running.store(VARZ_BROKEN, Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(20), || w.saw("stay_at_min_size")).await, "log:\n{}", w.dump());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(w.child.try_wait().unwrap(), None, "log:\n{}", w.dump());
    assert_eq!(moto.desired("ci-unknown-floor").await, 1);
    assert!(moto.instances("ci-unknown-floor").await.contains(&instances[0]));
    assert!(!w.saw("leave"));
    let stay = w.events().into_iter().find(|e| e["event"] == "stay_at_min_size").unwrap();
    assert_eq!(stay["reason"], "UnknownGrace", "it would have left for the unknown grace");
    assert_eq!(w.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_heartbeat_tag_is_kept_fresh_while_running_and_removed_when_the_instance_leaves() {
    let moto = Moto::start();
    let instances = moto.group("ci-heartbeat", 0, 2).await;
    let me = instances[0].clone();
    let key = forge_scaler::agent::heartbeat_tag(&me);
    assert_eq!(key, format!("forge-scaler:heartbeat:{me}"));
    let imds = fake_imds(&me).await;
    let (varz, running) = fake_varz(1, None).await;
    let dir = tempfile::tempdir().unwrap();
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(
        dir.path(),
        &moto.endpoint,
        &imds.uri(),
        &[
            "--idle-timeout",
            "1s",
            "--boot-timeout",
            "1h",
            "--heartbeat-interval",
            "1s",
            "--woodpecker-varz",
            &varz_url,
            "--stop-cmd",
            "true",
        ],
    );
    let mut beats = std::collections::BTreeSet::new();
    let started = Instant::now();
    while beats.len() < 2 && started.elapsed() < Duration::from_secs(20) {
        if let Some(value) = moto.tags("ci-heartbeat").await.get(&key) {
            let at = chrono::DateTime::parse_from_rfc3339(value).expect("RFC 3339");
            assert!(value.ends_with('Z') && !value.contains('.'), "UTC to the second: {value}");
            assert!((chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_seconds().abs() < 30);
            beats.insert(value.clone());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(beats.len() >= 2, "the tag is rewritten every second: {beats:?}; log:\n{}", w.dump());
    running.store(0, Ordering::SeqCst); // the job ends: idle, then the instance leaves
    assert_eq!(w.exits_within(Duration::from_secs(20)).await, Some(0), "log:\n{}", w.dump());
    assert!(!moto.tags("ci-heartbeat").await.contains_key(&key), "removed when leaving");
    assert!(!w.saw("heartbeat_failed"), "log:\n{}", w.dump());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_heartbeat_is_logged_once_and_the_watchdog_works_on() {
    // The stub answers Describe* but not CreateOrUpdateTags/DeleteTags (like an instance
    // role without the permission): the instance still leaves.
    let stub = stub_autoscaling("i-0feedc0de0000003", "ci-no-tags", 0, 2).await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=TerminateInstanceInAutoScalingGroup"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"<TerminateInstanceInAutoScalingGroupResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><TerminateInstanceInAutoScalingGroupResult><Activity><ActivityId>a-1</ActivityId><AutoScalingGroupName>ci-no-tags</AutoScalingGroupName><Cause>test</Cause><StartTime>2026-12-04T18:00:00Z</StartTime><StatusCode>InProgress</StatusCode><Progress>0</Progress></Activity></TerminateInstanceInAutoScalingGroupResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></TerminateInstanceInAutoScalingGroupResponse>"#,
            "text/xml",
        ))
        .with_priority(1)
        .mount(&stub)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Tags"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: autoscaling:CreateOrUpdateTags</Message></Error><RequestId>r-2</RequestId></ErrorResponse>"#,
            "text/xml",
        ))
        .with_priority(1)
        .mount(&stub)
        .await;
    let imds = fake_imds("i-0feedc0de0000003").await;
    let (varz, _) = fake_varz(0, None).await;
    let dir = tempfile::tempdir().unwrap();
    let varz_url = format!("{}/varz", varz.uri());
    let mut w = watchdog(
        dir.path(),
        &stub.uri(),
        &imds.uri(),
        &[
            "--idle-timeout",
            "2s",
            "--boot-timeout",
            "2s",
            "--heartbeat-interval",
            "300ms",
            "--woodpecker-varz",
            &varz_url,
            "--stop-cmd",
            "true",
        ],
    );
    assert_eq!(w.exits_within(Duration::from_secs(30)).await, Some(0), "log:\n{}", w.dump());
    assert!(requests_with(&stub, "Action=CreateOrUpdateTags").await >= 3, "kept trying at each interval");
    let warnings = w.events().into_iter().filter(|e| e["event"] == "heartbeat_failed").count();
    assert_eq!(warnings, 1, "logged once; log:\n{}", w.dump());
    w.left_because("no_job_since_boot");
}
