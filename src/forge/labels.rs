//! Label rules: whether a pool's agents could take a job, per forge, as pure functions
//! over plain strings and maps (DESIGN.md, "Labels"). No I/O and no wire types here: the
//! adapters translate their JSON into these arguments first.

use crate::config::DronePlatform;
use std::collections::{BTreeMap, BTreeSet};

/// Woodpecker's prefix for server-internal task labels, which never take part in matching.
pub const WOODPECKER_INTERNAL_PREFIX: &str = "woodpecker-ci.org/";

/// Splits pool label items written `k=v` into a map (split at the first `=`, both sides
/// trimmed). An item without `=` or with an empty key is an error naming the item.
pub fn parse_pairs(items: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                map.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => return Err(format!("label {item:?} is not written key=value")),
        }
    }
    Ok(map)
}

/// The labels a Woodpecker agent of this pool advertises: the pool's `k=v` items plus the
/// `repo=*` and `org-id=*` every global agent carries, unless the pool gives those keys.
pub fn woodpecker_agent_labels(pool_labels: Option<&[String]>) -> Result<BTreeMap<String, String>, String> {
    let mut agent = parse_pairs(pool_labels.unwrap_or(&[]))?;
    for implied in ["repo", "org-id"] {
        agent.entry(implied.to_string()).or_insert_with(|| "*".to_string());
    }
    Ok(agent)
}

/// Woodpecker's rule (server/scheduler/filter.go): an agent label `!k=v` requires the task
/// to carry exactly `k=v`; then every non-empty task label outside `woodpecker-ci.org/` must
/// be on the agent (as `k` or `!k`) with the same value or `*`.
pub fn woodpecker_matches(agent: &BTreeMap<String, String>, task: &BTreeMap<String, String>) -> bool {
    let required_missing =
        agent.iter().filter_map(|(k, v)| k.strip_prefix('!').map(|k| (k, v))).any(|(k, v)| task.get(k) != Some(v));
    if required_missing {
        return false;
    }
    task.iter().filter(|(k, v)| !v.is_empty() && !k.starts_with(WOODPECKER_INTERNAL_PREFIX)).all(|(k, v)| {
        match agent.get(k).or_else(|| agent.get(&format!("!{k}"))) {
            Some(agent_value) => agent_value == "*" || agent_value == v,
            None => false,
        }
    })
}

/// A Forgejo/Gitea runner label's name: `ubuntu-latest:docker://node:20` -> `ubuntu-latest`.
pub fn runner_label_name(label: &str) -> &str {
    label.split(':').next().unwrap_or("").trim()
}

/// The runner label names of a Forgejo/Gitea pool (absent labels: none), sorted, unique.
pub fn runner_label_names(pool_labels: Option<&[String]>) -> BTreeSet<String> {
    pool_labels
        .unwrap_or(&[])
        .iter()
        .map(|l| runner_label_name(l))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// The same names in the pool's order, each once: what Forgejo's `?labels=` is sent as.
pub fn runner_label_names_in_order(pool_labels: Option<&[String]>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    pool_labels
        .unwrap_or(&[])
        .iter()
        .map(|l| runner_label_name(l))
        .filter(|n| !n.is_empty() && seen.insert(n.to_string()))
        .map(str::to_string)
        .collect()
}

/// Forgejo's `ItRunsOn` and Gitea's `CanMatchLabels`: the runner takes the job when every
/// one of the job's `runs-on` labels is among the runner's label names (exact, case-sensitive).
/// A job with no labels matches every runner.
pub fn runs_on_matches(runner_names: &BTreeSet<String>, job_labels: &[String]) -> bool {
    job_labels.iter().all(|l| runner_names.contains(l.as_str()))
}

/// A Drone stage's platform and labels, as the queue reports them (absent fields empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DroneStage {
    pub os: String,
    pub arch: String,
    pub variant: String,
    pub kernel: String,
    pub kind: String,
    pub type_: String,
    pub labels: BTreeMap<String, String>,
}

