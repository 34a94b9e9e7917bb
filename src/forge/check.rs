//! The cheap authenticated probe `forge-scaler doctor` makes of each forge: one request (one
//! per repository or project for GitHub and GitLab) that proves the forge answers, accepts the
//! token and that the token's scope can see the jobs the pools read. Never reads the queue.

use super::http::{self, ForgeHttp};
use super::ForgeError;
use crate::config::{ForgeConfig, ForgeKind, Scope};
use serde_json::Value;

/// What the probe found, for the checklist line ("token of admin octocat").
pub async fn check(forge: &ForgeConfig) -> Result<String, ForgeError> {
    let client = ForgeHttp::new(forge)?;
    match forge.kind {
        ForgeKind::Woodpecker => admin_user(&client, "api/user", "admin", "/api/queue/info").await,
        ForgeKind::Drone => admin_user(&client, "api/user", "admin", "/api/queue").await,
        ForgeKind::Forgejo | ForgeKind::Gitea => match &forge.scope {
            Scope::Admin => admin_user(&client, "api/v1/user", "is_admin", "the admin runner jobs").await,
            _ => user(&client, "api/v1/user").await,
        },
        ForgeKind::Github => {
            for repo in &forge.repos {
                get(&client, &client.url(&format!("repos/{repo}"))?).await?;
            }
            Ok(format!("token sees {} repositor{}", forge.repos.len(), plural_y(forge.repos.len())))
        }
        ForgeKind::Gitlab => {
            for project in &forge.projects {
                let path = format!("api/v4/projects/{}", super::gitlab::project_segment(project));
                get(&client, &client.url(&path)?).await?;
            }
            Ok(format!("token sees {} project(s)", forge.projects.len()))
        }
        ForgeKind::Buildkite => {
            let path =
                if client.url("")?.path().trim_end_matches('/').ends_with("/v3") { "metrics" } else { "v3/metrics" };
            let body = get(&client, &client.url(path)?).await?;
            let organization = body.pointer("/organization/slug").and_then(Value::as_str).unwrap_or("(unnamed)");
            Ok(format!("agent token of organization {organization}"))
        }
        ForgeKind::Generic => {
            let body = get(&client, &forge.url).await?;
            let pointer = forge.pending_pointer.as_deref().unwrap_or("/");
            match body.pointer(pointer) {
                Some(_) => Ok(format!("answer holds {pointer}")),
                None => Err(ForgeError::Decode {
                    url: http::redact(&forge.url),
                    message: format!("pending_pointer {pointer:?} is not in the answer"),
                }),
            }
        }
    }
}

/// How long one probe request may take.
const PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// The one place a probe request is made.
async fn get(client: &ForgeHttp, url: &url::Url) -> Result<Value, ForgeError> {
    let deadline = tokio::time::Instant::now() + PROBE_DEADLINE;
    Ok(client.get_json::<Value>(url, &[("accept", "application/json")], deadline).await?.body)
}

/// The token's user, who must be an admin to read the queue at `needs`.
async fn admin_user(client: &ForgeHttp, path: &str, admin_field: &str, needs: &str) -> Result<String, ForgeError> {
    let url = client.url(path)?;
    let body = get(client, &url).await?;
    let login = login(&body);
    match body.get(admin_field).and_then(Value::as_bool) {
        Some(true) => Ok(format!("token of admin {login}")),
        _ => Err(ForgeError::Other(format!("the token's user {login} is not an admin: {needs} needs one"))),
    }
}

async fn user(client: &ForgeHttp, path: &str) -> Result<String, ForgeError> {
    let body = get(client, &client.url(path)?).await?;
    Ok(format!("token of {}", login(&body)))
}

fn login(body: &Value) -> String {
    body.get("login").or_else(|| body.get("username")).and_then(Value::as_str).unwrap_or("(unnamed)").to_string()
}

fn plural_y(n: usize) -> &'static str {
    if n == 1 {
        "y"
    } else {
        "ies"
    }
}
