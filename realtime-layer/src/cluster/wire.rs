//! How events travel through the Redis stream: one stream entry per batch.
//!
//! An entry has three fields: `v` (format version, `1`), `i` (the publishing instance's id) and
//! `b` (the batch as compact JSON). A batch names each resource, user and reason once and lists
//! its events as small integer tuples, so a busy batch costs ~30 bytes per event in Redis:
//!
//! ```text
//! {"t":1700000000000,"n":["CAD","ann","exhausted"],"e":[[0,0,0,1,2,42],[7,2,0,1,0,2]]}
//! ```
//!
//! `t` is the base time (Unix ms); each event is `[dt, kind, resource, user, flags, id]` with
//! `kind` 0 borrow, 1 return, 2 failure; `resource`/`user` index `n`; `flags` = overage bit (on a
//! return: expired, the lease ran out) | borrow-id kind << 1; `id` is the borrow id's 64-bit
//! code, or for a failure the index of its reason in `n`. An optional `s` carries the publisher's
//! status rows of the batch's resources at send time, `[resource, total, commit, borrowed]`, so
//! other instances' live totals move with the events instead of waiting for the next heartbeat.
//! Anything else found in the stream is skipped and counted, never trusted.

use crate::buffer::StoredEvent;
use crate::event::EventKind;
use crate::status::ResourceStatus;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Format version written in field `v`.
pub(crate) const VERSION: &str = "1";
/// Longest name accepted from the stream (the routes' filters use the same bound).
const MAX_NAME: usize = 1024;
/// Most events accepted in one entry (publishers write far fewer).
const MAX_EVENTS: usize = 100_000;

#[derive(Serialize, Deserialize)]
struct Batch {
    t: u64,
    n: Vec<String>,
    e: Vec<(u64, u8, u32, u32, u8, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    s: Vec<(u32, u32, u32, u32)>,
}

/// A decoded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) events: Vec<StoredEvent>,
    /// The publisher's rows of the batch's resources: (name, total, commit, borrowed).
    pub(crate) status: Vec<(Arc<str>, u32, u32, u32)>,
}

/// Why an entry was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// Not valid JSON of the batch shape.
    #[error("malformed batch: {0}")]
    Malformed(String),
    /// Valid JSON whose content is out of range.
    #[error("invalid batch: {0}")]
    Invalid(&'static str),
}

/// Encodes `events` (oldest first) as one batch, with the `status` rows of its resources.
pub(crate) fn encode(events: &[StoredEvent], status: &[ResourceStatus]) -> String {
    let base = events.first().map_or(0, |e| e.ts_ms);
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<Arc<str>, u32> = HashMap::new();
    let mut name = |n: &Arc<str>| -> u32 {
        *index.entry(n.clone()).or_insert_with(|| {
            names.push(n.to_string());
            names.len() as u32 - 1
        })
    };
    let e = events
        .iter()
        .map(|ev| {
            let kind = match ev.kind {
                EventKind::Borrow => 0,
                EventKind::Return => 1,
                EventKind::Failure => 2,
            };
            let res = name(&ev.resource);
            let user = name(&ev.user);
            let id = match &ev.reason {
                Some(reason) if ev.kind == EventKind::Failure => name(reason) as u64,
                _ => ev.id,
            };
            let flags = ev.overage as u8 | (ev.id_kind & 0b11) << 1;
            (ev.ts_ms.saturating_sub(base), kind, res, user, flags, id)
        })
        .collect();
    let s = status
        .iter()
        .filter_map(|row| {
            let i = *index.get(row.name.as_str())?;
            Some((i, row.total, row.commit, row.borrowed))
        })
        .collect();
    serde_json::to_string(&Batch {
        t: base,
        n: names,
        e,
        s,
    })
    .unwrap_or_default()
}

