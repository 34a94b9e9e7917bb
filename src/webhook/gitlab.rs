//! GitLab webhooks: the `X-Gitlab-Token` header equals the secret, and the Job Hook
//! (`object_kind: build`) with `build_status` `pending` or `created` is a queued job. Its
//! `tags` (GitLab 16.9 and later) say which runners may take it; without them every pool of
//! the forge ticks. Other events and job states are ignored.

use super::{parse_json, sign, Event, Headers};
use serde::Deserialize;

pub const TOKEN_HEADER: &str = "x-gitlab-token";

pub fn authenticate(secret: &str, headers: &Headers) -> Result<(), &'static str> {
    let token = headers.get(TOKEN_HEADER).ok_or("missing X-Gitlab-Token")?;
    if sign::secret_equals(secret, token) {
        Ok(())
    } else {
        Err("X-Gitlab-Token is not the webhook secret")
    }
}

#[derive(Deserialize)]
struct Hook {
    #[serde(default)]
    object_kind: Option<String>,
    #[serde(default)]
    build_status: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

pub fn classify(_headers: &Headers, body: &[u8]) -> Result<Event, String> {
    let hook: Hook = parse_json(body)?;
    match hook.object_kind.as_deref() {
        Some("build") => {}
        Some(kind) => return Ok(Event::Other(format!("GitLab {kind:?} event is not a job event"))),
        None => return Ok(Event::Other("no object_kind: not a GitLab event".into())),
    }
    match hook.build_status.as_deref() {
        Some("pending" | "created") => Ok(Event::JobQueued { labels: hook.tags }),
        status => Ok(Event::Other(format!("job status {status:?} is not pending or created"))),
    }
}
