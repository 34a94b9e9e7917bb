//! Forgejo adapter (being written: see the forge issues).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Forgejo's queue.
pub struct Forgejo {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Forgejo {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Forgejo { http }
    }
}

#[async_trait]
impl JobSource for Forgejo {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("the forgejo adapter is not implemented yet".into()))
    }
}
