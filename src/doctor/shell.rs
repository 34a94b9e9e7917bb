//! `forge-scaler doctor`'s I/O: probes each valid forge, describes every pool's group once and
//! simulates the function role's calls, each with its own deadline, and hands the facts to the
//! pure checklist builders in [`super`]. A piece that fails becomes its own problem line;
//! nothing here stops the other checks.

use super::{
    config_checks, forge_check, function_calls, group_checks, iam_check, unchecked_pool, unprobed_forge, Checklist,
    GroupFacts,
};
use crate::config::{Config, RawConfig};
use crate::forge;
use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest one forge probe may take (every request of it).
pub const FORGE_PROBE_DEADLINE: Duration = Duration::from_secs(30);
/// Longest describing the groups or one IAM simulation may take.
pub const AWS_CALL_DEADLINE: Duration = Duration::from_secs(30);
/// Group names per DescribeAutoScalingGroups (its `MaxRecords` maximum).
const NAMES_PER_DESCRIBE: usize = 100;

/// What doctor checks: the raw configuration, the AWS configuration (None: no region, so the
/// AWS checks are problems), where the configuration came from, and the function's role.
pub struct Deployment<'a> {
    pub raw: &'a RawConfig,
    pub sdk: Option<&'a aws_config::SdkConfig>,
    pub ssm_prefix: Option<&'a str>,
    pub function_role: Option<&'a str>,
}

/// Runs every check; the checklist never contains a configured token.
pub async fn run(deployment: &Deployment<'_>, now: DateTime<Utc>) -> Checklist {
    let (config, problems) = Config::validate_partial(deployment.raw);
    let mut checks = config_checks(&config, &problems);

    for name in deployment.raw.forges.keys().filter(|n| !config.forges.contains_key(*n)) {
        checks.push(unprobed_forge(name));
    }
    let probes = config.forges.values().map(|f| async move {
        let answer = match tokio::time::timeout(FORGE_PROBE_DEADLINE, forge::check::check(f)).await {
            Ok(Ok(seen)) => Ok(seen),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", FORGE_PROBE_DEADLINE.as_secs())),
        };
        forge_check(&f.name, f.kind.as_str(), answer)
    });
    checks.extend(futures::future::join_all(probes).await);

    let names: Vec<String> = config.pools.iter().filter_map(|p| p.asg().map(str::to_string)).collect();
    let groups = match deployment.sdk {
        None => Err("no AWS region: set AWS_REGION (or `region` in the AWS profile)".to_string()),
        Some(_) if names.is_empty() => Ok(BTreeMap::new()),
        Some(sdk) => match tokio::time::timeout(AWS_CALL_DEADLINE, describe_groups(sdk, &names)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {}s", AWS_CALL_DEADLINE.as_secs())),
        },
    };
    for name in deployment.raw.pools.keys().filter(|n| config.pool(n).is_none()) {
        checks.push(unchecked_pool(name));
    }
    for pool in &config.pools {
        let described = match (&groups, pool.asg()) {
            (Err(why), Some(_)) => Err(why.clone()),
            (Ok(found), Some(name)) => Ok(found.get(name)),
            (_, None) => Ok(None),
        };
        checks.extend(group_checks(pool, described, now));
    }

    if let Some(role) = deployment.function_role {
        let region = deployment.sdk.and_then(|s| s.region()).map_or("*".to_string(), |r| r.to_string());
        let known: Vec<(String, Option<String>)> = names
            .iter()
            .map(|n| (n.clone(), groups.as_ref().ok().and_then(|g| g.get(n)).and_then(|g| g.arn.clone())))
            .collect();
        for call in function_calls(role, &region, &known, deployment.ssm_prefix) {
            let decision = match deployment.sdk {
                None => Err("no AWS region".to_string()),
                Some(sdk) => {
                    match tokio::time::timeout(AWS_CALL_DEADLINE, simulate(sdk, role, call.action, &call.resource))
                        .await
                    {
                        Ok(answer) => answer,
                        Err(_) => Err(format!("no answer within {}s", AWS_CALL_DEADLINE.as_secs())),
                    }
                }
            };
            checks.push(iam_check(role, &call, decision));
        }
    }

    let secrets: Vec<&str> =
        deployment.raw.forges.values().filter_map(|keys| keys.get("token")).map(|t| t.trim()).collect();
    Checklist { checks }.scrubbed(&secrets)
}

/// Every named group that exists, by name (absent names are missing groups).
async fn describe_groups(
    sdk: &aws_config::SdkConfig,
    names: &[String],
) -> Result<BTreeMap<String, GroupFacts>, String> {
    let client = aws_sdk_autoscaling::Client::new(sdk);
    let mut found = BTreeMap::new();
    for chunk in names.chunks(NAMES_PER_DESCRIBE) {
        let mut next_token: Option<String> = None;
        loop {
            let answer = client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(NAMES_PER_DESCRIBE as i32)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| sdk_error_text("DescribeAutoScalingGroups", &e))?;
            for group in answer.auto_scaling_groups() {
                let Some(name) = group.auto_scaling_group_name().filter(|n| chunk.iter().any(|c| c == n)) else {
                    continue;
                };
                found.insert(name.to_string(), group_facts(group));
            }
            match answer.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => break,
            }
        }
    }
    Ok(found)
}

fn group_facts(group: &aws_sdk_autoscaling::types::AutoScalingGroup) -> GroupFacts {
    let size = |n: Option<i32>| n.map_or(0, |n| u32::try_from(n).unwrap_or(0));
    GroupFacts {
        arn: group.auto_scaling_group_arn().map(str::to_string),
        min_size: size(group.min_size()),
        max_size: size(group.max_size()),
        desired: size(group.desired_capacity()),
        new_instances_protected_from_scale_in: group.new_instances_protected_from_scale_in().unwrap_or(false),
        tags: group
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
        in_service: group
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect(),
    }
}

/// IAM's decision for the role making `action` on `resource`.
async fn simulate(sdk: &aws_config::SdkConfig, role: &str, action: &str, resource: &str) -> Result<String, String> {
    let answer = aws_sdk_iam::Client::new(sdk)
        .simulate_principal_policy()
        .policy_source_arn(role)
        .action_names(action)
        .resource_arns(resource)
        .send()
        .await
        .map_err(|e| sdk_error_text("SimulatePrincipalPolicy", &e))?;
    answer
        .evaluation_results()
        .iter()
        .find(|r| r.eval_action_name() == action)
        .map(|r| r.eval_decision().as_str().to_string())
        .ok_or_else(|| format!("SimulatePrincipalPolicy answered no decision for {action}"))
}

/// `OPERATION: Code: message`, or the error chain when AWS gave no code.
fn sdk_error_text<E, R>(operation: &str, error: &aws_sdk_autoscaling::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match error.as_service_error() {
        Some(service) => {
            format!("{operation}: {}: {}", service.code().unwrap_or("error"), service.message().unwrap_or("no message"))
        }
        None => format!("{operation}: {}", crate::cloud::error_chain(error)),
    }
}
