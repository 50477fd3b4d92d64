//! Refused requests counted by route template and reason (the refusal layer), the app's own
//! counters, and strict query decoding, over real HTTP: `/realtime/stats` (`refusals`,
//! `counters`) and `/metrics` (`realtime_refusals_total`, the counters' `_total`).

use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use realtime_layer::{ApiError, Realtime, Refusal, MAX_REFUSAL_SERIES};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod common;
use common::{get_json, metrics_text, serve};

/// The app: a refusal with a reason, one through `ApiError`, one without a reason, a 404 (not a
/// refusal), a middleware refusing a header (applied before the refusal layer, so counted).
fn app(realtime: &Realtime) -> Router {
    Router::new()
        .route(
            "/borrow/{tool}",
            post(|| async { (StatusCode::CONFLICT, Refusal::new("exhausted"), "all out") }),
        )
        .route(
            "/keys",
            get(|| async { ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "no key") }),
        )
        .route("/plain", get(|| async { StatusCode::TOO_MANY_REQUESTS }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .fallback(|| async { StatusCode::FORBIDDEN })
        .layer(from_fn(
            |req: axum::extract::Request, next: axum::middleware::Next| async move {
                if req.headers().contains_key("x-evil") {
                    return ApiError::new(StatusCode::MISDIRECTED_REQUEST, "misdirected", "no")
                        .into_response();
                }
                next.run(req).await
            },
        ))
        .layer(realtime.refusal_layer())
        .merge(realtime.routes())
        .merge(realtime.metrics_routes())
}

fn count(stats: &Value, route: &str, reason: &str, status: u16) -> u64 {
    stats["refusals"]
        .as_array()
        .unwrap_or_else(|| panic!("no refusals in {stats}"))
        .iter()
        .find(|r| r["route"] == route && r["reason"] == reason && r["status"] == status)
        .and_then(|r| r["count"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn refusals_are_counted_by_route_template_and_reason() {
    let repeats = Arc::new(AtomicU64::new(0));
    let read = repeats.clone();
    let realtime = Realtime::builder()
        .counter("app.signature.repeats", "Repeats accepted", move || {
            read.load(Ordering::Relaxed)
        })
        .build()
        .unwrap();
    let addr = serve(app(&realtime)).await;
    let before = get_json(addr, "/realtime/stats").await.1;
    assert_eq!(
        before["refusals"],
        serde_json::json!([]),
        "a layer exists: listed, empty"
    );
    let http = reqwest::Client::new();
    for tool in ["a", "b", "c"] {
        let r = http
            .post(format!("http://{addr}/borrow/{tool}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
    }
    for path in ["/keys", "/plain", "/missing", "/nowhere"] {
        http.get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
    }
    let r = http
        .get(format!("http://{addr}/keys"))
        .header("x-evil", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    repeats.store(4, Ordering::Relaxed);

    let (code, stats) = get_json(addr, "/realtime/stats").await;
    assert_eq!(code, 200);
    // Three raw paths, one route template.
    assert_eq!(count(&stats, "/borrow/{tool}", "exhausted", 409), 3);
    assert_eq!(count(&stats, "/keys", "unauthorized", 401), 1);
    assert_eq!(count(&stats, "/keys", "misdirected", 421), 1);
    assert_eq!(count(&stats, "/plain", "http_429", 429), 1);
    // The fallback has no template; a 404 is not a refusal.
    assert_eq!(count(&stats, "(unmatched)", "http_403", 403), 1);
    assert_eq!(stats["refusals"].as_array().unwrap().len(), 5, "{stats}");
    assert_eq!(stats["refusals"][0]["reason"], "exhausted", "most first");
    assert_eq!(stats["counters"]["app.signature.repeats"], 4);
    assert_eq!(realtime.counters()["app.signature.repeats"], 4);

    let text = metrics_text(addr).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("realtime_refusals_total{") && l.contains("reason=\"exhausted\""))
        .unwrap_or_else(|| panic!("no refusal series in {text}"));
    assert!(line.contains("http_route=\"/borrow/{tool}\""), "{line}");
    assert!(line.contains("http_response_status_code=\"409\""), "{line}");
    assert!(line.ends_with(" 3"), "{line}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("app_signature_repeats_total") && l.ends_with(" 4")),
        "{text}"
    );
    assert!(realtime.refusals().unwrap().len() <= MAX_REFUSAL_SERIES);
}

#[tokio::test]
async fn without_a_refusal_layer_nothing_is_listed_and_bad_counter_names_fail() {
    let realtime = Realtime::builder().build().unwrap();
    let (_, stats) = get_json(serve(realtime.routes()).await, "/realtime/stats").await;
    assert!(stats.get("refusals").is_none(), "{stats}");
    assert!(stats.get("counters").is_none(), "{stats}");
    assert!(realtime.refusals().is_none());
    let bad = Realtime::builder()
        .counter("realtime.mine", "", || 0)
        .build();
    assert!(bad.is_err());
}

#[tokio::test]
async fn a_query_that_is_not_utf8_is_a_400_on_every_route() {
    let realtime = Realtime::builder().build().unwrap();
    let app = Router::new()
        .route("/borrows", get(|| async { "[]" }))
        .layer(from_fn(realtime_layer::strict_query))
        .merge(realtime.routes());
    let addr = serve(app).await;
    for path in [
        "/borrows?user=%FF",
        "/borrows?%C3%28=x",
        "/realtime/stats?user=%FF",
        "/realtime/stream?user=ab%FEcd",
        "/realtime/events.csv?resource=%80",
        "/realtime/history?user=%FF",
        "/realtime/ws?user=%FF",
    ] {
        let (code, body) = get_json(addr, path).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert_eq!(body["error"], "invalid_query", "{path}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("UTF-8"), "{body}");
    }
    // Valid UTF-8, encoded or not, and `+` as a space, pass.
    for path in [
        "/borrows?user=%C3%A9",
        "/borrows?user=a+b",
        "/realtime/stats?user=%C3%A9ve",
    ] {
        let (code, body) = get_json(addr, path).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
}
