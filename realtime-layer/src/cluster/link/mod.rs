//! The Redis side of cluster mode: two background tasks per instance.
//!
//! - **publisher** (one multiplexed connection): every flush interval, moves this instance's new
//!   events into the cluster view and sends the waiting ones as one pipelined `XADD` per batch;
//!   once per heartbeat writes this instance's heartbeat key (status rows, TTL) and reads the
//!   others'; every 10 s trims the stream to the retention (`XTRIM MINID ~`).
//! - **subscriber** (its own connection): loads the retained window once (the backfill), then
//!   follows the stream, both in pages bounded in bytes (a page every 25 ms while the stream is
//!   quiet, back to back while it is busy), and merges other instances' batches into the cluster
//!   view.
//!
//! Every bulk read is bounded in bytes whatever is in Redis (`guarded`), every entry in names,
//! rows and events (`wire`); merging holds no lock a request takes for longer than a pointer
//! swap or a chunk of events (`merge`).
//!
//! Neither touches the request path. Errors mark the cluster degraded (routes fall back to this
//! instance) and are retried with backoff; nothing here panics or blocks a request.

mod guarded;
mod heartbeat;
mod merge;
mod publish;
mod reply;
mod subscribe;

use super::{wire, Cluster};
use crate::buffer::ConfigError;
use crate::core::{ClusterState, Core};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

/// How long the subscriber waits before asking again when the stream had nothing new.
const POLL: Duration = Duration::from_millis(25);
/// Most entries per page read (pages are also bounded in bytes, see `guarded`).
const READ_COUNT: usize = 500;
/// How often the stream is trimmed to the retention.
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// Members not heard of for this long leave the instance set for good.
const FORGET_AFTER_MS: u64 = 3_600_000;
/// Most other instances remembered (beyond it, the longest silent are forgotten).
const MAX_PEERS: usize = 256;

/// Key names of one cluster. The `{name}` hash tag keeps them on one Redis Cluster slot.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    stream: String,
    members: String,
    prefix: String,
}

impl Keys {
    fn new(name: &str) -> Self {
        Keys {
            stream: format!("realtime:{{{name}}}:events"),
            members: format!("realtime:{{{name}}}:instances"),
            prefix: format!("realtime:{{{name}}}:instance:"),
        }
    }

    fn heartbeat(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }
}

/// Starts the tasks. Needs a Tokio runtime (cluster mode is built inside one).
pub(crate) fn start(
    core: &Arc<Core>,
    cluster: &Arc<ClusterState>,
    settings: &Cluster,
) -> Result<(), ConfigError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| {
        ConfigError(
            "cluster mode runs background tasks: build the Realtime inside a Tokio runtime".into(),
        )
    })?;
    let client = redis::Client::open(settings.url.as_str())
        .map_err(|e| ConfigError(format!("invalid Redis URL: {e}")))?;
    let link = Link {
        weak: Arc::downgrade(core),
        cluster: cluster.clone(),
        client,
        keys: Keys::new(&settings.name),
        settings: settings.clone(),
        shutdown: core.shutdown.clone(),
        retention_ms: core.buffer.config().retention.as_millis() as u64,
        scripts: Arc::new(AtomicBool::new(true)),
    };
    let publisher = link.clone();
    handle.spawn(async move { publisher.publish().await });
    handle.spawn(async move { link.subscribe().await });
    Ok(())
}

#[derive(Clone)]
struct Link {
    /// The instance; the tasks end at their next wake-up once it is gone.
    weak: Weak<Core>,
    cluster: Arc<ClusterState>,
    client: redis::Client,
    keys: Keys,
    settings: Cluster,
    shutdown: CancellationToken,
    retention_ms: u64,
    /// Bounded reads through scripts (false once the server refused them, see `guarded`).
    scripts: Arc<AtomicBool>,
}

impl Link {
    fn now_ms(&self) -> u64 {
        self.cluster.buffer.clock().now_ms()
    }

    /// A connection, retried with backoff until it works; `None` on shutdown.
    async fn connect(&self, response_timeout: Duration) -> Option<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let mut delay = Duration::from_millis(100);
        loop {
            match ConnectionManager::new_with_config(self.client.clone(), config.clone()).await {
                Ok(conn) => return Some(conn),
                Err(e) => self
                    .cluster
                    .set_error(format!("cannot connect to Redis: {e}")),
            }
            if self.pause(&mut delay).await {
                return None;
            }
        }
    }

    /// Sleeps `delay` (doubling it up to 5 s for next time); true when shutting down.
    async fn pause(&self, delay: &mut Duration) -> bool {
        let d = *delay;
        *delay = (*delay * 2).min(Duration::from_secs(5));
        tokio::select! {
            _ = self.shutdown.cancelled() => true,
            _ = sleep(d) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{BufferConfig, Cursor, EventBuffer};
    use crate::clock::ManualClock;
    use crate::core::PoolScope;

    /// A link on a cluster state of its own, without Redis (nothing connects until a task runs).
    pub(super) fn link() -> (Link, Arc<ClusterState>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let buffer = EventBuffer::new_tagged(BufferConfig::default(), clock).unwrap();
        let cluster = Arc::new(ClusterState::new(
            Arc::from("me"),
            "t".into(),
            PoolScope::PerInstance,
            Duration::from_secs(10),
            buffer,
            Cursor::default(),
            100,
        ));
        let settings = Cluster::redis("redis://127.0.0.1:1");
        let link = Link {
            weak: Weak::new(),
            cluster: cluster.clone(),
            client: redis::Client::open(settings.url.as_str()).unwrap(),
            keys: Keys::new(&settings.name),
            settings,
            shutdown: CancellationToken::new(),
            retention_ms: 6 * 3_600_000,
            scripts: Arc::new(AtomicBool::new(true)),
        };
        (link, cluster)
    }
}
