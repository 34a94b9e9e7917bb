//! The Lambda handler: one scheduled invocation runs one loop of ticks (`runloop`), and a
//! loop error becomes the runtime's `Diagnostic`. The scaler (configuration cache and
//! clients) lives across invocations of the same execution environment. The process entry
//! (`lambda_main`, the runtime loop) is in the binary; this module must not read the
//! environment.

use crate::runloop::{LoopError, LoopSummary, Mode, Scaler};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// The error type and message the Lambda service records for a failed invocation.
impl From<LoopError> for lambda_runtime::Diagnostic {
    fn from(e: LoopError) -> Self {
        let error_type = match &e {
            LoopError::Config(l) if l.is_invalid_config() => "ConfigInvalid",
            LoopError::Config(_) => "ConfigUnavailable",
            LoopError::Tick(_) => "TickFailed",
        };
        lambda_runtime::Diagnostic { error_type: error_type.to_string(), error_message: e.to_string() }
    }
}

/// The Lambda handler: one scheduled invocation runs one loop of ticks. The scaler (config
/// cache and clients) lives across invocations of the same execution environment.
pub struct Handler {
    scaler: tokio::sync::Mutex<Scaler>,
    /// Never set: an invocation ends by its budget, not by a signal.
    stop: watch::Receiver<bool>,
    _stop_sender: watch::Sender<bool>,
}

impl Handler {
    pub fn new(scaler: Scaler) -> Self {
        let (sender, receiver) = watch::channel(false);
        Handler { scaler: tokio::sync::Mutex::new(scaler), stop: receiver, _stop_sender: sender }
    }

    /// Handles one invocation. Any JSON payload is accepted (an EventBridge scheduled event
    /// is logged by id). Fails when no valid configuration could be loaded (the message lists
    /// every problem) or a tick could not run; pool errors are in the summary, not failures.
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<LoopSummary, LoopError> {
        let (payload, context) = event.into_parts();
        match serde_json::from_value::<aws_lambda_events::eventbridge::EventBridgeEvent>(payload) {
            Ok(e) => tracing::info!(
                target: "forge_scaler::lambda",
                request_id = %context.request_id,
                event_id = e.id.as_deref().unwrap_or(""),
                source = %e.source,
                detail_type = %e.detail_type,
                "invoked by an EventBridge event"
            ),
            Err(_) => tracing::info!(target: "forge_scaler::lambda", request_id = %context.request_id, "invoked"),
        }
        let deadline = (context.deadline > 0)
            .then(|| DateTime::<Utc>::from_timestamp_millis(i64::try_from(context.deadline).ok()?))
            .flatten();
        let mut scaler = self.scaler.lock().await;
        let result = scaler.run(Mode::Invocation { deadline }, self.stop.clone()).await;
        match &result {
            Ok(summary) => tracing::info!(
                target: "forge_scaler::lambda",
                ticks = summary.ticks,
                pool_errors = summary.any_pool_error(),
                config_errors = summary.config_errors.len(),
                "invocation done"
            ),
            Err(e) => tracing::error!(target: "forge_scaler::lambda", error = %e, "invocation failed"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runloop::tests::{params, rig};

    #[tokio::test]
    async fn the_handler_takes_a_scheduled_event_and_summarises() {
        let (rig, scaler) = rig(params("2", &[("settings/loop_budget", "0s")]), 7, None);
        let handler = Handler::new(scaler);
        let payload: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/scheduled-event.json")).unwrap();
        let summary = handler.handle(lambda_runtime::LambdaEvent::new(payload, Default::default())).await.unwrap();
        assert_eq!(summary.ticks, 1);
        assert_eq!(summary.pools[0].desired, Some(4));
        assert_eq!(rig.fleet.group("ci-linux").unwrap().group.desired, 4);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["pools"][0]["pool"], "linux");
        // Any JSON payload is accepted.
        let again = handler.handle(lambda_runtime::LambdaEvent::new(serde_json::json!({}), Default::default())).await;
        assert_eq!(again.unwrap().pools[0].raises, 0);
    }

    #[tokio::test]
    async fn the_handler_fails_the_invocation_on_invalid_config_with_a_diagnostic() {
        let (_rig, scaler) = rig(params("0", &[]), 7, None);
        let handler = Handler::new(scaler);
        let err = handler.handle(lambda_runtime::LambdaEvent::new(serde_json::json!({}), Default::default())).await;
        let diagnostic: lambda_runtime::Diagnostic = err.unwrap_err().into();
        assert_eq!(diagnostic.error_type, "ConfigInvalid");
        assert!(diagnostic.error_message.contains("pools/linux/slots"));
        assert!(!diagnostic.error_message.contains("s3cr3t"));
    }
}
