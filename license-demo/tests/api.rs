//! Every endpoint and error case over real HTTP, on a temp SQLite file.

mod common;

use common::{assert_error, start, start_default, tool};
use serde_json::{json, Value};

const ECU: &str = "ECU Development Suite";

#[tokio::test]
async fn borrow_answers_the_record_and_accepts_legacy_auth_headers() {
    let s = start_default().await;
    let resp = s
        .client
        .post(s.url("/licenses/borrow"))
        .header("Authorization", "Bearer legacy-token")
        .header("X-Signature", "deadbeef")
        .header("X-Timestamp", "1700000000")
        .header("X-Vendor-ID", "vendor-42")
        .json(&json!({"tool": ECU, "user": "alice", "extra": "ignored"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).expect("id is a UUID");
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(body["tool"], ECU);
    assert_eq!(body["user"], "alice");
    assert_eq!(body["overage"], false);
    let at = body["borrowed_at"].as_str().unwrap();
    let parsed = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("borrowed_at is RFC 3339");
    assert_eq!(parsed.offset(), time::UtcOffset::UTC);
    assert!(at.ends_with('Z'));
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(
        age.whole_seconds().abs() < 60,
        "borrowed_at is now-ish: {at}"
    );
}

#[tokio::test]
async fn overage_and_both_refusal_reasons() {
    let s = start(vec![
        tool("Over", 10, 1, 2, 50.0), // commit+max_overage (3) < total
        tool("Tight", 2, 1, 5, 50.0), // total (2) < commit+max_overage
        tool("Flat", 2, 2, 0, 0.0),   // commit == total, no overage allowed
    ])
    .await;
    let mut flags = vec![];
    for _ in 0..3 {
        let (code, body) = s.borrow("Over", "u").await;
        assert_eq!(code, 200, "{body}");
        flags.push(body["overage"].as_bool().unwrap());
    }
    assert_eq!(
        flags,
        [false, true, true],
        "borrowed before >= commit is overage"
    );
    let (code, body) = s.borrow("Over", "u").await;
    assert_error(code, &body, 409, "max_overage");
    assert!(body["detail"].as_str().unwrap().contains("Over"));

    assert_eq!(s.borrow("Tight", "u").await.0, 200);
    assert_eq!(s.borrow("Tight", "u").await.0, 200);
    let (code, body) = s.borrow("Tight", "u").await;
    assert_error(code, &body, 409, "exhausted");

    assert_eq!(s.borrow("Flat", "u").await.1["overage"], false);
    assert_eq!(s.borrow("Flat", "u").await.1["overage"], false);
    let (code, body) = s.borrow("Flat", "u").await;
    assert_error(code, &body, 409, "exhausted");

    let over = s.status_of("Over").await;
    assert_eq!(over["borrowed"], 3);
    assert_eq!(over["available"], 7);
    assert_eq!(over["overage"], 2);
    assert_eq!(over["in_commit"], false);
    assert_eq!(over["current_overage_cost"], 100.0);
    assert_eq!(over["total_cost"], 1100.0);
    let flat = s.status_of("Flat").await;
    assert_eq!(
        (flat["borrowed"].as_u64(), flat["in_commit"].as_bool()),
        (Some(2), Some(true))
    );
}

#[tokio::test]
async fn unknown_tool_is_404_for_borrow_and_status() {
    let s = start_default().await;
    let (code, body) = s.borrow("No Such Tool", "alice").await;
    assert_error(code, &body, 404, "unknown_tool");
    let (code, body) = s.get("/licenses/No%20Such%20Tool/status").await;
    assert_error(code, &body, 404, "unknown_tool");
    let (code, body) = s.get("/no/such/route").await;
    assert_error(code, &body, 404, "not_found");
}

#[tokio::test]
async fn malformed_requests_get_json_4xx() {
    let s = start_default().await;
    let (code, body) = s.post_raw("/licenses/borrow", "{\"tool\": ").await;
    assert_error(code, &body, 400, "malformed_json");
    let (code, body) = s.post_raw("/licenses/borrow", "").await;
    assert_error(code, &body, 400, "malformed_json");
    let (code, body) = s.post_json("/licenses/borrow", json!({"tool": ECU})).await;
    assert_error(code, &body, 422, "invalid_request");
    let (code, body) = s
        .post_json("/licenses/borrow", json!({"tool": 5, "user": "a"}))
        .await;
    assert_error(code, &body, 422, "invalid_request");
    let (code, body) = s.post_json("/licenses/borrow", json!([1, 2])).await;
    assert_error(code, &body, 422, "invalid_request");

    let (code, body) = s.borrow("", "alice").await;
    assert_error(code, &body, 422, "invalid_field");
    let (code, body) = s.borrow(ECU, "").await;
    assert_error(code, &body, 422, "invalid_field");
    let (code, body) = s.borrow(ECU, "bad\u{7}user").await;
    assert_error(code, &body, 422, "invalid_field");
    let (code, body) = s.borrow(ECU, &"u".repeat(129)).await;
    assert_error(code, &body, 422, "invalid_field");
    let (code, body) = s.borrow(ECU, &"ü".repeat(128)).await;
    assert_eq!(code, 200, "128 characters are allowed: {body}");

    // Over 16 KiB: 413, still JSON.
    let huge = json!({"tool": ECU, "user": "x".repeat(17 * 1024)}).to_string();
    let (code, body) = s.post_raw("/licenses/borrow", huge).await;
    assert_error(code, &body, 413, "payload_too_large");

    let (code, body) = s.post_json("/licenses/return", json!({})).await;
    assert_error(code, &body, 422, "invalid_request");
    let (code, body) = s.post_raw("/licenses/return", "nope").await;
    assert_error(code, &body, 400, "malformed_json");

    let resp = s
        .client
        .get(s.url("/licenses/borrow"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");

    // Nothing above changed state except the one valid borrow.
    assert_eq!(s.status_of(ECU).await["borrowed"], 1);
}

#[tokio::test]
async fn return_then_double_return_and_unknown_id() {
    let s = start_default().await;
    let (_, b) = s.borrow(ECU, "bob").await;
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(s.status_of(ECU).await["borrowed"], 1);
    let (code, body) = s.return_id(&id).await;
    assert_eq!(code, 200);
    assert_eq!(body, json!({"status": "ok", "tool": ECU}));
    assert_eq!(s.status_of(ECU).await["borrowed"], 0);
    let (code, body) = s.return_id(&id).await;
    assert_error(code, &body, 404, "unknown_borrow");
    let (code, body) = s.return_id("00000000-0000-4000-8000-000000000000").await;
    assert_error(code, &body, 404, "unknown_borrow");
    let (code, body) = s.return_id("").await;
    assert_error(code, &body, 422, "invalid_field");
    assert_eq!(s.status_of(ECU).await["borrowed"], 0);
}

#[tokio::test]
async fn status_lists_every_tool_sorted_with_all_fields() {
    let s = start_default().await;
    for _ in 0..6 {
        assert_eq!(s.borrow(ECU, "carol").await.0, 200);
    }
    let (code, body) = s.get("/licenses/status").await;
    assert_eq!(code, 200);
    let list = body.as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|t| t["tool"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 6);
    let fields = [
        "tool",
        "total",
        "borrowed",
        "available",
        "commit",
        "max_overage",
        "overage",
        "in_commit",
        "commit_price",
        "overage_price_per_license",
        "current_overage_cost",
        "total_cost",
    ];
    for t in list {
        for f in fields {
            assert!(t.get(f).is_some(), "{f} missing in {t}");
        }
    }
    let ecu = list.iter().find(|t| t["tool"] == ECU).unwrap();
    assert_eq!(ecu, &s.status_of(ECU).await);
    assert_eq!(ecu["total"], 20);
    assert_eq!(ecu["commit"], 5);
    assert_eq!(ecu["max_overage"], 15);
    assert_eq!(ecu["borrowed"], 6);
    assert_eq!(ecu["available"], 14);
    assert_eq!(ecu["overage"], 1);
    assert_eq!(ecu["in_commit"], false);
    assert_eq!(ecu["commit_price"], 5000.0);
    assert_eq!(ecu["overage_price_per_license"], 500.0);
    assert_eq!(ecu["current_overage_cost"], 500.0);
    assert_eq!(ecu["total_cost"], 5500.0);
    let can = list
        .iter()
        .find(|t| t["tool"] == "CAN Bus Analyzer Pro")
        .unwrap();
    assert_eq!(
        (can["total"].as_u64(), can["max_overage"].as_u64()),
        (Some(10), Some(0))
    );
}

#[tokio::test]
async fn open_borrows_newest_first_filtered_by_user() {
    let s = start_default().await;
    let mut ids = vec![];
    for user in ["dave", "erin", "dave", "dave"] {
        let (_, b) = s.borrow(ECU, user).await;
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    assert_eq!(s.return_id(&ids[2]).await.0, 200);
    let (code, body) = s.get("/borrows?user=dave").await;
    assert_eq!(code, 200);
    let listed: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [ids[3].as_str(), ids[0].as_str()],
        "open only, newest first"
    );
    let first = &body[0];
    assert_eq!(first["tool"], ECU);
    assert_eq!(first["user"], "dave");
    assert!(first["borrowed_at"].as_str().unwrap().ends_with('Z'));
    let (_, all) = s.get("/borrows").await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    let (_, empty_filter) = s.get("/borrows?user=").await;
    assert_eq!(empty_filter, all);
    let (_, nobody) = s.get("/borrows?user=zed").await;
    assert_eq!(nobody, json!([]));
}

#[tokio::test]
async fn overage_charges_persist_after_return_and_filter_by_tool() {
    let s = start(vec![tool("A", 5, 1, 4, 75.5), tool("B", 5, 0, 5, 10.0)]).await;
    let mut ids = vec![];
    for _ in 0..3 {
        ids.push(
            s.borrow("A", "fay").await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let b_id = s.borrow("B", "gus").await.1["id"]
        .as_str()
        .unwrap()
        .to_string();
    for id in ids.iter().chain([&b_id]) {
        assert_eq!(s.return_id(id).await.0, 200);
    }
    let (code, body) = s.get("/overage-charges?tool=A").await;
    assert_eq!(code, 200);
    let charges = body["charges"].as_array().unwrap();
    assert_eq!(
        charges.len(),
        2,
        "two of three borrows of A were overage: {body}"
    );
    let charged: Vec<&str> = charges
        .iter()
        .map(|c| c["borrow_id"].as_str().unwrap())
        .collect();
    assert_eq!(charged, [ids[2].as_str(), ids[1].as_str()], "newest first");
    for c in charges {
        assert_eq!(c["tool"], "A");
        assert_eq!(c["user"], "fay");
        assert_eq!(c["amount"], 75.5);
        assert!(uuid::Uuid::parse_str(c["id"].as_str().unwrap()).is_ok());
        assert!(c["charged_at"].as_str().unwrap().ends_with('Z'));
    }
    let (_, all) = s.get("/overage-charges").await;
    assert_eq!(all["charges"].as_array().unwrap().len(), 3);
    let a = s.status_of("A").await;
    assert_eq!(a["borrowed"], 0);
    assert_eq!(a["overage"], 0);
    assert_eq!(a["current_overage_cost"], 151.0);
    assert_eq!(a["total_cost"], 1151.0);
}

#[tokio::test]
async fn root_redirects_to_the_dashboard() {
    let s = start_default().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(s.url("/")).send().await.unwrap();
    assert!(resp.status().is_redirection());
    assert_eq!(resp.headers()["location"], "/realtime");
    let page = s.client.get(s.url("/realtime")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().to_lowercase().contains("<html"));
}
