//! The EC2 instance metadata service (IMDSv2) as the watchdog needs it: the instance id and
//! region, the spot interruption notice, the rebalance recommendation and the Auto Scaling
//! target lifecycle state. The session token (PUT with a TTL, cached, renewed before expiry)
//! and the retries are `aws_config::imds::Client`'s: this module names the paths, reads
//! "404 = none", turns the SDK's errors into ours, and adds the one thing the SDK does not do:
//! a token the service refuses (401 before its TTL, e.g. revoked) is dropped. The SDK retries
//! a 401 with the same cached token (tested: `a_token_refused_with_401_is_replaced_by_a_fresh_one`
//! fails without the rebuild), so on a 401 the client is rebuilt, which fetches a new token,
//! and the read is tried once more. It decides nothing.
//!
//! The SDK client costs nothing measurable here: `aws-config` is already linked (the default
//! credentials chain carries the same client), and a check makes three metadata reads every
//! `--check-interval` (15 s).

use aws_config::imds::client::error::ImdsError as SdkImdsError;
use aws_config::imds::Client;
use std::time::Duration;
use url::Url;

/// The standard IMDS address (and the SDK's default for `AWS_EC2_METADATA_SERVICE_ENDPOINT`).
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";

/// Session tokens live 6 hours (the SDK renews them before they expire).
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
/// One attempt plus one retry (a 401 from an expired or revoked token, a 5xx).
const ATTEMPTS: u32 = 2;

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
    #[error("instance metadata endpoint {endpoint}: {message}")]
    Endpoint { endpoint: String, message: String },
}

/// An IMDSv2 client.
#[derive(Debug)]
pub struct Imds {
    endpoint: Url,
    timeout: Duration,
    client: std::sync::Mutex<Client>,
}

impl Imds {
    /// A client for `endpoint` (e.g. `http://169.254.169.254`); each attempt times out after
    /// `timeout`, a whole request (token and retry included) after three times that.
    pub fn new(endpoint: &Url, timeout: Duration) -> Result<Self, ImdsError> {
        let client = Self::build(endpoint, timeout)?;
        Ok(Imds { endpoint: endpoint.clone(), timeout, client: std::sync::Mutex::new(client) })
    }

    fn build(endpoint: &Url, timeout: Duration) -> Result<Client, ImdsError> {
        Ok(Client::builder()
            .endpoint(endpoint.as_str())
            .map_err(|e| ImdsError::Endpoint { endpoint: endpoint.to_string(), message: e.to_string() })?
            .token_ttl(TOKEN_TTL)
            .max_attempts(ATTEMPTS)
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .operation_attempt_timeout(timeout)
            .operation_timeout(timeout * 3)
            .build())
    }

    fn client(&self) -> Client {
        self.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
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

    /// GET `path`; 404 -> None; a 401 once more with a fresh token.
    async fn get(&self, path: &str) -> Result<Option<String>, ImdsError> {
        match self.get_once(path).await {
            Err(ImdsError::Status { status: 401, .. }) => {
                let fresh = Self::build(&self.endpoint, self.timeout)?;
                *self.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
                self.get_once(path).await
            }
            other => other,
        }
    }

    async fn get_once(&self, path: &str) -> Result<Option<String>, ImdsError> {
        match self.client().get(path).await {
            Ok(value) => Ok(Some(value.as_ref().trim().to_string())),
            Err(SdkImdsError::ErrorResponse(response)) => match response.response().status().as_u16() {
                404 => Ok(None),
                status => Err(ImdsError::Status { path: path.into(), status }),
            },
            Err(e) => Err(ImdsError::Unreachable { path: path.into(), message: chain(&e) }),
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, header_exists, method, path};

    const TOKEN_PATH: &str = "/latest/api/token";
    const TOKEN_TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";
    const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn fake_imds() -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path(TOKEN_PATH))
            .and(header_exists(TOKEN_TTL_HEADER))
            .respond_with(ResponseTemplate::new(200).set_body_string("tok-1").insert_header(TOKEN_TTL_HEADER, "21600"))
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
        Imds::new(&Url::parse(&server.uri()).unwrap(), Duration::from_secs(2)).unwrap()
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
        let imds =
            Imds::new(&Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(), Duration::from_millis(500)).unwrap();
        assert!(matches!(imds.identity().await, Err(ImdsError::Unreachable { .. })));
        assert!(imds.spot_interruption().await.is_err());
    }

    #[tokio::test]
    async fn a_token_refused_with_401_is_replaced_by_a_fresh_one() {
        let server = MockServer::start().await;
        for token in ["tok-old", "tok-new"] {
            Mock::given(method("PUT"))
                .and(path(TOKEN_PATH))
                .respond_with(
                    ResponseTemplate::new(200).set_body_string(token).insert_header(TOKEN_TTL_HEADER, "21600"),
                )
                .up_to_n_times(1)
                .mount(&server)
                .await;
        }
        Mock::given(method("GET"))
            .and(header(TOKEN_HEADER, "tok-old"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/latest/meta-data/autoscaling/target-lifecycle-state"))
            .and(header(TOKEN_HEADER, "tok-new"))
            .respond_with(ResponseTemplate::new(200).set_body_string("InService"))
            .mount(&server)
            .await;
        assert_eq!(client(&server).target_lifecycle_state().await.unwrap().as_deref(), Some("InService"));
    }

    #[tokio::test]
    async fn a_bad_instance_id_is_rejected() {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .respond_with(ResponseTemplate::new(200).set_body_string("t").insert_header(TOKEN_TTL_HEADER, "21600"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>captive portal</html>"))
            .mount(&server)
            .await;
        assert!(matches!(client(&server).identity().await, Err(ImdsError::Malformed { .. })));
    }
}
