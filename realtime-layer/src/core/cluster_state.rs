//! What one instance knows of its cluster: the cluster buffer, the other instances (from their
//! heartbeats), health and counters. Written by the Redis tasks (`crate::cluster`), read by views
//! and routes; kept in the core so readers need nothing of the Redis side.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use crate::buffer::{Cursor, EventBuffer, StoredEvent};
use crate::status::ResourceStatus;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the status rows of several instances add up to cluster totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolScope {
    /// Each instance owns its pool (e.g. two sites, each with its own database): cluster totals
    /// are the sum of every live instance's rows.
    #[default]
    PerInstance,
    /// All instances report the same pool (replicas on one database): cluster totals are the
    /// freshest row of each resource (this instance's own, when it has a status source).
    Shared,
}

/// The default instance id: host name and process id (`web-1-4242`).
pub(crate) fn default_instance_id() -> String {
    let host = gethostname::gethostname();
    let host = host.to_string_lossy();
    let host = if host.is_empty() { "localhost" } else { &host };
    format!("{host}-{}", std::process::id())
}

/// Checks an instance id: 1..=128 bytes, no control or whitespace characters.
pub(crate) fn validate_instance_id(id: &str) -> Result<(), crate::buffer::ConfigError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(crate::buffer::ConfigError(format!(
            "instance id must be 1..=128 bytes without spaces or control characters, got {id:?}"
        )));
    }
    Ok(())
}

/// An instance id as every route shows it: checked ([`validate_instance_id`]), then with
/// deceptive characters made visible like every recorded name ([`crate::names`]), so a U+202E in
/// a peer's id shows as `<U+202E>` and cannot reorder what the page shows around it.
pub(crate) fn shown_instance_id(id: &str) -> Result<Arc<str>, crate::buffer::ConfigError> {
    validate_instance_id(id)?;
    Ok(Arc::from(crate::names::visible(id).as_ref()))
}

/// One instance's status rows with an index by name, shared behind an `Arc`: readers copy the
/// pointer under the peers lock (never the rows), and the link builds a new version off the lock
/// and swaps it in, so merging a batch never blocks a request. A new version shares what did not
/// change: each row is an `Arc` (an update replaces only its own), and the index is shared until
/// a name is added (positions never change), so it costs one pointer copy per row plus the
/// batch's own updates, never a row's strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerRows {
    rows: Vec<Arc<ResourceStatus>>,
    index: Arc<HashMap<Arc<str>, usize>>,
}

impl PeerRows {
    /// At most `max` rows from `rows` (a later row of the same name replaces an earlier one), names
    /// escaped like every recorded name.
    pub(crate) fn new(rows: impl IntoIterator<Item = ResourceStatus>, max: usize) -> Self {
        let mut out = PeerRows::default();
        for mut row in rows {
            if let std::borrow::Cow::Owned(shown) = crate::names::visible(&row.name) {
                row.name = shown;
            }
            out.put(row, max);
        }
        out
    }

    /// These rows with `updates` (name, total, commit, borrowed) applied: existing names updated,
    /// new ones added while under `max`. One hash lookup per update.
    pub(crate) fn updated(&self, updates: &[(Arc<str>, u32, u32, u32)], max: usize) -> Self {
        let mut next = self.clone();
        for (name, total, commit, borrowed) in updates {
            match next.index.get(name) {
                Some(&i) => {
                    let row = Arc::make_mut(&mut next.rows[i]);
                    row.total = *total;
                    row.commit = *commit;
                    row.borrowed = *borrowed;
                }
                None => next.put(
                    ResourceStatus::new(&**name, *total, *commit, *borrowed),
                    max,
                ),
            }
        }
        next
    }

    fn put(&mut self, row: ResourceStatus, max: usize) {
        match self.index.get(row.name.as_str()) {
            Some(&i) => self.rows[i] = Arc::new(row),
            None if self.rows.len() < max => {
                let at = self.rows.len();
                Arc::make_mut(&mut self.index).insert(Arc::from(row.name.as_str()), at);
                self.rows.push(Arc::new(row));
            }
            None => {}
        }
    }

    /// The rows, in the order they were first seen.
    pub(crate) fn rows(&self) -> impl Iterator<Item = &ResourceStatus> {
        self.rows.iter().map(|r| &**r)
    }
}

