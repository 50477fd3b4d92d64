//! Per-request cost of the layer against bare axum and axum-prometheus, printed as one table
//! (`cargo bench -p realtime-layer --bench overhead`).
//!
//! Every variant is the same hello-world handler served by `axum::serve` on a single-threaded
//! Tokio runtime, in its own process (a child of this bench: axum-prometheus installs a global
//! recorder, and per-process counts are what callgrind gives). The bench itself is the client:
//! one keep-alive HTTP/1.1 connection over loopback, one request at a time.
//!
//! - **Instructions per request** (nearly deterministic; wall time on a shared VM swings ±25%): each
//!   server runs under `valgrind --tool=callgrind`, counting only inside the runtime's
//!   `block_on` (the app is built before it, so one-time set-up such as the TSC clock's
//!   calibration stays out): `WARM` requests, then the counters are zeroed
//!   (`callgrind_control -z`: start-up work that depends on wall time would otherwise differ
//!   between runs), then `INTERVALS` intervals of `N` requests, each dumped by
//!   `callgrind_control -d` while the server idles between two requests, so no interval holds
//!   start-up or shut-down; `PROCESSES` such servers per figure, the median interval divided by
//!   `N` is the cost of one request. Intervals are bimodal for some variants (glibc's slower
//!   path for hyper's read buffer, ~160 instructions a request in some processes; see
//!   `instructions_per_request`): the median is the usual mode, where subtracting a run of `N`
//!   requests from one of `2N` (this bench's earlier method) mixed modes and moved rows by −1 to
//!   +2 points. Which `block_on` frame is a real symbol depends on inlining
//!   (`CoreGuard::block_on`, `CurrentThread::block_on` or `Runtime::block_on`), so each binary's
//!   own is looked up with `nm`: all of them enclose the whole server loop.
//!   A second count takes **every thread of the server process** (no toggle), the same
//!   intervals: what a user pays, work done off the runtime's thread and outside `block_on`
//!   included. Skipped, with a note, when valgrind is not installed.
//! - **Requests per second**: the same servers without valgrind, a few interleaved rounds of
//!   `OVERHEAD_BENCH_SECS` (default 1) seconds each, median kept. Noisy; the instruction counts
//!   are the figure to compare.
//!
//! `OVERHEAD_BEFORE=/path/to/an/older/build/of/this/bench` measures that build too, in the same
//! run, and prints both side by side (how the README's before/after table was made).
//!
//! The whole run takes two to three minutes (twice that with `OVERHEAD_BEFORE`).

use axum::routing::get;
use axum::Router;
use realtime_layer::{Event, Realtime};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Requests served before counting starts to matter (caches, allocator, interned names).
const WARM: u64 = 500;
/// Requests per measured interval.
const N: u64 = 2_000;
/// Server processes per figure, and measured intervals in each (the median of all is kept).
const PROCESSES: usize = 3;
const INTERVALS: usize = 2;
/// Interleaved wall-clock rounds per variant.
const ROUNDS: usize = 3;

/// One server set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// axum alone, the hello-world handler.
    Bare,
    /// axum alone, the handler also returns an `Event` (inert without the layer).
    BareEvent,
    /// `RealtimeLayer` around the whole router (`tower::Layer::layer`) plus the realtime routes;
    /// the handler returns no event.
    Layer,
    /// The same with `Router::layer` (the layer inside routing, around every route).
    LayerPerRoute,
    /// `RealtimeLayer` around the whole router; the handler returns an `Event`, recorded.
    LayerEvent,
    /// `Router::layer`; the handler returns an `Event`, recorded.
    LayerEventPerRoute,
    /// axum-prometheus 0.10's `PrometheusMetricLayer` and its `/metrics` route.
    Prometheus,
}

const VARIANTS: [Variant; 7] = [
    Variant::Bare,
    Variant::Layer,
    Variant::LayerPerRoute,
    Variant::BareEvent,
    Variant::LayerEvent,
    Variant::LayerEventPerRoute,
    Variant::Prometheus,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::BareEvent => "bare-event",
            Variant::Layer => "layer",
            Variant::LayerPerRoute => "layer-per-route",
            Variant::LayerEvent => "layer-event",
            Variant::LayerEventPerRoute => "layer-event-per-route",
            Variant::Prometheus => "prometheus",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Bare => "bare axum",
            Variant::Layer => "+ RealtimeLayer around the router, no event",
            Variant::LayerPerRoute => "+ RealtimeLayer via Router::layer, no event",
            Variant::BareEvent => "bare axum, handler returns an Event",
            Variant::LayerEvent => "+ RealtimeLayer around the router, event recorded",
            Variant::LayerEventPerRoute => "+ RealtimeLayer via Router::layer, event recorded",
            Variant::Prometheus => "+ axum-prometheus 0.10 PrometheusMetricLayer",
        }
    }

    /// The variant this one is compared with.
    fn baseline(self) -> Option<Variant> {
        match self {
            Variant::Bare | Variant::BareEvent => None,
            Variant::LayerEvent | Variant::LayerEventPerRoute => Some(Variant::BareEvent),
            _ => Some(Variant::Bare),
        }
    }

    fn parse(name: &str) -> Option<Variant> {
        VARIANTS.into_iter().find(|v| v.name() == name)
    }
}

