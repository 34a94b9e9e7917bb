//! `forge-scaler doctor`'s checklist: the pure part. Facts a deployment check gathered (config
//! problems, forge probe answers, described groups, IAM simulation decisions) become one
//! [`Check`] line each (ok or problem, with what to do), and the checklist its exit status.
//! No I/O and no clock here: `now` is a parameter; the gathering is in [`shell`].

use crate::cloud::{TAG_BOOT_TIMEOUT, TAG_IDLE_TIMEOUT};
use crate::config::{Config, PoolConfig, Problem};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub mod shell;

/// Group tag a running watchdog keeps fresh: `forge-scaler:heartbeat:<instance-id>` = RFC 3339.
pub use crate::agent::HEARTBEAT_TAG_PREFIX;
/// A heartbeat older than this means the watchdog is not running (it writes every 5 minutes).
pub const HEARTBEAT_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// Exit status when every check passed.
pub const EXIT_ALL_PASSED: u8 = 0;
/// Exit status when any check found a problem (an invalid configuration included).
pub const EXIT_PROBLEM: u8 = 1;

/// Whether a check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Problem,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub status: Status,
    /// What was checked: `config`, `forge wp`, `group ci-linux`, `role ...`.
    pub subject: String,
    /// What was found.
    pub detail: String,
    /// What to do, for a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { status: Status::Ok, subject: subject.into(), detail: detail.into(), fix: None }
    }
    pub fn problem(subject: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { status: Status::Problem, subject: subject.into(), detail: detail.into(), fix: Some(fix.into()) }
    }
    /// `ok      group ci-linux: exists` or `problem group ci-x: ... -> fix`, on one line.
    pub fn line(&self) -> String {
        let status = match self.status {
            Status::Ok => "ok     ",
            Status::Problem => "problem",
        };
        let mut line = format!("{status} {}: {}", self.subject, self.detail);
        if let Some(fix) = &self.fix {
            line.push_str(" -> ");
            line.push_str(fix);
        }
        line.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
    }
}

/// Every check of one doctor run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checklist {
    pub checks: Vec<Check>,
}

impl Checklist {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status == Status::Ok)
    }
    pub fn exit_status(&self) -> u8 {
        if self.passed() {
            EXIT_ALL_PASSED
        } else {
            EXIT_PROBLEM
        }
    }
    pub fn problems(&self) -> usize {
        self.checks.iter().filter(|c| c.status == Status::Problem).count()
    }
    /// The checklist with each secret masked wherever something echoed it (a secret shorter
    /// than [`SHORT_SECRET_CHARS`] only where it stands as a word of its own, so a one-letter
    /// test token does not garble every line).
    pub fn scrubbed(mut self, secrets: &[&str]) -> Checklist {
        let scrub = |text: &mut String| {
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                if text.contains(secret) {
                    *text = mask(text, secret);
                }
            }
        };
        for check in &mut self.checks {
            scrub(&mut check.subject);
            scrub(&mut check.detail);
            if let Some(fix) = &mut check.fix {
                scrub(fix);
            }
        }
        self
    }
    /// One line per check, then a summary line.
    pub fn text(&self) -> String {
        let mut out: String = self.checks.iter().map(|c| c.line() + "\n").collect();
        match self.problems() {
            0 => out.push_str(&format!("all {} checks passed\n", self.checks.len())),
            n => out.push_str(&format!("{n} of {} checks found a problem\n", self.checks.len())),
        }
        out
    }
}

/// Secrets at least this long are masked wherever they occur; shorter ones as whole words.
pub const SHORT_SECRET_CHARS: usize = 8;

fn mask(text: &str, secret: &str) -> String {
    if secret.chars().count() >= SHORT_SECRET_CHARS {
        return text.replace(secret, "***");
    }
    let word_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(secret) {
        let before = rest[..at].chars().next_back().or_else(|| out.chars().next_back());
        let after = rest[at + secret.len()..].chars().next();
        out.push_str(&rest[..at]);
        if word_char(before) || word_char(after) {
            out.push_str(secret);
        } else {
            out.push_str("***");
        }
        rest = &rest[at + secret.len()..];
    }
    out.push_str(rest);
    out
}

