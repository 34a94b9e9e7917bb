//! GitHub webhooks: `X-Hub-Signature-256` (`sha256=` + HMAC-SHA256 hex of the body) and the
//! `workflow_job` event, whose `queued` action names the job's `runs-on` labels. Pings and
//! every other event or action are ignored.

use super::{parse_json, sign, Event, Headers};
use crate::config::ForgeConfig;
use serde::Deserialize;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
pub const EVENT_HEADER: &str = "x-github-event";

pub fn authenticate(secret: &str, headers: &Headers, body: &[u8]) -> Result<(), &'static str> {
    let value = headers.get(SIGNATURE_HEADER).ok_or("missing X-Hub-Signature-256")?;
    let hex = value.strip_prefix("sha256=").ok_or("X-Hub-Signature-256 is not sha256=<hex>")?;
    if sign::hmac_sha256_hex_matches(secret, &[body], hex) {
        Ok(())
    } else {
        Err("X-Hub-Signature-256 does not match the body and the webhook secret")
    }
}

#[derive(Deserialize)]
struct WorkflowJobEvent {
    action: String,
    workflow_job: WorkflowJob,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct WorkflowJob {
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

pub fn classify(forge: &ForgeConfig, headers: &Headers, body: &[u8]) -> Result<Event, String> {
    match headers.get(EVENT_HEADER) {
        Some("workflow_job") => {}
        Some(other) => return Ok(Event::Other(format!("GitHub event {other:?} is not a job event"))),
        None => return Ok(Event::Other("no X-GitHub-Event header".into())),
    }
    let event: WorkflowJobEvent = parse_json(body)?;
    if event.action != "queued" {
        return Ok(Event::Other(format!("workflow_job action {:?} is not queued", event.action)));
    }
    if let Some(repo) = &event.repository {
        if !forge.repos.iter().any(|r| r.eq_ignore_ascii_case(&repo.full_name)) {
            return Ok(Event::Other(format!("repository {:?} is not in forges/{}/repos", repo.full_name, forge.name)));
        }
    }
    Ok(Event::JobQueued { labels: Some(event.workflow_job.labels) })
}
