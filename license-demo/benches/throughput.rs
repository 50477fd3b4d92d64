//! Borrow+return throughput over real HTTP on loopback.
//!
//! Starts the full app (SQLite temp file, realtime layer, metrics) in-process on 127.0.0.1:0 and
//! drives it with the stress runner: N workers each doing borrow -> return with no hold, for a
//! fixed number of operations. Client and server share this machine's cores, as they would with
//! `license-demo stress` against a local server.
//!
//! Run: `cargo bench -p license-demo --bench throughput`
//! Columns: cycles/s counts completed borrow+return pairs, requests/s both requests; latencies are
//! borrow/return (b/r).
//! Tune: `BENCH_OPS` (total borrow+return cycles per row, default 40000),
//!       `BENCH_WORKERS` (comma list, default `16,64`).

use license_demo::config::ToolSpec;
use license_demo::pool::{DbLocation, Durability};
use license_demo::server::{self, ServerConfig};
use license_demo::stress::{self, Mode, Profile, StressConfig};
use std::time::Duration;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument, if any, is ignored.
    let total_ops: usize = env_or("BENCH_OPS", 40_000);
    let workers: Vec<usize> = std::env::var("BENCH_WORKERS")
        .unwrap_or_else(|_| "16,64".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "license-demo throughput: borrow+return cycles over HTTP/1.1 loopback, {} cores, {} cycles per row",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        total_ops
    );
    println!(
        "{:<10} {:>8} {:>10} {:>10} {:>11} {:>14} {:>14} {:>7}",
        "durability",
        "workers",
        "elapsed s",
        "cycles/s",
        "requests/s",
        "p50 ms b/r",
        "p99 ms b/r",
        "failed"
    );
    for durability in [Durability::Normal, Durability::Full] {
        for &w in &workers {
            let row = runtime.block_on(one_row(durability, w, total_ops));
            println!("{row}");
        }
    }
}

async fn one_row(durability: Durability, workers: usize, total_ops: usize) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    // One roomy tool so every borrow succeeds and the row measures borrow+return, not refusals.
    let tools = vec![ToolSpec {
        name: "Bench Tool".into(),
        total: 100_000,
        commit: 10,
        max_overage: 99_990,
        commit_price: 1.0,
        overage_price_per_license: 1.0,
    }];
    let server = server::start(ServerConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        db: DbLocation::File(dir.path().join("bench.db")),
        tools,
        durability,
        cluster: None,
        security: Default::default(),
        serve: Default::default(),
        stream: Default::default(),
        usage: None,
        clock_offset_ms: 0,
    })
    .await
    .expect("server");
    let mut config = StressConfig::from_profile(server.url(), Profile::Custom);
    config.workers = workers;
    config.ops_per_worker = total_ops.div_ceil(workers);
    config.mode = Mode::FullCycle;
    config.hold = Duration::ZERO;
    config.tool = Some("Bench Tool".into());
    config.user_prefix = "bench".into();
    let report = stress::run(config).await.expect("stress run");
    server.shutdown().await.expect("shutdown");
    let both = |b: f64, r: f64| format!("{b:.2}/{r:.2}");
    let ret = report.return_latency_ms.unwrap_or_default();
    format!(
        "{:<10} {:>8} {:>10.2} {:>10.0} {:>11.0} {:>14} {:>14} {:>7}",
        format!("{durability:?}").to_lowercase(),
        workers,
        report.elapsed_secs,
        report.returns_ok as f64 / report.elapsed_secs,
        report.requests_per_sec,
        both(report.borrow_latency_ms.p50, ret.p50),
        both(report.borrow_latency_ms.p99, ret.p99),
        report.failed() + report.returns_failed,
    )
}
