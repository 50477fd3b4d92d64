//! Command-line interface (clap derive): the server flags and the `stress` subcommand, and the
//! security settings the flags describe ([`SecurityConfig::from_args`]).

use crate::auth::{ApiKeys, DashboardAuth, SecurityConfig, SignatureVerifier};
use crate::config::{load_api_keys_file, load_vendor_secrets_file, ConfigError};
use crate::pool::Durability;
use crate::secret::Secret;
use crate::stress::{Credentials, Mode, Profile, StressConfig, StressError};
use clap::{Args, Parser, Subcommand};
use realtime_layer::SystemClock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default server address, also the stress tester's default target.
pub const DEFAULT_BIND: &str = "127.0.0.1:8000";

/// `license-demo`: a license server with a live dashboard, and its stress tester.
#[derive(Debug, Parser)]
#[command(
    name = "license-demo",
    version,
    about = "License server (borrow/return with commit + overage billing) on SQLite, with a live dashboard at /realtime",
    long_about = "License server (borrow/return with commit + overage billing) on SQLite, with a live \
                  dashboard at /realtime and Prometheus metrics at /metrics.\n\n\
                  Without a subcommand it serves. `license-demo stress` drives load against a server."
)]
pub struct Cli {
    /// Server options (used when no subcommand is given).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Optional subcommand.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive load against a license server: interactive with no arguments, scripted with any.
    Stress(StressArgs),
    /// Fill the usage tier beside a database with a synthetic history (working-day peaks, some
    /// overage and refusals, one tool clearly over-committed), so the report and the advisor have
    /// a month to show on first run.
    SeedUsage(SeedArgs),
}

/// Options of `license-demo seed-usage`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// The license database the usage tier sits beside (the tier is `<db>.usage.db` unless
    /// `--usage` says otherwise).
    #[arg(long, env = "LICENSE_DEMO_DB", default_value = "./license-demo.db")]
    pub db: String,
    /// The usage tier's file (default: beside the database).
    #[arg(long, env = "LICENSE_DEMO_USAGE", value_name = "PATH")]
    pub usage: Option<PathBuf>,
    /// Days of history, ending now (1..=30).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=30))]
    pub days: u64,
    /// Tool catalogue as TOML (default: the built-in seed).
    #[arg(long, env = "LICENSE_DEMO_TOOLS", value_name = "FILE")]
    pub tools: Option<PathBuf>,
    /// Start the tier over when it already holds usage (otherwise that is an error).
    #[arg(long)]
    pub replace: bool,
    /// Seed of the generator (the same seed gives the same month).
    #[arg(long, default_value_t = 20)]
    pub seed: u64,
}

/// The usage tier's default file for a database path: `x.db` → `x.usage.db`; `None` for
/// `:memory:` (a throw-away database keeps no usage).
pub fn default_usage_path(db: &str) -> Option<PathBuf> {
    if db == ":memory:" {
        return None;
    }
    let path = PathBuf::from(db);
    let stem = match path.extension() {
        Some(ext) if ext == "db" || ext == "sqlite" || ext == "sqlite3" => path.with_extension(""),
        _ => path.clone(),
    };
    let mut name = stem.into_os_string();
    name.push(".usage.db");
    Some(PathBuf::from(name))
}

