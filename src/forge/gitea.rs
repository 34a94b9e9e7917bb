//! Gitea adapter: `GET /api/v1/{scope}/actions/jobs?status=queued` and `status=in_progress`,
//! every page, labels filtered here (the endpoint has no label filter). Owns the Gitea wire
//! types and their status map, which must never be shared with Forgejo's: Gitea `waiting`
//! means blocked (needs unmet, approval), not queued for a runner.

use super::http::{self, ForgeHttp};
use super::{labels, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig, Scope};
use crate::model::{JobRef, PoolJobs};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;
use url::Url;

/// Jobs asked per page (Gitea's default `[api] MAX_RESPONSE_ITEMS` is 50).
pub const PAGE_LIMIT: usize = 50;
/// Pages read per status per tick at most, so a runaway queue cannot stall a tick.
pub const MAX_PAGES: u32 = 40;

/// Reads Gitea's Actions jobs.
pub struct Gitea {
    http: ForgeHttp,
    scope: Scope,
}

impl Gitea {
    pub fn new(http: ForgeHttp, forge: &ForgeConfig) -> Self {
        Gitea { http, scope: forge.scope.clone() }
    }

    fn page_url(&self, status: &str, page: u32) -> Result<Url, ForgeError> {
        let segments: Vec<&str> = match &self.scope {
            Scope::Admin => vec!["api", "v1", "admin", "actions", "jobs"],
            Scope::Org(org) => vec!["api", "v1", "orgs", org, "actions", "jobs"],
            Scope::Repo { owner, repo } => vec!["api", "v1", "repos", owner, repo, "actions", "jobs"],
            Scope::User => vec!["api", "v1", "user", "actions", "jobs"],
        };
        let mut url = self.http.url("")?;
        url.path_segments_mut()
            .map_err(|_| ForgeError::Other("the forge URL cannot take a path".to_string()))?
            .pop_if_empty()
            .extend(segments);
        url.query_pairs_mut()
            .append_pair("status", status)
            .append_pair("page", &page.to_string())
            .append_pair("limit", &PAGE_LIMIT.to_string());
        Ok(url)
    }

    /// Every job of one status, page by page, until the last page, `MAX_PAGES` or the
    /// deadline (`pages_before`: pages already read for this pool, so a deadline after
    /// them is a partial count rather than an error).
    async fn all_pages(&self, status: &str, deadline: Instant, pages_before: u32) -> Result<Paged, ForgeError> {
        let mut out = Paged::default();
        let mut seen = std::collections::HashSet::new();
        for page in 1..=MAX_PAGES {
            let url = self.page_url(status, page)?;
            let fetched = match self.http.get_json::<Option<JobsPage>>(&url, &[], deadline).await {
                Ok(fetched) => fetched,
                Err(ForgeError::Deadline { .. }) if pages_before + out.requests > 0 => {
                    out.partial = Some(super::partial_by_deadline(pages_before + out.requests));
                    return Ok(out);
                }
                Err(e) => return Err(e),
            };
            out.requests += 1;
            let header_total = fetched
                .headers
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok());
            let body = fetched.body.unwrap_or_default();
            let total = body.total_count.or(header_total);
            let page_jobs = body.jobs.unwrap_or_default();
            let got = page_jobs.len();
            let new = page_jobs.iter().filter(|j| http::json_id(&j.id).is_none_or(|id| seen.insert(id))).count();
            out.jobs.extend(page_jobs);
            if got > 0 && new == 0 {
                tracing::warn!(
                    status,
                    page,
                    "gitea: a page repeated earlier jobs (is `page` ignored?); stopped paging"
                );
                out.partial = Some(format!(
                    "gitea repeated earlier `{status}` jobs on page {page} (is `page` ignored?); paging stopped"
                ));
                return Ok(out);
            }
            if !more_pages(got, out.jobs.len(), total) {
                return Ok(out);
            }
        }
        tracing::warn!(status, pages = MAX_PAGES, "gitea: stopped paging at the per-tick page limit");
        out.partial = Some(format!("page budget of {MAX_PAGES} spent on `{status}` jobs; more pages were left"));
        Ok(out)
    }
}

