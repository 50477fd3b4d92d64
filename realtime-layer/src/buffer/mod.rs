//! The in-memory event store: compact events per kind plus per-second aggregates.
//!
//! Everything sits behind one short mutex. Recording is a few hash lookups and two ring pushes;
//! readers copy what they need and let go, and long scans (CSV export) page through with a
//! [`Cursor`] so they never hold the lock for long.
//!
//! The request path does not take that mutex: [`EventBuffer::capture`] stamps the event and
//! appends it to a bounded capture queue (a vector behind its own mutex, held for a push or a
//! swap, never while events are applied); whoever takes the buffer's lock next (the stream's
//! frame builder, a stats request, the cluster feed, the exporter) applies the queued events
//! first, in order, so every read sees every event captured before it. A full queue is applied
//! by the capturing thread itself: nothing is dropped and memory stays bounded.

mod answers;
mod borrow_id;
mod config;
mod denials;
mod filter;
mod holds;
mod interner;
mod levels;
mod queries;
mod ring;
mod seconds;
mod static_names;
mod store;

pub use answers::{
    BufferStats, EventRecord, LifetimeTotals, ResourceActivity, SecondPoint, SecondSeries, Totals,
    WindowSummary,
};
pub use config::{BufferConfig, ConfigError};
pub use denials::Denials;
pub use filter::{Cursor, EventFilter};
pub use holds::{HoldSummary, HoldTimes, HOLD_BUCKETS_SECONDS};
pub use interner::OTHER_NAME;

use crate::clock::Clock;
use crate::event::{Event, EventKind};
use filter::Resolved;
use parking_lot::{Mutex, MutexGuard};
use ring::PackedEvent;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use store::{Inner, KINDS};

/// An event in its stored form with names resolved: what cluster mode ships between instances.
/// Borrow ids stay 64-bit codes, so a return still matches its borrow on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    pub(crate) ts_ms: u64,
    pub(crate) kind: EventKind,
    pub(crate) resource: Arc<str>,
    pub(crate) user: Arc<str>,
    /// Overage (borrows), or expired (returns: the flag bit a return stores).
    pub(crate) overage: bool,
    /// Borrow id kind (0: none) and code, for borrows and returns.
    pub(crate) id_kind: u8,
    pub(crate) id: u64,
    /// Failure reason (failures only).
    pub(crate) reason: Option<Arc<str>>,
}

/// Most instances a cluster buffer tells apart (more fold into `(other)`).
pub(crate) const MAX_INSTANCES: usize = 64;

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
    /// Events captured on the request path (stamped), waiting for the next holder of `inner`.
    /// Its lock is held for one push or one swap with `Inner::applying`, nothing longer.
    captured: Mutex<Vec<(u64, Event)>>,
    /// True while `captured` holds events (changed only under its lock): lets a reader skip
    /// that lock when nothing was captured. A capture that happens-before a read (same thread,
    /// or handed over through any synchronisation) is always seen: set with `Release`, read with
    /// `Acquire`.
    has_captured: AtomicBool,
}

/// Events the capture queue holds before a capturing thread applies it itself. The queue and
/// its swap partner are allocated once (2 x 512 x 112 B, ~115 KB).
const CAPTURE_QUEUE: usize = 512;

impl std::fmt::Debug for EventBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBuffer").finish_non_exhaustive()
    }
}

impl EventBuffer {
    /// A buffer with `config` limits, stamping events with `clock`.
    pub fn new(config: BufferConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        Self::build(config, clock, false)
    }

