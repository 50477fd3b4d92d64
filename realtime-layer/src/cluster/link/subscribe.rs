//! The subscriber task: the backfill of the retained window (bounded pages), then the live follow
//! (`XREAD BLOCK` for one entry, then bounded pages until caught up), merging other instances'
//! batches into the cluster view (`merge`).

use super::reply::{read_entries, Entry};
use super::{Link, BLOCK, READ_COUNT};
use redis::aio::ConnectionManager;
use redis::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Link {
    pub(super) async fn subscribe(self) {
        let Some(mut conn) = self.connect(BLOCK + Duration::from_secs(2)).await else {
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
            // Wait for the next entry (one: the only read whose size Redis alone bounds)...
            let mut xread = redis::cmd("XREAD");
            xread
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.keys.stream)
                .arg(&last_id);
            let read = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = xread.query_async::<Value>(&mut conn) => r,
            };
            let woken = match read {
                Ok(value) => read_entries(value),
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
            if woken.is_empty() {
                continue;
            }
            let mut merged = self.merge_all(&woken, false, &mut last_id);
            // ...then catch up in bounded pages.
            match self.catch_up(&mut conn, &mut last_id, &mut merged).await {
                Ok(()) => {}
                Err(e) => {
                    self.cluster.set_error(format!("stream read failed: {e}"));
                    if self.pause(&mut delay).await {
                        return;
                    }
                }
            }
            if merged > 0 {
                match self.weak.upgrade() {
                    Some(core) => core.activity.signal(),
                    None => return,
                }
            }
        }
    }

    /// Reads pages after `last_id` until one comes back empty, merging as it goes.
    async fn catch_up(
        &self,
        conn: &mut ConnectionManager,
        last_id: &mut String,
        merged: &mut usize,
    ) -> Result<(), redis::RedisError> {
        loop {
            let entries = self.page(conn, &format!("({last_id}"), READ_COUNT).await?;
            if entries.is_empty() {
                return Ok(());
            }
            *merged += self.merge_all(&entries, false, last_id);
            if self.shutdown.is_cancelled() {
                return Ok(());
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
