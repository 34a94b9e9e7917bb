//! The Auto Scaling calls the instance makes about itself: which group it is in
//! (DescribeAutoScalingInstances), the group's sizes and tags (DescribeAutoScalingGroups),
//! its heartbeat tag (CreateOrUpdateTags, DeleteTags), and leaving with `TerminateInstanceInAutoScalingGroup(ShouldDecrementDesiredCapacity=true)`.
//! It never terminates without decrementing and never marks the instance unhealthy. SDK types
//! stay in this module.

use aws_sdk_autoscaling::error::{DisplayErrorContext, ProvideErrorMetadata};
use std::collections::BTreeMap;

/// The instance's group as read at one check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupView {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub tags: BTreeMap<String, String>,
}

/// Why an Auto Scaling call failed.
#[derive(Debug, thiserror::Error)]
pub enum AsgError {
    /// AWS refused to terminate: leaving would take the group below its MinSize.
    #[error("{operation} {instance_id}: at the group's MinSize: {message}")]
    AtMinSize { operation: &'static str, instance_id: String, message: String },
    /// AWS refused the request as invalid for another reason.
    #[error("{operation} {subject}: rejected by AWS ({code}): {message}")]
    Rejected { operation: &'static str, subject: String, code: String, message: String },
    #[error("{operation} {subject}: {message}")]
    Failed { operation: &'static str, subject: String, message: String },
    #[error("{operation} {subject}: not found")]
    NotFound { operation: &'static str, subject: String },
}

/// Auto Scaling through the AWS SDK.
#[derive(Debug, Clone)]
pub struct Asg {
    client: aws_sdk_autoscaling::Client,
}

impl Asg {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Asg { client: aws_sdk_autoscaling::Client::new(sdk) }
    }

    /// The name of the group `instance_id` belongs to.
    pub async fn group_of(&self, instance_id: &str) -> Result<String, AsgError> {
        const OP: &str = "DescribeAutoScalingInstances";
        let out = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| classify(OP, instance_id, e))?;
        out.auto_scaling_instances()
            .iter()
            .find(|i| i.instance_id() == Some(instance_id))
            .and_then(|i| i.auto_scaling_group_name())
            .map(str::to_string)
            .ok_or(AsgError::NotFound { operation: OP, subject: instance_id.to_string() })
    }

    /// Sizes and tags of `group`.
    pub async fn describe(&self, group: &str) -> Result<GroupView, AsgError> {
        const OP: &str = "DescribeAutoScalingGroups";
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .map_err(|e| classify(OP, group, e))?;
        let found = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(group))
            .ok_or(AsgError::NotFound { operation: OP, subject: group.to_string() })?;
        let size = |n: Option<i32>| n.unwrap_or(0).max(0) as u32;
        let tags = found
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect();
        Ok(GroupView {
            name: group.to_string(),
            min: size(found.min_size()),
            max: size(found.max_size()),
            desired: size(found.desired_capacity()),
            tags,
        })
    }

    /// Creates or updates one tag on `group`, not propagated to new instances.
    pub async fn put_tag(&self, group: &str, key: &str, value: &str) -> Result<(), AsgError> {
        const OP: &str = "CreateOrUpdateTags";
        let tag = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(key)
            .value(value)
            .propagate_at_launch(false)
            .build();
        self.client.create_or_update_tags().tags(tag).send().await.map_err(|e| classify(OP, group, e))?;
        Ok(())
    }

    /// Deletes one tag from `group` (absent already: fine).
    pub async fn delete_tag(&self, group: &str, key: &str) -> Result<(), AsgError> {
        const OP: &str = "DeleteTags";
        let tag = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(key)
            .build();
        self.client.delete_tags().tags(tag).send().await.map_err(|e| classify(OP, group, e))?;
        Ok(())
    }

    /// Terminates this instance and lowers the group's desired capacity by one, atomically.
    pub async fn terminate_with_decrement(&self, instance_id: &str) -> Result<(), AsgError> {
        const OP: &str = "TerminateInstanceInAutoScalingGroup";
        self.client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .map_err(|e| classify(OP, instance_id, e))?;
        Ok(())
    }
}

fn classify<E>(operation: &'static str, subject: &str, e: aws_sdk_autoscaling::error::SdkError<E>) -> AsgError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().map(str::to_string);
    let message = e.message().map(str::to_string).unwrap_or_else(|| DisplayErrorContext(&e).to_string());
    match code.as_deref() {
        Some("ValidationError") if is_min_size_message(&message) => {
            AsgError::AtMinSize { operation, instance_id: subject.to_string(), message }
        }
        Some(code) => AsgError::Rejected { operation, subject: subject.to_string(), code: code.to_string(), message },
        None => AsgError::Failed { operation, subject: subject.to_string(), message },
    }
}

/// AWS words it "Currently, desiredSize equals minSize (N). Terminating instance without
/// replacement will violate group's min size constraint. ..."
fn is_min_size_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("minsize") || lower.contains("min size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_min_size_refusal() {
        let aws = "Currently, desiredSize equals minSize (1). Terminating instance without replacement will \
                   violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false \
                   or lower group's min size.";
        assert!(is_min_size_message(aws));
        assert!(!is_min_size_message("Instance Id not found - No managed instance found for instance ID: i-1"));
    }
}
