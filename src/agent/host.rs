//! The watchdog's imperative shell: learns who the instance is (IMDSv2, then
//! DescribeAutoScalingInstances), and at each check reads the clock, the group's tags, the
//! probes, the supervised agent and the interruption notices, asks `idle::decide`, logs one
//! event, and when told to leave drains the agent, re-checks busy, and terminates the instance
//! with decrement (the drain's rules are `drain::may_stop` and `drain::after_recheck`). While
//! it runs it keeps the group tag [`super::heartbeat_tag`] fresh for `forge-scaler doctor`,
//! and each exit logs one `leave` event and writes one `InstancesLeft` EMF line to stdout.

use super::aws::{Asg, AsgError, GroupView};
use super::drain::{after_recheck, may_stop, AfterRecheck, AgentControl, ControlError, ControlSpec};
use super::idle::{decide, Busy, IdleConfig, Leave, Look, Memory, Verdict};
use super::imds::{Identity, Imds};
use super::probe::{combine, ProbeSpec, Prober, Reading};
use crate::cloud::{TAG_BOOT_TIMEOUT, TAG_IDLE_TIMEOUT};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use url::Url;

/// Everything the watchdog is told at start.
#[derive(Debug, Clone)]
pub struct WatchdogSettings {
    /// The instance metadata service (IMDSv2).
    pub imds_endpoint: Url,
    /// Time between checks.
    pub check_interval: Duration,
    /// Idle settings; the group's tags override the idle and boot timeouts at each check.
    pub idle: IdleConfig,
    pub probes: Vec<ProbeSpec>,
    /// Timeout of each probe and metadata request.
    pub probe_timeout: Duration,
    pub control: ControlSpec,
    /// First wait after AWS refused the terminate (MinSize) or IMDS/AWS failed; doubles up to
    /// `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Least time between two DescribeAutoScalingGroups reads (zero: every check). The group
    /// is always read afresh before leaving.
    pub group_read_interval: Duration,
    /// Time between writes of the heartbeat tag (zero: no heartbeat).
    pub heartbeat_interval: Duration,
}

/// How the watchdog ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The instance is being terminated (group desired lowered by one), for this reason.
    Left(Leave),
    /// The Auto Scaling group is already terminating the instance (lifecycle `Terminated`):
    /// the agent was drained and no terminate call was needed.
    TerminatedByGroup,
    /// Asked to stop (SIGTERM/SIGINT): the agent was stopped, the instance stays.
    Stopped,
}

/// Why the watchdog could not run.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error(transparent)]
    Agent(#[from] ControlError),
    #[error("bad settings: {0}")]
    Settings(String),
}

/// Where the AWS SDK configuration comes from.
pub enum SdkSource {
    /// The standard environment (credentials chain, `AWS_ENDPOINT_URL`), with the region from IMDS.
    Environment,
    /// A given configuration (tests).
    Given(Box<aws_config::SdkConfig>),
}

type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the watchdog until the instance leaves or `shutdown` completes.
pub async fn run(settings: WatchdogSettings, sdk: SdkSource, shutdown: Shutdown) -> Result<Outcome, WatchdogError> {
    if settings.check_interval.is_zero() {
        return Err(WatchdogError::Settings("check interval must be above zero".into()));
    }
    let mut watchdog = Watchdog::start(settings)?;
    let result = watchdog.run(sdk, shutdown).await;
    if !matches!(result, Ok(Outcome::Left(_)) | Ok(Outcome::TerminatedByGroup)) {
        watchdog.control.shutdown().await;
    }
    result
}

struct Watchdog {
    settings: WatchdogSettings,
    control: AgentControl,
    prober: Prober,
    imds: Imds,
    started: Instant,
}

/// What one check saw, for the log and the drain.
struct Check {
    look: Look,
    readings: Vec<Reading>,
    lifecycle_terminated: bool,
    config: IdleConfig,
}

