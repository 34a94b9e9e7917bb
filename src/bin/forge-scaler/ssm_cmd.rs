//! `ssm put`: write a TOML config to SSM (being written: Lambda issue).

use crate::exit;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum SsmCommand {
    /// Write a TOML config to SSM parameters.
    Put,
}

pub async fn ssm(_cmd: SsmCommand) -> u8 {
    eprintln!("error: `ssm put` is not available yet");
    exit::BAD_CONFIG
}
