//! Forge sections (`forges/<forge>/<key>`): the forge kinds, the forge keys' registry (name,
//! kinds that use it, default, doc and parser in one entry) and validation into `ForgeConfig`.

use super::keys::{parse_bytes, Applies, Context, Key, Reader};
use super::{Problem, Secret};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use url::Url;

/// The forges we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ForgeKind {
    Woodpecker,
    Forgejo,
    Gitea,
    Drone,
    Buildkite,
    Github,
    Gitlab,
    Generic,
}

impl ForgeKind {
    pub const ALL: [ForgeKind; 8] = [
        ForgeKind::Woodpecker,
        ForgeKind::Forgejo,
        ForgeKind::Gitea,
        ForgeKind::Drone,
        ForgeKind::Buildkite,
        ForgeKind::Github,
        ForgeKind::Gitlab,
        ForgeKind::Generic,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Woodpecker => "woodpecker",
            ForgeKind::Forgejo => "forgejo",
            ForgeKind::Gitea => "gitea",
            ForgeKind::Drone => "drone",
            ForgeKind::Buildkite => "buildkite",
            ForgeKind::Github => "github",
            ForgeKind::Gitlab => "gitlab",
            ForgeKind::Generic => "generic",
        }
    }
}

impl FromStr for ForgeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ForgeKind::ALL.into_iter().find(|k| k.as_str() == s.trim().to_ascii_lowercase()).ok_or_else(|| {
            let names: Vec<&str> = ForgeKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown forge kind {s:?} (expected one of {})", names.join(", "))
        })
    }
}

impl fmt::Display for ForgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Forgejo/Gitea: whose jobs the token reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Org(String),
    Repo { owner: String, repo: String },
    User,
}

/// One forge connection. Its `Debug` shows the URL redacted (no userinfo, no query value)
/// and never a secret.
#[derive(Clone, PartialEq)]
pub struct ForgeConfig {
    pub name: String,
    pub kind: ForgeKind,
    pub url: Url,
    pub token: Option<Secret>,
    pub scope: Scope,
    /// GitHub: `owner/repo` list.
    pub repos: Vec<String>,
    /// GitLab: project ids or url-encoded paths.
    pub projects: Vec<String>,
    /// Generic: JSON pointers to the pending and running counts.
    pub pending_pointer: Option<String>,
    pub running_pointer: Option<String>,
    /// Generic: auth header name and scheme.
    pub auth_header: String,
    pub auth_scheme: String,
    /// GitHub/GitLab: most HTTP requests one tick may spend on this forge.
    pub max_requests_per_tick: u32,
    /// Most bytes one response body of this forge may have; a longer body is an error for
    /// the pools it serves.
    pub max_response_bytes: u64,
    /// The secret the forge signs its webhooks with (enables `/webhooks/<forge>`).
    pub webhook_secret: Option<Secret>,
}

impl std::fmt::Debug for ForgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &crate::redact::redact(&self.url))
            .field("token", &self.token)
            .field("scope", &self.scope)
            .field("repos", &self.repos)
            .field("projects", &self.projects)
            .field("pending_pointer", &self.pending_pointer)
            .field("running_pointer", &self.running_pointer)
            .field("auth_header", &self.auth_header)
            .field("max_requests_per_tick", &self.max_requests_per_tick)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("webhook_secret", &self.webhook_secret)
            .finish_non_exhaustive()
    }
}

/// Forge keys holding secrets: SecureStrings in SSM, `<key>_env = "VAR"` allowed in TOML.
pub const SECRET_KEYS: &[&str] = &["token", "webhook_secret"];

/// The default cap on one forge response body (8 MiB): `forges/<forge>/max_response_bytes`.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// The smallest `max_response_bytes` accepted: below it no forge's error body even fits.
pub const MIN_RESPONSE_BYTES: u64 = 1024;

/// A forge section as its keys are read; starts from the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ForgeDraft {
    pub url: Option<String>,
    pub token: Option<Secret>,
    pub scope: Scope,
    pub repos: Vec<String>,
    pub projects: Vec<String>,
    pub pending_pointer: Option<String>,
    pub running_pointer: Option<String>,
    pub auth_header: String,
    pub auth_scheme: String,
    pub max_requests_per_tick: u32,
    pub max_response_bytes: u64,
    pub webhook_secret: Option<Secret>,
}

impl Default for ForgeDraft {
    fn default() -> Self {
        ForgeDraft {
            url: None,
            token: None,
            scope: Scope::Admin,
            repos: Vec::new(),
            projects: Vec::new(),
            pending_pointer: None,
            running_pointer: None,
            auth_header: "Authorization".to_string(),
            auth_scheme: "Bearer".to_string(),
            max_requests_per_tick: 50,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            webhook_secret: None,
        }
    }
}