impl Watchdog {
    fn start(settings: WatchdogSettings) -> Result<Self, WatchdogError> {
        let control = AgentControl::start(settings.control.clone())?;
        let prober = Prober::new(settings.probes.clone(), settings.probe_timeout);
        let imds = Imds::new(&settings.imds_endpoint, settings.probe_timeout)
            .map_err(|e| WatchdogError::Settings(e.to_string()))?;
        if !control.can_stop() {
            tracing::warn!(
                event = "no_stop_method",
                "neither --wrap nor --stop-cmd: the agent cannot be drained before the terminate"
            );
        }
        Ok(Watchdog { settings, control, prober, imds, started: Instant::now() })
    }

    /// Time since the watchdog started (it starts at boot under systemd): the idle logic's clock.
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    async fn run(&mut self, sdk: SdkSource, mut shutdown: Shutdown) -> Result<Outcome, WatchdogError> {
        // Who am I: never guessed. Until IMDS and Auto Scaling answer, nothing can leave.
        let mut wait = self.first_retry();
        let identity = loop {
            match self.imds.identity().await {
                Ok(identity) => break identity,
                Err(e) => self.note_retry("imds_identity", &e, wait)?,
            }
            if !sleep_unless_shutdown(wait, &mut shutdown).await {
                return Ok(Outcome::Stopped);
            }
            wait = (wait * 2).min(self.settings.retry_max);
        };
        let sdk = match sdk {
            SdkSource::Given(sdk) => *sdk,
            SdkSource::Environment => {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(identity.region.clone()))
                    .load()
                    .await
            }
        };
        let asg = Asg::new(&sdk);
        let mut wait = self.first_retry();
        let group = loop {
            match asg.group_of(&identity.instance_id).await {
                Ok(group) => break group,
                Err(e) => self.note_retry("group_of_instance", &e, wait)?,
            }
            if !sleep_unless_shutdown(wait, &mut shutdown).await {
                return Ok(Outcome::Stopped);
            }
            wait = (wait * 2).min(self.settings.retry_max);
        };
        tracing::info!(event = "identity", instance = %identity.instance_id, region = %identity.region, group = %group);

