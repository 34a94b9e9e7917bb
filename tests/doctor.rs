//! `forge-scaler doctor` against moto (groups, tags, instances) and fake forges on loopback:
//! one test per check with a healthy and a broken setup, the exit statuses, `--json`, the IAM
//! simulation against a loopback stub serving AWS's XML (moto has no SimulatePrincipalPolicy),
//! and that no planted token ever reaches the output.

mod support;

use chrono::{SecondsFormat, Utc};
use forge_scaler::config::RawConfig;
use forge_scaler::doctor::shell::{self, Deployment};
use forge_scaler::doctor::{Checklist, Status};
use serde_json::Value;
use std::process::Output;
use support::Moto;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_forge-scaler");
const TOKEN: &str = "doctor-planted-secret-token-7f3a";
const OTHER_TOKEN: &str = "doctor-second-planted-secret-91c2";
const ROLE: &str = "arn:aws:iam::123456789012:role/forge-scaler-fn";

/// A Woodpecker fake whose `GET /api/user` accepts only `Bearer TOKEN` and says `admin`.
async fn woodpecker_user(admin: bool) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/user"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": 1, "login": "ci-bot", "admin": admin})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/user"))
        .respond_with(ResponseTemplate::new(401).set_body_string("token is invalid"))
        .mount(&server)
        .await;
    server
}

fn forge(name: &str, url: &str, token: &str) -> String {
    format!("[forges.{name}]\nkind = \"woodpecker\"\nurl = \"{url}\"\ntoken = \"{token}\"\n")
}

fn pool(name: &str, forge: &str, asg: &str) -> String {
    format!("[pools.{name}]\nforge = \"{forge}\"\nasg = \"{asg}\"\n")
}

/// Creates a group in moto with scale-in protection on new instances as asked and, when
/// `ticked`, the tags the function writes.
async fn create_group(sdk: &aws_config::SdkConfig, name: &str, max: i32, desired: i32, protected: bool, ticked: bool) {
    let launch_configuration = format!("{name}-lc");
    support::create_launch_configuration(sdk, &launch_configuration).await;
    let tags: Vec<aws_sdk_autoscaling::types::Tag> = if ticked {
        vec![tag(name, "forge-scaler:idle-timeout", "10m"), tag(name, "forge-scaler:boot-timeout", "10m")]
    } else {
        vec![]
    };
    aws_sdk_autoscaling::Client::new(sdk)
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(&launch_configuration)
        .min_size(0)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones(support::ZONE)
        .new_instances_protected_from_scale_in(protected)
        .set_tags(if tags.is_empty() { None } else { Some(tags) })
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto: create group {name}: {e:?}"));
}

fn tag(group: &str, key: &str, value: &str) -> aws_sdk_autoscaling::types::Tag {
    aws_sdk_autoscaling::types::Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(key)
        .value(value)
        .propagate_at_launch(false)
        .build()
}

/// The ids of a group's in-service instances in moto.
async fn in_service(sdk: &aws_config::SdkConfig, group: &str) -> Vec<String> {
    let answer = aws_sdk_autoscaling::Client::new(sdk)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("moto describe");
    answer.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// Writes the heartbeat tag a watchdog would, `age` before now.
async fn heartbeat(sdk: &aws_config::SdkConfig, group: &str, instance: &str, age: chrono::Duration) {
    let at = (Utc::now() - age).to_rfc3339_opts(SecondsFormat::Secs, true);
    aws_sdk_autoscaling::Client::new(sdk)
        .create_or_update_tags()
        .tags(tag(group, &format!("forge-scaler:heartbeat:{instance}"), &at))
        .send()
        .await
        .expect("moto tag");
}

async fn doctor(moto: &Moto, toml: &str) -> Checklist {
    let raw = RawConfig::from_toml(toml, |_| None).expect("TOML");
    let sdk = moto.sdk().await;
    shell::run(&Deployment { raw: &raw, sdk: Some(&sdk), ssm_prefix: None, function_role: None }, Utc::now()).await
}

/// The problem lines, as printed.
fn problems(list: &Checklist) -> Vec<String> {
    list.checks.iter().filter(|c| c.status == Status::Problem).map(|c| c.line()).collect()
}

fn lines_about<'a>(list: &'a Checklist, subject: &str) -> Vec<&'a forge_scaler::doctor::Check> {
    list.checks.iter().filter(|c| c.subject.starts_with(subject)).collect()
}

