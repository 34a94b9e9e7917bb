//! The imperative shell shared by the CLI and the Lambda: where the configuration comes from
//! (a TOML file or an SSM prefix), the AWS SDK setup from the standard environment, and
//! building the `Edges` (forge clients, fleets) a tick talks to.

use crate::cloud::asg::AsgFleet;
use crate::cloud::command::CommandFleet;
use crate::cloud::ssm::SsmStore;
use crate::cloud::{Fleet, ParamError, ParamStore};
use crate::config::{Config, ConfigError, FleetSpec, RawConfig};
use crate::forge::{self, ForgeError, JobSource};
use crate::runloop::{EdgesFactory, Scaler};
use crate::tick::Edges;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the configuration is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Ssm(String),
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] ParamError),
    #[error("SSM prefix {0} holds no parameters (check the prefix and the region)")]
    Empty(String),
}

impl LoadError {
    /// Bad configuration (exit 2) as opposed to an unreachable store (exit 1).
    pub fn is_invalid_config(&self) -> bool {
        matches!(self, LoadError::Invalid(_) | LoadError::Read { .. } | LoadError::Empty(_))
    }
}

impl ConfigSource {
    /// Reads the raw tree (no validation).
    pub async fn load_raw(&self, params: Option<&dyn ParamStore>) -> Result<RawConfig, LoadError> {
        match self {
            ConfigSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
                Ok(RawConfig::from_toml(&text, |var| std::env::var(var).ok())?)
            }
            ConfigSource::Ssm(prefix) => {
                let store = params.ok_or_else(|| LoadError::Empty(prefix.clone()))?;
                let params = store.get_tree(prefix).await?;
                if params.is_empty() {
                    return Err(LoadError::Empty(prefix.clone()));
                }
                Ok(RawConfig::from_params(prefix, params))
            }
        }
    }

    /// Reads and validates.
    pub async fn load(&self, params: Option<&dyn ParamStore>) -> Result<Config, LoadError> {
        Ok(Config::validate(&self.load_raw(params).await?)?)
    }
}

/// How long one AWS operation may take, retries included, and one attempt of it: every
/// AWS call is bounded, so a hung endpoint costs a tick seconds, not the Lambda's minute.
pub const AWS_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const AWS_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Connecting to an AWS endpoint.
pub const AWS_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Attempts per AWS operation (adaptive retry: backs off when AWS throttles).
pub const AWS_MAX_ATTEMPTS: u32 = 3;

/// The AWS SDK configuration from the standard environment (`AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_PROFILE`, credentials chain), with bounded timeouts and
/// adaptive retries.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(AWS_CONNECT_TIMEOUT)
        .operation_attempt_timeout(AWS_ATTEMPT_TIMEOUT)
        .operation_timeout(AWS_OPERATION_TIMEOUT)
        .build();
    let retries = aws_config::retry::RetryConfig::adaptive().with_max_attempts(AWS_MAX_ATTEMPTS);
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(retries)
        .load()
        .await
}

/// Builds the job sources for every configured forge. A forge whose client cannot be built
/// is reported per pool by the tick, not here.
pub fn job_sources(config: &Config) -> (BTreeMap<String, Arc<dyn JobSource>>, Vec<ForgeError>) {
    let mut sources = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, forge) in &config.forges {
        match forge::source_for(forge) {
            Ok(s) => {
                sources.insert(name.clone(), s);
            }
            Err(e) => errors.push(e),
        }
    }
    (sources, errors)
}

/// Builds the edges a tick needs against real AWS (or whatever `AWS_ENDPOINT_URL` names).
pub fn edges(config: &Config, sdk: &aws_config::SdkConfig) -> (Edges, Vec<ForgeError>) {
    edges_with(config, Arc::new(AsgFleet::new(sdk)))
}

/// The edges for a configuration around a given Auto Scaling fleet: the one place forge
/// clients and command fleets are built.
pub fn edges_with(config: &Config, fleet: Arc<dyn Fleet>) -> (Edges, Vec<ForgeError>) {
    let (sources, errors) = job_sources(config);
    (Edges::new(sources, fleet, command_fleets(config)), errors)
}

/// The production scaler (for the Lambda and `run`): SSM and Auto Scaling clients from one
/// SDK configuration, built once; job sources and command fleets rebuilt only when the
/// forges or fleets change.
pub fn aws_scaler(source: ConfigSource, sdk: &aws_config::SdkConfig) -> Scaler {
    let params: Arc<dyn ParamStore> = Arc::new(SsmStore::new(sdk));
    let fleet: Arc<dyn Fleet> = Arc::new(AsgFleet::new(sdk));
    let build_edges: EdgesFactory = Arc::new(move |config: &Config| edges_with(config, fleet.clone()));
    Scaler::new(source, Some(params), build_edges)
}

/// One `CommandFleet` per `fleet = command` pool, by pool name.
pub fn command_fleets(config: &Config) -> BTreeMap<String, Arc<dyn Fleet>> {
    config
        .pools
        .iter()
        .filter_map(|pool| match &pool.fleet {
            FleetSpec::Command { command, size_command, min_instances } => {
                let max = pool.policy.max_instances.unwrap_or(*min_instances);
                let fleet: Arc<dyn Fleet> =
                    Arc::new(CommandFleet::new(&pool.name, command, size_command.as_deref(), *min_instances, max));
                Some((pool.name.clone(), fleet))
            }
            FleetSpec::Asg { .. } => None,
        })
        .collect()
}
