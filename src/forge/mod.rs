//! Forge adapters: the `JobSource` trait and one module per forge. Each adapter turns its
//! forge's API into plain `PoolJobs` for one pool under that forge's own label rule; wire
//! types stay private to their module. Adapters never log tokens and never retry forever.
//!
//! One rule for every adapter: an observation ends by its `deadline`; each request by
//! min(`http::REQUEST_TIMEOUT`, time left); each body is read under a byte cap. Past a
//! page or request budget, or the deadline, an adapter that has read at least one page
//! returns what it counted so far, a lower bound of demand, with `PoolJobs::partial`
//! saying why; before any page was read, the deadline is `ForgeError::Deadline`.

use crate::config::{ForgeConfig, ForgeKind, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub mod buildkite;
pub mod check;
pub mod drone;
pub mod forgejo;
pub mod generic;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod http;
pub mod labels;
pub mod woodpecker;

/// Reads one forge's jobs for one pool.
#[async_trait]
pub trait JobSource: Send + Sync {
    /// Pending and running jobs the pool's agents could take, under the forge's own rule,
    /// read by `deadline` (every page, request and retry included).
    async fn jobs(&self, pool: &PoolConfig, deadline: Instant) -> Result<PoolJobs, ForgeError>;
}

/// Why a forge could not be read. Messages never contain tokens, URL userinfo or query
/// values: every `url` field is redacted (`http::redact`).
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("{url}: HTTP {status}: {message}")]
    Status { url: String, status: u16, message: String },
    #[error("{url}: unauthorized (HTTP {status}): check the token and its scope")]
    Unauthorized { url: String, status: u16 },
    #[error("{url}: answer is not the expected JSON: {message}")]
    Decode { url: String, message: String },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url}: rate limit spent; resets in {reset_in:?}")]
    RateLimited { url: String, reset_in: Duration },
    #[error("{url}: answer larger than the {limit}-byte cap (max_response_bytes); not read further")]
    TooLarge { url: String, limit: u64 },
    #[error(
        "{url}: not read: the answers of forges being read at the same moment already hold the {budget}-byte budget for all of them"
    )]
    MemoryBudget { url: String, budget: u64 },
    #[error("{url}: the pool's observation deadline passed before any page was read")]
    Deadline { url: String },
    #[error("{0}")]
    Other(String),
}

/// The `PoolJobs::partial` sentence for a reading the deadline cut short.
pub(crate) fn partial_by_deadline(pages_read: u32) -> String {
    format!("the observation deadline passed after {pages_read} page(s) were read; the count is a lower bound")
}

/// Appends one reason to a partial count's sentence.
pub(crate) fn add_partial(partial: &mut Option<String>, reason: String) {
    *partial = Some(match partial.take() {
        Some(before) if before.contains(&reason) => before,
        Some(before) => format!("{before}; {reason}"),
        None => reason,
    });
}

/// Builds the adapter for a configured forge.
pub fn source_for(forge: &ForgeConfig) -> Result<Arc<dyn JobSource>, ForgeError> {
    let client = http::ForgeHttp::new(forge)?;
    Ok(match forge.kind {
        ForgeKind::Woodpecker => Arc::new(woodpecker::Woodpecker::new(client, forge)),
        ForgeKind::Forgejo => Arc::new(forgejo::Forgejo::new(client, forge)),
        ForgeKind::Gitea => Arc::new(gitea::Gitea::new(client, forge)),
        ForgeKind::Drone => Arc::new(drone::Drone::new(client, forge)),
        ForgeKind::Buildkite => Arc::new(buildkite::Buildkite::new(client, forge)),
        ForgeKind::Github => Arc::new(github::Github::new(client, forge)),
        ForgeKind::Gitlab => Arc::new(gitlab::Gitlab::new(client, forge)),
        ForgeKind::Generic => Arc::new(generic::Generic::new(client, forge)),
    })
}
