//! Configuration: the raw key tree (from SSM parameters or a TOML file) and its validation,
//! once, into a typed `Config`. Every problem is listed at once; nothing past this module
//! sees raw strings. Tokens are `Secret`s that never print.

use crate::policy::{Formula, Policy};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use url::Url;

/// A token. Its `Debug` never shows the value, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for building an auth header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The raw tree: `forges/<name>/<key>`, `pools/<name>/<key>`, `settings/<key>`, all strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    pub forges: BTreeMap<String, BTreeMap<String, String>>,
    pub pools: BTreeMap<String, BTreeMap<String, String>>,
    pub settings: BTreeMap<String, String>,
    /// Problems found while reading the source (misplaced keys, bad TOML types).
    pub read_problems: Vec<Problem>,
}

/// One thing wrong with the configuration, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem in a configuration, listed at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem(s)): ", self.problems.len())?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl RawConfig {
    /// Builds the tree from SSM parameters `(full name, value)` under `prefix`.
    pub fn from_params(prefix: &str, params: impl IntoIterator<Item = (String, String)>) -> Self {
        let prefix = prefix.trim_end_matches('/');
        let mut raw = RawConfig::default();
        for (name, value) in params {
            let rest = name.strip_prefix(prefix).unwrap_or(&name).trim_start_matches('/');
            let parts: Vec<&str> = rest.split('/').collect();
            match parts.as_slice() {
                ["forges", forge, key] if !forge.is_empty() => {
                    raw.forges.entry(forge.to_string()).or_default().insert(key.to_string(), value);
                }
                ["pools", pool, key] if !pool.is_empty() => {
                    raw.pools.entry(pool.to_string()).or_default().insert(key.to_string(), value);
                }
                ["settings", key] => {
                    raw.settings.insert(key.to_string(), value);
                }
                _ => raw.read_problems.push(Problem::new(
                    name.clone(),
                    "unexpected parameter: expected <prefix>/forges/<forge>/<key>, <prefix>/pools/<pool>/<key> or <prefix>/settings/<key>",
                )),
            }
        }
        raw
    }

    /// Parses a TOML file with the same tree. `env` resolves `token_env = "VAR"`.
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            problems: vec![Problem::new("(file)", format!("not valid TOML: {}", e.message()))],
        })?;
        let mut raw = RawConfig::default();
        for (section, value) in table {
            match (section.as_str(), value) {
                ("forges" | "pools", toml::Value::Table(named)) => {
                    for (name, body) in named {
                        let key_base = format!("{section}/{name}");
                        let toml::Value::Table(body) = body else {
                            raw.read_problems.push(Problem::new(key_base, "must be a table"));
                            continue;
                        };
                        let mut map = BTreeMap::new();
                        for (key, v) in body {
                            let full = format!("{key_base}/{key}");
                            if section == "forges" && key == "token_env" {
                                match v.as_str() {
                                    Some(var) => match env(var) {
                                        Some(token) => {
                                            map.insert("token".to_string(), token);
                                        }
                                        None => raw
                                            .read_problems
                                            .push(Problem::new(full, format!("environment variable {var} is not set"))),
                                    },
                                    None => raw.read_problems.push(Problem::new(full, "must be a variable name")),
                                }
                                continue;
                            }
                            match toml_scalar(&v) {
                                Some(s) => {
                                    map.insert(key, s);
                                }
                                None => raw
                                    .read_problems
                                    .push(Problem::new(full, "must be a string, number, boolean or array of strings")),
                            }
                        }
                        if section == "forges" {
                            raw.forges.insert(name, map);
                        } else {
                            raw.pools.insert(name, map);
                        }
                    }
                }
                ("settings", toml::Value::Table(body)) => {
                    for (key, v) in body {
                        match toml_scalar(&v) {
                            Some(s) => {
                                raw.settings.insert(key, s);
                            }
                            None => raw.read_problems.push(Problem::new(format!("settings/{key}"), "must be a scalar")),
                        }
                    }
                }
                (other, _) => raw.read_problems.push(Problem::new(
                    other.to_string(),
                    "unknown section: expected [forges.NAME], [pools.NAME] or [settings]",
                )),
            }
        }
        Ok(raw)
    }

    /// The flat `(relative path, value)` list this tree would be stored as in SSM.
    pub fn to_params(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, keys) in &self.forges {
            for (k, v) in keys {
                out.push((format!("forges/{name}/{k}"), v.clone()));
            }
        }
        for (name, keys) in &self.pools {
            for (k, v) in keys {
                out.push((format!("pools/{name}/{k}"), v.clone()));
            }
        }
        for (k, v) in &self.settings {
            out.push((format!("settings/{k}"), v.clone()));
        }
        out
    }
}