/// Options of the server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (use 127.0.0.1:0 for any free port).
    #[arg(long, env = "LICENSE_DEMO_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// SQLite database file (created if missing; `:memory:` for a throw-away database).
    #[arg(long, env = "LICENSE_DEMO_DB", default_value = "./license-demo.db")]
    pub db: String,
    /// Tool catalogue as TOML (`[[tools]]` tables, see tools.example.toml); default: built-in seed.
    #[arg(long, env = "LICENSE_DEMO_TOOLS", value_name = "FILE")]
    pub tools: Option<PathBuf>,
    /// Log filter for tracing, e.g. `info`, `warn`, `license_demo=debug` (debug logs each request).
    #[arg(
        long,
        env = "LICENSE_DEMO_LOG",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub log: String,
    /// Commit durability: `normal` survives process crashes and kill -9, `full` also survives an
    /// OS crash or power loss (fsync per commit batch).
    #[arg(long, env = "LICENSE_DEMO_DURABILITY", value_enum, default_value_t = Durability::Normal)]
    pub durability: Durability,
    /// Host names the server answers to, comma-separated (`name` or `name:port`; `*` for any).
    /// Default: localhost and IP addresses on the bound port (others get 421).
    #[arg(
        long,
        env = "LICENSE_DEMO_ALLOWED_HOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Web origins (e.g. `https://tools.example.com`) allowed to make state-changing requests
    /// besides the server's own, comma-separated; others get 403.
    #[arg(
        long,
        env = "LICENSE_DEMO_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// API keys as TOML (`[keys."<key>"]` with `tenant` and `users`): borrow, return,
    /// heartbeat, /borrows and /overage-charges then need `Authorization: Bearer <key>`.
    #[arg(long, env = "LICENSE_DEMO_API_KEYS", value_name = "FILE")]
    pub api_keys: Option<PathBuf>,
    /// Vendor signing secrets as TOML (`[vendors]` table of `"<vendor id>" = "<secret>"`).
    #[arg(long, env = "LICENSE_DEMO_VENDOR_SECRETS", value_name = "FILE")]
    pub vendor_secrets: Option<PathBuf>,
    /// Refuse borrows without a valid X-Signature/X-Timestamp/X-Vendor-ID (needs
    /// --vendor-secrets).
    #[arg(long, env = "LICENSE_DEMO_REQUIRE_SIGNATURE")]
    pub require_signature: bool,
    /// With --require-signature: refuse a repeated nonce-less signature as a replay (401
    /// signature_replayed). Clients that sign without X-Nonce then get one borrow per tool and
    /// user per second; by default repeats are accepted and counted.
    #[arg(
        long,
        env = "LICENSE_DEMO_STRICT_REPLAY",
        requires = "require_signature"
    )]
    pub strict_replay: bool,
    /// Borrows not renewed (POST /licenses/heartbeat) within this many seconds expire and go
    /// back to the pool. Default: borrows never expire.
    #[arg(long, env = "LICENSE_DEMO_LEASE_TTL", value_name = "SECS")]
    pub lease_ttl: Option<u64>,
    /// HTTP Basic credentials for /realtime* and /metrics (prefer the environment variable:
    /// command lines are visible to other local users).
    #[arg(
        long,
        env = "LICENSE_DEMO_DASHBOARD_AUTH",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    pub dashboard_auth: Option<Secret>,
    /// Bearer token for /realtime* and /metrics, instead of --dashboard-auth.
    #[arg(
        long,
        env = "LICENSE_DEMO_DASHBOARD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        conflicts_with = "dashboard_auth"
    )]
    pub dashboard_token: Option<Secret>,
    /// Cluster mode: share one live dashboard with every license-demo on this Redis, e.g.
    /// `redis://127.0.0.1:6379` (`redis://:PASSWORD@HOST:PORT/DB` with AUTH; prefer the
    /// environment variable for a URL with a password). Without it the dashboard shows this
    /// process only.
    #[arg(
        long,
        env = "LICENSE_DEMO_REDIS",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis: Option<Secret>,
    /// Cluster name (instances with the same Redis and name share a view).
    #[arg(
        long,
        env = "LICENSE_DEMO_CLUSTER",
        default_value = "license-demo",
        value_name = "NAME"
    )]
    pub cluster_name: String,
    /// This instance's id in the cluster view (default: host name and process id).
    #[arg(long, env = "LICENSE_DEMO_INSTANCE_ID", value_name = "ID")]
    pub instance_id: Option<String>,
    /// How the instances' pools add up in the cluster view: `per-instance` (each has its own
    /// `--db`: totals are summed) or `shared` (all on one `--db` file on this host: every
    /// instance reports the database's counts, the freshest row wins).
    #[arg(long, env = "LICENSE_DEMO_POOL_SCOPE", value_enum, default_value_t = PoolScopeArg::PerInstance)]
    pub pool_scope: PoolScopeArg,
    /// Longest wait, in milliseconds, between an event and the live-stream frame that carries
    /// it while few streams are open; also the shortest gap between frames under load. Higher: fewer frames (less CPU per
    /// dashboard client), later updates.
    #[arg(long, env = "LICENSE_DEMO_PUSH_DELAY_MS", default_value_t = 100, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub push_delay_ms: u64,
    /// How far, in milliseconds, the push delay stretches when many live streams are open
    /// (so that they get at most `--stream-frame-budget` frames a second together); at or below
    /// `--push-delay-ms`, it never stretches.
    #[arg(long, env = "LICENSE_DEMO_MAX_PUSH_DELAY_MS", default_value_t = 150, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub max_push_delay_ms: u64,
    /// Frames a second that all open live streams together are sent before the push delay
    /// stretches (each frame is a write to one client's socket: this bounds their CPU).
    #[arg(long, env = "LICENSE_DEMO_STREAM_FRAME_BUDGET", default_value_t = 8_000, value_name = "FRAMES",
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub stream_frame_budget: u64,
    /// Live streams (SSE and WebSocket dashboard clients) open at once; more get 503.
    #[arg(long, env = "LICENSE_DEMO_MAX_STREAMS", default_value_t = 1_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_streams: u64,
    /// The usage tier's SQLite file (30 days of per-minute usage, /realtime/report and
    /// /realtime/advice); `off` for none. Default: beside the database (`x.db` → `x.usage.db`).
    #[arg(long, env = "LICENSE_DEMO_USAGE", value_name = "PATH|off")]
    pub usage: Option<String>,
    /// Milliseconds added to the dashboard's clock (for tests of minute boundaries).
    #[arg(
        long,
        env = "LICENSE_DEMO_CLOCK_OFFSET_MS",
        hide = true,
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_offset_ms: i64,
    /// Reverse proxies (addresses or networks, comma-separated, e.g. `127.0.0.1,10.0.0.0/8`)
    /// whose `Forwarded`/`X-Forwarded-For` headers name the client: each client behind them then
    /// gets its own share of live-stream filters. Default: none (the TCP peer is the client).
    #[arg(
        long,
        env = "LICENSE_DEMO_TRUSTED_PROXIES",
        value_name = "ADDRS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Connection limits, timeouts and the shutdown deadline.
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
}

