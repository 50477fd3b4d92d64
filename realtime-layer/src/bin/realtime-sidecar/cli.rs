//! The command line of `realtime-sidecar` (clap derive): flags and `REALTIME_SIDECAR_*`
//! environment variables, named as license-demo's where they overlap.

use clap::{Parser, ValueEnum};
use realtime_layer::serve::ServeConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The default address: OTLP/HTTP's standard port on loopback, so an exporter with default
/// settings (`http://localhost:4318/v1/logs`) reaches it.
pub const DEFAULT_BIND: &str = "127.0.0.1:4318";

/// `realtime-sidecar`: the live view for services in any language.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "realtime-sidecar",
    version,
    about = "The realtime-layer live view (dashboard, SSE stream, stats, /metrics, cluster mode) \
             for services in any language: send lease events as OTLP/HTTP logs (POST /v1/logs) \
             or NDJSON (POST /ingest), push pool sizes with PUT /status.",
    after_help = "Every flag also reads its REALTIME_SIDECAR_* environment variable. See docs/SIDECAR.md."
)]
pub struct Args {
    /// Address to listen on (127.0.0.1:0 for any free port).
    #[arg(long, env = "REALTIME_SIDECAR_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Log filter for tracing, e.g. `info`, `warn`, `realtime_layer=debug`.
    #[arg(
        long,
        env = "REALTIME_SIDECAR_LOG",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub log: String,
    /// Sender tokens as TOML (`[[token]]` with `name`, `sha256` or `token`, optional
    /// `resources` and `rate`): POST /v1/logs, /ingest and /status then need
    /// `Authorization: Bearer <token>`. Without it anyone who reaches the port may send.
    #[arg(long, env = "REALTIME_SIDECAR_TOKENS", value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// HTTP Basic credentials for /realtime* and /metrics (prefer the environment variable:
    /// command lines are visible to other local users).
    #[arg(
        long,
        env = "REALTIME_SIDECAR_DASHBOARD_AUTH",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    pub dashboard_auth: Option<String>,
    /// Bearer token for /realtime* and /metrics, instead of --dashboard-auth.
    #[arg(
        long,
        env = "REALTIME_SIDECAR_DASHBOARD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        conflicts_with = "dashboard_auth"
    )]
    pub dashboard_token: Option<String>,
    /// Cluster mode: share one live view with every sidecar (and license-demo) on this Redis
    /// with the same --cluster-name, e.g. `redis://127.0.0.1:6379` (`redis://:PASSWORD@HOST:PORT`
    /// with AUTH; prefer the environment variable for a URL with a password).
    #[arg(
        long,
        env = "REALTIME_SIDECAR_REDIS",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis: Option<String>,
    /// Cluster name (instances with the same Redis and name share a view).
    #[arg(
        long,
        env = "REALTIME_SIDECAR_CLUSTER",
        default_value = "realtime-sidecar",
        value_name = "NAME"
    )]
    pub cluster_name: String,
    /// This instance's id in the cluster view (default: host name and process id).
    #[arg(long, env = "REALTIME_SIDECAR_INSTANCE_ID", value_name = "ID")]
    pub instance_id: Option<String>,
    /// How the instances' pools add up: `per-instance` (summed) or `shared` (the freshest
    /// status wins).
    #[arg(long, env = "REALTIME_SIDECAR_POOL_SCOPE", value_enum, default_value_t = PoolScopeArg::PerInstance)]
    pub pool_scope: PoolScopeArg,
    /// Title of the dashboard page.
    #[arg(
        long,
        env = "REALTIME_SIDECAR_TITLE",
        default_value = "Live leases",
        value_name = "TEXT"
    )]
    pub title: String,
    /// How long events are kept (`6h`, `30m`, `3600` seconds; at most 7 days).
    #[arg(long, env = "REALTIME_SIDECAR_RETENTION", default_value = "6h", value_parser = parse_duration, value_name = "DURATION")]
    pub retention: Duration,
    /// Largest request body, on the wire and after decompression, in bytes.
    #[arg(long, env = "REALTIME_SIDECAR_MAX_BODY_BYTES", default_value_t = 8 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Events per second per sender token (or for all senders without --tokens).
    #[arg(
        long,
        env = "REALTIME_SIDECAR_RATE_LIMIT",
        default_value_t = 50_000,
        value_name = "EVENTS_PER_SEC"
    )]
    pub rate_limit: u32,
    /// Events waiting to be applied before new batches get 503 + Retry-After.
    #[arg(
        long,
        env = "REALTIME_SIDECAR_QUEUE_HIGH_WATER",
        default_value_t = 200_000,
        value_name = "EVENTS"
    )]
    pub queue_high_water: usize,
    /// How far ahead of this clock an event may be stamped (taken as now); further: rejected.
    #[arg(long, env = "REALTIME_SIDECAR_MAX_FUTURE_SKEW", default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub max_future_skew: Duration,
    /// How long a pushed pool status (PUT /status) stays valid; older rows show as unknown.
    #[arg(long, env = "REALTIME_SIDECAR_STATUS_TTL", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub status_ttl: Duration,
    /// Longest wait, in milliseconds, between an event and the live-stream frame that carries it
    /// while few streams are open.
    #[arg(long, env = "REALTIME_SIDECAR_PUSH_DELAY_MS", default_value_t = 100, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub push_delay_ms: u64,
    /// How far, in milliseconds, the push delay stretches when many live streams are open
    /// (so that they get at most `--stream-frame-budget` frames a second together); at or below
    /// `--push-delay-ms`, it never stretches.
    #[arg(long, env = "REALTIME_SIDECAR_MAX_PUSH_DELAY_MS", default_value_t = 150, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub max_push_delay_ms: u64,
    /// Frames a second that all open live streams together are sent before the push delay
    /// stretches (each frame is a write to one client's socket: this bounds their CPU).
    #[arg(long, env = "REALTIME_SIDECAR_STREAM_FRAME_BUDGET", default_value_t = 8_000, value_name = "FRAMES",
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub stream_frame_budget: u64,
    /// Live streams (dashboard clients) open at once; more get 503.
    #[arg(long, env = "REALTIME_SIDECAR_MAX_STREAMS", default_value_t = 1_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_streams: u64,
    /// Reverse proxies (IP addresses or CIDR ranges, comma-separated) whose
    /// `Forwarded`/`X-Forwarded-For` headers name the client: each client behind them then gets
    /// its own share of live-stream filters. Default: none (the TCP peer is the client).
    #[arg(
        long,
        env = "REALTIME_SIDECAR_TRUSTED_PROXIES",
        value_name = "ADDRS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Longest time to receive a request's headers.
    #[arg(long, env = "REALTIME_SIDECAR_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub header_read_timeout: Duration,
    /// Longest time to receive a request's body once its headers are in.
    #[arg(long, env = "REALTIME_SIDECAR_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    #[arg(long, env = "REALTIME_SIDECAR_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// How long a client may accept no bytes of a response before it is disconnected.
    #[arg(long, env = "REALTIME_SIDECAR_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub write_timeout: Duration,
    /// Most connections open at once (default: the descriptor limit minus 128).
    #[arg(long, env = "REALTIME_SIDECAR_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// On SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway.
    #[arg(long, env = "REALTIME_SIDECAR_SHUTDOWN_DEADLINE", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_deadline: Duration,
}

/// `--pool-scope` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolScopeArg {
    /// Each instance owns its pool.
    PerInstance,
    /// All instances share one pool.
    Shared,
}

impl From<PoolScopeArg> for realtime_layer::PoolScope {
    fn from(arg: PoolScopeArg) -> Self {
        match arg {
            PoolScopeArg::PerInstance => realtime_layer::PoolScope::PerInstance,
            PoolScopeArg::Shared => realtime_layer::PoolScope::Shared,
        }
    }
}

impl Args {
    /// The server limits these flags describe.
    pub fn serve_config(&self) -> ServeConfig {
        ServeConfig {
            header_read_timeout: self.header_read_timeout,
            request_body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            write_timeout: self.write_timeout,
            max_connections: self.max_connections,
            shutdown_deadline: self.shutdown_deadline,
            ..ServeConfig::default()
        }
    }
}

/// `10s`, `500ms`, `2m`, `6h`, or a bare number of seconds (`1.5`); above zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e9 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "{text:?} is not a duration above zero (examples: 10s, 500ms, 2m, 6h)"
        )),
    }
}
