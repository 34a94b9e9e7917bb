//! Generic adapter (being written: see the forge issues).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Generic's queue.
pub struct Generic {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Generic {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Generic { http }
    }
}

#[async_trait]
impl JobSource for Generic {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("the generic adapter is not implemented yet".into()))
    }
}
