//! The AWS edges against moto_server (real SDK, real wire protocol) and, for what moto cannot
//! produce, against a stub serving AWS's own error bodies (tests/fixtures/aws/).

mod support;

use forge_scaler::cloud::asg::AsgFleet;
use forge_scaler::cloud::ssm::SsmStore;
use forge_scaler::cloud::{Fleet, FleetError, ParamError, ParamStore, TAG_IDLE_TIMEOUT, TAG_LAST_SCALE_OUT};
use support::{GroupSpec, Moto};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---- Auto Scaling against moto ----

#[tokio::test(flavor = "multi_thread")]
async fn describe_maps_sizes_instances_and_tags() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(
        &sdk,
        &GroupSpec::new("ci-linux", 1, 10, 2).tag(TAG_LAST_SCALE_OUT, "2026-11-22T12:00:00Z").tag("team", "ci"),
    )
    .await;

    let groups = AsgFleet::new(&sdk).describe(&names(&["ci-linux"])).await.unwrap();

    let state = &groups["ci-linux"];
    assert_eq!((state.group.min, state.group.max, state.group.desired), (1, 10, 2));
    assert_eq!(state.group.in_service, 2, "moto puts instances InService at once");
    assert_eq!(state.group.booting, 0);
    assert_eq!(state.tags.get("team").map(String::as_str), Some("ci"));
    assert_eq!(state.group.last_scale_out.map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-22T12:00:00+00:00"));
}

#[tokio::test(flavor = "multi_thread")]
async fn set_desired_raises_the_group() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new("ci-linux", 0, 10, 1)).await;
    let fleet = AsgFleet::new(&sdk);

    fleet.set_desired("ci-linux", 4).await.unwrap();

    assert_eq!(support::desired_capacity(&sdk, "ci-linux").await, 4);
    assert_eq!(fleet.describe(&names(&["ci-linux"])).await.unwrap()["ci-linux"].group.desired, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_are_created_then_updated_and_read_back() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new("ci-linux", 0, 10, 0).tag("team", "ci")).await;
    let fleet = AsgFleet::new(&sdk);

    fleet
        .set_tags(
            "ci-linux",
            &[
                (TAG_IDLE_TIMEOUT.to_string(), "10m".to_string()),
                (TAG_LAST_SCALE_OUT.to_string(), "2026-11-22T12:00:00Z".to_string()),
            ],
        )
        .await
        .unwrap();
    fleet.set_tags("ci-linux", &[(TAG_IDLE_TIMEOUT.to_string(), "15m".to_string())]).await.unwrap();

    let tags = support::group_tags(&sdk, "ci-linux").await;
    assert_eq!(tags.get(TAG_IDLE_TIMEOUT).map(String::as_str), Some("15m"));
    assert_eq!(tags.get("team").map(String::as_str), Some("ci"), "other tags are kept");
    let state = &fleet.describe(&names(&["ci-linux"])).await.unwrap()["ci-linux"];
    assert_eq!(state.tags.get(TAG_IDLE_TIMEOUT).map(String::as_str), Some("15m"));
    assert!(state.group.last_scale_out.is_some(), "the cooldown tag feeds last_scale_out");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_describe_reads_several_groups_and_leaves_unknown_ones_out() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    support::create_group(&sdk, &GroupSpec::new("ci-a", 0, 5, 1)).await;
    support::create_group(&sdk, &GroupSpec::new("ci-b", 2, 8, 3)).await;
    support::create_group(&sdk, &GroupSpec::new("ci-other", 0, 1, 0)).await;

    let groups = AsgFleet::new(&sdk).describe(&names(&["ci-a", "ci-b", "ci-missing"])).await.unwrap();

    assert_eq!(groups.keys().map(String::as_str).collect::<Vec<_>>(), ["ci-a", "ci-b"]);
    assert_eq!((groups["ci-b"].group.min, groups["ci-b"].group.max, groups["ci-b"].group.desired), (2, 8, 3));
}