    /// A buffer whose events also remember which instance recorded them (a cluster view).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn new_tagged(
        config: BufferConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        Self::build(config, clock, true)
    }

    fn build(
        config: BufferConfig,
        clock: Arc<dyn Clock>,
        tagged: bool,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let now = clock.now_ms();
        let inner = Inner::new(
            config,
            now,
            tagged.then_some(MAX_INSTANCES),
            Vec::with_capacity(CAPTURE_QUEUE),
        );
        Ok(EventBuffer {
            inner: Mutex::new(inner),
            clock,
            captured: Mutex::new(Vec::with_capacity(CAPTURE_QUEUE)),
            has_captured: AtomicBool::new(false),
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

    /// The buffer, locked, with every captured event applied (in capture order).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock();
        if !self.has_captured.load(Ordering::Acquire) {
            return inner;
        }
        let mut batch = std::mem::take(&mut inner.applying);
        {
            let mut captured = self.captured.lock();
            std::mem::swap(&mut batch, &mut *captured);
            self.has_captured.store(false, Ordering::Relaxed);
        }
        for (now, event) in batch.drain(..) {
            inner.record(now, &event);
        }
        // Both vectors keep their capacity: no allocation in the steady state.
        inner.applying = batch;
        inner
    }

    /// Stores one event, stamped now. Never blocks for long: no I/O, no allocation unless a name
    /// is new or a ring grows.
    pub fn record(&self, event: &Event) {
        let now = self.clock.now_ms();
        self.lock().record(now, event);
    }

    /// Stamps `event` now and queues it without taking the buffer's lock (the request path:
    /// [`Realtime::record`](crate::Realtime::record)). The next reader applies it before
    /// reading, so it is as visible as after [`record`](Self::record); the event's owned names
    /// are dropped there, off the request path. When the queue is full the caller applies the
    /// queue itself.
    ///
    /// ```
    /// use realtime_layer::{BufferConfig, Event, EventBuffer, SystemClock};
    /// use std::sync::Arc;
    ///
    /// let buffer = EventBuffer::new(BufferConfig::default(), Arc::new(SystemClock::new())).unwrap();
    /// buffer.capture(Event::borrow("seat-1", "ann"));
    /// assert_eq!(buffer.stats().borrow_count, 1);
    /// ```
    pub fn capture(&self, event: Event) {
        let now = self.clock.now_ms();
        let mut captured = self.captured.lock();
        if captured.len() < CAPTURE_QUEUE {
            captured.push((now, event));
            self.has_captured.store(true, Ordering::Release);
            return;
        }
        drop(captured);
        // Full: apply the queue, then this event after it.
        self.lock().record(now, &event);
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
        stats.memory_bytes += (2 * CAPTURE_QUEUE * std::mem::size_of::<(u64, Event)>()) as u64;
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

    /// Events after `cursor` in their stored form, oldest first, at most `limit`; the count of
    /// events that left the buffer before they could be read; the cursor to go on from.
    pub(crate) fn stored_after(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> (Vec<StoredEvent>, u64, Cursor) {
        let inner = self.lock();
        let lost: u64 = (0..3)
            .map(|k| inner.rings[k].front_seq().saturating_sub(cursor.seqs[k]))
            .sum();
        let mut out = Vec::new();
        let resolved = Resolved {
            resource: None,
            user: None,
            instance: None,
        };
        let end = if limit == 0 {
            cursor
        } else {
            inner.walk(cursor, &resolved, |k, e, _| {
                out.push(inner.to_stored(k, e));
                out.len() < limit
            })
        };
        (out, lost, end)
    }

    /// Stores events recorded by `instance` at their own times (a cluster view's merge). An event
    /// older than the newest one stored is stamped at that newest time instead, so the rings
    /// stay ordered; one older than the retention is dropped. Returns how many were stored.
    pub(crate) fn record_stored<'a>(
        &self,
        instance: &str,
        events: impl IntoIterator<Item = &'a StoredEvent>,
    ) -> usize {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let tag = inner.intern_instance(instance);
        let mut stored = 0;
        for e in events {
            stored += inner.record_stored(now, e, tag) as usize;
        }
        stored
    }

    /// Names of the instances whose events this buffer holds or held (cluster views), sorted.
    pub(crate) fn instance_names(&self) -> Vec<Arc<str>> {
        let inner = self.lock();
        let Some(instances) = &inner.instances else {
            return Vec::new();
        };
        let mut names: Vec<Arc<str>> = (1..instances.len() as u16)
            .map(|i| instances.name(i).clone())
            .collect();
        names.sort();
        names
    }

    /// Events whose instance name was folded into `(other)` (more than 64 instances).
    pub(crate) fn folded_instances(&self) -> u64 {
        self.lock().folded_instances
    }

    /// Borrowed level per resource implied by the held events of `instance` (borrows minus
    /// returns, at least 0): the best a cluster view knows of an instance without a status source.
    pub(crate) fn instance_levels(&self, instance: &str) -> Vec<(Arc<str>, u32)> {
        let inner = self.lock();
        let Some(tag) = inner.instances.as_ref().and_then(|i| i.lookup(instance)) else {
            return Vec::new();
        };
        let mut levels = vec![0i64; inner.resources.len()];
        for (k, delta) in [(0usize, 1i64), (1, -1)] {
            let ring = &inner.rings[k];
            for seq in ring.front_seq()..ring.end_seq() {
                if ring.tag(seq) == tag as u8 {
                    if let Some(e) = ring.get(seq) {
                        levels[e.resource() as usize] += delta;
                    }
                }
            }
        }
        let mut out: Vec<(Arc<str>, u32)> = levels
            .iter()
            .enumerate()
            .filter(|(_, l)| **l > 0)
            .map(|(r, l)| (inner.resources.name(r as u16).clone(), *l as u32))
            .collect();
        out.sort();
        out
    }
}

impl Inner {
    fn intern_instance(&mut self, name: &str) -> u8 {
        let Some(instances) = &mut self.instances else {
            return 0;
        };
        let before = instances.folded;
        let tag = instances.intern(name);
        self.folded_instances += instances.folded - before;
        tag as u8
    }

    /// Stores one event of another instance (or of this one, in a cluster view) at its own time,
    /// clamped into `[newest stored, now]`. False when it is already past retention.
    fn record_stored(&mut self, now: u64, e: &StoredEvent, tag: u8) -> bool {
        if e.ts_ms < now.saturating_sub(self.retention_ms) {
            return false;
        }
        let now_t = self.rel(now).max(self.last_t);
        let t = self.rel(e.ts_ms).max(self.last_insert_t).min(now_t);
        self.last_insert_t = t;
        let sec = (self.abs(t) / 1000) as u32;
        let res = self.intern_resource(&e.resource);
        let user = self.users.intern(&e.user);
        match e.kind {
            EventKind::Borrow => {
                let packed = PackedEvent::new(t, res, user, e.overage, e.id_kind, e.id);
                self.push_event(0, packed, tag);
                self.seconds.on_borrow(sec, res, e.overage);
                if e.id_kind != borrow_id::NONE {
                    self.holds.on_borrow(self.abs(t), res, e.id_kind, e.id);
                }
            }
            EventKind::Return => {
                // For a return the flag is "expired" (see `Inner::record`).
                let packed = PackedEvent::new(t, res, user, e.overage, e.id_kind, e.id);
                self.push_event(1, packed, tag);
                self.seconds.on_return(sec, res);
                if e.id_kind != borrow_id::NONE {
                    // In a cluster view a borrow and its return may come from two instances.
                    self.holds.on_return(self.abs(t), res, e.id_kind, e.id);
                }
            }
            EventKind::Failure => {
                let why = self
                    .reasons
                    .intern(e.reason.as_deref().unwrap_or("unknown"));
                let packed = PackedEvent::new(t, res, user, false, 0, why as u64);
                self.push_event(2, packed, tag);
                self.seconds.on_failure(sec, res);
            }
        }
        true
    }

    fn to_stored(&self, kind: usize, e: &PackedEvent) -> StoredEvent {
        let is_failure = KINDS[kind] == EventKind::Failure;
        StoredEvent {
            ts_ms: self.abs(e.t),
            kind: KINDS[kind],
            resource: self.resources.name(e.resource()).clone(),
            user: self.users.name(e.user).clone(),
            overage: e.overage(),
            id_kind: if is_failure { 0 } else { e.id_kind() },
            id: if is_failure { 0 } else { e.id },
            reason: is_failure.then(|| self.reasons.name(e.id as u16).clone()),
        }
    }
}

#[cfg(test)]
mod tests;
