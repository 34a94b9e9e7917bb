//! GitLab project jobs pages: a count or an error, never a panic.
#![no_main]
use forge_scaler::forge::gitlab;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tags = ["docker".to_string(), "linux".to_string()];
    if let Ok(jobs) = gitlab::parse_page(data, &tags, data.first().is_some_and(|b| b % 2 == 0)) {
        assert!(jobs.pending.len() + jobs.running.len() <= data.len(), "more jobs than bytes");
    }
});
