//! Gitea adapter (being written: see the forge issues).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Gitea's queue.
pub struct Gitea {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Gitea {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Gitea { http }
    }
}

#[async_trait]
impl JobSource for Gitea {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("the gitea adapter is not implemented yet".into()))
    }
}