async fn hello() -> &'static str {
    "Hello, World!"
}

async fn hello_event() -> (Event, &'static str) {
    (Event::borrow("GPU A100", "alice"), "Hello, World!")
}

/// The app of `variant`, ready for `axum::serve`.
enum App {
    Router(Router),
    Wrapped(realtime_layer::RealtimeService<Router>),
}

/// Builds the app of `variant` (outside the runtime: callgrind only counts inside `block_on`, so
/// one-time set-up such as the clock's calibration stays out of the figures).
fn app(variant: Variant) -> App {
    let handler = match variant {
        Variant::BareEvent | Variant::LayerEvent | Variant::LayerEventPerRoute => get(hello_event),
        _ => get(hello),
    };
    let app = Router::new().route("/", handler);
    match variant {
        Variant::Bare | Variant::BareEvent => App::Router(app),
        Variant::Layer | Variant::LayerEvent => {
            let realtime = Realtime::builder().build().expect("realtime");
            let app = app
                .merge(realtime.routes())
                .merge(realtime.metrics_routes());
            App::Wrapped(realtime.wrap(app))
        }
        Variant::LayerPerRoute | Variant::LayerEventPerRoute => {
            let realtime = Realtime::builder().build().expect("realtime");
            App::Router(
                app.layer(realtime.layer())
                    .merge(realtime.routes())
                    .merge(realtime.metrics_routes()),
            )
        }
        Variant::Prometheus => {
            let (layer, handle) = axum_prometheus::PrometheusMetricLayer::pair();
            App::Router(
                app.route("/metrics", get(move || std::future::ready(handle.render())))
                    .layer(layer),
            )
        }
    }
}

/// Child mode: serve `variant` on 127.0.0.1, print the port, stop when stdin closes.
fn serve(variant: Variant) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Inside the runtime's context: axum-prometheus spawns its upkeep task when built.
    let app = {
        let _context = runtime.enter();
        app(variant)
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    println!("{}", listener.local_addr().expect("address").port());
    std::thread::spawn(|| {
        // EOF (or any input) on stdin ends the server; exit() lets valgrind write its totals.
        let _ = std::io::stdin().read(&mut [0u8; 1]);
        std::process::exit(0);
    });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        match app {
            App::Router(app) => axum::serve(listener, app).await,
            App::Wrapped(service) => {
                axum::serve(
                    listener,
                    axum::ServiceExt::<axum::extract::Request>::into_make_service(service),
                )
                .await
            }
        }
        .expect("serve");
    });
}

/// The innermost `block_on` frame that is a real (not inlined) function in `exe`, for
/// callgrind's `--toggle-collect` (innermost first: the least around the request loop).
fn block_on_symbol(exe: &Path) -> &'static str {
    const CANDIDATES: [&str; 3] = [
        "tokio::runtime::scheduler::current_thread::CoreGuard::block_on",
        "tokio::runtime::scheduler::current_thread::CurrentThread::block_on",
        "tokio::runtime::runtime::Runtime::block_on",
    ];
    let symbols = Command::new("nm")
        .arg("-C")
        .arg(exe)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    CANDIDATES
        .into_iter()
        .find(|c| symbols.lines().any(|l| l.ends_with(c)))
        .unwrap_or(CANDIDATES[0])
}

/// A running child server.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(exe: &Path, variant: Variant, count: Option<(Count, &Path)>) -> Server {
        let mut cmd = match count {
            Some((count, out)) => {
                let mut c = Command::new("valgrind");
                c.arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out.display()));
                if count == Count::Runtime {
                    c.arg("--collect-atstart=no")
                        .arg(format!("--toggle-collect={}*", block_on_symbol(exe)));
                }
                c.arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = cmd
            .args(["--serve", variant.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if count.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("start the server process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line.trim().parse().expect("a port number");
        Server { child, port }
    }

    /// Stops the server (EOF on its stdin) and waits for it, draining its output.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        self.child.wait_with_output().expect("server exit");
    }
}

