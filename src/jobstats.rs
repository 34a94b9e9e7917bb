//! Queue wait and cost per repository from one pool's jobs over one poll interval: pure
//! figures for the metrics (no I/O, no clock: `now` and the window are parameters). Where
//! a forge's listing gives no job times or repositories, the figures are empty.

use crate::model::{JobRef, PoolJobs};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// Repositories a pool reports `JobSeconds` for by name; the rest are `other`.
pub const TOP_REPOSITORIES: usize = 10;
/// Queue wait of the jobs that started in a window: nearest-rank percentiles, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueWait {
    pub p50_s: u64,
    pub p95_s: u64,
    pub max_s: u64,
    pub jobs: u32,
}

/// What a pool's jobs say about queue wait and cost per repository over one window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFigures {
    pub queue_wait: Option<QueueWait>,
    /// Job-seconds per repository, the top [`TOP_REPOSITORIES`] first, then `other`.
    pub job_seconds_by_repository: Vec<(String, u64)>,
}

/// Queue wait of the running jobs that started within `window` before `now`, and the
/// seconds each repository's running jobs ran within it. Pure.
pub fn job_figures(jobs: &PoolJobs, now: DateTime<Utc>, window: Duration) -> JobFigures {
    let window_s = window.as_secs();
    let since_start = |j: &JobRef| j.started.map(|s| (now - s).num_seconds().max(0) as u64);
    let mut waits: Vec<u64> = jobs
        .running
        .iter()
        .filter(|j| since_start(j).is_some_and(|age| age < window_s.max(1)))
        .filter_map(|j| Some((j.started? - j.created?).num_seconds().max(0) as u64))
        .collect();
    waits.sort_unstable();
    let rank = |q: f64| waits[((q * waits.len() as f64).ceil() as usize).clamp(1, waits.len()) - 1];
    let queue_wait = (!waits.is_empty()).then(|| QueueWait {
        p50_s: rank(0.50),
        p95_s: rank(0.95),
        max_s: waits[waits.len() - 1],
        jobs: waits.len() as u32,
    });

    let mut by_repo: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unnamed = 0u64;
    for job in &jobs.running {
        let seconds = since_start(job).map_or(window_s, |age| age.min(window_s));
        match job.repo.as_deref() {
            Some(repo) => *by_repo.entry(repo).or_default() += seconds,
            None => unnamed += seconds,
        }
    }
    let mut ranked: Vec<(String, u64)> = by_repo.into_iter().map(|(r, s)| (r.to_string(), s)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut job_seconds_by_repository = Vec::new();
    if !ranked.is_empty() {
        let rest: u64 = ranked.iter().skip(TOP_REPOSITORIES).map(|(_, s)| s).sum::<u64>() + unnamed;
        ranked.truncate(TOP_REPOSITORIES);
        job_seconds_by_repository = ranked;
        if rest > 0 {
            job_seconds_by_repository.push(("other".to_string(), rest));
        }
    }
    JobFigures { queue_wait, job_seconds_by_repository }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn job(created_s_ago: i64, started_s_ago: Option<i64>, repo: Option<&str>) -> JobRef {
        JobRef::created_at(Some(at() - chrono::Duration::seconds(created_s_ago)))
            .started(started_s_ago.map(|s| at() - chrono::Duration::seconds(s)))
            .repo(repo.map(str::to_string))
    }

    #[test]
    fn queue_wait_counts_only_jobs_that_started_within_the_window() {
        let jobs = PoolJobs {
            running: vec![
                job(100, Some(5), Some("a/x")),   // waited 95 s, started 5 s ago
                job(40, Some(8), Some("a/x")),    // waited 32 s
                job(900, Some(600), Some("b/y")), // started long ago: already counted
                job(30, None, None),              // no start time
            ],
            ..PoolJobs::default()
        };
        let f = job_figures(&jobs, at(), Duration::from_secs(10));
        assert_eq!(f.queue_wait, Some(QueueWait { p50_s: 32, p95_s: 95, max_s: 95, jobs: 2 }));
        // a/x ran 5 + 8 s of the window, b/y the whole 10 s, the unnamed job 10 s (other).
        assert_eq!(
            f.job_seconds_by_repository,
            vec![("a/x".to_string(), 13), ("b/y".to_string(), 10), ("other".to_string(), 10)]
        );
    }

    #[test]
    fn repositories_past_the_top_ten_are_other() {
        let running = (0..15).map(|i| job(60, Some(60), Some(&format!("r/{i:02}")))).collect();
        let f = job_figures(&PoolJobs { running, ..PoolJobs::default() }, at(), Duration::from_secs(10));
        assert_eq!(f.job_seconds_by_repository.len(), TOP_REPOSITORIES + 1);
        assert_eq!(f.job_seconds_by_repository.last().unwrap(), &("other".to_string(), 50));
    }

    #[test]
    fn a_forge_without_times_or_repositories_adds_no_metric() {
        let jobs = PoolJobs { running: PoolJobs::anonymous(3), ..PoolJobs::default() };
        assert_eq!(job_figures(&jobs, at(), Duration::from_secs(10)), JobFigures::default());
    }
}
