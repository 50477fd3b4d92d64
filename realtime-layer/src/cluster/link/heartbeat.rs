//! Heartbeats: each instance writes its status rows under a key with a TTL and reads the others'
//! (who is live, with which pools).
//!
//! The others' heartbeats are read through the bounded read (`guarded`), parsed, checked,
//! escaped and indexed off the peers lock; the lock is then held only to move pointers.

use super::guarded::Beat;
use super::{wire, Link, FORGET_AFTER_MS, MAX_PEERS};
use crate::core::cluster_state::Peer;
use crate::core::{shown_instance_id, PeerRows};
use crate::status::ResourceStatus;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What an instance writes to its heartbeat key.
#[derive(Debug, Serialize)]
struct Heartbeat<'a> {
    v: u8,
    id: &'a str,
    ts_ms: u64,
    started_ms: u64,
    status: Option<&'a [ResourceStatus]>,
}

/// A heartbeat as read: at most [`wire::MAX_STATUS_ROWS`] rows, counted while parsing.
#[derive(Deserialize)]
struct HeartbeatIn {
    id: String,
    ts_ms: u64,
    started_ms: u64,
    status: Option<wire::Bounded<ResourceStatus, { wire::MAX_STATUS_ROWS }>>,
}

/// One other instance's heartbeat, checked and ready to be swapped in.
struct Read {
    id: Arc<str>,
    ts_ms: u64,
    started_ms: u64,
    status: Option<Arc<PeerRows>>,
}

impl Link {
    /// Writes this instance's heartbeat and reads everyone's.
    pub(super) async fn heartbeat(
        &self,
        conn: &mut ConnectionManager,
        status: Option<Vec<ResourceStatus>>,
    ) {
        let now = self.now_ms();
        let id = &*self.cluster.id;
        let beat = Heartbeat {
            v: 1,
            id,
            ts_ms: now,
            started_ms: self.cluster.started_ms,
            // Others read at most this many rows.
            status: status
                .as_deref()
                .map(|rows| &rows[..rows.len().min(wire::MAX_STATUS_ROWS)]),
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
        let written: Result<(), _> = redis::pipe()
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
            .query_async(conn)
            .await;
        if let Err(e) = written {
            return self.cluster.set_error(format!("heartbeat failed: {e}"));
        }
        let beats = match self.beats(conn).await {
            Ok(beats) => beats,
            Err(e) => {
                return self
                    .cluster
                    .set_error(format!("heartbeat read failed: {e}"))
            }
        };
        self.cluster.set_connected();
        let read = self.check(beats);
        let mut peers = self.cluster.peers.lock();
        let mut present: HashSet<Arc<str>> = HashSet::with_capacity(read.len());
        for beat in read {
            present.insert(beat.id.clone());
            let peer = peers.entry(beat.id).or_default();
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
            if !present.contains(id) {
                peer.present = false;
            }
        }
        forget_old_peers(&mut peers, now);
    }

    /// The other instances' heartbeats that pass every check; the rest are skipped and counted.
    fn check(&self, beats: Vec<Beat>) -> Vec<Read> {
        let counters = &self.cluster.counters;
        let skip = |oversized: bool| {
            counters.skipped_entries.fetch_add(1, Ordering::Relaxed);
            if oversized {
                counters.oversized_entries.fetch_add(1, Ordering::Relaxed);
            }
        };
        let mut read = Vec::new();
        for beat in beats {
            let (member, value) = match beat {
                Beat::Oversized => {
                    skip(true);
                    continue;
                }
                // No key: it expired (the instance left the live totals).
                Beat::Read(_, None) => continue,
                Beat::Read(member, Some(value)) => (member, value),
            };
            if *member == *self.cluster.id {
                continue;
            }
            let Ok(beat) = serde_json::from_slice::<HeartbeatIn>(&value) else {
                skip(false);
                continue;
            };
            let sane_rows = beat.status.as_ref().is_none_or(|rows| {
                rows.0
                    .iter()
                    .all(|r| !r.name.is_empty() && r.name.len() <= wire::MAX_NAME)
            });
            let shown = shown_instance_id(&beat.id);
            let (true, true, Ok(id)) = (beat.id == member, sane_rows, shown) else {
                skip(false);
                continue;
            };
            if id == self.cluster.id {
                continue;
            }
            read.push(Read {
                id,
                ts_ms: beat.ts_ms,
                started_ms: beat.started_ms,
                status: beat
                    .status
                    .map(|rows| Arc::new(PeerRows::new(rows.0, wire::MAX_STATUS_ROWS))),
            });
        }
        read
    }
}

fn forget_old_peers(peers: &mut HashMap<Arc<str>, Peer>, now: u64) {
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
