//! HTTP golden signals over real HTTP: per route template (never per raw path), method and
//! status class, in `/realtime/stats` and as the OpenTelemetry `http.server.request.duration`
//! histogram in `/metrics`; off unless the layer asks for them.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use realtime_layer::Realtime;
use serde_json::Value;

mod common;
use common::{get_json, metrics_text, serve};

fn app(realtime: &Realtime, http_metrics: bool) -> Router {
    let layer = if http_metrics {
        realtime.layer().http_metrics()
    } else {
        realtime.layer()
    };
    Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route(
            "/items",
            axum::routing::post(|| async { StatusCode::CREATED }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        // A fallback set before the layer is measured too, as `(unmatched)`.
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(layer)
        // Not measured: merged after the layer.
        .merge(realtime.routes())
        .merge(realtime.metrics_routes())
}

fn route<'a>(stats: &'a Value, route: &str, method: &str) -> &'a Value {
    stats["http"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == route && r["method"] == method)
        .unwrap_or_else(|| panic!("no {method} {route} in {}", stats["http"]))
}

#[tokio::test]
async fn golden_signals_per_route_template_with_bounded_labels() {
    let realtime = Realtime::builder().build().unwrap();
    let addr = serve(app(&realtime, true)).await;
    let http = reqwest::Client::new();
    // 50 distinct paths of one route, 2 creations, 3 server errors, 5 paths matching no route.
    for i in 0..50 {
        let r = http
            .get(format!("http://{addr}/items/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..2 {
        let r = http
            .post(format!("http://{addr}/items"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    for _ in 0..3 {
        let r = http
            .get(format!("http://{addr}/fail"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
    }
    for i in 0..5 {
        let r = http
            .get(format!("http://{addr}/nope/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }

    let (status, stats) = get_json(addr, "/realtime/stats").await;
    assert_eq!(status, 200);
    // One entry per (template, method): 60 requests over 54 distinct paths make 4 entries.
    assert_eq!(
        stats["http"].as_array().unwrap().len(),
        4,
        "{}",
        stats["http"]
    );
    let items = route(&stats, "/items/{id}", "GET");
    assert_eq!(
        (&items["requests"], &items["server_errors"]),
        (&50.into(), &0.into())
    );
    let p50 = items["p50_seconds"].as_f64().unwrap();
    let p99 = items["p99_seconds"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99 && p99 <= 10.0, "{items}");
    assert_eq!(route(&stats, "/items", "POST")["requests"], 2);
    let fail = route(&stats, "/fail", "GET");
    assert_eq!(
        (&fail["requests"], &fail["server_errors"]),
        (&3.into(), &3.into())
    );
    let unmatched = route(&stats, "(unmatched)", "GET");
    assert_eq!(
        (&unmatched["requests"], &unmatched["client_errors"]),
        (&5.into(), &5.into())
    );

    let text = metrics_text(addr).await;
    let count = |route: &str, method: &str, status: &str| -> Option<f64> {
        text.lines()
            .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
            .find(|l| {
                l.contains(&format!("http_route=\"{route}\""))
                    && l.contains(&format!("http_request_method=\"{method}\""))
                    && l.contains(&format!("http_response_status_code=\"{status}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    assert_eq!(count("/items/{id}", "GET", "200"), Some(50.0), "{text}");
    assert_eq!(count("/items", "POST", "201"), Some(2.0));
    assert_eq!(count("/fail", "GET", "500"), Some(3.0));
    assert_eq!(count("(unmatched)", "GET", "404"), Some(5.0));
    assert!(!text.contains("/items/7"), "raw paths never become labels");
    // The dashboard's own routes (merged after the layer) are not measured.
    assert!(!text.contains("http_route=\"/realtime/stats\""));
    realtime.shutdown();
}

#[tokio::test]
async fn off_by_default() {
    let realtime = Realtime::builder().build().unwrap();
    let addr = serve(app(&realtime, false)).await;
    reqwest::get(format!("http://{addr}/items/1"))
        .await
        .unwrap();
    let (_, stats) = get_json(addr, "/realtime/stats").await;
    assert!(stats.get("http").is_none(), "{stats}");
    assert!(!metrics_text(addr)
        .await
        .contains("http_server_request_duration"));
    realtime.shutdown();
}
