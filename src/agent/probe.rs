//! Busy/idle probes of the agent on this instance: the Woodpecker agent's `/varz`, Docker
//! containers the agent started (Docker Engine API on a Unix socket), and a user command.
//! Each probe reports what it saw; `combine` (pure) merges the readings. Probes never decide
//! to leave, and a probe that fails says so (`Unknown`), never "idle".

use super::idle::Busy;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// The Woodpecker agent's health server (`WOODPECKER_HEALTHCHECK_ADDR`, default `:3000`).
pub const DEFAULT_WOODPECKER_VARZ: &str = "http://localhost:3000/varz";
/// The Docker Engine API socket.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// One configured probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSpec {
    /// `GET url` answers `{"running_count": N, ...}`: busy when N > 0.
    WoodpeckerVarz { url: Url },
    /// Busy while a running container carries one of `labels` (`key` or `key=value`) or has a
    /// name starting with one of `name_prefixes`.
    Docker { socket: PathBuf, labels: Vec<String>, name_prefixes: Vec<String> },
    /// `sh -c command`: exit 0 = busy, 1 = idle, anything else or a timeout = unknown.
    Command { command: String },
}

impl ProbeSpec {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            ProbeSpec::WoodpeckerVarz { .. } => "woodpecker_varz",
            ProbeSpec::Docker { .. } => "docker",
            ProbeSpec::Command { .. } => "command",
        }
    }

    /// The probe talks to the agent process itself, so it cannot answer once the agent is
    /// stopped (the Woodpecker health server lives in the agent).
    pub fn lives_in_agent(&self) -> bool {
        matches!(self, ProbeSpec::WoodpeckerVarz { .. })
    }
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Busy with this many jobs (containers, workflows).
    Busy(u64),
    Idle,
    /// The probe could not tell (unreachable, malformed, timed out).
    Failed(String),
}

impl Reading {
    pub fn busy(&self) -> Busy {
        match self {
            Reading::Busy(_) => Busy::Busy,
            Reading::Idle => Busy::Idle,
            Reading::Failed(_) => Busy::Unknown,
        }
    }
}

/// Merges readings: any busy -> busy; else any failure -> unknown; all idle -> idle; no
/// probe at all -> unknown (nothing says the agent is idle).
pub fn combine(readings: &[Reading]) -> Busy {
    if readings.iter().any(|r| r.busy() == Busy::Busy) {
        Busy::Busy
    } else if readings.is_empty() || readings.iter().any(|r| r.busy() == Busy::Unknown) {
        Busy::Unknown
    } else {
        Busy::Idle
    }
}

/// Runs the configured probes.
#[derive(Debug)]
pub struct Prober {
    specs: Vec<ProbeSpec>,
    timeout: Duration,
    http: reqwest::Client,
}

impl Prober {
    pub fn new(specs: Vec<ProbeSpec>, timeout: Duration) -> Self {
        let http =
            reqwest::Client::builder().timeout(timeout).no_proxy().build().unwrap_or_else(|_| reqwest::Client::new());
        Prober { specs, timeout, http }
    }

    pub fn specs(&self) -> &[ProbeSpec] {
        &self.specs
    }

    /// One reading per probe, in the configured order.
    pub async fn read_all(&self) -> Vec<Reading> {
        let mut readings = Vec::with_capacity(self.specs.len());
        for spec in &self.specs {
            readings.push(self.read(spec).await);
        }
        readings
    }

    async fn read(&self, spec: &ProbeSpec) -> Reading {
        let outcome = match spec {
            ProbeSpec::WoodpeckerVarz { url } => self.woodpecker(url).await,
            ProbeSpec::Docker { socket, labels, name_prefixes } => self.docker(socket, labels, name_prefixes).await,
            ProbeSpec::Command { command } => self.command(command).await,
        };
        outcome.unwrap_or_else(Reading::Failed)
    }

