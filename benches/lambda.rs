//! Lambda benchmark (not a timed test; `cargo bench --bench lambda`): cold init of the real
//! binary up to its first Runtime API poll, one tick's CPU time for 10 pools x 1,000 pending
//! jobs (a fake in-process job source, and the real Woodpecker adapter over a local HTTP fake),
//! peak RSS, and the size of the release bootstrap if `scripts/ci-lambda.sh` built one.
//! Everything runs on 127.0.0.1; results go to stdout as Markdown.

use async_trait::async_trait;
use forge_scaler::cloud::memory::MemoryFleet;
use forge_scaler::config::{Config, PoolConfig};
use forge_scaler::forge::{ForgeError, JobSource};
use forge_scaler::model::{JobRef, PoolJobs};
use forge_scaler::tick::{self, Edges};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POOLS: usize = 10;
const JOBS_PER_POOL: usize = 1_000;
const TICKS: u32 = 50;
const COLD_STARTS: usize = 10;

/// CPU time this thread has used (Linux schedstat, nanoseconds).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat");
    Duration::from_nanos(text.split_whitespace().next().and_then(|n| n.parse().ok()).expect("schedstat field"))
}

/// Peak resident set of a process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

// --- cold init ------------------------------------------------------------------------------

/// Spawns the binary as Lambda would and times it until it asks the Runtime API for its
/// first event; also reads its peak RSS at that moment.
fn cold_init_once() -> (Duration, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_forge-scaler"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "forge-scaler")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("FORGE_SCALER_SSM_PREFIX", "/bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn forge-scaler");
    let (mut stream, _) = listener.accept().expect("the function polls the Runtime API");
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap_or(0);
    let elapsed = start.elapsed();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("/runtime/invocation/next"), "first request is /next");
    let rss = peak_rss_kib(&child.id().to_string());
    let _ = child.kill();
    let _ = child.wait();
    (elapsed, rss)
}

// --- one tick -------------------------------------------------------------------------------

fn bench_config(forge_url: &str) -> Config {
    let mut text = format!("[forges.wp]\nkind = \"woodpecker\"\nurl = \"{forge_url}\"\ntoken = \"bench\"\n");
    for p in 0..POOLS {
        text.push_str(&format!(
            "[pools.p{p:02}]\nforge = \"wp\"\nasg = \"ci-p{p:02}\"\nlabels = \"pool=p{p:02}\"\nslots = 4\n"
        ));
    }
    Config::from_toml(&text, |_| None).expect("bench config is valid")
}

fn fleet() -> Arc<MemoryFleet> {
    let mut fleet = MemoryFleet::new();
    for p in 0..POOLS {
        fleet = fleet.with_group(&format!("ci-p{p:02}"), 0, 1_000, 1);
    }
    Arc::new(fleet)
}

/// 1,000 pending jobs with distinct ids for every pool, no I/O.
struct FakeQueue;

#[async_trait]
impl JobSource for FakeQueue {
    async fn jobs(&self, pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        let pending = (0..JOBS_PER_POOL).map(|i| JobRef::with_id(format!("{}-{i}", pool.name), None)).collect();
        Ok(PoolJobs { pending, requests: 1, ..PoolJobs::default() })
    }
}

/// Median thread CPU time of one tick (after a warm-up tick that does the raising).
async fn tick_cpu(config: &Config, edges: &Edges, ticks: u32) -> (Duration, Duration) {
    let now = chrono::Utc::now();
    let report = tick::tick(config, edges, now, true).await.expect("warm-up tick");
    assert_eq!(report.pools.len(), POOLS);
    for p in &report.pools {
        assert_eq!(p.pending, Some(JOBS_PER_POOL as u32), "pool {} saw its 1,000 jobs: {:?}", p.pool, p.error);
    }
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..ticks {
        let (c0, w0) = (thread_cpu(), Instant::now());
        let report = tick::tick(config, edges, now, true).await.expect("tick");
        cpu.push(thread_cpu() - c0);
        wall.push(w0.elapsed());
        std::hint::black_box(report);
    }
    (median(cpu), median(wall))
}