        let mut heartbeat = Heartbeat::new(self.settings.heartbeat_interval, &identity.instance_id, &group);
        let result = self.watch(&identity, &asg, &group, &mut heartbeat, shutdown).await;
        heartbeat.remove(&asg, self.settings.probe_timeout).await;
        result
    }

    /// The checks, until the instance leaves or the watchdog is stopped.
    async fn watch(
        &mut self,
        identity: &Identity,
        asg: &Asg,
        group: &str,
        heartbeat: &mut Heartbeat,
        mut shutdown: Shutdown,
    ) -> Result<Outcome, WatchdogError> {
        let mut memory = Memory::booted(Duration::ZERO);
        let mut view: Option<GroupView> = None;
        let mut retry = self.settings.retry_initial;
        let mut not_before = Duration::ZERO;
        let mut last_read: Option<Duration> = None;
        loop {
            let now = self.now();
            let read_due = last_read.is_none_or(|at| now.saturating_sub(at) >= self.settings.group_read_interval);
            if read_due {
                read_group(asg, group, &mut view).await;
                last_read = Some(now);
            }
            let mut check = self.look(view.as_ref(), memory.was_ready()).await?;
            let (mut next, mut verdict) = decide(&check.config, memory, check.look, now);
            if matches!(verdict, Verdict::Leave(_)) && !read_due {
                // Sizes and timeouts as they are now, not as last read.
                read_group(asg, group, &mut view).await;
                last_read = Some(now);
                check.config = self.config_from(view.as_ref());
                (next, verdict) = decide(&check.config, memory, check.look, now);
            }
            memory = next;
            log_check(identity, group, view.as_ref(), &check, &memory, verdict, now);
            if memory.was_ready() {
                heartbeat.beat(asg, now, self.settings.probe_timeout).await;
            }

            if let Verdict::Leave(reason) = verdict {
                if now < not_before && reason != Leave::Interrupted {
                    tracing::info!(event = "leave_deferred", retry_in_s = (not_before - now).as_secs_f64());
                } else {
                    match self.leave(reason, identity, asg, view.as_ref(), &check, &mut memory).await? {
                        LeaveResult::Done(outcome) => {
                            report_leave(identity, group, reason, &memory, self.now());
                            return Ok(outcome);
                        }
                        LeaveResult::Stayed { refused } => {
                            if refused {
                                not_before = self.now() + retry;
                                retry = (retry * 2).min(self.settings.retry_max);
                            }
                        }
                    }
                }
            } else if check.look.busy == Busy::Busy {
                retry = self.settings.retry_initial;
            }

            if !sleep_unless_shutdown(self.settings.check_interval, &mut shutdown).await {
                tracing::info!(event = "watchdog_stopping");
                return Ok(Outcome::Stopped);
            }
        }
    }

    fn first_retry(&self) -> Duration {
        self.settings.retry_initial.min(self.settings.check_interval)
    }

    /// Logs a failed identity step; keeps reaping the agent meanwhile.
    fn note_retry(
        &mut self,
        step: &'static str,
        error: &dyn std::fmt::Display,
        wait: Duration,
    ) -> Result<(), WatchdogError> {
        if let Some(status) = self.control.poll()? {
            tracing::warn!(event = "agent_exited_unidentified", exit = %status, "cannot leave without knowing who this instance is");
        }
        tracing::warn!(event = "retry", step, retry_in_s = wait.as_secs_f64(), error = %error);
        Ok(())
    }

    /// One look at the instance, with the idle settings in force (flags, overridden by tags).
    async fn look(&mut self, view: Option<&GroupView>, was_ready: bool) -> Result<Check, WatchdogError> {
        let exited = self.control.poll()?;
        let spot = self.imds.spot_interruption().await.unwrap_or_else(|e| {
            tracing::warn!(event = "imds_failed", error = %e);
            false
        });
        let lifecycle = self.imds.target_lifecycle_state().await.unwrap_or_else(|e| {
            tracing::warn!(event = "imds_failed", error = %e);
            None
        });
        let lifecycle_terminated = lifecycle.as_deref() == Some("Terminated");
        let rebalance = self.settings.idle.leave_on_rebalance
            && self.imds.rebalance_recommendation().await.unwrap_or_else(|e| {
                tracing::warn!(event = "imds_failed", error = %e);
                false
            });
        let readings = self.prober.read_all().await;
        let mut busy = if readings.is_empty() { Busy::Unknown } else { combine(&readings) };
        let probes_answer = readings.is_empty() || busy != Busy::Unknown;
        let agent_running = !self.control.wraps() || self.control.pid().is_some();
        let agent_ready = probes_answer && agent_running;
        // An agent never seen ready cannot be running a job: let the boot timeout run. Once it
        // was ready, a probe that fails says nothing, and nothing leaves on it.
        let start_failed = self.control.start_error().is_some();
        if busy == Busy::Unknown && !agent_ready && !was_ready && (!readings.is_empty() || start_failed) {
            busy = Busy::Idle;
        }
        let look = Look {
            busy,
            agent_ready,
            agent_exited: exited.is_some(),
            interrupted: spot || lifecycle_terminated,
            rebalance,
        };
        Ok(Check { look, readings, lifecycle_terminated, config: self.config_from(view) })
    }

    fn config_from(&self, view: Option<&GroupView>) -> IdleConfig {
        let mut config = self.settings.idle.clone();
        if let Some(view) = view {
            if let Some(d) = tag_duration(view, TAG_IDLE_TIMEOUT) {
                config.idle_timeout = d;
            }
            if let Some(d) = tag_duration(view, TAG_BOOT_TIMEOUT) {
                config.boot_timeout = d;
            }
        }
        config
    }

    /// The drain protocol: stop the agent taking jobs, re-check busy, terminate with
    /// decrement; on any refusal undo the drain and stay.
    async fn leave(
        &mut self,
        reason: Leave,
        identity: &Identity,
        asg: &Asg,
        view: Option<&GroupView>,
        check: &Check,
        memory: &mut Memory,
    ) -> Result<LeaveResult, WatchdogError> {
        let interrupted = reason == Leave::Interrupted;
        // At the floor, AWS will refuse: do not disturb the agent (it would be stopped and
        // restarted at every check). The terminate below still guards against a stale view.
        if let Some(view) = view.filter(|v| !interrupted && v.desired <= v.min) {
            tracing::info!(event = "stay_at_min_size", reason = ?reason, desired = view.desired, min = view.min);
            self.undrain().await;
            return Ok(LeaveResult::Stayed { refused: true });
        }
        let decided_on = check.look.busy;
        let mut stopped = reason == Leave::AgentExited;
        if !stopped && self.control.can_stop() {
            if !may_stop(self.control.spec().stop_signal, reason, decided_on) {
                // Woodpecker cancels work when killed: wait for zero running workflows.
                tracing::info!(event = "drain_waits_for_idle", reason = reason.name());
                return Ok(LeaveResult::Stayed { refused: false });
            }
            match self.control.stop().await {
                Ok(()) => stopped = true,
                Err(e) => {
                    tracing::warn!(event = "drain_failed", error = %e);
                    self.undrain().await;
                    return Ok(LeaveResult::Stayed { refused: true });
                }
            }
        }
        // Re-check: a job may have arrived between the look and the stop.
        let readings = self.prober.read_all().await;
        let recheck: Vec<Reading> = readings
            .iter()
            .zip(self.prober.specs())
            .map(|(reading, spec)| match reading {
                // The probe lives in the agent we just stopped: it cannot answer, and the agent
                // runs nothing.
                Reading::Failed(_) if stopped && spec.lives_in_agent() => Reading::Idle,
                other => other.clone(),
            })
            .collect();
        let busy = if recheck.is_empty() { Busy::Idle } else { combine(&recheck) };
        let next = after_recheck(reason, decided_on, busy);
        tracing::info!(event = "drain_recheck", reason = ?reason, busy = ?busy, readings = ?recheck, next = ?next);
        if busy == Busy::Busy && next != AfterRecheck::Terminate {
            let now = self.now();
            memory.last_busy = Some(now);
            memory.busy_since.get_or_insert(now);
        }
        match next {
            AfterRecheck::Terminate => {}
            // The instance is going away anyway: keep the agent from taking more jobs.
            AfterRecheck::StayDrained => return Ok(LeaveResult::Stayed { refused: false }),
            AfterRecheck::Undrain => {
                tracing::info!(event = "drain_aborted", reason = ?reason, busy = ?busy);
                self.undrain().await;
                return Ok(LeaveResult::Stayed { refused: false });
            }
        }
        if check.lifecycle_terminated {
            tracing::info!(event = "terminated_by_group", instance = %identity.instance_id);
            return Ok(LeaveResult::Done(Outcome::TerminatedByGroup));
        }
        match asg.terminate_with_decrement(&identity.instance_id).await {
            Ok(()) => {
                tracing::info!(event = "terminating", instance = %identity.instance_id, reason = ?reason);
                Ok(LeaveResult::Done(Outcome::Left(reason)))
            }
            Err(e @ AsgError::AtMinSize { .. }) => {
                tracing::info!(event = "stay_at_min_size", reason = ?reason, error = %e);
                if !reason.keeps_draining() {
                    self.undrain().await;
                }
                Ok(LeaveResult::Stayed { refused: true })
            }
            Err(e) => {
                tracing::warn!(event = "terminate_failed", reason = ?reason, error = %e);
                if !reason.keeps_draining() {
                    self.undrain().await;
                }
                Ok(LeaveResult::Stayed { refused: true })
            }
        }
    }

    async fn undrain(&mut self) {
        if let Err(e) = self.control.undrain().await {
            tracing::warn!(event = "undrain_failed", error = %e);
        }
    }
}

