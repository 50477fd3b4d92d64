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
//! Knobs: `STREAM_CLIENTS` (comma list of N, default `100,1000`), `STREAM_BENCH_SECS` (measuring
//! window per N, default 20), `STREAM_PUSH_DELAYS` (comma list of the server's
//! `--push-delay-ms`, default `100`, one server each: the CPU / latency trade-off). The server
//! runs with `--max-streams 100000`.
//!
//! Under `cargo test --benches` (or with `--test` instead of `--bench`) it runs a smoke version:
//! N = 5, a 2 s window.
//!
//! Linux only (`/proc`).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Clients whose frames are parsed for push latency.
const LATENCY_CLIENTS: usize = 20;
/// Connections opened at once while ramping in.
const RAMP_BATCH: usize = 100;
/// Targets from the issue.
const TARGET_BYTES_PER_SEC: f64 = 3_000.0;
const TARGET_SERVER_CPU_PERCENT: f64 = 10.0;
const TARGET_CPU_AT_CLIENTS: usize = 1_000;
const TARGET_P99_MS: f64 = 150.0;
/// Above this share of failed clients the numbers are flagged.
const FAILED_SHARE_WARNING: f64 = 0.01;

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
            .unwrap_or_else(|_| "100,1000".into())
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

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// The server and the load generator: killed (by pid, SIGKILL) when dropped, also on panic.
#[derive(Default)]
struct Children(Vec<(&'static str, Child)>);

impl Children {
    /// Names of the children that have exited, with their status.
    fn exited(&mut self) -> Vec<String> {
        self.0
            .iter_mut()
            .filter_map(|(name, child)| match child.try_wait() {
                Ok(Some(status)) => Some(format!("{name} ({status})")),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (name, child) in self.0.iter_mut().rev() {
            if let Err(e) = child.kill() {
                eprintln!("cannot kill the {name} (pid {}): {e}", child.id());
            }
            let _ = child.wait();
        }
    }
}

/// Forwards a child's output lines: to `first` while its receiver lives, then to stderr with a
/// prefix (the first 50 lines; the rest is read and dropped so the child never blocks on a full
/// pipe).
fn forward_lines(name: &'static str, out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut echoed = 0;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if let Err(mpsc::SendError(line)) = tx.send(line) {
                if echoed < 50 {
                    eprintln!("[{name}] {line}");
                    echoed += 1;
                }
            }
        }
    });
    rx
}

/// Starts the server on a free loopback port; returns its base URL.
fn start_server(children: &mut Children, db: &Path, push_delay_ms: u64) -> (String, u32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .arg("--bind")
        .arg("127.0.0.1:0")
        .arg("--db")
        .arg(db)
        .args(["--log", "warn"])
        .args(["--push-delay-ms", &push_delay_ms.to_string()])
        // Well above the largest round (the default, 1,000, would refuse the 1,001st client).
        .args(["--max-streams", "100000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the license-demo server");
    let pid = child.id();
    let stdout = child.stdout.take().expect("the server's stdout is piped");
    children.0.push(("server", child));
    let lines = forward_lines("server", stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no URL from the server ({e}); it printed {seen:?}"));
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            return (url.trim_end_matches('/').to_string(), pid);
        }
        seen.push(line);
    }
}

/// Starts `license-demo stress` against `url` at 10 cycles/s, for far longer than the bench.
fn start_load(children: &mut Children, url: &str) -> u32 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args(["stress", "--target", url])
        .args(["--workers", "4", "--rate", "10", "--ops", "100000"])
        .arg("--no-progress")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start license-demo stress");
    let pid = child.id();
    let stderr = child.stderr.take().expect("the load's stderr is piped");
    children.0.push(("load generator", child));
    drop(forward_lines("stress", stderr));
    pid
}

// ---------------------------------------------------------------------------------------------
// CPU time from /proc
// ---------------------------------------------------------------------------------------------

