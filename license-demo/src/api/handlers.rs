//! Request handlers.

use super::{ApiError, AppState, JsonBody};
use crate::config::validate_name;
use crate::pool::{BorrowOutcome, PoolError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use realtime_layer::Event;
use serde::{Deserialize, Serialize};

/// `POST /licenses/borrow` body. Unknown fields are ignored (old clients send extras).
#[derive(Debug, Deserialize)]
pub struct BorrowRequest {
    tool: String,
    user: String,
}

/// `POST /licenses/borrow` answer.
#[derive(Debug, Serialize)]
pub struct BorrowResponse {
    id: String,
    tool: String,
    user: String,
    borrowed_at: String,
    /// Extra field (old clients ignore it): whether this borrow was charged as overage.
    overage: bool,
}

/// `POST /licenses/return` body.
#[derive(Debug, Deserialize)]
pub struct ReturnRequest {
    id: String,
}

#[derive(Debug, Serialize)]
struct ReturnResponse {
    status: &'static str,
    tool: String,
}

#[derive(Debug, Deserialize)]
pub struct UserFilter {
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ToolFilter {
    tool: Option<String>,
}

fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    validate_name(value).map_err(|why| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("`{field}` {why}."),
        )
    })
}

fn pool_error(e: PoolError) -> ApiError {
    match e {
        PoolError::UnknownTool => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_tool", "Tool not found.")
        }
        PoolError::Storage(why) => {
            tracing::error!(%why, "storage error");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "The license database failed; the request was not applied.",
            )
        }
        PoolError::Closed => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "The server is shutting down.",
        ),
    }
}

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text())
}

/// Empty filter values mean "no filter", as in the original (`?user=`).
fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

pub async fn borrow(
    State(state): State<AppState>,
    body: Result<JsonBody<BorrowRequest>, ApiError>,
) -> Response {
    let JsonBody(req) = match body {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = check_name("tool", &req.tool).and_then(|_| check_name("user", &req.user)) {
        return e.into_response();
    }
    match state.pool.borrow(&req.tool, &req.user).await {
        Ok(BorrowOutcome::Granted(b)) => {
            tracing::debug!(tool = %b.tool, user = %b.user, id = %b.id, overage = b.overage, "borrow");
            let event = Event::borrow(b.tool.clone(), b.user.clone())
                .overage(b.overage)
                .borrow_id(b.id.clone());
            let body = BorrowResponse {
                id: b.id,
                tool: b.tool,
                user: b.user,
                borrowed_at: b.borrowed_at,
                overage: b.overage,
            };
            (event, Json(body)).into_response()
        }
        Ok(BorrowOutcome::Denied(denial)) => {
            tracing::debug!(tool = %req.tool, user = %req.user, reason = denial.code(), "borrow denied");
            let detail = match denial {
                crate::pool::Denial::Exhausted => {
                    format!("No licenses available for {}: all are borrowed.", req.tool)
                }
                crate::pool::Denial::MaxOverage => format!(
                    "No licenses available for {}: the overage limit is reached.",
                    req.tool
                ),
            };
            let event = Event::failure(req.tool, req.user, denial.code());
            (
                event,
                ApiError::new(StatusCode::CONFLICT, denial.code(), detail),
            )
                .into_response()
        }
        // Unknown tools are a client mistake, not a license denial: they are not recorded as
        // realtime failures, so typos cannot invent resources on the dashboard.
        Err(e) => pool_error(e).into_response(),
    }
}

pub async fn return_license(
    State(state): State<AppState>,
    body: Result<JsonBody<ReturnRequest>, ApiError>,
) -> Response {
    let JsonBody(req) = match body {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = check_name("id", &req.id) {
        return e.into_response();
    }
    match state.pool.return_license(&req.id).await {
        Ok(Some(ret)) => {
            tracing::debug!(tool = %ret.tool, user = %ret.user, id = %req.id, "return");
            let event = Event::returned(ret.tool.clone(), ret.user).borrow_id(req.id);
            let body = ReturnResponse {
                status: "ok",
                tool: ret.tool,
            };
            (event, Json(body)).into_response()
        }
        Ok(None) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_borrow",
            "Borrow record not found (unknown id, or already returned).",
        )
        .into_response(),
        Err(e) => pool_error(e).into_response(),
    }
}

pub async fn all_status(State(state): State<AppState>) -> Response {
    Json(state.pool.status()).into_response()
}

pub async fn tool_status(State(state): State<AppState>, Path(tool): Path<String>) -> Response {
    match state.pool.tool_status(&tool) {
        Some(s) => Json(s).into_response(),
        None => pool_error(PoolError::UnknownTool).into_response(),
    }
}

pub async fn open_borrows(
    State(state): State<AppState>,
    query: Result<Query<UserFilter>, QueryRejection>,
) -> Response {
    let Query(filter) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e).into_response(),
    };
    match state.pool.open_borrows(non_empty(filter.user)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => pool_error(e).into_response(),
    }
}

#[derive(Serialize)]
struct ChargesResponse {
    charges: Vec<crate::pool::OverageCharge>,
}

pub async fn overage_charges(
    State(state): State<AppState>,
    query: Result<Query<ToolFilter>, QueryRejection>,
) -> Response {
    let Query(filter) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e).into_response(),
    };
    match state.pool.overage_charges(non_empty(filter.tool)).await {
        Ok(charges) => Json(ChargesResponse { charges }).into_response(),
        Err(e) => pool_error(e).into_response(),
    }
}

/// JSON 404 for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such route.")
}

/// JSON 405 for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This route does not accept that method.",
    )
}
