//! What a frame holds now for one filter: rates, resources, buffer facts, the last complete
//! second and cluster state, read through the views (the same numbers `/realtime/stats` gives).

use super::frame::{BufferFrame, ClusterFrame, ResourceFrame};
use super::limits::{RATE_WINDOW, SNAPSHOT_EVENTS};
use crate::buffer::{Cursor, EventFilter, EventRecord, SecondPoint};
use crate::core::Core;
use crate::event::EventKind;
use crate::views::{Rates, Scope};

/// What a client that followed every frame holds (the base of deltas and of snapshots).
#[derive(Debug, Clone, Default)]
pub(super) struct Sent {
    pub(super) ts_ms: u64,
    pub(super) rates: Rates,
    pub(super) resources: Vec<ResourceFrame>,
    pub(super) buffer: BufferFrame,
    pub(super) point: Option<SecondPoint>,
    pub(super) cluster: Option<ClusterFrame>,
}

/// Current values for `filter`; the flag tells whether `point` moved to a newer second than in
/// `prev` (it is only recomputed then).
pub(super) fn compute(
    core: &Core,
    scope: &Scope,
    filter: &EventFilter,
    prev: &Sent,
) -> (Sent, bool) {
    let buffer = scope.buffer(core);
    let ts_ms = buffer.clock().now_ms();
    let (totals, views) = crate::views::resource_views(core, scope, RATE_WINDOW, filter);
    let point_t = (ts_ms / 1000).saturating_sub(1);
    let (point, changed) = match prev.point {
        Some(p) if p.t == point_t => (Some(p), false),
        _ => (Some(second_point(core, scope, filter, point_t)), true),
    };
    let cluster = core.cluster.as_ref().map(|c| ClusterFrame {
        state: c.state_name(),
        scope: scope.name(core),
        live_instances: c.live_peers(ts_ms).len() + 1,
    });
    let sent = Sent {
        ts_ms,
        rates: Rates::from_totals(&totals, RATE_WINDOW),
        resources: views.iter().map(ResourceFrame::from).collect(),
        buffer: buffer.stats().into(),
        point,
        cluster,
    };
    (sent, changed)
}

/// The aggregate of second `t` for `filter` (zero counts and the carried level when idle). With
/// a user filter the counts are that user's events (read from the events of that second), and
/// `peak_borrowed` stays the pool's (levels are not kept per user).
fn second_point(core: &Core, scope: &Scope, filter: &EventFilter, t: u64) -> SecondPoint {
    let buffer = scope.buffer(core);
    let filter = &scope.filter(core, filter);
    if filter.instance.is_some() {
        let series = buffer.seconds_filtered(t, t, filter);
        return series.points.first().copied().unwrap_or(SecondPoint {
            t,
            peak_borrowed: series.level_before,
            end_borrowed: series.level_before,
            ..SecondPoint::default()
        });
    }
    let series = buffer.seconds(t, t, filter.resource.as_deref());
    let mut p = series.points.first().copied().unwrap_or(SecondPoint {
        t,
        peak_borrowed: series.level_before,
        end_borrowed: series.level_before,
        ..SecondPoint::default()
    });
    if filter.user.is_some() {
        p.borrows = 0;
        p.overage_borrows = 0;
        p.returns = 0;
        p.failures = 0;
        let end_ms = (t + 1) * 1000;
        let mut cursor = buffer.cursor_at(t * 1000);
        'pages: loop {
            let (page, next) = buffer.page(cursor, 1000, filter);
            if page.is_empty() {
                break;
            }
            for e in &page {
                if e.ts_ms >= end_ms {
                    break 'pages;
                }
                match e.kind {
                    EventKind::Borrow => {
                        p.borrows += 1;
                        p.overage_borrows += e.overage as u32;
                    }
                    EventKind::Return => p.returns += 1,
                    EventKind::Failure => p.failures += 1,
                }
            }
            cursor = next;
        }
    }
    p
}

/// The newest events of `scope` and `filter` (for a new channel's snapshots) and the cursor
/// right after them.
pub(super) fn newest_events(
    core: &Core,
    scope: &Scope,
    filter: &EventFilter,
) -> (Vec<EventRecord>, Cursor) {
    let buffer = scope.buffer(core);
    let filter = scope.filter(core, filter);
    let before_ms = buffer.clock().now_ms();
    // Find where the newest SNAPSHOT_EVENTS start, then read forward from there: one locked
    // call gives both the events and the exact cursor after them (no gap, no duplicate).
    let retention = buffer.config().retention.as_secs().min(u32::MAX as u64) as u32;
    let from_ms = buffer
        .recent_events(retention, SNAPSHOT_EVENTS, &filter)
        .last()
        .map_or(before_ms, |e| e.ts_ms);
    let (events, _, cursor) =
        buffer.events_after(buffer.cursor_at(from_ms), SNAPSHOT_EVENTS, &filter);
    (events, cursor)
}
