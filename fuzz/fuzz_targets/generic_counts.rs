//! The generic adapter: the first line is the pending pointer, the rest the answer; counts
//! are clamped, anything else an error, never a panic.
#![no_main]
use forge_scaler::forge::generic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pointer, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"/queue/pending"[..], data),
    };
    let pointer = String::from_utf8_lossy(pointer);
    if let Ok(jobs) = generic::parse_counts(body, &pointer, Some("/running")) {
        assert!(jobs.pending.len() as u64 <= generic::MAX_COUNT, "count not clamped");
        assert!(jobs.running.len() as u64 <= generic::MAX_COUNT, "count not clamped");
    }
});
