//! Request handlers.

use super::{signed, ApiError, AppState, Caller, JsonBody};
use crate::auth::SignatureError;
use crate::config::validate_name;
// One item per `use`: the import-cycle check (shared/tools/import_cycles.py) resolves the bare
// `crate::pool` of a braced `use` to `RunningServer::pool`, a false api -> server edge.
use crate::pool::BorrowOptions;
use crate::pool::BorrowOutcome;
use crate::pool::Closed;
use crate::pool::ClosedBorrow;
use crate::pool::Owned;
use crate::pool::PoolError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
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
    /// Extra field, with leases on: when the borrow expires unless renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
}

/// `POST /licenses/return` and `POST /licenses/heartbeat` body. `user`, when sent, must be the
/// borrowing user (403 otherwise).
#[derive(Debug, Deserialize)]
pub struct ReturnRequest {
    id: String,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Serialize)]
struct HeartbeatResponse {
    status: &'static str,
    id: String,
    /// When the lease now ends (`null` when leases are off).
    lease_expires_at: Option<String>,
}

/// `GET /version` answer, as the original's.
#[derive(Debug, Serialize)]
pub struct VersionResponse {
    version: &'static str,
}

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug, Serialize)]
struct ReturnResponse {
    status: &'static str,
    tool: String,
}

#[derive(Debug, Deserialize)]
pub struct UserFilter {
    user: Option<String>,
}

pub(super) fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    validate_name(value).map_err(|why| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("`{field}` {why}."),
        )
    })
}

pub(super) fn pool_error(e: PoolError) -> ApiError {
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

pub(super) fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text())
}

/// Empty filter values mean "no filter", as in the original (`?user=`).
pub(super) fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// `Idempotency-Key`: absent, or 1..=255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_IDEMPOTENCY_KEY
        || !bytes.iter().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "`Idempotency-Key` must be 1 to 255 visible ASCII characters.",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// A user-restricted API key names a user it may not act as.
pub(super) fn forbidden_user() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden_user",
        "This API key may not act for that user.",
    )
}

/// The replay of a borrow no longer held: 409, saying how and when it ended (the JSON error
/// shape plus `id`, `state` and `returned_at`); nothing new was borrowed.
fn replayed_closed(c: ClosedBorrow) -> Response {
    let state = c.closed.as_str();
    let (code, how) = match c.closed {
        Closed::Returned => ("borrow_returned", "was returned"),
        Closed::Expired => ("borrow_expired", "expired (its lease was not renewed)"),
    };
    let when = c
        .returned_at
        .as_deref()
        .map_or(String::new(), |at| format!(" at {at}"));
    let detail = format!(
        "The borrow {} made with this Idempotency-Key {how}{when}: it is no longer held and \
         nothing new was borrowed. Send a new Idempotency-Key to borrow again.",
        c.borrow.id
    );
    let body = serde_json::json!({
        "error": code,
        "detail": detail,
        "id": c.borrow.id,
        "tool": c.borrow.tool,
        "user": c.borrow.user,
        "state": state,
        "returned_at": c.returned_at,
    });
    (
        StatusCode::CONFLICT,
        [("idempotent-replayed", HeaderValue::from_static("true"))],
        Json(body),
    )
        .into_response()
}

fn not_owner() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "not_owner",
        "This borrow belongs to another user or tenant.",
    )
}

fn unknown_borrow() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_borrow",
        "Borrow record not found (unknown id, or already returned).",
    )
}

fn borrow_body(b: crate::pool::Borrow) -> BorrowResponse {
    BorrowResponse {
        id: b.id,
        tool: b.tool,
        user: b.user,
        borrowed_at: b.borrowed_at,
        overage: b.overage,
        lease_expires_at: b.lease_expires_at,
    }
}

