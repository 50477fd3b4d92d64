//! What the live stream costs under sustained load, with many SSE clients in a separate process.
//!
//! Run: `cargo bench -p license-demo --bench stream_clients` (builds license-demo in release).
//!
//! The bench starts two children from the `license-demo` binary: the server (temp SQLite file,
//! `--log warn`) and the load generator (`license-demo stress --workers 4 --rate 10`: 10
//! borrow+return cycles/s, 20 events/s, until killed). For each client count N it then opens N
//! raw SSE connections to `/realtime/stream` from this process (ramped in 100 at a time), waits
//! until every client has its snapshot plus a warm-up, and measures over a window:
//!
//! - the server's CPU time (utime+stime from `/proc/<pid>/stat`) as a percentage of one core,
//!   with the kernel's share apart (on loopback a socket write also runs the receiving side's
//!   TCP processing, charged to the writer: most of the kernel share);
//! - response bytes per client per second (chunk framing included: what the server sends; the
//!   initial snapshot excluded), mean and min–max over the clients;
//! - SSE frames per client per second (messages with a `data:` line; keep-alives excluded);
//! - push latency on the first 20 clients: for each event of each delta, the time the frame was
//!   read minus the event's record time (`ts_ms + dt`), p50/p99/max;
//! - the events/s the load actually produced (events carried by one client's deltas);
//! - clients that failed (refused, non-200, disconnected), and this process's and the load
//!   generator's CPU for information.
//!
//! The targets are printed next to the numbers (≤ 3 KB/s per client, server ≤ 10 % of a
//! core at 1,000 clients, push p99 ≤ 150 ms); a miss is reported, not an error.
//!
//! Why separate processes: the server's CPU is read from `/proc/<server pid>/stat`, so it counts
//! the server alone, not the 1,000 clients parsing frames nor the load generator, as it would
//! be in production where the dashboards run in browsers elsewhere. All three still share this
//! machine's cores, so the wall-clock latency includes some scheduling noise.
//!
//! Knobs: `STREAM_CLIENTS` (comma list of N, default `0,100,1000`; 0 measures the server under
//! the load alone, and the streams' own cost is printed as the difference), `STREAM_BENCH_SECS`
//! (measuring window per N, default 20), `STREAM_PUSH_DELAYS` (comma list of the server's
//! `--push-delay-ms`, default `100`, one server each: the CPU / latency trade-off). The server
//! runs with `--max-streams 100000` and its other defaults: at 1,000 clients its push delay
//! stretches to 125 ms (`--stream-frame-budget` 8,000 frames/s, `--max-push-delay-ms` 150); the
//! server inherits this process's environment, so `LICENSE_DEMO_STREAM_FRAME_BUDGET=100000000`
//! measures a fixed delay.
//!
//! After the table, the kernel floor (`STREAM_FLOOR=0` skips it): the same writes at the
//! same rate and size, by a bare writer (see `stream_clients/floor.rs`), read by the same
//! clients; its system time is what the kernel charges any writer for them on loopback.
//!
//! Under `cargo test --benches` (or with `--test` instead of `--bench`) it runs a smoke version:
//! N = 5, a 2 s window.
//!
//! Linux only (`/proc`).

// A crate root looks for `mod x;` next to itself: the parts live in stream_clients/.
#[path = "stream_clients/children.rs"]
mod children;
#[path = "stream_clients/client.rs"]
mod client;
#[path = "stream_clients/cpu.rs"]
mod cpu;
#[path = "stream_clients/floor.rs"]
mod floor;
#[path = "stream_clients/report.rs"]
mod report;

use children::{start_load, start_server, Children};
use client::{Client, ClientStats, CONNECTING};
use cpu::CpuTimes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Clients whose frames are parsed for push latency.
const LATENCY_CLIENTS: usize = 20;
/// Connections opened at once while ramping in.
const RAMP_BATCH: usize = 100;

