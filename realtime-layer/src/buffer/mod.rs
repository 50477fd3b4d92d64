//! The in-memory event store: compact events per kind plus per-second aggregates.
//!
//! Everything sits behind one short mutex. Recording is a few hash lookups and two ring pushes;
//! readers copy what they need and let go, and long scans (CSV export) page through with a
//! [`Cursor`] so they never hold the lock for long.
//!
//! The request path does not take that mutex: [`EventBuffer::capture`] queues the stamped event,
//! and whoever takes the lock next applies the queue first (see `capture.rs`).
//!
//! Files, bottom up: each uses only those above it, besides the [`EventBuffer`] struct of this
//! file, which the files from `capture.rs` down add methods to (one exception: the store keeps the
//! open borrows that `holds.rs` defines).
//! - `ring.rs`, `seconds.rs`, `interner.rs`, `static_names.rs`, `borrow_id.rs`: compact storage
//!   (packed events, per-second aggregates, interned names, borrow id codes).
//! - `config.rs`: [`BufferConfig`] and its validation.
//! - `answers.rs`: the answer types ([`Totals`], [`WindowSummary`], [`EventRecord`], ...).
//! - `filter.rs`: [`EventFilter`], its resolved form, and [`Cursor`].
//! - `store.rs`: the state behind the lock and its write side (recording, expiry, stats).
//! - `queries.rs`: the read side (summaries, recent events, cursors and pages, series).
//! - `capture.rs`: the capture queue, and the buffer's lock, which applies it.
//! - `cluster.rs`: cluster tagging (instances, events in their stored form).
//! - `holds.rs`, `denials.rs`, `levels.rs`: hold times, refusals, seconds at or above a level.
//! - `usage_feed.rs` (feature `usage`): events and levels as the usage tier reads them.

mod answers;
mod borrow_id;
mod capture;
mod cluster;
mod config;
mod denials;
mod filter;
mod holds;
// The ingest path (`timed.rs`, the duplicate index) is used by feature `sidecar` only.
#[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
mod id_index;
mod interner;
mod levels;
mod queries;
mod ring;
mod seconds;
mod static_names;
mod store;
#[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
mod timed;
#[cfg(feature = "usage")]
mod usage_feed;

pub use answers::{
    BufferStats, EventRecord, LifetimeTotals, MemoryBreakdown, ResourceActivity, SecondPoint,
    SecondSeries, Totals, WindowSummary,
};
pub(crate) use cluster::StoredEvent;
// The path it had before the split (nothing outside buffer/ uses it today).
#[allow(unused_imports)]
pub(crate) use cluster::MAX_INSTANCES;
pub use config::{BufferConfig, ConfigError};
pub use denials::Denials;
pub use filter::{Cursor, EventFilter};
pub use holds::{HoldSummary, HoldTimes, HOLD_BUCKETS_SECONDS};
pub use interner::OTHER_NAME;
#[cfg_attr(not(feature = "sidecar"), allow(unused_imports))]
pub(crate) use timed::{TimedEvent, TimedOutcome};

use crate::clock::Clock;
use crate::event::Event;
use capture::CaptureQueue;
use parking_lot::Mutex;
use std::sync::Arc;
use store::Inner;

/// Thread-safe store of borrow/return/failure events.
///
/// ```
/// use realtime_layer::{BufferConfig, Event, EventBuffer, ManualClock};
/// use std::sync::Arc;
///
/// let clock = ManualClock::new(1_700_000_000_000);
/// let buffer = EventBuffer::new(BufferConfig::default(), Arc::new(clock.clone())).unwrap();
/// buffer.record(&Event::borrow("seat-1", "ann"));
/// buffer.record(&Event::failure("seat-1", "bob", "exhausted"));
/// let stats = buffer.stats();
/// assert_eq!((stats.borrow_count, stats.failure_count), (1, 1));
/// let summary = buffer.summarize(60, &Default::default());
/// assert_eq!(summary.resources[0].borrowed, 1);
/// ```
pub struct EventBuffer {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
    /// Events captured on the request path, waiting for the next holder of `inner` (see
    /// [`capture`](Self::capture)).
    queue: CaptureQueue,
}

impl std::fmt::Debug for EventBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBuffer").finish_non_exhaustive()
    }
}

impl EventBuffer {
    /// A buffer with `config` limits, stamping events with `clock`.
    pub fn new(config: BufferConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        Self::build(config, clock, None)
    }

    /// A buffer with `config` limits; `max_instances` makes a cluster view (see
    /// [`new_tagged`](Self::new_tagged)).
    fn build(
        config: BufferConfig,
        clock: Arc<dyn Clock>,
        max_instances: Option<usize>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let now = clock.now_ms();
        let (queue, applying) = CaptureQueue::new();
        Ok(EventBuffer {
            inner: Mutex::new(Inner::new(config, now, max_instances, applying)),
            clock,
            queue,
        })
    }

    /// The limits this buffer was built with.
    pub fn config(&self) -> BufferConfig {
        self.lock().config.clone()
    }

