//! `trace synth`: build synthetic traces (being written: simulator issue).

use crate::exit;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// Synthesize a trace.
    Synth,
}

pub async fn trace(_cmd: TraceCommand) -> u8 {
    eprintln!("error: `trace synth` is not available yet");
    exit::BAD_CONFIG
}