impl ServeArgs {
    /// The usage tier's file: `--usage`, `None` for `off`, else beside the database.
    pub fn usage_path(&self) -> Option<PathBuf> {
        match self.usage.as_deref() {
            Some("off") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => default_usage_path(&self.db),
        }
    }
}

impl SecurityConfig {
    /// Builds the settings from the command line, reading the keys and secrets files.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let api_keys = match &args.api_keys {
            Some(path) => Some(Arc::new(ApiKeys::new(load_api_keys_file(path)?))),
            None => None,
        };
        let vendors = match &args.vendor_secrets {
            Some(path) => Some(load_vendor_secrets_file(path)?),
            None => None,
        };
        let signatures = match (args.require_signature, vendors) {
            (true, Some(vendors)) => Some(Arc::new(
                SignatureVerifier::new(vendors, Arc::new(SystemClock::new()))
                    .strict_replay(args.strict_replay),
            )),
            (true, None) => {
                return Err(ConfigError::Option(
                    "--require-signature needs --vendor-secrets FILE".into(),
                ))
            }
            (false, Some(_)) => {
                tracing::warn!("--vendor-secrets is loaded but unused without --require-signature");
                None
            }
            (false, None) => None,
        };
        let dashboard_auth = match (&args.dashboard_auth, &args.dashboard_token) {
            (Some(pair), _) => Some(DashboardAuth::basic(pair.expose()).ok_or_else(|| {
                ConfigError::Option("--dashboard-auth must be USER:PASSWORD, both non-empty".into())
            })?),
            (None, Some(token)) => {
                Some(DashboardAuth::bearer(token.expose()).ok_or_else(|| {
                    ConfigError::Option(
                        "--dashboard-token must be non-empty printable ASCII without spaces".into(),
                    )
                })?)
            }
            (None, None) => None,
        }
        .map(|auth| auth.realm("license-demo dashboard"));
        let lease_ttl = match args.lease_ttl {
            Some(0) => {
                return Err(ConfigError::Option(
                    "--lease-ttl must be at least 1 second".into(),
                ))
            }
            Some(secs) => Some(Duration::from_secs(secs)),
            None => None,
        };
        if let Err(e) = realtime_layer::serve::TrustedProxies::parse(&args.trusted_proxies) {
            return Err(ConfigError::Option(format!("--trusted-proxies: {e}")));
        }
        Ok(SecurityConfig {
            allowed_hosts: args.allowed_hosts.clone(),
            allowed_origins: args.allowed_origins.clone(),
            trusted_proxies: args.trusted_proxies.clone(),
            api_keys,
            signatures,
            lease_ttl,
            dashboard_auth,
        })
    }
}

