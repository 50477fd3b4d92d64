//! `GET /realtime/stream?resource=NAME&user=NAME`: Server-Sent Events (see `docs/PROTOCOL.md`).
//!
//! The messages are encoded once by the stream hub and shared as [`Bytes`]; each connection only
//! forwards them (a reference-count clone, no re-serialisation, no copy).
//!
//! [`Subscription`] is the part shared with `/realtime/ws`: filter validation, the `max_streams`
//! limit and `stream_clients` guard, the channel subscription, snapshot-then-delta (with a
//! catch-up snapshot after skipped frames), keep-alive timing and the end on shutdown.

use super::params::{self, Params, QueryMap};
use super::RouteState;
use crate::core::Core;
use crate::error::ApiError;
use crate::serve::{Connection, LazySleep};
use crate::stream::{Channel, FanoutRx, FilterLease, Published, Subscribed, KEEP_ALIVE, RETRY_MS};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::WaitForCancellationFutureOwned;

/// Counts one open stream in `stream_clients` (the `realtime.stream.clients` gauge) while alive.
struct ClientGuard(Arc<Core>);

impl ClientGuard {
    /// One more stream, unless `max_streams` are open already.
    fn acquire(core: &Arc<Core>) -> Option<ClientGuard> {
        let max = core.stream_config.max_streams as u64;
        core.stream_clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ClientGuard(core.clone()))
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.stream_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

fn unavailable(code: &str, detail: String) -> Response {
    let mut response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The frame a client last saw, from the `Last-Event-ID` header (SSE) or, for clients that
/// cannot set headers (browser WebSockets), the `last_event_id` query parameter.
pub(super) fn last_event_id(headers: &HeaderMap, q: &QueryMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| q.get("last_event_id").map(String::as_str))
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// What a subscription yields next.
pub(super) enum Next {
    /// An SSE-encoded frame message (`id: N\ndata: JSON\n\n`).
    Frame(Bytes),
    /// `keep_alive` passed without anything else being due.
    KeepAlive,
}

/// The client's address and, when served by [`crate::serve`], its connection: from the request
/// extensions (`ConnectInfo` is also set by `into_make_service_with_connect_info`). Behind a
/// trusted proxy ([`crate::RealtimeBuilder::trusted_proxies`]) the client is the address the
/// proxy forwards for. The address is the key of the per-client filter limit: an IPv6 client is
/// its /64 (one host usually holds the whole prefix, so it cannot take a share per address).
pub(super) fn client_of(
    core: &Core,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> (Option<IpAddr>, Option<Connection>) {
    let conn = extensions.get::<Connection>().cloned();
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| conn.as_ref().map(|c| c.peer_addr().ip()));
    let client = peer.map(|peer| limit_key(core.trusted_proxies.client_ip(peer, headers)));
    (client, conn)
}

/// The per-client limit's key of an address: IPv4 as is, IPv6 by its /64 prefix.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// One live client of the hub, whatever its transport: counted in `stream_clients` while alive.
pub(super) struct Subscription {
    /// Counts this stream; its core also counts a stalled reader's cut (see `Drop`).
    guard: ClientGuard,
    _lease: Option<FilterLease>,
    /// The connection (under [`crate::serve`]): tells whether the write timeout cut the stream.
    conn: Option<Connection>,
    /// The channel's frames; `None` for a hidden page's stream (`hidden=1`: keep-alives only).
    frames: Option<Frames>,
    /// Watched only by hidden streams: visible ones learn of shutdown from their channel.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The stream has ended (shutdown): `next` answers `None` from then on.
    ended: bool,
    keep_alive: KeepAlive,
}

/// What a visible client follows: its channel, a receiver of its frames, the last one sent.
struct Frames {
    channel: Arc<Channel>,
    rx: FanoutRx<Arc<Published>>,
    last_seq: u64,
}

/// The keep-alive timer of one stream (lazily polled: the stream is woken for every frame).
struct KeepAlive {
    every: Duration,
    sleep: LazySleep,
}

impl KeepAlive {
    fn new(every: Duration) -> Self {
        KeepAlive {
            every,
            sleep: LazySleep::until(Instant::now() + every),
        }
    }

    /// Ready once `every` has passed since the last keep-alive (then re-armed).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.sleep.poll(cx));
        self.sleep.reset(Instant::now() + self.every);
        Poll::Ready(())
    }
}

/// `hidden`: `1`/`true` for a page in a hidden tab, which gets keep-alives only (no channel, no
/// frames: nothing to build or send per frame) and reconnects normally, with `last_event_id`,
/// when it becomes visible again.
fn hidden(q: &QueryMap) -> Result<bool, ApiError> {
    match q.get("hidden").map(|v| v.trim()) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "invalid_hidden",
            format!("hidden must be 1 or 0, got {other:?}"),
        )),
    }
}

