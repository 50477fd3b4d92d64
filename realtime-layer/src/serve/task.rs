//! The task of one connection: hyper's connection, its header/idle deadline and the graceful
//! shutdown signal, in one future.
//!
//! A live stream wakes its connection task for every frame. With the deadline and the shutdown
//! signal as `select!` branches (a `Notify` and a watch channel), each wake re-polled both, and
//! each of those polls takes a lock; that was a tenth of a frame's cost. Here each wake checks
//! two atomics: the connection's phase counter and the shutdown token, and polls the token's
//! future only when it moved (or the task's waker changed); the deadline is a [`LazySleep`].

use super::conn::ConnState;
use super::lazy_sleep::LazySleep;
use hyper_util::server::graceful::GracefulConnection;
use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Serves one connection until it ends, its header or idle deadline passes, or (after
/// `shutdown`) its in-flight requests are done.
pub(super) struct ConnTask<C> {
    conn: Pin<Box<C>>,
    state: Arc<ConnState>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    /// `shutdown.cancelled_owned()`, polled to register this task's waker with the token.
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Set once the connection was asked to finish gracefully.
    graceful: bool,
    /// The deadline timer, armed while `deadline` is `Some`.
    timer: LazySleep,
    deadline: Option<Instant>,
    /// The phase (`ConnState::phase`) the deadline was computed for.
    seen_phase: u64,
    /// The waker `cancelled` was last polled with.
    armed_for: Option<Waker>,
}

impl<C> ConnTask<C> {
    pub(super) fn new(
        conn: C,
        state: Arc<ConnState>,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> Self {
        ConnTask {
            conn: Box::pin(conn),
            state,
            peer,
            cancelled: Box::pin(shutdown.clone().cancelled_owned()),
            shutdown,
            graceful: false,
            timer: LazySleep::until(Instant::now()),
            deadline: None,
            // Not a phase the state has: the deadline is computed on the first poll.
            seen_phase: u64::MAX,
            armed_for: None,
        }
    }
}

impl<C> ConnTask<C>
where
    C: GracefulConnection,
{
    /// Asks the connection to finish gracefully once `shutdown` is cancelled.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>, fresh_waker: bool) {
        if self.graceful || !(fresh_waker || self.shutdown.is_cancelled()) {
            return;
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.graceful = true;
            self.conn.as_mut().graceful_shutdown();
            // The connection acts on it when polled next (an idle one closes then).
            cx.waker().wake_by_ref();
        }
    }

    /// Ready when the header or idle deadline of the current phase has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let phase = self.state.phase();
        if phase != self.seen_phase {
            self.seen_phase = phase;
            self.deadline = self.state.deadline();
            if let Some(at) = self.deadline {
                self.timer.reset(at);
            }
        }
        let Some(at) = self.deadline else {
            return Poll::Pending;
        };
        ready!(self.timer.poll(cx));
        // The timer fired: the deadline holds unless the phase moved meanwhile (then it is
        // computed again on the next poll, which this wake-up schedules).
        if self.state.phase() == self.seen_phase && at <= Instant::now() {
            return Poll::Ready(());
        }
        self.seen_phase = u64::MAX;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<C, E> Future for ConnTask<C>
where
    C: GracefulConnection<Error = E>,
    E: Display,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Phase changes (a request starting or finishing, bytes between requests) wake this.
        this.state.register_task(cx.waker());
        if let Poll::Ready(result) = this.conn.as_mut().poll(cx) {
            if let Err(e) = result {
                tracing::debug!(error = %e, peer = %this.peer, "connection ended with an error");
            }
            return Poll::Ready(());
        }
        let fresh_waker = !this
            .armed_for
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if fresh_waker {
            this.armed_for = Some(cx.waker().clone());
        }
        this.poll_shutdown(cx, fresh_waker);
        if this.poll_expired(cx).is_ready() {
            tracing::debug!(peer = %this.peer, "connection closed by a header, body or idle timeout");
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