#[tokio::test]
async fn a_healthy_deployment_passes_every_check_and_a_live_watchdog_is_ok() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_group(&sdk, "ci-linux", 4, 1, true, true).await;
    let instances = in_service(&sdk, "ci-linux").await;
    assert_eq!(instances.len(), 1, "moto runs the desired instance");
    heartbeat(&sdk, "ci-linux", &instances[0], chrono::Duration::minutes(3)).await;
    let wp = woodpecker_user(true).await;

    let list = doctor(&moto, &(forge("wp", &wp.uri(), TOKEN) + &pool("linux", "wp", "ci-linux"))).await;

    assert!(list.passed(), "{}", list.text());
    assert_eq!(list.exit_status(), 0);
    let text = list.text();
    assert!(text.contains("ok      config: valid (1 forge(s), 1 pool(s))"), "{text}");
    assert!(text.contains("forge wp (woodpecker): answers; token of admin ci-bot"), "{text}");
    assert!(text.contains(&format!("watchdog alive on {}", instances[0])), "{text}");
}

#[tokio::test]
async fn an_invalid_configuration_is_listed_and_every_valid_forge_and_pool_is_still_checked() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_group(&sdk, "ci-good", 4, 0, true, true).await;
    create_group(&sdk, "ci-orphan", 4, 0, false, true).await;
    let wp = woodpecker_user(true).await;
    let toml = forge("wp", &wp.uri(), TOKEN)
        + "[forges.broken]\nkind = \"woodpecker\"\nurl = \"http://127.0.0.1:9\"\n"
        + &pool("good", "wp", "ci-good")
        + &pool("orphan", "broken", "ci-orphan")
        + &pool("bad", "wp", "ci-bad")
        + "slots = 0\n";

    let list = doctor(&moto, &toml).await;

    assert_eq!(list.exit_status(), 1);
    let problems = problems(&list);
    assert!(problems.iter().any(|p| p.starts_with("problem config forges/broken/token: missing")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("problem config pools/bad/slots")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("problem forge broken: not probed")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("problem pool bad: group not checked")), "{problems:?}");
    // The healthy forge was probed and the valid pools' groups were described.
    assert_eq!(lines_about(&list, "forge wp")[0].status, Status::Ok, "{}", list.text());
    assert!(lines_about(&list, "group ci-good").iter().all(|c| c.status == Status::Ok), "{}", list.text());
    let orphan = lines_about(&list, "group ci-orphan");
    assert!(orphan.iter().any(|c| c.detail.contains("not protected from scale-in")), "{}", list.text());
}

#[tokio::test]
async fn a_refused_token_a_non_admin_token_and_an_unreachable_forge_are_each_a_problem() {
    let moto = Moto::start();
    let good = woodpecker_user(true).await;
    let not_admin = woodpecker_user(false).await;
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let toml = forge("good", &good.uri(), TOKEN)
        + &forge("refused", &good.uri(), OTHER_TOKEN)
        + &forge("plain", &not_admin.uri(), TOKEN)
        + &forge("down", &closed, TOKEN)
        + "[pools.cmd]\nforge = \"good\"\nfleet = \"command\"\ncommand = \"true\"\nmax_instances = \"1\"\n";

    let list = doctor(&moto, &toml).await;

    assert_eq!(lines_about(&list, "forge good")[0].status, Status::Ok, "{}", list.text());
    let refused = lines_about(&list, "forge refused")[0];
    assert!(refused.status == Status::Problem && refused.detail.contains("unauthorized (HTTP 401)"), "{refused:?}");
    let plain = lines_about(&list, "forge plain")[0];
    assert!(plain.detail.contains("ci-bot is not an admin"), "{plain:?}");
    let down = lines_about(&list, "forge down")[0];
    assert_eq!(down.status, Status::Problem, "{down:?}");
    assert_eq!(list.exit_status(), 1);
}