const KIND_NAMES: &str = "woodpecker, forgejo, gitea, drone, buildkite, github, gitlab, generic";
const FORGEJO_GITEA: &[ForgeKind] = &[ForgeKind::Forgejo, ForgeKind::Gitea];
const GITHUB_GITLAB: &[ForgeKind] = &[ForgeKind::Github, ForgeKind::Gitlab];

/// Every forge key. `kind` is read before the others (it decides which apply).
pub const FORGE_KEYS: &[Key<ForgeDraft>] = &[
    Key {
        name: "kind",
        applies: Applies::Always,
        default: "",
        doc: "woodpecker | forgejo | gitea | drone | buildkite | github | gitlab | generic (required)",
        read: |_, _| {},
    },
    Key {
        name: "url",
        applies: Applies::Always,
        default: "",
        doc: "the forge's base URL (Buildkite default https://agent.buildkite.com, GitHub https://api.github.com)",
        read: |r, d| d.url = Some(r.text().to_string()),
    },
    Key {
        name: "token",
        applies: Applies::Always,
        default: "",
        doc: "API token, a SecureString (TOML: token or token_env); required except for generic",
        read: |r, d| d.token = Some(r.text()).filter(|t| !t.is_empty()).map(Secret::new),
    },
    Key {
        name: "scope",
        applies: Applies::ForgeKinds(FORGEJO_GITEA),
        default: "admin",
        doc: "whose jobs the token reads: admin | user | org:<org> | repo:<owner>/<repo>",
        read: |r, d| match parse_scope(r.text()) {
            Some(scope) => d.scope = scope,
            None => {
                let v = r.text();
                r.problem(format!("{v:?} is not admin, user, org:<org> or repo:<owner>/<repo>"))
            }
        },
    },
    Key {
        name: "repos",
        applies: Applies::ForgeKinds(&[ForgeKind::Github]),
        default: "",
        doc: "owner/repo list (required)",
        read: |r, d| {
            d.repos = r.list();
            for repo in d.repos.clone() {
                if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
                    r.problem(format!("{repo:?} is not owner/repo"));
                }
            }
        },
    },
    Key {
        name: "projects",
        applies: Applies::ForgeKinds(&[ForgeKind::Gitlab]),
        default: "",
        doc: "project ids or url-encoded paths (required)",
        read: |r, d| d.projects = r.list(),
    },
    Key {
        name: "pending_pointer",
        applies: Applies::ForgeKinds(&[ForgeKind::Generic]),
        default: "",
        doc: "JSON pointer to the pending count, e.g. /queued (required)",
        read: |r, d| d.pending_pointer = json_pointer(r),
    },
    Key {
        name: "running_pointer",
        applies: Applies::ForgeKinds(&[ForgeKind::Generic]),
        default: "",
        doc: "JSON pointer to the running count",
        read: |r, d| d.running_pointer = json_pointer(r),
    },
    Key {
        name: "auth_header",
        applies: Applies::ForgeKinds(&[ForgeKind::Generic]),
        default: "Authorization",
        doc: "the header carrying the token",
        read: |r, d| d.auth_header = r.text().to_string(),
    },
    Key {
        name: "auth_scheme",
        applies: Applies::ForgeKinds(&[ForgeKind::Generic]),
        default: "Bearer",
        doc: "the word before the token in that header",
        read: |r, d| d.auth_scheme = r.text().to_string(),
    },
    Key {
        name: "max_requests_per_tick",
        applies: Applies::ForgeKinds(GITHUB_GITLAB),
        default: "50",
        doc: "most HTTP requests one tick may spend on this forge (>= 1)",
        read: |r, d| match r.parse::<u32>("a whole number") {
            Some(0) => r.problem("must be at least 1"),
            Some(n) => d.max_requests_per_tick = n,
            None => {}
        },
    },
    Key {
        name: "max_response_bytes",
        applies: Applies::Always,
        default: "8MiB",
        doc: "cap on one response body (bytes, or with KiB/MiB/GiB; >= 1024); over it the pool errors",
        read: |r, d| match parse_bytes(r.text()) {
            Ok(n) if n < MIN_RESPONSE_BYTES => r.problem(format!("{n} is below the minimum {MIN_RESPONSE_BYTES}")),
            Ok(n) => d.max_response_bytes = n,
            Err(e) => {
                let v = r.text();
                r.problem(format!("{v:?} is not a byte count: {e}"))
            }
        },
    },
    Key {
        name: "webhook_secret",
        applies: Applies::Always,
        default: "",
        doc: "the forge's webhook signing secret, a SecureString (TOML: webhook_secret or webhook_secret_env)",
        read: |r, d| d.webhook_secret = Some(r.text()).filter(|t| !t.is_empty()).map(Secret::new),
    },
];

