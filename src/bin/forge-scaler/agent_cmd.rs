//! `agent`: the instance watchdog (being written: instance-side issue).

use crate::exit;
use clap::Args;

#[derive(Args, Debug)]
pub struct AgentArgs {}

pub async fn agent(_args: AgentArgs) -> u8 {
    eprintln!("error: `agent` is not available yet");
    exit::BAD_CONFIG
}