enum LeaveResult {
    Done(Outcome),
    /// Still here; `refused`: wait (backoff) before trying to leave again.
    Stayed {
        refused: bool,
    },
}

/// Reads the group; on failure keeps the last view.
async fn read_group(asg: &Asg, group: &str, view: &mut Option<GroupView>) {
    match asg.describe(group).await {
        Ok(fresh) => *view = Some(fresh),
        Err(e) => tracing::warn!(event = "group_read_failed", group = %group, error = %e),
    }
}

/// Sleeps `wait`; false when shutdown came first.
async fn sleep_unless_shutdown(wait: Duration, shutdown: &mut Shutdown) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = shutdown => false,
    }
}

fn tag_duration(view: &GroupView, key: &str) -> Option<Duration> {
    let raw = view.tags.get(key)?;
    match humantime::parse_duration(raw.trim()) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(event = "bad_tag", group = %view.name, tag = key, value = %raw, error = %e);
            None
        }
    }
}

fn log_check(
    identity: &Identity,
    group: &str,
    view: Option<&GroupView>,
    check: &Check,
    memory: &Memory,
    verdict: Verdict,
    now: Duration,
) {
    let (verdict_name, leave_in_s, reason) = match verdict {
        Verdict::Stay { until } => ("stay", until.map(|u| u.saturating_sub(now).as_secs_f64()), None),
        Verdict::Leave(reason) => ("leave", None, Some(reason)),
    };
    tracing::info!(
        event = "check",
        instance = %identity.instance_id,
        group = %group,
        uptime_s = now.as_secs_f64(),
        busy = ?check.look.busy,
        agent_ready = check.look.agent_ready,
        agent_exited = check.look.agent_exited,
        interrupted = check.look.interrupted,
        readings = ?check.readings,
        idle_timeout = %humantime::format_duration(check.config.idle_timeout),
        boot_timeout = %humantime::format_duration(check.config.boot_timeout),
        last_busy_s = memory.last_busy.map(|d| d.as_secs_f64()),
        rebalance = check.look.rebalance,
        busy_since_s = memory.busy_since.map(|d| d.as_secs_f64()),
        unknown_since_s = memory.unknown_since.map(|d| d.as_secs_f64()),
        jobs_done = memory.jobs_done,
        group_min = view.map(|v| v.min),
        group_desired = view.map(|v| v.desired),
        verdict = verdict_name,
        reason = reason.map(|r| format!("{r:?}")),
        leave_in_s,
    );
}