/// What to run.
struct Settings {
    sizes: Vec<usize>,
    /// The server's `--push-delay-ms` values, one server (and load generator) each.
    push_delays_ms: Vec<u64>,
    window: Duration,
    warm_up: Duration,
    smoke: bool,
}

impl Settings {
    fn from_args_and_env() -> Settings {
        // `cargo bench` passes `--bench`; `cargo test --benches` does not: keep that cheap.
        let args: Vec<String> = std::env::args().collect();
        let smoke = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
        if smoke {
            return Settings {
                sizes: vec![5],
                push_delays_ms: vec![100],
                window: Duration::from_secs(2),
                warm_up: Duration::from_secs(1),
                smoke,
            };
        }
        let sizes = std::env::var("STREAM_CLIENTS")
            .unwrap_or_else(|_| "0,100,1000".into())
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<usize>()
                    .expect("STREAM_CLIENTS is a comma list of client counts")
            })
            .collect();
        let secs: f64 = std::env::var("STREAM_BENCH_SECS").map_or(20.0, |s| {
            s.trim()
                .parse()
                .expect("STREAM_BENCH_SECS is a number of seconds")
        });
        let push_delays_ms = std::env::var("STREAM_PUSH_DELAYS")
            .unwrap_or_else(|_| "100".into())
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<u64>()
                    .expect("STREAM_PUSH_DELAYS is a comma list of milliseconds")
            })
            .collect();
        Settings {
            sizes,
            push_delays_ms,
            window: Duration::from_secs_f64(secs),
            warm_up: Duration::from_secs(3),
            smoke,
        }
    }
}

/// Where the server and load generator run.
struct Target {
    addr: SocketAddr,
    /// The server's `/metrics` (`None` for the bare writer of the kernel floor).
    metrics_url: Option<String>,
    /// Clients whose frames are parsed for push latency (0 for the bare writer).
    latency_clients: usize,
    server_pid: u32,
    load_pid: u32,
    http: reqwest::Client,
}

/// The numbers of one round.
pub(crate) struct Row {
    pub(crate) clients: usize,
    pub(crate) push_delay_ms: u64,
    pub(crate) window_secs: f64,
    pub(crate) server_cpu: f64,
    /// The kernel's share of `server_cpu`.
    pub(crate) server_system_cpu: f64,
    pub(crate) bench_cpu: f64,
    pub(crate) load_cpu: f64,
    /// Mean, min, max over the clients that stayed connected.
    pub(crate) bytes_per_sec: (f64, f64, f64),
    pub(crate) frames_per_sec: f64,
    /// p50, p99, max and the sample count.
    pub(crate) latency: Option<(f64, f64, f64, usize)>,
    pub(crate) events_per_sec: f64,
    pub(crate) failed: usize,
    pub(crate) first_failure: Option<String>,
    /// Streams the server still counted after the clients closed.
    pub(crate) left_open: Option<f64>,
}

