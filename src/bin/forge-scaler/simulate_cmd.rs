//! `simulate`: replay a trace against every policy (being written: simulator issue).

use crate::exit;
use clap::Args;

#[derive(Args, Debug)]
pub struct SimulateArgs {}

pub async fn simulate(_args: SimulateArgs) -> u8 {
    eprintln!("error: `simulate` is not available yet");
    exit::BAD_CONFIG
}
