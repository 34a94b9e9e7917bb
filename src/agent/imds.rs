//! The EC2 instance metadata service (IMDSv2) as the watchdog needs it: a session token
//! (PUT with a TTL header), the instance id and region, the spot interruption notice and
//! the Auto Scaling target lifecycle state. Wire details stay here; it decides nothing.

use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;

/// The standard IMDS address (and the SDK's default for `AWS_EC2_METADATA_SERVICE_ENDPOINT`).
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";

const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
/// Session tokens live 6 hours; renewed a minute early.
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
const TOKEN_RENEW_EARLY: Duration = Duration::from_secs(60);

/// Who this instance is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub instance_id: String,
    pub region: String,
}

/// Why the metadata service could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    #[error("instance metadata {path}: {message}")]
    Unreachable { path: String, message: String },
    #[error("instance metadata {path}: HTTP {status}")]
    Status { path: String, status: u16 },
    #[error("instance metadata {path}: unexpected answer {answer:?}")]
    Malformed { path: String, answer: String },
}

/// An IMDSv2 client with a cached session token.
#[derive(Debug)]
pub struct Imds {
    endpoint: Url,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

impl Imds {
    /// A client for `endpoint` (e.g. `http://169.254.169.254`); each request times out after
    /// `timeout`.
    pub fn new(endpoint: &Url, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Imds { endpoint: endpoint.clone(), http, token: Mutex::new(None) }
    }

    /// The endpoint from `AWS_EC2_METADATA_SERVICE_ENDPOINT` when set, else the standard one.
    pub fn endpoint_from_env() -> Result<Url, url::ParseError> {
        let raw = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.into());
        Url::parse(raw.trim())
    }

    /// Instance id and region.
    pub async fn identity(&self) -> Result<Identity, ImdsError> {
        let instance_id = self.get_required("/latest/meta-data/instance-id").await?;
        let region = self.get_required("/latest/meta-data/placement/region").await?;
        if !instance_id.starts_with("i-") {
            return Err(ImdsError::Malformed { path: "/latest/meta-data/instance-id".into(), answer: instance_id });
        }
        Ok(Identity { instance_id, region })
    }

    /// True when a spot interruption notice is posted (the path answers 200; 404 means none).
    pub async fn spot_interruption(&self) -> Result<bool, ImdsError> {
        Ok(self.get("/latest/meta-data/spot/instance-action").await?.is_some())
    }

    /// True when EC2 posts a rebalance recommendation (the path answers 200; 404 means none).
    pub async fn rebalance_recommendation(&self) -> Result<bool, ImdsError> {
        Ok(self.get("/latest/meta-data/events/recommendations/rebalance").await?.is_some())
    }

    /// The Auto Scaling target lifecycle state (`InService`, `Terminated`, `Warmed:Stopped`,
    /// ...), None when the instance has none (404).
    pub async fn target_lifecycle_state(&self) -> Result<Option<String>, ImdsError> {
        self.get("/latest/meta-data/autoscaling/target-lifecycle-state").await
    }

    async fn get_required(&self, path: &str) -> Result<String, ImdsError> {
        match self.get(path).await? {
            Some(value) if !value.is_empty() => Ok(value),
            Some(value) => Err(ImdsError::Malformed { path: path.into(), answer: value }),
            None => Err(ImdsError::Status { path: path.into(), status: 404 }),
        }
    }

    /// GET `path` with a session token; 404 -> None. A 401 (expired or revoked token) gets
    /// one retry with a fresh token.
    async fn get(&self, path: &str) -> Result<Option<String>, ImdsError> {
        for attempt in 0..2 {
            let token = self.token(attempt > 0).await?;
            let url = self.url(path)?;
            let response =
                self.http.get(url).header(TOKEN_HEADER, token).send().await.map_err(|e| unreachable(path, &e))?;
            let status = response.status().as_u16();
            match status {
                200 => {
                    let text = response.text().await.map_err(|e| unreachable(path, &e))?;
                    return Ok(Some(text.trim().to_string()));
                }
                404 => return Ok(None),
                401 if attempt == 0 => continue,
                _ => return Err(ImdsError::Status { path: path.into(), status }),
            }
        }
        Err(ImdsError::Status { path: path.into(), status: 401 })
    }

