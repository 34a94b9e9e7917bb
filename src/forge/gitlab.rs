//! Gitlab adapter (being written: see the forge issues).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Gitlab's queue.
pub struct Gitlab {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Gitlab {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Gitlab { http }
    }
}

#[async_trait]
impl JobSource for Gitlab {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("the gitlab adapter is not implemented yet".into()))
    }
}
