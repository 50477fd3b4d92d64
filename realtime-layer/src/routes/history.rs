//! `GET /realtime/history?window=SECONDS&resource=NAME`: downsampled, zero-filled chart series
//! from the per-second aggregates (at most [`MAX_BUCKETS`] buckets, whatever the event count).

use super::params::{self, Params};
use super::RouteState;
use crate::buffer::EventFilter;
use crate::core::Core;
use crate::error::ApiError;
use crate::views::Scope;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

/// Most buckets per series.
pub(crate) const MAX_BUCKETS: u64 = 360;

/// Window used when none is given (the page's default range).
const DEFAULT_WINDOW: u32 = 1800;

#[derive(Debug, Default, Serialize)]
pub(crate) struct SumMax {
    sum: Vec<u64>,
    max: Vec<u32>,
}

impl SumMax {
    fn push(&mut self) {
        self.sum.push(0);
        self.max.push(0);
    }

    fn add(&mut self, v: u32) {
        if let (Some(s), Some(m)) = (self.sum.last_mut(), self.max.last_mut()) {
            *s += v as u64;
            *m = (*m).max(v);
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Max {
    max: Vec<u32>,
}

/// The history answer (see `docs/PROTOCOL.md`).
#[derive(Debug, Serialize)]
pub(crate) struct HistoryResponse {
    window_seconds: u32,
    bucket_seconds: u64,
    /// Start of the first bucket (Unix s).
    start: u64,
    /// End of the data, exclusive (Unix s): the current, incomplete second is left to the stream.
    end: u64,
    t: Vec<u64>,
    borrows: SumMax,
    overage_borrows: SumMax,
    returns: SumMax,
    failures: SumMax,
    peak_borrowed: Max,
}

/// The series of the `window` seconds before `end` (exclusive), in buckets aligned to multiples
/// of the bucket size.
pub(crate) fn history(
    core: &Core,
    scope: &Scope,
    window: u32,
    end: u64,
    resource: Option<&str>,
) -> HistoryResponse {
    let window_s = window.max(1) as u64;
    let bucket = window_s.div_ceil(MAX_BUCKETS).max(1);
    let n = window_s.div_ceil(bucket);
    let last = end.saturating_sub(1) / bucket * bucket;
    let first = last.saturating_sub((n - 1) * bucket);
    let buffer = scope.buffer(core);
    let only = EventFilter {
        resource: resource.map(str::to_owned),
        ..EventFilter::default()
    };
    let only = scope.filter(core, &only);
    let series = if only.instance.is_some() {
        // One instance of a cluster view: its counts come from its events.
        buffer.seconds_filtered(first, end.saturating_sub(1), &only)
    } else {
        buffer.seconds(first, end.saturating_sub(1), resource)
    };
    let mut out = HistoryResponse {
        window_seconds: window,
        bucket_seconds: bucket,
        start: first,
        end,
        t: Vec::with_capacity(n as usize),
        borrows: SumMax::default(),
        overage_borrows: SumMax::default(),
        returns: SumMax::default(),
        failures: SumMax::default(),
        peak_borrowed: Max::default(),
    };
    let mut points = series.points.iter().peekable();
    let mut level = series.level_before;
    let mut b = first;
    while b <= last {
        out.t.push(b);
        for s in [
            &mut out.borrows,
            &mut out.overage_borrows,
            &mut out.returns,
            &mut out.failures,
        ] {
            s.push();
        }
        let mut peak = 0u32;
        let to = (b + bucket).min(end);
        let mut sec = b;
        while sec < to {
            // Skip points before the range (none, unless the buffer clamped a late second).
            while points.peek().is_some_and(|p| p.t < sec) {
                points.next();
            }
            match points.peek() {
                Some(p) if p.t == sec => {
                    out.borrows.add(p.borrows);
                    out.overage_borrows.add(p.overage_borrows);
                    out.returns.add(p.returns);
                    out.failures.add(p.failures);
                    peak = peak.max(p.peak_borrowed);
                    level = p.end_borrowed;
                    points.next();
                    sec += 1;
                }
                next => {
                    // Idle seconds up to the next active one carry the level.
                    peak = peak.max(level);
                    sec = next.map_or(to, |p| p.t.min(to));
                }
            }
        }
        out.peak_borrowed.max.push(peak);
        b += bucket;
    }
    out
}

pub(crate) async fn history_route(
    State(routes): State<RouteState>,
    Params(q): Params,
) -> Result<Json<HistoryResponse>, ApiError> {
    let core = &*routes.core;
    let window = params::window(&q, core, DEFAULT_WINDOW)?;
    let scope = params::scope(&q, core)?;
    let filter = params::filter(&q, core, &scope)?;
    let end = core.buffer.clock().now_ms() / 1000;
    Ok(Json(history(
        core,
        &scope,
        window,
        end,
        filter.resource.as_deref(),
    )))
}
