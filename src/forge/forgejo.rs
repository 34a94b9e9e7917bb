//! Forgejo adapter (being written; see the forges issue).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::PoolConfig;
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Forgejo's queue.
pub struct Forgejo {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Forgejo {
    pub fn new(http: ForgeHttp, _scope: crate::config::Scope) -> Self {
        Forgejo { http }
    }
}

#[async_trait]
impl JobSource for Forgejo {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("not implemented yet".into()))
    }
}
