//! Merging one stream entry into the cluster view, in time linear in the entry and without
//! holding a lock a request takes while it works:
//!
//! - the entry is checked against the wire bounds before it is parsed (`wire::decode`); over them
//!   it is skipped and counted (`skipped_entries`, `oversized_entries`);
//! - its events go into the cluster buffer in chunks of [`MERGE_CHUNK`], so the buffer's lock
//!   (which the routes take) is never held for a whole entry;
//! - the publisher's status rows are applied to a copy of the instance's rows, one hash lookup per
//!   row (`PeerRows::updated`), off the peers lock; the lock is taken twice for O(1) work: to read
//!   the counters and the rows' pointer, and to swap the new rows in.

use super::guarded::OVERSIZED;
use super::reply::Entry;
use super::{wire, Link, MAX_PEERS};
use crate::core::{shown_instance_id, PeerRows};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Events stored per acquisition of the cluster buffer's lock.
const MERGE_CHUNK: usize = 1_024;

impl Link {
    /// Merges one stream entry into the cluster view; counts and skips anything malformed or
    /// over the bounds. Returns the number of events merged.
    pub(super) fn merge(&self, entry: &Entry, backfill: bool) -> usize {
        let cluster = &self.cluster;
        let skip = |oversized: bool| {
            cluster
                .counters
                .skipped_entries
                .fetch_add(1, Ordering::Relaxed);
            if oversized {
                cluster
                    .counters
                    .oversized_entries
                    .fetch_add(1, Ordering::Relaxed);
            }
            0
        };
        let field = |name: &[u8]| {
            entry
                .fields
                .iter()
                .find(|(k, _)| k.as_slice() == name)
                .map(|(_, v)| v.as_slice())
        };
        if field(OVERSIZED).is_some() {
            tracing::debug!(entry = %entry.id, "skipped an oversized cluster stream entry");
            return skip(true);
        }
        let (Some(version), Some(instance), Some(batch)) = (field(b"v"), field(b"i"), field(b"b"))
        else {
            return skip(false);
        };
        if version != wire::VERSION.as_bytes() {
            return skip(false);
        }
        let Some(instance) = std::str::from_utf8(instance)
            .ok()
            .and_then(|id| shown_instance_id(id).ok())
        else {
            return skip(false);
        };
        let wire::Decoded { events, status } = match wire::decode(batch) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::debug!(entry = %entry.id, error = %e, "skipped a cluster stream entry");
                return skip(matches!(e, wire::WireError::Oversized(_)));
            }
        };
        let Some(newest) = events.last().map(|e| e.ts_ms) else {
            return 0;
        };
        // This instance's own events reach the view through the feed; only a previous run's
        // (same id, before this start) come through the stream.
        if instance == cluster.id && (!backfill || newest >= cluster.started_ms) {
            return 0;
        }
        let mut stored = 0;
        for chunk in events.chunks(MERGE_CHUNK) {
            stored += cluster.buffer.record_stored(&instance, chunk);
        }
        let counter = if backfill {
            &cluster.counters.backfilled
        } else {
            &cluster.counters.received
        };
        counter.fetch_add(stored as u64, Ordering::Relaxed);
        if instance != cluster.id {
            self.merge_peer(&instance, stored, newest, &status, backfill);
        }
        stored
    }

    /// Updates what is known of another instance from one of its batches.
    fn merge_peer(
        &self,
        instance: &Arc<str>,
        stored: usize,
        newest: u64,
        status: &[(Arc<str>, u32, u32, u32)],
        backfill: bool,
    ) {
        let now = self.now_ms();
        // Under the lock: counters and a pointer copy.
        let current = {
            let mut peers = self.cluster.peers.lock();
            if peers.len() >= MAX_PEERS && !peers.contains_key(instance) {
                return;
            }
            let peer = peers.entry(instance.clone()).or_default();
            peer.received += stored as u64;
            peer.last_event_ms = Some(peer.last_event_ms.unwrap_or(0).max(newest));
            if backfill {
                return;
            }
            peer.lag_ms = Some(now.saturating_sub(newest));
            if newest < peer.heartbeat_ms {
                return;
            }
            peer.heartbeat_ms = newest;
            if status.is_empty() {
                return;
            }
            peer.status.clone()
        };
        // Off the lock: live totals move with the events (heartbeats refresh every row).
        let next = Arc::new(match &current {
            Some(rows) => rows.updated(status, wire::MAX_STATUS_ROWS),
            None => PeerRows::default().updated(status, wire::MAX_STATUS_ROWS),
        });
        let mut peers = self.cluster.peers.lock();
        if let Some(peer) = peers.get_mut(instance) {
            // Unless a heartbeat replaced the rows meanwhile (then they are newer than these).
            let unchanged = match (&peer.status, &current) {
                (Some(now), Some(then)) => Arc::ptr_eq(now, then),
                (None, None) => true,
                _ => false,
            };
            if unchanged {
                peer.status = Some(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::link;
    use super::*;
    use crate::buffer::StoredEvent;
    use crate::event::EventKind;
    use crate::status::ResourceStatus;

    fn entry(instance: &str, batch: String) -> Entry {
        Entry {
            id: "1-0".into(),
            fields: vec![
                (b"v".to_vec(), b"1".to_vec()),
                (b"i".to_vec(), instance.as_bytes().to_vec()),
                (b"b".to_vec(), batch.into_bytes()),
            ],
        }
    }

    fn borrow(ts_ms: u64, resource: &str) -> StoredEvent {
        StoredEvent {
            ts_ms,
            kind: EventKind::Borrow,
            resource: resource.into(),
            user: "ann".into(),
            overage: false,
            id_kind: 0,
            id: 0,
            reason: None,
        }
    }

    #[test]
    fn status_rows_merge_by_index_and_stay_bounded() {
        let (link, cluster) = link();
        let now = cluster.buffer.clock().now_ms();
        // 5,000 resources in batches of 1,000: rows are capped at the bound, each update lands.
        for round in 0..5u32 {
            let events: Vec<StoredEvent> = (0..1_000)
                .map(|i| borrow(now, &format!("r{}", round * 1_000 + i)))
                .collect();
            let rows: Vec<ResourceStatus> = events
                .iter()
                .map(|e| ResourceStatus::new(&*e.resource, 9, 3, round + 1))
                .collect();
            let merged = link.merge(&entry("peer", wire::encode(&events, &rows)), false);
            assert_eq!(merged, 1_000);
        }
        let rows = cluster.peer_status("peer").unwrap();
        assert_eq!(rows.len(), wire::MAX_STATUS_ROWS);
        assert_eq!(rows[0], ResourceStatus::new("r0", 9, 3, 1));
        // An update of a known row replaces it in place.
        let events = vec![borrow(now, "r0")];
        let update = [ResourceStatus::new("r0", 9, 3, 7)];
        link.merge(&entry("peer", wire::encode(&events, &update)), false);
        let rows = cluster.peer_status("peer").unwrap();
        assert_eq!(rows[0].borrowed, 7);
        assert_eq!(rows.len(), wire::MAX_STATUS_ROWS);
    }

    #[test]
    fn hostile_entries_are_skipped_and_counted_and_ids_escaped() {
        let (link, cluster) = link();
        let now = cluster.buffer.clock().now_ms();
        let marker = Entry {
            id: "2-0".into(),
            fields: vec![(OVERSIZED.to_vec(), b"13000000".to_vec())],
        };
        assert_eq!(link.merge(&marker, false), 0);
        let names = vec!["\"a\""; wire::MAX_NAMES + 1].join(",");
        let many = format!(r#"{{"t":1,"n":[{names}],"e":[]}}"#);
        assert_eq!(link.merge(&entry("peer", many), false), 0);
        assert_eq!(link.merge(&entry("bad id", "{}".into()), false), 0);
        let c = &cluster.counters;
        assert_eq!(c.skipped_entries.load(Ordering::Relaxed), 3);
        assert_eq!(c.oversized_entries.load(Ordering::Relaxed), 2);
        // A bidi control in an instance id is shown, not obeyed.
        let events = vec![borrow(now, "cad")];
        link.merge(&entry("web\u{202E}1", wire::encode(&events, &[])), false);
        let ids = cluster.known_instances();
        assert!(ids.iter().any(|id| &**id == "web<U+202E>1"), "{ids:?}");
        assert!(!ids.iter().any(|id| id.contains('\u{202E}')), "{ids:?}");
    }
}
