//! The HTTP API (wire-compatible with the Python original's clients).
//!
//! Handlers put realtime events (borrow, return, failure) in the response extensions; the
//! `RealtimeLayer` that wraps this router picks them up, so no handler talks to the dashboard.

mod error;
mod handlers;

pub use error::{ApiError, JsonBody};

use crate::pool::LicensePool;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

/// Largest accepted request body; bigger bodies get 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The license state.
    pub pool: LicensePool,
}

/// The license routes alone (no realtime layer, no dashboard), with their state applied.
pub fn license_routes(pool: LicensePool) -> Router {
    Router::new()
        .route("/licenses/borrow", post(handlers::borrow))
        .route("/licenses/return", post(handlers::return_license))
        .route("/licenses/status", get(handlers::all_status))
        .route("/licenses/{tool}/status", get(handlers::tool_status))
        .route("/borrows", get(handlers::open_borrows))
        .route("/overage-charges", get(handlers::overage_charges))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(AppState { pool })
}

pub use handlers::{method_not_allowed, not_found};
