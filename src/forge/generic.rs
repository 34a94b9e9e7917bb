//! Generic adapter: GETs the forge URL as JSON and reads the pending (and optionally
//! running) count at RFC 6901 JSON pointers, for Vespene-style and home-grown queues.
//! Owns the count interpretation; it must not guess a pointer or treat a missing one as zero.

use super::http::ForgeHttp;
use super::{ForgeError, JobSource};
use crate::config::{ForgeConfig, PoolConfig};
use crate::model::PoolJobs;
use async_trait::async_trait;
use serde_json::Value;
use tokio::time::Instant;
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

/// Reads the counts at the pointers from one answer: the adapter's whole interpretation of
/// the bytes (parsed once into one `Value`), exposed for the fuzz targets.
#[doc(hidden)]
pub fn parse_counts(body: &[u8], pending_pointer: &str, running_pointer: Option<&str>) -> Result<PoolJobs, String> {
    let document: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let pending = count_at(&document, "pending_pointer", pending_pointer)?;
    let running = match running_pointer {
        Some(pointer) => count_at(&document, "running_pointer", pointer)?,
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

#[async_trait]
impl JobSource for Generic {
    async fn jobs(&self, _pool: &PoolConfig, deadline: Instant) -> Result<PoolJobs, ForgeError> {
        let pending_pointer = self
            .pending_pointer
            .as_deref()
            .ok_or_else(|| ForgeError::Other("generic forge: pending_pointer is not set".to_string()))?;
        let body = self.http.get_ok(&self.url, &[("accept", "application/json")], deadline).await?.body;
        parse_counts(&body, pending_pointer, self.running_pointer.as_deref())
            .map_err(|e| self.http.decode_error(&self.url, e))
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
