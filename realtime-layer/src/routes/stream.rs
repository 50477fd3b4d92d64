//! `GET /realtime/stream?resource=NAME&user=NAME`: Server-Sent Events (see `docs/PROTOCOL.md`).
//!
//! The messages are encoded once by the stream hub and shared as [`Bytes`]; each connection only
//! forwards them (a reference-count clone, no re-serialisation, no copy).

use super::error::ApiError;
use super::params::{self, QueryMap};
use crate::handle::Realtime;
use crate::stream::{Channel, Published, KEEP_ALIVE, RETRY_MS};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

/// Counts one open stream in `stream_clients` (the `realtime.stream.clients` gauge) while alive.
struct ClientGuard(Realtime);

impl ClientGuard {
    /// One more stream, unless `max_streams` are open already.
    fn acquire(realtime: &Realtime) -> Option<ClientGuard> {
        let max = realtime.stream_config().max_streams as u64;
        realtime
            .shared
            .stream_clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ClientGuard(realtime.clone()))
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.shared.stream_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

fn unavailable(code: &str, detail: String) -> Response {
    let mut response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// One connection's state.
struct Client {
    _guard: ClientGuard,
    channel: Arc<Channel>,
    rx: watch::Receiver<Arc<Published>>,
    /// Messages to send before waiting (the `retry:` line and the first snapshot).
    queued: Vec<Bytes>,
    last_seq: u64,
    shutdown: std::pin::Pin<Box<WaitForCancellationFutureOwned>>,
    keep_alive: std::time::Duration,
    next_keep_alive: std::pin::Pin<Box<Sleep>>,
}

impl Client {
    /// The next message, or `None` when the stream ends (shutdown).
    async fn next(&mut self) -> Option<Bytes> {
        if !self.queued.is_empty() {
            return Some(self.queued.remove(0));
        }
        tokio::select! {
            biased;
            _ = self.shutdown.as_mut() => None,
            changed = self.rx.changed() => {
                changed.ok()?;
                let newest = self.rx.borrow_and_update().clone();
                if newest.prev_seq == self.last_seq {
                    self.last_seq = newest.seq;
                    Some(newest.delta.clone())
                } else {
                    // Frames were skipped (a slow reader): a snapshot replaces them.
                    let (seq, bytes) = self.channel.catch_up(Some(self.last_seq), &mut self.rx);
                    self.last_seq = seq;
                    Some(bytes)
                }
            }
            _ = self.next_keep_alive.as_mut() => {
                let at = Instant::now() + self.keep_alive;
                self.next_keep_alive.as_mut().reset(at);
                Some(Bytes::from_static(KEEP_ALIVE))
            }
        }
    }
}

pub(crate) async fn stream(
    State(realtime): State<Realtime>,
    Query(q): Query<QueryMap>,
    headers: HeaderMap,
) -> Response {
    let filter = match params::filter(&q, &realtime) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let shutdown = realtime.shutdown_token();
    if shutdown.is_cancelled() {
        return unavailable("shutting_down", "the server is shutting down".into());
    }
    let Some(guard) = ClientGuard::acquire(&realtime) else {
        let max = realtime.stream_config().max_streams;
        return unavailable(
            "too_many_streams",
            format!("at most {max} streams can be open at once; try again later"),
        );
    };
    let channel = match realtime.stream_hub().channel(&realtime, filter) {
        Ok(ch) => ch,
        Err(e) => return unavailable(&e.error, e.detail),
    };
    let mut rx = channel.subscribe();
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (last_seq, snapshot) = channel.catch_up(last_event_id, &mut rx);
    let keep_alive = realtime.stream_config().keep_alive;
    let client = Client {
        _guard: guard,
        channel,
        rx,
        queued: vec![Bytes::from(format!("retry: {RETRY_MS}\n")), snapshot],
        last_seq,
        shutdown: Box::pin(shutdown.cancelled_owned()),
        keep_alive,
        next_keep_alive: Box::pin(tokio::time::sleep(keep_alive)),
    };
    let body = futures_util::stream::unfold(client, |mut client| async move {
        let bytes = client.next().await?;
        Some((Ok::<_, Infallible>(bytes), client))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
