//! Against a real Prometheus: two license-demo processes (separate pools: the per-instance
//! model) scraped every second with the shipped alert rules loaded. A burst of `max_overage`
//! refusals on one replica lands inside one scrape on a series that was at 0; the test asserts
//! through Prometheus' HTTP API that the cluster sums equal the replicas' own `/realtime/stats`
//! and that `OverageLimitReached` goes pending with all 30 refusals counted. Bounded: every wait
//! has a deadline, the whole test ends well within 60 s.
//!
//! Needs the `prometheus` binary (Debian's `prometheus` package, installed by `.ci/run`). Without
//! it the test prints a loud `SKIPPED` line, unless `REQUIRE_PROMETHEUS=1` (set by CI), which
//! turns a missing binary into a failure.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::prometheus::Prometheus;

const BIN: &str = env!("CARGO_BIN_EXE_license-demo");
/// commit 10 + max_overage 3 of 15 in the built-in catalogue: refusals say `max_overage`.
const TOOL: &str = "GreenHills Multi IDE";
const BURST: usize = 30;

/// Kills (and reaps) a child process when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn replica(dir: &Path, name: &str) -> (Proc, String) {
    let port = test_support::free_port();
    let child = Command::new(BIN)
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--db")
        .arg(dir.join(format!("{name}.db")))
        .arg("--log")
        .arg("warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start license-demo");
    (Proc(child), format!("127.0.0.1:{port}"))
}

/// Polls `f` every 200 ms until it gives a value; fails the test at `deadline`.
async fn until<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    deadline: Instant,
    f: impl FnMut() -> Fut,
) -> T {
    let limit = deadline.saturating_duration_since(Instant::now());
    test_support::wait::until(what, limit, Duration::from_millis(200), f).await
}

/// The value of a one-element query result.
fn scalar(result: &[Value]) -> Option<f64> {
    match result {
        [one] => one["value"][1].as_str().and_then(|v| v.parse().ok()),
        _ => None,
    }
}

async fn stats(addr: &str) -> Value {
    test_support::http::get_ok(format!("http://{addr}/realtime/stats?window=3600")).await
}

async fn borrow(http: &reqwest::Client, addr: &str, user: &str) -> u16 {
    http.post(format!("http://{addr}/licenses/borrow"))
        .json(&json!({"tool": TOOL, "user": user}))
        .send()
        .await
        .expect("borrow")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_sums_and_overage_alert_in_a_real_prometheus() {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(55);
    let dir = tempfile::tempdir().unwrap();
    let (_a, a) = replica(dir.path(), "a");
    let (_b, b) = replica(dir.path(), "b");

    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/alerts.yml");
    let Some(prometheus) = Prometheus::start(
        "real-Prometheus test",
        "license-demo",
        &[a.clone(), b.clone()],
        &[&rules],
    ) else {
        return;
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Both replicas scraped, the refusal series already there at 0 (before any refusal).
    let fresh = format!(
        "realtime_failures_total{{job=\"license-demo\", resource=\"{TOOL}\", reason=\"max_overage\"}}"
    );
    until(
        "both replicas scraped, max_overage series at 0",
        deadline,
        || async {
            let r = prometheus.query(&fresh).await;
            (r.len() == 2 && r.iter().all(|s| s["value"][1] == "0")).then_some(())
        },
    )
    .await;
    // One more scrape interval, so the 0 is a sample of its own before the burst.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Replica a: 13 out (10 in commit, 3 overage), then a burst of refusals; replica b: 4 out.
    for i in 0..13 {
        assert_eq!(borrow(&http, &a, &format!("a{i}")).await, 200);
    }
    let burst = Instant::now();
    for i in 0..BURST {
        assert_eq!(borrow(&http, &a, &format!("x{i}")).await, 409);
    }
    println!("{BURST} refusals in {:?}", burst.elapsed());
    for i in 0..4 {
        assert_eq!(borrow(&http, &b, &format!("b{i}")).await, 200);
    }

    // Cluster sums in Prometheus equal what the replicas report themselves.
    let (sa, sb) = (stats(&a).await, stats(&b).await);
    let of = |s: &Value, key: &str| -> f64 {
        s["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == TOOL)
            .map_or(0.0, |r| r[key].as_f64().unwrap())
    };
    let want_borrows = of(&sa, "borrows") + of(&sb, "borrows");
    let want_borrowed = of(&sa, "borrowed") + of(&sb, "borrowed");
    let want_refused = sa["capacity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == TOOL)
        .and_then(|c| c["denials"]["max_overage"].as_f64())
        .unwrap_or(0.0);
    assert_eq!(
        (want_borrows, want_borrowed, want_refused),
        (17.0, 17.0, BURST as f64)
    );
    let sel = format!("{{job=\"license-demo\", resource=\"{TOOL}\"}}");
    let checks = [
        (format!("sum(realtime_borrows_total{sel})"), want_borrows),
        // Separate pools: `sum` is the pool model's aggregation (the dashboard's `per-instance`).
        (format!("sum(realtime_borrowed{sel})"), want_borrowed),
        (
            format!("sum(realtime_failures_total{{job=\"license-demo\", resource=\"{TOOL}\", reason=\"max_overage\"}})"),
            want_refused,
        ),
        (format!("sum(realtime_capacity{sel})"), 30.0),
        (format!("sum(realtime_commit{sel})"), 20.0),
        // 3 overage borrows at 800 each, on replica a.
        (format!("sum(realtime_overage_cost_total{sel})"), 2400.0),
    ];
    for (promql, want) in &checks {
        until(promql, deadline, || async {
            (scalar(&prometheus.query(promql).await) == Some(*want)).then_some(())
        })
        .await;
    }

    // The burst went into one or two scrapes; the alert counts all of it and goes pending
    // (it fires after its `for: 1m`, beyond this test).
    let alert = until("OverageLimitReached pending", deadline, || async {
        prometheus.alerts().await.into_iter().find(|al| {
            al["labels"]["alertname"] == "OverageLimitReached" && al["labels"]["resource"] == TOOL
        })
    })
    .await;
    assert_eq!(alert["state"], "pending", "{alert}");
    let value: f64 = alert["value"].as_str().unwrap().parse().unwrap();
    assert!(
        (value - BURST as f64).abs() < 1e-9,
        "the alert counts all {BURST} refusals: {alert}"
    );
    assert!(
        alert["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains(&format!("About {BURST} borrows of {TOOL}")),
        "{alert}"
    );
    println!("real-Prometheus test done in {:?}", start.elapsed());
}