/// Decodes a batch, checking every index and bound.
pub(crate) fn decode(json: &[u8]) -> Result<Decoded, WireError> {
    let batch: Batch =
        serde_json::from_slice(json).map_err(|e| WireError::Malformed(e.to_string()))?;
    if batch.e.len() > MAX_EVENTS {
        return Err(WireError::Invalid("too many events"));
    }
    if batch.n.iter().any(|n| n.is_empty() || n.len() > MAX_NAME) {
        return Err(WireError::Invalid("name empty or longer than 1024 bytes"));
    }
    let names: Vec<Arc<str>> = batch.n.iter().map(|n| Arc::from(n.as_str())).collect();
    let get = |i: u64| {
        names
            .get(i as usize)
            .cloned()
            .ok_or(WireError::Invalid("name index out of range"))
    };
    let status = batch
        .s
        .iter()
        .map(|&(res, total, commit, borrowed)| Ok((get(res as u64)?, total, commit, borrowed)))
        .collect::<Result<Vec<_>, WireError>>()?;
    let events = batch
        .e
        .iter()
        .map(|&(dt, kind, res, user, flags, id)| {
            let kind = match kind {
                0 => EventKind::Borrow,
                1 => EventKind::Return,
                2 => EventKind::Failure,
                _ => return Err(WireError::Invalid("unknown event kind")),
            };
            let failure = kind == EventKind::Failure;
            Ok(StoredEvent {
                ts_ms: batch
                    .t
                    .checked_add(dt)
                    .ok_or(WireError::Invalid("time overflow"))?,
                kind,
                resource: get(res as u64)?,
                user: get(user as u64)?,
                overage: !failure && flags & 1 != 0,
                id_kind: if failure { 0 } else { (flags >> 1) & 0b11 },
                id: if failure { 0 } else { id },
                reason: if failure { Some(get(id)?) } else { None },
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    Ok(Decoded { events, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_ms: u64, kind: EventKind, user: &str) -> StoredEvent {
        StoredEvent {
            ts_ms,
            kind,
            resource: "CAD".into(),
            user: user.into(),
            overage: kind == EventKind::Borrow,
            id_kind: if kind == EventKind::Failure { 0 } else { 1 },
            id: if kind == EventKind::Failure {
                0
            } else {
                0x550e_8400_e29b_41d4
            },
            reason: (kind == EventKind::Failure).then(|| Arc::from("exhausted")),
        }
    }

    #[test]
    fn batches_round_trip_and_name_each_string_once() {
        let events = vec![
            ev(1_700_000_000_000, EventKind::Borrow, "ann"),
            ev(1_700_000_000_007, EventKind::Return, "ann"),
            ev(1_700_000_000_009, EventKind::Failure, "bob"),
            StoredEvent {
                overage: true, // an expired return
                ..ev(1_700_000_000_011, EventKind::Return, "cy")
            },
        ];
        let rows = [
            ResourceStatus::new("CAD", 10, 8, 3),
            ResourceStatus::new("not in the batch", 1, 1, 1),
        ];
        let json = encode(&events, &rows);
        assert_eq!(json.matches("\"ann\"").count(), 1);
        let decoded = decode(json.as_bytes()).unwrap();
        assert_eq!(decoded.events, events);
        assert_eq!(decoded.status, vec![(Arc::from("CAD"), 10, 8, 3)]);
        // Compact: a few dozen bytes per event once names are shared.
        assert!(json.len() < 200, "{json}");
    }

    #[test]
    fn garbage_is_rejected_not_trusted() {
        for bad in [
            &b"not json"[..],
            br#"{"t":1,"n":["a"],"e":[[0,0,0,5,0,0]]}"#,
            br#"{"t":1,"n":["a"],"e":[[0,9,0,0,0,0]]}"#,
            br#"{"t":1,"n":[""],"e":[]}"#,
            br#"{"t":18446744073709551615,"n":["a"],"e":[[5,0,0,0,0,0]]}"#,
            br#"{"t":1,"n":["a"],"e":[[0,2,0,0,0,3]]}"#,
            br#"{"t":1,"n":["a"],"e":[],"s":[[4,1,1,1]]}"#,
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