impl Row {
    /// The user-space share of `server_cpu`.
    pub(crate) fn server_user_cpu(&self) -> f64 {
        self.server_cpu - self.server_system_cpu
    }
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !done() {
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The server's `realtime_stream_clients` gauge.
async fn open_streams(target: &Target) -> Option<f64> {
    let text = target
        .http
        .get(target.metrics_url.as_ref()?)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("realtime_stream_clients"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

async fn round(target: &Target, n: usize, settings: &Settings) -> Row {
    let measuring = Arc::new(AtomicBool::new(false));
    let mut clients: Vec<(Arc<ClientStats>, JoinHandle<()>)> = Vec::with_capacity(n);
    let ramp = Instant::now();
    for batch in (0..n).step_by(RAMP_BATCH) {
        let end = (batch + RAMP_BATCH).min(n);
        for i in batch..end {
            let stats = Arc::new(ClientStats::default());
            let client = Client {
                addr: target.addr,
                stats: stats.clone(),
                parse: i < target.latency_clients,
                measuring: measuring.clone(),
            };
            clients.push((stats, tokio::spawn(client.run())));
        }
        let answered = wait_until(Duration::from_secs(10), || {
            clients[batch..end]
                .iter()
                .all(|(s, _)| s.phase.load(Ordering::Acquire) != CONNECTING)
        })
        .await;
        if !answered {
            eprintln!("  some of clients {batch}..{end} got no response head within 10 s");
        }
    }
    // Every client has its snapshot (or has failed), then the warm-up.
    let snapshots = wait_until(Duration::from_secs(30), || {
        clients
            .iter()
            .all(|(s, _)| s.failed() || s.frames.load(Ordering::Relaxed) > 0)
    })
    .await;
    if !snapshots {
        eprintln!("  not every client had its snapshot within 30 s");
    }
    eprintln!(
        "  {n} clients in {:.1} s; warm-up {:?}, measuring {:?}",
        ramp.elapsed().as_secs_f64(),
        settings.warm_up,
        settings.window
    );
    tokio::time::sleep(settings.warm_up).await;

    let before: Vec<[u64; 3]> = clients.iter().map(|(s, _)| s.counters()).collect();
    let cpu0 = CpuTimes::now(target.server_pid, target.load_pid);
    let t0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(settings.window).await;
    measuring.store(false, Ordering::Relaxed);
    let cpu1 = CpuTimes::now(target.server_pid, target.load_pid);
    let wall = t0.elapsed().as_secs_f64();
    let after: Vec<[u64; 3]> = clients.iter().map(|(s, _)| s.counters()).collect();

    let alive: Vec<usize> = (0..n).filter(|&i| !clients[i].0.failed()).collect();
    let per_client = |i: usize, k: usize| (after[i][k] - before[i][k]) as f64 / wall;
    let bytes: Vec<f64> = alive.iter().map(|&i| per_client(i, 0)).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let frames: Vec<f64> = alive.iter().map(|&i| per_client(i, 1)).collect();
    let events_per_sec = alive
        .iter()
        .find(|&&i| i < LATENCY_CLIENTS)
        .map_or(0.0, |&i| per_client(i, 2));
    let mut samples: Vec<f64> = clients
        .iter()
        .take(LATENCY_CLIENTS)
        .flat_map(|(s, _)| s.latencies_ms.lock().expect("latency lock").clone())
        .collect();
    samples.sort_by(f64::total_cmp);
    let latency = (!samples.is_empty()).then(|| {
        (
            percentile(&samples, 50.0),
            percentile(&samples, 99.0),
            samples[samples.len() - 1],
            samples.len(),
        )
    });
    let failed = clients.iter().filter(|(s, _)| s.failed()).count();
    let first_failure = clients
        .iter()
        .find_map(|(s, _)| s.failure.lock().expect("failure lock").clone());

    // Close every client; the server must see them go before the next round (max_streams).
    for (_, task) in &clients {
        task.abort();
    }
    for (_, task) in clients {
        let _ = task.await;
    }
    let mut left_open = open_streams(target).await;
    let end = Instant::now() + Duration::from_secs(15);
    while left_open.is_some_and(|open| open > 0.0) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left_open = open_streams(target).await;
    }
    let percent = |a: f64, b: f64| 100.0 * (b - a) / wall;
    Row {
        clients: n,
        push_delay_ms: 0,
        window_secs: wall,
        server_cpu: percent(cpu0.server, cpu1.server),
        server_system_cpu: percent(cpu0.server_system, cpu1.server_system),
        bench_cpu: percent(cpu0.bench, cpu1.bench),
        load_cpu: percent(cpu0.load, cpu1.load),
        bytes_per_sec: (
            mean(&bytes),
            bytes.iter().copied().fold(f64::INFINITY, f64::min),
            bytes.iter().copied().fold(0.0, f64::max),
        ),
        frames_per_sec: mean(&frames),
        latency,
        events_per_sec,
        failed,
        first_failure,
        left_open,
    }
}

fn main() {
    floor::run_if_asked();
    let settings = Settings::from_args_and_env();
    if settings.smoke {
        println!("(smoke run: 5 clients, 2 s; use `cargo bench` for the real numbers)");
    }
    match realtime_layer::serve::raise_nofile_limit() {
        Ok((_, Some(now))) => {
            let need = settings.sizes.iter().max().copied().unwrap_or(0) as u64 + 64;
            if now.soft < need {
                eprintln!(
                    "open-file limit {} < {need}: the largest round will fail",
                    now.soft
                );
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("cannot raise the open-file limit: {e}"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    for &push_delay_ms in &settings.push_delays_ms {
        let dir = tempfile::TempDir::new().expect("create a temp dir for the database");
        // Declared after `dir`: the children die before their database is removed.
        let mut children = Children::default();
        let (url, server_pid) =
            start_server(&mut children, &dir.path().join("bench.db"), push_delay_ms);
        let load_pid = start_load(&mut children, &url);
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("server URL {url} is not http://IP:PORT: {e}"));
        println!(
            "license-demo live stream under load: server {url} (pid {server_pid}, push delay \
             {push_delay_ms} ms), load generator pid {load_pid} (stress --workers 4 --rate 10), \
             {} cores, clients {:?}, window {:?}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            settings.sizes,
            settings.window
        );
        let target = Target {
            addr,
            metrics_url: Some(format!("{url}/metrics")),
            latency_clients: LATENCY_CLIENTS,
            server_pid,
            load_pid,
            http: reqwest::Client::new(),
        };
        for &n in &settings.sizes {
            eprintln!("push delay {push_delay_ms} ms, N = {n}:");
            let mut row = runtime.block_on(round(&target, n, &settings));
            row.push_delay_ms = push_delay_ms;
            let exited = children.exited();
            assert!(
                exited.is_empty(),
                "a child exited during the round: {exited:?}"
            );
            rows.push(row);
        }
    }
    report::print_table(&rows);
    if !settings.smoke && std::env::var("STREAM_FLOOR").map_or(true, |v| v != "0") {
        kernel_floor(&runtime, &rows, &settings);
    }
}

/// Measures the bare writer (see `floor`) at the frame rate and size of the largest round of
/// the first push delay, and prints it under the table.
fn kernel_floor(runtime: &tokio::runtime::Runtime, rows: &[Row], settings: &Settings) {
    let Some(like) = rows
        .iter()
        .filter(|r| r.push_delay_ms == rows[0].push_delay_ms && r.frames_per_sec > 0.0)
        .max_by_key(|r| r.clients)
    else {
        return;
    };
    let interval = Duration::from_secs_f64(1.0 / like.frames_per_sec);
    let frame_bytes = (like.bytes_per_sec.0 / like.frames_per_sec).round() as usize;
    let writer = floor::start(like.clients, interval, frame_bytes);
    let pid = writer.child.id();
    let target = Target {
        addr: writer.addr,
        metrics_url: None,
        latency_clients: 0,
        server_pid: pid,
        load_pid: pid,
        http: reqwest::Client::new(),
    };
    eprintln!("kernel floor, N = {}:", like.clients);
    let row = runtime.block_on(round(&target, like.clients, settings));
    drop(writer);
    println!(
        "\nKernel floor (the same writes by a bare one-thread writer: no HTTP library, no async \
         runtime; {} sockets, {:.1} frames/s each, {frame_bytes} B per frame; the server's row \
         above: push delay {} ms): **{:.1} % of a core ({:.1} user + {:.1} system)**, {:.0} B/s \
         per client.",
        like.clients,
        row.frames_per_sec,
        like.push_delay_ms,
        row.server_cpu,
        row.server_user_cpu(),
        row.server_system_cpu,
        row.bytes_per_sec.0,
    );
}
