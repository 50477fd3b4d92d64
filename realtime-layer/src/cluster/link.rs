//! The Redis side of cluster mode: two background tasks per instance.
//!
//! - **publisher** (one multiplexed connection): every flush interval, moves this instance's new
//!   events into the cluster view and sends the waiting ones as one pipelined `XADD` per batch;
//!   once per heartbeat writes this instance's heartbeat key (status rows, TTL) and reads the
//!   others'; every 10 s trims the stream to the retention (`XTRIM MINID ~`).
//! - **subscriber** (its own connection, since `XREAD BLOCK` holds a connection): loads the
//!   retained window once (`XRANGE`, the backfill), then follows the stream (`XREAD BLOCK`) and
//!   merges other instances' batches into the cluster view.
//!
//! Neither touches the request path. Errors mark the cluster degraded (routes fall back to this
//! instance) and are retried with backoff; nothing here panics or blocks a request.

use super::state::{ClusterState, Peer};
use super::{wire, Cluster};
use crate::buffer::StoredEvent;
use crate::state::Shared;
use crate::status::ResourceStatus;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::{sleep, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// `XREAD BLOCK` timeout: how often the subscriber comes back to check for shutdown.
const BLOCK: Duration = Duration::from_millis(1_000);
/// Entries per `XRANGE` page of the backfill and per `XREAD`.
const READ_COUNT: usize = 500;
/// How often the stream is trimmed to the retention.
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// Members not heard of for this long leave the instance set for good.
const FORGET_AFTER_MS: u64 = 3_600_000;
/// Most other instances remembered (beyond it, the longest silent are forgotten).
const MAX_PEERS: usize = 256;

/// Key names of one cluster. The `{name}` hash tag keeps them on one Redis Cluster slot.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    stream: String,
    members: String,
    prefix: String,
}

impl Keys {
    fn new(name: &str) -> Self {
        Keys {
            stream: format!("realtime:{{{name}}}:events"),
            members: format!("realtime:{{{name}}}:instances"),
            prefix: format!("realtime:{{{name}}}:instance:"),
        }
    }

    fn heartbeat(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }
}

/// What an instance writes to its heartbeat key.
#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    v: u8,
    id: String,
    ts_ms: u64,
    started_ms: u64,
    status: Option<Vec<ResourceStatus>>,
}

/// Starts the tasks. Needs a Tokio runtime (cluster mode is built inside one).
pub(crate) fn start(
    shared: &Arc<Shared>,
    cluster: &Arc<ClusterState>,
    settings: &Cluster,
) -> Result<(), crate::ConfigError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| {
        crate::ConfigError(
            "cluster mode runs background tasks: build the Realtime inside a Tokio runtime".into(),
        )
    })?;
    let client = redis::Client::open(settings.url.as_str())
        .map_err(|e| crate::ConfigError(format!("invalid Redis URL: {e}")))?;
    let link = Link {
        weak: Arc::downgrade(shared),
        cluster: cluster.clone(),
        client,
        keys: Keys::new(&settings.name),
        settings: settings.clone(),
        shutdown: shared.shutdown.clone(),
        retention_ms: shared.buffer.config().retention.as_millis() as u64,
    };
    let publisher = link.clone();
    handle.spawn(async move { publisher.publish().await });
    handle.spawn(async move { link.subscribe().await });
    Ok(())
}

#[derive(Clone)]
struct Link {
    weak: Weak<Shared>,
    cluster: Arc<ClusterState>,
    client: redis::Client,
    keys: Keys,
    settings: Cluster,
    shutdown: CancellationToken,
    retention_ms: u64,
}

impl Link {
    fn now_ms(&self) -> u64 {
        self.cluster.buffer.clock().now_ms()
    }

