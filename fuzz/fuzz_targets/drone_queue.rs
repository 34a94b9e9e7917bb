//! Drone `/api/queue` answers: a count or an error, never a panic.
#![no_main]
use forge_scaler::config::DronePlatform;
use forge_scaler::forge::{drone, labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runner = labels::parse_pairs(&["region=eu".to_string()]).unwrap();
    if let Ok(jobs) = drone::parse_queue(data, &DronePlatform::default(), &runner) {
        assert!(jobs.pending.len() + jobs.running.len() <= data.len(), "more jobs than bytes");
    }
});
