//! `run` (the loop without Lambda) and the Lambda entry point (being written: Lambda issue).

use crate::{exit, ConfigArgs};
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn run(_args: RunArgs) -> u8 {
    eprintln!("error: `run` is not available yet");
    exit::BAD_CONFIG
}

pub fn lambda_main() -> ExitCode {
    eprintln!("error: the Lambda entry point is not available yet");
    ExitCode::from(exit::TICK_FAILED)
}
