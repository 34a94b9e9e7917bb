//! Drone adapter (being written: see the forge issues).

use super::{http::ForgeHttp, ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;

/// Reads Drone's queue.
pub struct Drone {
    #[allow(dead_code)]
    http: ForgeHttp,
}

impl Drone {
    pub fn new(http: ForgeHttp, _forge: &ForgeConfig) -> Self {
        Drone { http }
    }
}

#[async_trait]
impl JobSource for Drone {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        Err(ForgeError::Other("the drone adapter is not implemented yet".into()))
    }
}