/// One keep-alive HTTP/1.1 connection sending `GET /` and reading each answer whole.
struct Client {
    reader: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("connect: {e}"),
            }
        };
        stream.set_nodelay(true).expect("nodelay");
        Client {
            reader: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        }
    }

    fn get(&mut self) {
        self.reader
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("write request");
        let mut length = 0usize;
        let mut status_ok = false;
        loop {
            self.line.clear();
            let n = self.reader.read_line(&mut self.line).expect("read head");
            assert!(n > 0, "server closed the connection");
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if l.starts_with("HTTP/1.1 ") {
                status_ok = l.starts_with("HTTP/1.1 200");
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().expect("content-length");
                }
            }
        }
        assert!(status_ok, "expected 200");
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body).expect("read body");
    }
}

/// What callgrind counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Only inside the runtime's `block_on` (the request path as the app's runtime runs it).
    Runtime,
    /// Every thread, from the server's start to its end: what a user pays.
    Process,
}

/// Steady-state instructions per request: the median interval of `PROCESSES` server processes.
/// Each serves `WARM` requests, then its counters are zeroed (`callgrind_control -z`: start-up
/// work that depends on wall time, such as the TSC clock's calibration, stays out), then
/// `INTERVALS` runs of `N` requests, each dumped while the server idles between requests
/// (`callgrind_control -d`, which also zeroes: no start-up or shut-down in any interval).
/// Intervals are bimodal for some variants: in some processes glibc serves hyper's 8 KB read
/// buffer from its slower path on every request (`_int_malloc`, `unlink_chunk`: ~160
/// instructions more, same binary and variant; which ones is a matter of timing and of the
/// variant's own allocations). The median is the usual mode. Subtracting a run of `N` requests
/// from one of `2N`, as this bench did before, mixed the modes and moved rows by −1 to +2 points.
fn instructions_per_request(exe: &Path, variant: Variant, count: Count) -> PerRequest {
    let mut intervals: Vec<u64> = (0..PROCESSES)
        .flat_map(|_| intervals(exe, variant, count))
        .collect();
    intervals.sort_unstable();
    let mid = intervals.len() / 2;
    let median = if intervals.len().is_multiple_of(2) {
        (intervals[mid - 1] + intervals[mid]) as f64 / 2.0
    } else {
        intervals[mid] as f64
    };
    let per_request = |total: f64| total / N as f64;
    PerRequest {
        median: per_request(median),
        least: per_request(intervals.first().copied().unwrap_or(0) as f64),
        most: per_request(intervals.last().copied().unwrap_or(0) as f64),
    }
}

/// Instructions per request of one variant: the median interval, and the range of them all.
#[derive(Debug, Clone, Copy)]
struct PerRequest {
    median: f64,
    least: f64,
    most: f64,
}

impl PerRequest {
    /// The median, with the range when the intervals differ by more than half a percent (the
    /// allocator's two modes, see `instructions_per_request`).
    fn cell(&self) -> String {
        if self.most - self.least > self.median * 0.005 {
            format!("{:.0} ({:.0}–{:.0})", self.median, self.least, self.most)
        } else {
            format!("{:.0}", self.median)
        }
    }
}

/// `INTERVALS` intervals of `N` requests in one server process, in instructions each.
fn intervals(exe: &Path, variant: Variant, count: Count) -> Vec<u64> {
    let out = std::env::temp_dir().join(format!(
        "overhead-callgrind-{}-{}.out",
        std::process::id(),
        variant.name()
    ));
    let server = Server::start(exe, variant, Some((count, &out)));
    let pid = server.child.id().to_string();
    let control = |command: &str| {
        let done = Command::new("callgrind_control")
            .args([command, &pid])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(done, "callgrind_control {command} failed");
    };
    let mut client = Client::connect(server.port);
    for _ in 0..WARM {
        client.get();
    }
    control("-z");
    let mut totals = Vec::with_capacity(INTERVALS);
    for interval in 1..=INTERVALS {
        for _ in 0..N {
            client.get();
        }
        control("-d");
        let dump = PathBuf::from(format!("{}.{interval}", out.display()));
        totals.push(dump_total(&dump));
        let _ = std::fs::remove_file(&dump);
    }
    drop(client);
    server.stop();
    let _ = std::fs::remove_file(&out);
    totals
}

/// The total of a callgrind dump, once it is written whole (`callgrind_control -d` returns when
/// the dump was requested; the file may still be growing).
fn dump_total(dump: &Path) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let total = std::fs::read_to_string(dump).ok().and_then(|text| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix("summary:")
                        .or_else(|| l.strip_prefix("totals:"))
                })
                .and_then(|v| v.trim().parse().ok())
        });
        match total {
            Some(total) => return total,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => panic!("no callgrind total in {}", dump.display()),
        }
    }
}

