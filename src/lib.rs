//! forge-scaler: raise EC2 Auto Scaling Groups of CI agents from a forge's pending jobs; the
//! agents' instances drain and terminate themselves when idle.
//!
//! # Layout
//! A functional core inside an imperative shell:
//! - [`model`]: plain data (queue, group, plan, reasons). [`policy`]: a pool's tuning.
//! - [`plan`]: the planner, a pure function of policy, observation and `now`.
//! - [`step`]: one pool's whole decision at a tick (plan, tags, notes), pure; the tick and
//!   the simulator both call it.
//! - [`config`]: the raw key tree (SSM or TOML) validated once into [`config::Config`].
//! - [`forge`]: the `JobSource` trait and one adapter per forge (wire types private).
//! - [`cloud`]: the `Fleet` (Auto Scaling) and `ParamStore` (SSM) traits, AWS impls, and
//!   an in-memory fleet for tests.
//! - [`tick`]: observe -> step each pool -> apply -> report, for every pool.
//! - [`app`]: the shell the CLI and Lambda share (config source, AWS setup, edges).
//! - [`runloop`]: the config cache and inner loop the Lambda and `run` share.
//! - [`lambda`]: the Lambda handler around the loop, and its error `Diagnostic`.
//! - [`jobstats`]: queue wait and job-seconds per repository from a pool's jobs (pure).
//! - [`redact`]: URL redaction for messages and logs (userinfo, every query value).

//! - [`doctor`]: `forge-scaler doctor`'s checklist (pure) and the checks' I/O (`doctor::shell`).
//! - [`metrics`]: CloudWatch Embedded Metric Format lines from a tick report (pure).
//! - [`agent`]: the instance watchdog (`idle` is pure, `host` does I/O).
//! - [`adaptive`]: the adaptive idle timeout (pure) and the arrival history kept in a tag.
//! - [`webhook`]: forge webhooks as tick triggers (pure judging; the listen server and the
//!   Function URL shells).
//! - [`sim`]: the simulator driving the real planner and idle logic on a virtual clock.
//! - [`recommend`]: predictive floors: hour-of-week MinSize from a job history, checked on
//!   the simulator, printed as ASG scheduled actions.
//!
//! The binary `forge-scaler` (src/bin) is a thin shell over this library.

pub mod adaptive;
pub mod agent;
pub mod app;
pub mod cloud;
pub mod config;
pub mod doctor;
pub mod forge;
pub mod jobstats;
pub mod lambda;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod policy;
pub mod recommend;
pub mod redact;
pub mod runloop;
pub mod sim;
pub mod step;
pub mod tick;
pub mod webhook;
