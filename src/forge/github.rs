//! Github adapter (being written: see the forge issues).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Github's queue.
pub struct Github {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Github {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Github { http }
    }
}

#[async_trait]
impl JobSource for Github {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("the github adapter is not implemented yet".into()))
    }
}
