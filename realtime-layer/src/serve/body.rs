//! Body wrappers of [`serve`](super::serve): a deadline on request bodies, and response bodies
//! that mark their request finished when done.

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// The request body did not arrive within the request-body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub(super) struct BodyTimeout(Duration);

pin_project_lite::pin_project! {
    /// A request body that fails once `timeout` has passed since the request's headers.
    pub(super) struct DeadlineBody {
        #[pin]
        inner: Incoming,
        #[pin]
        deadline: Sleep,
        timeout: Duration,
    }
}

impl DeadlineBody {
    pub(super) fn new(inner: Incoming, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: tokio::time::sleep(timeout),
            timeout,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.deadline.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(*this.timeout).into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds `guard` until the body ends or is dropped (the server counts its
/// request in flight that long). Generic, so bodies need nothing of the connection's types.
pub(super) struct InFlightBody<G> {
    inner: Body,
    guard: Option<G>,
}

impl<G> InFlightBody<G> {
    pub(super) fn new(inner: Body, guard: G) -> Self {
        InFlightBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl<G: Unpin> http_body::Body for InFlightBody<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(poll, Poll::Ready(None)) {
            self.guard = None;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