    async fn woodpecker(&self, url: &Url) -> Result<Reading, String> {
        #[derive(Deserialize)]
        struct Varz {
            running_count: Option<u64>,
        }
        let response = self.http.get(url.clone()).send().await.map_err(|e| format!("GET {url}: {}", chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {}", status.as_u16()));
        }
        let body = response.bytes().await.map_err(|e| format!("GET {url}: {}", chain(&e)))?;
        let varz: Varz = serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not varz JSON: {e}"))?;
        match varz.running_count {
            Some(0) => Ok(Reading::Idle),
            Some(n) => Ok(Reading::Busy(n)),
            None => Err(format!("GET {url}: no running_count in the answer")),
        }
    }

    async fn docker(
        &self,
        socket: &std::path::Path,
        labels: &[String],
        name_prefixes: &[String],
    ) -> Result<Reading, String> {
        let client = reqwest::Client::builder()
            .unix_socket(socket.to_path_buf())
            .timeout(self.timeout)
            .build()
            .map_err(|e| format!("docker socket {}: {}", socket.display(), chain(&e)))?;
        // Running containers only (the API's default); selection is done here, so a label
        // filter and a name prefix can be combined.
        let response = client
            .get("http://docker/containers/json")
            .send()
            .await
            .map_err(|e| format!("docker socket {}: {}", socket.display(), chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("docker socket {}: GET /containers/json: HTTP {}", socket.display(), status.as_u16()));
        }
        let body = response.bytes().await.map_err(|e| format!("docker socket {}: {}", socket.display(), chain(&e)))?;
        let containers: Vec<DockerContainer> = serde_json::from_slice(&body)
            .map_err(|e| format!("docker socket {}: not a container list: {e}", socket.display()))?;
        let matching = containers.iter().filter(|c| c.is_running() && c.selected(labels, name_prefixes)).count() as u64;
        Ok(if matching == 0 { Reading::Idle } else { Reading::Busy(matching) })
    }

    async fn command(&self, command: &str) -> Result<Reading, String> {
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("probe command: cannot start sh: {e}"))?;
        let status = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output.status,
            Ok(Err(e)) => return Err(format!("probe command: {e}")),
            Err(_) => {
                return Err(format!("probe command timed out after {}", humantime::format_duration(self.timeout)))
            }
        };
        match status.code() {
            Some(0) => Ok(Reading::Busy(1)),
            Some(1) => Ok(Reading::Idle),
            Some(code) => Err(format!("probe command exited with {code}")),
            None => Err("probe command killed by a signal".into()),
        }
    }
}

/// One container in `GET /containers/json` (only the fields used).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerContainer {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    state: Option<String>,
}

impl DockerContainer {
    fn is_running(&self) -> bool {
        // Absent state (old engines): the list holds running containers only.
        self.state.as_deref().is_none_or(|s| matches!(s, "running" | "restarting" | "paused"))
    }

    fn selected(&self, labels: &[String], name_prefixes: &[String]) -> bool {
        let by_label = labels.iter().any(|want| {
            let (key, value) = match want.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (want.as_str(), None),
            };
            self.labels.as_ref().and_then(|l| l.get(key)).is_some_and(|have| value.is_none_or(|v| v == have))
        });
        let by_name = name_prefixes.iter().any(|prefix| {
            self.names
                .iter()
                .flatten()
                .any(|name| name.trim_start_matches('/').starts_with(prefix.trim_start_matches('/')))
        });
        by_label || by_name
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn combine_prefers_busy_then_unknown() {
        use Reading::*;
        assert_eq!(combine(&[Idle, Busy(1)]), super::Busy::Busy);
        assert_eq!(combine(&[Failed("x".into()), Busy(2)]), super::Busy::Busy);
        assert_eq!(combine(&[Idle, Failed("x".into())]), super::Busy::Unknown);
        assert_eq!(combine(&[Idle, Idle]), super::Busy::Idle);
        assert_eq!(combine(&[]), super::Busy::Unknown);
    }

