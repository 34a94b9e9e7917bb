//! Forgejo runner-jobs answers (array or `null`): a count or an error, never a panic.
#![no_main]
use forge_scaler::forge::{forgejo, labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let names = labels::runner_label_names(Some(&["docker:docker://node:20".to_string(), "ubuntu".to_string()]));
    if let Ok(jobs) = forgejo::parse_jobs(data, &names, 1) {
        assert!(jobs.pending.len() + jobs.running.len() <= data.len(), "more jobs than bytes");
    }
});
