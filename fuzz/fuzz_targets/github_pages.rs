//! GitHub runs and jobs pages (split at the first NUL byte): a count or an error.
#![no_main]
use forge_scaler::forge::github;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (runs, jobs) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"{\"workflow_runs\":[]}"[..], data),
    };
    let labels = ["self-hosted".to_string(), "linux".to_string()];
    if let Ok((run_ids, out)) = github::parse_pages(runs, jobs, &labels) {
        assert!(run_ids.len() <= runs.len(), "more runs than bytes");
        assert!(out.pending.len() + out.running.len() <= jobs.len(), "more jobs than bytes");
    }
});
