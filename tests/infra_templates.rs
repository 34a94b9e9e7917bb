//! The two stacks fit together: the function stack (template.yaml) may raise and tag the group
//! the fleet stack (infra/agent-fleet.yaml) creates, with both templates' defaults, and the
//! instance role reads only its watchdog object and writes only heartbeat tags. Both templates
//! are read through scripts/cfn-yaml-to-json.py (PyYAML, from requirements-test.txt) and their
//! intrinsic functions evaluated here for given parameter values, as CloudFormation would.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn template(path: &str) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out =
        Command::new("python3").arg(root.join("scripts/cfn-yaml-to-json.py")).arg(root.join(path)).output().expect(
            "run python3 scripts/cfn-yaml-to-json.py (install requirements-test.txt: PyYAML comes with cfn-lint)",
        );
    assert!(out.status.success(), "cfn-yaml-to-json.py {path}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{path}: not JSON: {e}"))
}

/// A stack: a template with parameter values (its defaults unless overridden) and a name.
struct Stack {
    template: Value,
    params: HashMap<String, Value>,
    name: String,
}

impl Stack {
    fn new(path: &str, name: &str, overrides: &[(&str, &str)]) -> Stack {
        let template = template(path);
        let mut params = HashMap::new();
        for (key, spec) in template["Parameters"].as_object().expect("Parameters") {
            let kind = spec["Type"].as_str().unwrap_or("String");
            let given = overrides.iter().find(|(k, _)| k == key).map(|(_, v)| json!(v));
            let Some(value) = given.or_else(|| spec.get("Default").cloned()) else { continue };
            let value = match (kind, value) {
                (k, Value::String(s)) if k == "CommaDelimitedList" || k.starts_with("List<") => {
                    json!(s.split(',').map(str::trim).collect::<Vec<_>>())
                }
                (_, Value::Number(n)) => json!(n.to_string()),
                (_, v) => v,
            };
            params.insert(key.clone(), value);
        }
        for (key, _) in overrides {
            assert!(params.contains_key(*key), "{path} has no parameter {key}");
        }
        Stack { template, params, name: name.to_string() }
    }

    fn reference(&self, name: &str) -> Value {
        match name {
            "AWS::Partition" => json!("aws"),
            "AWS::Region" => json!(REGION),
            "AWS::AccountId" => json!(ACCOUNT),
            "AWS::StackName" => json!(self.name),
            "AWS::NoValue" => Value::Null,
            _ => self.params.get(name).cloned().unwrap_or_else(|| json!(format!("<{name}>"))),
        }
    }

    fn condition(&self, name: &str) -> bool {
        let cond = &self.template["Conditions"][name];
        assert!(!cond.is_null(), "no condition {name}");
        self.truth(cond)
    }

    fn truth(&self, v: &Value) -> bool {
        let Value::Object(m) = v else { panic!("not a condition: {v}") };
        let (f, args) = m.iter().next().unwrap();
        match f.as_str() {
            "Fn::Not" => !self.truth(&args[0]),
            "Fn::Equals" => self.eval(&args[0]) == self.eval(&args[1]),
            "Fn::And" => args.as_array().unwrap().iter().all(|a| self.truth(a)),
            "Fn::Or" => args.as_array().unwrap().iter().any(|a| self.truth(a)),
            "Condition" => self.condition(args.as_str().unwrap()),
            other => panic!("condition function {other} not modelled"),
        }
    }

