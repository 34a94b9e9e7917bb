//! Pool sections (`pools/<pool>/<key>`): the pool keys' registry (name, where it applies,
//! default, doc and parser in one entry) and validation into `PoolConfig`, split by concern:
//! the forge it reads, its fleet, its labels, its formula. Tuning defaults come from
//! `Policy::default()` and `DronePlatform::default()`; nothing here repeats them.

use super::forge::{raw_kind, ForgeKind};
use super::keys::{Applies, Context, Key, Reader};
use super::{Problem, RawConfig};
use crate::forge::labels;
use crate::policy::{Formula, Policy};
use std::collections::BTreeMap;
use std::time::Duration;

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

/// The idle timeout of a pool that does not set one. (The boot timeout's default is
/// `Policy::default().boot_timeout`: the planner uses it too.)
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Which kind of fleet the `fleet` key chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetKind {
    Asg,
    Command,
    /// The key named something else (already a problem).
    Invalid,
}

/// The Vespene formula's weights (its stock defaults 1, 1, 1, 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VespeneWeights {
    pub queued_weight: f64,
    pub running_weight: f64,
    pub multiplier: f64,
    pub excess: f64,
}

impl Default for VespeneWeights {
    fn default() -> Self {
        VespeneWeights { queued_weight: 1.0, running_weight: 1.0, multiplier: 1.0, excess: 0.0 }
    }
}

/// A pool section as its keys are read; starts from the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolDraft {
    pub forge: Option<String>,
    pub fleet: FleetKind,
    pub asg: Option<String>,
    pub command: Option<String>,
    pub size_command: Option<String>,
    pub min_instances: u32,
    pub labels: Option<Vec<String>>,
    pub drone: DronePlatform,
    pub run_untagged: bool,
    pub policy: Policy,
    pub vespene: bool,
    pub weights: VespeneWeights,
    pub idle_timeout: IdleTimeout,
}

