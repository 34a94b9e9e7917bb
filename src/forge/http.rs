//! The HTTP client forge adapters share: base URL joining, the auth header, and one bounded
//! GET: each request ends by min(`REQUEST_TIMEOUT`, the pool's deadline), its body is read
//! chunk by chunk under a byte cap, and every failure becomes a `ForgeError` naming the
//! redacted URL (never the token, userinfo or a query value).

use super::ForgeError;
use crate::config::{ForgeConfig, ForgeKind};
use crate::redact;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Per-request timeout: a tick must finish well inside the Lambda's minute.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest success body read from a forge by default: the config key's default (a bigger
/// body is `ForgeError::TooLarge`).
pub use crate::config::DEFAULT_MAX_RESPONSE_BYTES;

/// Bytes kept of a non-success body (enough for an error message); the rest is dropped
/// unread, so an error page cannot cost memory either.
pub const ERROR_BODY_BYTES: usize = 64 * 1024;

/// Bytes every forge answer being read at once may hold in all, in this process: each
/// forge's own cap bounds one answer, this bounds them together, so a tick in which many
/// forges send oversized answers at once still fits the 128 MB Lambda. An answer that would
/// take more than is left is `ForgeError::MemoryBudget` for its pool (it needs other forges'
/// answers to be oversized at the same moment: an answer within its cap is only refused
/// while others hold most of this).
pub const BODIES_IN_FLIGHT_BYTES: u64 = 32 * 1024 * 1024;

/// Bytes the answers being read now hold (their buffers' capacity).
static BODIES_IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

/// One answer's share of a byte budget (normally [`BODIES_IN_FLIGHT_BYTES`] on the process's
/// counter), given back when dropped.
struct BodyShare {
    counter: &'static AtomicU64,
    budget: u64,
    held: u64,
}

impl BodyShare {
    fn new() -> Self {
        Self::of(&BODIES_IN_FLIGHT, BODIES_IN_FLIGHT_BYTES)
    }

    fn of(counter: &'static AtomicU64, budget: u64) -> Self {
        BodyShare { counter, budget, held: 0 }
    }

    /// Grows the share to `bytes`; false (and unchanged) when that would pass the budget.
    fn grow_to(&mut self, bytes: u64) -> bool {
        let more = bytes.saturating_sub(self.held);
        if more == 0 {
            return true;
        }
        let before = self.counter.fetch_add(more, Ordering::SeqCst);
        if before + more > self.budget {
            self.counter.fetch_sub(more, Ordering::SeqCst);
            return false;
        }
        self.held = bytes;
        true
    }
}

impl Drop for BodyShare {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.held, Ordering::SeqCst);
    }
}

/// A response body with its headers, for adapters that read pagination or rate limits.
#[derive(Debug)]
pub struct Fetched<T> {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: T,
}

/// An authenticated client bound to one forge's base URL.
#[derive(Clone)]
pub struct ForgeHttp {
    client: reqwest::Client,
    base: Url,
    auth: Option<(HeaderName, HeaderValue)>,
    /// Largest success body read, in bytes (`forges/<forge>/max_response_bytes`).
    max_response_bytes: u64,
    /// Credentials to mask in any excerpt of an answer (a forge may echo them back).
    secrets: Vec<String>,
}

