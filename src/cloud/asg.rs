//! `Fleet` on EC2 Auto Scaling (aws-sdk-autoscaling): one DescribeAutoScalingGroups for all
//! groups, SetDesiredCapacity with HonorCooldown=false, CreateOrUpdateTags. SDK types stay here;
//! SDK errors become `FleetError`s that name the operation and the group and never carry
//! credentials. It never lowers a group on its own: the caller decides what to set.

use super::{Fleet, FleetError, GroupState};
use async_trait::async_trait;
use aws_sdk_autoscaling::config::http::HttpResponse;
use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_autoscaling::types::{AutoScalingGroup, Tag};
use std::collections::BTreeMap;

/// Most group names one DescribeAutoScalingGroups accepts (AWS allows 50 by default and up to
/// `MaxRecords` = 100 when that is raised; we always ask for 100).
const NAMES_PER_DESCRIBE: usize = 100;
/// `MaxRecords` for DescribeAutoScalingGroups (AWS maximum).
const MAX_RECORDS: i32 = 100;

/// Auto Scaling Groups through the AWS SDK.
#[derive(Clone, Debug)]
pub struct AsgFleet {
    client: aws_sdk_autoscaling::Client,
}

impl AsgFleet {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        AsgFleet { client: aws_sdk_autoscaling::Client::new(sdk) }
    }
}

#[async_trait]
impl Fleet for AsgFleet {
    async fn describe(&self, groups: &[String]) -> Result<BTreeMap<String, GroupState>, FleetError> {
        const OPERATION: &str = "DescribeAutoScalingGroups";
        let mut found = BTreeMap::new();
        // One call per tick unless more names than AWS accepts in one call (then one per 100).
        for names in groups.chunks(NAMES_PER_DESCRIBE) {
            let subject = format!("groups {}", names.join(", "));
            let mut next_token: Option<String> = None;
            loop {
                let answer = self
                    .client
                    .describe_auto_scaling_groups()
                    .set_auto_scaling_group_names(Some(names.to_vec()))
                    .max_records(MAX_RECORDS)
                    .set_next_token(next_token.take())
                    .send()
                    .await
                    .map_err(|e| fleet_error(OPERATION, &subject, e))?;
                for group in answer.auto_scaling_groups() {
                    if let Some(name) = group.auto_scaling_group_name() {
                        // AWS answers only the names asked for; keep that promise whatever answers.
                        if names.iter().any(|n| n == name) {
                            found.insert(name.to_string(), group_state(group));
                        }
                    }
                }
                match answer.next_token() {
                    Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    async fn set_desired(&self, group: &str, desired: u32) -> Result<(), FleetError> {
        const OPERATION: &str = "SetDesiredCapacity";
        let desired = i32::try_from(desired).map_err(|_| FleetError::Validation {
            operation: OPERATION,
            group: group.to_string(),
            message: format!("desired capacity {desired} is out of range"),
        })?;
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(group)
            .desired_capacity(desired)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| fleet_error(OPERATION, &format!("group {group}"), e))?;
        Ok(())
    }

    async fn set_tags(&self, group: &str, tags: &[(String, String)]) -> Result<(), FleetError> {
        const OPERATION: &str = "CreateOrUpdateTags";
        if tags.is_empty() {
            return Ok(());
        }
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(key, value)| {
                Tag::builder()
                    .resource_id(group)
                    .resource_type("auto-scaling-group")
                    .key(key)
                    .value(value)
                    .propagate_at_launch(false)
                    .build()
            })
            .collect();
        self.client
            .create_or_update_tags()
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| fleet_error(OPERATION, &format!("group {group}"), e))?;
        Ok(())
    }
}

/// The planner's view of one described group.
fn group_state(group: &AutoScalingGroup) -> GroupState {
    let count = |n: Option<i32>| n.map_or(0, |n| u32::try_from(n).unwrap_or(0));
    let mut in_service = 0;
    let mut booting = 0;
    for instance in group.instances() {
        match instance.lifecycle_state().map(|s| s.as_str()) {
            Some("InService") => in_service += 1,
            // Pending, Pending:Wait, Pending:Proceed: launched, not yet serving.
            Some(state) if state.starts_with("Pending") => booting += 1,
            _ => {}
        }
    }
    let tags = group
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect();
    GroupState::new(
        count(group.min_size()),
        count(group.max_size()),
        count(group.desired_capacity()),
        in_service,
        booting,
        tags,
    )
}

/// Translates an SDK error: AWS's `ValidationError` keeps AWS's message, throttling is its own
/// variant, everything else names the operation, the subject and the cause.
fn fleet_error<E>(operation: &'static str, subject: &str, error: SdkError<E, HttpResponse>) -> FleetError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error.as_service_error() {
        Some(service) => {
            let message = service.message().unwrap_or("no message").to_string();
            match service.code() {
                Some("ValidationError") => FleetError::Validation { operation, group: subject_group(subject), message },
                Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded") => {
                    FleetError::Throttled { operation, message: format!("{subject}: {message}") }
                }
                Some(code) => FleetError::Service { operation, message: format!("{subject}: {code}: {message}") },
                None => {
                    let status = error.raw_response().map_or(0, |r| r.status().as_u16());
                    FleetError::Service {
                        operation,
                        message: format!(
                            "{subject}: unrecognised error answer (HTTP {status}): {}",
                            super::error_chain(&error)
                        ),
                    }
                }
            }
        }
        None => FleetError::Service { operation, message: format!("{subject}: {}", super::error_chain(&error)) },
    }
}

/// `group NAME` -> `NAME`; `groups a, b` stays as is.
fn subject_group(subject: &str) -> String {
    subject.strip_prefix("group ").unwrap_or(subject).to_string()
}
