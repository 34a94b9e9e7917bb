//! The `forge-scaler run --webhook-listen ADDR` shell: a small HTTP/1.1 server answering
//! `POST /webhooks/<forge-name>`. Bodies are capped at [`MAX_BODY_BYTES`] while they are read;
//! headers and body each have a read deadline, a connection serves one request within a
//! deadline, and connections are capped. A request is judged
//! against the configuration the run loop last loaded (no SSM, forge or AWS call here) and a
//! job event queues a tick through [`TickRequests`] (coalesced).

use super::trigger::TickRequests;
use super::{forge_name_in_path, judge, Headers, Verdict, MAX_BODY_BYTES};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Deadline for a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for a request's body once its headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may live (one request: keep-alive is off, so an idle connection cannot
/// hold one of the [`MAX_CONNECTIONS`] slots).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// Serves until `stop` turns true. Errors on single connections are logged, never fatal.
pub async fn serve(listener: TcpListener, requests: TickRequests, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.wait_for(|s| *s) => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(target: "forge_scaler::webhook", error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let requests = requests.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let requests = requests.clone();
                async move { Ok::<_, Infallible>(answer(req, &requests).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_DEADLINE, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(target: "forge_scaler::webhook", error = %e, "connection ended with an error")
                }
                Err(_) => tracing::debug!(target: "forge_scaler::webhook", "connection closed at its deadline"),
            }
            drop(permit);
        });
    }
}

fn reply(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a static response is valid")
}

fn plain(status: u16, outcome: &str, detail: &str) -> Response<Full<Bytes>> {
    reply(status, serde_json::json!({ "outcome": outcome, "detail": detail }).to_string())
}

async fn answer(req: Request<Incoming>, requests: &TickRequests) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return plain(405, "method not allowed", "webhooks are POST /webhooks/<forge-name>");
    }
    let Some(forge) = forge_name_in_path(req.uri().path()).map(str::to_string) else {
        return plain(404, "not found", "webhooks are POST /webhooks/<forge-name>");
    };
    let declared = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return reply(413, Verdict::TooLarge.body());
    }
    let headers =
        Headers::from_pairs(req.headers().iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))));
    let body =
        match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(req.into_body(), MAX_BODY_BYTES).collect()).await {
            Err(_) => return plain(408, "timeout", "the body did not arrive in time"),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return reply(413, Verdict::TooLarge.body()),
            Ok(Err(_)) => return plain(400, "malformed", "the body could not be read"),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
    let Some(config) = requests.config() else {
        return plain(503, "unavailable", "no configuration loaded yet");
    };
    let verdict = judge(&config, &forge, &headers, &body, chrono::Utc::now());
    log_verdict(&forge, &verdict);
    if let Verdict::Tick(pools) = &verdict {
        requests.request(pools.iter().cloned());
    }
    reply(verdict.status(), verdict.body())
}

/// One log line per judged webhook (never a header value or the body).
pub fn log_verdict(forge: &str, verdict: &Verdict) {
    match verdict {
        Verdict::Tick(pools) => {
            tracing::info!(target: "forge_scaler::webhook", forge, pools = %pools.join(","), "job queued: ticking")
        }
        Verdict::Ignore(why) => tracing::debug!(target: "forge_scaler::webhook", forge, why = %why, "ignored"),
        Verdict::Unauthorized(why) => {
            tracing::warn!(target: "forge_scaler::webhook", forge, why, "unauthorized webhook")
        }
        other => tracing::info!(target: "forge_scaler::webhook", forge, status = other.status(), "webhook refused"),
    }
}