fn toml_scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(|i| i.as_str().map(str::to_string)).collect();
            parts.map(|p| p.join(","))
        }
        _ => None,
    }
}

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

/// One forge connection.
#[derive(Debug, Clone, PartialEq)]
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
}

/// Drone: which runner platform a pool's agents are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DronePlatform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
    pub kernel: Option<String>,
    pub kind: String,
    pub type_: String,
}

impl Default for DronePlatform {
    fn default() -> Self {
        DronePlatform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
            kernel: None,
            kind: "pipeline".into(),
            type_: "docker".into(),
        }
    }
}

/// Where a pool's capacity lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetSpec {
    /// An EC2 Auto Scaling Group.
    Asg { name: String },
    /// A shell command given the planned size (other clouds).
    Command { command: String, size_command: Option<String>, min_instances: u32 },
}

/// How long an idle instance waits before leaving; written to the group's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleTimeout {
    Fixed(Duration),
    /// Computed by the function each tick from recent arrivals.
    Adaptive,
}

/// One pool: a fleet plus the jobs it serves and its tuning.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub name: String,
    pub forge: String,
    pub fleet: FleetSpec,
    /// None: agents without custom labels. Items trimmed, empty ones dropped.
    pub labels: Option<Vec<String>>,
    pub drone: DronePlatform,
    pub run_untagged: bool,
    pub policy: Policy,
    pub idle_timeout: IdleTimeout,
    pub boot_timeout: Duration,
}

impl PoolConfig {
    /// The Auto Scaling Group name, for ASG pools.
    pub fn asg(&self) -> Option<&str> {
        match &self.fleet {
            FleetSpec::Asg { name } => Some(name),
            FleetSpec::Command { .. } => None,
        }
    }
    /// What the pool's capacity is called in reports: the ASG name or `command`.
    pub fn fleet_name(&self) -> &str {
        self.asg().unwrap_or("command")
    }
}

/// Settings of the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub poll_interval: Duration,
    pub loop_budget: Duration,
    pub config_ttl: Duration,
    pub dry_run: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: Duration::from_secs(10),
            loop_budget: Duration::from_secs(50),
            config_ttl: Duration::from_secs(60),
            dry_run: false,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub forges: BTreeMap<String, ForgeConfig>,
    /// Sorted by name: a job two pools could serve counts for the first.
    pub pools: Vec<PoolConfig>,
    pub settings: Settings,
}

const FORGE_KEYS: &[(&str, &[ForgeKind])] = &[
    ("kind", &ForgeKind::ALL),
    ("url", &ForgeKind::ALL),
    ("token", &ForgeKind::ALL),
    ("scope", &[ForgeKind::Forgejo, ForgeKind::Gitea]),
    ("repos", &[ForgeKind::Github]),
    ("projects", &[ForgeKind::Gitlab]),
    ("pending_pointer", &[ForgeKind::Generic]),
    ("running_pointer", &[ForgeKind::Generic]),
    ("auth_header", &[ForgeKind::Generic]),
    ("auth_scheme", &[ForgeKind::Generic]),
    ("max_requests_per_tick", &[ForgeKind::Github, ForgeKind::Gitlab]),
];

const POOL_KEYS: &[&str] = &[
    "forge",
    "asg",
    "labels",
    "os",
    "arch",
    "variant",
    "kernel",
    "kind",
    "type",
    "run_untagged",
    "slots",
    "spare",
    "max_instances",
    "max_step",
    "scale_out_cooldown",
    "idle_timeout",
    "boot_timeout",
    "unschedulable_after",
    "policy",
    "queued_weight",
    "running_weight",
    "multiplier",
    "excess",
    "fleet",
    "command",
    "size_command",
    "min_instances",
];