impl std::fmt::Debug for ForgeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeHttp")
            .field("base", &redact::redact(&self.base))
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl ForgeHttp {
    /// Builds the client with the forge kind's auth scheme.
    pub fn new(forge: &ForgeConfig) -> Result<Self, ForgeError> {
        let (header, scheme) = match forge.kind {
            ForgeKind::Woodpecker | ForgeKind::Drone | ForgeKind::Github => ("authorization", Some("Bearer")),
            ForgeKind::Forgejo | ForgeKind::Gitea => ("authorization", Some("token")),
            ForgeKind::Buildkite => ("authorization", Some("Token")),
            ForgeKind::Gitlab => ("private-token", None),
            ForgeKind::Generic => {
                (forge.auth_header.as_str(), Some(forge.auth_scheme.as_str()).filter(|s| !s.is_empty()))
            }
        };
        let auth = match &forge.token {
            None => None,
            Some(token) => {
                let name = HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes()).map_err(|_| {
                    ForgeError::Other(format!("forge {}: {header:?} is not a valid header name", forge.name))
                })?;
                let text = match scheme {
                    Some(s) => format!("{s} {}", token.expose()),
                    None => token.expose().to_string(),
                };
                let mut value = HeaderValue::from_str(&text).map_err(|_| {
                    ForgeError::Other(format!(
                        "forge {}: the token contains characters not allowed in a header",
                        forge.name
                    ))
                })?;
                value.set_sensitive(true);
                Some((name, value))
            }
        };
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("forge-scaler/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ForgeError::Other(format!("forge {}: cannot build HTTP client: {e}", forge.name)))?;
        let mut base = forge.url.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut secrets: Vec<String> = forge.token.iter().map(|t| t.expose().to_string()).collect();
        secrets.extend(forge.url.password().map(str::to_string));
        secrets.extend(forge.url.query_pairs().map(|(_, v)| v.into_owned()));
        if !forge.url.username().is_empty() {
            secrets.push(forge.url.username().to_string());
        }
        Ok(ForgeHttp { client, base, auth, max_response_bytes: forge.max_response_bytes, secrets })
    }

    /// Largest success body this client reads, in bytes.
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_bytes
    }

    /// The absolute URL of `path` (relative to the base URL, leading `/` ignored).
    pub fn url(&self, path: &str) -> Result<Url, ForgeError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ForgeError::Other(format!("cannot build URL from {path:?}: {e}")))
    }

    /// `text` with the forge's credentials masked: for excerpts of what a forge answered.
    pub fn scrub(&self, text: &str) -> String {
        redact::scrub(text, &self.secrets)
    }

    /// GET an absolute URL with auth and extra headers; any status is returned. The request
    /// (connect, headers and the whole body) ends by min(`REQUEST_TIMEOUT`, `deadline`); a
    /// success body over the cap is `TooLarge` (also when Content-Length announces it), a
    /// non-success body is cut at `ERROR_BODY_BYTES`.
    pub async fn get_raw(
        &self,
        url: &Url,
        extra: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<(u16, HeaderMap, Vec<u8>), ForgeError> {
        let now = Instant::now();
        if deadline <= now {
            return Err(ForgeError::Deadline { url: redact(url) });
        }
        let by_deadline = deadline < now + REQUEST_TIMEOUT;
        let ends = if by_deadline { deadline } else { now + REQUEST_TIMEOUT };
        match tokio::time::timeout_at(ends, self.get_unbounded_in_time(url, extra)).await {
            Ok(answer) => answer,
            Err(_) if by_deadline => Err(ForgeError::Deadline { url: redact(url) }),
            Err(_) => Err(ForgeError::Transport {
                url: redact(url),
                message: format!("no complete answer within {}s", REQUEST_TIMEOUT.as_secs()),
            }),
        }
    }

    async fn get_unbounded_in_time(
        &self,
        url: &Url,
        extra: &[(&str, &str)],
    ) -> Result<(u16, HeaderMap, Vec<u8>), ForgeError> {
        // The caller's `timeout_at` bounds this; the client's own REQUEST_TIMEOUT is a backstop.
        let mut req = self.client.get(url.clone());
        if let Some((name, value)) = &self.auth {
            req = req.header(name.clone(), value.clone());
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let transport = |e: reqwest::Error| ForgeError::Transport { url: redact(url), message: transport_message(e) };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let success = (200..300).contains(&status);
        let too_large = || ForgeError::TooLarge { url: redact(url), limit: self.max_response_bytes };
        if success && resp.content_length().is_some_and(|n| n > self.max_response_bytes) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut share = BodyShare::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if !success {
                let room = ERROR_BODY_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= ERROR_BODY_BYTES {
                    break;
                }
                continue;
            }
            let len = (body.len() + chunk.len()) as u64;
            if len > self.max_response_bytes {
                return Err(too_large());
            }
            // Grow the buffer by doubling, never past the cap, and only within the budget.
            if len > body.capacity() as u64 {
                let capacity = len.max(2 * body.capacity() as u64).min(self.max_response_bytes);
                if !share.grow_to(capacity) {
                    return Err(ForgeError::MemoryBudget { url: redact(url), budget: BODIES_IN_FLIGHT_BYTES });
                }
                body.reserve_exact(capacity as usize - body.len());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body))
    }

    /// GET a success body; 401/403 are `Unauthorized`, 429 `RateLimited` (with its
    /// `Retry-After`), other non-2xx are `Status` with a short, scrubbed body excerpt.
    pub async fn get_ok(
        &self,
        url: &Url,
        extra: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Fetched<Vec<u8>>, ForgeError> {
        let (status, headers, body) = self.get_raw(url, extra, deadline).await?;
        if status == 429 {
            return Err(ForgeError::RateLimited { url: redact(url), reset_in: retry_after(&headers) });
        }
        self.check_status(url, status, &body)?;
        Ok(Fetched { status, headers, body })
    }

    /// As [`ForgeHttp::get_ok`], decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        extra: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Fetched<T>, ForgeError> {
        let fetched = self.get_ok(url, extra, deadline).await?;
        let body = self.decode(url, &fetched.body)?;
        Ok(Fetched { status: fetched.status, headers: fetched.headers, body })
    }

    /// A `Decode` error for `url` whose message has the credentials masked.
    pub fn decode_error(&self, url: &Url, message: impl std::fmt::Display) -> ForgeError {
        ForgeError::Decode { url: redact(url), message: self.scrub(&message.to_string()) }
    }

    /// Turns a non-success status into an error; the excerpt has the credentials masked.
    pub fn check_status(&self, url: &Url, status: u16, body: &[u8]) -> Result<(), ForgeError> {
        match status {
            200..=299 => Ok(()),
            401 | 403 => Err(ForgeError::Unauthorized { url: redact(url), status }),
            _ => Err(ForgeError::Status { url: redact(url), status, message: self.scrub(&excerpt(body)) }),
        }
    }

    /// Decodes JSON, naming the URL and serde's reason (credentials masked) on failure.
    pub fn decode<T: DeserializeOwned>(&self, url: &Url, body: &[u8]) -> Result<T, ForgeError> {
        serde_json::from_slice(body).map_err(|e| self.decode_error(url, e))
    }
}

