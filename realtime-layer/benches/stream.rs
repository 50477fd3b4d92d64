//! Live stream costs, printed as tables (`cargo bench -p realtime-layer --bench stream`):
//!
//! 1. snapshot frame build time with 1k vs 210k buffered events (it must not grow with events);
//! 2. frame sizes at "medium load" (5 resources, ~10 events/s) seen by one SSE client;
//! 3. N = 1, 100, 1000 concurrent SSE clients over loopback, ~5 s each, same load: process CPU
//!    time (server, load generator and the in-process clients together) and bytes per client per
//!    second.
//!
//! Whole run: well under a minute. Set `STREAM_BENCH_SECS` to change the per-phase duration.

use realtime_layer::{
    Event, EventFilter, ManualClock, Realtime, ResourceStatus, StreamConfig, SystemClock,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const RESOURCES: [(&str, u32, u32); 5] = [
    ("CAN Bus Analyzer Pro", 20, 10),
    ("ECU Development Suite", 12, 6),
    ("GPU A100", 8, 4),
    ("Oscilloscope Bundle", 30, 15),
    ("Vector CANoe", 16, 8),
];

/// splitmix64: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A pool simulation: levels shared with the status source.
#[derive(Clone)]
struct Pools {
    levels: Arc<Mutex<[u32; 5]>>,
}

impl Pools {
    fn new() -> Self {
        Pools {
            levels: Arc::new(Mutex::new([0; 5])),
        }
    }

    fn status(&self) -> Vec<ResourceStatus> {
        let levels = *self.levels.lock().unwrap();
        RESOURCES
            .iter()
            .zip(levels)
            .map(|(&(name, total, commit), borrowed)| {
                ResourceStatus::new(name, total, commit, borrowed)
            })
            .collect()
    }

    /// One plausible event: borrows and returns around half the pool, some failures.
    fn event(&self, rng: &mut Rng) -> Event {
        let r = rng.below(5) as usize;
        let (name, total, commit) = RESOURCES[r];
        let user = format!("user{:03}", rng.below(200));
        let mut levels = self.levels.lock().unwrap();
        let level = levels[r];
        if rng.below(20) == 0 {
            return Event::failure(name, user, "denied");
        }
        if level > 0 && rng.below(total as u64 + 2) < level as u64 {
            levels[r] -= 1;
            Event::returned(name, user).borrow_id(rng.next().to_string())
        } else if level >= total {
            Event::failure(name, user, "exhausted")
        } else {
            levels[r] += 1;
            Event::borrow(name, user)
                .overage(level >= commit)
                .borrow_id(rng.next().to_string())
        }
    }
}

fn cpu_time() -> Duration {
    #[cfg(unix)]
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }
    #[cfg(not(unix))]
    Duration::ZERO
}

/// A filled instance: `n` events spread over the last 6 h.
fn filled(n: u64) -> Realtime {
    let start_ms = 1_764_000_000_000u64;
    let clock = ManualClock::new(start_ms);
    let pools = Pools::new();
    let p = pools.clone();
    let realtime = Realtime::builder()
        .clock(clock.clone())
        .status_source(move || p.status())
        .build()
        .unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let span_ms = 6 * 3600 * 1000 - 10_000;
    for i in 0..n {
        clock.set(start_ms + i * span_ms / n);
        realtime.record(pools.event(&mut rng));
    }
    clock.set(start_ms + span_ms + 500);
    let held = realtime.buffer().stats().total_events;
    assert!(held as f64 >= n as f64 * 0.99, "held {held} of {n}");
    realtime
}

/// Part 1: build time of a snapshot frame against the number of buffered events. The two
/// instances are measured in alternating rounds (the median round is reported), so machine noise
/// hits both alike.
fn snapshot_build() {
    println!("## 1. Snapshot frame build (5 resources, events spread over 6 h)\n");
    println!("| buffered events | filter | build time (median of 9 rounds x 300) | frame bytes |");
    println!("|---:|---|---:|---:|");
    let instances = [filled(1_000), filled(210_000)];
    let filters = [
        ("none", EventFilter::default()),
        (
            "resource",
            EventFilter {
                resource: Some("GPU A100".into()),
                ..EventFilter::default()
            },
        ),
        (
            "user",
            EventFilter {
                user: Some("user007".into()),
                ..EventFilter::default()
            },
        ),
    ];
    let mut ratio = 0.0;
    for (label, filter) in &filters {
        let mut rounds: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..9 {
            for (i, realtime) in instances.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..300 {
                    std::hint::black_box(realtime.snapshot_frame(filter));
                }
                rounds[i].push(t.elapsed() / 300);
            }
        }
        let mut medians = [Duration::ZERO; 2];
        for (i, realtime) in instances.iter().enumerate() {
            rounds[i].sort();
            medians[i] = rounds[i][rounds[i].len() / 2];
            println!(
                "| {} | {label} | {:.1?} | {} |",
                realtime.buffer().stats().total_events,
                medians[i],
                realtime.snapshot_frame(filter).len()
            );
        }
        if *label == "none" {
            ratio = medians[1].as_secs_f64() / medians[0].as_secs_f64();
        }
    }
    println!("\nratio 210k / 1k (no filter): {ratio:.2}x\n");
}

