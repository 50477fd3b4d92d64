//! The app wraps itself in RealtimeLayer: handler events reach /realtime/stats with the right
//! kinds, overage flags, reasons and borrow ids; the status source feeds totals and commits.

mod common;

use common::{start, tool};
use serde_json::Value;
use std::time::Duration;

fn find<'a>(events: &'a [Value], kind: &str, pred: impl Fn(&Value) -> bool) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && pred(e))
        .collect()
}

#[tokio::test]
async fn events_reach_stats_with_overage_flags_and_reasons() {
    let s = start(vec![
        tool("Over", 10, 1, 1, 5.0),
        tool("Idle", 4, 2, 2, 5.0),
    ])
    .await;
    let (_, first) = s.borrow("Over", "ann").await;
    let (_, second) = s.borrow("Over", "ben").await;
    assert_eq!(
        (first["overage"].as_bool(), second["overage"].as_bool()),
        (Some(false), Some(true))
    );
    let (code, _) = s.borrow("Over", "cat").await;
    assert_eq!(code, 409); // max_overage
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(s.return_id(first_id).await.0, 200);
    assert_eq!(s.borrow("Unknown Tool", "dan").await.0, 404); // not recorded

    let (code, stats) = s.get("/realtime/stats?window=60").await;
    assert_eq!(code, 200, "{stats}");
    assert_eq!(stats["borrow_count"], 2, "{stats}");
    assert_eq!(stats["return_count"], 1);
    assert_eq!(stats["failure_count"], 1);
    assert_eq!(stats["rates"]["overage_percent"], 50.0);

    let events = stats["recent_events"].as_array().unwrap();
    assert_eq!(events.len(), 4, "{stats}");
    let fp = |id: &str| id[..18].to_string(); // UUIDs are kept as their first 16 hex digits
    let b1 = find(events, "borrow", |e| e["borrow_id"] == fp(first_id));
    assert_eq!(b1.len(), 1);
    assert_eq!(b1[0]["overage"], false);
    assert_eq!(b1[0]["user"], "ann");
    assert_eq!(b1[0]["resource"], "Over");
    let b2 = find(events, "borrow", |e| {
        e["borrow_id"] == fp(second["id"].as_str().unwrap())
    });
    assert_eq!(b2[0]["overage"], true);
    let f = find(events, "failure", |_| true);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["reason"], "max_overage");
    assert_eq!(f[0]["user"], "cat");
    let r = find(events, "return", |e| e["borrow_id"] == fp(first_id));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["user"], "ann");
    assert!(events.iter().all(|e| e["resource"] != "Unknown Tool"));

    let resources = stats["resources"].as_array().unwrap();
    let over = resources.iter().find(|r| r["name"] == "Over").unwrap();
    assert_eq!(over["borrows"], 2);
    assert_eq!(over["overage_borrows"], 1);
    assert_eq!(over["returns"], 1);
    assert_eq!(over["failures"], 1);
    assert_eq!(over["total"], 10);
    assert_eq!(over["commit"], 1);
    // Tools with no traffic still appear, from the status source.
    let idle = resources
        .iter()
        .find(|r| r["name"] == "Idle")
        .expect("status source lists Idle");
    assert_eq!(idle["total"], 4);

    // The status source is sampled once per tick: wait for it to report 1 borrowed.
    let mut borrowed = Value::Null;
    for _ in 0..50 {
        let (_, st) = s.get("/realtime/stats?window=60").await;
        borrowed = st["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "Over")
            .unwrap()["borrowed"]
            .clone();
        if borrowed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(borrowed, 1);

    let (code, config) = s.get("/realtime/config").await;
    assert_eq!(code, 200);
    assert_eq!(config["labels"]["title"], "License Server");
    assert_eq!(config["labels"]["resources"], "Tools");

    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("Over"));
}

#[tokio::test]
async fn shutdown_ends_open_sse_streams() {
    let s = start(vec![tool("T", 2, 1, 1, 1.0)]).await;
    let mut stream = s
        .client
        .get(s.url("/realtime/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // Read until the first frame (a snapshot) has arrived: the stream is live.
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.contains("snapshot") {
            let chunk = stream.chunk().await.unwrap().expect("stream open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no snapshot frame, got {seen:?}"));
    let common::TestServer { server, .. } = s;
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("graceful shutdown does not wait for the stream forever")
        .unwrap();
    // The stream ends instead of hanging.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(rest.is_ok());
}

/// The catalogue's prices reach the dashboard's cost figures, holds are measured from the
/// borrow ids the API hands out, refusals show in time at capacity, and `/metrics` names the
/// service and has the `max_overage` series before the first refusal.
#[tokio::test]
async fn catalogue_prices_holds_and_capacity_reach_stats_and_metrics() {
    // tool(name, total, commit, max_overage, price): commit_price 1000, overage price `price`.
    let s = start(vec![tool("Over", 10, 1, 1, 5.0)]).await;
    let metrics = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("service_name=\"license-demo\""),
        "{metrics}"
    );
    let refused = metrics.lines().find(|l| {
        l.starts_with("realtime_failures_total{")
            && l.contains("reason=\"max_overage\"")
            && l.contains("resource=\"Over\"")
    });
    assert!(
        refused.is_some_and(|l| l.ends_with(" 0")),
        "max_overage series at 0 before any refusal:\n{metrics}"
    );

    let (_, first) = s.borrow("Over", "ann").await;
    let (_, _second) = s.borrow("Over", "ben").await; // overage
    assert_eq!(s.borrow("Over", "cat").await.0, 409); // max_overage
    assert_eq!(s.return_id(first["id"].as_str().unwrap()).await.0, 200);

    let (code, stats) = s.get("/realtime/stats?window=60").await;
    assert_eq!(code, 200, "{stats}");
    let over = stats["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Over")
        .unwrap();
    assert_eq!(over["pricing"]["commit_price"], 1000.0);
    assert_eq!(over["pricing"]["currency"], "EUR");
    assert_eq!(over["pricing"]["overage_unit_price"], 5.0);
    // One overage borrow in the window; after ann's return one license is out (= commit), so
    // nothing is over commit now.
    assert_eq!(over["cost"]["overage_cost_in_window"], 5.0);
    assert_eq!(over["cost"]["overage_cost_now"], 0.0);
    assert_eq!(over["cost"]["total_in_window"], 1005.0);
    assert_eq!(stats["cost"]["currencies"][0]["currency"], "EUR");

    let holds = &stats["hold_times"]["resources"][0];
    assert_eq!(
        (&holds["resource"], &holds["count"], &holds["open"]),
        (&"Over".into(), &1.into(), &1.into())
    );
    let capacity = &stats["capacity"][0];
    assert_eq!(capacity["resource"], "Over");
    assert_eq!(capacity["denials"]["max_overage"], 1);
    assert!(
        capacity["seconds_at_commit"].as_u64().unwrap() >= 1,
        "{capacity}"
    );

    let metrics = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cost = metrics
        .lines()
        .find(|l| l.starts_with("realtime_overage_cost_total{") && l.contains("resource=\"Over\""))
        .unwrap_or_else(|| panic!("no overage cost:\n{metrics}"));
    assert!(
        cost.contains("currency=\"EUR\"") && cost.ends_with(" 5"),
        "{cost}"
    );
    assert!(
        metrics.contains("realtime_hold_duration_seconds_count{"),
        "hold histogram:\n{metrics}"
    );
}