#[tokio::test]
async fn a_missing_group_an_unprotected_group_and_a_group_the_function_never_ticked_are_problems() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_group(&sdk, "ci-fine", 4, 0, true, true).await;
    create_group(&sdk, "ci-unprotected", 4, 0, false, true).await;
    create_group(&sdk, "ci-untagged", 4, 0, true, false).await;
    create_group(&sdk, "ci-never", 0, 0, true, true).await;
    let wp = woodpecker_user(true).await;
    let toml = forge("wp", &wp.uri(), TOKEN)
        + &pool("fine", "wp", "ci-fine")
        + &pool("unprotected", "wp", "ci-unprotected")
        + &pool("untagged", "wp", "ci-untagged")
        + &pool("never", "wp", "ci-never")
        + &pool("missing", "wp", "ci-missing");

    let list = doctor(&moto, &toml).await;

    assert!(lines_about(&list, "group ci-fine").iter().all(|c| c.status == Status::Ok), "{}", list.text());
    let problems = problems(&list);
    let about = |group: &str, needle: &str| problems.iter().any(|p| p.contains(group) && p.contains(needle));
    assert!(about("ci-unprotected", "new instances are not protected from scale-in"), "{problems:?}");
    assert!(about("ci-untagged", "the function has not ticked this group yet"), "{problems:?}");
    assert!(about("ci-never", "MaxSize 0 means the group can never launch"), "{problems:?}");
    assert!(about("ci-missing", "does not exist in this region"), "{problems:?}");
    assert_eq!(problems.len(), 4, "{problems:?}");
}

#[tokio::test]
async fn an_in_service_instance_without_a_fresh_heartbeat_names_its_watchdog() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_group(&sdk, "ci-busy", 4, 3, true, true).await;
    let ids = in_service(&sdk, "ci-busy").await;
    assert_eq!(ids.len(), 3);
    heartbeat(&sdk, "ci-busy", &ids[0], chrono::Duration::minutes(2)).await;
    heartbeat(&sdk, "ci-busy", &ids[1], chrono::Duration::minutes(40)).await;
    let wp = woodpecker_user(true).await;

    let list = doctor(&moto, &(forge("wp", &wp.uri(), TOKEN) + &pool("busy", "wp", "ci-busy"))).await;

    let watchdogs: Vec<_> =
        lines_about(&list, "group ci-busy").into_iter().filter(|c| c.detail.contains("watchdog")).collect();
    assert_eq!(watchdogs.len(), 3, "{}", list.text());
    let line = |id: &str| watchdogs.iter().find(|c| c.detail.contains(id)).expect("a line per instance");
    assert_eq!(line(&ids[0]).status, Status::Ok);
    assert!(line(&ids[1]).detail.contains("last heartbeat 40m"), "{}", list.text());
    assert!(line(&ids[2]).detail.contains(&format!("watchdog not running on {}: no heartbeat tag", ids[2])));
    assert!(line(&ids[2]).fix.as_deref().unwrap().contains("journalctl -u forge-scaler-agent"));
    assert_eq!(list.exit_status(), 1);
}

/// Answers SimulatePrincipalPolicy (AWS Query, form body) with AWS's XML: `implicitDeny` for the
/// action named in `denied`, `allowed` for every other.
struct IamSimulator {
    denied: &'static str,
}

impl Respond for IamSimulator {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body).into_owned().collect();
        let field = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(field("Action"), "SimulatePrincipalPolicy");
        assert_eq!(field("PolicySourceArn"), ROLE);
        let action = field("ActionNames.member.1");
        let resource = field("ResourceArns.member.1");
        let decision = if action == self.denied { "implicitDeny" } else { "allowed" };
        let body = format!(
            r#"<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <SimulatePrincipalPolicyResult>
    <IsTruncated>false</IsTruncated>
    <EvaluationResults>
      <member>
        <MatchedStatements/>
        <MissingContextValues/>
        <EvalResourceName>{resource}</EvalResourceName>
        <EvalDecision>{decision}</EvalDecision>
        <EvalActionName>{action}</EvalActionName>
      </member>
    </EvaluationResults>
  </SimulatePrincipalPolicyResult>
  <ResponseMetadata>
    <RequestId>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</RequestId>
  </ResponseMetadata>
</SimulatePrincipalPolicyResponse>"#
        );
        ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/xml")
    }
}

async fn iam_stub(denied: &'static str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(IamSimulator { denied }).mount(&server).await;
    server
}

