//! Forge webhooks as tick triggers (issue 15): a pure core that, given a forge's name, the
//! configuration, the request's headers and raw body and `now`, authenticates the request,
//! classifies the event and names the pools to tick, as a [`Verdict`] the shells map to an
//! HTTP status. A webhook is only a trigger: the tick still reads the forge's API, so a lost,
//! forged or replayed webhook can make capacity early, never wrong.
//!
//! Shells: [`server`] (`forge-scaler run --webhook-listen`) and [`lambda`] (the Function URL).
//! [`trigger`] is what joins a shell to the run loop (coalescing).

pub mod buildkite;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod lambda;
pub mod server;
pub mod sign;
pub mod trigger;

use crate::config::{Config, ForgeConfig, ForgeKind, PoolConfig};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The largest body accepted; larger ones get 413 (and are not read past this).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The URL path prefix: `POST /webhooks/<forge-name>`.
pub const PATH_PREFIX: &str = "/webhooks/";

/// Request headers, names lowercased (HTTP header names are case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(BTreeMap<String, String>);

impl Headers {
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Headers(pairs.into_iter().map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.as_ref().to_string())).collect())
    }
    /// The value of a header (any case), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(|v| v.trim())
    }
}

/// What a forge's webhook says, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A job waits for an agent. `labels`: what it asks for, in the forge's terms (GitHub and
    /// Gitea/Forgejo `runs-on` labels, GitLab tags, the Buildkite queue); `None` when the
    /// payload does not say (every pool of the forge may take it).
    JobQueued { labels: Option<Vec<String>> },
    /// Anything else (pings, other events, other job states): answered 2xx and ignored.
    Other(String),
}

/// What to do with one webhook request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Tick these pools (names, sorted) now. 202.
    Tick(Vec<String>),
    /// Authentic, but nothing to do (the reason says why). 200.
    Ignore(String),
    /// Missing or wrong signature/token. 401; nothing else happens.
    Unauthorized(&'static str),
    /// The body is over [`MAX_BODY_BYTES`]. 413.
    TooLarge,
    /// No such forge, no `webhook_secret` for it, or its kind sends no job webhooks. 404.
    NotFound(String),
    /// Authentic but not the JSON the forge sends. 400.
    Malformed(String),
}

impl Verdict {
    /// The HTTP status the shells answer with.
    pub fn status(&self) -> u16 {
        match self {
            Verdict::Tick(_) => 202,
            Verdict::Ignore(_) => 200,
            Verdict::Unauthorized(_) => 401,
            Verdict::TooLarge => 413,
            Verdict::NotFound(_) => 404,
            Verdict::Malformed(_) => 400,
        }
    }
    /// A one-line JSON body for the answer (never a secret).
    pub fn body(&self) -> String {
        let (outcome, detail) = match self {
            Verdict::Tick(pools) => ("tick", pools.join(",")),
            Verdict::Ignore(why) => ("ignored", why.clone()),
            Verdict::Unauthorized(why) => ("unauthorized", why.to_string()),
            Verdict::TooLarge => ("too large", format!("the body is over {MAX_BODY_BYTES} bytes")),
            Verdict::NotFound(why) => ("not found", why.clone()),
            Verdict::Malformed(why) => ("malformed", why.clone()),
        };
        serde_json::json!({ "outcome": outcome, "detail": detail }).to_string()
    }
}

/// The forge name in a request path `/webhooks/<forge-name>` (a trailing `/` allowed).
pub fn forge_name_in_path(path: &str) -> Option<&str> {
    let name = path.strip_prefix(PATH_PREFIX)?.trim_end_matches('/');
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Why a forge kind has no webhook endpoint, or `None` when it has one.
pub fn no_job_webhooks(kind: ForgeKind) -> Option<&'static str> {
    match kind {
        ForgeKind::Github | ForgeKind::Gitlab | ForgeKind::Buildkite | ForgeKind::Gitea | ForgeKind::Forgejo => None,
        ForgeKind::Woodpecker => Some("Woodpecker sends no job webhooks; its pools tick on the poll interval"),
        ForgeKind::Drone => Some(
            "Drone's global webhooks (build events signed with HTTP Signatures) are not supported; its pools tick on the poll interval",
        ),
        ForgeKind::Generic => Some("a generic forge has no webhook format; its pools tick on the poll interval"),
    }
}

