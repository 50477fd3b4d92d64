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
//!
//! **Bounds.** An entry is checked against fixed bounds before anything is allocated for it: the
//! batch is at most [`MAX_ENTRY_BYTES`] (1 MiB), lists at most [`MAX_NAMES`] names of at most
//! 1,024 bytes, [`MAX_EVENTS`] events and [`MAX_STATUS_ROWS`] status rows. The sequences are
//! deserialised through a counting visitor that stops at the bound, so a hostile entry costs at
//! most its own bytes, never a multiple of them. Publishers split their batches to stay within
//! the bounds ([`encode_bounded`]); an entry over them is skipped and counted as oversized.

use crate::buffer::StoredEvent;
use crate::event::EventKind;
use crate::status::ResourceStatus;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// Format version written in field `v`.
pub(crate) const VERSION: &str = "1";
/// Longest batch (field `b`) accepted from the stream, in bytes.
pub(crate) const MAX_ENTRY_BYTES: usize = 1 << 20;
/// Longest name accepted from the stream (the routes' filters use the same bound).
pub(crate) const MAX_NAME: usize = 1024;
/// Most events accepted in one entry (and the most [`Cluster::max_batch`](super::Cluster::max_batch)
/// accepts).
pub(crate) const MAX_EVENTS: usize = 10_000;
/// Most names in one entry: each event names at most three (resource, user, reason).
pub(crate) const MAX_NAMES: usize = 3 * MAX_EVENTS;
/// Most status rows in one entry or heartbeat (and per instance).
pub(crate) const MAX_STATUS_ROWS: usize = 4_096;
/// The prefix of the deserialiser's message when a bound stopped it.
const OVER: &str = "over the bound: ";

type Tuple = (u64, u8, u32, u32, u8, u64);

#[derive(Serialize, Deserialize)]
struct Batch {
    t: u64,
    n: Bounded<String, MAX_NAMES>,
    e: Bounded<Tuple, MAX_EVENTS>,
    #[serde(default, skip_serializing_if = "Bounded::is_empty")]
    s: Bounded<(u32, u32, u32, u32), MAX_STATUS_ROWS>,
}

/// A sequence of at most `MAX` items: deserialising stops at item `MAX + 1`, before storing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bounded<T, const MAX: usize>(pub(crate) Vec<T>);

impl<T, const MAX: usize> Default for Bounded<T, MAX> {
    fn default() -> Self {
        Bounded(Vec::new())
    }
}

impl<T, const MAX: usize> Bounded<T, MAX> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize, const MAX: usize> Serialize for Bounded<T, MAX> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counting<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for Counting<T, MAX> {
            type Value = Bounded<T, MAX>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a sequence of at most {MAX} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Never trust a length hint: grow as items actually arrive.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(de::Error::custom(format_args!(
                            "{OVER}more than {MAX} items in a sequence"
                        )));
                    }
                    items.push(item);
                }
                Ok(Bounded(items))
            }
        }
        deserializer.deserialize_seq(Counting(PhantomData))
    }
}

/// A decoded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) events: Vec<StoredEvent>,
    /// The publisher's rows of the batch's resources: (name, total, commit, borrowed), names
    /// escaped like every recorded name (see [`crate::names`]).
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
    /// Over a size, name, event or status row bound (see the module documentation).
    #[error("oversized batch: {0}")]
    Oversized(String),
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
        .take(MAX_STATUS_ROWS)
        .collect();
    serde_json::to_string(&Batch {
        t: base,
        n: Bounded(names),
        e: Bounded(e),
        s: Bounded(s),
    })
    .unwrap_or_default()
}

/// Encodes `events` as as many batches as the bounds need: each at most [`MAX_EVENTS`] events
/// and [`MAX_ENTRY_BYTES`] bytes (halved until it fits). Events that alone exceed the size bound
/// (impossible with names of at most 1,024 bytes) are left out and counted in the second value.
pub(crate) fn encode_bounded(
    events: &[StoredEvent],
    status: &[ResourceStatus],
) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut dropped = 0;
    let mut todo: Vec<&[StoredEvent]> = events.chunks(MAX_EVENTS).rev().collect();
    while let Some(part) = todo.pop() {
        let json = encode(part, status);
        if json.len() <= MAX_ENTRY_BYTES {
            out.push(json);
        } else if part.len() == 1 {
            dropped += 1;
        } else {
            let (a, b) = part.split_at(part.len() / 2);
            todo.push(b);
            todo.push(a);
        }
    }
    (out, dropped)
}