    /// A connection, retried with backoff until it works; `None` on shutdown.
    async fn connect(&self, response_timeout: Duration) -> Option<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let mut delay = Duration::from_millis(100);
        loop {
            match ConnectionManager::new_with_config(self.client.clone(), config.clone()).await {
                Ok(conn) => return Some(conn),
                Err(e) => self
                    .cluster
                    .set_error(format!("cannot connect to Redis: {e}")),
            }
            if self.pause(&mut delay).await {
                return None;
            }
        }
    }

    /// Sleeps `delay` (doubling it up to 5 s for next time); true when shutting down.
    async fn pause(&self, delay: &mut Duration) -> bool {
        let d = *delay;
        *delay = (*delay * 2).min(Duration::from_secs(5));
        tokio::select! {
            _ = self.shutdown.cancelled() => true,
            _ = sleep(d) => false,
        }
    }

    async fn publish(self) {
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
            let Some(shared) = self.weak.upgrade() else {
                return;
            };
            self.cluster.feed_local(&shared.buffer);
            if self.cluster.pending_len() > 0 {
                let status = shared.status_source.as_ref().map(|s| s.status());
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
                let status = shared.status_source.as_ref().map(|s| s.status());
                drop(shared);
                self.heartbeat(&mut conn, status).await;
            }
            if now >= next_trim {
                next_trim = now + TRIM_EVERY;
                self.trim(&mut conn).await;
            }
        }
    }

    /// Sends every waiting event, one `XADD` per batch, all batches in one pipeline.
    async fn send_pending(&self, conn: &mut ConnectionManager, status: &[ResourceStatus]) {
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
            for batch in fresh.chunks(self.settings.max_batch) {
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
                    .arg(wire::encode(batch, status))
                    .ignore();
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

    /// Writes this instance's heartbeat and reads everyone's.
    async fn heartbeat(&self, conn: &mut ConnectionManager, status: Option<Vec<ResourceStatus>>) {
        let now = self.now_ms();
        let id = &*self.cluster.id;
        let beat = Heartbeat {
            v: 1,
            id: id.to_string(),
            ts_ms: now,
            started_ms: self.cluster.started_ms,
            status,
        };
        let Ok(json) = serde_json::to_string(&beat) else {
            return;
        };
        // The key outlives the last heartbeat by the TTL less one period, so a silent instance
        // is gone from everyone's live totals within the TTL.
        let ttl = self
            .settings
            .instance_ttl
            .saturating_sub(self.settings.heartbeat);
        let written: Result<(Vec<String>,), _> = redis::pipe()
            .cmd("SET")
            .arg(self.keys.heartbeat(id))
            .arg(json)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .ignore()
            .zadd(&self.keys.members, id, now)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.keys.members)
            .arg("-inf")
            .arg(now.saturating_sub(FORGET_AFTER_MS))
            .ignore()
            .cmd("ZRANGE")
            .arg(&self.keys.members)
            .arg(0)
            .arg(MAX_PEERS as i64 - 1)
            .arg("REV")
            .query_async(conn)
            .await;
        let members = match written {
            Ok((members,)) => members,
            Err(e) => return self.cluster.set_error(format!("heartbeat failed: {e}")),
        };
        let others: Vec<String> = members.into_iter().filter(|m| m != id).collect();
        let beats: Vec<Option<String>> = if others.is_empty() {
            Vec::new()
        } else {
            let keys: Vec<String> = others.iter().map(|m| self.keys.heartbeat(m)).collect();
            match redis::cmd("MGET").arg(keys).query_async(conn).await {
                Ok(v) => v,
                Err(e) => {
                    return self
                        .cluster
                        .set_error(format!("heartbeat read failed: {e}"))
                }
            }
        };
        self.cluster.set_connected();
        let mut peers = self.cluster.peers.lock();
        let mut read: Vec<String> = Vec::new();
        for (member, beat) in others.iter().zip(beats) {
            let Some(beat) = beat.and_then(|b| serde_json::from_str::<Heartbeat>(&b).ok()) else {
                continue;
            };
            let sane_rows = beat.status.as_ref().is_none_or(|rows| {
                rows.len() <= 4_096
                    && rows
                        .iter()
                        .all(|r| !r.name.is_empty() && r.name.len() <= 1024)
            });
            if beat.id != *member || super::validate_instance_id(&beat.id).is_err() || !sane_rows {
                self.cluster
                    .counters
                    .skipped_entries
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            read.push(beat.id.clone());
            let peer = peers.entry(Arc::from(beat.id.as_str())).or_default();
            peer.seen_ms = now;
            peer.present = true;
            peer.started_ms = beat.started_ms;
            if beat.ts_ms > peer.heartbeat_ms {
                peer.heartbeat_ms = beat.ts_ms;
                peer.status = beat.status;
            }
        }
        // A key gone (expired: no heartbeat for a TTL, or deleted at shutdown) ends liveness.
        for (id, peer) in peers.iter_mut() {
            if !read.iter().any(|r| **r == **id) {
                peer.present = false;
            }
        }
        forget_old_peers(&mut peers, now);
    }

    async fn trim(&self, conn: &mut ConnectionManager) {
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

    async fn subscribe(self) {
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
        if let Some(shared) = self.weak.upgrade() {
            self.cluster.feed_local(&shared.buffer);
            shared.activity.signal();
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
                            Some(shared) => shared.activity.signal(),
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
    fn merge(&self, entry: &Entry, backfill: bool) -> usize {
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
        if version != wire::VERSION.as_bytes() || super::validate_instance_id(instance).is_err() {
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

fn forget_old_peers(peers: &mut std::collections::HashMap<Arc<str>, Peer>, now: u64) {
    peers.retain(|_, p| {
        now.saturating_sub(p.seen_ms.max(p.last_event_ms.unwrap_or(0))) < FORGET_AFTER_MS
    });
    while peers.len() > MAX_PEERS {
        let Some(oldest) = peers
            .iter()
            .min_by_key(|(_, p)| p.seen_ms)
            .map(|(id, _)| id.clone())
        else {
            break;
        };
        peers.remove(&oldest);
    }
}

/// One stream entry: its id and raw field/value pairs.
#[derive(Debug, Default)]
struct Entry {
    id: String,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// Entries of an `XRANGE` answer: `[[id, [field, value, ...]], ...]`. Unreadable entries come
/// out with no fields (and are then skipped and counted).
fn entries(value: Value) -> Vec<Entry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let id = String::from_utf8(bytes(parts.first()?)?).ok()?;
            let mut entry = Entry {
                id,
                fields: Vec::new(),
            };
            if let Some(Value::Array(kv)) = parts.get(1) {
                for pair in kv.chunks(2) {
                    if let [k, v] = pair {
                        if let (Some(k), Some(v)) = (bytes(k), bytes(v)) {
                            entry.fields.push((k, v));
                        }
                    }
                }
            }
            Some(entry)
        })
        .collect()
}

/// Entries of an `XREAD` answer for one stream: `[[key, entries]]` (RESP2), a map (RESP3) or nil
/// on timeout.
fn read_entries(value: Value) -> Vec<Entry> {
    match value {
        Value::Array(streams) => streams
            .into_iter()
            .flat_map(|s| match s {
                Value::Array(mut parts) if parts.len() == 2 => entries(parts.remove(1)),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams.into_iter().flat_map(|(_, v)| entries(v)).collect(),
        _ => Vec::new(),
    }
}