/// What the pages of one status held.
#[derive(Default)]
struct Paged {
    jobs: Vec<Job>,
    requests: u32,
    partial: Option<String>,
}

/// Whether another page may hold jobs: not after an empty page; with a total (body
/// `total_count` or `X-Total-Count`), until that many are read; without one, while pages
/// come back full.
fn more_pages(on_this_page: usize, read_so_far: usize, total: Option<usize>) -> bool {
    match total {
        _ if on_this_page == 0 => false,
        Some(total) => read_so_far < total,
        None => on_this_page >= PAGE_LIMIT,
    }
}

/// `ActionWorkflowJobsResponse`; the array key is `jobs` (some versions `workflow_jobs`).
#[derive(Debug, Default, Deserialize)]
struct JobsPage {
    #[serde(default, alias = "workflow_jobs")]
    jobs: Option<Vec<Job>>,
    #[serde(default)]
    total_count: Option<usize>,
}

/// `ActionWorkflowJob`: only what the pool's view needs; other fields are ignored.
#[derive(Debug, Deserialize)]
struct Job {
    #[serde(default)]
    id: Value,
    /// The job's `runs-on`.
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    /// `.../api/v1/repos/{owner}/{repo}/actions/jobs/{id}`: names the repository.
    #[serde(default)]
    url: Option<String>,
}

/// `owner/repo` from a Gitea API URL `.../repos/{owner}/{repo}/...`.
fn repo_of(url: Option<&str>) -> Option<String> {
    let mut segments = url?.split('/').skip_while(|s| *s != "repos").skip(1);
    match (segments.next(), segments.next()) {
        (Some(owner), Some(repo)) if !owner.is_empty() && !repo.is_empty() => Some(format!("{owner}/{repo}")),
        _ => None,
    }
}

/// Where a job stands for the pool, by Gitea's own vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Standing {
    /// Blocked: `waiting`, `pending`, `requested`, `action_required`.
    Blocked,
    /// `queued`: ready, waiting for a runner.
    Queued,
    /// `in_progress`: a runner has it.
    InProgress,
}

fn standing(status: Option<&str>, asked_for: Standing) -> Option<Standing> {
    match status {
        None => Some(asked_for),
        Some("queued") => Some(Standing::Queued),
        Some("in_progress" | "running") => Some(Standing::InProgress),
        Some("waiting" | "pending" | "requested" | "action_required" | "blocked") => Some(Standing::Blocked),
        Some(_) => None,
    }
}

/// A Gitea time; the zero Unix time Gitea prints for "never" (`1970-01-01T00:00:00Z`) is none.
fn gitea_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(text?).ok()?.with_timezone(&Utc);
    (t.timestamp() > 0).then_some(t)
}

/// The pool's view of both answers: pure. A job seen in both (it started between the two
/// requests) counts once, as running.
fn pool_jobs(answers: &[(Standing, Vec<Job>)], runner_names: &BTreeSet<String>, requests: u32) -> PoolJobs {
    let mut by_id: BTreeMap<String, (Standing, JobRef)> = BTreeMap::new();
    let mut anonymous: Vec<(Standing, JobRef)> = Vec::new();
    for (asked_for, jobs) in answers {
        for job in jobs {
            if !labels::runs_on_matches(runner_names, job.labels.as_deref().unwrap_or(&[])) {
                continue;
            }
            let Some(standing) = standing(job.status.as_deref(), *asked_for) else { continue };
            let job_ref = JobRef::created_at(gitea_time(job.created_at.as_deref()))
                .with_job_id(http::json_id(&job.id))
                .started(gitea_time(job.started_at.as_deref()))
                .repo(repo_of(job.url.as_deref()));
            match job_ref.id.clone() {
                Some(id) => {
                    let entry = by_id.entry(id).or_insert((standing, job_ref.clone()));
                    if standing > entry.0 {
                        *entry = (standing, job_ref);
                    }
                }
                None => anonymous.push((standing, job_ref)),
            }
        }
    }
    let mut out = PoolJobs { requests, ..PoolJobs::default() };
    for (standing, job_ref) in by_id.into_values().chain(anonymous) {
        match standing {
            Standing::Queued => out.pending.push(job_ref),
            Standing::InProgress => out.running.push(job_ref),
            Standing::Blocked => out.waiting += 1,
        }
    }
    out
}