/// Decodes a batch, checking every bound (before allocating for it), index and range.
pub(crate) fn decode(json: &[u8]) -> Result<Decoded, WireError> {
    if json.len() > MAX_ENTRY_BYTES {
        return Err(WireError::Oversized(format!(
            "{} bytes, more than {MAX_ENTRY_BYTES}",
            json.len()
        )));
    }
    let batch: Batch = serde_json::from_slice(json).map_err(|e| {
        let text = e.to_string();
        match text.strip_prefix(OVER) {
            Some(why) => WireError::Oversized(why.to_string()),
            None => WireError::Malformed(text),
        }
    })?;
    if batch.n.0.iter().any(|n| n.is_empty() || n.len() > MAX_NAME) {
        return Err(WireError::Invalid("name empty or longer than 1024 bytes"));
    }
    // Names as every recorded name is shown: deceptive characters made visible.
    let names: Vec<Arc<str>> = batch
        .n
        .0
        .iter()
        .map(|n| Arc::from(crate::names::visible(n).as_ref()))
        .collect();
    let get = |i: u64| {
        names
            .get(i as usize)
            .cloned()
            .ok_or(WireError::Invalid("name index out of range"))
    };
    let status = batch
        .s
        .0
        .iter()
        .map(|&(res, total, commit, borrowed)| Ok((get(res as u64)?, total, commit, borrowed)))
        .collect::<Result<Vec<_>, WireError>>()?;
    let events = batch
        .e
        .0
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

    fn oversized(json: &str) -> String {
        match decode(json.as_bytes()) {
            Err(WireError::Oversized(why)) => why,
            other => panic!("not refused as oversized: {other:?}"),
        }
    }

    #[test]
    fn bounds_stop_hostile_entries_before_they_are_stored() {
        // Bytes first: never parsed at all.
        let big = format!(
            r#"{{"t":1,"n":["{}"],"e":[]}}"#,
            "a".repeat(MAX_ENTRY_BYTES)
        );
        assert!(oversized(&big).contains("bytes"));
        // Names: one past the bound, each one character (the 2M-names entry, scaled down).
        let names = vec!["\"a\""; MAX_NAMES + 1].join(",");
        let why = oversized(&format!(r#"{{"t":1,"n":[{names}],"e":[]}}"#));
        assert!(why.contains(&MAX_NAMES.to_string()), "{why}");
        // Events.
        let events = vec!["[0,0,0,0,0,0]"; MAX_EVENTS + 1].join(",");
        oversized(&format!(r#"{{"t":1,"n":["a"],"e":[{events}]}}"#));
        // Status rows (the 1M-rows entry, scaled down).
        let rows = vec!["[0,1,1,1]"; MAX_STATUS_ROWS + 1].join(",");
        oversized(&format!(
            r#"{{"t":1,"n":["a"],"e":[[0,0,0,0,0,0]],"s":[{rows}]}}"#
        ));
        // At the bounds, accepted.
        let rows = vec!["[0,1,1,1]"; MAX_STATUS_ROWS].join(",");
        let ok = format!(r#"{{"t":1,"n":["a"],"e":[[0,0,0,0,0,0]],"s":[{rows}]}}"#);
        assert_eq!(decode(ok.as_bytes()).unwrap().status.len(), MAX_STATUS_ROWS);
    }

    #[test]
    fn names_from_the_stream_are_escaped_like_recorded_names() {
        let json = "{\"t\":1,\"n\":[\"CAD\\u202e\",\"ann\\u200b\"],\"e\":[[0,0,0,1,0,0]],\"s\":[[0,4,2,1]]}";
        let decoded = decode(json.as_bytes()).unwrap();
        assert_eq!(&*decoded.events[0].resource, "CAD<U+202E>");
        assert_eq!(&*decoded.events[0].user, "ann<U+200B>");
        assert_eq!(&*decoded.status[0].0, "CAD<U+202E>");
    }

    #[test]
    fn publishers_split_batches_to_stay_within_the_bounds() {
        // 25,000 events with distinct 900-byte users: far over both the event and byte bounds.
        let long = "u".repeat(900);
        let events: Vec<StoredEvent> = (0..25_000u64)
            .map(|i| StoredEvent {
                user: Arc::from(format!("{long}{i}").as_str()),
                ..ev(1_700_000_000_000 + i, EventKind::Borrow, "x")
            })
            .collect();
        let (batches, dropped) = encode_bounded(&events, &[]);
        assert_eq!(dropped, 0);
        assert!(batches.len() > 20, "{}", batches.len());
        let mut back = Vec::new();
        for b in &batches {
            assert!(b.len() <= MAX_ENTRY_BYTES);
            back.extend(decode(b.as_bytes()).unwrap().events);
        }
        assert_eq!(back, events);
    }
}
