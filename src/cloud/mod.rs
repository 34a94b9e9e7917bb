//! Cloud edges: the `Fleet` trait (Auto Scaling Groups, or a command for other clouds) and
//! the `ParamStore` trait (SSM Parameter Store), their AWS implementations, and the
//! in-memory fleet that unit and tick tests share. The group's tag names and `GroupState`
//! live with the data in `model` (re-exported here).

use async_trait::async_trait;
use std::collections::BTreeMap;

pub mod asg;
pub mod command;
pub mod memory;
pub mod ssm;

pub use crate::model::tags::{
    ARRIVALS as TAG_ARRIVALS, BOOT_TIMEOUT as TAG_BOOT_TIMEOUT, IDLE_TIMEOUT as TAG_IDLE_TIMEOUT,
    LAST_SCALE_OUT as TAG_LAST_SCALE_OUT,
};
pub use crate::model::GroupState;

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
