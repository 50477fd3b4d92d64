//! `GET /realtime/history?window=SECONDS&resource=NAME`: downsampled, zero-filled chart series
//! from the per-second aggregates (at most [`MAX_BUCKETS`] buckets, whatever the event count).
//!
//! Windows longer than the live buffer (with the usage tier) take whole minutes or hours from the
//! tier up to its newest closed minute (the seam) and seconds from the live buffer after it, in
//! buckets of whole minutes or hours: no period is counted twice or missed (`history_tiers.rs`).

use crate::buffer::EventFilter;
use crate::core::Core;
use crate::views::Scope;
use serde::Serialize;

/// Most buckets per series.
pub(crate) const MAX_BUCKETS: u64 = 360;

/// Window used when none is given (the page's default range).
pub(super) const DEFAULT_WINDOW: u32 = 1800;

#[derive(Debug, Default, Serialize)]
pub(crate) struct SumMax {
    pub(super) sum: Vec<u64>,
    pub(super) max: Vec<u32>,
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

    /// Adds `v` (one period's count) to bucket `i`.
    #[cfg(feature = "usage")]
    pub(super) fn add_at(&mut self, i: usize, v: u64) {
        if let (Some(s), Some(m)) = (self.sum.get_mut(i), self.max.get_mut(i)) {
            *s += v;
            *m = (*m).max(v.min(u32::MAX as u64) as u32);
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Max {
    pub(super) max: Vec<u32>,
}

/// The history answer (see `docs/PROTOCOL.md`).
#[derive(Debug, Serialize)]
pub(crate) struct HistoryResponse {
    window_seconds: u64,
    pub(super) bucket_seconds: u64,
    /// Start of the first bucket (Unix s).
    pub(super) start: u64,
    /// End of the data, exclusive (Unix s): the current, incomplete second is left to the stream.
    pub(super) end: u64,
    /// What `max` is the largest of: seconds (1) from the live buffer, minutes (60) or hours
    /// (3600) from the usage tier.
    pub(super) max_period_seconds: u64,
    /// Where the usage tier's periods end and the live buffer's seconds start (Unix s; only in
    /// answers that reach beyond the live buffer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) seam: Option<u64>,
    pub(super) t: Vec<u64>,
    pub(super) borrows: SumMax,
    pub(super) overage_borrows: SumMax,
    pub(super) returns: SumMax,
    pub(super) failures: SumMax,
    pub(super) peak_borrowed: Max,
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
    seconds_history(core, scope, window_s, bucket, end, resource, 0)
}

/// The buckets of `window_s` seconds before `end` of `bucket` seconds each, filled from the
/// live buffer's seconds from `seconds_from` on (earlier seconds are left to the caller).
pub(super) fn seconds_history(
    core: &Core,
    scope: &Scope,
    window_s: u64,
    bucket: u64,
    end: u64,
    resource: Option<&str>,
    seconds_from: u64,
) -> HistoryResponse {
    let n = window_s.div_ceil(bucket);
    let last = end.saturating_sub(1) / bucket * bucket;
    let first = last.saturating_sub((n - 1) * bucket);
    let buffer = scope.buffer(core);
    let only = EventFilter {
        resource: resource.map(str::to_owned),
        ..EventFilter::default()
    };
    let only = scope.filter(core, &only);
    let from = first.max(seconds_from);
    let series = if only.instance.is_some() {
        // One instance of a cluster view: its counts come from its events.
        buffer.seconds_filtered(from, end.saturating_sub(1), &only)
    } else {
        buffer.seconds(from, end.saturating_sub(1), resource)
    };
    let mut out = HistoryResponse {
        window_seconds: window_s,
        bucket_seconds: bucket,
        start: first,
        end,
        max_period_seconds: 1,
        seam: None,
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
        let mut sec = b.max(from);
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
