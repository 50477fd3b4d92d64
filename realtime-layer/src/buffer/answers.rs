//! What the buffer answers with: window totals and per-resource activity, size facts, event
//! records, per-second series and lifetime totals.
//!
//! Plain (mostly serializable) values with no access to the store, so they sit at the bottom of
//! the module: the store and the queries fill them in, and the API's users read them in one place.

use super::seconds::ResSecond;
use crate::event::EventKind;
use serde::Serialize;
use std::sync::Arc;

/// Counts over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Successful checkouts.
    pub borrows: u64,
    /// Checkouts above the committed quantity.
    pub overage_borrows: u64,
    /// Returns.
    pub returns: u64,
    /// Refused checkouts.
    pub failures: u64,
}

impl Totals {
    pub(super) fn add_event(&mut self, kind: EventKind, overage: bool) {
        match kind {
            EventKind::Borrow => {
                self.borrows += 1;
                self.overage_borrows += overage as u64;
            }
            EventKind::Return => self.returns += 1,
            EventKind::Failure => self.failures += 1,
        }
    }

    pub(super) fn add_second(&mut self, e: &ResSecond) {
        self.borrows += e.borrows as u64;
        self.overage_borrows += e.overage as u64;
        self.returns += e.returns as u64;
        self.failures += e.failures as u64;
    }
}

/// One resource's activity over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceActivity {
    /// Resource name.
    pub name: Arc<str>,
    /// Borrowed now (derived from events, or set by [`EventBuffer::sync_levels`](super::EventBuffer::sync_levels)).
    pub borrowed: u32,
    /// Highest borrowed level within the window.
    pub peak_borrowed: u32,
    /// Counts within the window.
    pub totals: Totals,
}

/// Totals and per-resource activity over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WindowSummary {
    /// All resources together (after filters).
    pub totals: Totals,
    /// Every known resource, sorted by name.
    pub resources: Vec<ResourceActivity>,
}

/// Size facts of the buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BufferStats {
    /// Events held, all kinds.
    pub total_events: u64,
    /// Borrows held.
    pub borrow_count: u64,
    /// Returns held.
    pub return_count: u64,
    /// Failures held.
    pub failure_count: u64,
    /// Timestamp of the oldest event held, any kind.
    pub oldest_event_ms: Option<u64>,
    /// Events whose user or resource name was folded into `(other)`.
    pub folded_names: u64,
    /// Events whose user name was folded.
    pub folded_users: u64,
    /// Events whose resource name was folded.
    pub folded_resources: u64,
    /// Retention window in milliseconds.
    pub retention_ms: u64,
    /// Heap bytes held by the buffer, all-in (the sum of `memory`).
    pub memory_bytes: u64,
    /// Where `memory_bytes` goes.
    pub memory: MemoryBreakdown,
    /// Seconds of per-second aggregates dropped before their retention ended because of
    /// [`BufferConfig::max_second_entries`](super::BufferConfig::max_second_entries): when non-zero, rates and history over the longest
    /// windows miss their oldest part.
    pub aggregates_dropped_seconds: u64,
}

/// The buffer's heap bytes by part (what deployments are sized by: see `docs/OPERATIONS.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemoryBreakdown {
    /// The three event rings (16 bytes an event, plus instance tags in a cluster view).
    pub rings: u64,
    /// Per-second, per-resource aggregates (rates, peaks, history).
    pub aggregates: u64,
    /// Interned user, resource and reason names and their caches.
    pub names: u64,
    /// Hold tracking: open borrows by id and one duration per return after the first measured
    /// hold.
    pub holds: u64,
    /// The capture queue and its swap partner (allocated whole up front).
    pub capture_queue: u64,
    /// Lifetime counters per resource and per (resource, reason).
    pub counters: u64,
}

impl MemoryBreakdown {
    /// The sum of the parts.
    pub fn total(&self) -> u64 {
        self.rings + self.aggregates + self.names + self.holds + self.capture_queue + self.counters
    }
}

/// A stored event as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    /// When it was recorded (Unix ms).
    pub ts_ms: u64,
    /// Borrow, return or failure.
    pub kind: EventKind,
    /// Resource name.
    pub resource: Arc<str>,
    /// User name.
    pub user: Arc<str>,
    /// Borrow id fingerprint (see the crate docs on borrow ids).
    pub borrow_id: Option<String>,
    /// Overage borrow.
    pub overage: bool,
    /// Failure reason, or `expired` for a return the pool made when a lease ran out.
    pub reason: Option<Arc<str>>,
    /// The instance that recorded it (cluster views only; absent in a local buffer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<Arc<str>>,
}

/// One second of aggregates (summed over resources, or for one resource).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SecondPoint {
    /// Unix second.
    pub t: u64,
    /// Borrows in the second.
    pub borrows: u32,
    /// Overage borrows in the second.
    pub overage_borrows: u32,
    /// Returns in the second.
    pub returns: u32,
    /// Failures in the second.
    pub failures: u32,
    /// Highest borrowed level in the second.
    pub peak_borrowed: u32,
    /// Borrowed level at the end of the second.
    #[serde(skip)]
    pub end_borrowed: u32,
}

/// Active seconds of a range (idle seconds are absent) and the level before the range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecondSeries {
    /// Borrowed level at the start of the range (carry it through idle seconds).
    pub level_before: u32,
    /// Active seconds, oldest first.
    pub points: Vec<SecondPoint>,
}

/// Lifetime totals since the buffer was created: what monotonic counters export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifetimeTotals {
    /// Per resource: (name, borrows, overage borrows, returns).
    pub resources: Vec<(Arc<str>, u64, u64, u64)>,
    /// Per (resource, reason): failures.
    pub failures: Vec<(Arc<str>, Arc<str>, u64)>,
}
