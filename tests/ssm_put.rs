//! `forge-scaler ssm put` against moto: a valid TOML config lands under the prefix with the
//! token as a SecureString and everything else as String, and reads back as the same config;
//! an invalid file writes nothing and names every problem.

mod support;

use forge_scaler::app::ConfigSource;
use forge_scaler::cloud::ssm::SsmStore;
use std::process::Command;
use support::Moto;

const TOKEN: &str = "wp-put-s3cr3t";

fn run_put(moto: &Moto, file: &std::path::Path, prefix: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_forge-scaler"))
        .args(["ssm", "put", "--config"])
        .arg(file)
        .args(["--ssm-prefix", prefix])
        .env_remove("AWS_PROFILE")
        .envs(moto.env())
        .env("WP_TOKEN", TOKEN)
        .output()
        .expect("run forge-scaler ssm put")
}

async fn parameter_type(sdk: &aws_config::SdkConfig, name: &str) -> String {
    let answer = aws_sdk_ssm::Client::new(sdk).get_parameter().name(name).send().await.expect("parameter exists");
    answer.parameter().and_then(|p| p.r#type()).map(|t| t.as_str().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_writes_the_token_as_secure_string_and_reads_back_the_same_config() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scaler.toml");
    std::fs::write(
        &file,
        "[forges.wp]\nkind = \"woodpecker\"\nurl = \"https://ci.example\"\ntoken_env = \"WP_TOKEN\"\n\
         [pools.linux]\nforge = \"wp\"\nasg = \"ci-linux\"\nslots = 2\nlabels = [\"platform=linux/amd64\"]\n\
         [settings]\npoll_interval = \"15s\"\n",
    )
    .unwrap();
    let out = run_put(&moto, &file, "/fs-put");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ssm put failed: {stdout} {stderr}");
    assert!(stdout.contains("1 SecureString"), "{stdout}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN), "the token is never printed");

    assert_eq!(parameter_type(&sdk, "/fs-put/forges/wp/token").await, "SecureString");
    assert_eq!(parameter_type(&sdk, "/fs-put/pools/linux/slots").await, "String");
    assert_eq!(support::get_parameter(&sdk, "/fs-put/forges/wp/token").await, TOKEN);
    assert_eq!(support::get_parameter(&sdk, "/fs-put/pools/linux/labels").await, "platform=linux/amd64");

    let store = SsmStore::new(&sdk);
    let from_ssm = ConfigSource::Ssm("/fs-put".into()).load(Some(&store)).await.expect("valid config in SSM");
    let from_file = forge_scaler::config::Config::from_toml(&std::fs::read_to_string(&file).unwrap(), |v| {
        (v == "WP_TOKEN").then(|| TOKEN.to_string())
    })
    .unwrap();
    assert_eq!(from_ssm, from_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_writes_nothing_and_names_every_problem() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[forges.wp]\nkind = \"woodpecker\"\nurl = \"https://ci.example\"\n\
         [pools.linux]\nforge = \"wp\"\nasg = \"ci-linux\"\nslots = 0\n\
         [pools.mac]\nforge = \"nope\"\nasg = \"ci-mac\"\n",
    )
    .unwrap();
    let out = run_put(&moto, &file, "/fs-put-bad");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in ["pools/linux/slots", "forges/wp/token", "pools/mac/forge"] {
        assert!(stderr.contains(key), "names {key}: {stderr}");
    }
    assert!(stderr.contains("nothing written"), "{stderr}");
    let written = aws_sdk_ssm::Client::new(&sdk)
        .get_parameters_by_path()
        .path("/fs-put-bad")
        .recursive(true)
        .send()
        .await
        .expect("list the prefix");
    assert!(written.parameters().is_empty(), "nothing under the prefix: {:?}", written.parameters());
}
