//! What the usage tier reads (feature `usage`): the events after a cursor in their stored form
//! (time, kind, interned resource and reason), the borrowed level of every resource at that
//! point, and the names interned since the reader's last batch, all under one lock, so the
//! levels match the events read.
//!
//! Separate because only the usage tier's feeder uses it: it reads indices instead of names (the
//! resource and reason interners never reuse an index), so a batch costs no string copies.

// One item per line, as in `queries.rs`.
use super::filter::Cursor;
use super::filter::Resolved;
use super::store::KINDS;
use super::EventBuffer;
use crate::event::EventKind;
use std::sync::Arc;

/// One stored event as the usage tier needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FedEvent {
    pub(crate) ts_ms: u64,
    pub(crate) kind: EventKind,
    /// Resource index (names: [`FeedBatch::new_resources`]).
    pub(crate) resource: u16,
    /// Overage borrow (borrows only).
    pub(crate) overage: bool,
    /// Reason index (failures only).
    pub(crate) reason: u16,
}

/// A batch of events after a cursor, with the levels right after its last event.
#[derive(Debug, Default)]
pub(crate) struct FeedBatch {
    pub(crate) events: Vec<FedEvent>,
    /// Events that left the buffer (caps) before they were read.
    pub(crate) lost: u64,
    pub(crate) cursor: Cursor,
    /// True when the batch reached the newest event (`levels` then describe the buffer now).
    pub(crate) complete: bool,
    /// Borrowed level per resource index, now (only when `complete`).
    pub(crate) levels: Vec<u32>,
    /// Names of the resource indices from the reader's `known_resources` on.
    pub(crate) new_resources: Vec<Arc<str>>,
    /// Names of the reason indices from the reader's `known_reasons` on.
    pub(crate) new_reasons: Vec<Arc<str>>,
    /// The buffer's clock when the batch was read.
    pub(crate) now_ms: u64,
}

impl EventBuffer {
    /// At most `limit` events after `cursor`, oldest first, and (when they reach the newest event)
    /// every resource's level; names interned since the reader knew `known_resources` resources
    /// and `known_reasons` reasons.
    pub(crate) fn feed_batch(
        &self,
        cursor: Cursor,
        limit: usize,
        known_resources: usize,
        known_reasons: usize,
    ) -> FeedBatch {
        let now_ms = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now_ms);
        let lost: u64 = (0..3)
            .map(|k| inner.rings[k].front_seq().saturating_sub(cursor.seqs[k]))
            .sum();
        let all = Resolved {
            resource: None,
            user: None,
            instance: None,
        };
        let mut events = Vec::new();
        let next = if limit == 0 {
            cursor
        } else {
            inner.walk(cursor, &all, |k, e, _| {
                events.push(FedEvent {
                    ts_ms: inner.abs(e.t),
                    kind: KINDS[k],
                    resource: e.resource(),
                    overage: KINDS[k] == EventKind::Borrow && e.overage(),
                    reason: if KINDS[k] == EventKind::Failure {
                        e.id as u16
                    } else {
                        0
                    },
                });
                events.len() < limit
            })
        };
        let complete = (0..3).all(|k| next.seqs[k] >= inner.rings[k].end_seq());
        let n = inner.resources.len();
        let levels = if complete {
            (0..n as u16).map(|i| inner.seconds.level(i)).collect()
        } else {
            Vec::new()
        };
        let new_resources = (known_resources.min(n)..n)
            .map(|i| inner.resources.name(i as u16).clone())
            .collect();
        let reasons = inner.reasons.len();
        let new_reasons = (known_reasons.min(reasons)..reasons)
            .map(|i| inner.reasons.name(i as u16).clone())
            .collect();
        FeedBatch {
            events,
            lost,
            cursor: next,
            complete,
            levels,
            new_resources,
            new_reasons,
            now_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::buffer::{BufferConfig, Cursor, EventBuffer};
    use crate::clock::ManualClock;
    use crate::event::{Event, EventKind};
    use std::sync::Arc;

    #[test]
    fn batches_carry_indices_levels_and_new_names() {
        let clock = ManualClock::new(1_800_000_000_000);
        let buf = EventBuffer::new(BufferConfig::default(), Arc::new(clock.clone())).unwrap();
        buf.record(&Event::borrow("a", "u").overage(true));
        clock.advance(std::time::Duration::from_millis(5));
        buf.record(&Event::failure("b", "u", "exhausted"));
        clock.advance(std::time::Duration::from_millis(5));
        buf.record(&Event::borrow("a", "v"));
        let first = buf.feed_batch(Cursor::default(), 2, 0, 0);
        assert_eq!(first.events.len(), 2);
        assert!(!first.complete && first.levels.is_empty());
        assert_eq!(first.events[0].kind, EventKind::Borrow);
        assert!(first.events[0].overage);
        let names: Vec<&str> = first.new_resources.iter().map(|n| &**n).collect();
        assert_eq!(names, ["(other)", "a", "b"]);
        assert_eq!(
            &*first.new_reasons[first.events[1].reason as usize],
            "exhausted"
        );
        let rest = buf.feed_batch(first.cursor, 10, 3, first.new_reasons.len());
        assert_eq!(rest.events.len(), 1);
        assert!(rest.complete && rest.new_resources.is_empty());
        assert_eq!(rest.levels[first.events[0].resource as usize], 2);
        assert_eq!(rest.now_ms, 1_800_000_000_010);
    }
}
