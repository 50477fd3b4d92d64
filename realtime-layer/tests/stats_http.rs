//! `/realtime/stats`, `/realtime/config` and `/metrics` over real TCP.

use axum::routing::post;
use axum::Router;
use realtime_layer::{Event, Labels, ManualClock, Realtime, ResourceStatus};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T0: u64 = 1_800_000_000_000;

mod common;
use common::{get_json as get, serve};

fn app(rt: &Realtime) -> Router {
    Router::new()
        .route(
            "/borrow",
            post(|| async { (Event::borrow("ECU", "ann"), "ok") }),
        )
        .layer(rt.layer())
        .merge(rt.routes())
        .merge(rt.metrics_routes())
}

#[tokio::test]
async fn stats_reports_every_field() {
    let clock = ManualClock::new(T0);
    let borrowed = Arc::new(AtomicU32::new(6));
    let level = borrowed.clone();
    let rt = Realtime::builder()
        .clock(clock.clone())
        .labels(Labels::default().resource("Tool", "Tools"))
        .status_source(move || {
            vec![ResourceStatus::new(
                "ECU",
                20,
                5,
                level.load(Ordering::SeqCst),
            )]
        })
        .build()
        .unwrap();
    let addr = serve(app(&rt)).await;

    // An old event outside the 60 s window, then activity now.
    rt.record(Event::borrow("ECU", "old-user"));
    clock.advance(Duration::from_secs(600));
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let res = client
            .post(format!("http://{addr}/borrow"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    rt.record(
        Event::borrow("ECU", "bob")
            .overage(true)
            .borrow_id("550e8400-e29b-41d4-a716-446655440000"),
    );
    rt.record(Event::returned("ECU", "ann"));
    rt.record(Event::failure("ECU", "cid", "max_overage"));
    rt.record(Event::failure("Nope", "cid", "unknown_resource"));

    let (status, body) = get(addr, "/realtime/stats?window=60").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["window_seconds"], 60);
    assert_eq!(body["generated_at_ms"], T0 + 600_000);
    assert_eq!(body["total_events"], 8);
    assert_eq!(body["borrow_count"], 5);
    assert_eq!(body["return_count"], 1);
    assert_eq!(body["failure_count"], 2);
    assert_eq!(body["retention_hours"], 6.0);
    assert_eq!(body["oldest_event_ms"], T0);
    assert_eq!(body["folded_names"], 0);
    assert!(body["memory_bytes"].as_u64().unwrap() > 0);
    // The breakdown adds up to the whole; every part of a buffer in use is there.
    let memory = &body["memory"];
    let part = |k: &str| {
        memory[k]
            .as_u64()
            .unwrap_or_else(|| panic!("memory.{k}: {memory}"))
    };
    let parts = [
        "rings",
        "aggregates",
        "names",
        "holds",
        "capture_queue",
        "counters",
    ];
    assert_eq!(
        parts.iter().map(|k| part(k)).sum::<u64>(),
        part("local_total")
    );
    assert_eq!(part("local_total"), body["memory_bytes"].as_u64().unwrap());
    assert!(
        part("rings") >= 8 * 16 && part("capture_queue") > 0,
        "{memory}"
    );
    assert!(memory.get("cluster_buffer").is_none(), "{memory}");
    assert_eq!(body["aggregates_dropped_seconds"], 0);
    // 4 borrows (1 overage), 1 return, 2 failures in the last minute.
    assert_eq!(
        body["rates"],
        json!({"window_seconds": 60, "borrows_per_min": 4.0, "returns_per_min": 1.0,
               "failures_per_min": 2.0, "overage_percent": 25.0, "denial_rate": 0.3333})
    );
    // Only the status source's resources are listed; its borrowed count wins.
    let resources = body["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(
        resources[0],
        json!({"name": "ECU", "total": 20, "commit": 5, "borrowed": 6, "overage": 1, "in_commit": 5,
               "available": 14, "peak_borrowed": 6, "borrows": 4, "overage_borrows": 1,
               "returns": 1, "failures": 1})
    );
    let recent = body["recent_events"].as_array().unwrap();
    assert_eq!(recent.len(), 7, "the old borrow is outside the window");
    assert_eq!(recent[0]["kind"], "failure");
    assert_eq!(recent[0]["reason"], "unknown_resource");
    assert_eq!(recent[3]["borrow_id"], "550e8400-e29b-41d4");
    assert_eq!(recent[3]["overage"], true);
    assert_eq!(recent[6]["user"], "ann");

    // Wider window: the old borrow counts; the peak follows the status source.
    borrowed.store(9, Ordering::SeqCst);
    let (_, body) = get(addr, "/realtime/stats?window=3600").await;
    assert_eq!(
        body["rates"]["borrows_per_min"], 0.0833,
        "5 borrows in an hour"
    );
    assert_eq!(body["resources"][0]["peak_borrowed"], 9);
    assert_eq!(body["resources"][0]["borrowed"], 9);

    // Filters.
    let (_, body) = get(addr, "/realtime/stats?resource=ECU&user=bob").await;
    assert_eq!(body["rates"]["borrows_per_min"], 1.0);
    assert_eq!(body["recent_events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_windows_are_json_400s() {
    let rt = Realtime::builder()
        .retention(Duration::from_secs(3600))
        .build()
        .unwrap();
    let addr = serve(app(&rt)).await;
    for bad in ["0", "-5", "abc", "1.5", "3601", "99999999999999999999", ""] {
        let (status, body) = get(addr, &format!("/realtime/stats?window={bad}")).await;
        assert_eq!(status, 400, "window={bad}");
        assert_eq!(body["error"], "invalid_window");
        assert!(body["detail"].as_str().unwrap().contains("3600"), "{body}");
    }
    let (status, body) = get(addr, "/realtime/stats?window=3600").await;
    assert_eq!((status, body["window_seconds"].as_u64()), (200, Some(3600)));
    let (status, body) = get(addr, "/realtime/stats").await;
    assert_eq!((status, body["window_seconds"].as_u64()), (200, Some(60)));
    let (status, body) = get(addr, "/realtime/stats?resource=ghost").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_resource"))
    );
}

#[tokio::test]
async fn config_carries_labels_and_ranges() {
    let rt = Realtime::builder()
        .labels(
            Labels::default()
                .title("License Server")
                .resource("Tool", "Tools"),
        )
        .status_source(|| vec![ResourceStatus::new("CAN", 10, 10, 0)])
        .build()
        .unwrap();
    let addr = serve(app(&rt)).await;
    let (status, body) = get(addr, "/realtime/config").await;
    assert_eq!(status, 200);
    assert_eq!(body["labels"]["resources"], "Tools");
    assert_eq!(body["labels"]["title"], "License Server");
    assert_eq!(
        body["ranges"],
        json!([60, 300, 600, 1800, 3600, 10800, 21600])
    );
    assert_eq!(body["default_range"], 1800);
    assert_eq!(body["resources"], json!(["CAN"]));
}

#[tokio::test]
async fn metrics_export_counters_without_user_names() {
    let rt = Realtime::builder().build().unwrap();
    let addr = serve(app(&rt)).await;
    let client = reqwest::Client::new();
    client
        .post(format!("http://{addr}/borrow"))
        .send()
        .await
        .unwrap();
    rt.record(Event::borrow("ECU", "secret-user").overage(true));
    rt.record(Event::returned("ECU", "secret-user"));
    rt.record(Event::failure("ECU", "secret-user", "exhausted"));
    let res = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let has = |needle: &str| {
        text.lines().any(|l| {
            l.starts_with(needle.split('{').next().unwrap())
                && needle.split(['{', ',', '}']).all(|p| l.contains(p))
        })
    };
    assert!(
        has(r#"realtime_borrows_total{overage="false",resource="ECU"} 1"#),
        "{text}"
    );
    assert!(
        has(r#"realtime_borrows_total{overage="true",resource="ECU"} 1"#),
        "{text}"
    );
    assert!(has(r#"realtime_returns_total{resource="ECU"} 1"#), "{text}");
    assert!(
        has(r#"realtime_failures_total{reason="exhausted",resource="ECU"} 1"#),
        "{text}"
    );
    assert!(has(r#"realtime_borrowed{resource="ECU"} 1"#), "{text}");
    assert!(has(r#"realtime_buffer_events{kind="borrow"} 2"#), "{text}");
    assert!(text.contains("realtime_stream_clients"), "{text}");
    assert!(
        !text.contains("secret-user"),
        "user names must never become labels"
    );

    // A second instance in the same process has its own, empty registry.
    let other = Realtime::builder().build().unwrap();
    let addr2 = serve(Router::new().merge(other.metrics_routes())).await;
    let text2 = common::metrics_text(addr2).await;
    assert!(!text2.contains(r#"resource="ECU""#), "{text2}");
}

#[tokio::test]
async fn borrowed_gauge_follows_the_status_source_without_readers() {
    let borrowed = Arc::new(AtomicU32::new(3));
    let level = borrowed.clone();
    let rt = Realtime::builder()
        .status_source(move || {
            vec![ResourceStatus::new(
                "pool",
                10,
                5,
                level.load(Ordering::SeqCst),
            )]
        })
        .build()
        .unwrap();
    let addr = serve(Router::new().merge(rt.metrics_routes())).await;
    borrowed.store(7, Ordering::SeqCst);
    let text = common::metrics_text(addr).await;
    let sample = |metric: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{metric}{{")) && l.contains(r#"resource="pool""#))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {metric} for pool in:\n{text}"))
            .to_owned()
    };
    assert_eq!(sample("realtime_borrowed"), "7");
    // Pool sizes, for utilization and overage in Grafana.
    assert_eq!(sample("realtime_capacity"), "10");
    assert_eq!(sample("realtime_commit"), "5");
}

#[tokio::test]
async fn pool_size_gauges_need_a_status_source() {
    let rt = Realtime::builder().build().unwrap();
    rt.record(Event::borrow("pool", "ann"));
    let addr = serve(Router::new().merge(rt.metrics_routes())).await;
    let text = common::metrics_text(addr).await;
    assert!(text.contains(r#"realtime_borrowed{"#), "{text}");
    // Events say nothing of pool sizes: no made-up capacity.
    assert!(!text.contains("realtime_capacity{"), "{text}");
    assert!(!text.contains("realtime_commit{"), "{text}");
}
