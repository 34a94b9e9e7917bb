//! The instance-side watchdog (`forge-scaler agent`): `idle` decides (pure); `host` runs the
//! checks and the drain protocol over `imds` (who am I, interruption notices), `probe`
//! (busy/idle), `drain` (the agent process) and `aws` (the group, the terminate).
pub mod aws;
pub mod drain;
pub mod host;
pub mod idle;
pub mod imds;
pub mod probe;