/// An app with the realtime routes and a ~10 events/s load generator.
async fn start_server(stop: CancellationToken) -> (SocketAddr, Realtime) {
    let pools = Pools::new();
    let p = pools.clone();
    let realtime = Realtime::builder()
        .clock(SystemClock::new())
        .status_source(move || p.status())
        .stream_config(StreamConfig {
            max_streams: 2_000,
            ..StreamConfig::default()
        })
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = realtime.routes();
    let token = realtime.shutdown_token();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .unwrap();
    });
    let rt = realtime.clone();
    tokio::spawn(async move {
        let mut rng = Rng(42);
        loop {
            // Poisson-ish arrivals, mean 100 ms.
            let wait = 20 + rng.below(160);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
            rt.record(pools.event(&mut rng));
        }
    });
    (addr, realtime)
}

/// Part 2: sizes of the frames one client receives at medium load.
async fn frame_sizes(secs: u64) {
    let stop = CancellationToken::new();
    let (addr, realtime) = start_server(stop.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // some activity first
    let mut res = reqwest::get(format!("http://{addr}/realtime/stream"))
        .await
        .unwrap();
    let mut buf = String::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut snapshot = 0;
    let mut with_resources = 0;
    let mut with_events = 0;
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(2), res.chunk()).await
        else {
            break;
        };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(i) = buf.find("\n\n") {
            let msg: String = buf.drain(..i + 2).collect();
            if let Some(data) = msg.lines().find_map(|l| l.strip_prefix("data: ")) {
                if data.contains("\"kind\":\"snapshot\"") {
                    snapshot = msg.len();
                    continue;
                }
                with_resources += data.contains("\"resources\"") as usize;
                with_events += data.contains("\"events\"") as usize;
                sizes.push(msg.len());
            }
        }
    }
    let total: usize = sizes.iter().sum();
    let n = sizes.len().max(1);
    sizes.sort_unstable();
    println!("## 2. Frames at medium load (5 resources, ~10 events/s, {secs} s, one client)\n");
    println!("| snapshot bytes | deltas | deltas/s | mean delta bytes | p50 | p95 | max | with resources | with events | bytes/s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {snapshot} | {} | {:.1} | {:.0} | {} | {} | {} | {} | {} | {:.0} |\n",
        sizes.len(),
        sizes.len() as f64 / secs as f64,
        total as f64 / n as f64,
        sizes[n / 2],
        sizes[n * 95 / 100],
        sizes[n - 1],
        with_resources,
        with_events,
        total as f64 / secs as f64
    );
    realtime.shutdown();
    stop.cancel();
}

async fn raw_client(addr: SocketAddr, bytes: Arc<AtomicU64>, ready: Arc<AtomicU64>) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    if s.write_all(b"GET /realtime/stream HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut first = true;
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if first {
                    first = false;
                    ready.fetch_add(1, Ordering::Relaxed);
                }
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Part 3: N concurrent clients.
async fn fan_out(secs: u64) {
    println!("## 3. Concurrent SSE clients over loopback (medium load, {secs} s each)\n");
    println!("| clients | process CPU | CPU % of one core | CPU per client-second | bytes/client/s | open after disconnect |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in [1u64, 100, 1000] {
        let stop = CancellationToken::new();
        let (addr, realtime) = start_server(stop.clone()).await;
        let bytes = Arc::new(AtomicU64::new(0));
        let ready = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..n {
            tasks.push(tokio::spawn(raw_client(addr, bytes.clone(), ready.clone())));
        }
        let t = Instant::now();
        while ready.load(Ordering::Relaxed) < n && t.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(ready.load(Ordering::Relaxed), n, "all clients connected");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (b0, c0, t0) = (bytes.load(Ordering::Relaxed), cpu_time(), Instant::now());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (b1, c1, wall) = (bytes.load(Ordering::Relaxed), cpu_time(), t0.elapsed());
        let cpu = c1 - c0;
        for task in &tasks {
            task.abort();
        }
        let t = Instant::now();
        while realtime.stream_clients() > 0 && t.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "| {n} | {cpu:.2?} | {:.1} % | {:.1?} | {:.0} | {} |",
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
            cpu / (n as u32 * wall.as_secs() as u32).max(1),
            (b1 - b0) as f64 / n as f64 / wall.as_secs_f64(),
            realtime.stream_clients()
        );
        realtime.shutdown();
        stop.cancel();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("STREAM_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 5 });
    if quick {
        println!("(quick run: pass --bench, or use `cargo bench`, for the real numbers)\n");
    }
    println!(
        "# realtime-layer stream bench ({} CPUs)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    snapshot_build();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        frame_sizes(if quick { secs } else { 10 }).await;
        fan_out(secs).await;
    });
}
