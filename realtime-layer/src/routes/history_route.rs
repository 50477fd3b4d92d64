//! `GET /realtime/history`: the handler. Windows within the live buffer answer from its seconds
//! (`history.rs`); longer ones, with a usage tier, across tiers (`history_tiers.rs`).

use super::history::{history, HistoryResponse, DEFAULT_WINDOW};
use super::params::{self, Params};
use super::RouteState;
use crate::error::ApiError;
use axum::extract::State;
use axum::Json;

pub(crate) async fn history_route(
    State(routes): State<RouteState>,
    Params(q): Params,
) -> Result<Json<HistoryResponse>, ApiError> {
    let core = &*routes.core;
    #[cfg(feature = "usage")]
    if let Some(usage) = &routes.usage {
        let retention = core.buffer.config().retention.as_secs();
        let max = super::history_tiers::retention(usage).max(retention);
        let window = params::window_up_to(&q, max, "the usage tier's retention", 1800)?;
        if window > retention {
            let scope = params::scope(&q, core)?;
            let filter = params::filter(&q, core, &scope)?;
            return super::history_tiers::route(
                routes.clone(),
                usage.clone(),
                scope,
                window,
                filter.resource,
            )
            .await
            .map(Json);
        }
    }
    let window = params::window(&q, core, DEFAULT_WINDOW)?;
    let scope = params::scope(&q, core)?;
    let filter = params::filter(&q, core, &scope)?;
    let end = core.buffer.clock().now_ms() / 1000;
    Ok(Json(history(
        core,
        &scope,
        window,
        end,
        filter.resource.as_deref(),
    )))
}