/// Requests per second over `secs`, after a warm-up.
fn requests_per_second(exe: &Path, variant: Variant, secs: f64) -> f64 {
    let server = Server::start(exe, variant, None);
    let mut client = Client::connect(server.port);
    for _ in 0..WARM {
        client.get();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..100 {
            client.get();
        }
        n += 100;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(client);
    server.stop();
    rate
}

fn valgrind_present() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ratio(value: f64, base: f64) -> String {
    format!("{:+.1}%", (value / base - 1.0) * 100.0)
}

/// Figures of one build of this bench (this one, or the one named by `OVERHEAD_BEFORE`).
struct Figures {
    /// Per variant: instructions per request inside the runtime.
    instructions: Option<Vec<PerRequest>>,
    /// Per variant: instructions per request of the whole process.
    process: Option<Vec<PerRequest>>,
    rates: Vec<f64>,
}

fn measure(exe: &Path, secs: f64, callgrind: bool) -> Figures {
    let count = |count| {
        callgrind.then(|| {
            VARIANTS
                .iter()
                .map(|v| instructions_per_request(exe, *v, count))
                .collect()
        })
    };
    let instructions = count(Count::Runtime);
    let process = count(Count::Process);
    let mut rates = vec![Vec::new(); VARIANTS.len()];
    for _ in 0..ROUNDS {
        for (i, v) in VARIANTS.iter().enumerate() {
            rates[i].push(requests_per_second(exe, *v, secs));
        }
    }
    let rates = rates
        .into_iter()
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    Figures {
        instructions,
        process,
        rates,
    }
}

impl Figures {
    /// `| instructions | ratio | whole process | ratio | req/s | ratio |` cells of row `i`
    /// against row `base`.
    fn cells(&self, i: usize, base: Option<usize>) -> String {
        let counted = |c: &Option<Vec<PerRequest>>| {
            let value = c.as_ref().map_or("n/a".to_owned(), |c| c[i].cell());
            let vs = match (c, base) {
                (Some(c), Some(b)) => ratio(c[i].median, c[b].median),
                _ => "—".to_owned(),
            };
            format!("{value} | {vs}")
        };
        let rate_ratio = base.map_or("—".to_owned(), |b| ratio(self.rates[i], self.rates[b]));
        format!(
            "{} | {} | {:.0} | {rate_ratio}",
            counted(&self.instructions),
            counted(&self.process),
            self.rates[i]
        )
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let variant = args
            .get(i + 1)
            .and_then(|n| Variant::parse(n))
            .expect("--serve VARIANT");
        serve(variant);
        return;
    }
    let secs: f64 = std::env::var("OVERHEAD_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    // An older build of this same bench, measured in the same run for a side-by-side table.
    let before: Option<PathBuf> = std::env::var_os("OVERHEAD_BEFORE").map(PathBuf::from);
    let callgrind = valgrind_present();
    let exe = std::env::current_exe().expect("bench executable");
    eprintln!(
        "{} variants{}: callgrind {}, wall clock {ROUNDS} rounds of {secs} s",
        VARIANTS.len(),
        if before.is_some() { " x 2 builds" } else { "" },
        if callgrind {
            format!("({WARM}+{N} and {WARM}+{} requests)", 2 * N)
        } else {
            "skipped (no valgrind)".to_owned()
        },
    );
    let old = before.as_deref().map(|b| measure(b, secs, callgrind));
    let new = measure(&exe, secs, callgrind);
    let index = |v: Variant| VARIANTS.iter().position(|x| *x == v).expect("listed");

    println!(
        "\n== per-request cost: hello-world handler, one Tokio worker, one keep-alive connection =="
    );
    let head = format!(
        "instructions / request in the runtime | vs baseline | whole process | vs baseline | \
         requests / s (median of {ROUNDS}) | vs baseline"
    );
    match &old {
        Some(_) => {
            println!("| | before: {head} | after: {head} |");
            println!("|---|{}", "---:|".repeat(12));
        }
        None => {
            println!("| | {head} |");
            println!("|---|{}", "---:|".repeat(6));
        }
    }
    for (i, v) in VARIANTS.iter().enumerate() {
        let base = v.baseline().map(index);
        match &old {
            Some(old) => println!(
                "| {} | {} | {} |",
                v.label(),
                old.cells(i, base),
                new.cells(i, base)
            ),
            None => println!("| {} | {} |", v.label(), new.cells(i, base)),
        }
    }
    if !callgrind {
        println!(
            "\nvalgrind is not installed: instruction counts skipped (apt-get install valgrind)."
        );
    }
    println!(
        "\nBaselines: event rows against \"bare axum, handler returns an Event\", the others \
         against \"bare axum\". Instructions: callgrind, zeroed after {WARM} warm-up requests, \
         then the median of {INTERVALS} intervals of {N} requests in each of {PROCESSES} processes, divided by {N} (in brackets: the range, when wider than 0.5%); \"in the \
         runtime\" counts inside the runtime's block_on, \"whole process\" every thread.",
    );
}
