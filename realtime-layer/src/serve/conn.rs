//! One connection of [`serve`](super::serve): its timers, its socket wrapper and the service
//! that hands requests to the router.
//!
//! The header and idle timeouts are decided here rather than by hyper, whose header timer also
//! runs while a keep-alive connection waits for its next request (one setting for two limits).
//! The connection is in one of three phases, tracked with atomics shared by the socket wrapper
//! ([`Io`]), the service ([`ConnService`]) and the connection task ([`super::task::ConnTask`]):
//! - waiting for a first request, or reading a request's headers: the header deadline runs from
//!   the connection's start or the request's first byte;
//! - serving requests (`in_flight > 0`): no deadline here (the body and write timeouts apply);
//! - between requests with no byte of the next one: the idle deadline runs.

use super::body::{DeadlineBody, InFlightBody};
use super::ServeConfig;
use axum::extract::ConnectInfo;
use axum::Router;
use futures_util::task::AtomicWaker;
use hyper::body::Incoming;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// No request has started reading (stored in `head_started_ms`).
const NONE: u64 = u64::MAX;

/// What the parts of one connection share.
pub(super) struct ConnState {
    config: Arc<ServeConfig>,
    peer: SocketAddr,
    start: Instant,
    /// Requests received whose response body is not finished.
    in_flight: AtomicUsize,
    /// Requests received so far.
    served: AtomicU64,
    /// When (ms since `start`) the first byte of the next request arrived, or `NONE`.
    head_started_ms: AtomicU64,
    /// When (ms since `start`) the last response finished.
    idle_since_ms: AtomicU64,
    /// A write made no progress for `write_timeout`.
    write_timed_out: AtomicBool,
    /// A handler asked for a smaller send buffer ([`Connection::limit_send_buffer`]): the socket's
    /// owner ([`Io`]) applies it before its next write. No descriptor number is kept anywhere,
    /// so a closed (and reused) descriptor can never be touched.
    send_buffer_wanted: AtomicBool,
    /// Counts phase changes: the connection task recomputes its deadline when it moved.
    phase: AtomicU64,
    /// The connection task, woken when the phase changes.
    task: AtomicWaker,
}

impl ConnState {
    pub(super) fn new(peer: SocketAddr, config: Arc<ServeConfig>) -> Self {
        ConnState {
            config,
            peer,
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(NONE),
            idle_since_ms: AtomicU64::new(0),
            write_timed_out: AtomicBool::new(false),
            send_buffer_wanted: AtomicBool::new(false),
            phase: AtomicU64::new(0),
            task: AtomicWaker::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + std::time::Duration::from_millis(ms)
    }

    /// When the connection must be closed if nothing changes; `None` while serving.
    pub(super) fn deadline(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_started_ms.load(Ordering::Acquire);
        if head != NONE {
            return Some(self.at(head) + self.config.header_read_timeout);
        }
        if self.served.load(Ordering::Acquire) == 0 {
            return Some(self.start + self.config.header_read_timeout);
        }
        let idle = self.idle_since_ms.load(Ordering::Acquire);
        Some(self.at(idle) + self.config.idle_timeout)
    }

    /// The count of phase changes so far (see [`ConnState::deadline`]).
    pub(super) fn phase(&self) -> u64 {
        self.phase.load(Ordering::Acquire)
    }

    /// The connection task to wake when the phase changes.
    pub(super) fn register_task(&self, waker: &Waker) {
        self.task.register(waker);
    }

    /// The phase changed: the connection task computes its deadline again.
    fn changed(&self) {
        self.phase.fetch_add(1, Ordering::AcqRel);
        self.task.wake();
    }

    /// Bytes arrived: between requests, they start the next request's header deadline.
    fn on_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started_ms.load(Ordering::Acquire) == NONE
        {
            self.head_started_ms.store(self.now_ms(), Ordering::Release);
            self.changed();
        }
    }

    /// A request's headers are in: the connection is serving.
    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        self.head_started_ms.store(NONE, Ordering::Release);
        self.changed();
    }

    /// A response body finished (or was dropped).
    pub(super) fn request_finished(&self) {
        self.idle_since_ms.store(self.now_ms(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed();
    }
}

/// The connection a request came in on, as a request extension set by
/// [`serve`](super::serve). Handlers of long-lived responses use it.
#[derive(Clone)]
pub struct Connection {
    state: Arc<ConnState>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.state.peer)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.state.peer
    }

    /// Lowers the kernel send buffer of this connection to
    /// [`ServeConfig::stream_send_buffer`], so a client that stops reading a long-lived response
    /// holds little memory and, when it resumes, few stale bytes. The connection applies it to
    /// the socket it owns before its next write (the caller never touches a descriptor, which
    /// under HTTP/2 could be closed and reused meanwhile). A no-op off Unix or once the
    /// connection is closed; a failure is logged at debug level.
    pub fn limit_send_buffer(&self) -> io::Result<()> {
        self.state.send_buffer_wanted.store(true, Ordering::Release);
        Ok(())
    }

    /// True once a write to this client made no progress for
    /// [`ServeConfig::write_timeout`] (the connection is then being closed).
    pub fn write_timed_out(&self) -> bool {
        self.state.write_timed_out.load(Ordering::Acquire)
    }
}

