//! Wiring: pool + license routes + realtime layer + dashboard routes, and a server handle.

use crate::api;
use crate::config::ToolSpec;
use crate::pool::{DbLocation, Durability, LicensePool};
use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use realtime_layer::{Cluster, Labels, Realtime, ResourceStatus};
use std::net::SocketAddr;
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
    /// Cluster mode (one live view with other instances on the same Redis); `None`: this
    /// process only.
    pub cluster: Option<ClusterOptions>,
}

/// Cluster mode settings of a license server.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Redis URL (`redis://host:port`).
    pub redis_url: String,
    /// Cluster name.
    pub name: String,
    /// Instance id (`None`: host name and pid).
    pub instance_id: Option<String>,
    /// How pools add up across instances.
    pub pool_scope: realtime_layer::PoolScope,
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

/// Builds the full application router around `pool`.
///
/// The license routes are wrapped in the realtime layer (so their events are recorded); the
/// realtime routes and `/metrics` are merged after the layer so their own traffic is not.
pub fn build_app(pool: &LicensePool) -> Result<(Router, Realtime), realtime_layer::ConfigError> {
    build_app_with(pool, None)
}

/// [`build_app`] in cluster mode when `cluster` is given (needs a Tokio runtime).
pub fn build_app_with(
    pool: &LicensePool,
    cluster: Option<&ClusterOptions>,
) -> Result<(Router, Realtime), realtime_layer::ConfigError> {
    let source_pool = pool.clone();
    let mut builder = Realtime::builder();
    if let Some(c) = cluster {
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
        // Reads the in-memory counters only: no SQLite, no await.
        .status_source(move || -> Vec<ResourceStatus> {
            source_pool
                .occupancy()
                .into_iter()
                .map(|(name, total, commit, borrowed)| {
                    ResourceStatus::new(name, total, commit, borrowed)
                })
                .collect()
        })
        .build()?;
    let app = api::license_routes(pool.clone())
        .layer(rt.layer())
        .merge(rt.routes())
        .merge(rt.metrics_routes())
        .route("/", get(|| async { Redirect::temporary("/realtime") }))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed);
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
        cluster,
    } = config;
    let pool = tokio::task::spawn_blocking(move || LicensePool::open(&db, tools, durability))
        .await
        .map_err(|e| crate::pool::PoolError::Storage(format!("open task failed: {e}")))??;
    let (app, rt) = build_app_with(&pool, cluster.as_ref())?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    // One token stops both the HTTP server and the realtime SSE streams (which would otherwise
    // keep graceful shutdown waiting forever).
    let shutdown = rt.shutdown_token();
    let signal = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { signal.cancelled().await })
            .await
    });
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
        let pool = self.pool.clone();
        // Joining the writer thread blocks; keep it off the async workers.
        let _ = tokio::task::spawn_blocking(move || pool.close()).await;
        match served {
            Ok(result) => result,
            Err(join) => Err(std::io::Error::other(join)),
        }
    }

    /// Stops accepting connections, ends SSE streams, finishes in-flight requests and closes
    /// the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}