impl Subscription {
    /// Validates the `resource`/`user` filter (400/404) and `hidden`, checks shutdown and the
    /// limits (503), subscribes to the filter's channel and returns the catch-up snapshot to send
    /// first (exactly the missed events when `last_seen` is remembered). A hidden page's stream
    /// (`hidden=1`) subscribes to nothing and starts without a snapshot.
    pub(super) fn open(
        routes: &RouteState,
        q: &QueryMap,
        last_seen: Option<u64>,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(Subscription, Bytes), Box<Response>> {
        let core = &routes.core;
        let scope = params::scope(q, core).map_err(|e| Box::new(e.into_response()))?;
        let filter = params::filter(q, core, &scope).map_err(|e| Box::new(e.into_response()))?;
        let hidden = hidden(q).map_err(|e| Box::new(e.into_response()))?;
        let shutdown = core.shutdown.clone();
        if shutdown.is_cancelled() {
            return Err(Box::new(unavailable(
                "shutting_down",
                "the server is shutting down".into(),
            )));
        }
        let Some(guard) = ClientGuard::acquire(core) else {
            let max = core.stream_config.max_streams;
            return Err(Box::new(unavailable(
                "too_many_streams",
                format!("at most {max} streams can be open at once; try again later"),
            )));
        };
        let (client, conn) = client_of(core, headers, extensions);
        if let Some(conn) = &conn {
            // A stalled reader then holds a few KiB in the kernel, not hundreds, and the write
            // timeout notices it sooner.
            if let Err(e) = conn.limit_send_buffer() {
                tracing::debug!(error = %e, "cannot lower the stream's send buffer");
            }
        }
        let mut sub = Subscription {
            guard,
            _lease: None,
            conn,
            frames: None,
            shutdown: Box::pin(shutdown.cancelled_owned()),
            ended: false,
            keep_alive: KeepAlive::new(core.stream_config.keep_alive),
        };
        if hidden {
            return Ok((sub, Bytes::new()));
        }
        let hub = routes.stream.hub(core).clone();
        let Subscribed {
            channel,
            mut rx,
            lease,
        } = hub
            .subscribe(core, scope, filter, client)
            .map_err(|e| Box::new(unavailable(&e.error, e.detail)))?;
        let (last_seq, snapshot) = channel.catch_up(last_seen, &mut rx);
        sub._lease = lease;
        sub.frames = Some(Frames {
            channel,
            rx,
            last_seq,
        });
        // A visible stream learns of shutdown from its channel, which the hub closes when it
        // sees the token cancelled. This channel was in the hub before this check, so either the
        // hub will close it, or the token is cancelled already and the stream ends after its
        // snapshot.
        if core.shutdown.is_cancelled() {
            sub.ended = true;
        }
        Ok((sub, snapshot))
    }

    /// The next frame (a delta, or a catch-up snapshot after skipped frames) or keep-alive;
    /// `None` on shutdown. Cancel-safe.
    pub(super) async fn next(&mut self) -> Option<Next> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`next`](Self::next) as a poll: a frame first, then a due keep-alive.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next>> {
        if self.ended {
            return Poll::Ready(None);
        }
        // A visible stream waits on its channel, which also carries the end at shutdown (no
        // token to poll on every frame); a hidden page's stream (keep-alives only) has no
        // channel and watches the token itself.
        let ended = match self.frames.as_mut() {
            Some(frames) => match frames.poll_next(cx) {
                Poll::Ready(Some(bytes)) => return Poll::Ready(Some(Next::Frame(bytes))),
                Poll::Ready(None) => true,
                Poll::Pending => false,
            },
            None => self.shutdown.as_mut().poll(cx).is_ready(),
        };
        if ended {
            self.ended = true;
            return Poll::Ready(None);
        }
        ready!(self.keep_alive.poll(cx));
        Poll::Ready(Some(Next::KeepAlive))
    }
}

impl Frames {
    /// The next frame: the channel's delta when this client saw the one before it, else a
    /// catch-up snapshot (a slow reader skipped frames). `None` when the channel closed
    /// (shutdown).
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let newest = ready!(self.rx.poll_changed(cx));
        if newest.closing {
            return Poll::Ready(None);
        }
        if newest.prev_seq == self.last_seq {
            self.last_seq = newest.seq;
            Poll::Ready(Some(newest.delta.clone()))
        } else {
            let (seq, bytes) = self.channel.catch_up(Some(self.last_seq), &mut self.rx);
            self.last_seq = seq;
            Poll::Ready(Some(bytes))
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.conn.as_ref().is_some_and(Connection::write_timed_out) {
            self.guard
                .0
                .slow_stream_disconnects
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One SSE response body: the `retry:` line and the snapshot, then what the subscription yields,
/// polled directly by the server (no stream adapter or future per frame in between).
struct SseBody {
    sub: Subscription,
    /// Messages to send before waiting (the `retry:` line and the first snapshot).
    queued: VecDeque<Bytes>,
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(bytes) = this.queued.pop_front() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(bytes))));
        }
        let bytes = match ready!(this.sub.poll_next(cx)) {
            Some(Next::Frame(bytes)) => bytes,
            Some(Next::KeepAlive) => Bytes::from_static(KEEP_ALIVE),
            None => return Poll::Ready(None),
        };
        Poll::Ready(Some(Ok(http_body::Frame::data(bytes))))
    }
}

pub(crate) async fn stream(
    State(routes): State<RouteState>,
    Params(q): Params,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let last_seen = last_event_id(&headers, &q);
    let (sub, snapshot) = match Subscription::open(&routes, &q, last_seen, &headers, &extensions) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let body = SseBody {
        sub,
        // A hidden page's stream has no snapshot: only the `retry:` line, then keep-alives.
        queued: [Bytes::from(format!("retry: {RETRY_MS}\n")), snapshot]
            .into_iter()
            .filter(|b| !b.is_empty())
            .collect(),
    };
    let mut response = Body::new(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
