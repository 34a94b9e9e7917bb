//! Forgejo adapter: `GET /api/v1/{scope}/actions/runners/jobs?labels=<runner labels>` (a
//! bare array, `null` when empty) with `Authorization: token`. Owns the Forgejo wire types
//! and the admin-path fallback; must not share Gitea's status map (Forgejo `waiting` means
//! queued for a runner, Gitea `waiting` means blocked).

use super::http::{self, ForgeHttp};
use super::{labels, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig, Scope};
use crate::model::{JobRef, PoolJobs};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;
use url::Url;

/// Forgejo >= 15 admin path.
const ADMIN_PATH: [&str; 6] = ["api", "v1", "admin", "actions", "runners", "jobs"];
/// Forgejo 11..14 admin path (deprecated in 15).
const ADMIN_LEGACY_PATH: [&str; 5] = ["api", "v1", "admin", "runners", "jobs"];

/// Reads Forgejo's runner job queue.
pub struct Forgejo {
    http: ForgeHttp,
    scope: Scope,
    /// Admin scope: the legacy path answered where the new one was 404, so ask it first.
    admin_legacy_first: AtomicBool,
}

impl Forgejo {
    pub fn new(http: ForgeHttp, forge: &ForgeConfig) -> Self {
        Forgejo { http, scope: forge.scope.clone(), admin_legacy_first: AtomicBool::new(false) }
    }

    /// The path segments for the configured scope (admin: the preferred one of the two).
    fn scope_segments(&self, admin_legacy: bool) -> Vec<&str> {
        match &self.scope {
            Scope::Admin if admin_legacy => ADMIN_LEGACY_PATH.to_vec(),
            Scope::Admin => ADMIN_PATH.to_vec(),
            Scope::Org(org) => vec!["api", "v1", "orgs", org, "actions", "runners", "jobs"],
            Scope::Repo { owner, repo } => vec!["api", "v1", "repos", owner, repo, "actions", "runners", "jobs"],
            Scope::User => vec!["api", "v1", "user", "actions", "runners", "jobs"],
        }
    }

    fn jobs_url(&self, admin_legacy: bool, runner_names: &[String]) -> Result<Url, ForgeError> {
        let mut url = self.http.url("")?;
        url.path_segments_mut()
            .map_err(|_| ForgeError::Other("the forge URL cannot take a path".to_string()))?
            .pop_if_empty()
            .extend(self.scope_segments(admin_legacy));
        url.query_pairs_mut().append_pair("labels", &runner_names.join(","));
        Ok(url)
    }
}

/// One `ActionRunJob`; v15+ fields (`run_id`, `attempt`, `handle`) and others are ignored.
#[derive(Debug, Deserialize)]
struct Job {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    runs_on: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
}

/// The pool's view of one answer: pure.
fn pool_jobs(jobs: &[Job], runner_names: &BTreeSet<String>, requests: u32) -> PoolJobs {
    let mut out = PoolJobs { requests, ..PoolJobs::default() };
    for job in jobs {
        // The server filters by `labels` already; older builds ignored an empty filter.
        if !labels::runs_on_matches(runner_names, job.runs_on.as_deref().unwrap_or(&[])) {
            continue;
        }
        let job_ref = JobRef::created_at(None).with_job_id(http::json_id(&job.id));
        match job.status.as_deref() {
            Some("waiting") => out.pending.push(job_ref),
            Some("running") => out.running.push(job_ref),
            Some("blocked") => out.waiting += 1,
            _ => {}
        }
    }
    out
}

/// Parses one jobs answer (a bare array or `null`) into the pool's view: the adapter's
/// whole interpretation of the bytes, exposed for the fuzz targets.
#[doc(hidden)]
pub fn parse_jobs(body: &[u8], runner_names: &BTreeSet<String>, requests: u32) -> Result<PoolJobs, serde_json::Error> {
    let jobs: Option<Vec<Job>> = serde_json::from_slice(body)?;
    Ok(pool_jobs(jobs.as_deref().unwrap_or(&[]), runner_names, requests))
}

#[async_trait]
impl JobSource for Forgejo {
    async fn jobs(&self, pool: &PoolConfig, deadline: Instant) -> Result<PoolJobs, ForgeError> {
        let runner_names = labels::runner_label_names(pool.labels.as_deref());
        let query_names = labels::runner_label_names_in_order(pool.labels.as_deref());
        let legacy_first = self.admin_legacy_first.load(Ordering::Relaxed);
        let first = self.jobs_url(legacy_first, &query_names)?;
        let (status, headers, body) = self.http.get_raw(&first, &[], deadline).await?;
        let (url, status, headers, body, requests) = if status == 404 && self.scope == Scope::Admin {
            // Forgejo < 15 has only the legacy path; a later upgrade may remove it again.
            let other = self.jobs_url(!legacy_first, &query_names)?;
            let (other_status, other_headers, other_body) = self.http.get_raw(&other, &[], deadline).await?;
            if other_status == 404 {
                return Err(ForgeError::Status {
                    url: http::redact(&other),
                    status: 404,
                    message: format!(
                        "{} answered 404 too: Forgejo 11 or later is needed (Gitea has no such endpoint: use kind = \"gitea\")",
                        http::redact(&first)
                    ),
                });
            }
            if (200..300).contains(&other_status) {
                self.admin_legacy_first.store(!legacy_first, Ordering::Relaxed);
                tracing::info!(url = %http::redact(&other), "forgejo: admin jobs path found after a 404, kept for later ticks");
            }
            (other, other_status, other_headers, other_body, 2)
        } else {
            (first, status, headers, body, 1)
        };
        if status == 429 {
            return Err(ForgeError::RateLimited { url: http::redact(&url), reset_in: http::retry_after(&headers) });
        }
        self.http.check_status(&url, status, &body)?;
        parse_jobs(&body, &runner_names, requests).map_err(|e| self.http.decode_error(&url, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(json: &str) -> Vec<Job> {
        serde_json::from_str::<Option<Vec<Job>>>(json).unwrap().unwrap_or_default()
    }

    #[test]
    fn waiting_is_pending_running_is_running_blocked_is_waiting() {
        let list = jobs(
            r#"[{"id":1,"runs_on":["docker"],"status":"waiting"},{"id":2,"runs_on":["docker"],"status":"running"},
                {"id":3,"runs_on":["docker"],"status":"blocked"},{"id":4,"runs_on":["docker"],"status":"success"},
                {"id":5,"runs_on":["gpu"],"status":"waiting"}]"#,
        );
        let names = labels::runner_label_names(Some(&["docker:docker://node:20".to_string()]));
        let out = pool_jobs(&list, &names, 1);
        assert_eq!(out.pending, vec![JobRef::with_id("1", None)]);
        assert_eq!(out.running, vec![JobRef::with_id("2", None)]);
        assert_eq!(out.waiting, 1);
    }

    #[test]
    fn null_runs_on_counts_as_no_labels() {
        let out = pool_jobs(&jobs(r#"[{"id":9,"runs_on":null,"status":"waiting"}]"#), &BTreeSet::new(), 1);
        assert_eq!(out.pending.len(), 1);
    }
}
