//! The instance-side watchdog (`forge-scaler agent`): `idle` decides (pure); `host` runs the
//! checks and the drain protocol over `imds` (who am I, interruption notices, rebalance
//! recommendations), `probe` (busy/idle), `drain` (the agent process and the drain's rules)
//! and `aws` (the group, the terminate, the heartbeat tag).
pub mod aws;
pub mod drain;
pub mod host;
pub mod idle;
pub mod imds;
pub mod probe;

/// The start of every heartbeat tag key on a group.
pub const HEARTBEAT_TAG_PREFIX: &str = "forge-scaler:heartbeat:";

/// The group tag a running watchdog keeps fresh: key `forge-scaler:heartbeat:<instance-id>`,
/// value the time of the last write in RFC 3339 UTC to the second (`2026-12-04T18:30:00Z`),
/// not propagated to instances. Written when the agent is first ready and then every
/// `--heartbeat-interval` (default 5 min); deleted when the watchdog ends. A missing or old
/// tag for an in-service instance means its watchdog is not running (`forge-scaler doctor`).
pub fn heartbeat_tag(instance_id: &str) -> String {
    format!("{HEARTBEAT_TAG_PREFIX}{instance_id}")
}
