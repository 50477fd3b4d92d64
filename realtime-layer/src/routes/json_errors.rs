//! JSON for the errors axum answers by itself (extractor rejections such as a path segment that is
//! not UTF-8, a malformed query string, a wrong method): every error answer has the one shape
//! `{"error", "detail"}`.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Most bytes of a plain-text error body kept as the JSON `detail`.
const MAX_DETAIL: usize = 1024;

/// Turns an error response (4xx/5xx) that is not JSON into `{"error", "detail"}` JSON with the
/// same status and headers; other responses pass untouched. The `detail` is the original text
/// (e.g. axum's "Invalid URL: ..."), or the status's reason when there is none.
///
/// The realtime routes use it already; apply it to a whole app with
/// `axum::middleware::map_response`:
///
/// ```
/// use axum::{middleware::map_response, routing::get, Router};
///
/// let app: Router = Router::new()
///     .route("/items/{id}", get(|axum::extract::Path(id): axum::extract::Path<u32>| async move {
///         id.to_string()
///     }))
///     .layer(map_response(realtime_layer::json_errors));
/// # let _ = app;
/// ```
///
/// Errors hyper answers before a request reaches the app (a malformed request line, headers over
/// its size limit) cannot be shaped here.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_DETAIL * 4)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        truncate(text)
    };
    let json = ApiError::new(status, code(status), detail).into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        json_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    Response::from_parts(parts, Body::new(json_body))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"))
}

/// The machine code of an error status: its reason in snake case (`method_not_allowed`).
fn code(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => reason
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect(),
        None => format!("http_{}", status.as_u16()),
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_DETAIL {
        let mut end = MAX_DETAIL;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn text_errors_become_json() {
        let plain = (StatusCode::BAD_REQUEST, "Invalid URL: bad bytes").into_response();
        let json = json_errors(plain).await;
        assert_eq!(json.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(json.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "bad_request");
        assert_eq!(v["detail"], "Invalid URL: bad bytes");

        let empty = StatusCode::METHOD_NOT_ALLOWED.into_response();
        let body = axum::body::to_bytes(json_errors(empty).await.into_body(), 4096)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "method_not_allowed");
        assert_eq!(v["detail"], "Method Not Allowed");

        let ok = (StatusCode::OK, "fine").into_response();
        assert_eq!(
            json_errors(ok).await.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }
}
