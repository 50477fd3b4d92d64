//! The subscriber task: the backfill of the retained window, then the live follow, both in pages
//! bounded in bytes (`guarded`), merging other instances' batches into the cluster view (`merge`).

use super::reply::Entry;
use super::{Link, POLL, READ_COUNT};
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Link {
    pub(super) async fn subscribe(self) {
        let Some(mut conn) = self.connect(Duration::from_secs(3)).await else {
            return;
        };
        let mut delay = Duration::from_millis(100);
        // Backfill: the retained window, oldest first, page by page (resumed after errors).
        let mut last_id = format!("{}-0", self.now_ms().saturating_sub(self.retention_ms));
        let mut first = true;
        loop {
            let start = if first {
                last_id.clone()
            } else {
                format!("({last_id}")
            };
            match self.page(&mut conn, &start, READ_COUNT).await {
                Ok(entries) => {
                    self.cluster.set_connected();
                    if entries.is_empty() {
                        break;
                    }
                    first = false;
                    self.merge_all(&entries, true, &mut last_id);
                }
                Err(e) => {
                    self.cluster.set_error(format!("backfill failed: {e}"));
                    if self.pause(&mut delay).await {
                        return;
                    }
                }
            }
        }
        if first {
            // Empty stream: follow from its end ("$" would miss entries added meanwhile).
            last_id = format!("{}-0", self.now_ms().saturating_sub(1_000));
        }
        self.cluster.ready.store(true, Ordering::Release);
        if let Some(core) = self.weak.upgrade() {
            self.cluster.feed_local(&core.buffer);
            core.activity.signal();
        }
        tracing::info!(
            instance = %self.cluster.id,
            backfilled = self.cluster.counters.backfilled.load(Ordering::Relaxed),
            "cluster view ready"
        );
        loop {
            // Follow: a bounded page after the last entry seen; when there is none, wait a poll
            // interval. (A blocking `XREAD` would bring the next entry whatever its size.)
            let start = format!("({last_id}");
            let page = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = self.page(&mut conn, &start, READ_COUNT) => r,
            };
            let entries = match page {
                Ok(entries) => entries,
                Err(e) => {
                    self.cluster.set_error(format!("stream read failed: {e}"));
                    if self.pause(&mut delay).await {
                        return;
                    }
                    continue;
                }
            };
            self.cluster.set_connected();
            delay = Duration::from_millis(100);
            if entries.is_empty() {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(POLL) => continue,
                }
            }
            if self.merge_all(&entries, false, &mut last_id) > 0 {
                match self.weak.upgrade() {
                    Some(core) => core.activity.signal(),
                    None => return,
                }
            }
        }
    }

    /// Merges entries in order, moving `last_id` past each; returns the events merged.
    fn merge_all(&self, entries: &[Entry], backfill: bool, last_id: &mut String) -> usize {
        let mut merged = 0;
        for entry in entries {
            merged += self.merge(entry, backfill);
            last_id.clone_from(&entry.id);
        }
        merged
    }
}
