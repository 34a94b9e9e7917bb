//! Woodpecker adapter (being written: see the forge issues).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Woodpecker's queue.
pub struct Woodpecker {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Woodpecker {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Woodpecker { http }
    }
}

#[async_trait]
impl JobSource for Woodpecker {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("the woodpecker adapter is not implemented yet".into()))
    }
}
