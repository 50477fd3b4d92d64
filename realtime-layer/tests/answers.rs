//! The answers the dashboard gives — hold times, time at capacity, overage cost — and the metrics
//! that alert right, over real HTTP against an instance on a `ManualClock` (exact values).

use realtime_layer::{Event, ManualClock, Pricing, Realtime, ResourceStatus};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use test_support::http::metric_with as sample;

mod common;
use common::{get_json, metrics_text, serve_realtime};

/// A whole second, so second boundaries are exact.
const T0: u64 = 1_800_000_000_000;

/// gpu: 4 licenses, 2 committed, EUR 1000 for the commitment and 50 per overage borrow;
/// seat: 10 licenses, 5 committed, no prices. `gpu` is the live borrowed count of gpu.
fn instance(clock: &ManualClock, gpu: Arc<AtomicU32>) -> Realtime {
    Realtime::builder()
        .clock(clock.clone())
        .failure_reasons(["exhausted", "max_overage"])
        .service_name("answers-test")
        .status_source(move || {
            vec![
                ResourceStatus::new("gpu", 4, 2, gpu.load(Ordering::SeqCst))
                    .with_pricing(Pricing::new("EUR", 1000.0, 50.0)),
                ResourceStatus::new("seat", 10, 5, 0),
            ]
        })
        .build()
        .unwrap()
}

/// Second by second (from T0): 0 g1 g2 out (2: at commit); 10 g3 g4 out as overage (4:
/// exhausted); 12 three refusals; 20 g1 back (held 20 s, 3); 30 g3 back (held 20 s, 2); 31 g5
/// out (3); 41 g5 back (held 10 s, 2); 45 g6 out (3, one over commit).
fn play(realtime: &Realtime, clock: &ManualClock, gpu: &AtomicU32) {
    let at = |s: u64| clock.set(T0 + s * 1000);
    let borrow = |id: &str, overage: bool| {
        realtime.record(
            Event::borrow("gpu", "ann")
                .borrow_id(id.to_owned())
                .overage(overage),
        );
        gpu.fetch_add(1, Ordering::SeqCst);
    };
    let give_back = |id: &str| {
        realtime.record(Event::returned("gpu", "ann").borrow_id(id.to_owned()));
        gpu.fetch_sub(1, Ordering::SeqCst);
    };
    at(0);
    borrow("g1", false);
    borrow("g2", false);
    at(10);
    borrow("g3", true);
    borrow("g4", true);
    at(12);
    for _ in 0..3 {
        realtime.record(Event::failure("gpu", "bob", "exhausted"));
    }
    at(20);
    give_back("g1");
    at(30);
    give_back("g3");
    at(31);
    borrow("g5", true);
    at(41);
    give_back("g5");
    at(45);
    borrow("g6", true);
    clock.set(T0 + 59_500);
}

