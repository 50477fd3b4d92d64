//! # realtime-layer examples
//!
//! Shared plumbing of the gallery: argument parsing, serving with graceful shutdown, and a tiny
//! random source and request sender for `--simulate`. Each example's interesting code lives in its own file under
//! `examples/`:
//!
//! | example | idea |
//! |---|---|
//! | `minimal` | the smallest axum app with the layer and the dashboard |
//! | `response-extensions` | handlers emit events through response extensions |
//! | `classifier` | handlers know nothing; a classifier maps method + route + status to events |
//! | `plain-tower` | the layer on a non-axum `tower::Service` served by hyper |
//! | `pool-status` | a database connection pool with a status source and its own labels |
//! | `otel-prometheus` | your own `MeterProvider`, one `/metrics` for app and realtime metrics |
//! | `nested` | the dashboard under `/admin/realtime` behind a bearer token |
//! | `cluster` | two replicas, one live view through Redis (cluster mode) |
//!
//! Run any of them with `cargo run -p realtime-examples --example NAME -- --simulate`.

use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use realtime_layer::serve::ServeConfig;
use realtime_layer::Realtime;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Command line of every example: `[--bind ADDR] [--simulate]`.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where to listen (default `127.0.0.1:<the example's port>`).
    pub bind: SocketAddr,
    /// Generate synthetic traffic so the dashboard moves.
    pub simulate: bool,
}

impl Args {
    /// Parses `std::env::args`, exiting with a usage line on anything unknown.
    pub fn parse(default_port: u16) -> Args {
        let mut args = Args {
            bind: SocketAddr::from(([127, 0, 0, 1], default_port)),
            simulate: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--simulate" => args.simulate = true,
                "--bind" => match it.next().and_then(|v| v.parse().ok()) {
                    Some(addr) => args.bind = addr,
                    None => usage("--bind needs an address such as 127.0.0.1:3000"),
                },
                "-h" | "--help" => usage(""),
                other => usage(&format!("unknown argument {other:?}")),
            }
        }
        args
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!("usage: <example> [--bind ADDR] [--simulate]");
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}

/// What the examples serve: an axum `Router`, or one wrapped once in the realtime layer
/// (`Realtime::wrap`).
pub trait AppService:
    tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static
{
}

impl<S> AppService for S where
    S: tower::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Serves `app` on `bind` with [`realtime_layer::serve`] (header, body, idle and write timeouts,
/// a connection cap under the raised descriptor limit), prints the dashboard URL, and on Ctrl-C
/// ends the realtime streams and stops within the shutdown deadline.
pub async fn serve<S>(
    app: S,
    bind: SocketAddr,
    realtime: &Realtime,
    dashboard_path: &str,
) -> std::io::Result<()>
where
    S: AppService,
    S::Future: Send,
{
    if let Err(e) = realtime_layer::serve::raise_nofile_limit() {
        eprintln!("warning: cannot raise the open-file limit: {e}");
    }
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    println!("Dashboard: http://{addr}{dashboard_path}");
    let realtime = realtime.clone();
    let stop = async move {
        let _ = tokio::signal::ctrl_c().await;
        realtime.shutdown();
    };
    // The hardened server takes a Router: a wrapped app (`Realtime::wrap`) rides as its fallback.
    let app = Router::new().fallback_service(app);
    realtime_layer::serve::serve(listener, app, ServeConfig::default(), stop).await
}

/// A small xorshift generator: enough randomness for synthetic traffic, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock.
    pub fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(seed | 1)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Sleeps `min_ms` plus up to `spread_ms` more: the uneven pace of synthetic traffic.
    pub async fn pause(&mut self, min_ms: u64, spread_ms: usize) {
        let ms = min_ms + self.below(spread_ms.max(1)) as u64;
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Sends `request` through `app` itself, so its events pass the layer like real traffic; the
/// answer is dropped.
pub async fn send<S: AppService>(app: &S, request: http::Request<axum::body::Body>) {
    use tower::ServiceExt as _;
    let _ = app.clone().oneshot(request).await;
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// Names for synthetic users.
pub const USERS: [&str; 8] = [
    "ada", "brian", "chen", "dana", "emeka", "freya", "goran", "hana",
];
