//! The Lambda runtime entry: JSON logs, the configuration from SSM under
//! `FORGE_SCALER_SSM_PREFIX`, clients built once per execution environment, and the
//! runtime loop calling the library's handler (`forge_scaler::lambda`) once per invocation.

use crate::{exit, init_logging};
use forge_scaler::app::{self, ConfigSource};
use forge_scaler::lambda::Handler;
use std::process::ExitCode;
use std::sync::Arc;

/// The environment variable naming the function's SSM prefix.
pub const SSM_PREFIX_ENV: &str = "FORGE_SCALER_SSM_PREFIX";

/// The Lambda runtime: JSON logs, the configuration from SSM under `FORGE_SCALER_SSM_PREFIX`,
/// clients built once per execution environment, one loop per invocation.
pub fn lambda_main() -> ExitCode {
    init_logging("info", true);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::TICK_FAILED);
        }
    };
    runtime.block_on(async {
        let Some(prefix) = std::env::var(SSM_PREFIX_ENV).ok().filter(|p| !p.trim().is_empty()) else {
            tracing::error!("{SSM_PREFIX_ENV} is not set: it names the SSM prefix holding the configuration");
            return ExitCode::from(exit::BAD_CONFIG);
        };
        let sdk = app::aws_sdk_config().await;
        let handler = Arc::new(Handler::new(app::aws_scaler(ConfigSource::Ssm(prefix), &sdk)));
        let service = lambda_runtime::service_fn(move |event| {
            let handler = handler.clone();
            async move { handler.handle(event).await }
        });
        match lambda_runtime::run(service).await {
            Ok(()) => ExitCode::from(exit::OK),
            Err(e) => {
                tracing::error!(error = %e, "the Lambda runtime stopped");
                ExitCode::from(exit::TICK_FAILED)
            }
        }
    })
}
