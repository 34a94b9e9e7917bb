//! Drone adapter: one `GET /api/queue` (admin token, Bearer) per pool per tick, stages
//! matched by Drone's own scheduler rule (platform, kind/type, exact label maps). Owns the
//! Stage wire type; must not count stages a runner of this pool would never take.

use super::http::{self, ForgeHttp};
use super::{labels, ForgeError, JobSource};
use crate::config::{DronePlatform, ForgeConfig, PoolConfig};
use crate::model::{JobRef, PoolJobs};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// Reads Drone's queue.
pub struct Drone {
    http: ForgeHttp,
}

impl Drone {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Drone { http }
    }
}

/// One `core.Stage`; omitempty fields (`kind`, `type`, `variant`, `kernel`, `labels`, ...)
/// may be absent, unknown ones are ignored.
#[derive(Debug, Deserialize)]
struct Stage {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    arch: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Value>>,
    /// Unix seconds.
    #[serde(default)]
    created: Value,
    /// Unix seconds; 0 before the stage started.
    #[serde(default)]
    started: Value,
    /// The stage's repository, by id (the queue does not name it).
    #[serde(default)]
    repo_id: Value,
}

impl Stage {
    fn spec(&self) -> labels::DroneStage {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        labels::DroneStage {
            os: text(&self.os),
            arch: text(&self.arch),
            variant: text(&self.variant),
            kernel: text(&self.kernel),
            kind: text(&self.kind),
            type_: text(&self.type_),
            labels: self
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        }
    }
}

/// The pool's view of the queue: pure.
fn pool_jobs(stages: &[Stage], platform: &DronePlatform, runner_labels: &BTreeMap<String, String>) -> PoolJobs {
    let mut out = PoolJobs { requests: 1, ..PoolJobs::default() };
    for stage in stages.iter().filter(|s| labels::drone_matches(platform, runner_labels, &s.spec())) {
        let repo = http::json_id(&stage.repo_id).map(|id| format!("repo-id {id}"));
        let started = http::json_unix_seconds(&stage.started).filter(|t| t.timestamp() > 0);
        let job_ref = JobRef::created_at(http::json_unix_seconds(&stage.created))
            .with_job_id(http::json_id(&stage.id))
            .started(started)
            .repo(repo);
        match stage.status.as_deref() {
            Some("pending") => out.pending.push(job_ref),
            Some("running") => out.running.push(job_ref),
            // Not in /api/queue today; never demand, only the deadlock guard's concern.
            Some("waiting_on_dependencies") => out.waiting += 1,
            _ => {}
        }
    }
    out
}

/// Parses one `/api/queue` answer into the pool's view: the adapter's whole interpretation
/// of the bytes, exposed for the fuzz targets.
#[doc(hidden)]
pub fn parse_queue(
    body: &[u8],
    platform: &DronePlatform,
    runner_labels: &BTreeMap<String, String>,
) -> Result<PoolJobs, serde_json::Error> {
    let stages: Option<Vec<Stage>> = serde_json::from_slice(body)?;
    Ok(pool_jobs(stages.as_deref().unwrap_or(&[]), platform, runner_labels))
}

#[async_trait]
impl JobSource for Drone {
    async fn jobs(&self, pool: &PoolConfig, deadline: Instant) -> Result<PoolJobs, ForgeError> {
        let runner_labels = labels::parse_pairs(pool.labels.as_deref().unwrap_or(&[]))
            .map_err(|e| ForgeError::Other(format!("pools/{}/labels: {e}", pool.name)))?;
        let url = self.http.url("api/queue")?;
        let body = self.http.get_ok(&url, &[], deadline).await?.body;
        parse_queue(&body, &pool.drone, &runner_labels).map_err(|e| self.http.decode_error(&url, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_kind_and_type_count_as_pipeline_docker() {
        let stages: Vec<Stage> = serde_json::from_str(
            r#"[{"id":1,"status":"pending","os":"linux","arch":"amd64","created":1537221914},
                {"id":2,"status":"pending","os":"linux","arch":"amd64","type":"exec"},
                {"id":3,"status":"blocked","os":"linux","arch":"amd64"}]"#,
        )
        .unwrap();
        let out = pool_jobs(&stages, &DronePlatform::default(), &BTreeMap::new());
        assert_eq!(out.pending, vec![JobRef::with_id("1", chrono::DateTime::from_timestamp(1_537_221_914, 0))]);
        assert!(out.running.is_empty());
        assert_eq!(out.waiting, 0, "blocked (approval) is neither demand nor a dependency wait");
    }
}
