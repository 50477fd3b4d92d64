//! A Python service with the OpenTelemetry SDK and its OTLP/HTTP exporter (a real `python`
//! from the virtualenv `.ci/run` makes) sends lease records to the real `realtime-sidecar`:
//! they appear in `/realtime/stats`, the SSE stream and the CSV export, with the hold times the
//! sender's timestamps imply. Locally without that virtualenv: a loud SKIPPED
//! (`REQUIRE_PYTHON_OTEL=1` makes it a failure).

mod sidecar;

use sidecar::{holds, now_ms, resource, sse_until, Sidecar, TOKEN};
use std::path::Path;
use std::time::Duration;
use test_support::http::client;
use test_support::wait::until;

#[tokio::test]
async fn python_otel_sdk_records_reach_stats_stream_and_csv() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let Some(python) = test_support::python::otel_python(&workspace, "sidecar_otel") else {
        return;
    };
    let sidecar = Sidecar::with_tokens(&[]);
    // The stream is open before anything is sent: the events must arrive as deltas.
    let stream = client()
        .get(sidecar.at("/realtime/stream"))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let now = now_ms();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sidecar/otel_sender.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&sidecar.url)
        .arg(TOKEN)
        .arg(now.to_string())
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "sender failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("Failed to export"),
        "the exporter reported a failure: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Stats: counts, levels, hold times from the sender's timestamps.
    let stats = until(
        "the Python events in stats",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let sidecar = &sidecar;
            async move {
                let stats = sidecar.stats().await;
                (stats["borrow_count"] == 3).then_some(stats)
            }
        },
    )
    .await;
    assert_eq!(stats["return_count"], 2, "{stats}");
    assert_eq!(stats["failure_count"], 1, "{stats}");
    let gpu = resource(&stats, "GPU A100");
    assert_eq!(
        (gpu["borrows"].as_u64(), gpu["overage_borrows"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        (gpu["returns"].as_u64(), gpu["failures"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(gpu["borrowed"], 0, "both GPU leases were returned");
    assert_eq!(
        resource(&stats, "CPU pool")["borrowed"],
        1,
        "the logging-module borrow is open"
    );
    let gpu_holds = holds(&stats, "GPU A100");
    assert_eq!(gpu_holds["count"], 2, "{gpu_holds}");
    assert_eq!(
        gpu_holds["max_seconds"], 5.0,
        "b-2 was out 5 s by the sender's clock"
    );
    assert_eq!(gpu_holds["mean_seconds"], 4.0, "3 s and 5 s");
    assert_eq!(stats["ingest"]["stored"], 6, "{}", stats["ingest"]);
    assert_eq!(stats["ingest"]["ignored"], 1, "the app.started record");
    assert_eq!(stats["ingest"]["rejected"]["malformed"], 0);
    // The failure's reason and the sender's time (10 s before NOW for the first borrow).
    let recent = stats["recent_events"].as_array().unwrap();
    assert!(recent
        .iter()
        .any(|e| e["kind"] == "failure" && e["reason"] == "exhausted"));
    let first = recent
        .iter()
        .find(|e| e["user"] == "ann" && e["kind"] == "borrow")
        .expect("ann's borrow");
    assert_eq!(
        first["ts_ms"],
        now - 10_000,
        "stored at the sender's time: {first}"
    );

    // The stream carried the events as they came.
    let frames = sse_until(stream, Duration::from_secs(10), |frames| {
        let text = serde_json::to_string(frames).unwrap();
        ["\"ann\"", "\"bob\"", "\"cy\"", "\"dee\""]
            .iter()
            .all(|u| text.contains(u))
    })
    .await;
    assert!(frames.len() >= 2, "a snapshot, then deltas");

    // CSV export: six rows, users and kinds as sent.
    let csv = client()
        .get(sidecar.at("/realtime/events.csv?window=300"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{csv}");
    for needle in ["ann", "bob", "cy", "dee", "exhausted", "CPU pool"] {
        assert!(csv.contains(needle), "{needle} missing from the CSV: {csv}");
    }
}
