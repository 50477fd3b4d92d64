//! The `/realtime` routes: mount them anywhere with `merge` or `nest`.

mod config;
mod csv;
mod error;
mod history;
mod json_errors;
mod page;
mod params;
mod stats;
mod stream;
mod ws;

pub use config::RANGES;
pub use error::ApiError;
pub use json_errors::json_errors;
pub use page::CONTENT_SECURITY_POLICY;
pub use stats::{StatsResponse, RECENT_EVENTS_LIMIT};

use crate::handle::Realtime;
use axum::routing::get;
use axum::Router;

impl Realtime {
    /// The dashboard routes, with absolute paths under `/realtime`:
    ///
    /// | route | what |
    /// |---|---|
    /// | `GET /realtime` | the dashboard page |
    /// | `GET /realtime/assets/{*path}` | its scripts, styles, vendored Chart.js |
    /// | `GET /realtime/config` | labels, ranges, retention for the page |
    /// | `GET /realtime/stats?window=S` | buffer facts, rates, resources, recent events (JSON) |
    /// | `GET /realtime/stream?resource=&user=` | live frames (Server-Sent Events) |
    /// | `GET /realtime/ws?resource=&user=` | the same frames over a WebSocket (JSON text messages) |
    /// | `GET /realtime/history?window=S&resource=` | downsampled chart series (JSON) |
    /// | `GET /realtime/events.csv?window=S&resource=&user=` | buffered events (CSV, streamed) |
    ///
    /// Merge them into an app (`app.merge(realtime.routes())`) or nest them under a prefix
    /// (`Router::new().nest("/admin", realtime.routes())` serves `/admin/realtime`); the page
    /// uses relative URLs, so both work.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/realtime/stats", get(stats::stats))
            .route("/realtime/config", get(config::config))
            .route("/realtime/stream", get(stream::stream))
            .route("/realtime/ws", get(ws::ws))
            .route("/realtime/history", get(history::history_route))
            .route("/realtime/events.csv", get(csv::events_csv))
            .merge(page::router())
            // Extractor rejections (a query that is not UTF-8, ...) answer JSON too.
            .layer(axum::middleware::map_response(json_errors))
            .with_state(self.clone())
    }

    /// `GET /metrics`: this instance's metrics in Prometheus text format (feature `prometheus`).
    #[cfg(feature = "prometheus")]
    pub fn metrics_routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/metrics", get(crate::metrics::metrics_handler))
            .with_state(self.clone())
    }
}