/// A pointer that must start with `/`; a problem (and `None`) otherwise.
fn json_pointer(r: &mut Reader<'_>) -> Option<String> {
    let p = r.text().to_string();
    if !p.starts_with('/') {
        r.problem(format!("{p:?} is not a JSON pointer (it starts with /)"));
        return None;
    }
    Some(p)
}

pub(crate) fn parse_scope(v: &str) -> Option<Scope> {
    match v {
        "admin" => Some(Scope::Admin),
        "user" => Some(Scope::User),
        _ => {
            if let Some(org) = v.strip_prefix("org:").filter(|o| !o.is_empty() && !o.contains('/')) {
                Some(Scope::Org(org.to_string()))
            } else if let Some(r) = v.strip_prefix("repo:") {
                let (owner, repo) = r.split_once('/')?;
                (!owner.is_empty() && !repo.is_empty() && !repo.contains('/'))
                    .then(|| Scope::Repo { owner: owner.into(), repo: repo.into() })
            } else {
                None
            }
        }
    }
}

/// The URL a forge kind is reached at when `url` is not given.
fn default_url(kind: ForgeKind) -> Option<&'static str> {
    match kind {
        ForgeKind::Buildkite => Some("https://agent.buildkite.com"),
        ForgeKind::Github => Some("https://api.github.com"),
        _ => None,
    }
}

/// The kind of a raw forge section, when it names a valid one.
pub(crate) fn raw_kind(keys: &BTreeMap<String, String>) -> Option<ForgeKind> {
    keys.get("kind").and_then(|k| k.parse().ok())
}

pub(crate) fn validate_forge(
    name: &str,
    keys: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) -> Option<ForgeConfig> {
    let mut r = Reader::new(format!("forges/{name}"), keys, problems);
    let kind = match r.get("kind") {
        None => {
            r.problem_at("kind", format!("missing (one of {KIND_NAMES})"));
            None
        }
        Some(k) => match k.parse::<ForgeKind>() {
            Ok(k) => Some(k),
            Err(e) => {
                r.problem_at("kind", e);
                None
            }
        },
    };
    let mut d = ForgeDraft::default();
    r.read_keys(FORGE_KEYS, &Context { forge_kind: kind, ..Context::default() }, &mut d);
    let kind = kind?;
    let url = forge_url(&mut r, kind, d.url.as_deref());
    check_required(&mut r, kind, &d);
    Some(ForgeConfig {
        name: name.to_string(),
        kind,
        url: url?,
        token: d.token,
        scope: d.scope,
        repos: d.repos,
        projects: d.projects,
        pending_pointer: d.pending_pointer,
        running_pointer: d.running_pointer,
        auth_header: d.auth_header,
        auth_scheme: d.auth_scheme,
        max_requests_per_tick: d.max_requests_per_tick,
        max_response_bytes: d.max_response_bytes,
        webhook_secret: d.webhook_secret,
    })
}

/// The forge's base URL: given or the kind's default, http or https.
fn forge_url(r: &mut Reader<'_>, kind: ForgeKind, given: Option<&str>) -> Option<Url> {
    let Some(text) = given.or(default_url(kind)) else {
        r.problem_at("url", "missing: the forge's base URL");
        return None;
    };
    match Url::parse(text) {
        Ok(url) if url.scheme() == "http" || url.scheme() == "https" => Some(url),
        Ok(_) => {
            r.problem_at("url", format!("{:?} must be an http or https URL", crate::redact::redact_url(text)));
            None
        }
        Err(e) => {
            r.problem_at("url", format!("{:?} is not a URL: {e}", crate::redact::redact_url(text)));
            None
        }
    }
}