/// The socket of one connection: reports reads to the phase tracking, fails writes that make no
/// progress for `write_timeout`, and holds the connection's slot (also after an upgrade).
pub(super) struct Io {
    inner: TcpStream,
    state: Arc<ConnState>,
    write_timer: Option<Pin<Box<Sleep>>>,
    _slot: OwnedSemaphorePermit,
}

impl Io {
    pub(super) fn new(inner: TcpStream, state: Arc<ConnState>, slot: OwnedSemaphorePermit) -> Io {
        Io {
            inner,
            state,
            write_timer: None,
            _slot: slot,
        }
    }

    /// Maps a write attempt's outcome through the write deadline.
    fn deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => {
                let timeout = self.state.config.write_timeout;
                let timer = self
                    .write_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.state.write_timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client accepted no data within the write timeout",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.write_timer = None;
                ready
            }
        }
    }
}

impl Io {
    /// Applies a send buffer size asked for since the last write, on the socket this owns.
    fn apply_send_buffer(&self) {
        if !self.state.send_buffer_wanted.load(Ordering::Relaxed)
            || !self.state.send_buffer_wanted.swap(false, Ordering::AcqRel)
        {
            return;
        }
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd as _;
            let size = libc::c_int::try_from(self.state.config.stream_send_buffer)
                .unwrap_or(libc::c_int::MAX);
            // SAFETY: the descriptor is `self.inner`'s, open for as long as this borrow of it;
            // the option value is one c_int passed with its size.
            let rc = unsafe {
                libc::setsockopt(
                    self.inner.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUF,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                let e = io::Error::last_os_error();
                tracing::debug!(error = %e, "cannot lower the stream's send buffer");
            }
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.on_read();
        }
        poll
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.apply_send_buffer();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.deadline(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.apply_send_buffer();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.deadline(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.deadline(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.deadline(cx, poll)
    }
}

/// Hands each request of one connection to the router: with the [`Connection`] and
/// `ConnectInfo` extensions, a body deadline, and the response body tracked for the idle timer.
#[derive(Clone)]
pub(super) struct ConnService {
    app: Router,
    state: Arc<ConnState>,
}

impl ConnService {
    pub(super) fn new(app: Router, state: Arc<ConnState>) -> Self {
        ConnService { app, state }
    }
}

type ServiceFuture = Pin<
    Box<
        dyn Future<
                Output = Result<http::Response<InFlightBody<InFlight>>, std::convert::Infallible>,
            > + Send,
    >,
>;

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<InFlightBody<InFlight>>;
    type Error = std::convert::Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        self.state.request_started();
        let guard = InFlight(self.state.clone());
        let mut req = req.map(|b| DeadlineBody::new(b, self.state.config.request_body_timeout));
        req.extensions_mut().insert(Connection {
            state: self.state.clone(),
        });
        req.extensions_mut().insert(ConnectInfo(self.state.peer));
        let app = self.app.clone();
        Box::pin(async move {
            let response = match app.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok(response.map(|body| InFlightBody::new(body, guard)))
        })
    }
}

/// Marks one request in flight until dropped (with its response body, or with the request if
/// the handler never answered).
pub(super) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd as _;
    use tokio::io::AsyncWriteExt as _;
    use tokio::sync::Semaphore;

    fn send_buffer(stream: &TcpStream) -> libc::c_int {
        let mut size: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `stream` is open; `size` and `len` are a c_int and its length.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut size as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        size
    }

    #[tokio::test]
    async fn the_send_buffer_is_set_by_the_socket_owner_before_its_next_write() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let before = send_buffer(&stream);
        let config = Arc::new(ServeConfig {
            stream_send_buffer: 4_096,
            ..ServeConfig::default()
        });
        let state = Arc::new(ConnState::new(peer, config));
        let slot = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let mut io = Io::new(stream, state.clone(), slot);
        let conn = Connection { state };
        conn.limit_send_buffer().unwrap();
        assert_eq!(
            send_buffer(&io.inner),
            before,
            "nothing touched before the write"
        );
        io.write_all(b"data: {}\n\n").await.unwrap();
        let after = send_buffer(&io.inner);
        assert!(after < before, "{after} should be below {before}");
        // Once the connection is gone, asking again touches nothing (no descriptor is kept).
        drop(io);
        conn.limit_send_buffer().unwrap();
    }
}
