//! `GET /overage-charges`: the recorded overage charges, newest first, one page at a time.
//!
//! With API keys it needs a key and lists only the caller's tenant's charges, of the users the
//! key may act as (like `/borrows`). Pages are at most [`MAX_CHARGES_PAGE`] charges (`limit`,
//! default 100); `next_cursor` (opaque, `null` on the last page) asks for the next one. The
//! query runs on a read-only connection, outside the writer's transaction: a long list never
//! delays a borrow.

use super::handlers::{bad_query, check_name, forbidden_user, non_empty, pool_error};
use super::{ApiError, AppState, Caller};
use crate::pool::ChargesQuery;
use crate::pool::OverageCharge;
use crate::pool::MAX_CHARGES_PAGE;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// The page size without `limit`.
pub const DEFAULT_CHARGES_PAGE: usize = 100;

/// `GET /overage-charges` query.
#[derive(Debug, Deserialize)]
pub struct ChargesParams {
    tool: Option<String>,
    user: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ChargesResponse {
    charges: Vec<OverageCharge>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next_cursor: Option<String>,
}

fn invalid(code: &'static str, detail: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, detail)
}

/// `limit`: 1..=1000, default 100.
fn limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(DEFAULT_CHARGES_PAGE);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CHARGES_PAGE).contains(&n) => Ok(n),
        _ => Err(invalid(
            "invalid_limit",
            format!("`limit` must be an integer from 1 to {MAX_CHARGES_PAGE}."),
        )),
    }
}

/// `cursor`: a previous page's `next_cursor`.
fn cursor(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(invalid(
            "invalid_cursor",
            "`cursor` must be the `next_cursor` of a previous page.".into(),
        )),
    }
}

pub async fn overage_charges(
    State(state): State<AppState>,
    caller: Result<Caller, Response>,
    query: Result<Query<ChargesParams>, QueryRejection>,
) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let Query(params) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e).into_response(),
    };
    let user = non_empty(params.user);
    if let Some(user) = &user {
        if let Err(e) = check_name("user", user) {
            return e.into_response();
        }
        if !caller.may_act_as(user) {
            return forbidden_user().into_response();
        }
    }
    let (limit, before) = match (
        limit(params.limit.as_deref()),
        cursor(params.cursor.as_deref()),
    ) {
        (Ok(limit), Ok(before)) => (limit, before),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let query = ChargesQuery {
        tool: non_empty(params.tool),
        owner: caller.owner(user),
        limit,
        before,
    };
    match state.pool.overage_charges(query).await {
        Ok(page) => Json(ChargesResponse {
            charges: page.charges,
            next_cursor: page.next.map(|seq| seq.to_string()),
        })
        .into_response(),
        Err(e) => pool_error(e).into_response(),
    }
}
