//! Ingest for services in any language (feature `sidecar`, served by the `realtime-sidecar`
//! binary): events posted over HTTP instead of captured by the tower layer.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /v1/logs` | OTLP/HTTP logs: `application/x-protobuf` or `application/json`, gzip or not | `ExportLogsServiceResponse` (`partial_success` for malformed lease records) |
//! | `POST /ingest` | NDJSON, one event per line (`application/x-ndjson`), gzip or not | `{"accepted","rejected","duplicates","errors":[{"line","error"}]}` |
//! | `PUT /status` | `{"resources":[{"name","commit","max_overage","total","borrowed","pricing"}]}` | `{"updated": n}` |
//! | `GET /status` | | the pushed rows with their age |
//!
//! A log record is an event when its event name (`eventName`, or an `event.name` attribute) is
//! one of [`EVENT_NAMES`]; its attributes are `lease.resource`, `lease.user`, `lease.id`,
//! `lease.reason` and `lease.overage` (see `docs/SIDECAR.md`). Events are stored at their
//! sender's time (`buffer/timed.rs`: late ones in their own second, a borrow or return whose id is
//! already held counted once).
//!
//! The path of a request: sender token (401) → body within the cap, after decompression too
//! (413, 415, 400) → decode → resources the token may send (403) → times (too old, too far
//! ahead: rejected per event) → the sender's rate (429 + `Retry-After`) → the apply queue (503 +
//! `Retry-After` over its high-water mark) → applied by one task under one buffer lock per batch;
//! the answer comes once the events are stored, so a 200 means they are in the view.
//!
//! Files: `lease.rs` (the vocabulary), `ndjson.rs`, `otlp.rs` and `otlp_json.rs` (decoding),
//! `body.rs` (caps, gzip), `tokens.rs`, `rate.rs`, `apply.rs` (the queue), `status_push.rs`,
//! `handlers.rs` (the routes). Credentials for the dashboard routes: [`crate::access`].

mod apply;
mod body;
mod handlers;
mod lease;
mod ndjson;
mod otlp;
mod otlp_json;
mod rate;
mod status_push;
mod tokens;

/// Moved to [`crate::access`]; re-exported here for code written against the sidecar's first release.
pub use crate::access::DashboardAuth;
pub use lease::{EVENT_NAMES, MAX_NAME_BYTES};
pub use ndjson::{LineError, MAX_LISTED_ERRORS};
pub use rate::MIN_BURST;
pub use status_push::{PushedPool, PushedStatus, StatusPush};
pub use tokens::{SenderToken, TokenFileError, Tokens};

use crate::buffer::ConfigError;
use crate::core::{Core, IngestCounters};
use apply::Job;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Limits and access of the ingest endpoints.
///
/// ```
/// use realtime_layer::ingest::IngestConfig;
/// use std::time::Duration;
///
/// let mut config = IngestConfig::default();
/// config.max_future_skew = Duration::from_secs(60);
/// assert_eq!(config.max_body_bytes, 8 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IngestConfig {
    /// Largest body, on the wire and after decompression (default 8 MiB); larger: 413.
    pub max_body_bytes: usize,
    /// How far ahead of this clock an event may be stamped (default 5 min): such events are
    /// taken as now and counted (`clamped_future`); further ahead they are rejected.
    pub max_future_skew: Duration,
    /// Events per second per sender token (or for all senders without tokens), default 50,000.
    pub rate_limit: u32,
    /// Events waiting to be applied before new batches get 503 (default 200,000).
    pub queue_high_water: usize,
    /// How long a pushed pool status stays valid (default 60 s).
    pub status_ttl: Duration,
    /// Sender tokens; `None`: anyone who can reach the port may send.
    pub tokens: Option<Tokens>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 8 << 20,
            max_future_skew: Duration::from_secs(300),
            rate_limit: 50_000,
            queue_high_water: 200_000,
            status_ttl: Duration::from_secs(60),
            tokens: None,
        }
    }
}

impl IngestConfig {
    /// Checks the limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError("max_body_bytes must be at least 1024".into()));
        }
        if self.rate_limit == 0 {
            return Err(ConfigError("rate_limit must be above 0".into()));
        }
        if self.queue_high_water == 0 {
            return Err(ConfigError("queue_high_water must be above 0".into()));
        }
        if self.status_ttl.is_zero() {
            return Err(ConfigError("status_ttl must be above 0".into()));
        }
        Ok(())
    }
}

/// One instance's ingest: limits, senders' buckets, the apply queue, pushed statuses.
pub(crate) struct Ingest {
    config: IngestConfig,
    counters: Arc<IngestCounters>,
    /// One bucket per token (in token order), or one for everybody without tokens.
    buckets: Vec<rate::Bucket>,
    queue: mpsc::UnboundedSender<Job>,
    status: Arc<PushedStatus>,
    /// The buffer's retention: older events are rejected.
    retention_ms: u64,
}

impl Ingest {
    /// The pushed-status source to install in the instance (before it is built).
    pub(crate) fn status_source(
        config: &IngestConfig,
        max_resources: usize,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Arc<PushedStatus> {
        Arc::new(PushedStatus::new(config.status_ttl, max_resources, clock))
    }

    /// Starts the apply task (needs a Tokio runtime) for `core`, whose `ingest` counters and
    /// status source came from this configuration.
    pub(crate) fn start(
        core: &Arc<Core>,
        config: IngestConfig,
        status: Arc<PushedStatus>,
    ) -> Result<Arc<Self>, ConfigError> {
        config.validate()?;
        let counters = core
            .ingest
            .clone()
            .ok_or_else(|| ConfigError("the instance was built without ingest".into()))?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError(
                "ingest starts a task: build the instance inside a Tokio runtime".into(),
            ));
        }
        status.attach(core);
        let buckets = match &config.tokens {
            Some(tokens) => tokens
                .iter()
                .map(|t| rate::Bucket::new(t.rate.unwrap_or(config.rate_limit)))
                .collect(),
            None => vec![rate::Bucket::new(config.rate_limit)],
        };
        let queue = apply::spawn(Arc::downgrade(core), counters.clone());
        let retention_ms = core.buffer.config().retention.as_millis() as u64;
        Ok(Arc::new(Ingest {
            retention_ms,
            config,
            counters,
            buckets,
            queue,
            status,
        }))
    }

    /// The ingest routes (documented on [`Realtime::ingest_routes`](crate::Realtime)).
    pub(crate) fn routes<S: Clone + Send + Sync + 'static>(
        self: &Arc<Self>,
        core: Arc<Core>,
    ) -> axum::Router<S> {
        handlers::router(handlers::IngestState {
            core,
            ingest: self.clone(),
        })
    }
}
