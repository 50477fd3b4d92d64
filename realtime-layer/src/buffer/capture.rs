//! The capture queue: how the request path records an event without taking the buffer's lock.
//!
//! [`EventBuffer::capture`] stamps the event and appends it to a bounded capture queue (a vector
//! behind its own mutex, held for a push or a swap, never while events are applied); whoever takes
//! the buffer's lock next ([`EventBuffer::lock`]: the stream's frame builder, a stats request, the
//! cluster feed, the exporter) applies the queued events first, in order, so every read sees every
//! event captured before it. A full queue is applied by the capturing thread itself: nothing is
//! dropped and memory stays bounded.
//!
//! Separate from the store because this is the only part of the buffer the request path runs
//! through, and its ordering argument (who applies the queue, and the `has_captured` flag's
//! `Release`/`Acquire` pair) is easiest to check in one place.

use super::store::Inner;
use super::EventBuffer;
use crate::event::Event;
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, Ordering};

/// Events the capture queue holds before a capturing thread applies it itself. The queue and
/// its swap partner are allocated once (2 x 512 x 112 B, ~115 KB).
pub(super) const CAPTURE_QUEUE: usize = 512;

/// The queue of captured events (a field of [`EventBuffer`]); only this file touches it.
pub(super) struct CaptureQueue {
    /// Events captured on the request path (stamped), waiting for the next holder of the
    /// buffer's lock. Its lock is held for one push or one swap with `Inner::applying`, nothing
    /// longer.
    captured: Mutex<Vec<(u64, Event)>>,
    /// True while `captured` holds events (changed only under its lock): lets a reader skip
    /// that lock when nothing was captured. A capture that happens-before a read (same thread,
    /// or handed over through any synchronisation) is always seen: set with `Release`, read with
    /// `Acquire`.
    has_captured: AtomicBool,
}

impl CaptureQueue {
    /// An empty queue, and its swap partner for [`Inner::applying`]: both allocated whole, once.
    pub(super) fn new() -> (Self, Vec<(u64, Event)>) {
        let queue = CaptureQueue {
            captured: Mutex::new(Vec::with_capacity(CAPTURE_QUEUE)),
            has_captured: AtomicBool::new(false),
        };
        (queue, Vec::with_capacity(CAPTURE_QUEUE))
    }

    /// Heap bytes of the queue and its swap partner (allocated whole up front).
    pub(super) const HEAP_BYTES: u64 =
        (2 * CAPTURE_QUEUE * std::mem::size_of::<(u64, Event)>()) as u64;
}

impl EventBuffer {
    /// The buffer, locked, with every captured event applied (in capture order).
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock();
        if !self.queue.has_captured.load(Ordering::Acquire) {
            return inner;
        }
        let mut batch = std::mem::take(&mut inner.applying);
        {
            let mut captured = self.queue.captured.lock();
            std::mem::swap(&mut batch, &mut *captured);
            self.queue.has_captured.store(false, Ordering::Relaxed);
        }
        // Recorded in place, then dropped together: moving each 112-byte entry out first was a
        // tenth of the apply loop.
        inner.record_batch(&mut batch);
        // Both vectors keep their capacity: no allocation in the steady state.
        inner.applying = batch;
        inner
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
    #[inline]
    pub fn capture(&self, event: Event) {
        self.capture_inlined(event);
    }

    /// [`capture`](Self::capture), always inlined: the request path's callers (the layer's
    /// response future, [`Realtime::record`](crate::Realtime::record)).
    #[inline(always)]
    pub(crate) fn capture_inlined(&self, event: Event) {
        let now = self.clock.now_ms();
        let mut captured = self.queue.captured.lock();
        if captured.len() < CAPTURE_QUEUE {
            // Inlined into the caller, the event goes from the caller's hands into the queue
            // in one copy (out of line it was copied to the stack twice on the way).
            captured.push((now, event));
            self.queue.has_captured.store(true, Ordering::Release);
            return;
        }
        drop(captured);
        self.capture_full(now, event);
    }

    /// [`capture`](Self::capture) with a full queue: applies the queue, then this event after
    /// it (out of line: once every [`CAPTURE_QUEUE`] events at most).
    #[inline(never)]
    #[cold]
    fn capture_full(&self, now: u64, event: Event) {
        self.lock().record(now, &event);
    }
}
