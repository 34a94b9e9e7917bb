//! The agent fleet template (infra/agent-fleet.yaml) embeds each forge's user-data script
//! (infra/user-data/*.sh) as an Fn::Sub string: the copies must match the scripts
//! (regenerate with scripts/gen-agent-fleet.py), and the template's safety settings must hold.

use std::path::Path;

const FORGES: [&str; 7] = ["woodpecker", "forgejo", "buildkite", "gitea", "drone", "github", "gitlab"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A forge's script with `# @include FILE` lines replaced by that file minus its comment
/// header, as scripts/gen-agent-fleet.py embeds it.
fn expanded_script(forge: &str) -> String {
    let script = std::fs::read_to_string(root().join(format!("infra/user-data/{forge}.sh")))
        .unwrap_or_else(|e| panic!("read infra/user-data/{forge}.sh: {e}"));
    let mut out = Vec::new();
    for line in script.lines() {
        match line.strip_prefix("# @include ") {
            Some(file) => {
                let shared = std::fs::read_to_string(root().join("infra/user-data").join(file.trim()))
                    .unwrap_or_else(|e| panic!("{forge}: include {file}: {e}"));
                out.extend(shared.lines().skip_while(|l| l.starts_with('#')).map(str::to_string));
            }
            None => out.push(line.to_string()),
        }
    }
    out.join("\n")
}

fn template() -> String {
    std::fs::read_to_string(root().join("infra/agent-fleet.yaml")).expect("read infra/agent-fleet.yaml")
}

/// The block scalar holding `forge`'s script, de-indented: it starts at `#!/bin/bash` followed
/// by the script's marker line and runs while lines keep the indentation (or are blank).
fn embedded_script(template: &str, forge: &str) -> Option<String> {
    let lines: Vec<&str> = template.lines().collect();
    let marker = format!("# forge-scaler agent fleet user-data: {forge}");
    let start = (0..lines.len().saturating_sub(1))
        .find(|&i| lines[i].trim() == "#!/bin/bash" && lines[i + 1].trim() == marker)?;
    let indent = lines[start].len() - lines[start].trim_start().len();
    let mut body = Vec::new();
    for line in &lines[start..] {
        if line.trim().is_empty() {
            body.push(String::new());
        } else if line.len() - line.trim_start().len() >= indent {
            body.push(line[indent..].to_string());
        } else {
            break;
        }
    }
    while body.last().is_some_and(|l| l.is_empty()) {
        body.pop();
    }
    Some(body.join("\n"))
}

#[test]
fn every_forge_script_is_embedded_verbatim() {
    let template = template();
    for forge in FORGES {
        let script = expanded_script(forge);
        let embedded = embedded_script(&template, forge)
            .unwrap_or_else(|| panic!("{forge}: script not found in the template; run scripts/gen-agent-fleet.py"));
        assert_eq!(
            embedded,
            script.trim_end(),
            "{forge}: the template's copy differs from infra/user-data/{forge}.sh; run scripts/gen-agent-fleet.py"
        );
    }
}

#[test]
fn every_script_installs_the_watchdog_as_a_systemd_unit() {
    for forge in FORGES {
        let script = expanded_script(forge);
        assert!(script.contains("'s3://${WatchdogBucket}/${WatchdogKey}'"), "{forge}: downloads the watchdog");
        assert!(script.contains("echo '${WatchdogSha256}  '"), "{forge}: checks the watchdog's SHA-256");
        for flag in [
            "--max-jobs ${MaxJobs}",
            "--on-rebalance ${OnRebalance}",
            "--unknown-grace ${UnknownGrace}",
            "--max-busy ${MaxBusy}",
        ] {
            assert!(script.contains(flag), "{forge}: passes {flag}");
        }
        assert!(script.contains("/etc/systemd/system/forge-scaler-agent.service"), "{forge}: systemd unit");
        assert!(script.contains("ExecStart=/usr/local/bin/forge-scaler agent"), "{forge}: runs the watchdog");
        assert!(script.contains("--idle-timeout ${IdleTimeoutSeconds}s"), "{forge}: idle timeout default");
        // Shell variables must not use ${...}: Fn::Sub would take them for parameters.
        for var in
            script.match_indices("${").map(|(i, _)| &script[i..script[i..].find('}').map_or(i + 2, |j| i + j + 1)])
        {
            let name = var.trim_start_matches("${").trim_end_matches('}');
            assert!(
                [
                    "AWS::Region",
                    "WatchdogBucket",
                    "WatchdogKey",
                    "WatchdogSha256",
                    "MaxJobs",
                    "OnRebalance",
                    "UnknownGrace",
                    "MaxBusy",
                    "AgentUrl",
                    "ForgeUrl",
                    "AgentToken",
                    "AgentLabels",
                    "Slots",
                    "IdleTimeoutSeconds",
                    "BootTimeoutSeconds"
                ]
                .contains(&name),
                "{forge}: {var} is not a template parameter"
            );
        }
    }
}

#[test]
fn the_template_keeps_its_safety_settings() {
    let t = template();
    for needle in [
        "HttpTokens: required",
        "HttpPutResponseHopLimit: 1",
        "NewInstancesProtectedFromScaleIn: true",
        "Cooldown: \"60\"",
        "ScalingProcesses=[\"AZRebalance\"]",
        "Action: autoscaling:TerminateInstanceInAutoScalingGroup",
        "autoScalingGroupName/${GroupNamePrefix}${AWS::StackName}",
        "InstanceInitiatedShutdownBehavior: terminate",
        "AWS::AutoScaling::WarmPool",
        "AWS::AutoScaling::ScheduledAction",
        "MixedInstancesPolicy",
    ] {
        assert!(t.contains(needle), "infra/agent-fleet.yaml lacks {needle}");
    }
    for forbidden in ["SetInstanceHealth", "ShouldDecrementDesiredCapacity=false", "ec2:TerminateInstances"] {
        assert!(!t.contains(forbidden), "infra/agent-fleet.yaml must not grant or use {forbidden}");
    }
}

#[test]
fn every_script_parses_as_bash() {
    for forge in FORGES {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join(format!("{forge}.sh"));
        std::fs::write(&script, expanded_script(forge)).unwrap();
        let out = std::process::Command::new("bash").arg("-n").arg(&script).output().expect("run bash -n");
        assert!(out.status.success(), "{forge}: bash -n: {}", String::from_utf8_lossy(&out.stderr));
    }
}
