//! Cloud edges: the `Fleet` trait (Auto Scaling Groups, or a command for other clouds) and
//! the `ParamStore` trait (SSM Parameter Store), their AWS implementations, and the
//! in-memory fleet that unit tests, tick tests and the simulator share.

use crate::model::Group;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

pub mod asg;
pub mod command;
pub mod memory;
pub mod ssm;

/// Group tag holding the time of the last scale-out (RFC 3339); cooldowns derive from it.
pub const TAG_LAST_SCALE_OUT: &str = "forge-scaler:last-scale-out";
/// Group tag the instance watchdog reads its idle timeout from (humantime).
pub const TAG_IDLE_TIMEOUT: &str = "forge-scaler:idle-timeout";
/// Group tag holding a pool's recent job arrivals for the adaptive idle timeout.
pub const TAG_ARRIVALS: &str = "forge-scaler:arrivals";
/// Group tag the instance watchdog reads its boot timeout from (humantime).
pub const TAG_BOOT_TIMEOUT: &str = "forge-scaler:boot-timeout";

/// One group as read at a tick: the planner's `Group` plus its tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupState {
    pub group: Group,
    pub tags: BTreeMap<String, String>,
}

impl GroupState {
    /// Builds the state, deriving `last_scale_out` from the tag.
    pub fn new(
        min: u32,
        max: u32,
        desired: u32,
        in_service: u32,
        booting: u32,
        tags: BTreeMap<String, String>,
    ) -> Self {
        let last_scale_out = tags
            .get(TAG_LAST_SCALE_OUT)
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.with_timezone(&Utc));
        GroupState { group: Group { min, max, desired, in_service, booting, last_scale_out }, tags }
    }
}

/// Where capacity lives. Only ever raised; instances leave by themselves.
#[async_trait]
pub trait Fleet: Send + Sync {
    /// Reads all named groups in one call. Missing groups are absent from the map.
    async fn describe(&self, groups: &[String]) -> Result<BTreeMap<String, GroupState>, FleetError>;
    /// Raises a group's desired capacity (the caller has clamped it).
    async fn set_desired(&self, group: &str, desired: u32) -> Result<(), FleetError>;
    /// Raises capacity knowing how many jobs are queued (command fleets pass it on).
    async fn raise(&self, group: &str, desired: u32, queued: u32) -> Result<(), FleetError> {
        let _ = queued;
        self.set_desired(group, desired).await
    }
    /// Creates or updates tags on a group.
    async fn set_tags(&self, group: &str, tags: &[(String, String)]) -> Result<(), FleetError>;
}

/// Why a fleet call failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// AWS refused the request as invalid (e.g. outside MinSize/MaxSize).
    #[error("{operation} {group}: rejected by AWS: {message}")]
    Validation { operation: &'static str, group: String, message: String },
    #[error("{operation}: throttled by AWS: {message}")]
    Throttled { operation: &'static str, message: String },
    #[error("{operation}: {message}")]
    Service { operation: &'static str, message: String },
    #[error("fleet command for pool {pool}: {message}")]
    Command { pool: String, message: String },
}

/// Stored configuration parameters.
#[async_trait]
pub trait ParamStore: Send + Sync {
    /// Every parameter under `prefix` (recursive, decrypted): `(full name, value)`.
    async fn get_tree(&self, prefix: &str) -> Result<Vec<(String, String)>, ParamError>;
    /// Writes one parameter (SecureString when `secure`), overwriting.
    async fn put(&self, name: &str, value: &str, secure: bool) -> Result<(), ParamError>;
}

/// Why the parameter store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("SSM {operation} {path}: {message}")]
    Service { operation: &'static str, path: String, message: String },
}

/// An error and its sources on one line (`a: b: c`), for SDK errors whose own `Display` is
/// only the outermost word ("dispatch failure"). Never includes request or credential data.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = inner.source();
    }
    // The credential chain's report spans lines; keep the message on one.
    let joined = parts.join(": ");
    joined.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}
