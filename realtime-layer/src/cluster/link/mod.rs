//! The Redis side of cluster mode: two background tasks per instance.
//!
//! - **publisher** (one multiplexed connection): every flush interval, moves this instance's new
//!   events into the cluster view and sends the waiting ones as one pipelined `XADD` per batch;
//!   once per heartbeat writes this instance's heartbeat key (status rows, TTL) and reads the
//!   others'; every 10 s trims the stream to the retention (`XTRIM MINID ~`).
//! - **subscriber** (its own connection, since `XREAD BLOCK` holds a connection): loads the
//!   retained window once (`XRANGE`, the backfill), then follows the stream (`XREAD BLOCK`) and
//!   merges other instances' batches into the cluster view.
//!
//! Neither touches the request path. Errors mark the cluster degraded (routes fall back to this
//! instance) and are retried with backoff; nothing here panics or blocks a request.

mod heartbeat;
mod publish;
mod reply;
mod subscribe;

use super::{wire, Cluster};
use crate::buffer::ConfigError;
use crate::core::{ClusterState, Core};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

/// `XREAD BLOCK` timeout: how often the subscriber comes back to check for shutdown.
const BLOCK: Duration = Duration::from_millis(1_000);
/// Entries per `XRANGE` page of the backfill and per `XREAD`.
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