fn resource<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[tokio::test]
async fn hold_times_time_at_capacity_and_cost_in_stats() {
    let clock = ManualClock::new(T0);
    let gpu = Arc::new(AtomicU32::new(0));
    let realtime = instance(&clock, gpu.clone());
    play(&realtime, &clock, &gpu);
    let server = serve_realtime(&realtime).await;

    let (status, stats) = get_json(server.addr, "/realtime/stats?window=60").await;
    assert_eq!(status, 200, "{stats}");

    // Holds 20, 20 and 10 s; g2, g4 and g6 are still out.
    let holds = &stats["hold_times"];
    let g = resource(&holds["resources"], "resource", "gpu");
    assert_eq!(g["count"], 3);
    assert_eq!(
        (&g["p50_seconds"], &g["p90_seconds"], &g["p99_seconds"]),
        (&json!(20.0), &json!(20.0), &json!(20.0))
    );
    assert_eq!(g["max_seconds"], 20.0);
    assert!((g["mean_seconds"].as_f64().unwrap() - 50.0 / 3.0).abs() < 1e-9);
    assert_eq!(g["open"], 3);
    // ≤1, ≤5, ≤15 (the 10 s hold), ≤30 (the two 20 s holds), ...
    assert_eq!(
        g["histogram"],
        json!([0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(holds["bucket_bounds_seconds"].as_array().unwrap().len(), 12);
    assert_eq!(holds["unmatched_returns"], 0);

    // At or above commit (2) all 60 seconds; exhausted (4) from second 10 through 20.
    let capacity = stats["capacity"].as_array().unwrap();
    assert_eq!(capacity[0]["resource"], "gpu", "most time exhausted first");
    assert_eq!(capacity[0]["seconds_at_commit"], 60);
    assert_eq!(capacity[0]["seconds_exhausted"], 11);
    assert_eq!(capacity[0]["exhausted_share"], 0.1833);
    assert_eq!(capacity[0]["denials"], json!({"exhausted": 3}));
    let seat = resource(&stats["capacity"], "resource", "seat");
    assert_eq!(
        (&seat["seconds_at_commit"], &seat["seconds_exhausted"]),
        (&json!(0), &json!(0))
    );

    // Four overage borrows at 50 in the window, one unit over commit now.
    let view = resource(&stats["resources"], "name", "gpu");
    assert_eq!(view["pricing"]["currency"], "EUR");
    assert_eq!(view["cost"]["overage_cost_now"], 50.0);
    assert_eq!(view["cost"]["overage_cost_in_window"], 200.0);
    assert_eq!(view["cost"]["total_in_window"], 1200.0);
    assert!(resource(&stats["resources"], "name", "seat")
        .get("cost")
        .is_none());
    assert_eq!(
        stats["cost"],
        json!({"window_seconds": 60, "currencies": [
            {"currency": "EUR", "commit": 1000.0, "overage_now": 50.0, "overage_in_window": 200.0}
        ]})
    );

    // The last 30 s: seconds 30..=59, never exhausted; g3 (20 s) and g5 (10 s) came back in
    // them, and the nearest-rank median of two is the lower.
    let (_, recent) = get_json(server.addr, "/realtime/stats?window=30").await;
    let c = resource(&recent["capacity"], "resource", "gpu");
    assert_eq!(
        (&c["seconds_at_commit"], &c["seconds_exhausted"]),
        (&json!(30), &json!(0))
    );
    assert_eq!(c["denials"], json!({}));
    let g = resource(&recent["hold_times"]["resources"], "resource", "gpu");
    assert_eq!((&g["count"], &g["p50_seconds"]), (&json!(2), &json!(10.0)));
    assert_eq!(recent["cost"]["currencies"][0]["overage_in_window"], 100.0);
    realtime.shutdown();
}

#[tokio::test]
async fn metrics_start_at_zero_and_carry_holds_cost_and_service_name() {
    let clock = ManualClock::new(T0);
    let gpu = Arc::new(AtomicU32::new(0));
    let realtime = instance(&clock, gpu.clone());
    let server = serve_realtime(&realtime).await;

    // Before any event every series of the status source's resources and the declared
    // reasons is there, at 0.
    let fresh = metrics_text(server.addr).await;
    for res in ["gpu", "seat"] {
        for reason in ["exhausted", "max_overage"] {
            let labels = [("resource", res), ("reason", reason)];
            assert_eq!(
                sample(&fresh, "realtime_failures_total", &labels),
                Some(0.0),
                "{res} {reason}:\n{fresh}"
            );
        }
        for overage in ["true", "false"] {
            let labels = [("resource", res), ("overage", overage)];
            assert_eq!(sample(&fresh, "realtime_borrows_total", &labels), Some(0.0));
        }
        assert_eq!(
            sample(&fresh, "realtime_returns_total", &[("resource", res)]),
            Some(0.0)
        );
    }
    let gpu_cost = [("resource", "gpu"), ("currency", "EUR")];
    assert_eq!(
        sample(&fresh, "realtime_overage_cost_total", &gpu_cost),
        Some(0.0)
    );
    assert!(
        fresh.contains("service_name=\"answers-test\""),
        "service.name in target_info:\n{fresh}"
    );

    play(&realtime, &clock, &gpu);
    let text = metrics_text(server.addr).await;
    let gpu_only = [("resource", "gpu")];
    let hold = "realtime_hold_duration_seconds";
    assert_eq!(
        sample(&text, &format!("{hold}_count"), &gpu_only),
        Some(3.0),
        "{text}"
    );
    assert_eq!(sample(&text, &format!("{hold}_sum"), &gpu_only), Some(50.0));
    let le15 = [("resource", "gpu"), ("le", "15")];
    assert_eq!(sample(&text, &format!("{hold}_bucket"), &le15), Some(1.0));
    let le30 = [("resource", "gpu"), ("le", "30")];
    assert_eq!(sample(&text, &format!("{hold}_bucket"), &le30), Some(3.0));
    assert_eq!(
        sample(&text, "realtime_overage_cost_total", &gpu_cost),
        Some(200.0)
    );
    let refused = [("resource", "gpu"), ("reason", "exhausted")];
    assert_eq!(
        sample(&text, "realtime_failures_total", &refused),
        Some(3.0)
    );
    let not_yet = [("resource", "gpu"), ("reason", "max_overage")];
    assert_eq!(
        sample(&text, "realtime_failures_total", &not_yet),
        Some(0.0)
    );

    // Holds go to the histogram once: a second scrape counts the same.
    let again = metrics_text(server.addr).await;
    assert_eq!(
        sample(&again, &format!("{hold}_count"), &gpu_only),
        Some(3.0)
    );
    realtime.shutdown();
}
