//! The instance-side watchdog (`forge-scaler agent`): `idle` decides (pure), `host` does the
//! I/O (IMDS, probes, the agent process, TerminateInstanceInAutoScalingGroup).
pub mod idle;
