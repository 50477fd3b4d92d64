//! The publisher task: this instance's events to the Redis stream (batched `XADD`), its
//! heartbeat, and the stream's trim to the retention.

use super::{wire, Link, TRIM_EVERY};
use crate::buffer::StoredEvent;
use crate::status::ResourceStatus;
use redis::aio::ConnectionManager;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

impl Link {
    pub(super) async fn publish(self) {
        let Some(mut conn) = self.connect(Duration::from_secs(2)).await else {
            return;
        };
        let mut tick = tokio::time::interval(self.settings.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_heartbeat = Instant::now();
        let mut next_trim = Instant::now();
        loop {
            let stopping = tokio::select! {
                _ = self.shutdown.cancelled() => true,
                _ = tick.tick() => false,
            };
            let Some(core) = self.weak.upgrade() else {
                return;
            };
            self.cluster.feed_local(&core.buffer);
            if self.cluster.pending_len() > 0 {
                let status = core.own_status();
                self.send_pending(&mut conn, status.as_deref().unwrap_or(&[]))
                    .await;
            }
            if stopping {
                // Leave at once rather than after the TTL.
                let _: Result<(), _> = redis::pipe()
                    .del(self.keys.heartbeat(&self.cluster.id))
                    .zrem(&self.keys.members, &*self.cluster.id)
                    .query_async(&mut conn)
                    .await;
                return;
            }
            let now = Instant::now();
            if now >= next_heartbeat {
                next_heartbeat = now + self.settings.heartbeat;
                let status = core.own_status();
                drop(core);
                self.heartbeat(&mut conn, status).await;
            }
            if now >= next_trim {
                next_trim = now + TRIM_EVERY;
                self.trim(&mut conn).await;
            }
        }
    }

    /// Sends every waiting event, one `XADD` per batch, all batches in one pipeline.
    pub(super) async fn send_pending(
        &self,
        conn: &mut ConnectionManager,
        status: &[ResourceStatus],
    ) {
        loop {
            let events = self.cluster.take_pending(self.settings.max_batch * 16);
            if events.is_empty() {
                return;
            }
            let oldest_ok = self
                .now_ms()
                .saturating_sub(self.settings.replay_window.as_millis() as u64);
            let (fresh, stale): (Vec<StoredEvent>, Vec<StoredEvent>) =
                events.into_iter().partition(|e| e.ts_ms >= oldest_ok);
            if !stale.is_empty() {
                self.cluster
                    .counters
                    .publish_dropped
                    .fetch_add(stale.len() as u64, Ordering::Relaxed);
            }
            if fresh.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for chunk in fresh.chunks(self.settings.max_batch) {
                let (batches, too_big) = wire::encode_bounded(chunk, status);
                if too_big > 0 {
                    self.cluster
                        .counters
                        .publish_dropped
                        .fetch_add(too_big as u64, Ordering::Relaxed);
                }
                for batch in batches {
                    pipe.cmd("XADD")
                        .arg(&self.keys.stream)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(self.settings.max_stream_entries)
                        .arg("*")
                        .arg("v")
                        .arg(wire::VERSION)
                        .arg("i")
                        .arg(&*self.cluster.id)
                        .arg("b")
                        .arg(batch)
                        .ignore();
                }
            }
            match pipe.query_async::<()>(conn).await {
                Ok(()) => {
                    self.cluster.set_connected();
                    self.cluster
                        .counters
                        .published
                        .fetch_add(fresh.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    self.cluster.set_error(format!("publish failed: {e}"));
                    self.cluster.requeue(fresh);
                    return;
                }
            }
        }
    }

    pub(super) async fn trim(&self, conn: &mut ConnectionManager) {
        let min_id = format!("{}-0", self.now_ms().saturating_sub(self.retention_ms));
        let trimmed: Result<u64, _> = redis::cmd("XTRIM")
            .arg(&self.keys.stream)
            .arg("MINID")
            .arg("~")
            .arg(min_id)
            .query_async(conn)
            .await;
        if let Err(e) = trimmed {
            self.cluster.set_error(format!("trim failed: {e}"));
        }
    }
}