    fn sub(&self, text: &str, vars: &Map<String, Value>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').expect("unclosed ${") + i;
            let name = &rest[i + 2..end];
            let value = match vars.get(name) {
                Some(v) => self.eval(v),
                None => self.reference(name),
            };
            out.push_str(value.as_str().unwrap_or_else(|| panic!("${{{name}}} is not a string: {value}")));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Evaluates the intrinsic functions in `v`.
    fn eval(&self, v: &Value) -> Value {
        match v {
            Value::Array(items) => Value::Array(items.iter().map(|i| self.eval(i)).filter(|i| !i.is_null()).collect()),
            Value::Object(m) if m.len() == 1 => {
                let (f, args) = m.iter().next().unwrap();
                match f.as_str() {
                    "Ref" => self.reference(args.as_str().unwrap()),
                    "Fn::Sub" => match args {
                        Value::String(s) => json!(self.sub(s, &Map::new())),
                        Value::Array(a) => json!(self.sub(a[0].as_str().unwrap(), a[1].as_object().unwrap())),
                        _ => panic!("bad Fn::Sub {args}"),
                    },
                    "Fn::Join" => {
                        let parts = self.eval(&args[1]);
                        let parts: Vec<&str> = parts.as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
                        json!(parts.join(args[0].as_str().expect("a Join delimiter is a literal string")))
                    }
                    "Fn::Split" => {
                        let text = self.eval(&args[1]);
                        json!(text.as_str().unwrap().split(args[0].as_str().unwrap()).collect::<Vec<_>>())
                    }
                    "Fn::If" => {
                        let branch = if self.condition(args[0].as_str().unwrap()) { &args[1] } else { &args[2] };
                        self.eval(branch)
                    }
                    "Fn::Select" => {
                        let list = self.eval(&args[1]);
                        list[self.eval(&args[0]).as_str().unwrap().parse::<usize>().unwrap()].clone()
                    }
                    _ => Value::Object(m.iter().map(|(k, v)| (k.clone(), self.eval(v))).collect()),
                }
            }
            Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), self.eval(v))).collect()),
            other => other.clone(),
        }
    }

    fn resource(&self, name: &str) -> Value {
        let r = &self.template["Resources"][name];
        assert!(!r.is_null(), "no resource {name}");
        self.eval(r)
    }

    /// The statements of every policy of a resource, evaluated.
    fn statements(&self, resource: &str, policies_at: &[&str]) -> Vec<Value> {
        let mut node = self.resource(resource);
        for key in policies_at {
            node = node[*key].clone();
        }
        let mut out = Vec::new();
        for policy in node.as_array().expect("a list of policies") {
            let doc = if policy.get("PolicyDocument").is_some() { &policy["PolicyDocument"] } else { policy };
            out.extend(doc["Statement"].as_array().cloned().unwrap_or_default());
        }
        out
    }
}

fn statement<'a>(statements: &'a [Value], sid: &str) -> &'a Value {
    statements.iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no statement {sid}"))
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        _ => panic!("not a string or list: {v}"),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
fn iam_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let mut reach = vec![false; t.len() + 1];
    reach[0] = true;
    for &c in &p {
        let mut next = vec![false; t.len() + 1];
        for i in 0..=t.len() {
            if !reach[i] {
                continue;
            }
            match c {
                '*' => next[i..].iter_mut().for_each(|n| *n = true),
                '?' if i < t.len() => next[i + 1] = true,
                _ if i < t.len() && t[i] == c => next[i + 1] = true,
                _ => {}
            }
        }
        reach = next;
    }
    reach[t.len()]
}

fn group_arn(name: &str) -> String {
    format!("arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:0f8e3c5a-1b2d-4e6f-9a7b-3c4d5e6f7a8b:autoScalingGroupName/{name}")
}

fn fleet_group(fleet: &Stack) -> String {
    fleet.resource("AgentGroup")["Properties"]["AutoScalingGroupName"].as_str().unwrap().to_string()
}

/// Whether every statement `sids` of the function's role allows acting on `group`.
fn function_may(function: &Stack, sids: &[&str], group: &str) -> bool {
    let statements = function.statements("ScalerFunction", &["Properties", "Policies"]);
    sids.iter().all(|sid| {
        let s = statement(&statements, sid);
        as_list(&s["Resource"]).iter().any(|pattern| iam_match(pattern, &group_arn(group)))
    })
}

#[test]
fn with_both_templates_defaults_the_function_may_raise_and_tag_the_fleets_group() {
    let function = Stack::new("template.yaml", "forge-scaler", &[]);
    for stack_name in ["linux", "arm-builders"] {
        let fleet = Stack::new("infra/agent-fleet.yaml", stack_name, &[]);
        let group = fleet_group(&fleet);
        assert_eq!(group, format!("ci-{stack_name}"));
        assert!(
            function_may(&function, &["RaisePoolGroups", "TagPoolGroups"], &group),
            "the function's default GroupNamePrefix does not cover the fleet's default group {group}"
        );
    }
}