/// `--pool-scope` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

/// Options of `license-demo stress`. Any option makes the run non-interactive; options not given
/// take their defaults (target http://127.0.0.1:8000, profile light, mode full-cycle, random tool).
#[derive(Debug, Clone, Default, Args)]
pub struct StressArgs {
    /// Server base URL (a loopback server of yours; default http://127.0.0.1:8000).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Load preset: light 5x20, medium 10x50 (2 s ramp-up), heavy 20x100 (5 s), extreme 50x200
    /// (10 s), custom (give --workers and --ops).
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
    /// Concurrent workers (overrides the profile; makes it custom).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Operations per worker (overrides the profile; makes it custom).
    #[arg(long)]
    pub ops: Option<usize>,
    /// Seconds over which worker starts are spread evenly (overrides the profile).
    #[arg(long, value_name = "SECONDS")]
    pub ramp_up: Option<f64>,
    /// full-cycle (borrow, hold, return) or checkout-only (borrow and keep).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Borrow only this tool (default: a random tool per operation).
    #[arg(long)]
    pub tool: Option<String>,
    /// Milliseconds to hold each license before returning it (full-cycle; default 20).
    #[arg(long, value_name = "MS")]
    pub hold_ms: Option<u64>,
    /// Cap on total operations started per second, across all workers.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<f64>,
    /// Users are named PREFIX-N, N the worker number (default `stress`).
    #[arg(long, value_name = "PREFIX")]
    pub user_prefix: Option<String>,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Sign every borrow as this vendor (`X-Vendor-ID`), in the nonce form (needs
    /// --vendor-secret).
    #[arg(
        long,
        env = "LICENSE_DEMO_STRESS_VENDOR_ID",
        value_name = "ID",
        requires = "vendor_secret"
    )]
    pub vendor_id: Option<String>,
    /// The vendor's signing secret (prefer the environment variable: command lines are visible
    /// to other local users).
    #[arg(
        long,
        env = "LICENSE_DEMO_STRESS_VENDOR_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        requires = "vendor_id"
    )]
    pub vendor_secret: Option<Secret>,
    /// Send `Authorization: Bearer <KEY>` on every borrow and return (a server with
    /// --api-keys; the key must allow the stress users, e.g. `users = ["*"]`).
    #[arg(
        long,
        env = "LICENSE_DEMO_STRESS_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<Secret>,
}

impl StressArgs {
    /// True when no option at all was given (then the tester asks interactively).
    pub fn is_empty(&self) -> bool {
        self.target.is_none()
            && self.profile.is_none()
            && self.workers.is_none()
            && self.ops.is_none()
            && self.ramp_up.is_none()
            && self.mode.is_none()
            && self.tool.is_none()
            && self.hold_ms.is_none()
            && self.rate.is_none()
            && self.user_prefix.is_none()
            && !self.no_progress
            && !self.json
            && self.vendor_id.is_none()
            && self.vendor_secret.is_none()
            && self.api_key.is_none()
    }

