//! The wake-up from the request path to the frame builder.

use futures_util::FutureExt as _;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Tells the stream's frame builder that events arrived, for a plain load per event in a burst:
/// only the first event after the builder read the buffer pays for the (locked) wake-up.
///
/// No event is missed: a recorder skips the wake-up only when it sees `pending` still set, and the
/// builder clears `pending` before it reads the buffer (which applies the capture queue). If the
/// builder's read comes after the recorder's push, the frame has the event; if before, the
/// clearing happened before the recorder's check (SeqCst fences on both sides), so the recorder
/// sees it cleared and wakes again.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    pending: AtomicBool,
    notify: Notify,
}

impl Activity {
    /// Called after events were written to the buffer.
    pub(crate) fn signal(&self) {
        // Events reach the buffer through the capture queue, not through the lock the builder
        // takes: the fences pair the recorder's push-then-load with the builder's
        // clear-then-drain, so at least one of the two sees the other's write.
        fence(Ordering::SeqCst);
        if !self.pending.load(Ordering::Acquire) && !self.pending.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    /// Resolves after the next [`signal`](Self::signal) that found nothing pending.
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }

    /// Called by the builder right before it reads the buffer: the frame about to be built
    /// covers every event signalled so far.
    pub(crate) fn consume(&self) {
        self.pending.store(false, Ordering::Release);
        fence(Ordering::SeqCst);
        let _ = self.notify.notified().now_or_never();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_wake_up_per_burst_and_again_after_consume() {
        let activity = Activity::default();
        activity.signal();
        activity.signal();
        activity.signal();
        assert!(activity.notified().now_or_never().is_some());
        // The burst left a single permit, and `pending` holds further signals back.
        activity.signal();
        assert!(activity.notified().now_or_never().is_none());
        activity.consume();
        activity.signal();
        assert!(activity.notified().now_or_never().is_some());
    }
}
