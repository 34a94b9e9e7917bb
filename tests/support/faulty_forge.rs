//! A misbehaving forge for the fault matrix and the memory benchmark: a raw HTTP/1.1 server
//! on a free 127.0.0.1 port that answers every request in one faulty way (wiremock cannot
//! stall mid-body or stream forever). Shared by `tests/forge_faults.rs` and
//! `benches/misbehaving_forges.rs` (each includes it with `#[path]`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The delay of every page in the slow-pages fault.
pub const SLOW_PAGE: Duration = Duration::from_millis(400);

/// One way a forge misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    NeverAnswers,
    SlowBody,
    SlowPages,
    ServerError,
    Unauthorized,
    Forbidden,
    TooManyRequests,
    MalformedJson,
    WrongTypes,
    Null,
    EmptyArray,
    EmptyObject,
    OversizedAnnounced,
    OversizedStream,
    EndlessPagination,
    /// 200 with a JSON string holding the whole request head (token, URL and all).
    EchoesTheRequest,
}

/// A raw HTTP/1.1 fake forge on a free loopback port; stops when dropped.
pub struct FakeForge {
    pub port: u16,
    requests: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeForge {
    pub async fn start(kind: &'static str, fault: Fault) -> FakeForge {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicU32::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                connections.spawn(async move {
                    let _ = serve_one(stream, kind, fault, &counter).await;
                });
            }
        });
        FakeForge { port, requests, task }
    }

    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request head (capped) and answers it according to `fault`.
pub async fn serve_one(mut stream: TcpStream, kind: &str, fault: Fault, counter: &AtomicU32) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    counter.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    // What a careless forge echoes back: the URL asked for and the credentials sent.
    let echo: String = std::iter::once(target.clone())
        .chain(
            head.lines()
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    l.starts_with("authorization:") || l.starts_with("private-token:")
                })
                .map(str::to_string),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let json = |status: &str, body: &str, extra: &str| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    let answer = match fault {
        Fault::NeverAnswers => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        Fault::SlowBody => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n")
                .await?;
            for _ in 0..100_000 {
                stream.write_all(b" ").await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Ok(());
        }
        Fault::OversizedAnnounced => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n[")
                .await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        Fault::OversizedStream => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
            // Endless whitespace (valid JSON padding): only the cap can end it.
            loop {
                stream.write_all(chunk.as_bytes()).await?;
            }
        }
        Fault::SlowPages | Fault::EndlessPagination => {
            if fault == Fault::SlowPages {
                tokio::time::sleep(SLOW_PAGE).await;
            }
            let (body, extra) = endless_page(kind, &target);
            json("200 OK", &body, &extra)
        }
        Fault::ServerError => json("502 Bad Gateway", &format!("upstream exploded; you sent: {echo}"), ""),
        Fault::Unauthorized => json("401 Unauthorized", r#"{"message":"Bad credentials"}"#, ""),
        Fault::Forbidden => json("403 Forbidden", r#"{"message":"Resource not accessible"}"#, ""),
        Fault::TooManyRequests => json("429 Too Many Requests", r#"{"message":"slow down"}"#, "retry-after: 30\r\n"),
        Fault::MalformedJson => json("200 OK", r#"{"pending": [{"id": "1", "labels": {"#, ""),
        Fault::WrongTypes => json("200 OK", wrong_types(kind), ""),
        Fault::Null => json("200 OK", "null", ""),
        Fault::EmptyArray => json("200 OK", "[]", ""),
        Fault::EmptyObject => json("200 OK", "{}", ""),
        Fault::EchoesTheRequest => json("200 OK", &serde_json::Value::String(echo.clone()).to_string(), ""),
    };
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

/// A right-shaped answer whose fields have the wrong JSON types, per forge.
pub fn wrong_types(kind: &str) -> &'static str {
    match kind {
        "woodpecker" => r#"{"pending": 5, "running": "none"}"#,
        "forgejo" | "drone" => r#"[{"id": 1, "status": 5, "runs_on": "linux"}]"#,
        "gitea" => r#"{"jobs": 5, "total_count": "many"}"#,
        "buildkite" => r#"{"jobs": {"scheduled": "five", "running": -1}}"#,
        "github" => r#"{"workflow_runs": [{"id": "one"}]}"#,
        "gitlab" => r#"[{"id": "x", "status": 7}]"#,
        "generic" => r#"{"queue": {"pending": true}}"#,
        other => panic!("no wrong-types body for {other}"),
    }
}

/// The query parameter `key` of a request target.
pub fn query_value(target: &str, key: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
}

/// A full page with a "next" link that never ends (GitHub's runs listing is finite so the
/// budget is spent on one run's endless jobs). Ids are new on every page.
pub fn endless_page(kind: &str, target: &str) -> (String, String) {
    let page: u64 = query_value(target, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let path = target.split('?').next().unwrap_or("/");
    let link = |next: u64| format!("link: <http://127.0.0.1{path}?page={next}&per_page=100>; rel=\"next\"\r\n");
    let ids = |n: u64| (0..n).map(move |i| page * 1_000 + i);
    match kind {
        "github" if path.ends_with("/runs") => {
            let runs = if query_value(target, "status").as_deref() == Some("queued") { "[{\"id\":1}]" } else { "[]" };
            (format!("{{\"workflow_runs\":{runs}}}"), String::new())
        }
        "github" => {
            let jobs: Vec<String> =
                ids(100).map(|id| format!(r#"{{"id":{id},"status":"queued","labels":["linux"]}}"#)).collect();
            (format!("{{\"jobs\":[{}]}}", jobs.join(",")), link(page + 1))
        }
        "gitlab" => {
            let jobs: Vec<String> =
                ids(100).map(|id| format!(r#"{{"id":{id},"status":"pending","tag_list":[]}}"#)).collect();
            (format!("[{}]", jobs.join(",")), format!("x-next-page: {}\r\n", page + 1))
        }
        "gitea" => {
            let offset = if query_value(target, "status").as_deref() == Some("in_progress") { 10_000_000 } else { 0 };
            let jobs: Vec<String> =
                ids(50).map(|id| format!(r#"{{"id":{},"labels":[],"status":"queued"}}"#, id + offset)).collect();
            (format!("{{\"jobs\":[{}],\"total_count\":100000000}}", jobs.join(",")), String::new())
        }
        // The rest read one answer per tick; a "next" link must not make them read more.
        "woodpecker" => (r#"{"pending":[{"id":"1","labels":{}}],"running":[]}"#.to_string(), link(page + 1)),
        "forgejo" => (r#"[{"id":1,"runs_on":[],"status":"waiting"}]"#.to_string(), link(page + 1)),
        "drone" => (r#"[{"id":1,"status":"pending","os":"linux","arch":"amd64"}]"#.to_string(), link(page + 1)),
        "buildkite" => (r#"{"jobs":{"scheduled":1,"running":0}}"#.to_string(), link(page + 1)),
        "generic" => (r#"{"queue":{"pending":1}}"#.to_string(), link(page + 1)),
        other => panic!("no page for {other}"),
    }
}