pub async fn borrow(
    State(state): State<AppState>,
    caller: Result<Caller, Response>,
    headers: HeaderMap,
    body: Result<JsonBody<BorrowRequest>, ApiError>,
) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let JsonBody(req) = match body {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = check_name("tool", &req.tool).and_then(|_| check_name("user", &req.user)) {
        return e.into_response();
    }
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    if !caller.may_act_as(&req.user) {
        return forbidden_user().into_response();
    }
    // The signature is checked here (HMAC, clock); whether it is a replay is decided with the
    // borrow itself, so the capacity answer and idempotent retries come first (see signed.rs).
    let replay = match signed::replay_claim(
        &state,
        &headers,
        &req.tool,
        &req.user,
        &caller,
        key.as_deref(),
    )
    .await
    {
        Ok(claim) => claim,
        Err(refusal) => return refusal,
    };
    let options = BorrowOptions {
        tenant: caller.tenant_name(),
        idempotency_key: key,
        replay,
    };
    match state.pool.borrow_with(&req.tool, &req.user, options).await {
        Ok(BorrowOutcome::Granted(b)) => {
            tracing::debug!(tool = %b.tool, user = %b.user, id = %b.id, overage = b.overage, "borrow");
            let event = Event::borrow(b.tool.clone(), b.user.clone())
                .overage(b.overage)
                .borrow_id(b.id.clone());
            (event, Json(borrow_body(b))).into_response()
        }
        Ok(BorrowOutcome::Replayed(b)) => {
            tracing::debug!(id = %b.id, "idempotent borrow replayed");
            (
                [("idempotent-replayed", HeaderValue::from_static("true"))],
                Json(borrow_body(b)),
            )
                .into_response()
        }
        Ok(BorrowOutcome::ReplayedClosed(closed)) => {
            tracing::debug!(id = %closed.borrow.id, state = closed.closed.as_str(), "idempotent borrow replayed, no longer held");
            replayed_closed(closed)
        }
        Ok(BorrowOutcome::KeyConflict) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different borrow request in the last 24 hours.",
        )
        .into_response(),
        Ok(BorrowOutcome::SignatureReplayed) => signed::signature_error(&SignatureError::Replayed),
        Ok(BorrowOutcome::ReplayMemoryFull) => signed::signature_error(&SignatureError::Busy),
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

/// The borrow id and the owner a return or heartbeat must match, or the refusal to send.
fn borrow_ref(
    caller: Result<Caller, Response>,
    body: Result<JsonBody<ReturnRequest>, ApiError>,
) -> Result<(String, crate::pool::Owner), Box<Response>> {
    let refuse = |e: ApiError| Box::new(e.into_response());
    let caller = caller.map_err(Box::new)?;
    let JsonBody(req) = body.map_err(refuse)?;
    check_name("id", &req.id).map_err(refuse)?;
    if let Some(user) = &req.user {
        check_name("user", user).map_err(refuse)?;
        if !caller.may_act_as(user) {
            return Err(refuse(forbidden_user()));
        }
    }
    // A key limited to some users touches only their borrows (403 `not_owner` otherwise).
    Ok((req.id, caller.owner(req.user)))
}

pub async fn return_license(
    State(state): State<AppState>,
    caller: Result<Caller, Response>,
    body: Result<JsonBody<ReturnRequest>, ApiError>,
) -> Response {
    let (id, owner) = match borrow_ref(caller, body) {
        Ok(r) => r,
        Err(refusal) => return *refusal,
    };
    match state.pool.return_as(&id, owner).await {
        Ok(Owned::Done(ret)) => {
            tracing::debug!(tool = %ret.tool, user = %ret.user, id = %id, "return");
            let event = Event::returned(ret.tool.clone(), ret.user).borrow_id(id);
            let body = ReturnResponse {
                status: "ok",
                tool: ret.tool,
            };
            (event, Json(body)).into_response()
        }
        Ok(Owned::NotFound) => unknown_borrow().into_response(),
        Ok(Owned::NotOwner) => not_owner().into_response(),
        Err(e) => pool_error(e).into_response(),
    }
}

pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Result<Caller, Response>,
    body: Result<JsonBody<ReturnRequest>, ApiError>,
) -> Response {
    let (id, owner) = match borrow_ref(caller, body) {
        Ok(r) => r,
        Err(refusal) => return *refusal,
    };
    match state.pool.heartbeat(&id, owner).await {
        Ok(Owned::Done(lease_expires_at)) => Json(HeartbeatResponse {
            status: "ok",
            id,
            lease_expires_at,
        })
        .into_response(),
        Ok(Owned::NotFound) => unknown_borrow().into_response(),
        Ok(Owned::NotOwner) => not_owner().into_response(),
        Err(e) => pool_error(e).into_response(),
    }
}

pub async fn version() -> Json<VersionResponse> {
    Json(VersionResponse {
        version: env!("CARGO_PKG_VERSION"),
    })
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
    caller: Result<Caller, Response>,
    query: Result<Query<UserFilter>, QueryRejection>,
) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let Query(filter) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e).into_response(),
    };
    // With API keys a caller only ever sees its own tenant's borrows, of the users its key may
    // act as.
    let user = non_empty(filter.user);
    if user.as_deref().is_some_and(|u| !caller.may_act_as(u)) {
        return forbidden_user().into_response();
    }
    match state.pool.open_borrows(caller.owner(user)).await {
        Ok(list) => Json(list).into_response(),
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