/// Runs the binary against moto (AWS_ENDPOINT_URL) with IAM at `iam` (AWS_ENDPOINT_URL_IAM).
async fn run_binary(moto: &Moto, iam: Option<&str>, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("RUST_LOG")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .kill_on_drop(true);
    for (key, value) in moto.env() {
        command.env(key, value);
    }
    if let Some(iam) = iam {
        command.env("AWS_ENDPOINT_URL_IAM", iam);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .expect("doctor ends within 2 minutes")
        .expect("run forge-scaler");
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    for secret in [TOKEN, OTHER_TOKEN] {
        assert!(!all.contains(secret), "a planted token reached the output:\n{all}");
    }
    output
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("forge-scaler.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

#[tokio::test]
async fn the_function_role_is_simulated_per_call_and_a_denied_call_is_a_problem() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_group(&sdk, "ci-linux", 4, 0, true, true).await;
    let wp = woodpecker_user(true).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &(forge("wp", &wp.uri(), TOKEN) + &pool("linux", "wp", "ci-linux")));

    let allowed = iam_stub("none").await;
    let output =
        run_binary(&moto, Some(&allowed.uri()), &["doctor", "--config", &config, "--function-role", ROLE]).await;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(allowed.received_requests().await.unwrap().len(), 3, "Describe on *, SetDesired and tags on the group");
    assert!(text.contains("may call autoscaling:SetDesiredCapacity on arn:aws:autoscaling:"), "{text}");

    let denying = iam_stub("autoscaling:SetDesiredCapacity").await;
    let output =
        run_binary(&moto, Some(&denying.uri()), &["doctor", "--config", &config, "--function-role", ROLE]).await;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(1), "{text}");
    let problem = text.lines().find(|l| l.starts_with("problem role")).expect("a role problem line");
    assert!(
        problem.contains("may not call autoscaling:SetDesiredCapacity") && problem.contains("implicitDeny"),
        "{text}"
    );
    assert!(problem.contains("autoScalingGroupName/ci-linux"), "{text}");
}

#[tokio::test]
async fn a_token_echoed_by_a_broken_forge_never_reaches_text_or_json_output() {
    let moto = Moto::start();
    let echo = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(500).set_body_string(format!("bad request from Bearer {TOKEN} and {OTHER_TOKEN}")),
        )
        .mount(&echo)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let url_with_secret = echo.uri().replace("http://", &format!("http://user:{OTHER_TOKEN}@"));
    let toml = forge("wp", &echo.uri(), TOKEN)
        + &forge("other", &format!("{url_with_secret}/?api_key={OTHER_TOKEN}"), OTHER_TOKEN)
        + &pool("linux", "wp", "ci-absent");
    let config = write_config(&dir, &toml);

    let text = run_binary(&moto, None, &["doctor", "--config", &config]).await;
    assert_eq!(text.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&text.stdout).contains("problem forge wp (woodpecker)"));

    let json = run_binary(&moto, None, &["doctor", "--config", &config, "--json"]).await;
    assert_eq!(json.status.code(), Some(1));
    let document: Value = serde_json::from_slice(&json.stdout).expect("stdout is only JSON");
    assert_eq!(document["passed"], false);
    assert!(document["checks"].as_array().unwrap().iter().any(|c| c["status"] == "problem"));
}

#[tokio::test]
async fn doctor_exits_zero_when_all_pass_one_on_a_problem_and_two_on_usage_errors() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_group(&sdk, "ci-linux", 4, 0, true, true).await;
    let wp = woodpecker_user(true).await;
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(&dir, &(forge("wp", &wp.uri(), TOKEN) + &pool("linux", "wp", "ci-linux")));

    let passed = run_binary(&moto, None, &["doctor", "--config", &good, "--json"]).await;
    assert_eq!(passed.status.code(), Some(0), "{}", String::from_utf8_lossy(&passed.stdout));
    assert_eq!(serde_json::from_slice::<Value>(&passed.stdout).unwrap()["passed"], true);

    let missing_file = run_binary(&moto, None, &["doctor", "--config", "/nonexistent/forge-scaler.toml"]).await;
    assert_eq!(missing_file.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing_file.stdout).contains("problem config: cannot be loaded"));

    let no_source = run_binary(&moto, None, &["doctor"]).await;
    assert_eq!(no_source.status.code(), Some(2));
    let both = run_binary(&moto, None, &["doctor", "--config", &good, "--ssm-prefix", "/x"]).await;
    assert_eq!(both.status.code(), Some(2));
}

