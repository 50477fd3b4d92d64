//! # realtime-layer
//!
//! Live observability for services that lend things out — licenses, seats, GPU leases, database
//! connections. Add one tower layer and your service records every **borrow**, **return** and
//! **failure** into a compact six-hour in-memory buffer, serves a live dashboard at `/realtime`,
//! a Server-Sent Events stream, JSON stats, and exports OpenTelemetry metrics (Prometheus
//! `/metrics` out of the box).
//!
//! ```no_run
//! use axum::{routing::post, Router};
//! use realtime_layer::{Event, Realtime};
//!
//! async fn borrow() -> (Event, &'static str) {
//!     // Handlers describe what happened; the layer records it as the response passes.
//!     (Event::borrow("GPU A100", "alice").overage(false), "ok")
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     let realtime = Realtime::builder().build().expect("valid configuration");
//!     let router = Router::new()
//!         .route("/borrow", post(borrow))
//!         .merge(realtime.routes())
//!         .merge(realtime.metrics_routes());
//!     // The layer once around the whole router: the cheapest place for it.
//!     let app = realtime.wrap(router);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
//!     axum::serve(listener, app.into_make_service()).await.unwrap();
//! }
//! ```
//!
//! ## Capturing events
//! 1. **Response extensions**: return an [`Event`] (or [`RealtimeEvents`]) as an axum response
//!    part, or insert it with [`RealtimeEvents::push_into`]; [`RealtimeLayer`] records and removes
//!    it. Handlers need no handle.
//! 2. **The handle**: [`Realtime::record`] for events not tied to a response (background jobs,
//!    expiries).
//! 3. **A classifier**: [`RealtimeLayer::classifier`] maps method, matched route, status and
//!    headers to events, for services you cannot change.
//!
//! ## Storage
//! [`EventBuffer`] keeps each kind in its own bounded ring (defaults: 100,000 borrows, 100,000
//! returns, 10,000 failures, six hours), 16 bytes per event: names are interned (past 10,000
//! users or 1,000 resources new names fold into `(other)`), timestamps are 32-bit offsets, and
//! borrow ids are kept as a 64-bit fingerprint — a UUID as its first 16 hex digits
//! (`550e8400-e29b-41d4`), a decimal integer exactly, anything else as `#` + a 64-bit hash.
//! Per-second, per-resource aggregates make rates, peaks and history independent of the number of
//! buffered events.
//!
//! ## Feature flags
//! - `prometheus` (default): a per-instance Prometheus registry fed through
//!   `opentelemetry-prometheus`, served by [`Realtime::metrics_routes`].
//! - `redis`: cluster mode, one live view across replicas through Redis Streams:
//!   `Realtime::builder().cluster(Cluster::redis(url).name("my-service"))`; every route then
//!   serves the whole cluster (`?scope=local`, `?instance=ID` for one process). See
//!   `docs/OPERATIONS.md` ("Cluster mode on Redis").
//! - `dashboard-auth`: [`access::DashboardAuth`], HTTP Basic or bearer credentials for the
//!   dashboard and `/metrics` routes as a tower-http layer (constant-time check, JSON 401).
//! - `sidecar`: the `realtime-sidecar` binary and the [`ingest`] module: the same live view for
//!   services in any language, fed by OTLP/HTTP logs or NDJSON over HTTP (`docs/SIDECAR.md`).
//! - `usage`: the usage tier ([`usage`]): thirty days of per-minute usage in SQLite beside the
//!   live buffer (`Realtime::builder().usage(path)`), `/realtime/report` and the pool-sizing
//!   advisor `/realtime/advice`; `/realtime/history` then reaches back as far as the tier keeps.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Modules in layering order, bottom first (the rule: `docs/ARCHITECTURE.md`, checked by
// `tests/layering.rs`): each imports only modules above it in this list's earlier groups.
pub mod serve;

mod clock;
mod error;
mod event;
mod labels;
mod names;
mod status;

#[cfg(feature = "dashboard-auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard-auth")))]
pub mod access;
mod buffer;

mod core;

mod views;

mod capture;
mod cluster;
#[cfg(feature = "sidecar")]
#[cfg_attr(docsrs, doc(cfg(feature = "sidecar")))]
pub mod ingest;
mod metrics;
mod stream;
#[cfg(feature = "usage")]
pub mod usage;

mod routes;

mod realtime;

pub use buffer::{
    BufferConfig, BufferStats, ConfigError, Cursor, Denials, EventBuffer, EventFilter, EventRecord,
    HoldSummary, HoldTimes, LifetimeTotals, MemoryBreakdown, ResourceActivity, SecondPoint,
    SecondSeries, Totals, WindowSummary, HOLD_BUCKETS_SECONDS, OTHER_NAME,
};
pub use capture::{
    Classifier, RealtimeLayer, RealtimeService, RefusalFuture, RefusalLayer, RefusalService,
    RequestInfo, ResponseFuture, ResponseInfo,
};
pub use clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "redis")]
pub use cluster::{redact_redis_url, Cluster};
pub use core::{
    ClusterInfo, IngestStats, InstanceInfo, PoolScope, RefusalCount, RouteStats, StreamConfig,
    HTTP_DURATION_BUCKETS, MAX_APP_COUNTERS, MAX_REFUSAL_SERIES, MAX_ROUTES, REFUSAL_STATUSES,
};
pub use error::{ApiError, Refusal};
pub use event::{Event, EventKind, RealtimeEvents, EXPIRED_REASON};
pub use labels::Labels;
pub use realtime::{Realtime, RealtimeBuilder};
pub use routes::{
    json_errors, strict_query, InstanceMemory, StatsResponse, CONTENT_SECURITY_POLICY, RANGES,
    RECENT_EVENTS_LIMIT,
};
pub use status::{Pricing, ResourceStatus, StatusSource};
#[cfg(feature = "usage")]
pub use usage::{
    AdviceReport, ResourceAdvice, ResourceUsage, UsageConfig, UsageError, UsageRecorder,
    UsageReport, UsageStore, UsageTier,
};
pub use views::{CapacityTime, CostSummary, CurrencyCost, Rates, ResourceCost, ResourceView};
