//! Buildkite adapter: reads one queue's counts from the agent metrics API
//! (`GET {url}/v3/metrics/queue?name=Q`, agent token). Owns the metrics wire types and the
//! poll-duration hint; it must not call Buildkite's REST API (a different token kind).

use super::http::{self, ForgeHttp};
use super::{ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

/// The queue a pool without `labels` serves.
pub const DEFAULT_QUEUE: &str = "default";

/// Response header with the poll interval (seconds) Buildkite asks clients to keep.
pub const POLL_DURATION_HEADER: &str = "Buildkite-Agent-Metrics-Poll-Duration";

/// Counts above this are clamped: no group is that large, and a count-only source turns
/// each count into that many job records.
pub const MAX_COUNT: u64 = 100_000;

/// Reads Buildkite's queue metrics.
pub struct Buildkite {
    http: ForgeHttp,
}

impl Buildkite {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Buildkite { http }
    }
}

#[derive(Debug, Default, Deserialize)]
struct QueueMetrics {
    #[serde(default)]
    jobs: Option<JobCounts>,
}

/// Every count may be absent (`"jobs": {}`); absent means zero.
#[derive(Debug, Default, Deserialize)]
struct JobCounts {
    #[serde(default)]
    scheduled: Option<u64>,
    #[serde(default)]
    running: Option<u64>,
    #[serde(default)]
    waiting: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: String,
}

/// The Buildkite queue a pool serves: the first item of its `labels`, else `default`.
pub fn queue_name(pool: &PoolConfig) -> &str {
    pool.labels.as_ref().and_then(|l| l.first()).map(String::as_str).unwrap_or(DEFAULT_QUEUE)
}

/// Parses the poll-duration header: whole seconds (as Buildkite sends), or a humantime
/// duration; anything else, or zero, is no hint.
pub fn parse_poll_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let parsed = match value.parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(value).ok(),
    };
    parsed.filter(|d| !d.is_zero())
}

fn clamp(count: Option<u64>) -> u32 {
    count.unwrap_or(0).min(MAX_COUNT) as u32
}

#[async_trait]
impl JobSource for Buildkite {
    async fn jobs(&self, pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        let queue = queue_name(pool);
        // The configured URL is the agent API's base; accept it with or without `/v3`.
        let path = if self.http.url("")?.path().trim_end_matches('/').ends_with("/v3") {
            "metrics/queue"
        } else {
            "v3/metrics/queue"
        };
        let mut url = self.http.url(path)?;
        url.query_pairs_mut().append_pair("name", queue);
        let (status, headers, body) = self.http.get_raw(&url, &[("accept", "application/json")]).await?;
        if status == 401 || status == 403 {
            if let Ok(err) = serde_json::from_slice::<ErrorBody>(&body) {
                // Buildkite's explanation ("you forgot to pass an agent registration token");
                // it never echoes the token.
                tracing::warn!(url = %http::redact(&url), status, message = %err.message, "buildkite refused the agent token");
            }
        }
        http::check_status(&url, status, &body)?;
        let metrics: QueueMetrics = http::decode(&url, &body)?;
        let counts = metrics.jobs.unwrap_or_default();
        let poll_hint = headers.get(POLL_DURATION_HEADER).and_then(|v| v.to_str().ok()).and_then(parse_poll_duration);
        Ok(PoolJobs {
            pending: PoolJobs::anonymous(clamp(counts.scheduled)),
            running: PoolJobs::anonymous(clamp(counts.running)),
            waiting: clamp(counts.waiting),
            requests: 1,
            poll_hint,
            partial: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_duration_is_whole_seconds_or_humantime() {
        assert_eq!(parse_poll_duration("15"), Some(Duration::from_secs(15)));
        assert_eq!(parse_poll_duration(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_poll_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_poll_duration("0"), None);
        assert_eq!(parse_poll_duration("soon"), None);
    }

    #[test]
    fn absent_counts_are_zero_and_huge_counts_are_clamped() {
        assert_eq!(clamp(None), 0);
        assert_eq!(clamp(Some(7)), 7);
        assert_eq!(clamp(Some(u64::MAX)), MAX_COUNT as u32);
    }

    #[test]
    fn empty_objects_decode_to_zero_counts() {
        let m: QueueMetrics = serde_json::from_str(r#"{"organization":{"slug":"t"},"jobs":{},"agents":{}}"#).unwrap();
        let c = m.jobs.unwrap_or_default();
        assert_eq!((clamp(c.scheduled), clamp(c.running), clamp(c.waiting)), (0, 0, 0));
        let m: QueueMetrics = serde_json::from_str(r#"{"organization":{"slug":"t"}}"#).unwrap();
        assert!(m.jobs.is_none());
    }
}