const SETTINGS_KEYS: &[&str] = &["poll_interval", "loop_budget", "config_ttl", "dry_run"];

/// Collects problems while reading one section's keys.
struct Section<'a> {
    base: String,
    keys: &'a BTreeMap<String, String>,
    problems: &'a mut Vec<Problem>,
}

impl Section<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}/{k}", self.base)
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.keys.get(k).map(|s| s.trim())
    }
    fn problem(&mut self, k: &str, message: impl Into<String>) {
        let key = self.key(k);
        self.problems.push(Problem::new(key, message));
    }
    fn parse<T: FromStr>(&mut self, k: &str, default: T, what: &str) -> T {
        match self.get(k) {
            None => default,
            Some(v) => match v.parse::<T>() {
                Ok(x) => x,
                Err(_) => {
                    self.problem(k, format!("{v:?} is not {what}"));
                    default
                }
            },
        }
    }
    fn opt<T: FromStr>(&mut self, k: &str, what: &str) -> Option<T> {
        let v = self.get(k)?.to_string();
        match v.parse::<T>() {
            Ok(x) => Some(x),
            Err(_) => {
                self.problem(k, format!("{v:?} is not {what}"));
                None
            }
        }
    }
    fn duration(&mut self, k: &str, default: Duration) -> Duration {
        match self.get(k) {
            None => default,
            Some(v) => match humantime::parse_duration(v) {
                Ok(d) => d,
                Err(e) => {
                    let v = v.to_string();
                    self.problem(k, format!("{v:?} is not a duration ({e}); write e.g. \"90s\" or \"10m\""));
                    default
                }
            },
        }
    }
    fn bool(&mut self, k: &str, default: bool) -> bool {
        match self.get(k).map(|s| s.to_ascii_lowercase()) {
            None => default,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => {
                self.problem(k, format!("{v:?} is not true or false"));
                default
            }
        }
    }
    fn list(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).map(split_list)
    }
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

impl Config {
    /// Validates a raw tree, listing every problem at once.
    pub fn validate(raw: &RawConfig) -> Result<Config, ConfigError> {
        let mut problems = raw.read_problems.clone();
        let mut forges = BTreeMap::new();
        for (name, keys) in &raw.forges {
            if let Some(f) = validate_forge(name, keys, &mut problems) {
                forges.insert(name.clone(), f);
            }
        }
        let mut pools = Vec::new();
        for (name, keys) in &raw.pools {
            if let Some(p) = validate_pool(name, keys, raw, &mut problems) {
                pools.push(p);
            }
        }
        if raw.pools.is_empty() {
            problems.push(Problem::new("pools", "no pool configured: add pools/<name>/forge and pools/<name>/asg"));
        }
        let settings = validate_settings(&raw.settings, &mut problems);
        if problems.is_empty() {
            Ok(Config { forges, pools, settings })
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Reads and validates a TOML file's text.
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::validate(&RawConfig::from_toml(text, env)?)
    }

    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }
}

