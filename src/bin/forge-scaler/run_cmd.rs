//! `run` (the loop without Lambda: tick every poll_interval until SIGTERM or Ctrl-C) and the
//! Lambda entry point (the same loop, one budget per scheduled invocation). Thin: the loop and
//! the handler live in `forge_scaler::runloop`.

use crate::{exit, init_logging, ConfigArgs};
use clap::Args;
use forge_scaler::app::{self, ConfigSource};
use forge_scaler::runloop::{Handler, Mode, Scaler};
use forge_scaler::webhook::{server, trigger::TickRequests};
use std::process::ExitCode;
use std::sync::Arc;

/// The environment variable naming the function's SSM prefix.
pub const SSM_PREFIX_ENV: &str = "FORGE_SCALER_SSM_PREFIX";

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also print CloudWatch Embedded Metric Format lines to stdout (as the Lambda does).
    #[arg(long)]
    emf: bool,
    /// Serve forge webhooks at http://ADDR/webhooks/<forge-name> (e.g. 0.0.0.0:8080): a signed
    /// job webhook ticks the pools it concerns at once. Needs forges/<forge>/webhook_secret.
    #[arg(long, value_name = "ADDR")]
    webhook_listen: Option<std::net::SocketAddr>,
}

pub async fn run(args: RunArgs) -> u8 {
    init_logging("info", false);
    let sdk = app::aws_sdk_config().await;
    let mut scaler = Scaler::aws(args.config.source(), &sdk);
    if !args.emf {
        scaler = scaler.with_metrics(Arc::new(|_: &str| {}));
    }
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    if let Some(addr) = args.webhook_listen {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: --webhook-listen {addr}: cannot listen: {e}");
                return exit::BAD_CONFIG;
            }
        };
        let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| addr.to_string());
        eprintln!("webhooks: listening on http://{bound}/webhooks/<forge-name>");
        let requests = TickRequests::new();
        scaler = scaler.with_tick_requests(requests.clone());
        tokio::spawn(server::serve(listener, requests, stop.clone()));
    }
    tokio::spawn(async move {
        wait_for_termination().await;
        tracing::info!("stopping after the current tick");
        let _ = stop_sender.send(true);
    });
    match scaler.run(Mode::Forever, stop).await {
        Ok(summary) if summary.any_pool_error() || !summary.tick_errors.is_empty() => exit::POOL_ERROR,
        Ok(_) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_invalid_config() {
                exit::BAD_CONFIG
            } else {
                exit::TICK_FAILED
            }
        }
    }
}

/// SIGTERM (systemd, containers) or Ctrl-C.
async fn wait_for_termination() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The Lambda runtime: JSON logs, the configuration from SSM under `FORGE_SCALER_SSM_PREFIX`,
/// clients built once per execution environment, one loop per scheduled invocation; a Function
/// URL request is a forge webhook (see `forge_scaler::webhook::lambda`).
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
        let handler = Arc::new(Handler::new(Scaler::aws(ConfigSource::Ssm(prefix), &sdk)));
        let service = lambda_runtime::service_fn(move |event| {
            let handler = handler.clone();
            async move { handler.handle_any(event).await }
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
