//! [`RealtimeBuilder`]: limits, wording, status source, stream, meters, cluster mode; `build`
//! assembles the core, the exporters and the live stream.

use super::handle::Realtime;
use crate::buffer::{BufferConfig, ConfigError, EventBuffer};
use crate::clock::{Clock, SystemClock};
use crate::core::{
    default_instance_id, shown_instance_id, validate_counters, Activity, AppCounter, Core,
    Refusals, StreamConfig,
};
use crate::labels::Labels;
use crate::metrics::{Meters, Metrics};
use crate::serve::TrustedProxies;
use crate::status::StatusSource;
use crate::stream::LiveStream;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Realtime {
    /// Starts configuring an instance.
    pub fn builder() -> RealtimeBuilder {
        RealtimeBuilder::default()
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
    trusted_proxies: Vec<String>,
    #[cfg(feature = "redis")]
    cluster: Option<crate::Cluster>,
    failure_reasons: Vec<String>,
    service_name: Option<String>,
    counters: Vec<AppCounter>,
    #[cfg(feature = "sidecar")]
    ingest: Option<crate::ingest::IngestConfig>,
    #[cfg(feature = "usage")]
    usage: Option<crate::usage::UsageConfig>,
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
            trusted_proxies: Vec::new(),
            #[cfg(feature = "redis")]
            cluster: None,
            failure_reasons: Vec::new(),
            service_name: None,
            counters: Vec::new(),
            #[cfg(feature = "sidecar")]
            ingest: None,
            #[cfg(feature = "usage")]
            usage: None,
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
    /// bytes without spaces or control characters. Bidirectional and invisible characters are
    /// shown as `<U+XXXX>` (like every name, see the crate documentation). Give replicas stable
    /// ids (a pod name) to keep them apart across restarts.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// Reverse proxies (addresses or networks: `10.0.0.5`, `10.0.0.0/8`, `fd00::/8`) whose
    /// `Forwarded: for=` or `X-Forwarded-For` headers name the client. The live stream allows
    /// each client 8 distinct filters at once; behind a proxy every request comes from the
    /// proxy's address, so without this every user would share one client's 8. Headers from
    /// other peers are ignored (anyone can send them). An entry that is neither an address nor a
    /// network fails [`build`](Self::build).
    ///
    /// ```
    /// use realtime_layer::Realtime;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let realtime = Realtime::builder().trusted_proxies(["127.0.0.1", "10.0.0.0/8"]).build();
    /// assert!(realtime.is_ok());
    /// assert!(Realtime::builder().trusted_proxies(["proxy.internal"]).build().is_err());
    /// # }
    /// ```
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_proxies = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// Cluster mode (feature `redis`): this instance publishes its events to Redis and every
    /// route serves the whole cluster's view (see [`Cluster`](crate::Cluster)). Build inside a
    /// Tokio runtime: the Redis tasks start with the instance and never block requests.
    #[cfg(feature = "redis")]
    pub fn cluster(mut self, cluster: crate::Cluster) -> Self {
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

    /// One of the app's own counters: `read` is called at each metrics collection and each
    /// `/realtime/stats` answer (keep it cheap: an atomic load), exported as the OpenTelemetry
    /// counter `name` (Prometheus `<name>_total`, dots as underscores) and listed under
    /// `counters` in `/realtime/stats`. Names are lowercase letters, digits, `_` and `.`
    /// (outside the `realtime.` and `http.` namespaces), at most
    /// [`MAX_APP_COUNTERS`](crate::MAX_APP_COUNTERS) of them; [`build`](Self::build) checks them.
    ///
    /// ```
    /// use realtime_layer::Realtime;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let retries = Arc::new(AtomicU64::new(0));
    /// let seen = retries.clone();
    /// let realtime = Realtime::builder()
    ///     .counter("app.retries", "Client retries answered from the store", move || {
    ///         seen.load(Ordering::Relaxed)
    ///     })
    ///     .build()
    ///     .unwrap();
    /// retries.fetch_add(2, Ordering::Relaxed);
    /// assert_eq!(realtime.counters()["app.retries"], 2);
    /// ```
    pub fn counter(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.counters.push(AppCounter {
            name: name.into(),
            description: description.into(),
            read: Box::new(read),
        });
        self
    }

    /// Ingest endpoints for services in any language (feature `sidecar`; what
    /// `realtime-sidecar` serves): events posted as OTLP/HTTP logs or NDJSON, stored at their
    /// senders' times and counted once per borrow id, and pool statuses pushed with a TTL
    /// (unless a [`status_source`](Self::status_source) is set). Serve them with
    /// [`Realtime::ingest_routes`]. Build inside a Tokio runtime: a task applies the batches.
    #[cfg(feature = "sidecar")]
    pub fn ingest(mut self, config: crate::ingest::IngestConfig) -> Self {
        self.ingest = Some(config);
        self
    }

    /// Keeps a usage tier in the SQLite file at `path` (feature `usage`): per-minute usage for
    /// 30 days and hourly rollups for 400 days, written by a thread of its own off the request
    /// path; `/realtime/report`, `/realtime/advice` and long `/realtime/history` windows answer
    /// from it. The file is created when missing and survives restarts. See
    /// [`usage_config`](Self::usage_config) for retention and the billing period.
    ///
    /// ```
    /// use realtime_layer::Realtime;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let realtime = Realtime::builder().usage(dir.path().join("usage.db")).build().unwrap();
    /// assert!(realtime.usage().is_some());
    /// # realtime.usage().unwrap().close().unwrap();
    /// ```
    #[cfg(feature = "usage")]
    pub fn usage(self, path: impl Into<std::path::PathBuf>) -> Self {
        self.usage_config(crate::usage::UsageConfig::new(path))
    }

    /// The usage tier with all its settings (feature `usage`).
    #[cfg(feature = "usage")]
    pub fn usage_config(mut self, config: crate::usage::UsageConfig) -> Self {
        self.usage = Some(config);
        self
    }

    /// Builds the instance.
    pub fn build(self) -> Result<Realtime, ConfigError> {
        validate_counters(&self.counters)?;
        if self.stream.tick.is_zero() || self.stream.push_delay.is_zero() {
            return Err(ConfigError(
                "stream tick and push delay must be above zero".into(),
            ));
        }
        if self.stream.frame_budget == 0 {
            return Err(ConfigError(
                "stream frame budget must be above zero (frames a second)".into(),
            ));
        }
        let trusted_proxies =
            TrustedProxies::parse(&self.trusted_proxies).map_err(|e| ConfigError(e.to_string()))?;
        let instance_id = self.instance_id.unwrap_or_else(default_instance_id);
        // Shown (and published) with deceptive characters escaped, like every name.
        let instance_id: Arc<str> = shown_instance_id(&instance_id)?;
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
                Some(Arc::new(crate::core::ClusterState::new(
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
        #[cfg(feature = "sidecar")]
        let (buffer, status_source, pushed, ingest_counters) = match &self.ingest {
            Some(config) => {
                config.validate()?;
                let pushed = crate::ingest::Ingest::status_source(
                    config,
                    self.buffer.max_resources,
                    self.clock.clone(),
                );
                let source: Box<dyn StatusSource> = match self.status_source {
                    Some(source) => source,
                    None => Box::new(pushed.clone()),
                };
                (
                    EventBuffer::new_ingest(self.buffer, self.clock)?,
                    Some(source),
                    Some(pushed),
                    Some(Arc::default()),
                )
            }
            None => (
                EventBuffer::new(self.buffer, self.clock)?,
                self.status_source,
                None,
                None,
            ),
        };
        #[cfg(not(feature = "sidecar"))]
        let (buffer, status_source, ingest_counters) = (
            EventBuffer::new(self.buffer, self.clock)?,
            self.status_source,
            None,
        );
        let meters = Meters::new(self.meter, self.service_name)?;
        let core = Arc::new(Core {
            buffer,
            labels: self.labels,
            status_source,
            stream_config: self.stream,
            activity: Arc::new(Activity::default()),
            shutdown: CancellationToken::new(),
            stream_clients: AtomicU64::new(0),
            // Set below, from the configuration (the hub updates it after each frame).
            stream_push_delay_us: AtomicU64::new(0),
            slow_stream_disconnects: AtomicU64::new(0),
            http: Arc::new(meters.http_metrics()),
            refusals: Refusals::default(),
            counters: self.counters,
            instance_id,
            cluster,
            trusted_proxies,
            ingest: ingest_counters,
        });
        core.set_stream_push_delay(core.stream_config.push_delay);
        #[cfg(feature = "usage")]
        let usage = match self.usage {
            Some(config) => {
                let fail = |e: crate::usage::UsageError| ConfigError(e.to_string());
                let store = crate::usage::UsageStore::open(config).map_err(fail)?;
                Some(crate::usage::UsageTier::start(&core, store).map_err(fail)?)
            }
            None => None,
        };
        let reasons: Arc<[String]> = self.failure_reasons.into();
        let metrics = Metrics::install(meters, Arc::downgrade(&core), reasons);
        #[cfg(feature = "redis")]
        if let (Some(settings), Some(cluster)) = (&self.cluster, &core.cluster) {
            crate::cluster::start(&core, cluster, settings)?;
        }
        #[cfg(feature = "sidecar")]
        let ingest = match (self.ingest, pushed) {
            (Some(config), Some(pushed)) => {
                Some(crate::ingest::Ingest::start(&core, config, pushed)?)
            }
            _ => None,
        };
        Ok(Realtime {
            core,
            stream: Arc::new(LiveStream::default()),
            metrics: Arc::new(metrics),
            #[cfg(feature = "sidecar")]
            ingest,
            #[cfg(feature = "usage")]
            usage,
        })
    }
}