    /// The clock events are stamped with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Stores one event, stamped now. Never blocks for long: no I/O, no allocation unless a name
    /// is new or a ring grows.
    pub fn record(&self, event: &Event) {
        let now = self.clock.now_ms();
        self.lock().record(now, event);
    }

    /// Stores several events under one lock.
    pub fn record_all<'a>(&self, events: impl IntoIterator<Item = &'a Event>) {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        for event in events {
            inner.record(now, event);
        }
    }

    /// Size facts (drops expired events first).
    pub fn stats(&self) -> BufferStats {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let mut stats = inner.stats();
        // The capture queue is allocated whole up front.
        stats.memory.capture_queue = CaptureQueue::HEAP_BYTES;
        stats.memory_bytes = stats.memory.total();
        stats
    }

    /// Totals and per-resource activity over the last `window_secs` seconds (the current second
    /// included). With a user filter the totals come from the events themselves; otherwise from the
    /// per-second aggregates.
    pub fn summarize(&self, window_secs: u32, filter: &EventFilter) -> WindowSummary {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        inner.summarize(now, window_secs, filter)
    }

    /// The newest events of the last `window_secs` seconds, newest first, at most `limit`.
    pub fn recent_events(
        &self,
        window_secs: u32,
        limit: usize,
        filter: &EventFilter,
    ) -> Vec<EventRecord> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let from = now.saturating_sub(window_secs as u64 * 1000);
        inner.recent(from, limit, filter)
    }

    /// A cursor after every event recorded so far.
    pub fn cursor(&self) -> Cursor {
        let inner = self.lock();
        Cursor {
            seqs: std::array::from_fn(|k| inner.rings[k].end_seq()),
        }
    }

    /// A cursor before the first held event recorded at or after `from_ms`.
    pub fn cursor_at(&self, from_ms: u64) -> Cursor {
        let inner = self.lock();
        let t = inner.rel(from_ms);
        Cursor {
            seqs: std::array::from_fn(|k| inner.rings[k].seq_at(t)),
        }
    }

    /// Events recorded after `cursor`, oldest first, at most `limit` (the oldest are skipped when
    /// there are more; the count skipped is returned), and the cursor to continue from.
    pub fn events_after(
        &self,
        cursor: Cursor,
        limit: usize,
        filter: &EventFilter,
    ) -> (Vec<EventRecord>, u64, Cursor) {
        let inner = self.lock();
        inner.events_after(cursor, limit, filter)
    }

    /// One page of events after `cursor` in time order, at most `limit`, and the cursor after the
    /// page; an empty page means the end. For long exports (CSV): the lock is held per page only.
    pub fn page(
        &self,
        cursor: Cursor,
        limit: usize,
        filter: &EventFilter,
    ) -> (Vec<EventRecord>, Cursor) {
        let inner = self.lock();
        inner.page(cursor, limit, filter)
    }

    /// Active seconds in `from_sec..=to_sec` (Unix seconds), optionally for one resource.
    /// An unknown resource gives an empty series.
    pub fn seconds(&self, from_sec: u64, to_sec: u64, resource: Option<&str>) -> SecondSeries {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        inner.seconds_series(from_sec, to_sec, resource)
    }

    /// Like [`seconds`](Self::seconds), for the events that `filter` accepts, counted from the
    /// events themselves (aggregates are per resource only). Levels run from the held events:
    /// borrows minus returns since the oldest held one.
    pub(crate) fn seconds_filtered(
        &self,
        from_sec: u64,
        to_sec: u64,
        filter: &EventFilter,
    ) -> SecondSeries {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        inner.seconds_filtered(from_sec, to_sec, filter)
    }

    /// Sets borrowed levels from an authoritative source, e.g. the app's own counts (corrects the
    /// level derived from events after a restart or a missed event). Unknown names are interned.
    pub fn sync_levels<'a>(&self, levels: impl IntoIterator<Item = (&'a str, u32)>) {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let sec = (now / 1000) as u32;
        for (name, level) in levels {
            let res = inner.intern_resource(name);
            inner.seconds.set_level(sec, res, level);
        }
    }

    /// Names of all resources seen so far (interned), sorted.
    pub fn resource_names(&self) -> Vec<Arc<str>> {
        let inner = self.lock();
        let mut names: Vec<Arc<str>> = (1..inner.resources.len() as u16)
            .map(|i| inner.resources.name(i).clone())
            .collect();
        names.sort();
        names
    }

    /// Totals since the buffer was created (never expire): the source of exported counters.
    pub fn lifetime_totals(&self) -> LifetimeTotals {
        self.lock().lifetime_totals()
    }

    /// Borrowed level per resource now, sorted by name.
    pub fn levels(&self) -> Vec<(Arc<str>, u32)> {
        let inner = self.lock();
        let mut out: Vec<(Arc<str>, u32)> = (1..inner.resources.len() as u16)
            .map(|i| (inner.resources.name(i).clone(), inner.seconds.level(i)))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests;
