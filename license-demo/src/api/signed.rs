//! The signature check of a borrow (`--require-signature`): the HMAC and the clock here, the
//! replay memory in cluster mode (Redis), and the replay key handed to the pool, which checks and
//! remembers it in the borrow's own transaction. So a correctly signed request gets the pool's
//! answer (a `409` when the tool is exhausted), and a retry with the same `Idempotency-Key` its
//! stored outcome, never a signature refusal.

use super::{AppState, Caller};
use crate::auth::replay::Claim;
use crate::auth::SignatureError;
use crate::error::ApiError;
// One item per `use` (see handlers.rs): the import-cycle check resolves a braced `crate::pool`.
use crate::pool::ReplayClaim;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The JSON refusal of a signature error (503 with `Retry-After` when the replay memory is full
/// or unreachable, 401 otherwise).
pub(super) fn signature_error(e: &SignatureError) -> Response {
    let status = match e {
        SignatureError::Busy | SignatureError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    };
    let mut response = ApiError::new(status, e.code(), e.to_string()).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Verifies the signature of a borrow of `tool` for `user` (when signatures are required) and,
/// in cluster mode, claims its replay key in Redis. `Ok(None)`: signatures are off.
pub(super) async fn replay_claim(
    state: &AppState,
    headers: &HeaderMap,
    tool: &str,
    user: &str,
    caller: &Caller,
    idempotency_key: Option<&str>,
) -> Result<Option<ReplayClaim>, Response> {
    let Some(verifier) = &state.signatures else {
        return Ok(None);
    };
    let signed = verifier
        .verify(headers, tool, user, caller.api_key.as_deref())
        .map_err(|e| signature_error(&e))?;
    let mut seen_elsewhere = false;
    if let Some(replays) = &state.replays {
        // The idempotency identity: a retry with it is not a replay.
        let identity = match idempotency_key {
            Some(key) => format!("{}\n{key}", caller.tenant_name().unwrap_or_default()),
            None => String::new(),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match replays
            .claim(&signed.replay_key, signed.expires_at, now, &identity)
            .await
        {
            Ok(Claim::New | Claim::Retry) => {}
            Ok(Claim::Seen) if signed.repeat_allowed => seen_elsewhere = true,
            Ok(Claim::Seen) => return Err(signature_error(&SignatureError::Replayed)),
            Err(e) => {
                tracing::warn!(error = %e, "replay check in Redis failed; signed borrow refused");
                return Err(signature_error(&SignatureError::Unavailable));
            }
        }
    }
    Ok(Some(ReplayClaim {
        key: signed.replay_key,
        expires_at: signed.expires_at,
        repeat_allowed: signed.repeat_allowed,
        seen_elsewhere,
    }))
}
