//! Buildkite queue metrics answers: clamped counts or an error, never a panic.
#![no_main]
use forge_scaler::forge::buildkite;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(jobs) = buildkite::parse_metrics(data) {
        assert!(jobs.pending.len() as u64 <= buildkite::MAX_COUNT, "count not clamped");
        assert!(jobs.running.len() as u64 <= buildkite::MAX_COUNT, "count not clamped");
    }
});
