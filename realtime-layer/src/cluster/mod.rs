//! Cluster mode: one live view across every replica, through Redis (feature `redis`).
//!
//! The Redis side: the settings ([`Cluster`]), the wire format and the link's tasks. What an
//! instance knows of its cluster (`ClusterState`) sits in the core, so views read it without this
//! module. Each instance keeps its own buffer exactly as without
//! cluster mode (the *local* view) and, beside it, a second buffer holding every instance's
//! events (the *cluster* view, each event tagged with the instance that recorded it):
//!
//! ```text
//! record ─► local buffer ──feed (≤ 50 ms, off the request path)──► cluster buffer ─► routes
//!                        └─► pending queue ─► XADD batch ─► Redis stream ─► XREAD ─┘  (other
//!   status source ─► heartbeat key (TTL) ─► peers' status rows ─► cluster totals       instances)
//! ```
//!
//! Recording costs exactly what it costs without cluster mode: the feed reads the local buffer
//! through a cursor, like the stream does. See `docs/ARCHITECTURE.md` for the choices (client
//! crate, outage behaviour, clock skew) and `docs/OPERATIONS.md` for sizing.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

#[cfg(feature = "redis")]
mod link;
mod wire;

#[cfg(feature = "redis")]
pub(crate) use link::start;

#[cfg(feature = "redis")]
use crate::core::PoolScope;
#[cfg(feature = "redis")]
use std::time::Duration;

/// Cluster mode settings: where Redis is, which cluster this instance joins, how pools add up.
///
/// ```no_run
/// # #[cfg(feature = "redis")] {
/// use realtime_layer::{Cluster, PoolScope, Realtime};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let realtime = Realtime::builder()
///     .cluster(
///         Cluster::redis("redis://127.0.0.1:6379")
///             .name("license-demo")
///             .pool_scope(PoolScope::Shared),
///     )
///     .build()?; // inside a Tokio runtime: the Redis tasks start here, in the background
/// # Ok(()) }
/// # }
/// ```
///
/// Its `Debug` output shows the URL with credentials redacted ([`Cluster::redacted_url`]).
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct Cluster {
    pub(crate) url: String,
    pub(crate) name: String,
    pub(crate) pool_scope: PoolScope,
    pub(crate) heartbeat: Duration,
    pub(crate) instance_ttl: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) max_batch: usize,
    pub(crate) max_pending: usize,
    pub(crate) replay_window: Duration,
    pub(crate) max_stream_entries: usize,
    pub(crate) capacity_factor: usize,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("url", &self.redacted_url())
            .field("name", &self.name)
            .field("pool_scope", &self.pool_scope)
            .field("heartbeat", &self.heartbeat)
            .field("instance_ttl", &self.instance_ttl)
            .field("flush_interval", &self.flush_interval)
            .field("max_batch", &self.max_batch)
            .field("max_pending", &self.max_pending)
            .field("replay_window", &self.replay_window)
            .field("max_stream_entries", &self.max_stream_entries)
            .field("capacity_factor", &self.capacity_factor)
            .finish()
    }
}

