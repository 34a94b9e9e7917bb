//! Generic adapter: GETs the forge URL as JSON and reads the pending (and optionally
//! running) count at RFC 6901 JSON pointers, for Vespene-style and home-grown queues.
//! Owns the count interpretation; it must not guess a pointer or treat a missing one as zero.

use super::http::{self, ForgeHttp};
use super::{ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;
use serde_json::Value;
use url::Url;

/// Counts above this are clamped (see `buildkite::MAX_COUNT`).
pub const MAX_COUNT: u64 = super::buildkite::MAX_COUNT;

/// Reads counts from any JSON endpoint.
pub struct Generic {
    http: ForgeHttp,
    url: Url,
    pending_pointer: Option<String>,
    running_pointer: Option<String>,
}

impl Generic {
    pub fn new(http: ForgeHttp, forge: &ForgeConfig) -> Self {
        Generic {
            http,
            url: forge.url.clone(),
            pending_pointer: forge.pending_pointer.clone(),
            running_pointer: forge.running_pointer.clone(),
        }
    }
}

/// The count at `pointer` in `document`: a non-negative integer, a string holding one, or
/// an array (its length). `key` names the config key in errors.
pub fn count_at(document: &Value, key: &str, pointer: &str) -> Result<u64, String> {
    let value = document.pointer(pointer).ok_or_else(|| format!("{key} {pointer:?} is not in the answer"))?;
    let count = match value {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
        }
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Array(items) => Some(items.len() as u64),
        _ => None,
    };
    count.ok_or_else(|| {
        format!(
            "{key} {pointer:?} points at {}, not a count (a non-negative integer, a numeric string or an array)",
            describe(value)
        )
    })
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

#[async_trait]
impl JobSource for Generic {
    async fn jobs(&self, _pool: &PoolConfig) -> Result<PoolJobs, ForgeError> {
        let pending_pointer = self
            .pending_pointer
            .as_deref()
            .ok_or_else(|| ForgeError::Other("generic forge: pending_pointer is not set".to_string()))?;
        let fetched = self.http.get_json::<Value>(&self.url, &[("accept", "application/json")]).await?;
        let decode_error = |message: String| ForgeError::Decode { url: http::redact(&self.url), message };
        let pending = count_at(&fetched.body, "pending_pointer", pending_pointer).map_err(decode_error)?;
        let running = match &self.running_pointer {
            Some(pointer) => count_at(&fetched.body, "running_pointer", pointer).map_err(decode_error)?,
            None => 0,
        };
        Ok(PoolJobs {
            pending: PoolJobs::anonymous(pending.min(MAX_COUNT) as u32),
            running: PoolJobs::anonymous(running.min(MAX_COUNT) as u32),
            waiting: 0,
            requests: 1,
            poll_hint: None,
            partial: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_are_integers_numeric_strings_or_array_lengths() {
        let doc = json!({"q": {"n": 4, "s": " 12 ", "list": [1, 2, 3], "f": 2.0}, "a/b": 5, "m~n": 6});
        assert_eq!(count_at(&doc, "pending_pointer", "/q/n"), Ok(4));
        assert_eq!(count_at(&doc, "pending_pointer", "/q/s"), Ok(12));
        assert_eq!(count_at(&doc, "pending_pointer", "/q/list"), Ok(3));
        assert_eq!(count_at(&doc, "pending_pointer", "/q/f"), Ok(2));
        assert_eq!(count_at(&doc, "pending_pointer", "/a~1b"), Ok(5));
        assert_eq!(count_at(&doc, "pending_pointer", "/m~0n"), Ok(6));
    }

    #[test]
    fn anything_else_is_an_error_naming_the_pointer() {
        let doc = json!({"neg": -1, "frac": 2.5, "word": "many", "obj": {}, "nul": null, "yes": true});
        for p in ["/neg", "/frac", "/word", "/obj", "/nul", "/yes", "/absent"] {
            let e = count_at(&doc, "running_pointer", p).unwrap_err();
            assert!(e.contains("running_pointer") && e.contains(p), "{e}");
        }
    }
}
