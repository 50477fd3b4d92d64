//! The `/realtime` routes: mount them anywhere with `merge` or `nest`.

mod config;
mod csv;
mod history;
mod history_route;
#[cfg(feature = "usage")]
mod history_tiers;
mod json_errors;
mod page;
mod params;
mod report;
mod stats;
mod stream;
mod ws;

pub use config::RANGES;
pub use json_errors::json_errors;
pub use page::CONTENT_SECURITY_POLICY;
pub use params::strict_query;
pub use stats::{InstanceMemory, StatsResponse, RECENT_EVENTS_LIMIT};

use crate::core::Core;
use crate::stream::LiveStream;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// What every handler reads: the instance's core and its live stream.
#[derive(Clone)]
pub(crate) struct RouteState {
    pub(crate) core: Arc<Core>,
    pub(crate) stream: Arc<LiveStream>,
    /// The usage tier, when configured.
    #[cfg(feature = "usage")]
    pub(crate) usage: Option<crate::usage::UsageTier>,
}

/// The dashboard routes (documented on [`Realtime::routes`](crate::Realtime::routes)).
pub(crate) fn dashboard<S: Clone + Send + Sync + 'static>(state: RouteState) -> Router<S> {
    Router::new()
        .route("/realtime/stats", get(stats::stats))
        .route("/realtime/config", get(config::config))
        .route("/realtime/stream", get(stream::stream))
        .route("/realtime/ws", get(ws::ws))
        .route("/realtime/history", get(history_route::history_route))
        .route("/realtime/events.csv", get(csv::events_csv))
        .route("/realtime/report", get(report::report))
        .route("/realtime/advice", get(report::advice))
        .merge(page::router())
        // Extractor rejections (a query that is not UTF-8, ...) answer JSON too.
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// `GET /metrics` (documented on [`Realtime::metrics_routes`](crate::Realtime::metrics_routes)).
#[cfg(feature = "prometheus")]
pub(crate) fn metrics<S: Clone + Send + Sync + 'static>(
    metrics: Arc<crate::metrics::Metrics>,
) -> Router<S> {
    Router::new()
        .route("/metrics", get(crate::metrics::metrics_handler))
        .with_state(metrics)
}