fn validate_forge(name: &str, keys: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Option<ForgeConfig> {
    let mut s = Section { base: format!("forges/{name}"), keys, problems };
    let kind = match s.get("kind") {
        None => {
            s.problem("kind", "missing (one of woodpecker, forgejo, gitea, drone, buildkite, github, gitlab, generic)");
            None
        }
        Some(k) => match k.parse::<ForgeKind>() {
            Ok(k) => Some(k),
            Err(e) => {
                s.problem("kind", e);
                None
            }
        },
    };
    for key in keys.keys() {
        match FORGE_KEYS.iter().find(|(k, _)| k == key) {
            None => s.problem(key, "unknown key"),
            Some((_, kinds)) => {
                if let Some(kind) = kind {
                    if !kinds.contains(&kind) {
                        s.problem(key, format!("not used by {kind} forges"));
                    }
                }
            }
        }
    }
    let kind = kind?;
    let url_text = s.get("url").map(str::to_string).or_else(|| match kind {
        ForgeKind::Buildkite => Some("https://agent.buildkite.com".to_string()),
        ForgeKind::Github => Some("https://api.github.com".to_string()),
        _ => None,
    });
    let url = match url_text {
        None => {
            s.problem("url", "missing: the forge's base URL");
            None
        }
        Some(u) => match Url::parse(&u) {
            Ok(url) if url.scheme() == "http" || url.scheme() == "https" => Some(url),
            Ok(_) => {
                s.problem("url", format!("{u:?} must be an http or https URL"));
                None
            }
            Err(e) => {
                s.problem("url", format!("{u:?} is not a URL: {e}"));
                None
            }
        },
    };
    let token = s.get("token").filter(|t| !t.is_empty()).map(Secret::new);
    if token.is_none() && kind != ForgeKind::Generic {
        s.problem("token", "missing: an API token is required (a SecureString in SSM, or token/token_env in TOML)");
    }
    let scope = match s.get("scope").map(str::to_string) {
        None => Scope::Admin,
        Some(v) => match parse_scope(&v) {
            Some(sc) => sc,
            None => {
                s.problem("scope", format!("{v:?} is not admin, user, org:<org> or repo:<owner>/<repo>"));
                Scope::Admin
            }
        },
    };
    let repos = s.list("repos").unwrap_or_default();
    if kind == ForgeKind::Github {
        if repos.is_empty() {
            s.problem("repos", "missing: GitHub needs a list of owner/repo");
        }
        for r in &repos {
            if r.split('/').count() != 2 || r.split('/').any(str::is_empty) {
                s.problem("repos", format!("{r:?} is not owner/repo"));
            }
        }
    }
    let projects = s.list("projects").unwrap_or_default();
    if kind == ForgeKind::Gitlab && projects.is_empty() {
        s.problem("projects", "missing: GitLab needs a list of project ids or paths");
    }
    let pending_pointer = s.get("pending_pointer").map(str::to_string);
    let running_pointer = s.get("running_pointer").map(str::to_string);
    if kind == ForgeKind::Generic {
        match &pending_pointer {
            None => s.problem("pending_pointer", "missing: a JSON pointer to the pending count, e.g. /queued"),
            Some(p) if !p.starts_with('/') => {
                let p = p.clone();
                s.problem("pending_pointer", format!("{p:?} is not a JSON pointer (it starts with /)"))
            }
            _ => {}
        }
        if let Some(p) = running_pointer.clone().filter(|p| !p.starts_with('/')) {
            s.problem("running_pointer", format!("{p:?} is not a JSON pointer (it starts with /)"));
        }
    }
    let auth_header = s.get("auth_header").unwrap_or("Authorization").to_string();
    let auth_scheme = s.get("auth_scheme").unwrap_or("Bearer").to_string();
    let max_requests_per_tick = s.parse("max_requests_per_tick", 50u32, "a whole number");
    if max_requests_per_tick == 0 {
        s.problem("max_requests_per_tick", "must be at least 1");
    }
    Some(ForgeConfig {
        name: name.to_string(),
        kind,
        url: url?,
        token,
        scope,
        repos,
        projects,
        pending_pointer,
        running_pointer,
        auth_header,
        auth_scheme,
        max_requests_per_tick,
    })
}

fn parse_scope(v: &str) -> Option<Scope> {
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

fn validate_pool(
    name: &str,
    keys: &BTreeMap<String, String>,
    raw: &RawConfig,
    problems: &mut Vec<Problem>,
) -> Option<PoolConfig> {
    let mut s = Section { base: format!("pools/{name}"), keys, problems };
    for key in keys.keys() {
        if !POOL_KEYS.contains(&key.as_str()) {
            s.problem(key, "unknown key");
        }
    }
    let forge = match s.get("forge") {
        None => {
            s.problem("forge", "missing: the name of a forge under forges/");
            None
        }
        Some(f) if !raw.forges.contains_key(f) => {
            let f = f.to_string();
            let known: Vec<&str> = raw.forges.keys().map(String::as_str).collect();
            s.problem("forge", format!("names unknown forge {f:?} (configured: {})", known.join(", ")));
            None
        }
        Some(f) => Some(f.to_string()),
    };
    let forge_kind = forge
        .as_ref()
        .and_then(|f| raw.forges.get(f))
        .and_then(|f| f.get("kind"))
        .and_then(|k| k.parse::<ForgeKind>().ok());
    for (key, only) in [
        ("os", ForgeKind::Drone),
        ("arch", ForgeKind::Drone),
        ("variant", ForgeKind::Drone),
        ("kernel", ForgeKind::Drone),
        ("kind", ForgeKind::Drone),
        ("type", ForgeKind::Drone),
        ("run_untagged", ForgeKind::Gitlab),
    ] {
        if let Some(kind) = forge_kind {
            if keys.contains_key(key) && kind != only {
                s.problem(key, format!("only used by {only} pools, this pool's forge is {kind}"));
            }
        }
    }

    let slots = s.parse("slots", 1u32, "a whole number");
    if slots == 0 {
        s.problem("slots", "must be at least 1 (jobs one instance runs at once)");
    }
    let spare = s.parse("spare", 0u32, "a whole number");
    let max_instances: Option<u32> = s.opt("max_instances", "a whole number");
    let max_step: Option<u32> = s.opt("max_step", "a whole number");
    if max_step == Some(0) {
        s.problem("max_step", "must be at least 1 (or absent for no limit)");
    }
    let scale_out_cooldown = s.duration("scale_out_cooldown", Duration::ZERO);
    let unschedulable_after = s.duration("unschedulable_after", crate::policy::default_unschedulable_after());
    let boot_timeout = s.duration("boot_timeout", crate::policy::default_boot_timeout());
    let idle_timeout = match s.get("idle_timeout") {
        Some("adaptive") => IdleTimeout::Adaptive,
        _ => IdleTimeout::Fixed(s.duration("idle_timeout", Duration::from_secs(600))),
    };
    let formula = match s.get("policy").unwrap_or("default") {
        "default" => {
            for k in ["queued_weight", "running_weight", "multiplier", "excess"] {
                if keys.contains_key(k) {
                    s.problem(k, "only used with policy = vespene");
                }
            }
            Formula::Default
        }
        "vespene" => {
            let mut weight = |k: &str, default: f64| {
                let w: f64 = s.parse(k, default, "a number");
                if !w.is_finite() || w < 0.0 {
                    s.problem(k, "must be a finite number >= 0");
                }
                w
            };
            Formula::Vespene {
                queued_weight: weight("queued_weight", 1.0),
                running_weight: weight("running_weight", 1.0),
                multiplier: weight("multiplier", 1.0),
                excess: weight("excess", 0.0),
            }
        }
        other => {
            let other = other.to_string();
            s.problem("policy", format!("{other:?} is not default or vespene"));
            Formula::Default
        }
    };
    let fleet = match s.get("fleet").unwrap_or("asg") {
        "asg" => {
            for k in ["command", "size_command", "min_instances"] {
                if keys.contains_key(k) {
                    s.problem(k, "only used with fleet = command");
                }
            }
            match s.get("asg").filter(|a| !a.is_empty()) {
                Some(a) => Some(FleetSpec::Asg { name: a.to_string() }),
                None => {
                    s.problem("asg", "missing: the Auto Scaling Group's name");
                    None
                }
            }
        }
        "command" => {
            if keys.contains_key("asg") {
                s.problem("asg", "not used with fleet = command");
            }
            if max_instances.is_none() {
                s.problem("max_instances", "required with fleet = command (the command fleet's ceiling)");
            }
            let min_instances = s.parse("min_instances", 0u32, "a whole number");
            if let Some(max) = max_instances {
                if min_instances > max {
                    s.problem("min_instances", format!("{min_instances} is above max_instances {max}"));
                }
            }
            match s.get("command").filter(|c| !c.is_empty()) {
                Some(c) => Some(FleetSpec::Command {
                    command: c.to_string(),
                    size_command: s.get("size_command").filter(|c| !c.is_empty()).map(str::to_string),
                    min_instances,
                }),
                None => {
                    s.problem("command", "missing: the command that sets the fleet's size");
                    None
                }
            }
        }
        other => {
            let other = other.to_string();
            s.problem("fleet", format!("{other:?} is not asg or command"));
            None
        }
    };
    let defaults = DronePlatform::default();
    let drone = DronePlatform {
        os: s.get("os").unwrap_or(&defaults.os).to_string(),
        arch: s.get("arch").unwrap_or(&defaults.arch).to_string(),
        variant: s.get("variant").map(str::to_string),
        kernel: s.get("kernel").map(str::to_string),
        kind: s.get("kind").unwrap_or(&defaults.kind).to_string(),
        type_: s.get("type").unwrap_or(&defaults.type_).to_string(),
    };
    let run_untagged = s.bool("run_untagged", false);
    let labels = s.list("labels");
    Some(PoolConfig {
        name: name.to_string(),
        forge: forge?,
        fleet: fleet?,
        labels,
        drone,
        run_untagged,
        policy: Policy {
            slots,
            spare,
            max_instances,
            max_step,
            scale_out_cooldown,
            unschedulable_after,
            boot_timeout,
            formula,
        },
        idle_timeout,
        boot_timeout,
    })
}

fn validate_settings(keys: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Settings {
    let mut s = Section { base: "settings".to_string(), keys, problems };
    for key in keys.keys() {
        if !SETTINGS_KEYS.contains(&key.as_str()) {
            s.problem(key, "unknown key");
        }
    }
    let d = Settings::default();
    let settings = Settings {
        poll_interval: s.duration("poll_interval", d.poll_interval),
        loop_budget: s.duration("loop_budget", d.loop_budget),
        config_ttl: s.duration("config_ttl", d.config_ttl),
        dry_run: s.bool("dry_run", d.dry_run),
    };
    if settings.poll_interval.is_zero() {
        s.problem("poll_interval", "must be longer than 0s");
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[forges.wp]
kind = "woodpecker"
url = "https://ci.example.com"
token = "s3cr3t-token"

[pools.linux]
forge = "wp"
asg = "ci-linux"
labels = ["platform=linux/amd64", "gpu=false"]
slots = 2
spare = 1
max_step = 3
scale_out_cooldown = "30s"

[settings]
poll_interval = "5s"
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_good_file_validates_with_defaults() {
        let c = Config::from_toml(GOOD, no_env).unwrap();
        let pool = c.pool("linux").unwrap();
        assert_eq!(pool.policy.slots, 2);
        assert_eq!(pool.policy.spare, 1);
        assert_eq!(pool.policy.max_step, Some(3));
        assert_eq!(pool.policy.scale_out_cooldown, Duration::from_secs(30));
        assert_eq!(pool.labels.as_deref(), Some(&["platform=linux/amd64".to_string(), "gpu=false".to_string()][..]));
        assert_eq!(pool.idle_timeout, IdleTimeout::Fixed(Duration::from_secs(600)));
        assert_eq!(pool.boot_timeout, Duration::from_secs(600));
        assert_eq!(pool.asg(), Some("ci-linux"));
        assert_eq!(c.settings.poll_interval, Duration::from_secs(5));
        assert_eq!(c.settings.loop_budget, Duration::from_secs(50));
        assert_eq!(c.forges["wp"].scope, Scope::Admin);
    }

    #[test]
    fn token_never_prints() {
        let c = Config::from_toml(GOOD, no_env).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t-token"), "{debug}");
        assert!(debug.contains("Secret(***)"));
    }

    #[test]
    fn token_env_is_resolved() {
        let text = GOOD.replace("token = \"s3cr3t-token\"", "token_env = \"WP_TOKEN\"");
        let c = Config::from_toml(&text, |v| (v == "WP_TOKEN").then(|| "from-env".to_string())).unwrap();
        assert_eq!(c.forges["wp"].token.as_ref().unwrap().expose(), "from-env");
        let err = Config::from_toml(&text, no_env).unwrap_err();
        assert!(err.to_string().contains("forges/wp/token_env: environment variable WP_TOKEN is not set"), "{err}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let text = r#"
[forges.wp]
kind = "jenkins"
[forges.fj]
kind = "forgejo"
url = "https://code.example.com"
[pools.a]
forge = "nope"
asg = "g"
slots = 0
idle_timeout = "ten minutes"
colour = "blue"
"#;
        let err = Config::from_toml(text, no_env).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"forges/wp/kind"), "{err}");
        assert!(keys.contains(&"forges/fj/token"), "{err}");
        assert!(keys.contains(&"pools/a/forge"), "{err}");
        assert!(keys.contains(&"pools/a/slots"), "{err}");
        assert!(keys.contains(&"pools/a/idle_timeout"), "{err}");
        assert!(keys.contains(&"pools/a/colour"), "{err}");
        let line = err.to_string();
        assert!(!line.contains('\n'));
        assert!(line.contains("pools/a/slots: must be at least 1"));
        assert!(line.contains("pools/a/forge: names unknown forge \"nope\""));
    }

    #[test]
    fn ssm_params_build_the_same_tree() {
        let params = vec![
            ("/ci/forges/wp/kind".to_string(), "woodpecker".to_string()),
            ("/ci/forges/wp/url".to_string(), "https://ci.example.com".to_string()),
            ("/ci/forges/wp/token".to_string(), "t".to_string()),
            ("/ci/pools/linux/forge".to_string(), "wp".to_string()),
            ("/ci/pools/linux/asg".to_string(), "ci-linux".to_string()),
            ("/ci/settings/dry_run".to_string(), "true".to_string()),
        ];
        let raw = RawConfig::from_params("/ci/", params);
        let c = Config::validate(&raw).unwrap();
        assert!(c.settings.dry_run);
        assert_eq!(c.pools[0].forge, "wp");
        let round = RawConfig::from_params("/ci", raw.to_params().into_iter().map(|(k, v)| (format!("/ci/{k}"), v)));
        assert_eq!(round.forges, raw.forges);
    }

    #[test]
    fn misplaced_parameter_is_a_problem() {
        let raw = RawConfig::from_params("/ci", vec![("/ci/pools/linux".to_string(), "x".to_string())]);
        let err = Config::validate(&raw).unwrap_err();
        assert!(err.problems.iter().any(|p| p.key == "/ci/pools/linux"), "{err}");
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(parse_scope("org:acme"), Some(Scope::Org("acme".into())));
        assert_eq!(parse_scope("repo:acme/app"), Some(Scope::Repo { owner: "acme".into(), repo: "app".into() }));
        assert_eq!(parse_scope("user"), Some(Scope::User));
        assert_eq!(parse_scope("repo:acme"), None);
        assert_eq!(parse_scope("org:"), None);
    }

    #[test]
    fn command_fleet_needs_max_instances_and_command() {
        let text = r#"
[forges.wp]
kind = "woodpecker"
url = "http://127.0.0.1:1"
token = "t"
[pools.hz]
forge = "wp"
fleet = "command"
"#;
        let err = Config::from_toml(text, no_env).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"pools/hz/max_instances"), "{err}");
        assert!(keys.contains(&"pools/hz/command"), "{err}");
    }

    #[test]
    fn vespene_weights_and_adaptive_idle() {
        let text = GOOD
            .replace("spare = 1", "policy = \"vespene\"\nrunning_weight = 0.5\nidle_timeout = \"adaptive\"")
            .replace("spare = 1\n", "");
        let c = Config::from_toml(&text, no_env).unwrap();
        let pool = c.pool("linux").unwrap();
        assert_eq!(pool.idle_timeout, IdleTimeout::Adaptive);
        assert!(matches!(pool.policy.formula, Formula::Vespene { running_weight, .. } if running_weight == 0.5));
    }

    #[test]
    fn drone_keys_on_a_woodpecker_pool_are_a_problem() {
        let text = GOOD.replace("slots = 2", "slots = 2\nos = \"windows\"");
        let err = Config::from_toml(&text, no_env).unwrap_err();
        assert!(err.to_string().contains("pools/linux/os: only used by drone pools"), "{err}");
    }
}
