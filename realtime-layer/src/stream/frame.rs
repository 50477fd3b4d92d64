//! Frame contents and their one-time encoding as Server-Sent Events messages.

use crate::buffer::{BufferStats, EventRecord, SecondPoint};
use crate::event::EventKind;
use crate::views::{Rates, ResourceView};
use axum::body::Bytes;
use serde::Serialize;
use std::io::Write as _;
use std::sync::Arc;

/// One resource as a frame carries it (the stats view without the window counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ResourceFrame {
    pub(crate) name: Arc<str>,
    pub(crate) total: Option<u32>,
    pub(crate) commit: Option<u32>,
    pub(crate) borrowed: u32,
    pub(crate) overage: u32,
    pub(crate) in_commit: u32,
    pub(crate) available: Option<u32>,
    pub(crate) peak_borrowed: u32,
}

impl From<&ResourceView> for ResourceFrame {
    fn from(v: &ResourceView) -> Self {
        ResourceFrame {
            name: v.name.clone(),
            total: v.total,
            commit: v.commit,
            borrowed: v.borrowed,
            overage: v.overage,
            in_commit: v.in_commit,
            available: v.available,
            peak_borrowed: v.peak_borrowed,
        }
    }
}

/// The fields of one resource that changed since the previous frame (a delta's `res` entry):
/// `i`, the resource's position in the list the client holds (a delta only sends `res` when the
/// set of resources, hence every position, is unchanged), then every other field only when it
/// changed (`total`, `commit` and `available` may change to `null`).
#[derive(Debug, Serialize)]
pub(crate) struct ResourceChange {
    pub(crate) i: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) total: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) commit: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) borrowed: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) overage: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) in_commit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) available: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peak_borrowed: Option<u32>,
}

impl ResourceChange {
    /// What changed from `old` to `new` (same name, at position `i`), or `None` when nothing did.
    pub(crate) fn between(i: usize, old: &ResourceFrame, new: &ResourceFrame) -> Option<Self> {
        fn moved<T: PartialEq + Copy>(old: T, new: T) -> Option<T> {
            (old != new).then_some(new)
        }
        (old != new).then(|| ResourceChange {
            i,
            total: moved(old.total, new.total),
            commit: moved(old.commit, new.commit),
            borrowed: moved(old.borrowed, new.borrowed),
            overage: moved(old.overage, new.overage),
            in_commit: moved(old.in_commit, new.in_commit),
            available: moved(old.available, new.available),
            peak_borrowed: moved(old.peak_borrowed, new.peak_borrowed),
        })
    }
}

/// An event in a delta's compact form, `[dt, kind, resource, user, borrow_id, extra]`: `dt` is
/// `ts_ms` minus the frame's `ts_ms` (zero or negative), `kind` is 0 borrow, 1 return,
/// 2 failure, `resource` is the resource's position in the frame's resource list (its name
/// when it is not in the list), `borrow_id` is a string or `null`, `extra` is 1 for an overage
/// borrow or the reason of a failure (or of an `expired` return), then, in a cluster view, the
/// event's instance. Trailing `null`s (and a 0 `extra`) are left out.
#[derive(Debug)]
pub(crate) struct CompactEvent<'a> {
    pub(crate) event: &'a EventRecord,
    pub(crate) frame_ts_ms: u64,
    /// Position of the event's resource in the list the client holds.
    pub(crate) resource_index: Option<usize>,
}

