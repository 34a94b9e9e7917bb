//! GitLab adapter: lists each configured project's pending and running jobs
//! (`GET /api/v4/projects/:id/jobs?scope[]=pending&scope[]=running`, `PRIVATE-TOKEN`) and
//! keeps those the pool's runners could take (tag rule below). Owns the jobs wire type and
//! pagination (offset and keyset); it must not spend more than `max_requests_per_tick`.

use super::http::{self, ForgeHttp};
use super::{ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::{JobRef, PoolJobs};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashSet;
use tokio::time::Instant;
use url::Url;

/// Jobs per page: GitLab's maximum.
pub const PER_PAGE: u32 = 100;

/// Reads GitLab project jobs.
pub struct Gitlab {
    http: ForgeHttp,
    forge_name: String,
    projects: Vec<String>,
    max_requests_per_tick: u32,
}

impl Gitlab {
    pub fn new(http: ForgeHttp, forge: &ForgeConfig) -> Self {
        Gitlab {
            http,
            forge_name: forge.name.clone(),
            projects: forge.projects.clone(),
            max_requests_per_tick: forge.max_requests_per_tick,
        }
    }
}

#[derive(Debug, Deserialize)]
struct WireJob {
    id: u64,
    status: String,
    #[serde(default)]
    tag_list: Option<Vec<String>>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
}

/// GitLab's rule: a job's `tag_list` must be a subset of the runner's tags; a job without
/// tags runs only on runners that accept untagged jobs. Tags compare case-insensitively
/// (GitLab stores one tag per name regardless of case) after trimming.
pub fn tags_match(job_tags: &[String], runner_tags: &[String], run_untagged: bool) -> bool {
    let job_tags: Vec<&str> = job_tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect();
    if job_tags.is_empty() {
        return run_untagged;
    }
    job_tags.iter().all(|t| runner_tags.iter().any(|r| r.trim().eq_ignore_ascii_case(t)))
}

/// The path segment for a project: a numeric id, or a `group/project` path percent-encoded
/// (an already encoded `group%2Fproject` is kept as is).
pub fn project_segment(project: &str) -> String {
    let project = project.trim().trim_matches('/');
    let mut out = String::with_capacity(project.len());
    for byte in project.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'%' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The next page's URL: `Link rel="next"` (keyset, and offset pagination too) when given,
/// else offset pagination's `x-next-page` (empty on the last page).
fn next_page(base: &Url, current: &Url, headers: &reqwest::header::HeaderMap) -> Result<Option<Url>, ForgeError> {
    if let Some(link) = http::next_link(headers) {
        return http::follow_link(base, current, &link).map(Some);
    }
    let next = headers.get("x-next-page").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    if next.is_empty() {
        return Ok(None);
    }
    let page: u64 = next.parse().map_err(|_| ForgeError::Decode {
        url: http::redact(current),
        message: format!("x-next-page {next:?} is not a page number"),
    })?;
    let pairs: Vec<(String, String)> =
        current.query_pairs().filter(|(k, _)| k != "page").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut url = current.clone();
    url.query_pairs_mut().clear().extend_pairs(pairs).append_pair("page", &page.to_string());
    Ok(Some(url))
}

fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// Adds one page's jobs the runner could take to `out` (each job id once).
fn count_page(
    jobs: Vec<WireJob>,
    project: &str,
    runner_tags: &[String],
    run_untagged: bool,
    seen: &mut HashSet<u64>,
    out: &mut PoolJobs,
) {
    for job in jobs {
        let tags = job.tag_list.as_deref().unwrap_or(&[]);
        if !tags_match(tags, runner_tags, run_untagged) || !seen.insert(job.id) {
            continue;
        }
        let job_ref = JobRef::with_id(job.id.to_string(), parse_time(job.created_at.as_deref()))
            .started(parse_time(job.started_at.as_deref()))
            .repo(Some(project.to_string()));
        match job.status.as_str() {
            "pending" => out.pending.push(job_ref),
            "running" => out.running.push(job_ref),
            _ => {} // the docs' example shows other statuses: not demand
        }
    }
}

/// Parses one jobs page into the pool's view: the adapter's interpretation of the bytes,
/// exposed for the fuzz targets.
#[doc(hidden)]
pub fn parse_page(body: &[u8], runner_tags: &[String], run_untagged: bool) -> Result<PoolJobs, serde_json::Error> {
    let jobs: Vec<WireJob> = serde_json::from_slice(body)?;
    let mut out = PoolJobs { requests: 1, ..PoolJobs::default() };
    count_page(jobs, "", runner_tags, run_untagged, &mut HashSet::new(), &mut out);
    Ok(out)
}

#[async_trait]
impl JobSource for Gitlab {
    async fn jobs(&self, pool: &PoolConfig, deadline: Instant) -> Result<PoolJobs, ForgeError> {
        let runner_tags = pool.labels.clone().unwrap_or_default();
        let base = self.http.url("")?;
        let mut out = PoolJobs::default();
        let mut seen = HashSet::new();
        'projects: for project in &self.projects {
            let mut url = self.http.url(&format!("api/v4/projects/{}/jobs", project_segment(project)))?;
            url.query_pairs_mut()
                .append_pair("scope[]", "pending")
                .append_pair("scope[]", "running")
                .append_pair("per_page", &PER_PAGE.to_string());
            let mut visited = HashSet::new();
            loop {
                if out.requests >= self.max_requests_per_tick {
                    tracing::warn!(
                        forge = %self.forge_name,
                        budget = self.max_requests_per_tick,
                        "gitlab: request budget spent with pages left; the count is a lower bound"
                    );
                    out.partial = Some(format!(
                        "request budget of {} (max_requests_per_tick) spent after {} pages; more pages were left",
                        self.max_requests_per_tick, out.requests
                    ));
                    break 'projects;
                }
                visited.insert(url.to_string());
                let fetched =
                    match self.http.get_json::<Vec<WireJob>>(&url, &[("accept", "application/json")], deadline).await {
                        Ok(fetched) => fetched,
                        Err(ForgeError::Deadline { .. }) if out.requests > 0 => {
                            out.partial = Some(super::partial_by_deadline(out.requests));
                            break 'projects;
                        }
                        Err(e) => return Err(e),
                    };
                out.requests += 1;
                let page_len = fetched.body.len();
                count_page(fetched.body, project, &runner_tags, pool.run_untagged, &mut seen, &mut out);
                match next_page(&base, &url, &fetched.headers)? {
                    Some(next) if page_len > 0 && !visited.contains(next.as_str()) => url = next,
                    _ => break,
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn job_tags_must_be_a_subset_of_the_runner_tags() {
        let runner = tags(&["docker runner", "ubuntu18", "aws"]);
        assert!(tags_match(&tags(&["docker runner", "ubuntu18"]), &runner, false));
        assert!(tags_match(&tags(&["Docker Runner"]), &runner, false));
        assert!(!tags_match(&tags(&["docker runner", "win10-2004"]), &runner, true));
        assert!(!tags_match(&tags(&["gpu"]), &[], true));
    }

    #[test]
    fn untagged_jobs_only_on_runners_that_run_untagged() {
        assert!(!tags_match(&[], &tags(&["aws"]), false));
        assert!(tags_match(&[], &tags(&["aws"]), true));
        assert!(tags_match(&[], &[], true));
        assert!(!tags_match(&tags(&[" "]), &[], false));
    }

    #[test]
    fn project_paths_are_encoded_once() {
        assert_eq!(project_segment("42"), "42");
        assert_eq!(project_segment("group/sub/project"), "group%2Fsub%2Fproject");
        assert_eq!(project_segment("group%2Fproject"), "group%2Fproject");
    }

    #[test]
    fn offset_pagination_replaces_the_page() {
        let base = Url::parse("http://127.0.0.1:1/").unwrap();
        let current = Url::parse("http://127.0.0.1:1/api/v4/projects/1/jobs?per_page=100&page=1").unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-next-page", HeaderValue::from_static("2"));
        let next = next_page(&base, &current, &h).unwrap().unwrap();
        assert_eq!(next.query_pairs().filter(|(k, v)| k == "page" && v == "2").count(), 1);
        assert_eq!(next.query_pairs().filter(|(k, _)| k == "page").count(), 1);
        h.insert("x-next-page", HeaderValue::from_static(""));
        assert!(next_page(&base, &current, &h).unwrap().is_none());
    }
}
