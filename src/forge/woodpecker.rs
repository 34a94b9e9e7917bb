//! Woodpecker adapter (being written; see the forges issue).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::PoolConfig;
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Woodpecker's queue.
pub struct Woodpecker {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Woodpecker {
    pub fn new(http: ForgeHttp) -> Self {
        Woodpecker { http }
    }
}

#[async_trait]
impl JobSource for Woodpecker {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("not implemented yet".into()))
    }
}
