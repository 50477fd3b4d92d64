//! Events stamped by their sender (the ingest path of `realtime-sidecar`): stored at the
//! sender's time, counted once per borrow id, and late ones counted in their own second.
//!
//! **Where a late event goes.** Rings stay in time order (readers resume from sequence numbers:
//! the stream, the cluster feed and CSV pages would skip or repeat events if one were inserted
//! behind them), so an event older than the newest one stored takes its place in the ring at
//! that newest time, as a cluster view does with other instances' events. Everything that is
//! *about time* uses the sender's time instead:
//! - the per-second aggregates count it in its own second ([`SecondAggregates::count_late`]):
//!   rates, peaks' seconds, history and time at capacity see it where it happened;
//! - a hold runs from the borrow's stored time to the return's own time (exact when the borrow
//!   was not late).
//!
//! The borrowed *level* moves when the event becomes known (levels of past seconds are not
//! rewritten), and an event record (stream, CSV, recent events) shows its place in the ring.
//!
//! **Duplicates.** An ingest buffer ([`EventBuffer::new_ingest`]) indexes the borrow ids of its
//! borrow and return rings (`id_index.rs`): a borrow or return whose id the same ring already
//! holds is a retry of an at-least-once sender and is counted once.
//!
//! Separate from `store.rs` so the request path's [`Inner::record`](super::store::Inner) stays
//! exactly as it was.
//!
//! [`SecondAggregates::count_late`]: super::seconds::SecondAggregates::count_late

use super::borrow_id;
use super::config::{BufferConfig, ConfigError};
use super::ring::PackedEvent;
use super::seconds::LateKind;
use super::store::Inner;
use super::EventBuffer;
use crate::clock::Clock;
use crate::event::{Event, EventKind, EXPIRED_REASON};
use std::sync::Arc;

/// An event and its sender's time (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimedEvent {
    pub(crate) ts_ms: u64,
    pub(crate) event: Event,
}

/// What [`EventBuffer::record_timed`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimedOutcome {
    /// Stored (counted).
    pub(crate) stored: u64,
    /// Borrows and returns whose id was already held: not counted again.
    pub(crate) duplicates: u64,
    /// Stored, older than the newest event stored then: counted in their own second.
    pub(crate) late: u64,
    /// Older than the retention by the time they were applied: dropped.
    pub(crate) expired: u64,
}

impl EventBuffer {
    /// A buffer for events stamped by their senders: [`record_timed`](Self::record_timed)
    /// counts a borrow or return whose id it already holds once.
    pub(crate) fn new_ingest(
        config: BufferConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let buffer = Self::new(config, clock)?;
        {
            let mut inner = buffer.inner.lock();
            inner.base_a_retention_back();
            for ring in &mut inner.rings[..2] {
                ring.index_ids();
            }
        }
        Ok(buffer)
    }

    /// Stores `events` at their senders' times, under one lock (the capture queue is applied
    /// first). Times after now are taken as now; the caller rejects those too far ahead.
    pub(crate) fn record_timed<'a>(
        &self,
        events: impl IntoIterator<Item = &'a TimedEvent>,
    ) -> TimedOutcome {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let mut outcome = TimedOutcome::default();
        for e in events {
            inner.record_timed(now, e.ts_ms.min(now), &e.event, &mut outcome);
        }
        outcome
    }
}

