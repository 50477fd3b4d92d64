//! `GET /realtime` (the dashboard page) and `GET /realtime/assets/{*path}`, embedded from `static/`.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};

// `static` in the crate is a symlink to the workspace's static/ (where the page is edited);
// `cargo package` copies the files in, so the published crate embeds them the same way.
static STATIC: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/static");

/// Strict policy: no inline script or style, same-origin connections only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "md" | "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A strong validator for an embedded file: FNV-1a over its bytes, plus its length.
fn etag(contents: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in contents {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}-{:x}\"", contents.len())
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = STATIC.get_file(path) else {
        return ApiError::not_found("not_found", format!("no dashboard asset {path:?}"))
            .into_response();
    };
    let tag = etag(file.contents());
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = file.contents().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        );
        response
    };
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, tag);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Revalidate every time (cheap with the ETag): a new binary must never show a stale page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `/realtime/` would break the page's relative URLs (`realtime/stream` would resolve to
/// `/realtime/realtime/stream`): send it to `../realtime`, which works under any prefix.
async fn trailing_slash() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "../realtime")],
    )
        .into_response()
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path.split('/').any(|part| part == ".." || part.is_empty()) {
        return ApiError::bad_request(
            "invalid_path",
            "asset paths may not contain empty or '..' segments",
        )
        .into_response();
    }
    serve(&path, &headers)
}

pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/realtime", get(index))
        .route("/realtime/", get(trailing_slash))
        .route("/realtime/assets/{*path}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_with(path: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn page_has_csp_and_revalidates_with_etag() {
        let first = get_with("/realtime", None).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(
            first.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            first.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let tag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = get_with("/realtime", Some(&tag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], tag.as_str());
        let other = get_with("/realtime", Some("\"nope\"")).await;
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn assets_are_embedded_and_paths_checked() {
        for (path, ty) in [
            ("/realtime/assets/app.js", "text/javascript; charset=utf-8"),
            ("/realtime/assets/app.css", "text/css; charset=utf-8"),
            (
                "/realtime/assets/vendor/chart.umd.min.js",
                "text/javascript; charset=utf-8",
            ),
        ] {
            let r = get_with(path, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], ty, "{path}");
        }
        assert_eq!(
            get_with("/realtime/assets/nope.js", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get_with("/realtime/assets/vendor/../app.js", None)
                .await
                .status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn trailing_slash_redirects_relatively() {
        let r = get_with("/realtime/", None).await;
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "../realtime");
    }

    #[test]
    fn page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(STATIC.get_file("index.html").unwrap().contents()).unwrap();
        assert!(!html.contains("style="), "inline style attribute");
        assert!(!html.contains("<style"), "inline stylesheet");
        for script in html.split("<script").skip(1) {
            assert!(
                script.trim_start().starts_with("src="),
                "inline script: <script{script}"
            );
        }
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "external URL in page"
        );
    }
}
