//! Buildkite webhooks: `X-Buildkite-Signature: timestamp=T,signature=S` where S is the
//! HMAC-SHA256 hex of `T.body` (T within [`MAX_SKEW_SECS`] of now, against replays), or the
//! `X-Buildkite-Token` header equal to the secret. The `job.scheduled` event's agent query
//! rules name the queue (`queue=...`; none means `default`). Pings and other events are
//! ignored.

use super::{parse_json, sign, Event, Headers};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub const SIGNATURE_HEADER: &str = "x-buildkite-signature";
pub const TOKEN_HEADER: &str = "x-buildkite-token";
pub const EVENT_HEADER: &str = "x-buildkite-event";

/// How far a signed timestamp may be from now, either way.
pub const MAX_SKEW_SECS: i64 = 300;

pub fn authenticate(secret: &str, headers: &Headers, body: &[u8], now: DateTime<Utc>) -> Result<(), &'static str> {
    if let Some(value) = headers.get(SIGNATURE_HEADER) {
        let mut timestamp = None;
        let mut signature = None;
        for part in value.split(',') {
            match part.trim().split_once('=') {
                Some(("timestamp", t)) => timestamp = Some(t.trim()),
                Some(("signature", s)) => signature = Some(s.trim()),
                _ => {}
            }
        }
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err("X-Buildkite-Signature is not timestamp=...,signature=...");
        };
        let seconds: i64 = timestamp.parse().map_err(|_| "X-Buildkite-Signature timestamp is not a number")?;
        if (now.timestamp() - seconds).abs() > MAX_SKEW_SECS {
            return Err("X-Buildkite-Signature timestamp is more than 5 minutes from now");
        }
        return if sign::hmac_sha256_hex_matches(secret, &[timestamp.as_bytes(), b".", body], signature) {
            Ok(())
        } else {
            Err("X-Buildkite-Signature does not match the body and the webhook secret")
        };
    }
    let token = headers.get(TOKEN_HEADER).ok_or("missing X-Buildkite-Signature and X-Buildkite-Token")?;
    if sign::secret_equals(secret, token) {
        Ok(())
    } else {
        Err("X-Buildkite-Token is not the webhook secret")
    }
}

#[derive(Deserialize)]
struct Hook {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    job: Option<Job>,
}

#[derive(Deserialize)]
struct Job {
    #[serde(default)]
    agent_query_rules: Vec<String>,
}

pub fn classify(headers: &Headers, body: &[u8]) -> Result<Event, String> {
    let hook: Hook = parse_json(body)?;
    let event = headers.get(EVENT_HEADER).map(str::to_string).or(hook.event).unwrap_or_default();
    if event != "job.scheduled" {
        return Ok(Event::Other(format!("Buildkite event {event:?} is not job.scheduled")));
    }
    let job = hook.job.ok_or("job.scheduled without a job")?;
    let queues: Vec<String> = job
        .agent_query_rules
        .iter()
        .filter_map(|rule| rule.trim().strip_prefix("queue="))
        .map(|q| q.trim().to_string())
        .collect();
    let queues = if queues.is_empty() { vec![crate::forge::buildkite::DEFAULT_QUEUE.to_string()] } else { queues };
    Ok(Event::JobQueued { labels: Some(queues) })
}