/// Another instance as its heartbeats describe it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Peer {
    /// Time of its newest status rows, from a heartbeat or a batch (its clock, Unix ms): an older
    /// heartbeat read later never overwrites rows that came with newer events.
    pub(crate) heartbeat_ms: u64,
    /// When this instance last read its heartbeat key (our clock).
    pub(crate) seen_ms: u64,
    /// Its heartbeat key was there at the newest read (it expires a TTL after the last write).
    pub(crate) present: bool,
    pub(crate) started_ms: u64,
    pub(crate) status: Option<Arc<PeerRows>>,
    /// Newest event of it received, and how late it arrived (receipt − event time).
    pub(crate) last_event_ms: Option<u64>,
    pub(crate) lag_ms: Option<u64>,
    pub(crate) received: u64,
}

impl Peer {
    /// In the live totals: its heartbeat key was there at the newest read, and that read is
    /// recent (if reads stall, e.g. Redis is slow, silence still ends it after the TTL).
    pub(crate) fn live(&self, now_ms: u64, ttl_ms: u64) -> bool {
        self.present && now_ms.saturating_sub(self.seen_ms) < ttl_ms
    }
}

/// Counters of the cluster link, all since start.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) publish_dropped: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) skipped_entries: AtomicU64,
    /// Of `skipped_entries`: over a size, name, status row or event bound.
    pub(crate) oversized_entries: AtomicU64,
    pub(crate) backfilled: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// Local events on their way to the cluster buffer and to Redis.
struct Feed {
    cursor: Cursor,
    pending: VecDeque<StoredEvent>,
}

/// Cluster state of one instance.
pub(crate) struct ClusterState {
    pub(crate) id: Arc<str>,
    pub(crate) name: String,
    pub(crate) scope: PoolScope,
    pub(crate) instance_ttl: Duration,
    pub(crate) started_ms: u64,
    /// Every instance's events (this one's included), tagged by instance.
    pub(crate) buffer: EventBuffer,
    /// The retained window was loaded from the stream (a fresh instance's view is not empty).
    pub(crate) ready: AtomicBool,
    /// The last Redis command succeeded.
    pub(crate) connected: AtomicBool,
    pub(crate) peers: Mutex<HashMap<Arc<str>, Peer>>,
    pub(crate) counters: Counters,
    pub(crate) last_error: Mutex<Option<String>>,
    feed: Mutex<Feed>,
    max_pending: usize,
    /// Woken when events wait to be published.
    pub(crate) publish_wake: tokio::sync::Notify,
}

/// One instance as `/realtime/stats` lists it (cluster mode).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InstanceInfo {
    /// Instance id.
    pub id: Arc<str>,
    /// This instance.
    #[serde(rename = "self")]
    pub this: bool,
    /// Heartbeating (counted in live totals).
    pub live: bool,
    /// Milliseconds since its last heartbeat was seen (0 for this instance).
    pub last_seen_ms_ago: u64,
    /// How late its newest events arrived here (receipt − event time), in ms.
    pub lag_ms: Option<u64>,
    /// Its events received through Redis since this instance started.
    pub events_received: u64,
}

/// The cluster as `/realtime/stats` describes it (cluster mode).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClusterInfo {
    /// Cluster name.
    pub name: String,
    /// `ok`, `degraded` (Redis unreachable: routes show this instance) or `backfilling`.
    pub state: &'static str,
    /// How status rows add up.
    pub pool_scope: PoolScope,
    /// Live instances (this one included).
    pub live_instances: usize,
    /// This instance first, then every other known one.
    pub instances: Vec<InstanceInfo>,
    /// Events this instance published to Redis.
    pub published_events: u64,
    /// Events of this instance that other instances will not see: dropped from a full publish
    /// queue, or older than the replay window when Redis came back.
    pub publish_dropped: u64,
    /// Events waiting to be published now.
    pub pending_events: u64,
    /// Other instances' events merged live.
    pub received_events: u64,
    /// Events loaded from the stream at start (the backfill).
    pub backfilled_events: u64,
    /// Stream entries or heartbeats skipped as malformed or foreign.
    pub skipped_entries: u64,
    /// Of `skipped_entries`: those over a bound (1 MiB, 30,000 names, 10,000 events or 4,096
    /// status rows per entry; 8 MiB per heartbeat), never parsed.
    pub oversized_entries: u64,
    /// Events whose instance was folded into `(other)` (more than 64 instances).
    pub folded_instances: u64,
    /// Failed Redis commands and connection attempts.
    pub redis_errors: u64,
    /// The newest Redis error.
    pub last_error: Option<String>,
}

