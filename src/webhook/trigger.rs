//! What joins a webhook shell to the run loop: the pools asked to tick (a set, so any number
//! of webhooks arriving while a tick runs make one queued tick: at most one tick in flight
//! plus one queued) and the configuration the loop last loaded (the shell judges requests
//! against it and never reads SSM, a forge or AWS itself).

use crate::config::Config;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Shared between the webhook server and [`crate::runloop::Scaler`]; cheap to clone.
#[derive(Clone, Default)]
pub struct TickRequests {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: Mutex<BTreeSet<String>>,
    notify: Notify,
    config: Mutex<Option<Arc<Config>>>,
    requests: AtomicU64,
    merged: AtomicU64,
}

impl TickRequests {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for a tick of `pools`. Returns false when a queued tick already existed and the
    /// pools were merged into it (coalesced).
    pub fn request<I: IntoIterator<Item = String>>(&self, pools: I) -> bool {
        let fresh = {
            let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = pending.is_empty();
            pending.extend(pools);
            fresh
        };
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        if !fresh {
            self.inner.merged.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.notify.notify_one();
        fresh
    }

    /// Takes the queued pools (empty when none), leaving nothing queued.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until some pool is queued, then takes the queued pools.
    pub async fn next(&self) -> BTreeSet<String> {
        loop {
            let pools = self.take();
            if !pools.is_empty() {
                return pools;
            }
            // A request between `take` and here left a permit: this returns at once.
            self.inner.notify.notified().await;
        }
    }

    /// The loop publishes each configuration it loads.
    pub fn publish_config(&self, config: Arc<Config>) {
        *self.inner.config.lock().unwrap_or_else(|e| e.into_inner()) = Some(config);
    }

    /// The configuration the loop last loaded; `None` before the first load.
    pub fn config(&self) -> Option<Arc<Config>> {
        self.inner.config.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests so far, and how many of them were merged into an already queued tick.
    pub fn counts(&self) -> (u64, u64) {
        (self.inner.requests.load(Ordering::Relaxed), self.inner.merged.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_flood_of_requests_while_nothing_is_taken_is_one_queued_tick_of_their_union() {
        let r = TickRequests::new();
        assert!(r.request(names(&["a"])));
        for _ in 0..1000 {
            assert!(!r.request(names(&["b"])));
        }
        assert_eq!(r.take(), names(&["a", "b"]).into_iter().collect());
        assert!(r.take().is_empty(), "taken once: nothing queued any more");
        assert_eq!(r.counts(), (1001, 1000));
    }

    #[tokio::test]
    async fn next_waits_for_a_request_and_returns_at_once_when_one_is_queued() {
        let r = TickRequests::new();
        r.request(names(&["a"]));
        assert_eq!(r.next().await.len(), 1);
        let waiting = tokio::time::timeout(Duration::from_millis(50), r.next()).await;
        assert!(waiting.is_err(), "nothing queued: next waits");
        let r2 = r.clone();
        let task = tokio::spawn(async move { r2.next().await });
        tokio::task::yield_now().await;
        r.request(names(&["c"]));
        let got = tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert_eq!(got, names(&["c"]).into_iter().collect());
    }
}
