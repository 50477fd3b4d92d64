//! Bounded waits: poll until something holds, or fail the test with what was seen last.

use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `f` every `every` until it returns `Some`, and returns that; fails the test after
/// `limit`, naming `what`.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, every: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Polls `cond` every 10 ms; fails the test if it is not true within `limit`.
pub async fn wait_for(mut cond: impl FnMut() -> bool, limit: Duration) {
    until("condition", limit, Duration::from_millis(10), || {
        let v = cond().then_some(());
        async move { v }
    })
    .await
}

/// Waits until the realtime routes at `base` (a URL ending before `/realtime`) serve a healthy
/// cluster view of `instances` live instances and `ready(stats)` holds; returns those stats.
pub async fn cluster_ready(
    base: &str,
    instances: u64,
    limit: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let url = format!("{base}/realtime/stats");
    let mut last = Value::Null;
    let found = until_or_last(limit, Duration::from_millis(100), &mut last, || async {
        let (status, stats) = crate::http::get_json(&url).await;
        let ok = status == 200
            && stats["cluster"]["state"] == "ok"
            && stats["cluster"]["live_instances"] == instances
            && ready(&stats);
        (ok, stats)
    })
    .await;
    assert!(
        found,
        "{url}: no ready cluster of {instances} within {limit:?}: {last}"
    );
    last
}

/// Like [`until`], keeping the last value seen (for the failure message); true when met.
async fn until_or_last<F, Fut>(limit: Duration, every: Duration, last: &mut Value, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (bool, Value)>,
{
    let start = Instant::now();
    loop {
        let (ok, value) = f().await;
        *last = value;
        if ok {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}
