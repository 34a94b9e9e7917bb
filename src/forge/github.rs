//! GitHub Actions adapter: for each configured repository, lists the queued and in-progress
//! workflow runs, then their jobs, and keeps the jobs the pool's runners could take (label
//! rule below). Owns the wire types, the ETag cache and the rate-limit block, both kept
//! across ticks inside the adapter; it must not spend more than `max_requests_per_tick`
//! quota-costing requests per pool and tick, nor send any request while the limit is spent.

use super::http::{self, ForgeHttp};
use super::{ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::{JobRef, PoolJobs};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use url::Url;

/// Items per page: GitHub's maximum.
pub const PER_PAGE: u32 = 100;
/// The REST API version this adapter was written against.
pub const API_VERSION: &str = "2022-11-28";
/// How long to stay quiet after a rate-limit answer that says neither when nor how long.
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);
/// Cached bodies unused for this long are dropped (old runs' job lists).
pub const CACHE_IDLE_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Reads GitHub Actions runs and jobs.
pub struct Github {
    http: ForgeHttp,
    forge_name: String,
    repos: Vec<String>,
    max_requests_per_tick: u32,
    state: Mutex<State>,
    /// Pools of this forge read one after another, so the second pool of a tick finds the
    /// first one's answers in the ETag cache and its requests are free 304s.
    one_pool_at_a_time: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    /// Per URL: the last 200 answer's ETag and body, reused on a 304.
    cache: HashMap<String, Cached>,
    /// No request before this instant (rate limit spent).
    blocked_until: Option<SystemTime>,
}

struct Cached {
    etag: String,
    body: Arc<Vec<u8>>,
    used: std::time::Instant,
}