/// Serves `GET route` with `body` to requests carrying `auth` = `value`; anything else is 401.
async fn serve_with_auth(server: &MockServer, route: &str, auth: &str, value: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(route))
        .and(header(auth, value))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn every_forge_kind_is_probed_at_its_cheap_endpoint_with_its_own_auth() {
    let moto = Moto::start();
    let fake = MockServer::start().await;
    let bearer = format!("Bearer {TOKEN}");
    let gitea_auth = format!("token {TOKEN}");
    let buildkite_auth = format!("Token {TOKEN}");
    serve_with_auth(
        &fake,
        "/gitea/api/v1/user",
        "authorization",
        &gitea_auth,
        serde_json::json!({"login": "g", "is_admin": true}),
    )
    .await;
    serve_with_auth(
        &fake,
        "/drone/api/user",
        "authorization",
        &bearer,
        serde_json::json!({"login": "d", "admin": true}),
    )
    .await;
    serve_with_auth(
        &fake,
        "/gh/repos/acme/app",
        "authorization",
        &bearer,
        serde_json::json!({"full_name": "acme/app"}),
    )
    .await;
    serve_with_auth(&fake, "/gl/api/v4/projects/acme%2Fapp", "private-token", TOKEN, serde_json::json!({"id": 7}))
        .await;
    serve_with_auth(
        &fake,
        "/bk/v3/metrics",
        "authorization",
        &buildkite_auth,
        serde_json::json!({"organization": {"slug": "acme"}}),
    )
    .await;
    serve_with_auth(&fake, "/generic/queue", "authorization", &bearer, serde_json::json!({"queued": 3})).await;
    let base = fake.uri();
    let toml = format!(
        r#"
[forges.gitea]
kind = "gitea"
url = "{base}/gitea"
token = "{TOKEN}"
[forges.drone]
kind = "drone"
url = "{base}/drone"
token = "{TOKEN}"
[forges.github]
kind = "github"
url = "{base}/gh"
token = "{TOKEN}"
repos = "acme/app"
[forges.gitlab]
kind = "gitlab"
url = "{base}/gl"
token = "{TOKEN}"
projects = "acme/app"
[forges.buildkite]
kind = "buildkite"
url = "{base}/bk"
token = "{TOKEN}"
[forges.generic]
kind = "generic"
url = "{base}/generic/queue"
token = "{TOKEN}"
pending_pointer = "/queued"
[forges.generic_wrong_pointer]
kind = "generic"
url = "{base}/generic/queue"
token = "{TOKEN}"
pending_pointer = "/pending"
[pools.cmd]
forge = "gitea"
fleet = "command"
command = "true"
max_instances = "1"
"#
    );

    let list = doctor(&moto, &toml).await;

    let forges: Vec<_> = lines_about(&list, "forge ");
    assert_eq!(forges.len(), 7, "{}", list.text());
    for check in &forges {
        let expected = if check.subject.contains("generic_wrong_pointer") { Status::Problem } else { Status::Ok };
        assert_eq!(check.status, expected, "{}", list.text());
    }
    assert!(list.text().contains("agent token of organization acme"), "{}", list.text());
    assert!(list.text().contains("pending_pointer \"/pending\" is not in the answer"), "{}", list.text());
}

#[tokio::test]
async fn doctor_reads_an_ssm_prefix_and_checks_the_role_may_read_it() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    create_group(&sdk, "ci-linux", 4, 0, true, true).await;
    let wp = woodpecker_user(true).await;
    for (key, value, secure) in [
        ("forges/wp/kind", "woodpecker", false),
        ("forges/wp/url", wp.uri().as_str(), false),
        ("forges/wp/token", TOKEN, true),
        ("pools/linux/forge", "wp", false),
        ("pools/linux/asg", "ci-linux", false),
    ] {
        support::put_parameter(&sdk, &format!("/forge-scaler/{key}"), value, secure).await;
    }
    let iam = iam_stub("ssm:GetParametersByPath").await;

    let output =
        run_binary(&moto, Some(&iam.uri()), &["doctor", "--ssm-prefix", "/forge-scaler", "--function-role", ROLE])
            .await;

    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("ok      forge wp (woodpecker)"), "{text}");
    let problems: Vec<&str> = text.lines().filter(|l| l.starts_with("problem")).collect();
    assert_eq!(problems.len(), 1, "{text}");
    assert!(
        problems[0].contains(
            "may not call ssm:GetParametersByPath on arn:aws:ssm:us-east-1:123456789012:parameter/forge-scaler"
        ),
        "{text}"
    );
}