/// Keys a kind cannot do without. A token whose `token_env` already failed is not reported
/// a second time.
fn check_required(r: &mut Reader<'_>, kind: ForgeKind, d: &ForgeDraft) {
    let token_env_failed = r.has_problem(&r.full_key("token_env"));
    if d.token.is_none() && kind != ForgeKind::Generic && !token_env_failed {
        r.problem_at("token", "missing: an API token is required (a SecureString in SSM, or token/token_env in TOML)");
    }
    if kind == ForgeKind::Github && d.repos.is_empty() && !r.has("repos") {
        r.problem_at("repos", "missing: GitHub needs a list of owner/repo");
    } else if kind == ForgeKind::Github && d.repos.is_empty() {
        r.problem_at("repos", "is empty: GitHub needs a list of owner/repo");
    }
    if kind == ForgeKind::Gitlab && d.projects.is_empty() {
        r.problem_at("projects", "missing: GitLab needs a list of project ids or paths");
    }
    if kind == ForgeKind::Generic && d.pending_pointer.is_none() && !r.has("pending_pointer") {
        r.problem_at("pending_pointer", "missing: a JSON pointer to the pending count, e.g. /queued");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forge_url_with_credentials_never_shows_them() {
        let text = "[forges.wp]\nkind = \"woodpecker\"\nurl = \"https://u:PASSWORD1@ci.example/?api_key=SECRET2\"\ntoken = \"TOKEN3\"\n[pools.p]\nforge = \"wp\"\nasg = \"g\"\n";
        let config = crate::config::Config::from_toml(text, |_| None).unwrap();
        let debug = format!("{:?}", config.forges["wp"]);
        for secret in ["PASSWORD1", "SECRET2", "TOKEN3"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let bad = "[forges.wp]\nkind = \"woodpecker\"\nurl = \"ftp://u:PASSWORD1@ci.example/?api_key=SECRET2\"\ntoken = \"t\"\n";
        let err = crate::config::Config::from_toml(bad, |_| None).unwrap_err().to_string();
        assert!(err.contains("forges/wp/url") && !err.contains("PASSWORD1") && !err.contains("SECRET2"), "{err}");
    }
    use crate::config::keys::defaults_that_disagree;
    use crate::config::test_support::{forge_table, no_env, problems};
    use crate::config::Config;

    /// A forge `f` of this kind with these extra lines, and one pool on it.
    fn forge(kind: &str, lines: &str) -> Result<Config, crate::config::ConfigError> {
        let text = format!("{}{lines}\n[pools.p]\nforge = \"f\"\nasg = \"ci-p\"\n", forge_table(kind));
        Config::from_toml(&text, no_env)
    }

    #[test]
    fn every_documented_forge_default_is_what_a_missing_key_gets() {
        assert_eq!(defaults_that_disagree(FORGE_KEYS), Vec::<&str>::new());
    }

    #[test]
    fn max_response_bytes_defaults_to_8_mib() {
        let c = forge("woodpecker", "").unwrap();
        assert_eq!(c.forges["f"].max_response_bytes, 8_388_608);
    }

    #[test]
    fn max_response_bytes_takes_plain_numbers_and_binary_units() {
        assert_eq!(forge("gitea", "max_response_bytes = 1048576").unwrap().forges["f"].max_response_bytes, 1 << 20);
        assert_eq!(
            forge("github", "max_response_bytes = \"512KiB\"").unwrap().forges["f"].max_response_bytes,
            512 << 10
        );
        assert_eq!(forge("generic", "max_response_bytes = \"1024\"").unwrap().forges["f"].max_response_bytes, 1024);
    }

    #[test]
    fn max_response_bytes_below_1024_or_not_a_count_is_a_problem() {
        assert_eq!(
            problems(forge("woodpecker", "max_response_bytes = 1023")),
            ["forges/f/max_response_bytes: 1023 is below the minimum 1024"]
        );
        let found = problems(forge("woodpecker", "max_response_bytes = \"8MB\""));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("forges/f/max_response_bytes: \"8MB\" is not a byte count: unknown unit"),
            "{found:?}"
        );
    }

    #[test]
    fn a_webhook_secret_is_read_and_never_printed() {
        let c = forge("github", "webhook_secret = \"hook-s3cr3t\"").unwrap();
        assert_eq!(c.forges["f"].webhook_secret.as_ref().map(Secret::expose), Some("hook-s3cr3t"));
        let debug = format!("{c:?}");
        assert!(!debug.contains("hook-s3cr3t"), "{debug}");
        assert_eq!(forge("github", "").unwrap().forges["f"].webhook_secret, None);
    }

    #[test]
    fn a_webhook_secret_can_come_from_the_environment() {
        let text = format!(
            "{}webhook_secret_env = \"HOOK\"\n[pools.p]\nforge = \"f\"\nasg = \"ci-p\"\n",
            forge_table("gitlab")
        );
        let c = Config::from_toml(&text, |v| (v == "HOOK").then(|| "from-env".to_string())).unwrap();
        assert_eq!(c.forges["f"].webhook_secret.as_ref().map(Secret::expose), Some("from-env"));
    }

    #[test]
    fn a_key_of_another_forge_kind_is_a_problem() {
        assert_eq!(problems(forge("woodpecker", "repos = \"a/b\"")), ["forges/f/repos: not used by woodpecker forges"]);
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(parse_scope("org:acme"), Some(Scope::Org("acme".into())));
        assert_eq!(parse_scope("repo:acme/app"), Some(Scope::Repo { owner: "acme".into(), repo: "app".into() }));
        assert_eq!(parse_scope("user"), Some(Scope::User));
        assert_eq!(parse_scope("repo:acme"), None);
        assert_eq!(parse_scope("org:"), None);
    }
}
