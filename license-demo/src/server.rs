//! Wiring: pool + license routes + realtime layer + dashboard routes, and a server handle.

use crate::api;
use crate::auth::{self, SecurityConfig};
use crate::config::ToolSpec;
use crate::pool::{DbLocation, Denial, Durability, LicensePool, PoolOptions};
use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use realtime_layer::serve::ServeConfig;
use realtime_layer::{
    Clock, Cluster, Event, Labels, Pricing, Realtime, ResourceStatus, StreamConfig, SystemClock,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Everything needed to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub bind: SocketAddr,
    /// Database location.
    pub db: DbLocation,
    /// Tool catalogue.
    pub tools: Vec<ToolSpec>,
    /// SQLite `synchronous` level.
    pub durability: Durability,
    /// Access control, signatures, leases, dashboard credentials (default: loopback defaults).
    pub security: SecurityConfig,
    /// Cluster mode (one live view with other instances on the same Redis); `None`: this
    /// process only.
    pub cluster: Option<ClusterOptions>,
    /// Connection limits, timeouts and the shutdown deadline.
    pub serve: ServeConfig,
    /// Live stream settings (push delay, most open streams).
    pub stream: StreamConfig,
    /// The usage tier's SQLite file (30 days of per-minute usage, the report and the advisor);
    /// `None`: no tier. The command line puts it beside the database by default.
    pub usage: Option<PathBuf>,
    /// Milliseconds added to the dashboard's clock (tests move time with it; 0 otherwise).
    pub clock_offset_ms: i64,
}

/// The system clock shifted by a fixed offset (see [`ServerConfig::clock_offset_ms`]).
#[derive(Debug, Clone)]
pub struct OffsetClock {
    inner: SystemClock,
    offset_ms: i64,
}

impl OffsetClock {
    /// The system clock plus `offset_ms`.
    pub fn new(offset_ms: i64) -> Self {
        OffsetClock {
            inner: SystemClock::new(),
            offset_ms,
        }
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms().saturating_add_signed(self.offset_ms)
    }
}

/// Options of [`build_app_full`] beyond the pool and the security settings.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Cluster mode.
    pub cluster: Option<ClusterOptions>,
    /// Live stream settings.
    pub stream: StreamConfig,
    /// The usage tier's file.
    pub usage: Option<PathBuf>,
    /// Offset of the dashboard's clock, in ms.
    pub clock_offset_ms: i64,
}

