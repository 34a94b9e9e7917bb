//! The HTTP client forge adapters share: base URL joining, the auth header, status and
//! JSON handling that turns every failure into a `ForgeError` naming the URL (never the
//! token), and a bounded request timeout.

use super::ForgeError;
use crate::config::{ForgeConfig, ForgeKind};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use std::time::Duration;
use url::Url;

/// Per-request timeout: a tick must finish well inside the Lambda's minute.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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
}

impl std::fmt::Debug for ForgeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeHttp").field("base", &self.base.as_str()).finish_non_exhaustive()
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
        Ok(ForgeHttp { client, base, auth })
    }

    /// The absolute URL of `path` (relative to the base URL, leading `/` ignored).
    pub fn url(&self, path: &str) -> Result<Url, ForgeError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ForgeError::Other(format!("cannot build URL from {path:?}: {e}")))
    }

    /// GET an absolute URL with auth and extra headers; any status is returned.
    pub async fn get_raw(&self, url: &Url, extra: &[(&str, &str)]) -> Result<(u16, HeaderMap, Vec<u8>), ForgeError> {
        let mut req = self.client.get(url.clone());
        if let Some((name, value)) = &self.auth {
            req = req.header(name.clone(), value.clone());
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp =
            req.send().await.map_err(|e| ForgeError::Transport { url: redact(url), message: transport_message(e) })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| ForgeError::Transport { url: redact(url), message: transport_message(e) })?;
        Ok((status, headers, body.to_vec()))
    }

    /// GET JSON; 401/403 are `Unauthorized`, other non-2xx are `Status` with a short body excerpt.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        extra: &[(&str, &str)],
    ) -> Result<Fetched<T>, ForgeError> {
        let (status, headers, body) = self.get_raw(url, extra).await?;
        check_status(url, status, &body)?;
        let body = decode(url, &body)?;
        Ok(Fetched { status, headers, body })
    }
}

/// Turns a non-success status into an error.
pub fn check_status(url: &Url, status: u16, body: &[u8]) -> Result<(), ForgeError> {
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(ForgeError::Unauthorized { url: redact(url), status }),
        _ => Err(ForgeError::Status { url: redact(url), status, message: excerpt(body) }),
    }
}

/// Decodes JSON, naming the URL and serde's reason on failure.
pub fn decode<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, ForgeError> {
    serde_json::from_slice(body).map_err(|e| ForgeError::Decode { url: redact(url), message: e.to_string() })
}

/// The URL without query credentials or userinfo, for error messages.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let secret = ["token", "access_token", "private_token", "key"].contains(&k.to_ascii_lowercase().as_str());
            (k.into_owned(), if secret { "***".to_string() } else { v.into_owned() })
        })
        .collect();
    if pairs.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
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
        format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
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
    fn redact_hides_query_tokens_and_userinfo() {
        let u = Url::parse("https://user:pw@ci.example.com/api?access_token=abc&page=2").unwrap();
        let r = redact(&u);
        assert!(!r.contains("abc") && !r.contains("pw"), "{r}");
        assert!(r.contains("page=2"));
    }
}