fn woodpecker_queue() -> serde_json::Value {
    let mut tasks = Vec::with_capacity(POOLS * JOBS_PER_POOL);
    for p in 0..POOLS {
        for i in 0..JOBS_PER_POOL {
            tasks.push(serde_json::json!({
                "id": format!("{}", p * JOBS_PER_POOL + i + 1),
                "labels": { "pool": format!("p{p:02}") },
                "dependencies": null, "run_on": null, "dep_status": {}, "agent_id": 0
            }));
        }
    }
    serde_json::json!({
        "pending": tasks, "waiting_on_deps": [], "running": [],
        "stats": { "worker_count": 0, "pending_count": POOLS * JOBS_PER_POOL, "waiting_on_deps_count": 0, "running_count": 0 },
        "paused": false
    })
}

fn bootstrap_sizes() -> Vec<(String, u64)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/lambda/forge-scaler");
    ["bootstrap", "bootstrap.zip"]
        .iter()
        .filter_map(|f| {
            std::fs::metadata(dir.join(f)).ok().map(|m| (format!("target/lambda/forge-scaler/{f}"), m.len()))
        })
        .collect()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: then only check it runs.
    let quick = !std::env::args().any(|a| a == "--bench");

    let runs = if quick { 1 } else { COLD_STARTS };
    let ticks = if quick { 2 } else { TICKS };
    let cold: Vec<(Duration, u64)> = (0..runs).map(|_| cold_init_once()).collect();
    let cold_median = median(cold.iter().map(|c| c.0).collect());
    let cold_rss = cold.iter().map(|c| c.1).max().unwrap_or(0);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (fake_cpu, fake_wall, http_cpu, http_wall) = runtime.block_on(async {
        let config = bench_config("http://127.0.0.1:9");
        let sources: BTreeMap<String, Arc<dyn JobSource>> =
            [("wp".to_string(), Arc::new(FakeQueue) as Arc<dyn JobSource>)].into();
        let edges = Edges::new(sources, fleet(), BTreeMap::new());
        let (fake_cpu, fake_wall) = tick_cpu(&config, &edges, ticks).await;

        // The real Woodpecker adapter reading a 10,000-task queue from a local fake.
        let server = {
            let body = woodpecker_queue();
            let (tx, rx) = std::sync::mpsc::channel();
            // The fake forge runs on its own thread and runtime, so this thread's CPU is the scaler's.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
                rt.block_on(async move {
                    let server = wiremock::MockServer::start().await;
                    wiremock::Mock::given(wiremock::matchers::path("/api/queue/info"))
                        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body))
                        .mount(&server)
                        .await;
                    tx.send(server.uri()).unwrap();
                    std::future::pending::<()>().await;
                });
            });
            rx.recv().unwrap()
        };
        let config = bench_config(&server);
        let (sources, errors) = forge_scaler::app::job_sources(&config);
        assert!(errors.is_empty(), "{errors:?}");
        let edges = Edges::new(sources, fleet(), BTreeMap::new());
        let (http_cpu, http_wall) = tick_cpu(&config, &edges, ticks).await;
        (fake_cpu, fake_wall, http_cpu, http_wall)
    });
    let bench_rss = peak_rss_kib("self");

    println!("| measure | value |");
    println!("|---|---|");
    println!("| cold init: process start to first Runtime API poll (median of {runs}) | {:.1} ms |", ms(cold_median));
    println!("| peak RSS of the function at that point | {:.1} MiB |", cold_rss as f64 / 1024.0);
    println!(
        "| one tick, {POOLS} pools x {JOBS_PER_POOL} pending, in-process fake source: CPU (median of {ticks}) | {:.2} ms (wall {:.2} ms) |",
        ms(fake_cpu),
        ms(fake_wall)
    );
    println!(
        "| one tick, {POOLS} pools x {JOBS_PER_POOL} pending, real Woodpecker adapter over local HTTP (10 x 10,000-task queue reads): CPU | {:.2} ms (wall {:.2} ms) |",
        ms(http_cpu),
        ms(http_wall)
    );
    println!(
        "| peak RSS of this benchmark process (both tick benchmarks and the fake forge) | {:.1} MiB |",
        bench_rss as f64 / 1024.0
    );
    let sizes = bootstrap_sizes();
    if sizes.is_empty() {
        println!("| release bootstrap | not built: run scripts/ci-lambda.sh |");
    }
    for (file, size) in sizes {
        println!("| {file} | {:.2} MB ({size} bytes) |", size as f64 / 1_000_000.0);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
