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

/// Encodes frame `seq` from the sent values, with the chosen fields. Snapshots carry
/// events as objects, deltas in compact form (`ev`).
#[allow(clippy::too_many_arguments)]
pub(super) fn encode(
    seq: u64,
    instance: &str,
    sent: &Sent,
    kind: FrameKind,
    events: &[EventRecord],
    omitted: u64,
    rates: bool,
    resources: Resources<'_>,
    buffer: bool,
    point: bool,
    cluster: bool,
) -> Bytes {
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
