//! Webhook-triggered ticks end to end: the real binary (`run --webhook-listen 127.0.0.1:0`,
//! poll interval 10 minutes) against moto and a fake GitHub. A signed job webhook raises the
//! group within a second; a bad signature, an unrelated payload and an oversize body cause
//! no tick (the fake forge counts every request; a tick always reads it first); a flood is
//! coalesced.

mod support;
#[path = "support/webhook_rig.rs"]
mod webhook_rig;

use std::time::Duration;
use webhook_rig::{queued_job, Rig, SECRET, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_raises_the_group_within_a_second_while_the_poll_interval_is_ten_minutes() {
    let rig = Rig::start("10m").await;
    assert_eq!(rig.desired().await, 0, "nothing queued at the first tick");
    rig.set_queue(3);
    let sent = std::time::Instant::now();
    assert_eq!(rig.post_github("workflow_job", &queued_job(), SECRET).await, 202);
    rig.wait_for("desired 3", Duration::from_secs(5), || async { rig.desired().await == 3 }).await;
    let reaction = sent.elapsed();
    assert!(reaction < Duration::from_secs(1), "webhook -> desired 3 took {reaction:?}");
    assert_eq!(rig.ticks().await, 2, "the first tick and the webhook's");
    let stderr = rig.stop().await;
    assert!(!stderr.contains(SECRET) && !stderr.contains(TOKEN), "a secret leaked: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_an_unrelated_payload_and_an_oversize_body_cause_no_tick() {
    let rig = Rig::start("10m").await;
    rig.set_queue(2);
    let before = rig.forge_requests().await;
    // Wrong secret, no signature at all.
    assert_eq!(rig.post_github("workflow_job", &queued_job(), "not-the-secret").await, 401);
    assert_eq!(rig.post(&[("x-github-event", "workflow_job".into())], queued_job()).await, 401);
    // Authentic but unrelated: a ping, a completed job, a job for labels no pool has.
    let ping = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/github-ping.json")).unwrap();
    assert_eq!(rig.post_github("ping", &ping, SECRET).await, 200);
    let completed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/webhooks/github-workflow-job-completed.json"
    ))
    .unwrap();
    assert_eq!(rig.post_github("workflow_job", &completed, SECRET).await, 200);
    let gpu = String::from_utf8(queued_job()).unwrap().replace(r#""linux", "x64""#, r#""gpu""#);
    assert_eq!(rig.post_github("workflow_job", gpu.as_bytes(), SECRET).await, 200);
    // Over 1 MiB, even when correctly signed.
    let mut big = queued_job();
    big.resize(1024 * 1024 + 1, b' ');
    assert_eq!(rig.post_github("workflow_job", &big, SECRET).await, 413);
    // Unknown forge, wrong method.
    let other = rig.url.replace("/webhooks/gh", "/webhooks/nope");
    let status = rig.http.post(&other).body(queued_job()).send().await.unwrap().status().as_u16();
    assert_eq!(status, 404);
    assert_eq!(rig.http.get(&rig.url).send().await.unwrap().status().as_u16(), 405);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.forge_requests().await, before, "no tick: the forge was not asked anything");
    assert_eq!(rig.desired().await, 0, "and the group was not raised");
    let stderr = rig.stop().await;
    assert!(stderr.contains("unauthorized webhook"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_valid_webhooks_is_coalesced_into_a_few_ticks() {
    let rig = Rig::start("10m").await;
    rig.set_queue(1);
    let before = rig.ticks().await;
    let body = queued_job();
    let flood: Vec<_> = (0..50).map(|_| rig.post_github("workflow_job", &body, SECRET)).collect();
    let statuses = futures::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    rig.wait_for("desired 1", Duration::from_secs(5), || async { rig.desired().await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ticks = rig.ticks().await - before;
    // One tick in flight plus one queued at any time; the 50 requests arrive within a few
    // ticks' time, so a handful of ticks serve them all.
    eprintln!("50 webhooks made {ticks} ticks");
    assert!((1..=5).contains(&ticks), "50 webhooks made {ticks} ticks");
    rig.stop().await;
}