/// Judges one request to `/webhooks/<forge_name>`: size, forge, authentication, event, pools.
/// `now` is only used for Buildkite's signed timestamp.
pub fn judge(config: &Config, forge_name: &str, headers: &Headers, body: &[u8], now: DateTime<Utc>) -> Verdict {
    if body.len() > MAX_BODY_BYTES {
        return Verdict::TooLarge;
    }
    let Some(forge) = config.forges.get(forge_name) else {
        return Verdict::NotFound(format!("no forge named {forge_name:?}"));
    };
    if let Some(why) = no_job_webhooks(forge.kind) {
        return Verdict::NotFound(format!("forge {forge_name:?}: {why}"));
    }
    let Some(secret) = forge.webhook_secret.as_ref() else {
        return Verdict::NotFound(format!(
            "forge {forge_name:?} has no webhook_secret: set forges/{forge_name}/webhook_secret to accept its webhooks"
        ));
    };
    let secret = secret.expose();
    let authentic = match forge.kind {
        ForgeKind::Github => github::authenticate(secret, headers, body),
        ForgeKind::Gitlab => gitlab::authenticate(secret, headers),
        ForgeKind::Buildkite => buildkite::authenticate(secret, headers, body, now),
        ForgeKind::Gitea | ForgeKind::Forgejo => gitea::authenticate(secret, headers, body),
        _ => Err("no webhook authentication for this forge kind"),
    };
    if let Err(why) = authentic {
        return Verdict::Unauthorized(why);
    }
    let event = match forge.kind {
        ForgeKind::Github => github::classify(forge, headers, body),
        ForgeKind::Gitlab => gitlab::classify(headers, body),
        ForgeKind::Buildkite => buildkite::classify(headers, body),
        _ => gitea::classify(headers, body),
    };
    match event {
        Err(why) => Verdict::Malformed(why),
        Ok(Event::Other(why)) => Verdict::Ignore(why),
        Ok(Event::JobQueued { labels }) => {
            let pools: Vec<String> = config
                .pools
                .iter()
                .filter(|p| p.forge == forge.name && pool_takes(forge, p, labels.as_deref()))
                .map(|p| p.name.clone())
                .collect();
            if pools.is_empty() {
                Verdict::Ignore(format!("no pool of forge {forge_name:?} takes a job asking for {labels:?}"))
            } else {
                Verdict::Tick(pools)
            }
        }
    }
}

/// Whether a pool's agents could take a job asking for `labels`, under the forge's own rule
/// (the same pure rules the adapters use). Unknown labels: yes.
fn pool_takes(forge: &ForgeConfig, pool: &PoolConfig, labels: Option<&[String]>) -> bool {
    let Some(labels) = labels else { return true };
    let pool_labels = pool.labels.clone().unwrap_or_default();
    match forge.kind {
        ForgeKind::Github => crate::forge::github::labels_match(labels, &pool_labels),
        ForgeKind::Gitlab => crate::forge::gitlab::tags_match(labels, &pool_labels, pool.run_untagged),
        ForgeKind::Buildkite => labels.iter().any(|q| q == crate::forge::buildkite::queue_name(pool)),
        ForgeKind::Gitea | ForgeKind::Forgejo => crate::forge::labels::runs_on_matches(
            &crate::forge::labels::runner_label_names(pool.labels.as_deref()),
            labels,
        ),
        _ => false,
    }
}

/// Parses a body as JSON, or says why not (no body content in the message).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not the expected JSON: {e}"))
}

#[cfg(test)]
mod tests;