    async fn token(&self, renew: bool) -> Result<String, ImdsError> {
        let mut cached = self.token.lock().await;
        if let Some((token, expires)) = cached.as_ref() {
            if !renew && Instant::now() + TOKEN_RENEW_EARLY < *expires {
                return Ok(token.clone());
            }
        }
        let url = self.url(TOKEN_PATH)?;
        let response = self
            .http
            .put(url)
            .header(TOKEN_TTL_HEADER, TOKEN_TTL.as_secs().to_string())
            .send()
            .await
            .map_err(|e| unreachable(TOKEN_PATH, &e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(ImdsError::Status { path: TOKEN_PATH.into(), status });
        }
        let token = response.text().await.map_err(|e| unreachable(TOKEN_PATH, &e))?.trim().to_string();
        if token.is_empty() {
            return Err(ImdsError::Malformed { path: TOKEN_PATH.into(), answer: String::new() });
        }
        *cached = Some((token.clone(), Instant::now() + TOKEN_TTL));
        Ok(token)
    }

    fn url(&self, path: &str) -> Result<Url, ImdsError> {
        self.endpoint
            .join(path)
            .map_err(|e| ImdsError::Unreachable { path: path.into(), message: format!("bad endpoint: {e}") })
    }
}

fn unreachable(path: &str, e: &reqwest::Error) -> ImdsError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    ImdsError::Unreachable { path: path.into(), message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn fake_imds() -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path(TOKEN_PATH))
            .and(header_exists(TOKEN_TTL_HEADER))
            .respond_with(ResponseTemplate::new(200).set_body_string("tok-1"))
            .mount(&server)
            .await;
        for (p, body) in
            [("/latest/meta-data/instance-id", "i-0abc"), ("/latest/meta-data/placement/region", "eu-west-1")]
        {
            Mock::given(method("GET"))
                .and(path(p))
                .and(header(TOKEN_HEADER, "tok-1"))
                .respond_with(ResponseTemplate::new(200).set_body_string(body))
                .mount(&server)
                .await;
        }
        server
    }

    fn client(server: &MockServer) -> Imds {
        Imds::new(&Url::parse(&server.uri()).unwrap(), Duration::from_secs(2))
    }

    #[tokio::test]
    async fn identity_uses_a_session_token() {
        let server = fake_imds().await;
        let id = client(&server).identity().await.unwrap();
        assert_eq!(id, Identity { instance_id: "i-0abc".into(), region: "eu-west-1".into() });
    }

    #[tokio::test]
    async fn token_is_fetched_once_and_reused() {
        let server = fake_imds().await;
        let imds = client(&server);
        imds.identity().await.unwrap();
        imds.identity().await.unwrap();
        let puts = server.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "PUT").count();
        assert_eq!(puts, 1);
    }

    #[tokio::test]
    async fn no_spot_notice_is_a_404() {
        let server = fake_imds().await;
        assert!(!client(&server).spot_interruption().await.unwrap());
        Mock::given(method("GET"))
            .and(path("/latest/meta-data/spot/instance-action"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(r#"{"action":"terminate","time":"2026-11-22T18:00:00Z"}"#),
            )
            .mount(&server)
            .await;
        assert!(client(&server).spot_interruption().await.unwrap());
    }

    #[tokio::test]
    async fn unreachable_service_is_an_error_not_a_guess() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let imds = Imds::new(&Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(), Duration::from_millis(500));
        assert!(matches!(imds.identity().await, Err(ImdsError::Unreachable { .. })));
        assert!(imds.spot_interruption().await.is_err());
    }

    #[tokio::test]
    async fn a_bad_instance_id_is_rejected() {
        let server = MockServer::start().await;
        Mock::given(method("PUT")).respond_with(ResponseTemplate::new(200).set_body_string("t")).mount(&server).await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>captive portal</html>"))
            .mount(&server)
            .await;
        assert!(matches!(client(&server).identity().await, Err(ImdsError::Malformed { .. })));
    }
}