impl Serialize for CompactEvent<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let e = self.event;
        let kind = match e.kind {
            EventKind::Borrow => 0u8,
            EventKind::Return => 1,
            EventKind::Failure => 2,
        };
        let extra = match e.kind {
            EventKind::Borrow if e.overage => Some(Extra::Overage),
            EventKind::Failure | EventKind::Return => e.reason.as_deref().map(Extra::Reason),
            _ => None,
        };
        let len = if e.instance.is_some() {
            7
        } else if extra.is_some() {
            6
        } else if e.borrow_id.is_some() {
            5
        } else {
            4
        };
        let mut seq = serializer.serialize_seq(Some(len))?;
        seq.serialize_element(&(e.ts_ms as i64 - self.frame_ts_ms as i64))?;
        seq.serialize_element(&kind)?;
        match self.resource_index {
            Some(i) => seq.serialize_element(&i)?,
            None => seq.serialize_element(&*e.resource)?,
        }
        seq.serialize_element(&*e.user)?;
        if len > 4 {
            seq.serialize_element(&e.borrow_id)?;
        }
        match extra {
            Some(Extra::Overage) => seq.serialize_element(&1u8)?,
            Some(Extra::Reason(why)) => seq.serialize_element(why)?,
            None if len > 5 => seq.serialize_element(&0u8)?,
            None => {}
        }
        if let Some(instance) = &e.instance {
            seq.serialize_element(&**instance)?;
        }
        seq.end()
    }
}

enum Extra<'a> {
    Overage,
    Reason(&'a str),
}

/// Buffer facts as a frame carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct BufferFrame {
    pub(crate) total_events: u64,
    pub(crate) borrow_count: u64,
    pub(crate) return_count: u64,
    pub(crate) failure_count: u64,
    pub(crate) oldest_event_ms: Option<u64>,
    pub(crate) folded_names: u64,
}

impl From<BufferStats> for BufferFrame {
    fn from(s: BufferStats) -> Self {
        BufferFrame {
            total_events: s.total_events,
            borrow_count: s.borrow_count,
            return_count: s.return_count,
            failure_count: s.failure_count,
            oldest_event_ms: s.oldest_event_ms,
            folded_names: s.folded_names,
        }
    }
}

/// Which view a frame shows and the cluster's health (cluster mode only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ClusterFrame {
    /// `ok`, `degraded` (Redis unreachable: this instance's view) or `backfilling`.
    pub(crate) state: &'static str,
    /// `cluster`, `local` or `instance`.
    pub(crate) scope: &'static str,
    /// Live instances, this one included.
    pub(crate) live_instances: usize,
}

/// Snapshot or delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FrameKind {
    Snapshot,
    Delta,
}

/// The JSON of one frame; `None` fields are left out ("unchanged" in a delta).
#[derive(Debug, Serialize)]
pub(crate) struct FrameJson<'a> {
    pub(crate) seq: u64,
    pub(crate) kind: FrameKind,
    pub(crate) ts_ms: u64,
    /// The instance that built the frame.
    pub(crate) instance: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cluster: Option<&'a ClusterFrame>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rates: Option<&'a Rates>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resources: Option<&'a [ResourceFrame]>,
    /// Delta only: the resources whose fields changed, with only those fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) res: Option<&'a [ResourceChange]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) buffer: Option<&'a BufferFrame>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) events: Option<&'a [EventRecord]>,
    /// Delta only: the new events in compact form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ev: Option<&'a [CompactEvent<'a>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) events_omitted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) point: Option<&'a SecondPoint>,
}

impl FrameJson<'_> {
    /// The frame as one SSE message: `id: SEQ\ndata: JSON\n\n`. JSON never holds a raw
    /// newline, so one `data:` line is enough.
    pub(crate) fn to_sse(&self) -> Bytes {
        let mut out = Vec::with_capacity(768);
        let _ = write!(out, "id: {}\ndata: ", self.seq);
        serde_json::to_writer(&mut out, self).expect("frames serialise");
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

/// A keep-alive comment line.
pub(crate) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The JSON of an SSE-encoded frame message (`id: N\ndata: JSON\n\n`, as built by the hub): a
/// slice of the same buffer (a reference count, no copy, no re-serialisation), for transports
/// that carry the bare JSON (`/realtime/ws`).
pub(crate) fn frame_json(message: &Bytes) -> Bytes {
    const DATA: &[u8] = b"data: ";
    let start = message
        .windows(DATA.len())
        .position(|w| w == DATA)
        .map_or(0, |i| i + DATA.len());
    let end = message[start..]
        .iter()
        .rposition(|&b| b != b'\n')
        .map_or(start, |i| start + i + 1);
    message.slice(start..end)
}
