//! Woodpecker adapter: one `GET /api/queue/info` per pool per tick (admin PAT, Bearer),
//! filtered by Woodpecker's own label rule. Owns the queue wire types; must not count
//! `stats` (they ignore labels) nor treat `waiting_on_deps` as demand.

use super::http::{self, ForgeHttp};
use super::{labels, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::{JobRef, PoolJobs};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// Reads Woodpecker's queue.
pub struct Woodpecker {
    http: ForgeHttp,
}

impl Woodpecker {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Woodpecker { http }
    }
}

/// `/api/queue/info`. Lists are `null` when empty before v3.10 and `[]` after; legacy and
/// unknown keys (`Dependencies`, `Paused`, `stats`, `data`, ...) are ignored.
#[derive(Debug, Default, Deserialize)]
struct QueueInfo {
    #[serde(default)]
    pending: Option<Vec<Task>>,
    #[serde(default)]
    waiting_on_deps: Option<Vec<Task>>,
    #[serde(default)]
    running: Option<Vec<Task>>,
}

#[derive(Debug, Deserialize)]
struct Task {
    /// A string in every known version; numbers are tolerated.
    #[serde(default)]
    id: Value,
    #[serde(default)]
    labels: Option<BTreeMap<String, Value>>,
    /// Unix seconds (v3.16+).
    #[serde(default)]
    created: Value,
}

impl Task {
    fn labels(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .flatten()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    }

    fn job_ref(&self) -> JobRef {
        // The server labels every task with its repository's full name (`repo`).
        let repo = self.labels.as_ref().and_then(|l| l.get("repo")).and_then(Value::as_str).map(str::to_string);
        JobRef::created_at(http::json_unix_seconds(&self.created)).repo(repo).with_job_id(http::json_id(&self.id))
    }
}

/// The pool's view of one queue snapshot: pure, so it is tested without a server.
fn pool_jobs(info: &QueueInfo, agent: &BTreeMap<String, String>) -> PoolJobs {
    let matching = |list: &Option<Vec<Task>>| -> Vec<JobRef> {
        list.iter().flatten().filter(|t| labels::woodpecker_matches(agent, &t.labels())).map(Task::job_ref).collect()
    };
    PoolJobs {
        pending: matching(&info.pending),
        running: matching(&info.running),
        waiting: matching(&info.waiting_on_deps).len() as u32,
        requests: 1,
        poll_hint: None,
        partial: None,
    }
}

/// Parses one `/api/queue/info` answer into the pool's view: the adapter's whole
/// interpretation of the bytes, exposed for the fuzz targets.
#[doc(hidden)]
pub fn parse_queue_info(body: &[u8], agent: &BTreeMap<String, String>) -> Result<PoolJobs, serde_json::Error> {
    let info: Option<QueueInfo> = serde_json::from_slice(body)?;
    Ok(pool_jobs(&info.unwrap_or_default(), agent))
}

#[async_trait]
impl JobSource for Woodpecker {
    async fn jobs(&self, pool: &PoolConfig, deadline: Instant) -> Result<PoolJobs, ForgeError> {
        let agent = labels::woodpecker_agent_labels(pool.labels.as_deref())
            .map_err(|e| ForgeError::Other(format!("pools/{}/labels: {e}", pool.name)))?;
        let url = self.http.url("api/queue/info")?;
        let body = self.http.get_ok(&url, &[], deadline).await?.body;
        parse_queue_info(&body, &agent).map_err(|e| self.http.decode_error(&url, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn info(json: &str) -> QueueInfo {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn only_matching_tasks_count_and_ids_and_ages_are_kept() {
        let q = info(
            r#"{"pending":[
                {"id":"1","labels":{"platform":"linux/amd64","repo":"a/b"},"created":1755870000},
                {"id":"2","labels":{"platform":"linux/arm64","repo":"a/b"}}],
              "waiting_on_deps":[{"id":"3","labels":{"platform":"linux/amd64"}},{"id":"4","labels":{"platform":"linux/arm64"}}],
              "running":null}"#,
        );
        let agent = labels::woodpecker_agent_labels(Some(&["platform=linux/amd64".to_string()])).unwrap();
        let jobs = pool_jobs(&q, &agent);
        let expected = JobRef::with_id("1", DateTime::from_timestamp(1_755_870_000, 0)).repo(Some("a/b".into()));
        assert_eq!(jobs.pending, vec![expected], "the repo label names the repository");
        assert!(jobs.running.is_empty());
        assert_eq!(jobs.waiting, 1);
        assert_eq!(jobs.requests, 1);
    }

    #[test]
    fn missing_lists_and_numeric_ids_are_tolerated() {
        let q = info(r#"{"running":[{"id":7,"labels":null,"created":null}],"Paused":false}"#);
        let jobs = pool_jobs(&q, &labels::woodpecker_agent_labels(None).unwrap());
        assert_eq!(jobs.running, vec![JobRef::with_id("7", None)]);
        assert!(jobs.pending.is_empty());
    }
}