/// `url` with its credentials replaced by `***`, for logs and banners: the user name and password
/// of a TCP URL (`redis://user:password@host`, `rediss://`, `valkey://`, `valkeys://`) and every
/// query value but `db` and `protocol` (the `user` and `pass` of a Unix socket URL,
/// `redis+unix:///path?pass=...`, `unix://`, `valkey+unix://`). An unparseable URL is not shown
/// at all (it might be a password pasted in the wrong place).
///
/// ```
/// # #[cfg(feature = "redis")] {
/// use realtime_layer::redact_redis_url;
///
/// assert_eq!(redact_redis_url("redis://app:s3cret@db:6379/2"), "redis://***@db:6379/2");
/// assert_eq!(
///     redact_redis_url("redis+unix:///run/redis.sock?pass=s3cret&db=1"),
///     "redis+unix:///run/redis.sock?pass=***&db=1"
/// );
/// # }
/// ```
#[cfg(feature = "redis")]
pub fn redact_redis_url(url: &str) -> String {
    const UNREADABLE: &str = "<unparseable Redis URL>";
    let Ok(parsed) = url::Url::parse(url.trim()) else {
        return UNREADABLE.into();
    };
    let scheme = parsed.scheme();
    let mut out = format!("{scheme}://");
    if !parsed.username().is_empty() || parsed.password().is_some() {
        out.push_str("***@");
    }
    match scheme {
        "redis" | "rediss" | "valkey" | "valkeys" => {
            // Rebuilt from what the `redis` crate reads: host, port, database number.
            let Some(host) = parsed.host() else {
                return UNREADABLE.into();
            };
            out.push_str(&host.to_string());
            if let Some(port) = parsed.port() {
                out.push_str(&format!(":{port}"));
            }
            match parsed.path().trim_matches('/') {
                "" => {}
                db if db.parse::<i64>().is_ok() => out.push_str(&format!("/{db}")),
                _ => out.push_str("/***"),
            }
        }
        "redis+unix" | "valkey+unix" | "unix" => out.push_str(parsed.path()),
        _ => return UNREADABLE.into(),
    }
    let pairs: Vec<String> = parsed
        .query_pairs()
        .map(|(k, v)| match &*k {
            "db" | "protocol" => format!("{k}={v}"),
            "user" | "pass" => format!("{k}=***"),
            _ => "***".into(),
        })
        .collect();
    if !pairs.is_empty() {
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(feature = "redis")]
impl Cluster {
    /// Cluster mode through the Redis server at `url`: `redis://[user:password@]host[:port][/db]`
    /// (`rediss://` needs the `redis` crate's TLS features in your build).
    pub fn redis(url: impl Into<String>) -> Self {
        Cluster {
            url: url.into(),
            name: "realtime".into(),
            pool_scope: PoolScope::PerInstance,
            heartbeat: Duration::from_secs(1),
            instance_ttl: Duration::from_secs(10),
            flush_interval: Duration::from_millis(50),
            max_batch: 1_000,
            max_pending: 10_000,
            replay_window: Duration::from_secs(10),
            max_stream_entries: 1_000_000,
            capacity_factor: 4,
        }
    }

    /// The Redis URL with its credentials replaced by `***` (see [`redact_redis_url`]): what to
    /// print instead of the URL.
    pub fn redacted_url(&self) -> String {
        redact_redis_url(&self.url)
    }

    /// The cluster's name (default `realtime`): instances with the same name and Redis share one
    /// view. Letters, digits and `-_.:`, at most 64.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How status rows add up (default [`PoolScope::PerInstance`]).
    pub fn pool_scope(mut self, scope: PoolScope) -> Self {
        self.pool_scope = scope;
        self
    }

    /// Heartbeat and status period (default 1 s).
    pub fn heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = period;
        self
    }

    /// How long an instance stays in the live totals without a heartbeat (default 10 s). Its
    /// events stay in the history.
    pub fn instance_ttl(mut self, ttl: Duration) -> Self {
        self.instance_ttl = ttl;
        self
    }

    /// Longest wait before recorded events are published (default 50 ms).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Most events per stream entry (default 1,000; at most 10,000, the bound every instance
    /// applies to the entries it reads). Entries are also split to stay under 1 MiB.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    /// Most events waiting to be published while Redis is slow or down (default 10,000); past
    /// it the oldest are dropped and counted (`publish_dropped`).
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    /// How old a waiting event may be and still be published when Redis comes back (default
    /// 10 s); older ones stay local and are counted (`publish_dropped`).
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.replay_window = window;
        self
    }

    /// Length cap of the Redis stream in entries (default 1,000,000; entries also go when they
    /// pass the retention).
    pub fn max_stream_entries(mut self, n: usize) -> Self {
        self.max_stream_entries = n;
        self
    }

    /// The cluster view's event caps as a multiple of the local buffer's (default 4: with the
    /// default caps, 400,000 borrows, ~10 MB).
    pub fn capacity_factor(mut self, factor: usize) -> Self {
        self.capacity_factor = factor;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), crate::buffer::ConfigError> {
        let err = |m: String| Err(crate::buffer::ConfigError(m));
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return err(format!(
                "cluster name must be 1..=64 letters, digits or -_.:, got {:?}",
                self.name
            ));
        }
        if let Err(e) = redis::Client::open(self.url.as_str()) {
            return err(format!("invalid Redis URL: {e}"));
        }
        if self.heartbeat.is_zero() || self.instance_ttl < self.heartbeat * 2 {
            return err(
                "cluster heartbeat must be above zero and the instance TTL at least two heartbeats"
                    .into(),
            );
        }
        if self.flush_interval.is_zero() || self.max_batch == 0 || self.max_pending == 0 {
            return err(
                "cluster flush interval, max batch and max pending must be above zero".into(),
            );
        }
        if self.max_batch > wire::MAX_EVENTS {
            return err(format!(
                "cluster max batch must be at most {} events, got {}",
                wire::MAX_EVENTS,
                self.max_batch
            ));
        }
        if self.capacity_factor == 0 || self.capacity_factor > 64 {
            return err(format!(
                "cluster capacity factor must be in 1..=64, got {}",
                self.capacity_factor
            ));
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_where_and_drop_who() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://app:pw@db:6379/2", "redis://***@db:6379/2"),
            ("redis://:pw@[::1]:6379", "redis://***@[::1]:6379"),
            ("redis://pw@db", "redis://***@db"),
            (
                "rediss://:pw@db/0?protocol=resp3#insecure",
                "rediss://***@db/0?protocol=resp3",
            ),
            ("valkey://db/pw", "valkey://db/***"),
            (
                "redis+unix:///run/r.sock?user=app&pass=pw",
                "redis+unix:///run/r.sock?user=***&pass=***",
            ),
            ("unix:///run/r.sock?db=1&pw", "unix:///run/r.sock?db=1&***"),
            ("redis:/pw", "<unparseable Redis URL>"),
            ("http://:pw@db", "<unparseable Redis URL>"),
            ("pw", "<unparseable Redis URL>"),
        ] {
            assert_eq!(redact_redis_url(url), shown, "{url}");
        }
        let debug = format!("{:?}", Cluster::redis("redis://:hunter2@db"));
        assert!(
            debug.contains("redis://***@db") && !debug.contains("hunter2"),
            "{debug}"
        );
    }
}