/// How long a 429 asks to wait (`Retry-After` in seconds; an HTTP date or nothing is
/// reported as zero, "unknown").
pub fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::ZERO)
}

/// The URL for messages: no userinfo, every query value masked (see [`crate::redact`]).
pub fn redact(url: &Url) -> String {
    redact::redact(url)
}

/// As [`redact`] for text that may not parse: a bad configured URL is never printed raw.
pub fn redact_url(text: &str) -> String {
    redact::redact_url(text)
}

/// The target of the `Link: <...>; rel="next"` header, if any (GitHub, GitLab, Gitea).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all(reqwest::header::LINK).iter().filter_map(|v| v.to_str().ok()).find_map(link_with_rel_next)
}

fn link_with_rel_next(value: &str) -> Option<String> {
    // `<url>; rel="next", <url>; rel="last"`: URLs never contain `>` unescaped.
    value.split('<').skip(1).find_map(|part| {
        let (target, params) = part.split_once('>')?;
        let is_next = params
            .split(',')
            .next()
            .unwrap_or("")
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("rel="))
            .any(|rel| rel.trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next")));
        is_next.then(|| target.trim().to_string())
    })
}

/// A pagination link resolved against `current`, then moved onto the origin (scheme, host,
/// port) of `base`: a forge behind a proxy often advertises its public name, and the auth
/// header must never travel to any host but the configured one.
pub fn follow_link(base: &Url, current: &Url, link: &str) -> Result<Url, ForgeError> {
    let mut target = current
        .join(link)
        .map_err(|e| ForgeError::Decode { url: redact(current), message: format!("bad pagination link: {e}") })?;
    if target.origin() != base.origin() {
        target
            .set_scheme(base.scheme())
            .and_then(|_| target.set_host(base.host_str()).map_err(|_| ()))
            .and_then(|_| target.set_port(base.port()))
            .map_err(|_| ForgeError::Decode {
                url: redact(current),
                message: "pagination link cannot be moved onto the configured host".to_string(),
            })?;
    }
    Ok(target)
}