impl Default for PoolDraft {
    fn default() -> Self {
        PoolDraft {
            forge: None,
            fleet: FleetKind::Asg,
            asg: None,
            command: None,
            size_command: None,
            min_instances: 0,
            labels: None,
            drone: DronePlatform::default(),
            run_untagged: false,
            policy: Policy::default(),
            vespene: false,
            weights: VespeneWeights::default(),
            idle_timeout: IdleTimeout::Fixed(DEFAULT_IDLE_TIMEOUT),
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    Some(text.to_string()).filter(|t| !t.is_empty())
}

const DRONE: &[ForgeKind] = &[ForgeKind::Drone];

/// Every pool key.
pub const POOL_KEYS: &[Key<PoolDraft>] = &[
    // Which jobs and which fleet.
    Key {
        name: "forge",
        applies: Applies::Always,
        default: "",
        doc: "a forge name under forges/ (required)",
        read: |r, d| d.forge = Some(r.text().to_string()),
    },
    Key {
        name: "fleet",
        applies: Applies::Always,
        default: "asg",
        doc: "asg | command",
        read: |r, d| {
            d.fleet = match r.text() {
                "asg" => FleetKind::Asg,
                "command" => FleetKind::Command,
                other => {
                    r.problem(format!("{other:?} is not asg or command"));
                    FleetKind::Invalid
                }
            }
        },
    },
    Key {
        name: "asg",
        applies: Applies::AsgFleet,
        default: "",
        doc: "the Auto Scaling Group's name (required with fleet = asg)",
        read: |r, d| d.asg = non_empty(r.text()),
    },
    Key {
        name: "command",
        applies: Applies::CommandFleet,
        default: "",
        doc: "command fleet: sets the size (env FORGE_SCALER_POOL, FORGE_SCALER_SIZE, FORGE_SCALER_QUEUED)",
        read: |r, d| d.command = non_empty(r.text()),
    },
    Key {
        name: "size_command",
        applies: Applies::CommandFleet,
        default: "",
        doc: "command fleet: prints the current size",
        read: |r, d| d.size_command = non_empty(r.text()),
    },
    Key {
        name: "min_instances",
        applies: Applies::CommandFleet,
        default: "0",
        doc: "command fleet: its floor (its ceiling is max_instances)",
        read: |r, d| d.min_instances = r.parse("a whole number").unwrap_or(d.min_instances),
    },
    Key {
        name: "labels",
        applies: Applies::Always,
        default: "",
        doc: "the agents' labels, comma-separated (absent: agents without custom labels)",
        read: |r, d| d.labels = Some(r.list()),
    },
    // Drone's platform and GitLab's untagged jobs.
    Key {
        name: "os",
        applies: Applies::PoolsOf(DRONE),
        default: "linux",
        doc: "the runners' os",
        read: |r, d| d.drone.os = r.text().to_string(),
    },
    Key {
        name: "arch",
        applies: Applies::PoolsOf(DRONE),
        default: "amd64",
        doc: "the runners' arch",
        read: |r, d| d.drone.arch = r.text().to_string(),
    },
    Key {
        name: "variant",
        applies: Applies::PoolsOf(DRONE),
        default: "",
        doc: "the runners' variant, when they report one",
        read: |r, d| d.drone.variant = Some(r.text().to_string()),
    },
    Key {
        name: "kernel",
        applies: Applies::PoolsOf(DRONE),
        default: "",
        doc: "the runners' kernel, when they report one",
        read: |r, d| d.drone.kernel = Some(r.text().to_string()),
    },
    Key {
        name: "kind",
        applies: Applies::PoolsOf(DRONE),
        default: "pipeline",
        doc: "the runners' resource kind",
        read: |r, d| d.drone.kind = r.text().to_string(),
    },
    Key {
        name: "type",
        applies: Applies::PoolsOf(DRONE),
        default: "docker",
        doc: "the runners' resource type",
        read: |r, d| d.drone.type_ = r.text().to_string(),
    },
    Key {
        name: "run_untagged",
        applies: Applies::PoolsOf(&[ForgeKind::Gitlab]),
        default: "false",
        doc: "the runners take untagged jobs",
        read: |r, d| d.run_untagged = r.bool().unwrap_or(d.run_untagged),
    },
    // Capacity.
    Key {
        name: "slots",
        applies: Applies::Always,
        default: "1",
        doc: "jobs one instance runs at once (>= 1)",
        read: |r, d| match r.parse::<u32>("a whole number") {
            Some(0) => r.problem("must be at least 1 (jobs one instance runs at once)"),
            Some(n) => d.policy.slots = n,
            None => {}
        },
    },
    Key {
        name: "spare",
        applies: Applies::Always,
        default: "0",
        doc: "extra instances while there is demand",
        read: |r, d| d.policy.spare = r.parse("a whole number").unwrap_or(d.policy.spare),
    },
    Key {
        name: "spare_ratio",
        applies: Applies::Always,
        default: "0",
        doc: "extra instances proportional to demand: ceil(needed * spare_ratio) (GitLab's scale_factor; >= 0)",
        read: |r, d| d.policy.spare_ratio = r.non_negative().unwrap_or(d.policy.spare_ratio),
    },
    Key {
        name: "spare_max",
        applies: Applies::Always,
        default: "",
        doc: "cap on the spare_ratio instances (GitLab's scale_factor_limit; default: none)",
        read: |r, d| d.policy.spare_max = r.parse("a whole number"),
    },
    Key {
        name: "max_instances",
        applies: Applies::Always,
        default: "",
        doc: "cap below the group's MaxSize; the ceiling of a command fleet (required there)",
        read: |r, d| d.policy.max_instances = r.parse("a whole number"),
    },
    Key {
        name: "max_step",
        applies: Applies::Always,
        default: "",
        doc: "most instances added per tick (>= 1; default: none)",
        read: |r, d| match r.parse::<u32>("a whole number") {
            Some(0) => r.problem("must be at least 1 (or absent for no limit)"),
            step => d.policy.max_step = step,
        },
    },
    Key {
        name: "scale_out_cooldown",
        applies: Applies::Always,
        default: "0s",
        doc: "no raise sooner than this after the last one",
        read: |r, d| d.policy.scale_out_cooldown = r.duration().unwrap_or(d.policy.scale_out_cooldown),
    },
    // Timeouts.
    Key {
        name: "idle_timeout",
        applies: Applies::Always,
        default: "10m",
        doc: "duration or \"adaptive\"; written to the group's tag for the watchdog",
        read: |r, d| match r.text() {
            "adaptive" => d.idle_timeout = IdleTimeout::Adaptive,
            _ => {
                if let Some(t) = r.duration() {
                    d.idle_timeout = IdleTimeout::Fixed(t)
                }
            }
        },
    },
    Key {
        name: "boot_timeout",
        applies: Applies::Always,
        default: "10m",
        doc: "longest an instance may take to become ready (> 0); written to the group's tag too",
        read: |r, d| d.policy.boot_timeout = r.positive_duration().unwrap_or(d.policy.boot_timeout),
    },
    Key {
        name: "unschedulable_after",
        applies: Applies::Always,
        default: "30m",
        doc: "how long a pending job may wait before the unschedulable guard considers it",
        read: |r, d| d.policy.unschedulable_after = r.duration().unwrap_or(d.policy.unschedulable_after),
    },
    // Formula.
    Key {
        name: "policy",
        applies: Applies::Always,
        default: "default",
        doc: "default | vespene",
        read: |r, d| match r.text() {
            "default" => d.vespene = false,
            "vespene" => d.vespene = true,
            other => r.problem(format!("{other:?} is not default or vespene")),
        },
    },
    Key {
        name: "queued_weight",
        applies: Applies::VespenePolicy,
        default: "1",
        doc: "vespene: weight of a pending job (>= 0)",
        read: |r, d| d.weights.queued_weight = r.non_negative().unwrap_or(d.weights.queued_weight),
    },
    Key {
        name: "running_weight",
        applies: Applies::VespenePolicy,
        default: "1",
        doc: "vespene: weight of a running job (>= 0)",
        read: |r, d| d.weights.running_weight = r.non_negative().unwrap_or(d.weights.running_weight),
    },
    Key {
        name: "multiplier",
        applies: Applies::VespenePolicy,
        default: "1",
        doc: "vespene: factor on the weighted sum (>= 0)",
        read: |r, d| d.weights.multiplier = r.non_negative().unwrap_or(d.weights.multiplier),
    },
    Key {
        name: "excess",
        applies: Applies::VespenePolicy,
        default: "0",
        doc: "vespene: instances added to the product (>= 0)",
        read: |r, d| d.weights.excess = r.non_negative().unwrap_or(d.weights.excess),
    },
];

/// What the pool's raw keys say about which other keys apply.
fn context(keys: &BTreeMap<String, String>, raw: &RawConfig) -> Context {
    let value = |k: &str| keys.get(k).map(|v| v.trim());
    Context {
        forge_kind: value("forge").and_then(|f| raw.forges.get(f)).and_then(raw_kind),
        command_fleet: value("fleet") == Some("command"),
        vespene: value("policy") == Some("vespene"),
    }
}

pub(crate) fn validate_pool(
    name: &str,
    keys: &BTreeMap<String, String>,
    raw: &RawConfig,
    problems: &mut Vec<Problem>,
) -> Option<PoolConfig> {
    let mut r = Reader::new(format!("pools/{name}"), keys, problems);
    let ctx = context(keys, raw);
    let mut d = PoolDraft::default();
    r.read_keys(POOL_KEYS, &ctx, &mut d);
    let forge = check_forge(&mut r, d.forge.as_deref(), raw);
    let fleet = check_fleet(&mut r, &d);
    check_labels(&mut r, ctx.forge_kind, d.labels.as_deref());
    Some(PoolConfig {
        name: name.to_string(),
        forge: forge?,
        fleet: fleet?,
        policy: Policy { formula: formula(&d), ..d.policy },
        labels: d.labels,
        drone: d.drone,
        run_untagged: d.run_untagged,
        idle_timeout: d.idle_timeout,
        boot_timeout: d.policy.boot_timeout,
    })
}

/// The forge the pool reads: present and configured.
fn check_forge(r: &mut Reader<'_>, forge: Option<&str>, raw: &RawConfig) -> Option<String> {
    match forge {
        None => {
            r.problem_at("forge", "missing: the name of a forge under forges/");
            None
        }
        Some(f) if !raw.forges.contains_key(f) => {
            let known: Vec<&str> = raw.forges.keys().map(String::as_str).collect();
            r.problem_at("forge", format!("names unknown forge {f:?} (configured: {})", known.join(", ")));
            None
        }
        Some(f) => Some(f.to_string()),
    }
}

/// The fleet: an ASG by name, or a command fleet with a ceiling at or above its floor.
fn check_fleet(r: &mut Reader<'_>, d: &PoolDraft) -> Option<FleetSpec> {
    match d.fleet {
        FleetKind::Invalid => None,
        FleetKind::Asg => match &d.asg {
            Some(name) => Some(FleetSpec::Asg { name: name.clone() }),
            None => {
                r.problem_at("asg", "missing: the Auto Scaling Group's name");
                None
            }
        },
        FleetKind::Command => {
            match d.policy.max_instances {
                None => r.problem_at("max_instances", "required with fleet = command (the command fleet's ceiling)"),
                Some(0) => r.problem_at("max_instances", "must be at least 1 with fleet = command (its ceiling)"),
                Some(max) if d.min_instances > max => {
                    r.problem_at("min_instances", format!("{} is above max_instances {max}", d.min_instances))
                }
                Some(_) => {}
            }
            match &d.command {
                Some(command) => Some(FleetSpec::Command {
                    command: command.clone(),
                    size_command: d.size_command.clone(),
                    min_instances: d.min_instances,
                }),
                None => {
                    r.problem_at("command", "missing: the command that sets the fleet's size");
                    None
                }
            }
        }
    }
}

/// Label syntax by the pool's forge's rule (DESIGN.md, "Labels"), every bad item named.
fn check_labels(r: &mut Reader<'_>, kind: Option<ForgeKind>, items: Option<&[String]>) {
    let (Some(kind), Some(items)) = (kind, items) else { return };
    match kind {
        ForgeKind::Woodpecker | ForgeKind::Drone => {
            for item in items {
                let pair = labels::parse_pairs(std::slice::from_ref(item));
                let negated_without_key =
                    kind == ForgeKind::Woodpecker && item.split('=').next().map(str::trim) == Some("!");
                if let Err(e) = pair {
                    r.problem_at("labels", format!("{e} ({kind} labels are key=value pairs)"));
                } else if negated_without_key {
                    r.problem_at("labels", format!("label {item:?} has no key after `!`"));
                } else if kind == ForgeKind::Drone && item.trim_start().starts_with('!') {
                    r.problem_at(
                        "labels",
                        format!("label {item:?}: `!` is Woodpecker's, Drone matches labels exactly"),
                    );
                }
            }
        }
        ForgeKind::Forgejo | ForgeKind::Gitea => {
            for item in items.iter().filter(|i| labels::runner_label_name(i).is_empty()) {
                r.problem_at("labels", format!("label {item:?} has no name before `:`"));
            }
        }
        ForgeKind::Buildkite if items.len() > 1 => {
            r.problem_at("labels", format!("a Buildkite pool serves one queue; {} names given", items.len()));
        }
        ForgeKind::Generic => {
            r.problem_at("labels", "not used by generic pools (a count has no labels to match)");
        }
        ForgeKind::Buildkite | ForgeKind::Github | ForgeKind::Gitlab => {}
    }
}

/// The formula the `policy` key chose, with its weights.
fn formula(d: &PoolDraft) -> Formula {
    if !d.vespene {
        return Formula::Default;
    }
    let w = d.weights;
    Formula::Vespene {
        queued_weight: w.queued_weight,
        running_weight: w.running_weight,
        multiplier: w.multiplier,
        excess: w.excess,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::defaults_that_disagree;
    use crate::config::test_support::{forge_table, no_env, one_pool, problems, GOOD};
    use crate::config::Config;

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

    #[test]
    fn every_documented_pool_default_is_what_a_missing_key_gets() {
        assert_eq!(defaults_that_disagree(POOL_KEYS), Vec::<&str>::new());
    }

    #[test]
    fn a_pool_without_tuning_keys_has_the_planners_default_policy() {
        let c = one_pool("woodpecker", "").unwrap();
        let pool = c.pool("p").unwrap();
        assert_eq!(pool.policy, Policy::default());
        assert_eq!(pool.drone, DronePlatform::default());
        assert_eq!(pool.idle_timeout, IdleTimeout::Fixed(DEFAULT_IDLE_TIMEOUT));
        assert_eq!(pool.boot_timeout, Policy::default().boot_timeout);
    }

    #[test]
    fn spare_ratio_and_spare_max_reach_the_policy() {
        let c = one_pool("woodpecker", "spare_ratio = 0.5\nspare_max = 3").unwrap();
        let policy = &c.pool("p").unwrap().policy;
        assert_eq!(policy.spare_ratio, 0.5);
        assert_eq!(policy.spare_max, Some(3));
        let c = one_pool("woodpecker", "spare_ratio = \"2\"").unwrap();
        assert_eq!(c.pool("p").unwrap().policy.spare_ratio, 2.0);
    }

    #[test]
    fn a_negative_or_non_finite_spare_ratio_and_a_fractional_spare_max_are_problems() {
        for (lines, expected) in [
            ("spare_ratio = -0.5", "pools/p/spare_ratio: must be a finite number >= 0"),
            ("spare_ratio = \"NaN\"", "pools/p/spare_ratio: must be a finite number >= 0"),
            ("spare_ratio = \"inf\"", "pools/p/spare_ratio: must be a finite number >= 0"),
            ("spare_ratio = \"lots\"", "pools/p/spare_ratio: \"lots\" is not a number"),
            ("spare_max = 1.5", "pools/p/spare_max: \"1.5\" is not a whole number"),
        ] {
            assert_eq!(problems(one_pool("woodpecker", lines)), [expected], "{lines}");
        }
    }

    #[test]
    fn a_command_fleet_whose_min_instances_is_above_max_instances_is_a_problem() {
        let lines = "fleet = \"command\"\ncommand = \"scale.sh\"\nmin_instances = 5\nmax_instances = 3";
        let text = format!("{}\n[pools.p]\nforge = \"f\"\n{lines}\n", forge_table("woodpecker"));
        let found = problems(Config::from_toml(&text, no_env));
        assert_eq!(found, ["pools/p/min_instances: 5 is above max_instances 3"]);
    }

    #[test]
    fn a_command_fleet_with_a_zero_ceiling_is_a_problem() {
        let lines = "fleet = \"command\"\ncommand = \"scale.sh\"\nmax_instances = 0";
        let text = format!("{}\n[pools.p]\nforge = \"f\"\n{lines}\n", forge_table("woodpecker"));
        let found = problems(Config::from_toml(&text, no_env));
        assert_eq!(found, ["pools/p/max_instances: must be at least 1 with fleet = command (its ceiling)"]);
    }

    #[test]
    fn a_zero_max_step_slots_or_boot_timeout_is_a_problem() {
        let found = problems(one_pool("woodpecker", "max_step = 0\nslots = 0\nboot_timeout = \"0s\""));
        assert_eq!(
            found,
            [
                "pools/p/boot_timeout: must be longer than 0s",
                "pools/p/max_step: must be at least 1 (or absent for no limit)",
                "pools/p/slots: must be at least 1 (jobs one instance runs at once)",
            ]
        );
    }

    #[test]
    fn an_asg_on_a_command_fleet_and_a_command_on_an_asg_fleet_are_problems() {
        let found = problems(one_pool("woodpecker", "command = \"scale.sh\""));
        assert_eq!(found, ["pools/p/command: only used with fleet = command"]);
        let found = problems(one_pool("woodpecker", "fleet = \"command\"\ncommand = \"x\"\nmax_instances = 2"));
        assert_eq!(found, ["pools/p/asg: not used with fleet = command"]);
    }

    #[test]
    fn woodpecker_labels_without_a_key_and_value_are_each_named() {
        let found = problems(one_pool("woodpecker", r#"labels = ["platform=linux/amd64", "gpu", "=x", "!=y"]"#));
        assert_eq!(
            found,
            [
                "pools/p/labels: label \"gpu\" is not written key=value (woodpecker labels are key=value pairs)",
                "pools/p/labels: label \"=x\" is not written key=value (woodpecker labels are key=value pairs)",
                "pools/p/labels: label \"!=y\" has no key after `!`",
            ]
        );
        assert!(problems(one_pool("woodpecker", r#"labels = ["!gpu=true", "repo=*"]"#)).is_empty());
    }

    #[test]
    fn drone_labels_must_be_key_value_pairs() {
        let found = problems(one_pool("drone", r#"labels = "instance=large,ssd""#));
        assert_eq!(
            found,
            ["pools/p/labels: label \"ssd\" is not written key=value (drone labels are key=value pairs)"]
        );
        assert!(problems(one_pool("drone", r#"labels = "instance=large""#)).is_empty());
    }

    #[test]
    fn forgejo_and_gitea_labels_need_a_name_before_the_colon() {
        for kind in ["forgejo", "gitea"] {
            let found = problems(one_pool(kind, r#"labels = ["ubuntu-latest:docker://node:20", ":docker://x"]"#));
            assert_eq!(found, ["pools/p/labels: label \":docker://x\" has no name before `:`"], "{kind}");
        }
    }

    #[test]
    fn a_buildkite_pool_with_two_queues_is_a_problem() {
        let found = problems(one_pool("buildkite", r#"labels = "default,gpu""#));
        assert_eq!(found, ["pools/p/labels: a Buildkite pool serves one queue; 2 names given"]);
        assert!(problems(one_pool("buildkite", r#"labels = "gpu""#)).is_empty());
    }

    #[test]
    fn labels_on_a_generic_pool_are_a_problem() {
        let found = problems(one_pool("generic", r#"labels = "gpu""#));
        assert_eq!(found, ["pools/p/labels: not used by generic pools (a count has no labels to match)"]);
    }

    #[test]
    fn github_and_gitlab_labels_are_plain_names() {
        assert!(problems(one_pool("github", r#"labels = "self-hosted,linux,x64""#)).is_empty());
        assert!(problems(one_pool("gitlab", r#"labels = "docker,gpu=true""#)).is_empty());
    }

    #[test]
    fn every_bad_label_and_every_bad_number_in_one_file_is_listed_at_once() {
        let found = problems(one_pool("woodpecker", "labels = \"a,b\"\nslots = 0\nspare_ratio = -1"));
        assert_eq!(found.len(), 4, "{found:?}");
    }
}
