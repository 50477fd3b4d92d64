//! The `Realtime` handle: the public facade over one instance's state ([`crate::state`]).
//! No global state.

use crate::buffer::{BufferConfig, ConfigError, EventBuffer, EventFilter};
use crate::clock::{Clock, SystemClock};
use crate::event::Event;
use crate::labels::Labels;
use crate::layer::RealtimeLayer;
use crate::metrics::Metrics;
use crate::snapshot::ResourceView;
use crate::state::Shared;
pub use crate::state::StreamConfig;
use crate::status::StatusSource;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A cloneable handle on one realtime instance: the event buffer, its routes, its layer and its
/// metrics. Two handles built separately share nothing, so several can live in one process.
///
/// ```
/// use axum::{routing::post, Router};
/// use realtime_layer::{Event, Realtime};
///
/// async fn borrow() -> (Event, &'static str) {
///     (Event::borrow("GPU A100", "alice"), "ok")
/// }
///
/// let realtime = Realtime::builder().build().unwrap();
/// let app: Router = Router::new()
///     .route("/borrow", post(borrow))
///     .layer(realtime.layer())          // records events found in responses
///     .merge(realtime.routes())         // /realtime, /realtime/stats, ...
///     .merge(realtime.metrics_routes()); // /metrics
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct Realtime {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime")
            .field("labels", &self.shared.labels)
            .field("stream", &self.shared.stream_config)
            .finish_non_exhaustive()
    }
}

impl Realtime {
    /// Starts configuring an instance.
    pub fn builder() -> RealtimeBuilder {
        RealtimeBuilder::default()
    }

    /// Records one event now (for events not tied to a response).
    ///
    /// The request path's cost: a clock read, a push onto the capture queue (behind a lock held
    /// only for pushes and swaps) and an atomic load (no wait on the buffer, no allocation, no
    /// hashing); the buffer applies the event when it is next read
    /// ([`EventBuffer::capture`](crate::EventBuffer::capture)).
    pub fn record(&self, event: Event) {
        self.shared.buffer.capture(event);
        self.shared.activity.signal();
    }

    /// Records owned events, each as [`record`](Self::record) does, with one wake-up.
    pub(crate) fn record_owned(&self, mut events: Vec<Event>) {
        if events.len() == 1 {
            // The usual response: one event, without an iterator over the vector.
            if let Some(event) = events.pop() {
                self.shared.buffer.capture(event);
            }
        } else if events.is_empty() {
            return;
        } else {
            for event in events {
                self.shared.buffer.capture(event);
            }
        }
        self.shared.activity.signal();
    }

    /// Records several events under one lock.
    pub fn record_all(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        self.shared.buffer.record_all(events);
        self.shared.activity.signal();
    }

    /// The event buffer (queries, stats).
    pub fn buffer(&self) -> &EventBuffer {
        &self.shared.buffer
    }

    /// The dashboard wording.
    pub fn labels(&self) -> &Labels {
        &self.shared.labels
    }

    /// The stream settings.
    pub fn stream_config(&self) -> &StreamConfig {
        &self.shared.stream_config
    }

    /// A tower layer that records the events of the services it wraps.
    pub fn layer(&self) -> RealtimeLayer {
        RealtimeLayer::new(self.clone())
    }