    /// Builds the run configuration: the profile's shape, overridden by explicit values.
    pub fn to_config(&self) -> Result<StressConfig, StressError> {
        let target = self
            .target
            .clone()
            .unwrap_or_else(|| format!("http://{DEFAULT_BIND}"));
        let overridden = self.workers.is_some() || self.ops.is_some() || self.ramp_up.is_some();
        let chosen = self.profile.unwrap_or(Profile::Light);
        let profile = if overridden { Profile::Custom } else { chosen };
        let base = chosen.shape();
        let workers = self.workers.or(base.map(|b| b.0));
        let ops = self.ops.or(base.map(|b| b.1));
        let (Some(workers), Some(ops)) = (workers, ops) else {
            return Err(StressError::Config(
                "a custom profile needs --workers and --ops".into(),
            ));
        };
        let ramp_up = match self.ramp_up {
            Some(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
            Some(_) => {
                return Err(StressError::Config(
                    "--ramp-up must be a number of seconds >= 0".into(),
                ))
            }
            None => base.map_or(Duration::ZERO, |b| b.2),
        };
        let mut config = StressConfig::from_profile(target, profile);
        config.workers = workers;
        config.ops_per_worker = ops;
        config.ramp_up = ramp_up;
        config.mode = self.mode.unwrap_or(Mode::FullCycle);
        if let Some(ms) = self.hold_ms {
            config.hold = Duration::from_millis(ms);
        }
        config.tool = self.tool.clone();
        config.rate = self.rate;
        if let Some(p) = &self.user_prefix {
            config.user_prefix = p.clone();
        }
        config.credentials = Credentials {
            vendor: self.vendor_id.clone().zip(self.vendor_secret.clone()),
            api_key: self.api_key.clone(),
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_sits_beside_the_database() {
        assert_eq!(
            default_usage_path("./license-demo.db"),
            Some(PathBuf::from("./license-demo.usage.db"))
        );
        assert_eq!(
            default_usage_path("/var/lib/x"),
            Some(PathBuf::from("/var/lib/x.usage.db"))
        );
        assert_eq!(default_usage_path(":memory:"), None);
        let cli = Cli::try_parse_from(["license-demo", "--usage", "off"]).unwrap();
        assert_eq!(cli.serve.usage_path(), None);
        let cli =
            Cli::try_parse_from(["license-demo", "seed-usage", "--db", "a.db", "--days", "7"])
                .unwrap();
        let Some(Command::SeedUsage(args)) = cli.command else {
            panic!("no seed-usage")
        };
        assert_eq!((args.db.as_str(), args.days), ("a.db", 7));
        assert!(Cli::try_parse_from(["license-demo", "seed-usage", "--days", "31"]).is_err());
    }

    #[test]
    fn profiles_and_overrides() {
        let cli = Cli::try_parse_from(["license-demo", "stress", "--profile", "medium"]).unwrap();
        let Some(Command::Stress(args)) = cli.command else {
            panic!("no stress")
        };
        let c = args.to_config().unwrap();
        assert_eq!((c.workers, c.ops_per_worker), (10, 50));
        assert_eq!(c.ramp_up, Duration::from_secs(2));
        assert_eq!(c.profile, Profile::Medium);
        assert_eq!(c.target, "http://127.0.0.1:8000");

        let args = StressArgs {
            profile: Some(Profile::Heavy),
            workers: Some(3),
            ..Default::default()
        };
        let c = args.to_config().unwrap();
        assert_eq!(
            (c.workers, c.ops_per_worker, c.profile),
            (3, 100, Profile::Custom)
        );

        let args = StressArgs {
            profile: Some(Profile::Custom),
            ..Default::default()
        };
        assert!(args.to_config().is_err());
        assert!(StressArgs::default().is_empty());
    }
}
