//! Heartbeats: each instance writes its status rows under a key with a TTL and reads the others'
//! (who is live, with which pools).

use super::{Link, FORGET_AFTER_MS, MAX_PEERS};
use crate::core::cluster_state::Peer;
use crate::core::validate_instance_id;
use crate::status::ResourceStatus;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What an instance writes to its heartbeat key.
#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    v: u8,
    id: String,
    ts_ms: u64,
    started_ms: u64,
    status: Option<Vec<ResourceStatus>>,
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
            if beat.id != *member || validate_instance_id(&beat.id).is_err() || !sane_rows {
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