/// A job id as forges send it, a JSON string or number, as text; anything else is no id.
pub fn json_id(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A creation time given as Unix seconds; 0, negative or non-numbers are no time.
pub fn json_unix_seconds(value: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    value.as_i64().filter(|s| *s > 0).and_then(|s| chrono::DateTime::from_timestamp(s, 0))
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}...", one_line.chars().take(200).collect::<String>())
    } else if one_line.is_empty() {
        "(empty body)".to_string()
    } else {
        one_line
    }
}

fn transport_message(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "no complete answer in time".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        // reqwest's Display includes the URL, which we print ourselves; keep the cause.
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_share_past_the_shared_budget_is_refused_and_every_share_is_given_back_on_drop() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut first = BodyShare::of(&COUNTER, 100);
        assert!(first.grow_to(60));
        let mut second = BodyShare::of(&COUNTER, 100);
        assert!(!second.grow_to(50), "60 + 50 passes the 100-byte budget");
        assert_eq!(COUNTER.load(Ordering::SeqCst), 60, "a refused share holds nothing");
        assert!(second.grow_to(40));
        assert!(first.grow_to(60), "growing to what is held already needs nothing more");
        assert!(!first.grow_to(61));
        drop(first);
        assert_eq!(COUNTER.load(Ordering::SeqCst), 40);
        assert!(second.grow_to(100), "the dropped share's bytes are free again");
        drop(second);
        assert_eq!(COUNTER.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn next_link_finds_rel_next_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://x.test/a?page=1>; rel=\"prev\", <https://x.test/a?page=3>; rel=\"next\", <https://x.test/a?page=9>; rel=\"last\"",
            ),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://x.test/a?page=3"));
        h.insert(reqwest::header::LINK, HeaderValue::from_static("<https://x.test/a?page=9>; rel=\"last\""));
        assert_eq!(next_link(&h), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn follow_link_stays_on_the_configured_host() {
        let base = Url::parse("http://127.0.0.1:8080/gitlab/").unwrap();
        let current = Url::parse("http://127.0.0.1:8080/gitlab/api/v4/projects/1/jobs?page=1").unwrap();
        let next =
            follow_link(&base, &current, "https://gitlab.example.com/gitlab/api/v4/projects/1/jobs?page=2").unwrap();
        assert_eq!(next.as_str(), "http://127.0.0.1:8080/gitlab/api/v4/projects/1/jobs?page=2");
        let relative = follow_link(&base, &current, "jobs?page=3").unwrap();
        assert_eq!(relative.as_str(), "http://127.0.0.1:8080/gitlab/api/v4/projects/1/jobs?page=3");
    }

    #[test]
    fn redact_hides_userinfo_and_every_query_value() {
        let u = Url::parse("https://user:pw@ci.example.com/api?access_token=abc&page=2").unwrap();
        let r = redact(&u);
        assert!(!r.contains("abc") && !r.contains("pw") && !r.contains('2'), "{r}");
        assert!(r.contains("page=***"), "{r}");
    }
}