impl ClusterState {
    pub(crate) fn new(
        id: Arc<str>,
        name: String,
        scope: PoolScope,
        instance_ttl: Duration,
        buffer: EventBuffer,
        local_cursor: Cursor,
        max_pending: usize,
    ) -> Self {
        let started_ms = buffer.clock().now_ms();
        ClusterState {
            id,
            name,
            scope,
            instance_ttl,
            started_ms,
            buffer,
            ready: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            peers: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            last_error: Mutex::new(None),
            feed: Mutex::new(Feed {
                cursor: local_cursor,
                pending: VecDeque::new(),
            }),
            max_pending,
            publish_wake: tokio::sync::Notify::new(),
        }
    }

    /// Serving the cluster view: backfilled and reaching Redis.
    pub(crate) fn healthy(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn state_name(&self) -> &'static str {
        if !self.connected.load(Ordering::Acquire) {
            "degraded"
        } else if !self.ready.load(Ordering::Acquire) {
            "backfilling"
        } else {
            "ok"
        }
    }

    /// Moves this instance's new events from the local buffer into the cluster buffer and the
    /// publish queue. Cheap when nothing is new (a lock and a cursor compare); called by the feed
    /// task every flush interval and by readers right before they read the cluster view, so a
    /// borrow answered a moment ago is already in it. Does nothing before the backfill is done
    /// (the cluster buffer is filled oldest first). Returns how many events moved.
    pub(crate) fn feed_local(&self, local: &EventBuffer) -> usize {
        if !self.ready.load(Ordering::Acquire) {
            return 0;
        }
        let mut feed = self.feed.lock();
        let mut moved = 0;
        loop {
            let (events, lost, next) = local.stored_after(feed.cursor, 4_096);
            if lost > 0 {
                self.counters
                    .publish_dropped
                    .fetch_add(lost, Ordering::Relaxed);
            }
            feed.cursor = next;
            if events.is_empty() {
                break;
            }
            moved += events.len();
            self.buffer.record_stored(&self.id, &events);
            feed.pending.extend(events);
            let over = feed.pending.len().saturating_sub(self.max_pending);
            if over > 0 {
                feed.pending.drain(..over);
                self.counters
                    .publish_dropped
                    .fetch_add(over as u64, Ordering::Relaxed);
            }
        }
        if moved > 0 {
            self.publish_wake.notify_one();
        }
        moved
    }

    /// Takes up to `max` waiting events, oldest first.
    pub(crate) fn take_pending(&self, max: usize) -> Vec<StoredEvent> {
        let mut feed = self.feed.lock();
        let n = feed.pending.len().min(max);
        feed.pending.drain(..n).collect()
    }

    /// Puts events back at the front (a failed publish), within the queue's bound.
    pub(crate) fn requeue(&self, events: Vec<StoredEvent>) {
        let mut feed = self.feed.lock();
        let room = self.max_pending.saturating_sub(feed.pending.len());
        let keep = events.len().min(room);
        let dropped = events.len() - keep;
        if dropped > 0 {
            self.counters
                .publish_dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
        }
        for e in events.into_iter().rev().take(keep) {
            feed.pending.push_front(e);
        }
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.feed.lock().pending.len()
    }

