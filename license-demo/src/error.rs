//! The JSON error answer of the license server (`{"error", "detail"}`), shared by the API
//! handlers and the access checks in front of them.
//!
//! It sits at the bottom of the crate (it needs only axum) so that both `auth` and `api` can
//! answer errors without depending on each other.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An error answer: a status plus `{"error": code, "detail": sentence}`.
///
/// `detail` is the key FastAPI used, so the original's clients keep showing the message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short machine code, e.g. `exhausted`.
    pub code: &'static str,
    /// Human sentence.
    pub detail: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    detail: &'a str,
}

impl ApiError {
    /// Builds an error answer.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            detail: &self.detail,
        };
        // The code also names the refusal for the refusal counters (`/metrics`, the dashboard).
        let refusal = realtime_layer::Refusal::new(self.code);
        (self.status, refusal, Json(body)).into_response()
    }
}
