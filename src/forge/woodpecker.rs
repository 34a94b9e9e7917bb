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
        JobRef { id: http::json_id(&self.id), created: http::json_unix_seconds(&self.created) }
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

#[async_trait]
impl JobSource for Woodpecker {
    async fn jobs(&self, pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        let agent = labels::woodpecker_agent_labels(pool.labels.as_deref())
            .map_err(|e| ForgeError::Other(format!("pools/{}/labels: {e}", pool.name)))?;
        let url = self.http.url("api/queue/info")?;
        let info: Option<QueueInfo> = self.http.get_json(&url, &[]).await?.body;
        Ok(pool_jobs(&info.unwrap_or_default(), &agent))
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
        assert_eq!(jobs.pending, vec![JobRef::with_id("1", DateTime::from_timestamp(1_755_870_000, 0))]);
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