impl Inner {
    fn record_timed(&mut self, now: u64, ts: u64, event: &Event, outcome: &mut TimedOutcome) {
        if ts < now.saturating_sub(self.retention_ms) {
            outcome.expired += 1;
            return;
        }
        let (id_kind, code) = match event.kind() {
            EventKind::Borrow | EventKind::Return => {
                let (kind, code) = event
                    .borrow_id_str()
                    .map_or((borrow_id::NONE, 0), borrow_id::encode);
                let k = (event.kind() == EventKind::Return) as usize;
                if kind != borrow_id::NONE && self.rings[k].contains_id(kind, code) {
                    outcome.duplicates += 1;
                    return;
                }
                (kind, code)
            }
            EventKind::Failure => (borrow_id::NONE, 0),
        };
        // Its place in the rings: the sender's time, or the newest stored time if later.
        let now_t = self.rel(now).max(self.last_t);
        let t = self.rel(ts).max(self.last_insert_t).min(now_t);
        self.last_insert_t = t;
        let sec = (ts / 1000) as u32;
        let late = self.seconds.newest_sec().is_some_and(|newest| sec < newest);
        let res = self.intern_resource(event.resource());
        let user = self.users.intern(event.user());
        if self.lifetime.len() <= res as usize {
            self.lifetime.resize(res as usize + 1, [0; 3]);
        }
        let counted_late =
            |inner: &mut Inner, kind: LateKind| late && inner.seconds.count_late(sec, res, kind);
        match event.kind() {
            EventKind::Borrow => {
                let overage = event.is_overage();
                self.push_event(0, PackedEvent::new(t, res, user, overage, id_kind, code), 0);
                if id_kind != borrow_id::NONE {
                    let seq = self.rings[0].end_seq() - 1;
                    self.holds.on_borrow((res, id_kind, code), seq);
                }
                if !counted_late(self, LateKind::Borrow { overage }) {
                    self.seconds.on_borrow(sec, res, overage);
                }
                self.lifetime[res as usize][0] += 1;
                self.lifetime[res as usize][1] += overage as u64;
            }
            EventKind::Return => {
                let expired = event.reason() == Some(EXPIRED_REASON);
                self.push_event(1, PackedEvent::new(t, res, user, expired, id_kind, code), 0);
                // The hold runs from the borrow's stored time to the return's own time.
                let key = (id_kind != borrow_id::NONE).then_some((res, id_kind, code));
                let seq = self.rings[1].end_seq() - 1;
                let returned = self.rel(ts);
                self.holds.on_return(key, seq, returned, &self.rings[0]);
                if !counted_late(self, LateKind::Return) {
                    self.seconds.on_return(sec, res);
                }
                self.lifetime[res as usize][2] += 1;
            }
            EventKind::Failure => {
                let why = self.reasons.intern(event.reason().unwrap_or("unknown"));
                self.push_event(2, PackedEvent::new(t, res, user, false, 0, why as u64), 0);
                if !counted_late(self, LateKind::Failure) {
                    self.seconds.on_failure(sec, res);
                }
                *self.lifetime_failures.entry((res, why)).or_insert(0) += 1;
            }
        }
        outcome.stored += 1;
        outcome.late += late as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::EventFilter;
    use crate::clock::ManualClock;

    const T0: u64 = 1_800_000_000_000;

    fn buffer() -> (EventBuffer, ManualClock) {
        let clock = ManualClock::new(T0);
        let b = EventBuffer::new_ingest(BufferConfig::default(), Arc::new(clock.clone())).unwrap();
        (b, clock)
    }

    fn at(ts_ms: u64, event: Event) -> TimedEvent {
        TimedEvent { ts_ms, event }
    }

    #[test]
    fn a_replayed_batch_counts_once() {
        let (b, clock) = buffer();
        clock.set(T0 + 10_000);
        let batch = vec![
            at(T0 + 1_000, Event::borrow("gpu", "ann").borrow_id("7")),
            at(T0 + 4_000, Event::returned("gpu", "ann").borrow_id("7")),
            at(T0 + 5_000, Event::failure("gpu", "bob", "exhausted")),
        ];
        let first = b.record_timed(&batch);
        assert_eq!((first.stored, first.duplicates), (3, 0));
        let again = b.record_timed(&batch);
        // Failures carry no id: a replayed failure cannot be told from a new one.
        assert_eq!((again.stored, again.duplicates), (1, 2));
        let stats = b.stats();
        assert_eq!((stats.borrow_count, stats.return_count), (1, 1));
        // The hold is measured between the sender's times (neither event is late here).
        let holds = b.hold_times(60, &EventFilter::default());
        assert_eq!(holds.resources[0].count, 1);
        assert_eq!(holds.resources[0].max_seconds, Some(3.0));
    }

    #[test]
    fn late_events_land_in_their_own_second() {
        let (b, clock) = buffer();
        clock.set(T0 + 60_000);
        b.record_timed(&[at(T0 + 50_000, Event::borrow("gpu", "ann"))]);
        // Late: 40 s before the newest stored event.
        let out = b.record_timed(&[
            at(T0 + 10_500, Event::borrow("gpu", "bob").overage(true)),
            at(T0 + 10_700, Event::failure("gpu", "cy", "exhausted")),
            at(T0 + 20_000, Event::borrow("cpu", "dee")),
        ]);
        assert_eq!((out.stored, out.late), (3, 3));
        let series = b.seconds(T0 / 1000, (T0 + 60_000) / 1000, None);
        let by_sec: Vec<(u64, u32, u32)> = series
            .points
            .iter()
            .map(|p| (p.t - T0 / 1000, p.borrows, p.failures))
            .collect();
        assert_eq!(by_sec, vec![(10, 1, 1), (20, 1, 0), (50, 1, 0)]);
        // Levels move now: both borrows are out.
        let levels = b.levels();
        assert_eq!(levels, vec![(Arc::from("cpu"), 1), (Arc::from("gpu"), 2)]);
        // The ring stays in time order: the late events sit at the newest stored time.
        let recent = b.recent_events(3600, 10, &EventFilter::default());
        assert!(recent.iter().all(|e| e.ts_ms >= T0 + 50_000));
        // A 60 s window still sees all four.
        let summary = b.summarize(60, &EventFilter::default());
        assert_eq!((summary.totals.borrows, summary.totals.failures), (3, 1));
    }

    #[test]
    fn events_older_than_the_buffer_keep_their_times() {
        let (b, _) = buffer();
        let out = b.record_timed(&[
            at(T0 - 10_000, Event::borrow("gpu", "ann").borrow_id("1")),
            at(T0 - 7_000, Event::returned("gpu", "ann").borrow_id("1")),
        ]);
        assert_eq!(out.stored, 2);
        let recent = b.recent_events(60, 10, &EventFilter::default());
        assert_eq!(recent[1].ts_ms, T0 - 10_000);
        let holds = b.hold_times(60, &EventFilter::default());
        assert_eq!(holds.resources[0].max_seconds, Some(3.0));
    }

    #[test]
    fn too_old_and_future_times() {
        let (b, clock) = buffer();
        clock.set(T0 + 7 * 3600 * 1000);
        let out = b.record_timed(&[
            at(T0, Event::borrow("gpu", "ann")),
            at(T0 + 8 * 3600 * 1000, Event::borrow("gpu", "bob")),
        ]);
        assert_eq!((out.stored, out.expired), (1, 1));
        let recent = b.recent_events(60, 10, &EventFilter::default());
        assert_eq!(
            recent[0].ts_ms,
            T0 + 7 * 3600 * 1000,
            "a future time is taken as now"
        );
    }
}