    async fn varz(body: &str) -> (MockServer, Url) {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/varz"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body.to_string()))
            .mount(&server)
            .await;
        let url = Url::parse(&format!("{}/varz", server.uri())).unwrap();
        (server, url)
    }

    #[tokio::test]
    async fn woodpecker_varz_running_count() {
        let (_s, url) = varz(r#"{"polling_count":0,"running_count":2,"running":{}}"#).await;
        let prober = Prober::new(vec![ProbeSpec::WoodpeckerVarz { url: url.clone() }], Duration::from_secs(2));
        assert_eq!(prober.read_all().await, vec![Reading::Busy(2)]);
        let (_s, url) = varz(r#"{"polling_count":1,"running_count":0}"#).await;
        let prober = Prober::new(vec![ProbeSpec::WoodpeckerVarz { url }], Duration::from_secs(2));
        assert_eq!(prober.read_all().await, vec![Reading::Idle]);
    }

    #[tokio::test]
    async fn woodpecker_varz_without_running_count_is_unknown() {
        let (_s, url) = varz(r#"{"polling_count":1}"#).await;
        let prober = Prober::new(vec![ProbeSpec::WoodpeckerVarz { url }], Duration::from_secs(2));
        assert!(matches!(prober.read_all().await[0], Reading::Failed(_)));
    }

    /// A fake Docker Engine API on a Unix socket: answers every request with `body`.
    async fn fake_docker(dir: &std::path::Path, body: &'static str) -> PathBuf {
        let socket = dir.join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        socket
    }

    const CONTAINERS: &str = r#"[
        {"Id":"a1","Names":["/drone-runner"],"Labels":{"app":"runner"},"State":"running"},
        {"Id":"b2","Names":["/drone-x1y2"],"Labels":{"io.drone":"true","io.drone.build.number":"7"},"State":"running"},
        {"Id":"c3","Names":["/FORGEJO-ACTIONS-TASK-12_build"],"Labels":{},"State":"running"}
    ]"#;

    #[tokio::test]
    async fn docker_containers_by_label_and_name_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let socket = fake_docker(dir.path(), CONTAINERS).await;
        let probe = |labels: &[&str], prefixes: &[&str]| ProbeSpec::Docker {
            socket: socket.clone(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            name_prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
        };
        let prober = Prober::new(
            vec![
                probe(&["io.drone.build.number"], &[]),
                probe(&["io.drone=false"], &[]),
                probe(&[], &["FORGEJO-ACTIONS-TASK-"]),
                probe(&[], &["GITEA-ACTIONS-TASK-"]),
                probe(&["io.drone=true"], &["FORGEJO-ACTIONS-TASK-"]),
            ],
            Duration::from_secs(2),
        );
        assert_eq!(
            prober.read_all().await,
            vec![Reading::Busy(1), Reading::Idle, Reading::Busy(1), Reading::Idle, Reading::Busy(2)]
        );
    }

    #[tokio::test]
    async fn docker_socket_missing_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let spec =
            ProbeSpec::Docker { socket: dir.path().join("none.sock"), labels: vec!["x".into()], name_prefixes: vec![] };
        let prober = Prober::new(vec![spec], Duration::from_secs(2));
        assert!(matches!(&prober.read_all().await[0], Reading::Failed(m) if m.contains("none.sock")));
    }

    #[tokio::test]
    async fn command_probe_exit_codes() {
        let prober = Prober::new(
            vec![
                ProbeSpec::Command { command: "exit 0".into() },
                ProbeSpec::Command { command: "exit 1".into() },
                ProbeSpec::Command { command: "exit 7".into() },
                ProbeSpec::Command { command: "sleep 5".into() },
            ],
            Duration::from_millis(300),
        );
        let readings = prober.read_all().await;
        assert_eq!(readings[0], Reading::Busy(1));
        assert_eq!(readings[1], Reading::Idle);
        assert!(matches!(&readings[2], Reading::Failed(m) if m.contains("7")));
        assert!(matches!(&readings[3], Reading::Failed(m) if m.contains("timed out")));
    }
}
