//! Buildkite adapter (being written: see the forge issues).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Buildkite's queue.
pub struct Buildkite {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Buildkite {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Buildkite { http }
    }
}

#[async_trait]
impl JobSource for Buildkite {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("the buildkite adapter is not implemented yet".into()))
    }
}