impl Github {
    pub fn new(http: ForgeHttp, forge: &ForgeConfig) -> Self {
        Github {
            http,
            forge_name: forge.name.clone(),
            repos: forge.repos.clone(),
            max_requests_per_tick: forge.max_requests_per_tick,
            state: Mutex::new(State::default()),
            one_pool_at_a_time: tokio::sync::Mutex::new(()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RunsPage {
    #[serde(default)]
    workflow_runs: Vec<WireRun>,
}

#[derive(Debug, Deserialize)]
struct WireRun {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct JobsPage {
    #[serde(default)]
    jobs: Vec<WireJob>,
}

#[derive(Debug, Deserialize)]
struct WireJob {
    id: u64,
    status: String,
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
}

/// GitHub's rule: a runner takes a job when every label of the job (its `runs-on`) is among
/// the runner's labels, compared case-insensitively; nothing is implied (`self-hosted`,
/// `linux`, `x64` must be written in the pool's labels).
pub fn labels_match(job_labels: &[String], runner_labels: &[String]) -> bool {
    job_labels.iter().map(|l| l.trim()).all(|l| runner_labels.iter().any(|r| r.trim().eq_ignore_ascii_case(l)))
}

/// What the rate-limit headers of an answer say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: Unix seconds.
    pub reset_epoch_s: Option<u64>,
    /// `Retry-After`: seconds.
    pub retry_after_s: Option<u64>,
}

impl RateLimit {
    fn from_headers(headers: &HeaderMap) -> Self {
        let number = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        RateLimit {
            remaining: number("x-ratelimit-remaining"),
            reset_epoch_s: number("x-ratelimit-reset"),
            retry_after_s: number("retry-after"),
        }
    }
}

/// Until when no request may be sent, given an answer's status and rate-limit headers at
/// `now`; `None` when the answer does not spend the limit. A 403/429 with no remaining
/// quota, or with `Retry-After`, blocks until the reset (or for the retry delay); a 429
/// saying neither blocks for `DEFAULT_RATE_LIMIT_PAUSE`. A success that leaves no quota
/// blocks until the reset, so the next tick does not earn a 403. A 403 whose message says
/// "rate limit" (GitHub's secondary limits) waits a minute, as GitHub asks.
pub fn blocked_until(status: u16, limit: RateLimit, says_rate_limit: bool, now: SystemTime) -> Option<SystemTime> {
    let at_reset = limit.reset_epoch_s.map(|s| UNIX_EPOCH + Duration::from_secs(s));
    let after_retry = limit.retry_after_s.map(|s| now + Duration::from_secs(s));
    let spent = limit.remaining == Some(0);
    match status {
        403 | 429 if limit.retry_after_s.is_some() => after_retry,
        403 | 429 if spent => Some(at_reset.unwrap_or(now + DEFAULT_RATE_LIMIT_PAUSE)),
        429 => Some(now + DEFAULT_RATE_LIMIT_PAUSE),
        403 if says_rate_limit => Some(now + DEFAULT_RATE_LIMIT_PAUSE),
        200..=299 if spent => at_reset,
        _ => None,
    }
}

fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// Requests spent while reading one pool.
struct Budget {
    /// Quota-costing requests (not 304s).
    spent: u32,
    max: u32,
    /// Pages read, 304s included.
    pages_read: u32,
}

/// Why a listing stopped before its last page.
enum Halt {
    Budget,
    Deadline,
}

impl Github {
    fn rate_limited(url: &Url, until: SystemTime, now: SystemTime) -> ForgeError {
        ForgeError::RateLimited {
            url: http::redact(url),
            reset_in: until.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }

    /// GETs one page through the ETag cache, honouring the rate-limit block and the budget.
    async fn fetch(
        &self,
        url: &Url,
        budget: &mut Budget,
        deadline: Instant,
    ) -> Result<(Arc<Vec<u8>>, HeaderMap), ForgeError> {
        let key = url.to_string();
        let etag = {
            let state = self.state.lock().expect("github state lock");
            let now = SystemTime::now();
            if let Some(until) = state.blocked_until.filter(|u| *u > now) {
                return Err(Self::rate_limited(url, until, now));
            }
            state.cache.get(&key).map(|c| c.etag.clone())
        };
        let version = API_VERSION;
        let mut extra = vec![("accept", "application/vnd.github+json"), ("x-github-api-version", version)];
        if let Some(etag) = etag.as_deref() {
            extra.push(("if-none-match", etag));
        }
        let (status, headers, body) = self.http.get_raw(url, &extra, deadline).await?;
        let now = SystemTime::now();
        let limit = RateLimit::from_headers(&headers);
        let says_rate_limit = status == 403 && String::from_utf8_lossy(&body).to_lowercase().contains("rate limit");
        let block = blocked_until(status, limit, says_rate_limit, now);
        let mut state = self.state.lock().expect("github state lock");
        if let Some(until) = block {
            state.blocked_until = Some(until);
        }
        if status == 304 {
            // Not counted against the quota (GitHub's conditional requests).
            if let Some(cached) = state.cache.get_mut(&key) {
                cached.used = std::time::Instant::now();
                return Ok((cached.body.clone(), headers));
            }
            return Err(ForgeError::Status {
                url: http::redact(url),
                status,
                message: "304 Not Modified for a request this client has no cached answer for".to_string(),
            });
        }
        budget.spent += 1;
        if matches!(status, 403 | 429) {
            if let Some(until) = block {
                return Err(Self::rate_limited(url, until, now));
            }
        }
        self.http.check_status(url, status, &body)?;
        let body = Arc::new(body);
        match headers.get("etag").and_then(|v| v.to_str().ok()) {
            Some(etag) => {
                let used = std::time::Instant::now();
                state.cache.insert(key, Cached { etag: etag.to_string(), body: body.clone(), used });
            }
            None => {
                state.cache.remove(&key);
            }
        }
        Ok((body, headers))
    }

    /// Every page of a listing, decoded, until the last page, the request budget or the
    /// deadline (after at least one page of this pool was read; before, it is an error).
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        first: Url,
        budget: &mut Budget,
        deadline: Instant,
    ) -> Result<(Vec<T>, Option<Halt>), ForgeError> {
        let base = self.http.url("")?;
        let mut out = Vec::new();
        let mut url = first;
        let mut visited = HashSet::new();
        loop {
            if budget.spent >= budget.max {
                return Ok((out, Some(Halt::Budget)));
            }
            visited.insert(url.to_string());
            let (body, headers) = match self.fetch(&url, budget, deadline).await {
                Ok(answer) => answer,
                Err(ForgeError::Deadline { .. }) if budget.pages_read > 0 => return Ok((out, Some(Halt::Deadline))),
                Err(e) => return Err(e),
            };
            budget.pages_read += 1;
            out.push(self.http.decode::<T>(&url, &body)?);
            match http::next_link(&headers) {
                Some(link) => {
                    let next = http::follow_link(&base, &url, &link)?;
                    if visited.contains(next.as_str()) {
                        break;
                    }
                    url = next;
                }
                None => break,
            }
        }
        Ok((out, None))
    }

    fn prune_cache(&self) {
        let mut state = self.state.lock().expect("github state lock");
        state.cache.retain(|_, c| c.used.elapsed() < CACHE_IDLE_LIMIT);
    }
}

/// Adds one jobs page's jobs the runner could take to `out` (each job id once).
fn count_jobs(page: JobsPage, repo: &str, runner_labels: &[String], seen: &mut HashSet<u64>, out: &mut PoolJobs) {
    for job in page.jobs {
        let labels = job.labels.as_deref().unwrap_or(&[]);
        if !labels_match(labels, runner_labels) || !seen.insert(job.id) {
            continue;
        }
        let job_ref = JobRef::with_id(job.id.to_string(), parse_time(job.created_at.as_deref()))
            .started(parse_time(job.started_at.as_deref()).filter(|_| job.status == "in_progress"))
            .repo(Some(repo.to_string()));
        match job.status.as_str() {
            "queued" => out.pending.push(job_ref),
            "in_progress" => out.running.push(job_ref),
            _ => {} // completed, waiting (approval), requested, pending: not demand
        }
    }
}

/// Parses one runs page (the run ids) and one jobs page into the pool's view: the adapter's
/// interpretation of both answers' bytes, exposed for the fuzz targets.
#[doc(hidden)]
pub fn parse_pages(
    runs: &[u8],
    jobs: &[u8],
    runner_labels: &[String],
) -> Result<(Vec<u64>, PoolJobs), serde_json::Error> {
    let runs: RunsPage = serde_json::from_slice(runs)?;
    let page: JobsPage = serde_json::from_slice(jobs)?;
    let mut out = PoolJobs::default();
    count_jobs(page, "", runner_labels, &mut HashSet::new(), &mut out);
    Ok((runs.workflow_runs.iter().map(|r| r.id).collect(), out))
}

#[async_trait]
impl JobSource for Github {
    async fn jobs(&self, pool: &PoolConfig, deadline: Instant) -> Result<PoolJobs, ForgeError> {
        let base = self.http.url("")?;
        let _turn = tokio::time::timeout_at(deadline, self.one_pool_at_a_time.lock())
            .await
            .map_err(|_| ForgeError::Deadline { url: http::redact(&base) })?;
        self.prune_cache();
        let runner_labels = pool.labels.clone().unwrap_or_default();
        let mut budget = Budget { spent: 0, max: self.max_requests_per_tick, pages_read: 0 };
        let mut out = PoolJobs::default();
        let mut seen_jobs = HashSet::new();
        let mut halt = None;
        'repos: for repo in &self.repos {
            // A run can be in progress while some of its jobs still queue: read both.
            let mut run_ids = Vec::new();
            for status in ["queued", "in_progress"] {
                let mut url = self.http.url(&format!("repos/{repo}/actions/runs"))?;
                url.query_pairs_mut().append_pair("status", status).append_pair("per_page", &PER_PAGE.to_string());
                let (pages, stopped) = self.pages::<RunsPage>(url, &mut budget, deadline).await?;
                for page in pages {
                    for run in page.workflow_runs {
                        if !run_ids.contains(&run.id) {
                            run_ids.push(run.id);
                        }
                    }
                }
                if stopped.is_some() {
                    halt = stopped;
                    break 'repos;
                }
            }
            for run_id in run_ids {
                let mut url = self.http.url(&format!("repos/{repo}/actions/runs/{run_id}/jobs"))?;
                url.query_pairs_mut().append_pair("per_page", &PER_PAGE.to_string());
                let (pages, stopped) = self.pages::<JobsPage>(url, &mut budget, deadline).await?;
                for page in pages {
                    count_jobs(page, repo, &runner_labels, &mut seen_jobs, &mut out);
                }
                if stopped.is_some() {
                    halt = stopped;
                    break 'repos;
                }
            }
        }
        out.requests = budget.spent;
        out.partial = halt.map(|halt| match halt {
            Halt::Budget => {
                tracing::warn!(
                    forge = %self.forge_name,
                    budget = budget.max,
                    "github: request budget spent with pages left; the count is a lower bound"
                );
                format!(
                    "request budget of {} (max_requests_per_tick) spent after {} pages; more pages were left",
                    budget.max, budget.pages_read
                )
            }
            Halt::Deadline => super::partial_by_deadline(budget.pages_read),
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_job_label_must_be_a_runner_label_case_insensitively() {
        let runner = labels(&["self-hosted", "Linux", "X64", "gpu"]);
        assert!(labels_match(&labels(&["self-hosted", "linux", "x64"]), &runner));
        assert!(labels_match(&labels(&["SELF-HOSTED", "gpu"]), &runner));
        assert!(!labels_match(&labels(&["self-hosted", "arm64"]), &runner));
        assert!(!labels_match(&labels(&["ubuntu-latest"]), &runner));
    }

    #[test]
    fn nothing_is_implied() {
        assert!(!labels_match(&labels(&["self-hosted", "foo", "bar"]), &labels(&["foo", "bar"])));
        assert!(!labels_match(&labels(&["self-hosted"]), &[]));
        assert!(labels_match(&[], &labels(&["foo"])), "a job with no labels asks for nothing");
    }

    #[test]
    fn rate_limit_spent_blocks_until_the_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let spent = RateLimit { remaining: Some(0), reset_epoch_s: Some(2_800), retry_after_s: None };
        assert_eq!(blocked_until(403, spent, false, now), Some(UNIX_EPOCH + Duration::from_secs(2_800)));
        assert_eq!(blocked_until(429, spent, false, now), Some(UNIX_EPOCH + Duration::from_secs(2_800)));
        assert_eq!(blocked_until(200, spent, false, now), Some(UNIX_EPOCH + Duration::from_secs(2_800)));
        let left = RateLimit { remaining: Some(50), reset_epoch_s: Some(2_800), retry_after_s: None };
        assert_eq!(blocked_until(200, left, false, now), None);
        assert_eq!(blocked_until(403, left, false, now), None, "a 403 with quota left is a permission problem");
    }

    #[test]
    fn retry_after_wins_and_a_bare_429_pauses() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let retry = RateLimit { remaining: Some(10), reset_epoch_s: Some(9_999), retry_after_s: Some(30) };
        assert_eq!(blocked_until(403, retry, false, now), Some(now + Duration::from_secs(30)));
        assert_eq!(blocked_until(429, RateLimit::default(), false, now), Some(now + DEFAULT_RATE_LIMIT_PAUSE));
        assert_eq!(blocked_until(500, RateLimit::default(), false, now), None);
        let left = RateLimit { remaining: Some(4000), reset_epoch_s: None, retry_after_s: None };
        assert_eq!(blocked_until(403, left, true, now), Some(now + DEFAULT_RATE_LIMIT_PAUSE), "secondary limit");
    }
}
