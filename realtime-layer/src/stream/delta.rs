//! Encoding one frame: a snapshot (everything, events as objects) or a delta (only the fields
//! that changed, events in compact form, resources by position).

use super::compute::Sent;
use super::frame::{CompactEvent, FrameJson, FrameKind, ResourceChange};
use crate::buffer::EventRecord;
use axum::body::Bytes;

/// How a frame carries the resources.
#[derive(Clone, Copy)]
pub(super) enum Resources<'a> {
    /// Not at all (a delta where nothing changed).
    Unchanged,
    /// The full list (snapshots, and deltas where resources came or went).
    Full,
    /// A delta's changed fields only.
    Changes(&'a [ResourceChange]),
}

/// What one frame carries besides its kind: its events, and which of the sent values.
pub(super) struct Fields<'a> {
    pub(super) events: &'a [EventRecord],
    /// Events left out (a delta past `MAX_FRAME_EVENTS`, a catch-up past `SNAPSHOT_EVENTS`).
    pub(super) omitted: u64,
    pub(super) rates: bool,
    pub(super) resources: Resources<'a>,
    pub(super) buffer: bool,
    pub(super) point: bool,
    pub(super) cluster: bool,
}

impl<'a> Fields<'a> {
    /// Every value in full, with `events` (a snapshot, or a channel's first delta).
    pub(super) fn all(events: &'a [EventRecord], omitted: u64) -> Self {
        Fields {
            events,
            omitted,
            rates: true,
            resources: Resources::Full,
            buffer: true,
            point: true,
            cluster: true,
        }
    }
}

/// Encodes frame `seq` from the sent values, with the chosen fields. Snapshots carry
/// events as objects, deltas in compact form (`ev`).
pub(super) fn encode(
    seq: u64,
    instance: &str,
    sent: &Sent,
    kind: FrameKind,
    fields: Fields<'_>,
) -> Bytes {
    let Fields {
        events,
        omitted,
        rates,
        resources,
        buffer,
        point,
        cluster,
    } = fields;
    let snapshot = kind == FrameKind::Snapshot;
    let ts_ms = sent.ts_ms;
    let compact: Vec<CompactEvent<'_>> = if snapshot {
        Vec::new()
    } else {
        events
            .iter()
            .map(|event| CompactEvent {
                event,
                frame_ts_ms: ts_ms,
                // The list is sorted by name; an event of a resource outside it (another
                // filter's, or folded) keeps its name.
                resource_index: sent
                    .resources
                    .binary_search_by(|r| (*r.name).cmp(&*event.resource))
                    .ok(),
            })
            .collect()
    };
    FrameJson {
        seq,
        kind,
        ts_ms,
        instance,
        cluster: if cluster { sent.cluster.as_ref() } else { None },
        rates: rates.then_some(&sent.rates),
        resources: matches!(resources, Resources::Full).then_some(sent.resources.as_slice()),
        res: match resources {
            Resources::Changes(changes) => Some(changes),
            _ => None,
        },
        buffer: buffer.then_some(&sent.buffer),
        events: snapshot.then_some(events),
        ev: (!compact.is_empty()).then_some(compact.as_slice()),
        events_omitted: (snapshot || omitted > 0).then_some(omitted),
        point: if point { sent.point.as_ref() } else { None },
    }
    .to_sse()
}
