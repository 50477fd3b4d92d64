//! A timer for futures woken far more often than it fires (a connection task or a live stream,
//! woken for every frame): its `Sleep` is re-polled only once it fired, after a reset, or when
//! the polling task's waker changed. Polling an armed `Sleep` on every wake registers the waker
//! with the timer driver again each time, which cost more than a frame's own delivery.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::time::{Instant, Sleep};

/// A `Sleep` polled only when it may have fired (see the module documentation).
pub(crate) struct LazySleep {
    sleep: Pin<Box<Sleep>>,
    /// The waker the armed `sleep` was last polled with; `None` after a reset or once it fired.
    armed_for: Option<Waker>,
}

impl LazySleep {
    /// A timer firing at `at`.
    pub(crate) fn until(at: Instant) -> Self {
        LazySleep {
            sleep: Box::pin(tokio::time::sleep_until(at)),
            armed_for: None,
        }
    }

    /// Fires at `at` instead.
    pub(crate) fn reset(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at);
        self.armed_for = None;
    }

    /// Ready once the deadline has passed (and on every poll after, until a reset).
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let armed = self
            .armed_for
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if armed && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        let poll = self.sleep.as_mut().poll(cx);
        self.armed_for = poll.is_pending().then(|| cx.waker().clone());
        poll
    }
}