    /// A token cancelled by [`Realtime::shutdown`]; open streams end when it is.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Ends every open stream (call it when the server starts shutting down, so
    /// `axum::serve(..).with_graceful_shutdown(..)` does not wait on them).
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Open live streams (SSE and WebSocket) right now.
    pub fn stream_clients(&self) -> u64 {
        self.shared
            .stream_clients
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Per-resource status of this instance over the last `window_secs`: the status source's
    /// totals (if any) joined with the buffer's levels, peaks and counts. Resources the status
    /// source does not list are left out when there is a source (so failures for unknown names do
    /// not invent pools).
    pub fn resource_views(
        &self,
        window_secs: u32,
        filter: &EventFilter,
    ) -> (crate::buffer::Totals, Vec<ResourceView>) {
        crate::snapshot::resource_views(
            self,
            &crate::cluster::view::Scope::Local,
            window_secs,
            filter,
        )
    }

    /// This instance's id: the host name and process id unless set with
    /// [`RealtimeBuilder::instance_id`]. Shown in the page header, `/realtime/config`,
    /// `/realtime/stats` and every stream frame, so a client knows which replica answered.
    pub fn instance_id(&self) -> &str {
        &self.shared.instance_id
    }

    /// Whether cluster mode is on and its view is live (backfilled, Redis reachable). While it
    /// is not, routes answer from this instance alone and say `"state": "degraded"`.
    pub fn cluster_healthy(&self) -> bool {
        self.shared.cluster.as_ref().is_some_and(|c| c.healthy())
    }

    /// Cluster mode's state, instances and counters, as `/realtime/stats` shows them (`None`
    /// without cluster mode).
    pub fn cluster_info(&self) -> Option<crate::cluster::ClusterInfo> {
        let now = self.shared.buffer.clock().now_ms();
        self.shared.cluster.as_ref().map(|c| c.info(now))
    }
}

/// Configures a [`Realtime`] instance.
///
/// ```
/// use realtime_layer::{Labels, Realtime, ResourceStatus};
/// use std::time::Duration;
///
/// let realtime = Realtime::builder()
///     .retention(Duration::from_secs(3600))
///     .max_borrows(50_000)
///     .labels(Labels::default().resource("Seat", "Seats"))
///     .status_source(|| vec![ResourceStatus::new("seat-pool", 10, 8, 0)])
///     .build()
///     .unwrap();
/// assert_eq!(realtime.buffer().config().max_borrows, 50_000);
/// ```
pub struct RealtimeBuilder {
    buffer: BufferConfig,
    clock: Arc<dyn Clock>,
    labels: Labels,
    status_source: Option<Box<dyn StatusSource>>,
    stream: StreamConfig,
    meter: Option<opentelemetry::metrics::Meter>,
    instance_id: Option<String>,
    #[cfg(feature = "redis")]
    cluster: Option<crate::cluster::Cluster>,
    failure_reasons: Vec<String>,
    service_name: Option<String>,
}

impl Default for RealtimeBuilder {
    fn default() -> Self {
        RealtimeBuilder {
            buffer: BufferConfig::default(),
            clock: Arc::new(SystemClock::new()),
            labels: Labels::default(),
            status_source: None,
            stream: StreamConfig::default(),
            meter: None,
            instance_id: None,
            #[cfg(feature = "redis")]
            cluster: None,
            failure_reasons: Vec::new(),
            service_name: None,
        }
    }
}

impl std::fmt::Debug for RealtimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeBuilder")
            .field("buffer", &self.buffer)
            .field("labels", &self.labels)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl RealtimeBuilder {
    /// All buffer limits at once.
    pub fn buffer_config(mut self, config: BufferConfig) -> Self {
        self.buffer = config;
        self
    }
    /// How long events are kept (default 6 h).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.buffer.retention = retention;
        self
    }
    /// Most borrows kept (default 100,000).
    pub fn max_borrows(mut self, n: usize) -> Self {
        self.buffer.max_borrows = n;
        self
    }
    /// Most returns kept (default 100,000).
    pub fn max_returns(mut self, n: usize) -> Self {
        self.buffer.max_returns = n;
        self
    }
    /// Most failures kept (default 10,000).
    pub fn max_failures(mut self, n: usize) -> Self {
        self.buffer.max_failures = n;
        self
    }
    /// Distinct users before folding into `(other)` (default 10,000).
    pub fn max_users(mut self, n: usize) -> Self {
        self.buffer.max_users = n;
        self
    }
    /// Distinct resources before folding into `(other)` (default 1,000).
    pub fn max_resources(mut self, n: usize) -> Self {
        self.buffer.max_resources = n;
        self
    }
    /// Most per-second aggregate entries (default 3,000,000, ~30 MB; see
    /// [`BufferConfig::max_second_entries`]).
    pub fn max_second_entries(mut self, n: usize) -> Self {
        self.buffer.max_second_entries = n;
        self
    }
    /// The time source (default: the system clock). Tests pass a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
    /// Dashboard wording.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = labels;
        self
    }
    /// The app's own view of its pools (total, commit, borrowed).
    pub fn status_source(mut self, source: impl StatusSource) -> Self {
        self.status_source = Some(Box::new(source));
        self
    }
    /// Stream settings.
    pub fn stream_config(mut self, config: StreamConfig) -> Self {
        self.stream = config;
        self
    }
    /// Idle frame period of the stream (default 1 s).
    pub fn tick(mut self, tick: Duration) -> Self {
        self.stream.tick = tick;
        self
    }
    /// Open streams allowed at once (default 1,000).
    pub fn max_streams(mut self, n: usize) -> Self {
        self.stream.max_streams = n;
        self
    }
    /// Also export metrics through this OpenTelemetry meter (e.g. one of your OTLP pipeline).
    /// Without it and without the `prometheus` feature, the global meter is used.
    pub fn meter(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// This instance's id (default: host name and process id, e.g. `web-1-4242`): 1..=128
    /// bytes without spaces. Give replicas stable ids (a pod name) to keep them apart across
    /// restarts.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// Cluster mode (feature `redis`): this instance publishes its events to Redis and every
    /// route serves the whole cluster's view (see [`Cluster`](crate::Cluster)). Build inside a
    /// Tokio runtime: the Redis tasks start with the instance and never block requests.
    #[cfg(feature = "redis")]
    pub fn cluster(mut self, cluster: crate::cluster::Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// The failure reasons the app uses (e.g. `["exhausted", "max_overage"]`): their
    /// `realtime_failures_total` series exist at 0 for every known resource from the start, so
    /// the first burst of refusals is an increase that `rate()` and alerts see.
    pub fn failure_reasons<I, R>(mut self, reasons: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.failure_reasons = reasons.into_iter().map(Into::into).collect();
        self
    }
    /// The OpenTelemetry `service.name` of the built-in Prometheus exporter (shown as
    /// `target_info{service_name=..}`; default `unknown_service:<binary>`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Builds the instance.
    pub fn build(self) -> Result<Realtime, ConfigError> {
        if self.stream.tick.is_zero() || self.stream.push_delay.is_zero() {
            return Err(ConfigError(
                "stream tick and push delay must be above zero".into(),
            ));
        }
        let instance_id = self
            .instance_id
            .unwrap_or_else(crate::cluster::default_instance_id);
        crate::cluster::validate_instance_id(&instance_id)?;
        let instance_id: Arc<str> = Arc::from(instance_id);
        #[cfg(feature = "redis")]
        let cluster = match &self.cluster {
            Some(settings) => {
                settings.validate()?;
                let factor = settings.capacity_factor;
                let config = BufferConfig {
                    max_borrows: self.buffer.max_borrows.saturating_mul(factor),
                    max_returns: self.buffer.max_returns.saturating_mul(factor),
                    max_failures: self.buffer.max_failures.saturating_mul(factor),
                    ..self.buffer.clone()
                };
                let buffer = EventBuffer::new_tagged(config, self.clock.clone())?;
                Some(Arc::new(crate::cluster::ClusterState::new(
                    instance_id.clone(),
                    settings.name.clone(),
                    settings.pool_scope,
                    settings.instance_ttl,
                    buffer,
                    crate::buffer::Cursor::default(),
                    settings.max_pending,
                )))
            }
            None => None,
        };
        #[cfg(not(feature = "redis"))]
        let cluster = None;
        let buffer = EventBuffer::new(self.buffer, self.clock)?;
        let meters = Metrics::meters(self.meter, self.service_name)?;
        let reasons: Arc<[String]> = self.failure_reasons.into();
        let shared = Arc::new_cyclic(|weak| Shared {
            buffer,
            labels: self.labels,
            status_source: self.status_source,
            stream_config: self.stream,
            activity: Arc::new(crate::activity::Activity::default()),
            shutdown: CancellationToken::new(),
            stream_clients: AtomicU64::new(0),
            metrics: Metrics::install(meters, weak.clone(), reasons),
            stream_hub: std::sync::OnceLock::new(),
            instance_id,
            cluster,
        });
        #[cfg(feature = "redis")]
        if let (Some(settings), Some(cluster)) = (&self.cluster, &shared.cluster) {
            crate::cluster::link::start(&shared, cluster, settings)?;
        }
        Ok(Realtime { shared })
    }
}
