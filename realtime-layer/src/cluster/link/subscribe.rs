//! The subscriber task: the backfill of the retained window (`XRANGE`), then the live follow
//! (`XREAD BLOCK`), merging other instances' batches into the cluster view.

use super::reply::{entries, read_entries, Entry};
use super::{wire, Link, BLOCK, MAX_PEERS, READ_COUNT};
use crate::core::validate_instance_id;
use crate::status::ResourceStatus;
use redis::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
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
            let page: Result<Value, _> = redis::cmd("XRANGE")
                .arg(&self.keys.stream)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(READ_COUNT)
                .query_async(&mut conn)
                .await;
            match page {
                Ok(value) => {
                    self.cluster.set_connected();
                    let entries = entries(value);
                    if entries.is_empty() {
                        break;
                    }
                    first = false;
                    for entry in &entries {
                        self.merge(entry, true);
                        last_id.clone_from(&entry.id);
                    }
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
            let mut xread = redis::cmd("XREAD");
            xread
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.keys.stream)
                .arg(&last_id);
            let read = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = xread.query_async::<Value>(&mut conn) => r,
            };
            match read {
                Ok(value) => {
                    self.cluster.set_connected();
                    delay = Duration::from_millis(100);
                    let entries = read_entries(value);
                    let mut merged = 0;
                    for entry in &entries {
                        merged += self.merge(entry, false);
                        last_id.clone_from(&entry.id);
                    }
                    if merged > 0 {
                        match self.weak.upgrade() {
                            Some(core) => core.activity.signal(),
                            None => return,
                        }
                    }
                }
                Err(e) => {
                    self.cluster.set_error(format!("stream read failed: {e}"));
                    if self.pause(&mut delay).await {
                        return;
                    }
                }
            }
        }
    }

    /// Merges one stream entry into the cluster view; counts and skips anything malformed.
    /// Returns the number of events merged.
    pub(super) fn merge(&self, entry: &Entry, backfill: bool) -> usize {
        let cluster = &self.cluster;
        let skip = || {
            cluster
                .counters
                .skipped_entries
                .fetch_add(1, Ordering::Relaxed);
            0
        };
        let field = |name: &[u8]| {
            entry
                .fields
                .iter()
                .find(|(k, _)| k.as_slice() == name)
                .map(|(_, v)| v.as_slice())
        };
        let (Some(version), Some(instance), Some(batch)) = (field(b"v"), field(b"i"), field(b"b"))
        else {
            return skip();
        };
        let Ok(instance) = std::str::from_utf8(instance) else {
            return skip();
        };
        if version != wire::VERSION.as_bytes() || validate_instance_id(instance).is_err() {
            return skip();
        }
        let wire::Decoded { events, status } = match wire::decode(batch) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::debug!(entry = %entry.id, error = %e, "skipped a cluster stream entry");
                return skip();
            }
        };
        let Some(newest) = events.last().map(|e| e.ts_ms) else {
            return 0;
        };
        // This instance's own events reach the view through the feed; only a previous run's
        // (same id, before this start) come through the stream.
        if *instance == *cluster.id && (!backfill || newest >= cluster.started_ms) {
            return 0;
        }
        let stored = cluster.buffer.record_stored(instance, &events);
        let counter = if backfill {
            &cluster.counters.backfilled
        } else {
            &cluster.counters.received
        };
        counter.fetch_add(stored as u64, Ordering::Relaxed);
        if *instance != *cluster.id {
            let now = self.now_ms();
            let mut peers = cluster.peers.lock();
            if peers.len() < MAX_PEERS || peers.contains_key(instance) {
                let peer = peers.entry(Arc::from(instance)).or_default();
                peer.received += stored as u64;
                peer.last_event_ms = Some(peer.last_event_ms.unwrap_or(0).max(newest));
                if !backfill {
                    peer.lag_ms = Some(now.saturating_sub(newest));
                }
                if !backfill && newest >= peer.heartbeat_ms {
                    peer.heartbeat_ms = newest;
                    // Live totals move with the events (heartbeats refresh every row).
                    let rows = peer.status.get_or_insert_with(Vec::new);
                    for (name, total, commit, borrowed) in status {
                        let full = rows.len() >= 4_096;
                        match rows.iter_mut().find(|r| *r.name == *name) {
                            Some(row) => {
                                row.total = total;
                                row.commit = commit;
                                row.borrowed = borrowed;
                            }
                            None if !full => {
                                rows.push(ResourceStatus::new(&*name, total, commit, borrowed))
                            }
                            None => {}
                        }
                    }
                }
            }
        }
        stored
    }
}
