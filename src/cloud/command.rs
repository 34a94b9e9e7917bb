//! A `Fleet` for other clouds (Vespene's shell executor): the planned size is handed to a
//! user command in its environment; the current size comes from `size_command` or, without
//! one, from the last size set. Like an ASG it is only raised; workers leave on their own.

use super::{Fleet, FleetError, GroupState, TAG_LAST_SCALE_OUT};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::process::Command;

/// Longest a fleet command may run before it is killed and reported.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// One pool's capacity behind shell commands.
#[derive(Debug)]
pub struct CommandFleet {
    pool: String,
    command: String,
    size_command: Option<String>,
    min_instances: u32,
    max_instances: u32,
    timeout: Duration,
    /// Last size set and tags written, remembered by the long-running process.
    state: Mutex<(Option<u32>, BTreeMap<String, String>)>,
}

impl CommandFleet {
    pub fn new(pool: &str, command: &str, size_command: Option<&str>, min_instances: u32, max_instances: u32) -> Self {
        CommandFleet {
            pool: pool.to_string(),
            command: command.to_string(),
            size_command: size_command.map(str::to_string),
            min_instances,
            max_instances,
            timeout: COMMAND_TIMEOUT,
            state: Mutex::new((None, BTreeMap::new())),
        }
    }

    /// Overrides the command timeout (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn error(&self, message: impl Into<String>) -> FleetError {
        FleetError::Command { pool: self.pool.clone(), message: message.into() }
    }

    async fn run(&self, script: &str, env: &[(&str, String)]) -> Result<String, FleetError> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).env("FORGE_SCALER_POOL", &self.pool).kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = tokio::time::timeout(self.timeout, cmd.output())
            .await
            .map_err(|_| {
                self.error(format!("{script:?} did not finish within {}s and was killed", self.timeout.as_secs()))
            })?
            .map_err(|e| self.error(format!("cannot start {script:?}: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            let last: String = last.chars().take(200).collect();
            return Err(self.error(format!(
                "{script:?} failed ({}){}",
                output.status,
                if last.is_empty() { String::new() } else { format!(": {last}") }
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    async fn current_size(&self) -> Result<u32, FleetError> {
        match &self.size_command {
            Some(script) => {
                let out = self.run(script, &[]).await?;
                let text = out.trim();
                text.parse::<u32>().map_err(|_| {
                    self.error(format!("size_command {script:?} printed {text:?}, expected a whole number"))
                })
            }
            None => Ok(self.state.lock().expect("state lock").0.unwrap_or(self.min_instances)),
        }
    }
}

#[async_trait]
impl Fleet for CommandFleet {
    async fn describe(&self, _groups: &[String]) -> Result<BTreeMap<String, GroupState>, FleetError> {
        let size = self.current_size().await?;
        let tags = self.state.lock().expect("state lock").1.clone();
        let state = GroupState::new(self.min_instances, self.max_instances, size, size, 0, tags);
        Ok([(self.pool.clone(), state)].into())
    }

    async fn set_desired(&self, group: &str, desired: u32) -> Result<(), FleetError> {
        self.raise(group, desired, 0).await
    }

    async fn raise(&self, _group: &str, desired: u32, queued: u32) -> Result<(), FleetError> {
        if desired > self.max_instances || desired < self.min_instances {
            return Err(self.error(format!(
                "size {desired} outside min_instances {} / max_instances {}",
                self.min_instances, self.max_instances
            )));
        }
        self.run(
            &self.command,
            &[("FORGE_SCALER_SIZE", desired.to_string()), ("FORGE_SCALER_QUEUED", queued.to_string())],
        )
        .await?;
        self.state.lock().expect("state lock").0 = Some(desired);
        Ok(())
    }

    async fn set_tags(&self, _group: &str, tags: &[(String, String)]) -> Result<(), FleetError> {
        // Only the cooldown tag matters to a command fleet; it lives in this process.
        let mut state = self.state.lock().expect("state lock");
        for (k, v) in tags.iter().filter(|(k, _)| k == TAG_LAST_SCALE_OUT) {
            state.1.insert(k.clone(), v.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cloud: the command writes the size and queued count to files, size_command reads it.
    fn fake_cloud(dir: &std::path::Path) -> CommandFleet {
        let size = dir.join("size");
        let queued = dir.join("queued");
        std::fs::write(&size, "1\n").unwrap();
        CommandFleet::new(
            "hetzner",
            &format!(
                "test \"$FORGE_SCALER_POOL\" = hetzner && echo \"$FORGE_SCALER_SIZE\" > {} && echo \"$FORGE_SCALER_QUEUED\" > {}",
                size.display(),
                queued.display()
            ),
            Some(&format!("cat {}", size.display())),
            0,
            5,
        )
    }

    #[tokio::test]
    async fn raises_a_fake_clouds_size() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fake_cloud(dir.path());
        let before = fleet.describe(&["hetzner".into()]).await.unwrap();
        assert_eq!(before["hetzner"].group.desired, 1);
        assert_eq!(before["hetzner"].group.max, 5);
        fleet.raise("hetzner", 4, 7).await.unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("size")).unwrap().trim(), "4");
        assert_eq!(std::fs::read_to_string(dir.path().join("queued")).unwrap().trim(), "7");
        assert_eq!(fleet.describe(&[]).await.unwrap()["hetzner"].group.desired, 4);
    }

    #[tokio::test]
    async fn without_size_command_remembers_the_last_size() {
        let fleet = CommandFleet::new("p", "true", None, 1, 5);
        assert_eq!(fleet.describe(&[]).await.unwrap()["p"].group.desired, 1);
        fleet.raise("p", 3, 3).await.unwrap();
        assert_eq!(fleet.describe(&[]).await.unwrap()["p"].group.desired, 3);
    }

    #[tokio::test]
    async fn a_failing_command_is_a_fleet_error_and_changes_nothing() {
        let fleet = CommandFleet::new("p", "echo quota exceeded >&2; exit 3", None, 0, 5);
        let err = fleet.raise("p", 2, 2).await.unwrap_err().to_string();
        assert!(err.contains("fleet command for pool p") && err.contains("quota exceeded"), "{err}");
        assert_eq!(fleet.describe(&[]).await.unwrap()["p"].group.desired, 0);
    }

    #[tokio::test]
    async fn garbage_from_size_command_is_an_error() {
        let fleet = CommandFleet::new("p", "true", Some("echo lots"), 0, 5);
        let err = fleet.describe(&[]).await.unwrap_err().to_string();
        assert!(err.contains("printed \"lots\", expected a whole number"), "{err}");
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed() {
        let fleet = CommandFleet::new("p", "sleep 30", None, 0, 5).with_timeout(Duration::from_millis(200));
        let err = fleet.raise("p", 2, 2).await.unwrap_err().to_string();
        assert!(err.contains("did not finish"), "{err}");
    }

    #[tokio::test]
    async fn cooldown_tag_survives_between_ticks() {
        let fleet = CommandFleet::new("p", "true", None, 0, 5);
        fleet.set_tags("p", &[(TAG_LAST_SCALE_OUT.into(), "2026-11-22T12:00:00Z".into())]).await.unwrap();
        let g = &fleet.describe(&[]).await.unwrap()["p"];
        assert!(g.group.last_scale_out.is_some());
    }
}
