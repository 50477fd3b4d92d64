//! Borrow+return throughput over real HTTP on loopback, unsigned and signed + keyed.
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
//! In the in-process table each configuration runs twice per round: `unsigned` (no credentials, the default server) and
//! `signed+keyed` (a server with `--api-keys` and `--require-signature`; every borrow signed in
//! the nonce form and every request sent with its API key, so each signed borrow also writes its
//! nonce to the replay memory). The two alternate in order from round to round, so drift in the
//! machine's load hits both alike; the summary gives the median of each and their ratio (target:
//! signed+keyed at least 80% of unsigned).
//!
//! Run: `cargo bench -p license-demo --bench throughput`
//! Columns: cycles/s counts completed borrow+return pairs, requests/s both requests; latencies are
//! borrow/return (b/r), the worse process's in the processes table.
//! Tune: `BENCH_OPS` (total borrow+return cycles per row, default 40000),
//!       `BENCH_WORKERS` (comma list, default `16,64`),
//!       `BENCH_ROUNDS` (in-process table, default 3), `BENCH_DURABILITY` (`normal`, `full` or
//!       `both`, the default), `BENCH_TABLES` (`in-process`, `processes` or `all`, the default).

use license_demo::auth::{ApiKeys, SecurityConfig, SignatureVerifier};
use license_demo::config::{parse_api_keys_toml, ToolSpec};
use license_demo::pool::{DbLocation, Durability};
use license_demo::server::{self, ServerConfig};
use license_demo::stress::report::StressReport;
use license_demo::stress::{self, Credentials, Mode, Profile, StressConfig};
use realtime_layer::SystemClock;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const API_KEY: &str = "bench-key-0123456789abcdef";
const VENDOR: &str = "bench-vendor";
const VENDOR_SECRET: &str = "bench-vendor-secret-0123456789";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Unsigned,
    SignedKeyed,
}

impl Auth {
    fn name(self) -> &'static str {
        match self {
            Auth::Unsigned => "unsigned",
            Auth::SignedKeyed => "signed+keyed",
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument, if any, is ignored.
    let total_ops: usize = env_or("BENCH_OPS", 40_000);
    let rounds: usize = env_or("BENCH_ROUNDS", 3).max(1);
    let workers: Vec<usize> = std::env::var("BENCH_WORKERS")
        .unwrap_or_else(|_| "16,64".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let durabilities = match std::env::var("BENCH_DURABILITY").as_deref() {
        Ok("normal") => vec![Durability::Normal],
        Ok("full") => vec![Durability::Full],
        _ => vec![Durability::Normal, Durability::Full],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "license-demo throughput: borrow+return cycles over HTTP/1.1 loopback, {} cores, {} cycles per row, {rounds} rounds",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        total_ops
    );
    let tables = std::env::var("BENCH_TABLES").unwrap_or_else(|_| "all".into());
    if matches!(tables.as_str(), "all" | "in-process") {
        header("in-process: the app in this process", "auth, round");
        in_process_table(&runtime, &durabilities, &workers, total_ops, rounds);
    }
    if matches!(tables.as_str(), "all" | "processes") {
        header(
            "processes: one database file, N license-demo processes (release binary), unsigned",
            "processes",
        );
        for &durability in &durabilities {
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
        "{:<10} {:<16} {:>8} {:>10} {:>10} {:>11} {:>14} {:>14} {:>7}",
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

/// Unsigned and signed+keyed rows, alternating in order from round to round, then the medians
/// and their ratio.
fn in_process_table(
    runtime: &tokio::runtime::Runtime,
    durabilities: &[Durability],
    workers: &[usize],
    total_ops: usize,
    rounds: usize,
) {
    let mut results: Vec<Measured> = durabilities
        .iter()
        .flat_map(|&d| {
            workers.iter().map(move |&w| Measured {
                config: (d, w),
                unsigned: Vec::new(),
                signed: Vec::new(),
            })
        })
        .collect();
    for round in 1..=rounds {
        for Measured {
            config,
            unsigned,
            signed,
        } in results.iter_mut()
        {
            let order = if round % 2 == 1 {
                [Auth::Unsigned, Auth::SignedKeyed]
            } else {
                [Auth::SignedKeyed, Auth::Unsigned]
            };
            for auth in order {
                let label = format!("{} #{round}", auth.name());
                let (row, cycles) =
                    runtime.block_on(one_row(config.0, config.1, total_ops, auth, &label));
                println!("{row}");
                match auth {
                    Auth::Unsigned => unsigned.push(cycles),
                    Auth::SignedKeyed => signed.push(cycles),
                }
            }
        }
    }
    println!();
    println!(
        "{:<10} {:>8} {:>18} {:>22} {:>7}",
        "durability", "workers", "unsigned cycles/s", "signed+keyed cycles/s", "ratio"
    );
    for Measured {
        config: (durability, workers),
        unsigned,
        signed,
    } in &results
    {
        let (u, s) = (median(unsigned), median(signed));
        println!(
            "{:<10} {:>8} {:>18.0} {:>22.0} {:>6.0}%",
            format!("{durability:?}").to_lowercase(),
            workers,
            u,
            s,
            100.0 * s / u
        );
    }
    println!("(medians over {rounds} rounds; target: signed+keyed >= 80% of unsigned)");
}

/// One configuration (durability, workers) and its cycles/s per round, unsigned and signed.
struct Measured {
    config: (Durability, usize),
    unsigned: Vec<f64>,
    signed: Vec<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn security(auth: Auth) -> SecurityConfig {
    match auth {
        Auth::Unsigned => SecurityConfig::default(),
        Auth::SignedKeyed => {
            let keys = format!("[keys.\"{API_KEY}\"]\ntenant = \"bench\"\nusers = [\"*\"]\n");
            let vendors = vec![(VENDOR.to_string(), VENDOR_SECRET.to_string())];
            SecurityConfig {
                api_keys: Some(Arc::new(ApiKeys::new(
                    parse_api_keys_toml(&keys).expect("keys"),
                ))),
                signatures: Some(Arc::new(SignatureVerifier::new(
                    vendors,
                    Arc::new(SystemClock::new()),
                ))),
                ..SecurityConfig::default()
            }
        }
    }
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
fn row(durability: Durability, label: &str, workers: usize, reports: &[StressReport]) -> String {
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
        "{:<10} {:<16} {:>8} {:>10.2} {:>10.0} {:>11.0} {:>14} {:>14} {:>7}",
        format!("{durability:?}").to_lowercase(),
        label,
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

async fn one_row(
    durability: Durability,
    workers: usize,
    total_ops: usize,
    auth: Auth,
    label: &str,
) -> (String, f64) {
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
        security: security(auth),
        serve: Default::default(),
        stream: Default::default(),
        usage: None,
        clock_offset_ms: 0,
    })
    .await
    .expect("server");
    let mut config = cycle_config(server.url(), workers, total_ops);
    if auth == Auth::SignedKeyed {
        config.credentials = Credentials {
            vendor: Some((VENDOR.into(), VENDOR_SECRET.to_string().into())),
            api_key: Some(API_KEY.to_string().into()),
        };
    }
    let report = stress::run(config).await.expect("stress run");
    server.shutdown().await.expect("shutdown");
    let cycles = report.returns_ok as f64 / report.elapsed_secs;
    (row(durability, label, workers, &[report]), cycles)
}
