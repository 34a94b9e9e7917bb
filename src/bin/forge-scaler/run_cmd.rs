//! `run`: the loop without Lambda, ticking every poll_interval until SIGTERM or Ctrl-C. Thin:
//! the loop lives in `forge_scaler::runloop` (the Lambda entry, the same loop once per
//! invocation, is `lambda_cmd`).

use crate::{exit, init_logging, ConfigArgs};
use clap::Args;
use forge_scaler::app;
use forge_scaler::runloop::Mode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also print CloudWatch Embedded Metric Format lines to stdout (as the Lambda does).
    #[arg(long)]
    emf: bool,
}

pub async fn run(args: RunArgs) -> u8 {
    init_logging("info", false);
    let sdk = app::aws_sdk_config().await;
    let mut scaler = app::aws_scaler(args.config.source(), &sdk);
    if !args.emf {
        scaler = scaler.with_metrics(Arc::new(|_: &str| {}));
    }
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
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
