//! Woodpecker `/api/queue/info` answers: any bytes parse to a count or an error, never a panic.
#![no_main]
use forge_scaler::forge::{labels, woodpecker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let agent = labels::woodpecker_agent_labels(Some(&["platform=linux/amd64".to_string()])).unwrap();
    if let Ok(jobs) = woodpecker::parse_queue_info(data, &agent) {
        assert!(jobs.pending.len() + jobs.running.len() <= data.len(), "more jobs than bytes");
    }
});
