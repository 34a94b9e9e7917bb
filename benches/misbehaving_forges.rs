//! Memory benchmark (not a timed test; `cargo bench --bench misbehaving_forges`): the peak RSS
//! of one `forge-scaler plan` tick in which every forge kind misbehaves at once (endless
//! bodies, bodies announcing 100 MB, endless pagination, slow pages, slow bodies, never
//! answering, malformed JSON), each forge with its own pool on a command fleet (no AWS). The
//! function runs as a child process so its peak RSS (`/usr/bin/time -f %M`) is its own, not
//! the fakes'. Each scenario is run with the default byte cap and tick budget shortened to
//! 10 s; results go to stdout as Markdown. Everything listens on 127.0.0.1.

#[path = "../tests/support/faulty_forge.rs"]
mod faulty_forge;

use faulty_forge::{FakeForge, Fault};
use std::process::Command;

/// Every forge kind the scaler reads.
const KINDS: [&str; 8] = ["woodpecker", "forgejo", "gitea", "drone", "buildkite", "github", "gitlab", "generic"];

/// The tick budget the benchmark's config sets (the default is 40 s; the fault's effect on
/// memory does not need the whole of it).
const TICK_BUDGET: &str = "10s";

/// Lambda's memory for the function (template.yaml's MemorySize).
const LAMBDA_MIB: f64 = 128.0;

/// One scenario: which fault each forge kind shows (by kind index) and how many forges of
/// each kind are configured.
struct Scenario {
    name: &'static str,
    fault_of: fn(usize) -> Fault,
    forges_per_kind: usize,
    /// Pools that must end in an error or a partial count (the others' forges have no pages
    /// to follow or answer in time).
    min_faulted: usize,
}

/// A config with `forges_per_kind` forges of every kind, one pool each, at the fakes' ports.
fn config(ports: &[(&str, u16)], size_file: &std::path::Path) -> String {
    let mut text = format!("[settings]\ntick_budget = \"{TICK_BUDGET}\"\n");
    for (i, (kind, port)) in ports.iter().enumerate() {
        let base = format!("http://bench:pw-in-userinfo@127.0.0.1:{port}");
        let url = if *kind == "generic" { format!("{base}/queue") } else { base };
        text.push_str(&format!("[forges.f{i}]\nkind = \"{kind}\"\nurl = \"{url}\"\ntoken = \"bench-token-{i}\"\n"));
        match *kind {
            "github" => text.push_str("repos = \"acme/app\"\n"),
            "gitlab" => text.push_str("projects = \"1\"\n"),
            "generic" => text.push_str("pending_pointer = \"/queue/pending\"\n"),
            _ => {}
        }
        text.push_str(&format!(
            "[pools.p{i}]\nforge = \"f{i}\"\nfleet = \"command\"\nmax_instances = 10\ncommand = \"true\"\nsize_command = \"cat {}\"\n",
            size_file.display()
        ));
        match *kind {
            "github" => text.push_str("labels = \"linux\"\n"),
            "gitlab" => text.push_str("run_untagged = true\n"),
            _ => {}
        }
    }
    text
}

/// What one run of `plan` measured.
struct Run {
    peak_kib: u64,
    wall_s: f64,
    cpu_s: f64,
    errors: usize,
    partial: usize,
    pools: usize,
    sample: String,
}

fn run(scenario: &Scenario, runtime: &tokio::runtime::Runtime) -> Run {
    let fakes: Vec<(&str, FakeForge)> = runtime.block_on(async {
        let mut fakes = Vec::new();
        for (k, kind) in KINDS.iter().enumerate() {
            for _ in 0..scenario.forges_per_kind {
                fakes.push((*kind, FakeForge::start(kind, (scenario.fault_of)(k)).await));
            }
        }
        fakes
    });
    let ports: Vec<(&str, u16)> = fakes.iter().map(|(k, f)| (*k, f.port)).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let size_file = dir.path().join("size");
    std::fs::write(&size_file, "0\n").expect("size file");
    let config_path = dir.path().join("bench.toml");
    std::fs::write(&config_path, config(&ports, &size_file)).expect("config file");
    let times = dir.path().join("time");
    let output = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&times)
        .args(["-f", "%M %e %U %S", env!("CARGO_BIN_EXE_forge-scaler"), "plan", "--json", "--config"])
        .arg(&config_path)
        .env_remove("RUST_LOG")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Command fleets only: no AWS call is made; should one be, it goes to a closed port.
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .output()
        .expect("/usr/bin/time runs forge-scaler plan");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("{}: plan printed no JSON ({e}): {stdout}\n{}", scenario.name, String::from_utf8_lossy(&output.stderr))
    });
    let pools = report["pools"].as_array().cloned().unwrap_or_default();
    assert_eq!(pools.len(), ports.len(), "{}: every pool reported", scenario.name);
    let errors = pools.iter().filter(|p| p["action"] == "error").count();
    // The note is among the pool's reasons or notes, depending on the report's layout.
    let partial = pools.iter().filter(|p| p.to_string().contains("partial count")).count();
    let figures = std::fs::read_to_string(&times).expect("time's output");
    let fields: Vec<&str> = figures.split_whitespace().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    drop(fakes);
    let sample = pools.first().map(|p| p.to_string()).unwrap_or_default();
    Run { peak_kib: num(0) as u64, wall_s: num(1), cpu_s: num(2) + num(3), errors, partial, pools: ports.len(), sample }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: then run one small scenario.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scenarios = [
        Scenario {
            name: "endless chunked body",
            fault_of: |_| Fault::OversizedStream,
            forges_per_kind: 1,
            min_faulted: 8,
        },
        Scenario {
            name: "body announcing 100 MB",
            fault_of: |_| Fault::OversizedAnnounced,
            forges_per_kind: 1,
            min_faulted: 8,
        },
        // Only GitHub, GitLab and Gitea follow pages; the others read one answer.
        Scenario {
            name: "endless pagination",
            fault_of: |_| Fault::EndlessPagination,
            forges_per_kind: 1,
            min_faulted: 3,
        },
        Scenario {
            name: "a mix: each kind its own fault",
            fault_of: |k| {
                [
                    Fault::OversizedStream,
                    Fault::SlowBody,
                    Fault::EndlessPagination,
                    Fault::NeverAnswers,
                    Fault::MalformedJson,
                    Fault::SlowPages,
                    Fault::EndlessPagination,
                    Fault::OversizedStream,
                ][k]
            },
            forges_per_kind: 1,
            min_faulted: 4,
        },
        Scenario {
            name: "endless chunked body, 4 forges per kind",
            fault_of: |_| Fault::OversizedStream,
            forges_per_kind: 4,
            min_faulted: 32,
        },
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    println!(
        "| scenario (every forge kind at once) | pools | errors | partial | peak RSS | share of 128 MiB | wall | CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for scenario in scenarios.iter().take(if quick { 1 } else { scenarios.len() }) {
        let r = run(scenario, &runtime);
        assert!(
            r.errors + r.partial >= scenario.min_faulted,
            "{}: the faults were not seen ({} errors, {} partial): {}",
            scenario.name,
            r.errors,
            r.partial,
            r.sample
        );
        let mib = r.peak_kib as f64 / 1024.0;
        println!(
            "| {} | {} | {} | {} | {:.1} MiB | {:.0} % | {:.1} s | {:.2} s |",
            scenario.name,
            r.pools,
            r.errors,
            r.partial,
            mib,
            100.0 * mib / LAMBDA_MIB,
            r.wall_s,
            r.cpu_s
        );
    }
}
