//! An in-memory `Fleet`: groups with MinSize/MaxSize enforced as AWS does. Unit tests and
//! tick tests use it; it records every write so tests can assert what was (not) applied.

use super::{Fleet, FleetError, GroupState};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A fleet held in memory.
#[derive(Debug, Default)]
pub struct MemoryFleet {
    groups: Mutex<BTreeMap<String, GroupState>>,
    writes: Mutex<Vec<String>>,
    describe_calls: Mutex<u32>,
}

impl MemoryFleet {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a group with min, max and desired.
    pub fn with_group(self, name: &str, min: u32, max: u32, desired: u32) -> Self {
        self.groups
            .lock()
            .unwrap()
            .insert(name.to_string(), GroupState::new(min, max, desired, desired, 0, BTreeMap::new()));
        self
    }
    pub fn group(&self, name: &str) -> Option<GroupState> {
        self.groups.lock().unwrap().get(name).cloned()
    }
    /// Every write, as `set_desired <group> <n>` or `set_tags <group> k=v,...`.
    pub fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }
    pub fn describe_calls(&self) -> u32 {
        *self.describe_calls.lock().unwrap()
    }
}

#[async_trait]
impl Fleet for MemoryFleet {
    async fn describe(&self, names: &[String]) -> Result<BTreeMap<String, GroupState>, FleetError> {
        *self.describe_calls.lock().unwrap() += 1;
        let groups = self.groups.lock().unwrap();
        Ok(names.iter().filter_map(|n| groups.get(n).map(|g| (n.clone(), g.clone()))).collect())
    }

    async fn set_desired(&self, name: &str, desired: u32) -> Result<(), FleetError> {
        let mut groups = self.groups.lock().unwrap();
        let g = groups.get_mut(name).ok_or_else(|| FleetError::Validation {
            operation: "SetDesiredCapacity",
            group: name.to_string(),
            message: format!("AutoScalingGroup name not found - AutoScalingGroup {name} not found"),
        })?;
        if desired > g.group.max || desired < g.group.min {
            return Err(FleetError::Validation {
                operation: "SetDesiredCapacity",
                group: name.to_string(),
                message: format!(
                    "New SetDesiredCapacity value {desired} is outside min {} / max {}",
                    g.group.min, g.group.max
                ),
            });
        }
        g.group.booting += desired.saturating_sub(g.group.desired);
        g.group.desired = desired;
        self.writes.lock().unwrap().push(format!("set_desired {name} {desired}"));
        Ok(())
    }

    async fn set_tags(&self, name: &str, tags: &[(String, String)]) -> Result<(), FleetError> {
        let mut groups = self.groups.lock().unwrap();
        let g = groups.get_mut(name).ok_or_else(|| FleetError::Validation {
            operation: "CreateOrUpdateTags",
            group: name.to_string(),
            message: "group not found".into(),
        })?;
        for (k, v) in tags {
            g.tags.insert(k.clone(), v.clone());
        }
        let state = GroupState::new(
            g.group.min,
            g.group.max,
            g.group.desired,
            g.group.in_service,
            g.group.booting,
            g.tags.clone(),
        );
        *g = state;
        let list: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.writes.lock().unwrap().push(format!("set_tags {name} {}", list.join(",")));
        Ok(())
    }
}