/// The configuration's lines: one ok line, or one problem line per problem.
pub fn config_checks(config: &Config, problems: &[Problem]) -> Vec<Check> {
    if problems.is_empty() {
        let detail = format!("valid ({} forge(s), {} pool(s))", config.forges.len(), config.pools.len());
        return vec![Check::ok("config", detail)];
    }
    problems
        .iter()
        .map(|p| {
            Check::problem(
                format!("config {}", p.key),
                p.message.clone(),
                "fix this key (`forge-scaler ssm put` or the TOML file); the other pieces are still checked",
            )
        })
        .collect()
}

/// A configured forge that did not validate: not probed.
pub fn unprobed_forge(name: &str) -> Check {
    Check::problem(
        format!("forge {name}"),
        "not probed: its configuration is invalid (see the config lines)",
        format!("fix forges/{name}/ and run doctor again"),
    )
}

/// A configured pool that did not validate: its group is not checked.
pub fn unchecked_pool(name: &str) -> Check {
    Check::problem(
        format!("pool {name}"),
        "group not checked: the pool's configuration is invalid (see the config lines)",
        format!("fix pools/{name}/ and run doctor again"),
    )
}

/// A forge probe's line: `Ok(what the probe saw)` or the error's message.
pub fn forge_check(name: &str, kind: &str, answer: Result<String, String>) -> Check {
    let subject = format!("forge {name} ({kind})");
    match answer {
        Ok(seen) => Check::ok(subject, format!("answers; {seen}")),
        Err(why) => Check::problem(
            subject,
            why,
            format!("check forges/{name}/url, that the token is valid and has the scope the {kind} adapter needs (README, \"Forges\")"),
        ),
    }
}

/// What `DescribeAutoScalingGroups` says about one group, as doctor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFacts {
    pub arn: Option<String>,
    pub min_size: u32,
    pub max_size: u32,
    pub desired: u32,
    pub new_instances_protected_from_scale_in: bool,
    pub tags: BTreeMap<String, String>,
    /// Ids of the instances whose lifecycle state is `InService`.
    pub in_service: Vec<String>,
}

/// A group's lines: exists and sizes, scale-in protection, the function's tags, and one line
/// per in-service instance's watchdog. `described` is the lookup's outcome: `Ok(None)` when
/// the group does not exist, `Err` when it could not be described.
pub fn group_checks(
    pool: &PoolConfig,
    described: Result<Option<&GroupFacts>, String>,
    now: DateTime<Utc>,
) -> Vec<Check> {
    let Some(name) = pool.asg() else {
        return vec![Check::ok(format!("pool {}", pool.name), "fleet = command: no Auto Scaling Group to check")];
    };
    let subject = format!("group {name} (pool {})", pool.name);
    let group = match described {
        Err(why) => {
            return vec![Check::problem(
                subject,
                format!("cannot be described: {why}"),
                "check AWS_REGION, the credentials and autoscaling:DescribeAutoScalingGroups",
            )]
        }
        Ok(None) => {
            return vec![Check::problem(
                subject,
                "does not exist in this region",
                format!("create it (docs/deploy.md) or correct pools/{}/asg", pool.name),
            )]
        }
        Ok(Some(group)) => group,
    };
    let mut checks = vec![size_check(&subject, name, group)];
    checks.push(if group.new_instances_protected_from_scale_in {
        Check::ok(subject.clone(), "new instances are protected from scale-in")
    } else {
        Check::problem(
            subject.clone(),
            "new instances are not protected from scale-in: Auto Scaling may terminate a busy agent",
            format!(
                "aws autoscaling update-auto-scaling-group --auto-scaling-group-name {name} --new-instances-protected-from-scale-in"
            ),
        )
    });
    let missing: Vec<&str> =
        [TAG_IDLE_TIMEOUT, TAG_BOOT_TIMEOUT].into_iter().filter(|t| !group.tags.contains_key(*t)).collect();
    checks.push(if missing.is_empty() {
        Check::ok(
            subject.clone(),
            format!("tags idle-timeout={} boot-timeout={}", group.tags[TAG_IDLE_TIMEOUT], group.tags[TAG_BOOT_TIMEOUT]),
        )
    } else {
        Check::problem(
            subject.clone(),
            format!("tag(s) {} absent: the function has not ticked this group yet", missing.join(", ")),
            "deploy the function (docs/deploy.md) and read its logs, or run `forge-scaler once` with this configuration",
        )
    });
    checks.extend(watchdog_checks(&subject, group, now));
    checks
}

