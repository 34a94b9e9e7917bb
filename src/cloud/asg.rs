//! `Fleet` on EC2 Auto Scaling (aws-sdk-autoscaling): one DescribeAutoScalingGroups for all
//! groups, SetDesiredCapacity with HonorCooldown=false, CreateOrUpdateTags. SDK types stay here.

use super::{Fleet, FleetError, GroupState};
use async_trait::async_trait;
use std::collections::BTreeMap;

/// Auto Scaling Groups through the AWS SDK.
#[derive(Clone, Debug)]
pub struct AsgFleet {
    #[allow(dead_code)]
    client: aws_sdk_autoscaling::Client,
}

impl AsgFleet {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        AsgFleet { client: aws_sdk_autoscaling::Client::new(sdk) }
    }
}

#[async_trait]
impl Fleet for AsgFleet {
    async fn describe(&self, _groups: &[String]) -> Result<BTreeMap<String, GroupState>, FleetError> {
        Err(FleetError::Service { operation: "DescribeAutoScalingGroups", message: "not implemented yet".into() })
    }
    async fn set_desired(&self, _group: &str, _desired: u32) -> Result<(), FleetError> {
        Err(FleetError::Service { operation: "SetDesiredCapacity", message: "not implemented yet".into() })
    }
    async fn set_tags(&self, _group: &str, _tags: &[(String, String)]) -> Result<(), FleetError> {
        Err(FleetError::Service { operation: "CreateOrUpdateTags", message: "not implemented yet".into() })
    }
}
