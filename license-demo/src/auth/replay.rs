//! The replay memory shared by the replicas of a cluster (cluster mode): every signed borrow's
//! replay key is claimed in Redis with `SET NX` and the timestamp window as TTL, so a request
//! replayed to another replica (with its own database) is refused too.
//!
//! The database keeps its own memory as well (the pool's `signature_replays` table): Redis
//! decides across replicas, the database across restarts and processes on one file.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt::Write as _;
use std::time::Duration;

/// What the shared memory knew of a replay key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First sighting: it is claimed now.
    New,
    /// Seen before with the same idempotency key: a retry, not a replay.
    Retry,
    /// Seen before otherwise.
    Seen,
}

/// Replay keys in Redis, under `license-demo:<cluster>:replay:`.
pub struct RedisReplays {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisReplays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplays")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisReplays {
    /// A memory on the Redis at `url` for the cluster `cluster`. Connects on first use (needs a
    /// Tokio runtime); a Redis that cannot be reached makes each claim fail quickly.
    pub fn new(url: &str, cluster: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(RedisReplays {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: format!("license-demo:{cluster}:replay:"),
        })
    }

    /// Claims `key` until Unix second `expires_at` (it is `now` now) for a request carrying
    /// `identity` (its idempotency scope and key; empty without one).
    pub async fn claim(
        &self,
        key: &[u8; 16],
        expires_at: i64,
        now: i64,
        identity: &str,
    ) -> Result<Claim, redis::RedisError> {
        let mut name = String::with_capacity(self.prefix.len() + 32);
        name.push_str(&self.prefix);
        for b in key {
            let _ = write!(name, "{b:02x}");
        }
        let ttl = expires_at.saturating_sub(now).max(1);
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(&name)
            .arg(identity)
            .arg("NX")
            .arg("EX")
            .arg(ttl)
            .query_async(&mut conn)
            .await?;
        if set.is_some() {
            return Ok(Claim::New);
        }
        let first: Option<String> = redis::cmd("GET").arg(&name).query_async(&mut conn).await?;
        Ok(match first {
            Some(first) if !identity.is_empty() && first == identity => Claim::Retry,
            _ => Claim::Seen,
        })
    }
}
