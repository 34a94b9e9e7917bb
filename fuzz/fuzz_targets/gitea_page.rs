//! Gitea Actions jobs pages (object, `null`, `workflow_jobs` alias): a count or an error.
#![no_main]
use forge_scaler::forge::{gitea, labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let names = labels::runner_label_names(Some(&["ubuntu-latest".to_string()]));
    if let Ok(jobs) = gitea::parse_page(data, &names) {
        assert!(jobs.pending.len() + jobs.running.len() <= data.len(), "more jobs than bytes");
    }
});