/// CPU seconds (user + system) of a process so far; `proc` is a pid or `self`.
fn cpu_seconds(proc: &str) -> f64 {
    let (user, system) = cpu_split(proc);
    user + system
}

/// CPU seconds of a process so far, user and system (kernel: mostly socket writes) apart.
fn cpu_split(proc: &str) -> (f64, f64) {
    let path = format!("/proc/{proc}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    // The command name (field 2) is in parentheses and may hold spaces: fields 3.. follow the
    // last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("/proc stat has (comm)") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |field: usize| -> u64 {
        fields[field - 3]
            .parse()
            .unwrap_or_else(|e| panic!("field {field} of {path}: {e}"))
    };
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(per_sec > 0, "sysconf(_SC_CLK_TCK) failed");
    (
        ticks(14) as f64 / per_sec as f64,
        ticks(15) as f64 / per_sec as f64,
    )
}

/// CPU seconds of the server, this process and the load generator, read together.
#[derive(Clone, Copy)]
struct CpuTimes {
    server: f64,
    server_system: f64,
    bench: f64,
    load: f64,
}

impl CpuTimes {
    fn now(server: u32, load: u32) -> CpuTimes {
        let (user, system) = cpu_split(&server.to_string());
        CpuTimes {
            server: user + system,
            server_system: system,
            bench: cpu_seconds("self"),
            load: cpu_seconds(&load.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One SSE client
// ---------------------------------------------------------------------------------------------

const CONNECTING: u8 = 0;
const STREAMING: u8 = 1;
const FAILED: u8 = 2;

/// What one client has seen, read by the measuring code.
#[derive(Default)]
struct ClientStats {
    phase: AtomicU8,
    /// Response bytes after the headers, chunk framing included (what the server sends).
    bytes: AtomicU64,
    /// SSE messages with a `data:` line.
    frames: AtomicU64,
    /// Events carried by deltas (latency clients only), omitted ones included.
    events: AtomicU64,
    failure: Mutex<Option<String>>,
    /// Push latencies in ms during the window (latency clients only).
    latencies_ms: Mutex<Vec<f64>>,
}

impl ClientStats {
    fn failed(&self) -> bool {
        self.phase.load(Ordering::Acquire) == FAILED
    }

    fn fail(&self, reason: String) {
        self.phase.store(FAILED, Ordering::Release);
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(reason);
    }

    fn counters(&self) -> [u64; 3] {
        [
            self.bytes.load(Ordering::Relaxed),
            self.frames.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
        ]
    }
}

/// Decodes a `Transfer-Encoding: chunked` body incrementally (or passes a plain one through).
struct Body {
    chunked: bool,
    raw: Vec<u8>,
}

impl Body {
    /// Appends the payload decoded from `bytes` to `out`; `Ok(false)` at the last chunk.
    fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
        if !self.chunked {
            out.extend_from_slice(bytes);
            return Ok(true);
        }
        self.raw.extend_from_slice(bytes);
        loop {
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return Ok(true);
            };
            let line = String::from_utf8_lossy(&self.raw[..line_end]);
            let hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                return Ok(false);
            }
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return Ok(true);
            }
            out.extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn unix_ms_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        * 1000.0
}

/// A client's decoding state: the body decoder, and SSE text not yet split into messages.
struct Decoder {
    body: Body,
    payload: Vec<u8>,
    messages: Vec<u8>,
}

/// One client's connection.
struct Client {
    addr: SocketAddr,
    stats: Arc<ClientStats>,
    /// Parse frames for latency and event counts.
    parse: bool,
    /// Set during the measuring window: latency samples are kept only then.
    measuring: Arc<AtomicBool>,
}

impl Client {
    async fn run(self) {
        let reason = match self.stream().await {
            Ok(()) => "the server ended the stream".to_string(),
            Err(e) => e,
        };
        self.stats.fail(reason);
    }

    /// Reads the stream until it ends (`Ok`) or breaks (`Err`).
    async fn stream(&self) -> Result<(), String> {
        let mut s = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // The server answers only to allowed Host names: the bound address is one.
        let request = format!(
            "GET /realtime/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr
        );
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send request: {e}"))?;
        let mut buf = vec![0u8; 8 * 1024];
        let (body, rest) = read_head(&mut s, &mut buf).await?;
        self.stats.phase.store(STREAMING, Ordering::Release);
        let mut decoder = Decoder {
            body,
            payload: Vec::new(),
            messages: Vec::new(),
        };
        let mut open = self.consume(&mut decoder, &rest, unix_ms_now())?;
        while open {
            let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            open = self.consume(&mut decoder, &buf[..n], unix_ms_now())?;
        }
        Ok(())
    }

    /// Counts and decodes bytes read at `read_at_ms`; `Ok(false)` when the body has ended.
    fn consume(&self, d: &mut Decoder, bytes: &[u8], read_at_ms: f64) -> Result<bool, String> {
        self.stats
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let open = d.body.push(bytes, &mut d.payload)?;
        d.messages.append(&mut d.payload);
        while let Some(end) = find(&d.messages, b"\n\n") {
            let message: Vec<u8> = d.messages.drain(..end + 2).collect();
            self.on_message(&message, read_at_ms)?;
        }
        Ok(open)
    }

    /// Counts a frame; on latency clients, also its events and (in the window) their latency.
    fn on_message(&self, message: &[u8], read_at_ms: f64) -> Result<(), String> {
        let text = String::from_utf8_lossy(message);
        let Some(data) = text.lines().find_map(|l| l.strip_prefix("data:")) else {
            return Ok(()); // `: keep-alive` or a lone `retry:`
        };
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        if !self.parse {
            return Ok(());
        }
        let frame: serde_json::Value = serde_json::from_str(data.trim_start())
            .map_err(|e| format!("frame is not JSON ({e}): {data}"))?;
        if frame["kind"] != "delta" {
            return Ok(());
        }
        let ts_ms = frame["ts_ms"]
            .as_f64()
            .ok_or_else(|| format!("frame without ts_ms: {data}"))?;
        let events = frame["ev"].as_array().map_or(&[][..], Vec::as_slice);
        let omitted = frame["events_omitted"].as_u64().unwrap_or(0);
        self.stats
            .events
            .fetch_add(events.len() as u64 + omitted, Ordering::Relaxed);
        if !self.measuring.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut samples = self.stats.latencies_ms.lock().expect("latency lock");
        for ev in events {
            // [dt, kind, resource, user, ...]: dt is the event's time minus the frame's.
            let dt = ev[0]
                .as_f64()
                .ok_or_else(|| format!("ev entry without dt: {ev}"))?;
            samples.push(read_at_ms - (ts_ms + dt));
        }
        Ok(())
    }
}

/// Reads the response head; fails unless it is `200`. Returns the body decoder and the bytes
/// read past the head.
async fn read_head(s: &mut TcpStream, buf: &mut [u8]) -> Result<(Body, Vec<u8>), String> {
    let mut head = Vec::new();
    loop {
        let n = s.read(buf).await.map_err(|e| format!("read head: {e}"))?;
        if n == 0 {
            return Err("closed before the response head".into());
        }
        head.extend_from_slice(&buf[..n]);
        let Some(end) = find(&head, b"\r\n\r\n") else {
            if head.len() > 64 * 1024 {
                return Err("response head over 64 KiB".into());
            }
            continue;
        };
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        let rest = head.split_off(end + 4);
        let status_line = text.lines().next().unwrap_or("");
        if status_line.split_whitespace().nth(1) != Some("200") {
            let body: String = String::from_utf8_lossy(&rest).chars().take(160).collect();
            return Err(format!("{status_line}: {body}"));
        }
        let chunked = text.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        let body = Body {
            chunked,
            raw: Vec::new(),
        };
        return Ok((body, rest));
    }
}

// ---------------------------------------------------------------------------------------------
// One round: N clients
// ---------------------------------------------------------------------------------------------

/// Where the server and load generator run.
struct Target {
    addr: SocketAddr,
    metrics_url: String,
    server_pid: u32,
    load_pid: u32,
    http: reqwest::Client,
}

/// The numbers of one round.
struct Row {
    clients: usize,
    push_delay_ms: u64,
    window_secs: f64,
    server_cpu: f64,
    /// The kernel's share of `server_cpu`.
    server_system_cpu: f64,
    bench_cpu: f64,
    load_cpu: f64,
    /// Mean, min, max over the clients that stayed connected.
    bytes_per_sec: (f64, f64, f64),
    frames_per_sec: f64,
    /// p50, p99, max and the sample count.
    latency: Option<(f64, f64, f64, usize)>,
    events_per_sec: f64,
    failed: usize,
    first_failure: Option<String>,
    /// Streams the server still counted after the clients closed.
    left_open: Option<f64>,
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
        .get(&target.metrics_url)
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
                parse: i < LATENCY_CLIENTS,
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

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn mark(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "over"
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "\nTargets (issue): ≤ {TARGET_BYTES_PER_SEC:.0} B/s (3 KB/s) per client (checked on the \
         max client), server ≤ {TARGET_SERVER_CPU_PERCENT:.0} % of one core at \
         {TARGET_CPU_AT_CLIENTS} clients, push latency p99 ≤ {TARGET_P99_MS:.0} ms; load: 10 \
         cycles/s = 20 events/s.\n"
    );
    println!(
        "| push delay | clients | server CPU % of a core (user + system) | bytes/s per client mean (min–max) | frames/s per \
         client | push latency ms p50 / p99 / max (samples) | events/s seen | failed clients | \
         bench-process CPU % | load-gen CPU % |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let cpu_mark = if r.clients >= TARGET_CPU_AT_CLIENTS {
            mark(r.server_cpu <= TARGET_SERVER_CPU_PERCENT)
        } else {
            "-"
        };
        let (mean, min, max) = r.bytes_per_sec;
        let latency = match r.latency {
            Some((p50, p99, top, count)) => format!(
                "{p50:.0} / {p99:.0} / {top:.0} ({count}) {}",
                mark(p99 <= TARGET_P99_MS)
            ),
            None => "no samples".into(),
        };
        println!(
            "| {} ms | {} | {:.1} % ({:.1} + {:.1}) {cpu_mark} | {mean:.0} ({min:.0}–{max:.0}) {} | {:.1} | {latency} | \
             {:.1} | {} | {:.1} % | {:.1} % |",
            r.push_delay_ms,
            r.clients,
            r.server_cpu,
            r.server_cpu - r.server_system_cpu,
            r.server_system_cpu,
            mark(max <= TARGET_BYTES_PER_SEC),
            r.frames_per_sec,
            r.events_per_sec,
            r.failed,
            r.bench_cpu,
            r.load_cpu,
        );
    }
    println!();
    for r in rows {
        println!(
            "push delay {} ms, N = {}: window {:.1} s; server streams left open after close: {}",
            r.push_delay_ms,
            r.clients,
            r.window_secs,
            r.left_open
                .map_or("unknown (/metrics unreadable)".into(), |n| n.to_string())
        );
        if r.failed as f64 > FAILED_SHARE_WARNING * r.clients as f64 {
            println!(
                "!!! WARNING: {} of {} clients FAILED (more than {:.0} %): the numbers above \
                 do not describe {} live clients. First failure: {}",
                r.failed,
                r.clients,
                FAILED_SHARE_WARNING * 100.0,
                r.clients,
                r.first_failure.as_deref().unwrap_or("?")
            );
        } else if let Some(why) = &r.first_failure {
            println!("  {} failed client(s), first: {why}", r.failed);
        }
    }
}

fn main() {
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
            metrics_url: format!("{url}/metrics"),
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
    print_table(&rows);
}
