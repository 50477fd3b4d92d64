//! A hardened HTTP server for an axum [`Router`]: what `axum::serve` does, plus the limits a
//! service facing untrusted clients needs.
//!
//! `axum::serve` has no timeouts and no connection cap: a client sending its headers at one byte
//! per second, a request body that never ends, an idle keep-alive connection or a stream reader
//! that stopped reading each hold a connection (and its descriptor and buffers) for as long as
//! they like, and shutdown waits on all of them. [`serve`] is a drop-in replacement that bounds
//! each of them ([`ServeConfig`]):
//!
//! | limit | default | what happens |
//! |---|---|---|
//! | [`header_read_timeout`](ServeConfig::header_read_timeout) | 10 s | a request whose headers are not complete in time: connection closed |
//! | [`request_body_timeout`](ServeConfig::request_body_timeout) | 30 s | a body not fully received in time: the handler's read fails (400) and the connection closes |
//! | [`idle_timeout`](ServeConfig::idle_timeout) | 60 s | a keep-alive connection with no request: closed |
//! | [`write_timeout`](ServeConfig::write_timeout) | 10 s | a client that accepts no bytes of a response for that long (a stalled stream reader): closed |
//! | [`max_connections`](ServeConfig::max_connections) | descriptor limit − 128 | further clients wait in the listen backlog |
//! | [`shutdown_deadline`](ServeConfig::shutdown_deadline) | 10 s | connections still open then are cut; `serve` returns |
//!
//! Accept errors from exhausted resources (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) pause
//! accepting for a moment instead of spinning. Every request carries a [`Connection`] extension
//! (and axum's `ConnectInfo<SocketAddr>`): the live stream routes use it to keep the kernel send
//! buffer of stream sockets small, to count readers cut by the write timeout, and to give each
//! client address its own share of stream filters. Behind a reverse proxy, list it in
//! [`TrustedProxies`] (`RealtimeBuilder::trusted_proxies`) so that share goes to each client the
//! proxy forwards for, not to the proxy.
//!
//! ```no_run
//! use realtime_layer::serve::{self, ServeConfig};
//! use realtime_layer::Realtime;
//!
//! # async fn run() -> std::io::Result<()> {
//! let realtime = Realtime::builder().build().expect("valid configuration");
//! let app = axum::Router::new().merge(realtime.routes());
//! serve::raise_nofile_limit()?; // soft RLIMIT_NOFILE up to the hard limit
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! let stop = realtime.shutdown_token();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     stop.cancel(); // ends the live streams too
//! });
//! let token = realtime.shutdown_token();
//! serve::serve(listener, app, ServeConfig::default(), token.cancelled_owned()).await?;
//! # Ok(())
//! # }
//! ```

mod body;
mod conn;
mod lazy_sleep;
mod limits;
mod proxies;
mod task;

pub use conn::Connection;
pub(crate) use lazy_sleep::LazySleep;
pub use limits::{nofile_limit, raise_nofile_limit, NofileLimit};
pub use proxies::{InvalidProxy, TrustedProxies};

use axum::Router;
use conn::{ConnService, ConnState, Io};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Descriptors kept free besides connections by default (database, log files, DNS, ...).
pub const DEFAULT_RESERVED_DESCRIPTORS: u64 = 128;

/// How long accepting pauses after an accept error caused by exhausted resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The limits of [`serve`]; see the [module documentation](self) for what each one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Longest time from the first byte of a request (or the connection's start) to the end of
    /// its headers (default 10 s).
    pub header_read_timeout: Duration,
    /// Longest time from the end of a request's headers to the end of its body (default 30 s).
    pub request_body_timeout: Duration,
    /// Longest time a connection may sit between requests (default 60 s).
    pub idle_timeout: Duration,
    /// Longest time a response write may make no progress (default 10 s).
    pub write_timeout: Duration,
    /// Most connections open at once; `None` (default): the descriptor limit minus
    /// [`reserved_descriptors`](Self::reserved_descriptors). A larger value is lowered to that.
    pub max_connections: Option<usize>,
    /// Descriptors left for everything else than connections (default 128).
    pub reserved_descriptors: u64,
    /// After the shutdown signal, how long in-flight requests may take before the remaining
    /// connections are cut (default 10 s).
    pub shutdown_deadline: Duration,
    /// Kernel send buffer asked for stream sockets, in bytes (default 8 KiB; Linux doubles it).
    pub stream_send_buffer: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_connections: None,
            reserved_descriptors: DEFAULT_RESERVED_DESCRIPTORS,
            shutdown_deadline: Duration::from_secs(10),
            stream_send_buffer: 8 * 1024,
        }
    }
}

impl ServeConfig {
    /// The connection cap `serve` applies: [`max_connections`](Self::max_connections), at most
    /// the current soft descriptor limit minus [`reserved_descriptors`](Self::reserved_descriptors)
    /// (and at least 1).
    pub fn effective_max_connections(&self) -> usize {
        let headroom = nofile_limit()
            .map(|l| l.soft.saturating_sub(self.reserved_descriptors))
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        // Without a descriptor limit (non-Unix), a generous fixed cap.
        let default = if headroom == usize::MAX {
            10_000
        } else {
            headroom
        };
        self.max_connections
            .map_or(default, |n| n.min(headroom))
            .max(1)
    }
}

/// Serves `app` on `listener` with the limits of `config` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish and returns within
/// [`shutdown_deadline`](ServeConfig::shutdown_deadline), cutting connections still open.
///
/// End long-lived responses (the live streams: [`Realtime::shutdown`](crate::Realtime::shutdown))
/// when `shutdown` completes, or they run into the deadline.
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let cap = config.effective_max_connections();
    tracing::info!(
        max_connections = cap,
        header_read_timeout = ?config.header_read_timeout,
        request_body_timeout = ?config.request_body_timeout,
        idle_timeout = ?config.idle_timeout,
        write_timeout = ?config.write_timeout,
        "serving"
    );
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(cap));
    // Cancelled when accepting stops: every connection then finishes gracefully.
    let graceful = CancellationToken::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Header and idle timeouts are enforced per connection by `ConnState` (hyper's own header
    // timer also runs between keep-alive requests, which would make both one setting).
    // One copy of each body chunk into hyper's buffer and one `write`, rather than a queue of
    // three buffers (chunk size, data, CRLF) gathered into a `writev`: a live stream's frames
    // are a few hundred bytes, and the queue cost more per frame than the copy (-280
    // instructions per stream frame under callgrind).
    builder.http1().header_read_timeout(None).writev(false);
    let mut tasks = JoinSet::new();
    let mut backoff_logged = false;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_resource_exhausted(&e) => {
                    if !backoff_logged {
                        tracing::warn!(error = %e, "accept failed, pausing accepts briefly");
                        backoff_logged = true;
                    }
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        backoff_logged = false;
        while tasks.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::new(peer, config.clone()));
        let io = TokioIo::new(Io::new(stream, state.clone(), permit));
        let service = ConnService::new(app.clone(), state.clone());
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        tasks.spawn(task::ConnTask::new(conn, state, peer, graceful.clone()));
    }
    drop(listener);
    while tasks.try_join_next().is_some() {}
    tracing::info!(
        open = tasks.len(),
        "stopped accepting; finishing in-flight requests"
    );
    graceful.cancel();
    let drained = tokio::time::timeout(config.shutdown_deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = tasks.len(),
            deadline = ?config.shutdown_deadline,
            "shutdown deadline reached: cutting the remaining connections"
        );
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Accept errors that mean "out of descriptors or memory": retrying at once would spin.
fn is_resource_exhausted(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::OutOfMemory
    }
}