    /// Ids of the instances in the live totals (this one and those heartbeating within the TTL).
    pub(crate) fn live_peers(&self, now_ms: u64) -> Vec<(Arc<str>, Peer)> {
        let ttl = self.instance_ttl.as_millis() as u64;
        let peers = self.peers.lock();
        let mut out: Vec<(Arc<str>, Peer)> = peers
            .iter()
            .filter(|(id, p)| **id != self.id && p.live(now_ms, ttl))
            .map(|(id, p)| (id.clone(), p.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Cluster-wide status rows: this instance's own (fresh) rows and every live peer's, summed
    /// per resource ([`PoolScope::PerInstance`]) or the freshest per resource
    /// ([`PoolScope::Shared`]). `None` when nobody has a status source.
    pub(crate) fn status_rows(
        &self,
        own: Option<Vec<ResourceStatus>>,
        now_ms: u64,
    ) -> Option<Vec<ResourceStatus>> {
        // The peers lock is held only to copy pointers (`live_peers`); the rows are read after.
        let peers = self.live_peers(now_ms);
        let mut sources: Vec<(u64, Vec<&ResourceStatus>)> = Vec::new();
        if let Some(own) = &own {
            sources.push((u64::MAX, own.iter().collect()));
        }
        for (_, p) in &peers {
            if let Some(rows) = &p.status {
                sources.push((p.heartbeat_ms, rows.rows().collect()));
            }
        }
        if sources.is_empty() {
            return None;
        }
        let mut merged: Vec<ResourceStatus> = Vec::new();
        let mut at: HashMap<&str, (usize, u64)> = HashMap::new();
        for (fresh, rows) in sources {
            for row in rows {
                match at.get_mut(row.name.as_str()) {
                    None => {
                        at.insert(&row.name, (merged.len(), fresh));
                        merged.push(row.clone());
                    }
                    Some((i, seen)) => match self.scope {
                        PoolScope::PerInstance => {
                            let m = &mut merged[*i];
                            m.total = m.total.saturating_add(row.total);
                            m.commit = m.commit.saturating_add(row.commit);
                            m.borrowed = m.borrowed.saturating_add(row.borrowed);
                            m.max_overage = match (m.max_overage, row.max_overage) {
                                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                                _ => None,
                            };
                        }
                        PoolScope::Shared => {
                            if fresh > *seen {
                                merged[*i] = row.clone();
                                *seen = fresh;
                            }
                        }
                    },
                }
            }
        }
        Some(merged)
    }

    /// The status rows of one other instance (`None`: it has no status source or is unknown).
    pub(crate) fn peer_status(&self, id: &str) -> Option<Vec<ResourceStatus>> {
        let rows = self.peers.lock().get(id).and_then(|p| p.status.clone());
        rows.map(|r| r.rows().cloned().collect())
    }

    /// Known instance ids: this one, those heartbeating, and those with events in the view.
    pub(crate) fn known_instances(&self) -> Vec<Arc<str>> {
        let mut ids: Vec<Arc<str>> = self.peers.lock().keys().cloned().collect();
        ids.extend(self.buffer.instance_names());
        ids.push(self.id.clone());
        ids.sort();
        ids.dedup();
        ids.retain(|id| &**id != crate::buffer::OTHER_NAME);
        ids
    }

    pub(crate) fn set_error(&self, error: impl std::fmt::Display) {
        // The error first: whoever sees the cluster degraded also sees why.
        *self.last_error.lock() = Some(error.to_string());
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.connected.store(false, Ordering::Release);
    }

    pub(crate) fn set_connected(&self) {
        self.connected.store(true, Ordering::Release);
    }

    pub(crate) fn info(&self, now_ms: u64) -> ClusterInfo {
        let ttl = self.instance_ttl.as_millis() as u64;
        let mut instances = vec![InstanceInfo {
            id: self.id.clone(),
            this: true,
            live: true,
            last_seen_ms_ago: 0,
            lag_ms: None,
            events_received: 0,
        }];
        {
            let peers = self.peers.lock();
            for (id, p) in peers.iter().filter(|(id, _)| **id != self.id) {
                let ago = now_ms.saturating_sub(p.seen_ms);
                instances.push(InstanceInfo {
                    id: id.clone(),
                    this: false,
                    live: p.live(now_ms, ttl),
                    last_seen_ms_ago: ago,
                    lag_ms: p.lag_ms,
                    events_received: p.received,
                });
            }
        }
        instances[1..].sort_by(|a, b| a.id.cmp(&b.id));
        let c = &self.counters;
        ClusterInfo {
            name: self.name.clone(),
            state: self.state_name(),
            pool_scope: self.scope,
            live_instances: instances.iter().filter(|i| i.live).count(),
            instances,
            published_events: c.published.load(Ordering::Relaxed),
            publish_dropped: c.publish_dropped.load(Ordering::Relaxed),
            pending_events: self.pending_len() as u64,
            received_events: c.received.load(Ordering::Relaxed),
            backfilled_events: c.backfilled.load(Ordering::Relaxed),
            skipped_entries: c.skipped_entries.load(Ordering::Relaxed),
            oversized_entries: c.oversized_entries.load(Ordering::Relaxed),
            folded_instances: self.buffer.folded_instances(),
            redis_errors: c.errors.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::BufferConfig;
    use crate::clock::ManualClock;

    fn state(scope: PoolScope) -> ClusterState {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let buffer = EventBuffer::new_tagged(BufferConfig::default(), clock).unwrap();
        ClusterState::new(
            Arc::from("me"),
            "t".into(),
            scope,
            Duration::from_secs(10),
            buffer,
            Cursor::default(),
            100,
        )
    }

    fn peer(state: &ClusterState, id: &str, at: u64, present: bool, rows: Vec<ResourceStatus>) {
        state.peers.lock().insert(
            Arc::from(id),
            Peer {
                heartbeat_ms: at,
                seen_ms: at,
                present,
                status: Some(Arc::new(PeerRows::new(rows, 4_096))),
                ..Peer::default()
            },
        );
    }

    #[test]
    fn per_instance_pools_add_up_over_live_instances_only() {
        let s = state(PoolScope::PerInstance);
        peer(
            &s,
            "b",
            999_000,
            true,
            vec![ResourceStatus::new("cad", 10, 5, 7)],
        );
        peer(
            &s,
            "gone",
            999_000,
            false,
            vec![ResourceStatus::new("cad", 10, 5, 9)],
        );
        peer(
            &s,
            "stale",
            980_000,
            true,
            vec![ResourceStatus::new("cad", 10, 5, 9)],
        );
        let own = vec![
            ResourceStatus::new("cad", 12, 6, 3),
            ResourceStatus::new("gpu", 4, 2, 1),
        ];
        let rows = s.status_rows(Some(own), 1_000_000).unwrap();
        assert_eq!(
            rows,
            vec![
                ResourceStatus::new("cad", 22, 11, 10),
                ResourceStatus::new("gpu", 4, 2, 1)
            ]
        );
        assert_eq!(s.live_peers(1_000_000).len(), 1);
    }

    #[test]
    fn shared_pools_take_the_freshest_row() {
        let s = state(PoolScope::Shared);
        peer(
            &s,
            "b",
            999_500,
            true,
            vec![ResourceStatus::new("cad", 10, 5, 7)],
        );
        peer(
            &s,
            "c",
            999_000,
            true,
            vec![ResourceStatus::new("cad", 10, 5, 6)],
        );
        // Without an own status source the freshest peer wins...
        assert_eq!(
            s.status_rows(None, 1_000_000).unwrap(),
            vec![ResourceStatus::new("cad", 10, 5, 7)]
        );
        // ...and this instance's own rows, read now, are fresher than any heartbeat.
        let own = vec![ResourceStatus::new("cad", 10, 5, 8)];
        assert_eq!(
            s.status_rows(Some(own), 1_000_000).unwrap(),
            vec![ResourceStatus::new("cad", 10, 5, 8)]
        );
        assert_eq!(state(PoolScope::Shared).status_rows(None, 0), None);
    }

    #[test]
    fn publish_queue_is_bounded_and_counts_what_it_drops() {
        let clock = ManualClock::new(1_000_000);
        let local = EventBuffer::new(BufferConfig::default(), Arc::new(clock)).unwrap();
        let s = state(PoolScope::PerInstance);
        s.ready.store(true, Ordering::Release);
        for i in 0..150 {
            local.record(&crate::Event::borrow("cad", format!("u{i}")));
        }
        assert_eq!(s.feed_local(&local), 150);
        assert_eq!(s.pending_len(), 100);
        assert_eq!(s.counters.publish_dropped.load(Ordering::Relaxed), 50);
        // The cluster view has all of them, the queue the newest 100.
        assert_eq!(s.buffer.stats().borrow_count, 150);
        let taken = s.take_pending(10);
        assert_eq!(&*taken[0].user, "u50");
        s.requeue(taken);
        assert_eq!(s.pending_len(), 100);
        assert_eq!(s.feed_local(&local), 0);
    }
}
