//! Borrow+return throughput over real HTTP on loopback.
//!
//! Two tables:
//! - **in-process**: the full app (SQLite temp file, realtime layer, metrics) in this process on
//!   127.0.0.1:0, driven by the stress runner: N workers each doing borrow -> return with no
//!   hold, for a fixed number of operations. Client and server share this machine's cores, as
//!   they would with `license-demo stress` against a local server.
//! - **processes**: one database file under 1 or 2 real `license-demo` processes (the release
//!   binary, as a user runs it), the same N workers split evenly over them: what two replicas on
//!   one SQLite file give against one (SQLite serialises their write transactions).
//!
//! Run: `cargo bench -p license-demo --bench throughput`
//! Columns: cycles/s counts completed borrow+return pairs, requests/s both requests; latencies are
//! borrow/return (b/r), the worse process's in the processes table.
//! Tune: `BENCH_OPS` (total borrow+return cycles per row, default 40000),
//!       `BENCH_WORKERS` (comma list, default `16,64`),
//!       `BENCH_TABLES` (`in-process`, `processes` or `all`, the default).

use license_demo::config::ToolSpec;
use license_demo::pool::{DbLocation, Durability};
use license_demo::server::{self, ServerConfig};
use license_demo::stress::report::StressReport;
use license_demo::stress::{self, Mode, Profile, StressConfig};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    let tables = std::env::var("BENCH_TABLES").unwrap_or_else(|_| "all".into());
    if matches!(tables.as_str(), "all" | "in-process") {
        header("in-process: the app in this process", "");
        for durability in [Durability::Normal, Durability::Full] {
            for &w in &workers {
                let row = runtime.block_on(one_row(durability, w, total_ops));
                println!("{row}");
            }
        }
    }
    if matches!(tables.as_str(), "all" | "processes") {
        header(
            "processes: one database file, N license-demo processes (release binary)",
            "procs",
        );
        for durability in [Durability::Normal, Durability::Full] {
            for &w in &workers {
                for processes in [1, 2] {
                    let row = runtime.block_on(processes_row(durability, w, processes, total_ops));
                    println!("{row}");
                }
            }
        }
    }
}

fn header(title: &str, extra: &str) {
    println!("\n{title}");
    println!(
        "{:<10} {:>5} {:>8} {:>10} {:>10} {:>11} {:>14} {:>14} {:>7}",
        "durability",
        extra,
        "workers",
        "elapsed s",
        "cycles/s",
        "requests/s",
        "p50 ms b/r",
        "p99 ms b/r",
        "failed"
    );
}

/// Full borrow -> return cycles with no hold, `workers` at once, against `target`.
fn cycle_config(target: String, workers: usize, total_ops: usize) -> StressConfig {
    let mut config = StressConfig::from_profile(target, Profile::Custom);
    config.workers = workers;
    config.ops_per_worker = total_ops.div_ceil(workers);
    config.mode = Mode::FullCycle;
    config.hold = Duration::ZERO;
    config.tool = Some("Bench Tool".into());
    config.user_prefix = "bench".into();
    config
}

/// One table row from the runs against each process (run at the same time).
fn row(durability: Durability, procs: &str, workers: usize, reports: &[StressReport]) -> String {
    let elapsed = reports.iter().map(|r| r.elapsed_secs).fold(0.0, f64::max);
    let cycles: u64 = reports.iter().map(|r| r.returns_ok).sum();
    let requests: u64 = reports.iter().map(|r| r.successes + r.returns_ok).sum();
    let worst = |f: &dyn Fn(&StressReport) -> f64| reports.iter().map(f).fold(0.0, f64::max);
    let p50 = format!(
        "{:.2}/{:.2}",
        worst(&|r| r.borrow_latency_ms.p50),
        worst(&|r| r.return_latency_ms.unwrap_or_default().p50)
    );
    let p99 = format!(
        "{:.2}/{:.2}",
        worst(&|r| r.borrow_latency_ms.p99),
        worst(&|r| r.return_latency_ms.unwrap_or_default().p99)
    );
    let failed: u64 = reports.iter().map(|r| r.failed() + r.returns_failed).sum();
    format!(
        "{:<10} {:>5} {:>8} {:>10.2} {:>10.0} {:>11.0} {:>14} {:>14} {:>7}",
        format!("{durability:?}").to_lowercase(),
        procs,
        workers,
        elapsed,
        cycles as f64 / elapsed,
        requests as f64 / elapsed,
        p50,
        p99,
        failed,
    )
}

/// A `license-demo` process serving `db` (killed when dropped).
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn spawn(db: &Path, durability: Durability) -> Server {
        let tools = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/bench-tools.toml");
        let durability = format!("{durability:?}").to_lowercase();
        let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
            .args(["--bind", "127.0.0.1:0", "--log", "warn", "--tools", tools])
            .args(["--durability", &durability, "--db"])
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("license-demo starts");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let url = loop {
            line.clear();
            if out.read_line(&mut line).expect("stdout readable") == 0 {
                panic!("license-demo printed no URL");
            }
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                break url.to_string();
            }
        };
        // Keep reading: a closed pipe would end the server.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn processes_row(
    durability: Durability,
    workers: usize,
    processes: usize,
    total_ops: usize,
) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");
    let servers: Vec<Server> = (0..processes)
        .map(|_| Server::spawn(&db, durability))
        .collect();
    // The workers split evenly over the processes, all running at once.
    let runs: Vec<_> = servers
        .iter()
        .map(|s| {
            let config = cycle_config(s.url.clone(), workers / processes, total_ops / processes);
            tokio::spawn(stress::run(config))
        })
        .collect();
    let mut reports = Vec::new();
    for run in runs {
        reports.push(run.await.expect("stress task").expect("stress run"));
    }
    drop(servers);
    row(durability, &processes.to_string(), workers, &reports)
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
    let report = stress::run(cycle_config(server.url(), workers, total_ops))
        .await
        .expect("stress run");
    server.shutdown().await.expect("shutdown");
    row(durability, "", workers, &[report])
}