/// Drone's rule (scheduler/queue/queue.go): kind and type equal (empty counts as
/// `pipeline`/`docker` on both sides); os and arch equal (a stage without them has Drone's
/// `linux`/`amd64` defaults); a stage variant or kernel, when
/// the stage gives one, equal to the runner's; and the label maps exactly equal, so a
/// runner with extra labels does not take an unlabeled stage.
pub fn drone_matches(platform: &DronePlatform, runner_labels: &BTreeMap<String, String>, stage: &DroneStage) -> bool {
    fn or_default<'a>(value: &'a str, default: &'a str) -> &'a str {
        if value.is_empty() {
            default
        } else {
            value
        }
    }
    let same_resource = or_default(&platform.kind, "pipeline") == or_default(&stage.kind, "pipeline")
        && or_default(&platform.type_, "docker") == or_default(&stage.type_, "docker");
    let same_platform = platform.os == or_default(&stage.os, "linux")
        && platform.arch == or_default(&stage.arch, "amd64")
        && (stage.variant.is_empty() || platform.variant.as_deref() == Some(stage.variant.as_str()))
        && (stage.kernel.is_empty() || platform.kernel.as_deref() == Some(stage.kernel.as_str()));
    same_resource && same_platform && *runner_labels == stage.labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    fn items(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }
    fn agent(list: &[&str]) -> BTreeMap<String, String> {
        woodpecker_agent_labels(Some(&items(list))).unwrap()
    }
    fn names(list: &[&str]) -> BTreeSet<String> {
        runner_label_names(Some(&items(list)))
    }

    #[test]
    fn woodpecker_agent_without_labels_takes_a_task_with_only_repo_and_org() {
        let a = woodpecker_agent_labels(None).unwrap();
        assert!(woodpecker_matches(&a, &map(&[("repo", "acme/app"), ("org-id", "3")])));
    }

    #[test]
    fn woodpecker_empty_task_label_is_ignored() {
        let a = woodpecker_agent_labels(None).unwrap();
        assert!(woodpecker_matches(&a, &map(&[("platform", ""), ("repo", "windsource/woodpecker-test")])));
    }

    #[test]
    fn woodpecker_task_label_missing_on_agent_does_not_match() {
        let a = woodpecker_agent_labels(None).unwrap();
        assert!(!woodpecker_matches(&a, &map(&[("platform", "linux/amd64")])));
    }

    #[test]
    fn woodpecker_same_value_or_wildcard_matches() {
        let t = map(&[("platform", "linux/amd64"), ("repo", "acme/app")]);
        assert!(woodpecker_matches(&agent(&["platform=linux/amd64"]), &t));
        assert!(woodpecker_matches(&agent(&["platform=*"]), &t));
        assert!(!woodpecker_matches(&agent(&["platform=linux/arm64"]), &t));
    }

    #[test]
    fn woodpecker_internal_labels_are_ignored() {
        let t = map(&[("repo", "a/b"), ("woodpecker-ci.org/repo-id", "12"), ("woodpecker-ci.org/event", "push")]);
        assert!(woodpecker_matches(&agent(&[]), &t));
    }

    #[test]
    fn woodpecker_required_agent_label_needs_the_task_to_carry_it() {
        let a = agent(&["!gpu=true", "platform=linux/amd64"]);
        assert!(woodpecker_matches(&a, &map(&[("gpu", "true"), ("platform", "linux/amd64")])));
        assert!(!woodpecker_matches(&a, &map(&[("platform", "linux/amd64")])));
        assert!(!woodpecker_matches(&a, &map(&[("gpu", "false"), ("platform", "linux/amd64")])));
    }

    #[test]
    fn woodpecker_pool_repo_label_replaces_the_implied_wildcard() {
        let a = agent(&["repo=acme/app"]);
        assert!(woodpecker_matches(&a, &map(&[("repo", "acme/app")])));
        assert!(!woodpecker_matches(&a, &map(&[("repo", "acme/other")])));
        assert_eq!(agent(&[]).get("org-id").map(String::as_str), Some("*"));
    }

    #[test]
    fn woodpecker_label_without_equals_is_an_error() {
        let err = woodpecker_agent_labels(Some(&items(&["gpu"]))).unwrap_err();
        assert!(err.contains("\"gpu\""), "{err}");
    }

    #[test]
    fn runner_label_names_keep_only_the_name() {
        assert_eq!(names(&["ubuntu-latest:docker://node:20", " docker ", "self-hosted:host"]), {
            let want: BTreeSet<String> =
                ["docker", "self-hosted", "ubuntu-latest"].iter().map(|s| s.to_string()).collect();
            want
        });
    }

    #[test]
    fn runner_label_names_in_order_keep_the_pools_order_once() {
        let list = items(&["ubuntu-latest:docker://node:20", "docker", "ubuntu-latest:host", ""]);
        assert_eq!(runner_label_names_in_order(Some(&list)), ["ubuntu-latest", "docker"]);
        assert!(runner_label_names_in_order(None).is_empty());
    }

    #[test]
    fn runs_on_needs_every_job_label() {
        let r = names(&["ubuntu-latest:docker://node:20", "docker"]);
        assert!(runs_on_matches(&r, &items(&["ubuntu-latest"])));
        assert!(runs_on_matches(&r, &items(&["ubuntu-latest", "docker"])));
        assert!(!runs_on_matches(&r, &items(&["ubuntu-latest", "gpu"])));
        assert!(runs_on_matches(&r, &[]));
        assert!(!runs_on_matches(&names(&[]), &items(&["ubuntu-latest"])));
        assert!(!runs_on_matches(&r, &items(&["Ubuntu-Latest"])), "names compare case-sensitively");
    }

    fn stage(os: &str, arch: &str) -> DroneStage {
        DroneStage { os: os.into(), arch: arch.into(), ..DroneStage::default() }
    }

    #[test]
    fn drone_default_pool_takes_linux_amd64_docker_stages() {
        let p = DronePlatform::default();
        let none = BTreeMap::new();
        assert!(drone_matches(&p, &none, &stage("linux", "amd64")));
        let explicit = DroneStage { kind: "pipeline".into(), type_: "docker".into(), ..stage("linux", "amd64") };
        assert!(drone_matches(&p, &none, &explicit));
        assert!(!drone_matches(&p, &none, &stage("linux", "arm64")));
        assert!(!drone_matches(&p, &none, &stage("windows", "amd64")));
        assert!(drone_matches(&p, &none, &stage("", "")), "Drone's platform defaults");
        let arm = DronePlatform { arch: "arm64".into(), ..DronePlatform::default() };
        assert!(!drone_matches(&arm, &none, &stage("", "")));
    }

    #[test]
    fn drone_kind_and_type_must_match() {
        let p = DronePlatform::default();
        let none = BTreeMap::new();
        let exec = DroneStage { type_: "exec".into(), ..stage("linux", "amd64") };
        assert!(!drone_matches(&p, &none, &exec));
        let exec_pool = DronePlatform { type_: "exec".into(), ..DronePlatform::default() };
        assert!(drone_matches(&exec_pool, &none, &exec));
        assert!(!drone_matches(&exec_pool, &none, &stage("linux", "amd64")));
    }

    #[test]
    fn drone_stage_variant_and_kernel_must_equal_the_pool() {
        let arm = DronePlatform { arch: "arm".into(), variant: Some("v7".into()), ..DronePlatform::default() };
        let none = BTreeMap::new();
        let v7 = DroneStage { variant: "v7".into(), ..stage("linux", "arm") };
        let v6 = DroneStage { variant: "v6".into(), ..stage("linux", "arm") };
        assert!(drone_matches(&arm, &none, &v7));
        assert!(!drone_matches(&arm, &none, &v6));
        assert!(drone_matches(&arm, &none, &stage("linux", "arm")), "a stage without variant takes any");
        let plain_arm = DronePlatform { arch: "arm".into(), ..DronePlatform::default() };
        assert!(!drone_matches(&plain_arm, &none, &v7));
        let win = DronePlatform { os: "windows".into(), kernel: Some("1809".into()), ..DronePlatform::default() };
        let k1809 = DroneStage { kernel: "1809".into(), ..stage("windows", "amd64") };
        let k1903 = DroneStage { kernel: "1903".into(), ..stage("windows", "amd64") };
        assert!(drone_matches(&win, &none, &k1809));
        assert!(!drone_matches(&win, &none, &k1903));
    }

    #[test]
    fn drone_labels_must_be_exactly_equal() {
        let p = DronePlatform::default();
        let large = map(&[("instance", "large")]);
        let labeled = DroneStage { labels: large.clone(), ..stage("linux", "amd64") };
        assert!(drone_matches(&p, &large, &labeled));
        assert!(!drone_matches(&p, &large, &stage("linux", "amd64")), "extra runner labels reject unlabeled stages");
        assert!(!drone_matches(&p, &BTreeMap::new(), &labeled));
        let more = map(&[("instance", "large"), ("zone", "a")]);
        assert!(!drone_matches(&p, &more, &labeled));
    }

    proptest! {
        #[test]
        fn woodpecker_agent_with_a_tasks_own_labels_always_takes_it(
            task in proptest::collection::btree_map("[a-z]{1,6}", "[a-z0-9/]{0,8}", 0..6)
        ) {
            let items: Vec<String> = task.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={v}")).collect();
            let a = woodpecker_agent_labels(Some(&items)).unwrap();
            prop_assert!(woodpecker_matches(&a, &task));
        }

        #[test]
        fn woodpecker_wildcards_never_take_fewer_tasks(
            task in proptest::collection::btree_map("[a-z]{1,3}", "[a-z]{0,2}", 0..5),
            agent_pairs in proptest::collection::btree_map("[a-z]{1,3}", "[a-z]{1,2}", 0..5),
        ) {
            let exact: BTreeMap<String, String> = agent_pairs.clone();
            let wild: BTreeMap<String, String> = agent_pairs.keys().map(|k| (k.clone(), "*".to_string())).collect();
            if woodpecker_matches(&exact, &task) {
                prop_assert!(woodpecker_matches(&wild, &task));
            }
        }

        #[test]
        fn drone_matches_exactly_when_label_maps_are_equal(
            runner in proptest::collection::btree_map("[a-c]", "[xy]", 0..3),
            stage_labels in proptest::collection::btree_map("[a-c]", "[xy]", 0..3),
        ) {
            let s = DroneStage { labels: stage_labels.clone(), ..stage("linux", "amd64") };
            prop_assert_eq!(drone_matches(&DronePlatform::default(), &runner, &s), runner == stage_labels);
        }

        #[test]
        fn runs_on_is_monotone_in_runner_labels(
            runner in proptest::collection::btree_set("[a-c]{1,2}", 0..6),
            extra in proptest::collection::btree_set("[a-c]{1,2}", 0..3),
            job in proptest::collection::vec("[a-c]{1,2}", 0..4),
        ) {
            let bigger: BTreeSet<String> = runner.union(&extra).cloned().collect();
            if runs_on_matches(&runner, &job) {
                prop_assert!(runs_on_matches(&bigger, &job));
            }
            let job_set: BTreeSet<String> = job.iter().cloned().collect();
            prop_assert!(runs_on_matches(&job_set, &job));
        }
    }
}
