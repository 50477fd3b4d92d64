//! The state of one realtime instance: [`Core`], below everything that reads or serves it.
//!
//! The layer, its service and its future hold an `Arc<Core>` (one pointer: the request path
//! only calls [`Core::record`]); readers (views, the stream, metrics callbacks, the cluster link,
//! routes) take it by reference or through a `Weak`. The public [`Realtime`](crate::Realtime)
//! facade sits on top and adds what only serving needs (the stream hub, the exporters). Nothing
//! here imports the modules above it: see the layering rule in `docs/ARCHITECTURE.md`.

mod activity;
pub(crate) mod cluster_state;
mod counters;
mod http_metrics;
mod refusals;
// Written by the ingest module (feature `sidecar`) only; read by stats and metrics always.
#[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
mod ingest_counters;

pub(crate) use activity::Activity;
#[cfg(feature = "redis")]
pub(crate) use cluster_state::PeerRows;
pub(crate) use cluster_state::{default_instance_id, shown_instance_id, ClusterState};
pub use cluster_state::{ClusterInfo, InstanceInfo, PoolScope};
pub use counters::MAX_APP_COUNTERS;
pub(crate) use counters::{read_all as read_counters, validate as validate_counters, AppCounter};
pub(crate) use http_metrics::{HttpMetrics, HttpStart};
pub use http_metrics::{RouteStats, HTTP_DURATION_BUCKETS, MAX_ROUTES};
pub use ingest_counters::IngestStats;
#[cfg_attr(not(feature = "sidecar"), allow(unused_imports))]
pub(crate) use ingest_counters::{IngestCounters, IngestRefusal, Rejection};
pub(crate) use refusals::{is_refusal, Refusals};
pub use refusals::{RefusalCount, MAX_REFUSAL_SERIES, REFUSAL_STATUSES};

use crate::buffer::EventBuffer;
use crate::event::Event;
use crate::labels::Labels;
use crate::status::StatusSource;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Settings of the live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Frame period when idle (default 1 s).
    pub tick: Duration,
    /// Longest wait between an event and the frame that carries it, while few streams are
    /// open (default 100 ms); also the shortest gap between frames under load.
    pub push_delay: Duration,
    /// How far the push delay stretches under many open streams (default 150 ms): see
    /// [`push_delay_for`](Self::push_delay_for). At or below `push_delay`, it never stretches.
    pub max_push_delay: Duration,
    /// Frames a second that all visible streams together are sent before the push delay
    /// stretches (default 8,000: about 9% of one core of a 2-vCPU VM, kernel included, for
    /// 1,000 streams; see OPERATIONS.md "Live stream cost"). Above zero.
    pub frame_budget: u64,
    /// Open streams allowed at once; more get 503 (default 1,000).
    pub max_streams: usize,
    /// Keep-alive comment period (default 15 s).
    pub keep_alive: Duration,
}

