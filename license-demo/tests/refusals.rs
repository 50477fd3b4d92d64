//! Refusals you can see, over real HTTP: every refused request (401, 403, 409, 413, 415, 421,
//! 422) counted in `/metrics` and `/realtime/stats` by route template and reason, the Host and
//! Origin checks' included; and a query value that is not UTF-8 answering 400 JSON on every
//! route, the license routes and the realtime ones alike.

mod common;

use common::{assert_error, start_secured};
use license_demo::auth::{ApiKeys, SecurityConfig};
use license_demo::config::{parse_api_keys_toml, ToolSpec};
use serde_json::{json, Value};
use std::sync::Arc;

const KEY: &str = "refusals-key-0123456789";

fn tools() -> Vec<ToolSpec> {
    vec![common::tool("One Seat", 1, 1, 0, 0.0)]
}

async fn secured() -> common::TestServer {
    let keys = format!("[keys.\"{KEY}\"]\ntenant = \"acme\"\nusers = [\"ann\"]\n");
    start_secured(
        tools(),
        SecurityConfig {
            api_keys: Some(Arc::new(ApiKeys::new(parse_api_keys_toml(&keys).unwrap()))),
            ..Default::default()
        },
    )
    .await
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_refusal_is_counted_by_route_and_reason() {
    let s = secured().await;
    let borrow = || s.client.post(s.url("/licenses/borrow")).bearer_auth(KEY);
    let body = json!({"tool": "One Seat", "user": "ann"});
    assert_eq!(send(borrow().json(&body)).await.0, 200);
    let (code, b) = send(borrow().json(&body)).await;
    assert_error(code, &b, 409, "exhausted");
    let (code, b) = send(s.client.post(s.url("/licenses/borrow")).json(&body)).await;
    assert_error(code, &b, 401, "unauthorized");
    let (code, b) = send(borrow().json(&json!({"tool": "One Seat", "user": "bob"}))).await;
    assert_error(code, &b, 403, "forbidden_user");
    let (code, b) = send(borrow().body("{}").header("content-type", "text/plain")).await;
    assert_error(code, &b, 415, "unsupported_media_type");
    let big = format!("{{\"tool\": \"{}\"}}", "x".repeat(20_000));
    let (code, b) = send(
        borrow()
            .body(big)
            .header("content-type", "application/json"),
    )
    .await;
    assert_error(code, &b, 413, "payload_too_large");
    let (code, b) = send(borrow().json(&json!({"tool": "", "user": "ann"}))).await;
    assert_error(code, &b, 422, "invalid_field");
    let (code, b) = send(borrow().json(&body).header("origin", "http://evil.example")).await;
    assert_error(code, &b, 403, "forbidden_origin");
    let (code, b) = send(
        s.client
            .get(s.url("/licenses/status"))
            .header("host", "evil.example:80"),
    )
    .await;
    assert_error(code, &b, 421, "misdirected_request");

    let (code, stats) = s.get("/realtime/stats").await;
    assert_eq!(code, 200);
    let rows = stats["refusals"].as_array().unwrap();
    let count = |route: &str, reason: &str, status: u16| {
        rows.iter()
            .find(|r| r["route"] == route && r["reason"] == reason && r["status"] == status)
            .and_then(|r| r["count"].as_u64())
            .unwrap_or_else(|| panic!("no {route} {reason} {status} in {stats}"))
    };
    for (reason, status) in [
        ("exhausted", 409),
        ("unauthorized", 401),
        ("forbidden_user", 403),
        ("unsupported_media_type", 415),
        ("payload_too_large", 413),
        ("invalid_field", 422),
        ("forbidden_origin", 403),
    ] {
        assert_eq!(count("/licenses/borrow", reason, status), 1, "{reason}");
    }
    assert_eq!(count("/licenses/status", "misdirected_request", 421), 1);
    assert_eq!(rows.len(), 8, "{stats}");

    let text = test_support::http::metrics_text(s.url("/metrics")).await;
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("realtime_refusals_total{"))
        .collect();
    assert_eq!(series.len(), 8, "{text}");
    assert!(
        series.iter().any(|l| l.contains("reason=\"exhausted\"")
            && l.contains("http_route=\"/licenses/borrow\"")
            && l.contains("http_response_status_code=\"409\"")
            && l.ends_with(" 1")),
        "{series:?}"
    );
    // No user name or raw value ever becomes a label.
    assert!(
        !text.contains("ann") && !text.contains("evil.example"),
        "{text}"
    );
}

#[tokio::test]
async fn a_query_value_that_is_not_utf8_is_a_400_on_every_route() {
    let s = secured().await;
    for path in [
        "/borrows?user=%FF",
        "/overage-charges?tool=%FF",
        "/licenses/status?x=%C3",
        "/realtime/stats?user=%FF",
        "/realtime/stream?user=%FF",
        "/realtime/events.csv?user=%FF",
        "/realtime/history?resource=%FE",
    ] {
        let (code, body) = send(s.client.get(s.url(path)).bearer_auth(KEY)).await;
        assert_error(code, &body, 400, "invalid_query");
    }
    // Lossy decoding used to answer 200 for a user named U+FFFD; valid text still works (the key
    // acts for "ann" only, so "%61nn" is allowed and "%C3%A9" is refused as another user).
    let (code, body) = send(s.client.get(s.url("/borrows?user=%61nn")).bearer_auth(KEY)).await;
    assert_eq!((code, body), (200, json!([])));
    let (code, body) = send(s.client.get(s.url("/borrows?user=%C3%A9")).bearer_auth(KEY)).await;
    assert_error(code, &body, 403, "forbidden_user");
}