/// The one `leave` event and `InstancesLeft` metric of an instance that is leaving.
fn report_leave(identity: &Identity, group: &str, reason: Leave, memory: &Memory, now: Duration) {
    tracing::info!(
        event = "leave",
        reason = reason.name(),
        instance = %identity.instance_id,
        group = %group,
        uptime_s = now.as_secs_f64(),
        jobs_done = memory.jobs_done,
    );
    println!("{}", crate::metrics::instance_left_line(group, reason.name(), chrono::Utc::now()));
}

/// The heartbeat tag of this instance on its group: written when the agent is first ready and
/// then every interval, removed when the watchdog ends. Failures (AccessDenied, the group's
/// 50-tag limit) are logged once and change nothing else.
struct Heartbeat {
    interval: Duration,
    key: String,
    group: String,
    last_write: Option<Duration>,
    warned: bool,
}

impl Heartbeat {
    fn new(interval: Duration, instance_id: &str, group: &str) -> Self {
        Heartbeat {
            interval,
            key: super::heartbeat_tag(instance_id),
            group: group.to_string(),
            last_write: None,
            warned: false,
        }
    }

    async fn beat(&mut self, asg: &Asg, now: Duration, deadline: Duration) {
        if self.interval.is_zero() || self.last_write.is_some_and(|at| now.saturating_sub(at) < self.interval) {
            return;
        }
        self.last_write = Some(now);
        let value = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let written = tokio::time::timeout(deadline, asg.put_tag(&self.group, &self.key, &value)).await;
        match written {
            Ok(Ok(())) => tracing::debug!(event = "heartbeat", tag = %self.key, at = %value),
            Ok(Err(e)) => self.warn_once(&e),
            Err(_) => self.warn_once(&format!("CreateOrUpdateTags timed out after {deadline:?}")),
        }
    }

    async fn remove(&mut self, asg: &Asg, deadline: Duration) {
        if self.interval.is_zero() {
            return;
        }
        match tokio::time::timeout(deadline, asg.delete_tag(&self.group, &self.key)).await {
            Ok(Ok(())) => tracing::info!(event = "heartbeat_removed", tag = %self.key),
            Ok(Err(e)) => self.warn_once(&e),
            Err(_) => self.warn_once(&format!("DeleteTags timed out after {deadline:?}")),
        }
    }

    fn warn_once(&mut self, error: &dyn std::fmt::Display) {
        if !self.warned {
            self.warned = true;
            tracing::warn!(event = "heartbeat_failed", tag = %self.key, error = %error, "the heartbeat is off; the watchdog works on");
        }
    }
}