/// Cluster mode settings of a license server (`Debug` shows the URL without its credentials).
#[derive(Clone)]
pub struct ClusterOptions {
    /// Redis URL (`redis://host:port`, any form the `redis` crate reads).
    pub redis_url: String,
    /// Cluster name.
    pub name: String,
    /// Instance id (`None`: host name and pid).
    pub instance_id: Option<String>,
    /// How pools add up across instances.
    pub pool_scope: realtime_layer::PoolScope,
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field(
                "redis_url",
                &realtime_layer::redact_redis_url(&self.redis_url),
            )
            .field("name", &self.name)
            .field("instance_id", &self.instance_id)
            .field("pool_scope", &self.pool_scope)
            .finish()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or prepared.
    #[error("cannot open the license database: {0}")]
    Pool(#[from] crate::pool::PoolError),
    /// The realtime layer rejected its configuration.
    #[error("cannot configure the realtime layer: {0}")]
    Realtime(#[from] realtime_layer::ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The currency of the catalogue's prices (shown on the dashboard and exported as the
/// `currency` attribute of `realtime_overage_cost_total`).
pub const CURRENCY: &str = "EUR";

/// The OpenTelemetry `service.name` of the exported metrics.
pub const SERVICE_NAME: &str = "license-demo";

/// Builds the full application router around `pool`, for a server bound to `addr`.
///
/// The license routes are wrapped in the realtime layer (so their events are recorded); the
/// realtime routes and `/metrics` are merged after the layer so their own traffic is not, behind
/// the dashboard credentials when configured. Host and Origin checks wrap everything.
pub fn build_app(
    pool: &LicensePool,
    security: &SecurityConfig,
    addr: SocketAddr,
) -> Result<(Router, Realtime), realtime_layer::ConfigError> {
    build_app_with(pool, security, addr, None, StreamConfig::default())
}

/// [`build_app`] in cluster mode when `cluster` is given (needs a Tokio runtime).
pub fn build_app_with(
    pool: &LicensePool,
    security: &SecurityConfig,
    addr: SocketAddr,
    cluster: Option<&ClusterOptions>,
    stream: StreamConfig,
) -> Result<(Router, Realtime), realtime_layer::ConfigError> {
    let options = AppOptions {
        cluster: cluster.cloned(),
        stream,
        ..AppOptions::default()
    };
    build_app_full(pool, security, addr, &options)
}

/// The status rows the dashboard and the usage tier read: sizes, commit, max overage and prices
/// from the catalogue, borrowed from the pool's in-memory counters.
pub fn status_rows(
    tools: &[ToolSpec],
    occupancy: Vec<(String, u32, u32, u32)>,
) -> Vec<ResourceStatus> {
    let terms: HashMap<&str, &ToolSpec> = tools.iter().map(|t| (t.name.as_str(), t)).collect();
    occupancy
        .into_iter()
        .map(|(name, total, commit, borrowed)| {
            let spec = terms.get(name.as_str()).copied();
            let status = ResourceStatus::new(name, total, commit, borrowed);
            match spec {
                Some(t) => status
                    .with_max_overage(t.max_overage)
                    .with_pricing(Pricing::new(
                        CURRENCY,
                        t.commit_price,
                        t.overage_price_per_license,
                    )),
                None => status,
            }
        })
        .collect()
}

/// [`build_app`] with every option: cluster mode, stream settings, the usage tier.
pub fn build_app_full(
    pool: &LicensePool,
    security: &SecurityConfig,
    addr: SocketAddr,
    options: &AppOptions,
) -> Result<(Router, Realtime), realtime_layer::ConfigError> {
    let source_pool = pool.clone();
    let repeats_pool = pool.clone();
    let nonceless = security.signatures.clone();
    let tools = pool.tools().to_vec();
    let mut builder = Realtime::builder()
        .stream_config(options.stream.clone())
        .trusted_proxies(security.trusted_proxies.iter().cloned())
        .clock(OffsetClock::new(options.clock_offset_ms));
    if let Some(path) = &options.usage {
        builder = builder.usage(path.clone());
    }
    if let Some(c) = &options.cluster {
        if let Some(id) = &c.instance_id {
            builder = builder.instance_id(id.clone());
        }
        builder = builder.cluster(
            Cluster::redis(c.redis_url.clone())
                .name(c.name.clone())
                .pool_scope(c.pool_scope),
        );
    }
    let rt = builder
        .labels(
            Labels::default()
                .title("License Server")
                .resource("Tool", "Tools"),
        )
        .service_name(SERVICE_NAME)
        // Every refusal reason has its counter series at 0 from the start (alerts see the first
        // burst).
        .failure_reasons(Denial::ALL.map(Denial::code))
        // How much signed traffic relies on the nonce-less form, and on its repeats being
        // accepted (what `--strict-replay` would refuse).
        .counter(
            "license_demo.signature.nonceless",
            "Borrows signed without X-Nonce (verified), since start",
            move || nonceless.as_ref().map_or(0, |v| v.nonceless_count()),
        )
        .counter(
            "license_demo.signature.repeats",
            "Nonce-less signed borrows accepted although their signature was used before",
            move || repeats_pool.signature_repeats(),
        )
        // The database's counts, whichever process committed them (read on every frame build,
        // so levels follow another process's borrows and returns within one tick): the
        // in-memory counters after one `PRAGMA data_version`, re-read in one query only when
        // another process committed. No await.
        .status_source(move || -> Vec<ResourceStatus> {
            status_rows(&tools, source_pool.occupancy())
        })
        .build()?;
    // Leases the pool ends are returns with reason `expired` on the dashboard.
    let recorder = rt.clone();
    pool.on_expired(move |expired| {
        for e in expired {
            recorder.record(Event::expired(e.tool.clone(), e.user.clone()).borrow_id(e.id.clone()));
        }
    });
    // In cluster mode the replicas share a replay memory in Redis.
    let replays = match (&options.cluster, &security.signatures) {
        (Some(c), Some(_)) => Some(Arc::new(
            auth::RedisReplays::new(&c.redis_url, &c.name)
                .map_err(|e| realtime_layer::ConfigError(format!("Redis URL: {e}")))?,
        )),
        _ => None,
    };
    let state = api::AppState {
        pool: pool.clone(),
        keys: security.api_keys.clone(),
        signatures: security.signatures.clone(),
        replays,
    };
    let dashboard = rt.routes().merge(rt.metrics_routes());
    let dashboard = match &security.dashboard_auth {
        Some(credentials) => dashboard.layer(credentials.clone().layer()),
        None => dashboard,
    };
    let guard = Arc::new(auth::RequestGuard::new(
        addr,
        &security.allowed_hosts,
        &security.allowed_origins,
    ));
    let app = api::license_routes(state)
        .layer(rt.layer())
        .merge(dashboard)
        .route("/", get(|| async { Redirect::temporary("/realtime") }))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed);
    let app = match auth::guard::cors(&security.allowed_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    // A query that is not UTF-8 once decoded (`?user=%FF`) is a 400 on every route.
    let app = app.layer(axum::middleware::from_fn(realtime_layer::strict_query));
    // Outermost: nothing (not even a CORS preflight) answers a foreign Host.
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            guard,
            auth::guard::guard,
        ))
        // Every refusal (401/403/409/413/415/421/422/429, the Host check's included) counted by
        // route and reason for /metrics and the dashboard.
        .layer(rt.refusal_layer())
        // Rejections axum answers itself (a path that is not UTF-8, ...) become JSON too.
        .layer(axum::middleware::map_response(realtime_layer::json_errors));
    Ok((app, rt))
}

/// A running server; stop it with [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    pool: LicensePool,
    realtime: Realtime,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

/// Opens the pool, binds `config.bind` and serves in a background task.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let ServerConfig {
        bind,
        db,
        tools,
        durability,
        security,
        cluster,
        serve,
        stream,
        usage,
        clock_offset_ms,
    } = config;
    let options = PoolOptions {
        lease_ttl: security.lease_ttl,
        clock: None,
    };
    let pool = tokio::task::spawn_blocking(move || {
        LicensePool::open_with(&db, tools, durability, options)
    })
    .await
    .map_err(|e| crate::pool::PoolError::Storage(format!("open task failed: {e}")))??;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    // Built after binding: the Host check needs the real port (`--bind 127.0.0.1:0`).
    let options = AppOptions {
        cluster,
        stream,
        usage,
        clock_offset_ms,
    };
    let (app, rt) = build_app_full(&pool, &security, addr, &options)?;
    // One token stops both the HTTP server and the realtime streams (which would otherwise
    // keep graceful shutdown waiting until its deadline).
    let shutdown = rt.shutdown_token();
    let signal = shutdown.clone().cancelled_owned();
    let task = tokio::spawn(realtime_layer::serve::serve(listener, app, serve, signal));
    Ok(RunningServer {
        addr,
        pool,
        realtime: rt,
        shutdown,
        task,
    })
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:8000` (an unspecified bind address shows as loopback).
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// The dashboard's realtime instance.
    pub fn realtime(&self) -> &Realtime {
        &self.realtime
    }

    /// This instance's id (shown on the dashboard).
    pub fn instance_id(&self) -> &str {
        self.realtime.instance_id()
    }

    /// The pool behind the server.
    pub fn pool(&self) -> &LicensePool {
        &self.pool
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server stops (after the shutdown token is cancelled), then closes the
    /// database.
    pub async fn wait(self) -> std::io::Result<()> {
        let served = self.task.await;
        if let Some(usage) = self.realtime.usage().cloned() {
            // The open minute is written too: a graceful shutdown loses no usage.
            match tokio::task::spawn_blocking(move || usage.close()).await {
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot close the usage tier"),
                Err(e) => tracing::warn!(error = %e, "usage close task failed"),
                Ok(Ok(())) => {}
            }
        }
        let pool = self.pool.clone();
        // Joining the writer thread blocks; keep it off the async workers.
        let _ = tokio::task::spawn_blocking(move || pool.close()).await;
        match served {
            Ok(result) => result,
            Err(join) => Err(std::io::Error::other(join)),
        }
    }

    /// Stops accepting connections, ends SSE streams, finishes in-flight requests (cutting
    /// connections still open after the shutdown deadline) and closes the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}