fn size_check(subject: &str, name: &str, group: &GroupFacts) -> Check {
    let sizes = format!("exists; MinSize {}, MaxSize {}, desired {}", group.min_size, group.max_size, group.desired);
    if group.max_size == 0 {
        Check::problem(
            subject,
            format!("{sizes}: MaxSize 0 means the group can never launch"),
            format!("aws autoscaling update-auto-scaling-group --auto-scaling-group-name {name} --max-size N"),
        )
    } else if group.min_size > group.max_size {
        Check::problem(
            subject,
            format!("{sizes}: MinSize is above MaxSize"),
            format!("aws autoscaling update-auto-scaling-group --auto-scaling-group-name {name} --min-size 0"),
        )
    } else {
        Check::ok(subject, sizes)
    }
}

/// One line per in-service instance: its watchdog's heartbeat tag younger than
/// [`HEARTBEAT_MAX_AGE`].
fn watchdog_checks(subject: &str, group: &GroupFacts, now: DateTime<Utc>) -> Vec<Check> {
    if group.in_service.is_empty() {
        return vec![Check::ok(subject, "no instance in service: no watchdog to check")];
    }
    let fix = "check `journalctl -u forge-scaler-agent` on it (docs/deploy.md, \"The watchdog\")";
    group
        .in_service
        .iter()
        .map(|id| {
            let beat = group.tags.get(&format!("{HEARTBEAT_TAG_PREFIX}{id}"));
            match beat.map(|b| DateTime::parse_from_rfc3339(b.trim()).map(|t| t.with_timezone(&Utc))) {
                None => Check::problem(subject, format!("watchdog not running on {id}: no heartbeat tag"), fix),
                Some(Err(_)) => Check::problem(subject, format!("watchdog on {id}: heartbeat tag is not a time"), fix),
                Some(Ok(at)) => {
                    let age = (now - at).to_std().unwrap_or(Duration::ZERO);
                    let age_text = humantime::format_duration(Duration::from_secs(age.as_secs()));
                    if age > HEARTBEAT_MAX_AGE {
                        Check::problem(
                            subject,
                            format!("watchdog not running on {id}: last heartbeat {age_text} ago"),
                            fix,
                        )
                    } else {
                        Check::ok(subject, format!("watchdog alive on {id} (heartbeat {age_text} ago)"))
                    }
                }
            }
        })
        .collect()
}

/// One call the function makes: an IAM action on a resource ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    pub action: &'static str,
    pub resource: String,
}