// ---- Auto Scaling against a stub: call counts, paging, Pending instances ----

fn describe_answer(groups: &[(&str, u32, u32, u32, &[&str])], next_token: Option<&str>) -> String {
    let mut members = String::new();
    for (name, min, max, desired, states) in groups {
        let mut instances = String::new();
        for (i, state) in states.iter().enumerate() {
            instances.push_str(&format!(
                "<member><InstanceId>i-{name}-{i}</InstanceId><InstanceType>t3.micro</InstanceType>\
                 <AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>{state}</LifecycleState>\
                 <HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>"
            ));
        }
        members.push_str(&format!(
            "<member><AutoScalingGroupName>{name}</AutoScalingGroupName><MinSize>{min}</MinSize>\
             <MaxSize>{max}</MaxSize><DesiredCapacity>{desired}</DesiredCapacity><DefaultCooldown>300</DefaultCooldown>\
             <AvailabilityZones><member>us-east-1a</member></AvailabilityZones><HealthCheckType>EC2</HealthCheckType>\
             <CreatedTime>2026-11-22T12:00:00Z</CreatedTime><Instances>{instances}</Instances>\
             <Tags><member><ResourceId>{name}</ResourceId><ResourceType>auto-scaling-group</ResourceType>\
             <Key>forge-scaler:boot-timeout</Key><Value>10m</Value><PropagateAtLaunch>false</PropagateAtLaunch></member></Tags>\
             </member>"
        ));
    }
    let token = next_token.map(|t| format!("<NextToken>{t}</NextToken>")).unwrap_or_default();
    format!(
        "<DescribeAutoScalingGroupsResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
         <DescribeAutoScalingGroupsResult><AutoScalingGroups>{members}</AutoScalingGroups>{token}\
         </DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\
         </DescribeAutoScalingGroupsResponse>"
    )
}

fn xml(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/xml")
}

#[tokio::test]
async fn describe_is_one_call_for_all_groups_and_follows_next_token() {
    let stub = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("NextToken=page-2"))
        .respond_with(xml(describe_answer(&[("ci-b", 0, 10, 3, &["InService", "Pending", "Pending:Wait"])], None)))
        .with_priority(1)
        .mount(&stub)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=DescribeAutoScalingGroups"))
        .respond_with(xml(describe_answer(&[("ci-a", 1, 4, 1, &["InService"])], Some("page-2"))))
        .with_priority(2)
        .mount(&stub)
        .await;
    let sdk = support::sdk_config_without_retries(&stub.uri()).await;

    let groups = AsgFleet::new(&sdk).describe(&names(&["ci-a", "ci-b"])).await.unwrap();

    let requests = stub.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "one call, plus one for the second page");
    for request in &requests {
        let body = String::from_utf8_lossy(&request.body);
        assert!(body.contains("AutoScalingGroupNames.member.1=ci-a"), "{body}");
        assert!(body.contains("AutoScalingGroupNames.member.2=ci-b"), "{body}");
    }
    assert_eq!(groups["ci-a"].group.in_service, 1);
    let b = &groups["ci-b"];
    assert_eq!((b.group.desired, b.group.in_service, b.group.booting), (3, 1, 2), "Pending* states are booting");
    assert_eq!(b.tags.get("forge-scaler:boot-timeout").map(String::as_str), Some("10m"));
}

#[tokio::test]
async fn more_names_than_one_call_takes_are_split() {
    let stub = MockServer::start().await;
    Mock::given(method("POST")).respond_with(xml(describe_answer(&[], None))).mount(&stub).await;
    let sdk = support::sdk_config_without_retries(&stub.uri()).await;
    let many: Vec<String> = (0..150).map(|i| format!("group-{i:03}")).collect();

    let groups = AsgFleet::new(&sdk).describe(&many).await.unwrap();

    assert!(groups.is_empty());
    let requests = stub.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "AWS takes at most 100 names per call");
    let first = String::from_utf8_lossy(&requests[0].body).to_string();
    assert!(first.contains("AutoScalingGroupNames.member.100=group-099") && first.contains("MaxRecords=100"));
    assert!(!first.contains("AutoScalingGroupNames.member.101"));
}

