//! Gitea and Forgejo webhooks. Authentication: `X-Forgejo-Signature` or `X-Gitea-Signature`
//! (HMAC-SHA256 hex of the body), or `X-Hub-Signature-256` (`sha256=` + the same); both forges
//! send all of them. Job events:
//! - Gitea 1.24 and later: event `workflow_job`, action `queued` (Gitea's job status
//!   `waiting`), labels in `workflow_job.labels`.
//! - Forgejo with the `workflow_job_*` events: event `workflow_job_waiting` (a new attempt of
//!   a job that waits for a runner), labels in `job.runs_on`.
//!
//! Older versions send no job events (Forgejo's `action_run_*` events are about finished
//! runs); every other event or state is ignored.

use super::{parse_json, sign, Event, Headers};
use serde::Deserialize;

pub fn authenticate(secret: &str, headers: &Headers, body: &[u8]) -> Result<(), &'static str> {
    for name in ["x-forgejo-signature", "x-gitea-signature"] {
        if let Some(hex) = headers.get(name) {
            return if sign::hmac_sha256_hex_matches(secret, &[body], hex) {
                Ok(())
            } else {
                Err("the webhook signature does not match the body and the webhook secret")
            };
        }
    }
    super::github::authenticate(secret, headers, body)
        .map_err(|_| "missing or wrong X-Forgejo-Signature / X-Gitea-Signature / X-Hub-Signature-256")
}

#[derive(Deserialize)]
struct Hook {
    #[serde(default)]
    action: Option<String>,
    /// Gitea's shape.
    #[serde(default)]
    workflow_job: Option<GiteaJob>,
    /// Forgejo's shape.
    #[serde(default)]
    job: Option<ForgejoJob>,
}

#[derive(Deserialize)]
struct GiteaJob {
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct ForgejoJob {
    #[serde(default)]
    runs_on: Vec<String>,
    #[serde(default)]
    status: String,
}

pub fn classify(headers: &Headers, body: &[u8]) -> Result<Event, String> {
    let event = headers.get("x-forgejo-event").or_else(|| headers.get("x-gitea-event")).unwrap_or("").to_string();
    if !event.starts_with("workflow_job") {
        return Ok(Event::Other(format!("event {event:?} is not a job event")));
    }
    let hook: Hook = parse_json(body)?;
    if let Some(job) = hook.workflow_job {
        return Ok(match hook.action.as_deref() {
            Some("queued") => Event::JobQueued { labels: Some(job.labels) },
            action => Event::Other(format!("workflow_job action {action:?} is not queued")),
        });
    }
    if let Some(job) = hook.job {
        return Ok(if job.status == "waiting" {
            Event::JobQueued { labels: Some(job.runs_on) }
        } else {
            Event::Other(format!("job status {:?} is not waiting", job.status))
        });
    }
    Err("a workflow_job event without workflow_job or job".into())
}