/// Parses one page (`ActionWorkflowJobsResponse` or `null`) as a `queued` answer into the
/// pool's view: the adapter's interpretation of the bytes, exposed for the fuzz targets.
#[doc(hidden)]
pub fn parse_page(body: &[u8], runner_names: &BTreeSet<String>) -> Result<PoolJobs, serde_json::Error> {
    let page: Option<JobsPage> = serde_json::from_slice(body)?;
    let page = page.unwrap_or_default();
    let jobs = page.jobs.unwrap_or_default();
    let _ = more_pages(jobs.len(), jobs.len(), page.total_count);
    Ok(pool_jobs(&[(Standing::Queued, jobs)], runner_names, 1))
}

#[async_trait]
impl JobSource for Gitea {
    async fn jobs(&self, pool: &PoolConfig, deadline: Instant) -> Result<PoolJobs, ForgeError> {
        let runner_names = labels::runner_label_names(pool.labels.as_deref());
        let queued = self.all_pages("queued", deadline, 0).await?;
        let in_progress = self.all_pages("in_progress", deadline, queued.requests).await?;
        let requests = queued.requests + in_progress.requests;
        tracing::debug!(pool = %pool.name, requests, "gitea: jobs read");
        let mut partial = None;
        for reason in [queued.partial, in_progress.partial].into_iter().flatten() {
            super::add_partial(&mut partial, reason);
        }
        let mut out = pool_jobs(
            &[(Standing::Queued, queued.jobs), (Standing::InProgress, in_progress.jobs)],
            &runner_names,
            requests,
        );
        out.partial = partial;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(json: &str) -> Vec<Job> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn zero_time_is_not_a_time() {
        assert_eq!(gitea_time(Some("1970-01-01T00:00:00Z")), None);
        assert_eq!(gitea_time(None), None);
        assert_eq!(gitea_time(Some("2026-07-16T10:00:00Z")), DateTime::from_timestamp(1_784_196_000, 0));
        assert_eq!(gitea_time(Some("2026-07-16T12:00:00+02:00")), DateTime::from_timestamp(1_784_196_000, 0));
    }

    #[test]
    fn paging_stops_at_the_total_an_empty_page_or_a_short_page() {
        assert!(more_pages(50, 50, Some(60)));
        assert!(!more_pages(10, 60, Some(60)));
        assert!(more_pages(30, 30, Some(45)), "a server limit below ours still pages to the total");
        assert!(!more_pages(0, 30, Some(45)));
        assert!(more_pages(PAGE_LIMIT, PAGE_LIMIT, None));
        assert!(!more_pages(PAGE_LIMIT - 1, 120, None));
    }

    #[test]
    fn a_job_in_both_answers_counts_once_as_running() {
        let queued = jobs(r#"[{"id":1,"labels":[],"status":"queued"},{"id":2,"labels":[],"status":"queued"}]"#);
        let running = jobs(r#"[{"id":1,"labels":[],"status":"in_progress"}]"#);
        let out = pool_jobs(&[(Standing::Queued, queued), (Standing::InProgress, running)], &BTreeSet::new(), 2);
        assert_eq!(out.pending, vec![JobRef::with_id("2", None)]);
        assert_eq!(out.running, vec![JobRef::with_id("1", None)]);
    }

    #[test]
    fn waiting_and_other_blocked_statuses_are_not_pending() {
        let list = jobs(
            r#"[{"id":1,"labels":[],"status":"waiting"},{"id":2,"labels":[],"status":"pending"},
                {"id":3,"labels":[],"status":"completed"},{"id":4,"labels":[]}]"#,
        );
        let out = pool_jobs(&[(Standing::Queued, list)], &BTreeSet::new(), 1);
        assert_eq!(out.waiting, 2);
        assert_eq!(out.pending, vec![JobRef::with_id("4", None)], "no status: the one asked for");
    }
}
