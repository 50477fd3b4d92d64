//! The HTTP API (wire-compatible with the Python original's clients).
//!
//! Handlers put realtime events (borrow, return, failure) in the response extensions; the
//! `RealtimeLayer` that wraps this router picks them up, so no handler talks to the dashboard.

mod body;
mod caller;
mod charges;
mod handlers;
mod signed;

pub use crate::error::ApiError;
pub use body::{JsonBody, MAX_BODY_BYTES};
pub use caller::Caller;
pub use charges::DEFAULT_CHARGES_PAGE;

use crate::auth::{ApiKeys, RedisReplays, SignatureVerifier};
use crate::pool::LicensePool;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The license state.
    pub pool: LicensePool,
    /// API keys, when the borrow and charge routes require them.
    pub keys: Option<Arc<ApiKeys>>,
    /// Signature checks, when borrows must be signed.
    pub signatures: Option<Arc<SignatureVerifier>>,
    /// The replay memory shared by a cluster's replicas (cluster mode with signatures).
    pub replays: Option<Arc<RedisReplays>>,
}

impl AppState {
    /// State without API keys or signatures (the default server).
    pub fn open(pool: LicensePool) -> Self {
        AppState {
            pool,
            keys: None,
            signatures: None,
            replays: None,
        }
    }
}

/// The license routes alone (no realtime layer, no dashboard), with their state applied.
pub fn license_routes(state: AppState) -> Router {
    Router::new()
        .route("/version", get(handlers::version))
        .route("/licenses/borrow", post(handlers::borrow))
        .route("/licenses/return", post(handlers::return_license))
        .route("/licenses/heartbeat", post(handlers::heartbeat))
        .route("/licenses/status", get(handlers::all_status))
        .route("/licenses/{tool}/status", get(handlers::tool_status))
        .route("/borrows", get(handlers::open_borrows))
        .route("/overage-charges", get(charges::overage_charges))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

pub use handlers::{method_not_allowed, not_found};
