//! Webhook reaction benchmark (not a timed test; `cargo bench --bench webhooks`): the real
//! binary (`run --webhook-listen`) against moto and a fake GitHub on 127.0.0.1. A sample is
//! one fresh job: the fake forge starts listing it and, with webhooks, a signed `workflow_job`
//! webhook is POSTed at the same instant; the sample ends when moto shows the raised desired
//! capacity (polled every 5 ms, so each figure includes one DescribeAutoScalingGroups round
//! trip: an upper bound on webhook received -> SetDesiredCapacity). Polling samples use the
//! same binary without webhooks at poll_interval 10 s, with arrivals spread evenly over the
//! tick period. Results go to stdout as Markdown.

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "../tests/support/webhook_rig.rs"]
mod webhook_rig;

use std::time::Duration;
use webhook_rig::{queued_job, Rig, SECRET};

const WEBHOOK_SAMPLES: u32 = 40;
const POLL_SAMPLES: u32 = 10;
const POLL_INTERVAL_SECS: u32 = 10;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn row(name: &str, samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "| {name} | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
        samples.len(),
        percentile(samples, 50.0).as_secs_f64() * 1000.0,
        percentile(samples, 95.0).as_secs_f64() * 1000.0,
        samples.last().unwrap().as_secs_f64() * 1000.0
    )
}

async fn webhook_samples() -> Vec<Duration> {
    let rig = Rig::start("10m").await;
    let body = queued_job();
    let mut samples = Vec::new();
    for jobs in 1..=WEBHOOK_SAMPLES {
        rig.set_queue(jobs);
        let sent = std::time::Instant::now();
        assert_eq!(rig.post_github("workflow_job", &body, SECRET).await, 202);
        let target = jobs as i32;
        while rig.desired().await != target {
            assert!(sent.elapsed() < Duration::from_secs(30), "no raise to {target}: {}", rig.stderr());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(sent.elapsed());
    }
    rig.stop().await;
    samples
}

async fn poll_samples() -> Vec<Duration> {
    let rig = Rig::start(&format!("{POLL_INTERVAL_SECS}s")).await;
    let mut samples = Vec::new();
    for i in 0..POLL_SAMPLES {
        // The previous sample ended just after a tick: arrive i/N of a period later.
        tokio::time::sleep(Duration::from_millis(u64::from(i * POLL_INTERVAL_SECS * 1000 / POLL_SAMPLES))).await;
        rig.set_queue(i + 1);
        let arrived = std::time::Instant::now();
        let target = (i + 1) as i32;
        while rig.desired().await != target {
            assert!(arrived.elapsed() < Duration::from_secs(60), "no raise to {target}: {}", rig.stderr());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(arrived.elapsed());
    }
    rig.stop().await;
    samples
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut webhook = webhook_samples().await;
    let mut poll = poll_samples().await;
    println!("| trigger | samples | p50 | p95 | max |");
    println!("|---|---|---|---|---|");
    println!("{}", row("signed webhook (`run --webhook-listen`, poll_interval 10m)", &mut webhook));
    println!("{}", row(&format!("polling only (poll_interval {POLL_INTERVAL_SECS}s)"), &mut poll));
}
