//! The one error shape of every route: `{"error": "<code>", "detail": "<sentence>"}`, and the
//! [`Refusal`] marker that names why a request was refused (for the refusal counters).

use axum::http::StatusCode;
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use axum::Json;
use serde::Serialize;
use std::borrow::Cow;
use std::convert::Infallible;

/// Why a request was refused: a short machine code (`signature_invalid`, `exhausted`, ...) put in
/// a response's extensions, where the refusal counters
/// ([`Realtime::refusal_layer`](crate::Realtime::refusal_layer)) read it. [`ApiError`] answers
/// carry one with their `error` code; return it as a response part from your own handlers:
///
/// ```
/// use axum::http::StatusCode;
/// use realtime_layer::Refusal;
///
/// async fn borrow() -> (StatusCode, Refusal, &'static str) {
///     (StatusCode::TOO_MANY_REQUESTS, Refusal::new("rate_limited"), "slow down")
/// }
/// # let _ = borrow;
/// ```
///
/// A refused response without one is counted with the reason `http_<status>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(Cow<'static, str>);

impl Refusal {
    /// A refusal for `reason` (a string literal costs no allocation).
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Refusal(reason.into())
    }

    /// The reason code.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl IntoResponseParts for Refusal {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

/// An error answer: a status and a JSON body `{"error", "detail"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// Short machine code, e.g. `invalid_window`.
    pub error: String,
    /// Human sentence.
    pub detail: String,
}

impl ApiError {
    /// An error with `status`, machine `code` and human `detail`.
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error: code.into(),
            detail: detail.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 404 Not Found.
    pub fn not_found(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let refusal = Refusal::new(self.error.clone());
        (self.status, refusal, Json(&self)).into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status, self.detail)
    }
}

impl std::error::Error for ApiError {}