// ---- Auto Scaling error paths (AWS bodies moto cannot produce) ----

#[tokio::test]
async fn set_desired_above_max_is_a_validation_error_with_aws_message() {
    let stub =
        support::autoscaling_error_stub(&support::fixture("aws/set_desired_above_max.validation_error.xml")).await;
    let sdk = support::sdk_config_without_retries(&stub.uri()).await;

    let error = AsgFleet::new(&sdk).set_desired("ci-linux", 3).await.unwrap_err();

    match &error {
        FleetError::Validation { operation, group, message } => {
            assert_eq!(*operation, "SetDesiredCapacity");
            assert_eq!(group, "ci-linux");
            assert_eq!(message, "New SetDesiredCapacity value 3 is above max value 2 for the AutoScalingGroup.");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("SetDesiredCapacity") && text.contains("ci-linux"), "{text}");
    assert!(!text.contains(support::SECRET_ACCESS_KEY) && !text.contains(support::ACCESS_KEY_ID), "{text}");
}

#[tokio::test]
async fn throttling_is_its_own_error() {
    let stub = support::autoscaling_error_stub(&support::fixture("aws/throttling.xml")).await;
    let sdk = support::sdk_config_without_retries(&stub.uri()).await;
    let fleet = AsgFleet::new(&sdk);

    let set = fleet.set_desired("ci-linux", 3).await.unwrap_err();
    let describe = fleet.describe(&names(&["ci-linux", "ci-arm"])).await.unwrap_err();

    assert!(matches!(&set, FleetError::Throttled { operation: "SetDesiredCapacity", .. }), "{set:?}");
    assert!(set.to_string().contains("ci-linux") && set.to_string().contains("Rate exceeded"), "{set}");
    assert!(matches!(&describe, FleetError::Throttled { operation: "DescribeAutoScalingGroups", .. }), "{describe:?}");
    assert!(describe.to_string().contains("ci-arm"), "{describe}");
}

#[tokio::test]
async fn tags_on_a_refused_group_name_the_operation_and_group() {
    let stub =
        support::autoscaling_error_stub(&support::fixture("aws/set_desired_above_max.validation_error.xml")).await;
    let sdk = support::sdk_config_without_retries(&stub.uri()).await;

    let error = AsgFleet::new(&sdk).set_tags("ci-linux", &[("k".into(), "v".into())]).await.unwrap_err();

    assert!(
        matches!(&error, FleetError::Validation { operation: "CreateOrUpdateTags", group, .. } if group == "ci-linux")
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_service_error_naming_operation_and_groups() {
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let sdk = support::sdk_config_without_retries(&closed).await;

    let error = AsgFleet::new(&sdk).describe(&names(&["ci-linux"])).await.unwrap_err();

    assert!(matches!(&error, FleetError::Service { operation: "DescribeAutoScalingGroups", .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("ci-linux"), "{text}");
    assert!(text.contains("Connection refused"), "the cause is named: {text}");
    assert!(!text.contains("DispatchFailure("), "no Debug dump of the SDK error: {text}");
    assert!(!text.contains(support::SECRET_ACCESS_KEY), "{text}");
}

// ---- SSM against moto ----

#[tokio::test(flavor = "multi_thread")]
async fn get_tree_reads_every_page_recursively_and_decrypts() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    for i in 0..23 {
        support::put_parameter(&sdk, &format!("/fs/test/pools/p{i:02}/slots"), &i.to_string(), false).await;
    }
    support::put_parameter(&sdk, "/fs/test/forges/wp/token", "s3cr3t-token", true).await;
    support::put_parameter(&sdk, "/fs/test/settings/dry_run", "true", false).await;
    support::put_parameter(&sdk, "/fs/other/settings/dry_run", "false", false).await;

    let mut params = SsmStore::new(&sdk).get_tree("/fs/test/").await.unwrap();
    params.sort();

    assert_eq!(params.len(), 25, "all pages of 10, nothing outside the prefix");
    assert!(params.contains(&("/fs/test/forges/wp/token".to_string(), "s3cr3t-token".to_string())));
    assert!(params.contains(&("/fs/test/pools/p22/slots".to_string(), "22".to_string())));
    assert!(params.iter().all(|(name, _)| name.starts_with("/fs/test/")));
}

#[tokio::test(flavor = "multi_thread")]
async fn get_tree_of_an_empty_prefix_is_empty() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;

    assert!(SsmStore::new(&sdk).get_tree("/nothing/here").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn put_writes_strings_and_secure_strings_and_overwrites() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let store = SsmStore::new(&sdk);

    store.put("/fs/put/pools/linux/slots", "2", false).await.unwrap();
    store.put("/fs/put/pools/linux/slots", "3", false).await.unwrap();
    store.put("/fs/put/forges/wp/token", "tok-1", true).await.unwrap();

    assert_eq!(support::get_parameter(&sdk, "/fs/put/pools/linux/slots").await, "3");
    assert_eq!(support::get_parameter(&sdk, "/fs/put/forges/wp/token").await, "tok-1");
    let kinds = aws_sdk_ssm::Client::new(&sdk)
        .get_parameters()
        .names("/fs/put/pools/linux/slots")
        .names("/fs/put/forges/wp/token")
        .send()
        .await
        .unwrap();
    let kind_of = |name: &str| {
        kinds
            .parameters()
            .iter()
            .find(|p| p.name() == Some(name))
            .and_then(|p| p.r#type())
            .map(|t| t.as_str().to_string())
    };
    assert_eq!(kind_of("/fs/put/pools/linux/slots").as_deref(), Some("String"));
    assert_eq!(kind_of("/fs/put/forges/wp/token").as_deref(), Some("SecureString"));
}

// ---- SSM error paths ----

#[tokio::test]
async fn ssm_parameter_not_found_is_a_clear_error() {
    let stub =
        support::ssm_error_stub("ParameterNotFound", &support::fixture("aws/ssm_parameter_not_found.json")).await;
    let sdk = support::sdk_config_without_retries(&stub.uri()).await;

    let error = SsmStore::new(&sdk).get_tree("/forge-scaler/prod").await.unwrap_err();

    let ParamError::Service { operation, path, message } = &error;
    assert_eq!(*operation, "GetParametersByPath");
    assert_eq!(path, "/forge-scaler/prod");
    assert!(message.contains("ParameterNotFound"), "{message}");
    assert!(message.contains("Parameter /forge-scaler/prod/pools/linux/asg not found."), "{message}");
    assert!(!error.to_string().contains(support::SECRET_ACCESS_KEY));
}

#[tokio::test]
async fn ssm_access_denied_says_which_permission_is_missing() {
    let body = r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform: ssm:PutParameter"}"#;
    let stub = support::ssm_error_stub("AccessDeniedException", body).await;
    let sdk = support::sdk_config_without_retries(&stub.uri()).await;

    let error = SsmStore::new(&sdk).put("/forge-scaler/prod/settings/dry_run", "true", false).await.unwrap_err();

    let text = error.to_string();
    assert!(text.contains("PutParameter") && text.contains("/forge-scaler/prod/settings/dry_run"), "{text}");
    assert!(text.contains("AccessDeniedException") && text.contains("ssm:PutParameter"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_failing_on_an_unknown_group_is_a_service_error_naming_it() {
    // moto answers HTTP 500 with no XML for an unknown group (AWS: ValidationError).
    let moto = Moto::start();
    let sdk = support::sdk_config_without_retries(&moto.endpoint()).await;

    let error = AsgFleet::new(&sdk).set_desired("ci-nowhere", 2).await.unwrap_err();

    assert!(matches!(&error, FleetError::Service { operation: "SetDesiredCapacity", .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("ci-nowhere") && text.contains("500"), "{text}");
}
