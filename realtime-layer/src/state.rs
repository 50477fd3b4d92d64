//! The state of one realtime instance, behind the [`Realtime`](crate::Realtime) facade.
//!
//! Routes, the stream, metrics and cluster mode read this state; they import it from here rather
//! than from the public facade, so the facade depends on the parts and not the other way round.

use crate::buffer::EventBuffer;
use crate::labels::Labels;
use crate::metrics::Metrics;
use crate::status::StatusSource;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Settings of the live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Frame period when idle (default 1 s).
    pub tick: Duration,
    /// Longest wait between an event and the frame that carries it (default 100 ms).
    pub push_delay: Duration,
    /// Open streams allowed at once; more get 503 (default 1,000).
    pub max_streams: usize,
    /// Keep-alive comment period (default 15 s).
    pub keep_alive: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            tick: Duration::from_secs(1),
            push_delay: Duration::from_millis(100),
            max_streams: 1_000,
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// Everything one instance owns; [`Realtime`](crate::Realtime) is an `Arc` of it.
pub(crate) struct Shared {
    pub(crate) buffer: EventBuffer,
    pub(crate) labels: Labels,
    pub(crate) status_source: Option<Box<dyn StatusSource>>,
    pub(crate) stream_config: StreamConfig,
    /// Woken on every recorded event (the stream pushes early on activity).
    pub(crate) activity: Arc<crate::activity::Activity>,
    /// Cancelled on shutdown: open streams end.
    pub(crate) shutdown: CancellationToken,
    /// Open live streams, SSE and WebSocket (exported as a gauge).
    pub(crate) stream_clients: AtomicU64,
    pub(crate) metrics: Metrics,
    /// The live stream's frame builder, started on the first subscription.
    pub(crate) stream_hub: std::sync::OnceLock<Arc<crate::stream::StreamHub>>,
    /// This instance's id (host name and pid by default), shown by every route and frame.
    pub(crate) instance_id: Arc<str>,
    /// Cluster mode's state, when on.
    pub(crate) cluster: Option<Arc<crate::cluster::ClusterState>>,
}
