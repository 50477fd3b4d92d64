//! Frame contents and their one-time encoding as Server-Sent Events messages.

use crate::buffer::{BufferStats, EventRecord, SecondPoint};
use crate::snapshot::{Rates, ResourceView};
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) buffer: Option<&'a BufferFrame>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) events: Option<&'a [EventRecord]>,
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
