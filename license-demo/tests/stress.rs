//! The stress tester against a server started by the test; its numbers are checked against
//! `/licenses/status` and the realtime stats.

mod common;

use common::{start, start_default, tool};
use license_demo::pool::ToolStatus;
use license_demo::stress::{self, Mode, Profile, StressConfig};
use serde_json::Value;
use std::time::Duration;

fn sum(list: &[ToolStatus], f: impl Fn(&ToolStatus) -> u64) -> u64 {
    list.iter().map(f).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_light_profile_matches_server_status() {
    let s = start_default().await;
    let target = s.base.clone();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args([
            "stress",
            "--profile",
            "light",
            "--target",
            &target,
            "--json",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");

    assert_eq!(report["config"]["workers"], 5);
    assert_eq!(report["config"]["ops_per_worker"], 20);
    assert_eq!(report["config"]["mode"], "full-cycle");
    let attempted = report["attempted"].as_u64().unwrap();
    let successes = report["successes"].as_u64().unwrap();
    let failed: u64 = report["failures"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(attempted, 100);
    assert_eq!(successes + failed, 100);
    // 5 workers can hold at most 5 licenses: nothing is ever refused.
    assert_eq!(successes, 100, "{report}");
    assert_eq!(report["returns_ok"], successes);
    assert_eq!(report["borrow_latency_ms"]["count"], 100);
    assert_eq!(report["return_latency_ms"]["count"], 100);
    assert!(report["ops_per_sec"].as_f64().unwrap() > 0.0);

    // The report's "after" is what the server says now, and the deltas add up.
    let (_, status) = s.get("/licenses/status").await;
    let status: Vec<ToolStatus> = serde_json::from_value(status).unwrap();
    let after: Vec<ToolStatus> = serde_json::from_value(report["after"].clone()).unwrap();
    let before: Vec<ToolStatus> = serde_json::from_value(report["before"].clone()).unwrap();
    assert_eq!(after, status);
    assert_eq!(
        sum(&status, |t| u64::from(t.borrowed)),
        0,
        "full cycle returns everything"
    );
    let charged = sum(&after, |t| t.overage_borrows) - sum(&before, |t| t.overage_borrows);
    assert_eq!(charged, report["overage_borrows"].as_u64().unwrap());

    // The realtime layer saw the same traffic.
    let (_, stats) = s.get("/realtime/stats?window=600").await;
    assert_eq!(stats["borrow_count"].as_u64().unwrap(), successes);
    assert_eq!(stats["return_count"].as_u64().unwrap(), successes);

    // The human table is printed without --json.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args([
            "stress",
            "--profile",
            "light",
            "--hold-ms",
            "0",
            "--target",
            &target,
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "successes",
        "throughput",
        "p95",
        "p99",
        "ECU Development Suite",
        "0 -> 0",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_only_fills_one_tool_exactly() {
    let s = start_default().await;
    let mut config = StressConfig::from_profile(s.base.clone(), Profile::Custom);
    config.workers = 8;
    config.ops_per_worker = 5;
    config.mode = Mode::CheckoutOnly;
    config.tool = Some("ECU Development Suite".into()); // total 20, commit 5
    config.ramp_up = Duration::from_millis(200);
    let report = stress::run(config).await.unwrap();
    assert_eq!(report.attempted, 40);
    assert_eq!(report.successes, 20);
    assert_eq!(report.failures.get("exhausted"), Some(&20));
    assert_eq!(report.failed(), 20);
    assert_eq!(report.overage_borrows, 15);
    assert!(report.return_latency_ms.is_none());
    let ecu = s.status_of("ECU Development Suite").await;
    assert_eq!(ecu["borrowed"], 20);
    assert_eq!(ecu["overage"], 15);
    let after = report
        .after
        .iter()
        .find(|t| t.tool == "ECU Development Suite")
        .unwrap();
    assert_eq!(after.borrowed, 20);
    assert_eq!(after.overage_borrows, 15);
    assert!(
        report.elapsed_secs >= 0.17,
        "ramp-up spreads starts over 200 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_cap_limits_throughput() {
    let s = start(vec![tool("Big", 1000, 10, 990, 1.0)]).await;
    let mut config = StressConfig::from_profile(s.base.clone(), Profile::Custom);
    config.workers = 4;
    config.ops_per_worker = 10;
    config.hold = Duration::ZERO;
    config.rate = Some(100.0);
    let report = stress::run(config).await.unwrap();
    assert_eq!(report.successes, 40);
    // 40 ops at 100/s: the first starts at once, the last 390 ms later.
    assert!(
        report.elapsed_secs >= 0.38,
        "elapsed {}",
        report.elapsed_secs
    );
    assert!(report.ops_per_sec <= 105.0, "{}", report.ops_per_sec);
}

#[tokio::test]
async fn unreachable_or_bad_targets_are_errors() {
    let s = start_default().await;
    let mut config = StressConfig::from_profile(s.base.clone(), Profile::Light);
    config.tool = Some("Nope".into());
    assert!(stress::run(config).await.is_err());
    let config = StressConfig::from_profile("not a url", Profile::Light);
    assert!(stress::run(config).await.is_err());
    // A port nobody listens on (bound then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = StressConfig::from_profile(format!("http://127.0.0.1:{port}"), Profile::Light);
    let err = stress::run(config).await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}