/// The calls the function makes for these groups (`(name, ARN if known)`) and SSM prefix,
/// with ARNs built from the role's partition and account where AWS gave none.
pub fn function_calls(
    role_arn: &str,
    region: &str,
    groups: &[(String, Option<String>)],
    ssm_prefix: Option<&str>,
) -> Vec<FunctionCall> {
    let (partition, account) = arn_partition_and_account(role_arn);
    let mut calls = vec![FunctionCall { action: "autoscaling:DescribeAutoScalingGroups", resource: "*".into() }];
    for (name, arn) in groups {
        let arn = arn.clone().unwrap_or_else(|| {
            format!("arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}")
        });
        for action in ["autoscaling:SetDesiredCapacity", "autoscaling:CreateOrUpdateTags"] {
            calls.push(FunctionCall { action, resource: arn.clone() });
        }
    }
    if let Some(prefix) = ssm_prefix {
        let path = prefix.trim_matches('/');
        calls.push(FunctionCall {
            action: "ssm:GetParametersByPath",
            resource: format!("arn:{partition}:ssm:{region}:{account}:parameter/{path}"),
        });
    }
    calls
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME` -> (partition, account); `aws` and `*` otherwise.
fn arn_partition_and_account(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, _, _, account, ..] if !partition.is_empty() && !account.is_empty() => {
            (partition.to_string(), account.to_string())
        }
        _ => ("aws".into(), "*".into()),
    }
}

/// A simulated call's line: IAM's decision (`allowed`, `implicitDeny`, `explicitDeny`) or why
/// the simulation failed.
pub fn iam_check(role_arn: &str, call: &FunctionCall, decision: Result<String, String>) -> Check {
    let subject = format!("role {role_arn}");
    let what = format!("{} on {}", call.action, call.resource);
    match decision {
        Ok(d) if d == "allowed" => Check::ok(subject, format!("may call {what}")),
        Ok(d) => Check::problem(
            subject,
            format!("may not call {what} ({d})"),
            "grant it in the function's policy (template.yaml; the group must match GroupNamePrefix)",
        ),
        Err(why) => Check::problem(
            subject,
            format!("cannot simulate {what}: {why}"),
            "the caller needs iam:SimulatePrincipalPolicy on the role",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    const CONFIG: &str = r#"
[forges.wp]
kind = "woodpecker"
url = "https://ci.example.com"
token = "t"
[pools.linux]
forge = "wp"
asg = "ci-linux"
[pools.mac]
forge = "wp"
fleet = "command"
command = "true"
max_instances = "2"
"#;

    fn config() -> Config {
        Config::validate(&RawConfig::from_toml(CONFIG, |_| None).unwrap()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-12-04T18:00:00Z".parse().unwrap()
    }

    fn healthy_group() -> GroupFacts {
        GroupFacts {
            arn: Some(
                "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:u:autoScalingGroupName/ci-linux".into(),
            ),
            min_size: 0,
            max_size: 5,
            desired: 1,
            new_instances_protected_from_scale_in: true,
            tags: [
                (TAG_IDLE_TIMEOUT.to_string(), "10m".to_string()),
                (TAG_BOOT_TIMEOUT.to_string(), "10m".to_string()),
                (format!("{HEARTBEAT_TAG_PREFIX}i-1"), "2026-12-04T17:56:00Z".to_string()),
            ]
            .into(),
            in_service: vec!["i-1".into()],
        }
    }

    fn problems_of(checks: &[Check]) -> Vec<String> {
        checks.iter().filter(|c| c.status == Status::Problem).map(|c| c.detail.clone()).collect()
    }

    #[test]
    fn a_healthy_group_is_four_ok_lines() {
        let c = config();
        let checks = group_checks(c.pool("linux").unwrap(), Ok(Some(&healthy_group())), now());
        assert_eq!(checks.len(), 4, "{checks:?}");
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");
        assert!(checks[3].detail.contains("watchdog alive on i-1 (heartbeat 4m ago)"), "{checks:?}");
    }

    #[test]
    fn an_unprotected_group_without_tags_and_with_a_silent_watchdog_gets_a_line_for_each() {
        let c = config();
        let mut group = healthy_group();
        group.new_instances_protected_from_scale_in = false;
        group.tags.remove(TAG_BOOT_TIMEOUT);
        group.in_service.push("i-2".into());
        group.tags.insert(format!("{HEARTBEAT_TAG_PREFIX}i-1"), "2026-12-04T17:40:00Z".into());
        let checks = group_checks(c.pool("linux").unwrap(), Ok(Some(&group)), now());
        let problems = problems_of(&checks);
        assert_eq!(problems.len(), 4, "{checks:?}");
        assert!(problems[0].contains("not protected from scale-in"));
        assert!(problems[1].contains("forge-scaler:boot-timeout absent: the function has not ticked"));
        assert!(problems[2].contains("watchdog not running on i-1: last heartbeat 20m ago"));
        assert!(problems[3].contains("watchdog not running on i-2: no heartbeat tag"));
        assert!(checks[1].fix.as_deref().unwrap().contains("--new-instances-protected-from-scale-in"));
        assert!(checks[3].fix.as_deref().unwrap().contains("journalctl -u forge-scaler-agent"));
    }

    #[test]
    fn a_missing_group_or_a_failed_describe_is_one_problem_line() {
        let c = config();
        let missing = group_checks(c.pool("linux").unwrap(), Ok(None), now());
        assert_eq!(problems_of(&missing), vec!["does not exist in this region".to_string()]);
        let failed = group_checks(c.pool("linux").unwrap(), Err("AccessDenied".into()), now());
        assert_eq!(problems_of(&failed), vec!["cannot be described: AccessDenied".to_string()]);
    }

    #[test]
    fn a_group_with_max_size_zero_is_a_problem() {
        let c = config();
        let mut group = healthy_group();
        group.max_size = 0;
        let checks = group_checks(c.pool("linux").unwrap(), Ok(Some(&group)), now());
        assert!(problems_of(&checks)[0].contains("MaxSize 0 means the group can never launch"));
    }

    #[test]
    fn a_command_pool_has_no_group_to_check() {
        let c = config();
        let checks = group_checks(c.pool("mac").unwrap(), Ok(None), now());
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, Status::Ok);
    }

    #[test]
    fn any_problem_makes_the_exit_status_one_and_none_makes_it_zero() {
        let mut list = Checklist { checks: vec![Check::ok("config", "valid")] };
        assert_eq!(list.exit_status(), 0);
        assert!(list.text().ends_with("all 1 checks passed\n"));
        list.checks.push(forge_check("wp", "woodpecker", Err("HTTP 401".into())));
        assert_eq!(list.exit_status(), 1);
        assert!(list.text().contains("1 of 2 checks found a problem"));
    }

    #[test]
    fn an_invalid_configuration_is_one_problem_line_per_problem() {
        let problems = vec![
            Problem { key: "pools/a/slots".into(), message: "must be at least 1".into() },
            Problem { key: "forges/b/token".into(), message: "missing".into() },
        ];
        let checks = config_checks(&config(), &problems);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].line().split(" -> ").next().unwrap(), "problem config pools/a/slots: must be at least 1");
    }

    #[test]
    fn scrubbing_masks_a_secret_wherever_it_was_echoed() {
        let list = Checklist { checks: vec![forge_check("wp", "woodpecker", Err("body: bad token tok-123".into()))] };
        let text = list.scrubbed(&["tok-123", ""]).text();
        assert!(!text.contains("tok-123"), "{text}");
        assert!(text.contains("bad token ***"), "{text}");
    }

    #[test]
    fn a_short_secret_is_masked_only_where_it_stands_alone() {
        let list = Checklist { checks: vec![Check::problem("forge x", "token x refused; x-ray", "fix x")] };
        let text = list.scrubbed(&["x"]).checks[0].line();
        assert_eq!(text, "problem forge ***: token *** refused; x-ray -> fix ***");
    }

    #[test]
    fn every_line_is_one_line() {
        let check = Check::problem("forge x", "first\nsecond", "do\nthis");
        assert_eq!(check.line(), "problem forge x: first second -> do this");
    }

    #[test]
    fn the_function_calls_name_each_group_and_the_prefix_under_the_roles_account() {
        let role = "arn:aws:iam::123456789012:role/fn";
        let groups = vec![("ci-a".to_string(), None), ("ci-b".to_string(), Some("arn:x".to_string()))];
        let calls = function_calls(role, "eu-west-1", &groups, Some("/ci/"));
        let pairs: Vec<(&str, &str)> = calls.iter().map(|c| (c.action, c.resource.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("autoscaling:DescribeAutoScalingGroups", "*"),
                (
                    "autoscaling:SetDesiredCapacity",
                    "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/ci-a"
                ),
                (
                    "autoscaling:CreateOrUpdateTags",
                    "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/ci-a"
                ),
                ("autoscaling:SetDesiredCapacity", "arn:x"),
                ("autoscaling:CreateOrUpdateTags", "arn:x"),
                ("ssm:GetParametersByPath", "arn:aws:ssm:eu-west-1:123456789012:parameter/ci"),
            ]
        );
    }

    #[test]
    fn an_implicit_deny_is_a_problem_and_allowed_is_ok() {
        let call = FunctionCall { action: "autoscaling:SetDesiredCapacity", resource: "arn:g".into() };
        assert_eq!(iam_check("r", &call, Ok("allowed".into())).status, Status::Ok);
        let denied = iam_check("r", &call, Ok("implicitDeny".into()));
        assert_eq!(denied.status, Status::Problem);
        assert!(denied.detail.contains("may not call autoscaling:SetDesiredCapacity on arn:g (implicitDeny)"));
    }
}