impl StreamConfig {
    /// The push delay while `readers` visible streams are open: `push_delay`, stretched so that
    /// they get at most `frame_budget` frames a second together, but never beyond
    /// `max_push_delay`. A stream's cost is mostly per frame (a write to its socket), so this
    /// bounds the CPU that a crowd of dashboards takes, while a few get updates fastest.
    ///
    /// ```
    /// use realtime_layer::StreamConfig;
    /// use std::time::Duration;
    ///
    /// let config = StreamConfig::default(); // 100 ms, up to 150 ms, 8,000 frames/s
    /// assert_eq!(config.push_delay_for(10), Duration::from_millis(100));
    /// assert_eq!(config.push_delay_for(1_000), Duration::from_millis(125));
    /// assert_eq!(config.push_delay_for(5_000), Duration::from_millis(150));
    /// ```
    pub fn push_delay_for(&self, readers: usize) -> Duration {
        let spread = (readers as u64).saturating_mul(1_000_000_000) / self.frame_budget.max(1);
        Duration::from_nanos(spread)
            .min(self.max_push_delay)
            .max(self.push_delay)
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            tick: Duration::from_secs(1),
            push_delay: Duration::from_millis(100),
            max_push_delay: Duration::from_millis(150),
            frame_budget: 8_000,
            max_streams: 1_000,
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// Everything one instance owns that capture and the readers share.
pub(crate) struct Core {
    pub(crate) buffer: EventBuffer,
    pub(crate) labels: Labels,
    pub(crate) status_source: Option<Box<dyn StatusSource>>,
    pub(crate) stream_config: StreamConfig,
    /// Woken on every recorded event (the stream pushes early on activity).
    pub(crate) activity: Arc<Activity>,
    /// Cancelled on shutdown: open streams end.
    pub(crate) shutdown: CancellationToken,
    /// Open live streams, SSE and WebSocket (exported as a gauge).
    pub(crate) stream_clients: AtomicU64,
    /// The push delay the hub applies now, in microseconds (`push_delay`, stretched under many
    /// streams; set by the hub after each build, exported as a gauge).
    pub(crate) stream_push_delay_us: AtomicU64,
    /// Streams cut because their client accepted no bytes within the server's write timeout
    /// (exported as a counter; counted by the stream routes).
    pub(crate) slow_stream_disconnects: AtomicU64,
    /// HTTP golden signals, fed by layers built with `http_metrics()` (empty otherwise).
    pub(crate) http: Arc<HttpMetrics>,
    /// Refused requests by route and reason, fed by refusal layers.
    pub(crate) refusals: Refusals,
    /// The app's own counters, read at collection time.
    pub(crate) counters: Vec<AppCounter>,
    /// This instance's id (host name and pid by default), shown by every route and frame.
    pub(crate) instance_id: Arc<str>,
    /// Cluster mode's state, when on.
    pub(crate) cluster: Option<Arc<ClusterState>>,
    /// Reverse proxies whose forwarding headers name the client (per-client stream limits).
    pub(crate) trusted_proxies: crate::serve::TrustedProxies,
    /// The ingest endpoints' counters (`realtime-sidecar`), when on.
    pub(crate) ingest: Option<Arc<IngestCounters>>,
}

impl Core {
    /// Records one event now: a clock read, a push onto the capture queue and an atomic load;
    /// the buffer applies it when it is next read ([`EventBuffer::capture`]).
    pub(crate) fn record(&self, event: Event) {
        self.buffer.capture_inlined(event);
        self.activity.signal();
    }

    /// Records owned events, each as [`record`](Self::record) does, with one wake-up.
    pub(crate) fn record_owned(&self, mut events: Vec<Event>) {
        if events.len() == 1 {
            // The usual response: one event, without an iterator over the vector.
            if let Some(event) = events.pop() {
                self.buffer.capture_inlined(event);
            }
        } else if events.is_empty() {
            return;
        } else {
            for event in events {
                self.buffer.capture(event);
            }
        }
        self.activity.signal();
    }

    /// Records several events under one lock.
    pub(crate) fn record_all(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        self.buffer.record_all(events);
        self.activity.signal();
    }

    /// Open live streams right now.
    pub(crate) fn stream_clients(&self) -> u64 {
        self.stream_clients.load(Ordering::Relaxed)
    }

    /// The live stream's push delay now (see [`StreamConfig::push_delay_for`]).
    pub(crate) fn stream_push_delay(&self) -> Duration {
        Duration::from_micros(self.stream_push_delay_us.load(Ordering::Relaxed))
    }

    /// Records the push delay the hub applies from now on.
    pub(crate) fn set_stream_push_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.stream_push_delay_us.store(micros, Ordering::Relaxed);
    }

    /// Streams cut by the server's write timeout so far.
    pub(crate) fn slow_stream_disconnects(&self) -> u64 {
        self.slow_stream_disconnects.load(Ordering::Relaxed)
    }

    /// Moves this instance's newest events into the cluster view (a no-op without cluster mode
    /// or before the backfill). Once per read, not per buffer access: it takes the local
    /// buffer's lock, which the request path's capture queue drains into.
    pub(crate) fn feed_cluster(&self) {
        if let Some(cluster) = self.cluster.as_deref() {
            cluster.feed_local(&self.buffer);
        }
    }

    /// The status source's rows now (`None` without a source), names shown like every recorded
    /// name (deceptive characters escaped, see [`crate::names`]): they then match the events'.
    pub(crate) fn own_status(&self) -> Option<Vec<crate::status::ResourceStatus>> {
        let mut rows = self.status_source.as_ref().map(|s| s.status())?;
        for row in &mut rows {
            if let std::borrow::Cow::Owned(shown) = crate::names::visible(&row.name) {
                row.name = shown;
            }
        }
        Some(rows)
    }
}