#[test]
fn a_fleet_outside_the_functions_prefix_is_not_raised() {
    let function = Stack::new("template.yaml", "forge-scaler", &[]);
    let fleet = Stack::new("infra/agent-fleet.yaml", "linux", &[("GroupNamePrefix", "build-")]);
    assert!(!function_may(&function, &["RaisePoolGroups"], &fleet_group(&fleet)));
    let widened = Stack::new("template.yaml", "forge-scaler", &[("GroupNamePrefix", "build-")]);
    assert!(function_may(&widened, &["RaisePoolGroups", "TagPoolGroups"], &fleet_group(&fleet)));
}

#[test]
fn a_group_names_list_allows_exactly_those_groups() {
    let function = Stack::new("template.yaml", "forge-scaler", &[("GroupNames", "ci-linux,build-arm")]);
    for group in ["ci-linux", "build-arm"] {
        assert!(function_may(&function, &["RaisePoolGroups", "TagPoolGroups"], group), "{group} not allowed");
    }
    for group in ["ci-linux2", "ci-other", "build-arm-x", "build"] {
        assert!(!function_may(&function, &["RaisePoolGroups"], group), "{group} allowed");
        assert!(!function_may(&function, &["TagPoolGroups"], group), "{group} taggable");
    }
    let statements = function.statements("ScalerFunction", &["Properties", "Policies"]);
    for sid in ["RaisePoolGroups", "TagPoolGroups"] {
        assert_eq!(
            statement(&statements, sid)["Condition"]["StringEquals"]["aws:RequestedRegion"],
            json!(REGION),
            "{sid}: the wildcarded ARNs are kept to the stack's region"
        );
    }
}

#[test]
fn the_instance_role_reads_only_its_watchdog_object_and_tags_only_heartbeats_of_its_group() {
    let fleet = Stack::new(
        "infra/agent-fleet.yaml",
        "linux",
        &[("WatchdogBucket", "my-artefacts"), ("WatchdogKey", "forge-scaler/0.1.0/forge-scaler-x86_64")],
    );
    let statements = fleet.statements("InstanceRole", &["Properties", "Policies"]);
    let read = statement(&statements, "ReadWatchdogBinary");
    assert_eq!(read["Action"], json!("s3:GetObject"));
    assert_eq!(read["Resource"], json!("arn:aws:s3:::my-artefacts/forge-scaler/0.1.0/forge-scaler-x86_64"));

    let heartbeat = statement(&statements, "HeartbeatTagOwnGroup");
    let actions = as_list(&heartbeat["Action"]);
    assert_eq!(actions, ["autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"]);
    let own = group_arn("ci-linux");
    assert!(as_list(&heartbeat["Resource"]).iter().all(|p| iam_match(p, &own)));
    assert!(!as_list(&heartbeat["Resource"]).iter().any(|p| iam_match(p, &group_arn("ci-linux-other"))));
    assert_eq!(heartbeat["Condition"]["ForAllValues:StringLike"]["aws:TagKeys"], json!("forge-scaler:heartbeat:*"));
    assert_eq!(heartbeat["Condition"]["Null"]["aws:TagKeys"], json!("false"), "an empty key list must not pass");

    let leave = statement(&statements, "LeaveOwnGroup");
    assert_eq!(
        leave["Resource"],
        json!(format!("arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/ci-linux"))
    );
    // Every write is scoped to the group or the object; only Describe* may be "*".
    for s in &statements {
        if as_list(&s["Resource"]).iter().any(|r| r == "*") {
            assert!(as_list(&s["Action"]).iter().all(|a| a.starts_with("autoscaling:Describe")), "{s}");
        }
    }
}

#[test]
fn an_instance_that_shuts_itself_down_is_terminated() {
    let fleet = Stack::new("infra/agent-fleet.yaml", "linux", &[]);
    let data = &fleet.resource("LaunchTemplate")["Properties"]["LaunchTemplateData"];
    assert_eq!(data["InstanceInitiatedShutdownBehavior"], json!("terminate"));
}

#[test]
fn the_iam_wildcard_match_used_here_matches_as_iam_does() {
    assert!(iam_match("a*c", "abbc"));
    assert!(iam_match("a*", "a"));
    assert!(iam_match("a?c", "abc"));
    assert!(!iam_match("a?c", "ac"));
    assert!(!iam_match("ci-*", "build-x"));
    assert!(!iam_match("abc", "abcd"));
}
