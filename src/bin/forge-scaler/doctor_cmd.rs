//! `doctor`: checks what a deployment needs and prints a checklist (text or JSON on stdout).
//! Exit 0 when every check passed, 1 when any found a problem; clap's usage errors are 2.

use crate::{init_logging, ConfigArgs};
use clap::Args;
use forge_scaler::app::{self, ConfigSource};
use forge_scaler::cloud::ssm::SsmStore;
use forge_scaler::doctor::shell::{self, Deployment};
use forge_scaler::doctor::{Check, Checklist};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  forge-scaler doctor --config forge-scaler.toml
  forge-scaler doctor --ssm-prefix /forge-scaler --function-role arn:aws:iam::123456789012:role/forge-scaler-fn
  forge-scaler doctor --ssm-prefix /forge-scaler --json | jq '.checks[] | select(.status == \"problem\")'")]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also check, by IAM policy simulation, that this role may make the function's calls.
    #[arg(long, value_name = "ARN")]
    function_role: Option<String>,
    /// Print the checklist as JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn doctor(args: DoctorArgs) -> u8 {
    init_logging("warn,aws_config=error", false);
    let source = args.config.source();
    let sdk = app::aws_sdk_config().await;
    let sdk = sdk.region().is_some().then_some(sdk);
    let loaded = match (&source, &sdk) {
        (ConfigSource::Ssm(_), None) => None,
        (ConfigSource::Ssm(_), Some(sdk)) => Some(source.load_raw(Some(&SsmStore::new(sdk))).await),
        (ConfigSource::File(_), _) => Some(source.load_raw(None).await),
    };
    let checklist = match loaded {
        None => Checklist {
            checks: vec![Check::problem(
                "config",
                "cannot read the SSM prefix: no AWS region",
                "set AWS_REGION (or `region` in the AWS profile)",
            )],
        },
        Some(Err(e)) => Checklist {
            checks: vec![Check::problem(
                "config",
                format!("cannot be loaded: {e}"),
                "fix the file or the parameters; nothing else can be checked without them",
            )],
        },
        Some(Ok(raw)) => {
            let ssm_prefix = match &source {
                ConfigSource::Ssm(prefix) => Some(prefix.as_str()),
                ConfigSource::File(_) => None,
            };
            let deployment =
                Deployment { raw: &raw, sdk: sdk.as_ref(), ssm_prefix, function_role: args.function_role.as_deref() };
            shell::run(&deployment, chrono::Utc::now()).await
        }
    };
    if args.json {
        let document = serde_json::json!({ "passed": checklist.passed(), "checks": checklist.checks });
        println!("{}", serde_json::to_string_pretty(&document).expect("checklist serializes"));
    } else {
        print!("{}", checklist.text());
    }
    checklist.exit_status()
}
