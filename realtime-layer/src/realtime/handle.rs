//! The `Realtime` handle: the public facade over one instance's [`Core`], with the live stream
//! and the exporters beside it.

use crate::buffer::{EventBuffer, EventFilter, Totals};
use crate::capture::{RealtimeLayer, RealtimeService, RefusalLayer};
use crate::core::{read_counters, ClusterInfo, Core, RefusalCount, StreamConfig};
use crate::event::Event;
use crate::labels::Labels;
use crate::metrics::Metrics;
use crate::routes::RouteState;
use crate::stream::LiveStream;
use crate::views::{ResourceView, Scope};
use axum::Router;
use std::sync::Arc;
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
    /// What capture and every reader share (the layer holds only this).
    pub(super) core: Arc<Core>,
    /// The live stream's hub, started on the first subscription.
    pub(super) stream: Arc<LiveStream>,
    /// The instruments and the Prometheus registry (also held by the `/metrics` route); without
    /// the `prometheus` feature only kept, so the instruments live as long as the handle.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(super) metrics: Arc<Metrics>,
    /// The ingest endpoints' state (feature `sidecar`, with [`RealtimeBuilder::ingest`]).
    ///
    /// [`RealtimeBuilder::ingest`]: crate::RealtimeBuilder::ingest
    #[cfg(feature = "sidecar")]
    pub(super) ingest: Option<Arc<crate::ingest::Ingest>>,
    /// The usage tier, when configured (feature `usage`).
    #[cfg(feature = "usage")]
    pub(super) usage: Option<crate::usage::UsageTier>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime")
            .field("labels", &self.core.labels)
            .field("stream", &self.core.stream_config)
            .finish_non_exhaustive()
    }
}

impl Realtime {
    /// Records one event now (for events not tied to a response).
    ///
    /// The request path's cost: a clock read, a push onto the capture queue (behind a lock held
    /// only for pushes and swaps) and an atomic load (no wait on the buffer, no allocation, no
    /// hashing); the buffer applies the event when it is next read
    /// ([`EventBuffer::capture`](crate::EventBuffer::capture)).
    pub fn record(&self, event: Event) {
        self.core.record(event);
    }

    /// Records several events under one lock.
    pub fn record_all(&self, events: &[Event]) {
        self.core.record_all(events);
    }

    /// The event buffer (queries, stats).
    pub fn buffer(&self) -> &EventBuffer {
        &self.core.buffer
    }

    /// The dashboard wording.
    pub fn labels(&self) -> &Labels {
        &self.core.labels
    }

    /// The stream settings.
    pub fn stream_config(&self) -> &StreamConfig {
        &self.core.stream_config
    }

    /// A tower layer that records the events of the services it wraps.
    pub fn layer(&self) -> RealtimeLayer {
        RealtimeLayer::from_core(self.core.clone())
    }

    /// A tower layer counting the refused answers (401, 403, 409, 413, 415, 421, 422, 429) of
    /// the services it wraps, by route template and reason ([`Refusal`](crate::Refusal), which
    /// [`ApiError`](crate::ApiError) answers carry): exported as `realtime.refusals`
    /// (`realtime_refusals_total`), listed under `refusals` in `/realtime/stats` and shown on the
    /// page next to the failures. Apply it with `Router::layer`, after the layers whose refusals
    /// it should see (see [`RefusalLayer`]). A refusal costs a short lock; other answers a status
    /// check.
    pub fn refusal_layer(&self) -> RefusalLayer {
        RefusalLayer::from_core(self.core.clone())
    }

    /// The refusals counted so far, most first (`None` until a
    /// [refusal layer](Realtime::refusal_layer) exists).
    pub fn refusals(&self) -> Option<Vec<RefusalCount>> {
        self.core.refusals.snapshot()
    }

    /// The app's own counters now, by name (see
    /// [`RealtimeBuilder::counter`](crate::RealtimeBuilder::counter)).
    pub fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        read_counters(&self.core.counters)
    }

    /// A token cancelled by [`Realtime::shutdown`]; open streams end when it is.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.core.shutdown.clone()
    }

    /// Ends every open stream (call it when the server starts shutting down, so
    /// `axum::serve(..).with_graceful_shutdown(..)` does not wait on them).
    pub fn shutdown(&self) {
        self.core.shutdown.cancel();
    }

    /// The usage tier (feature `usage`; `None` unless built with
    /// [`RealtimeBuilder::usage`](crate::RealtimeBuilder::usage)): reports, advice, and
    /// [`close`](crate::UsageTier::close) for a shutdown that loses nothing.
    #[cfg(feature = "usage")]
    pub fn usage(&self) -> Option<&crate::usage::UsageTier> {
        self.usage.as_ref()
    }

    /// Open live streams (SSE and WebSocket) right now.
    pub fn stream_clients(&self) -> u64 {
        self.core.stream_clients()
    }

    /// The live stream's push delay now: [`StreamConfig::push_delay`](crate::StreamConfig),
    /// stretched while many streams are open (see
    /// [`StreamConfig::push_delay_for`](crate::StreamConfig::push_delay_for); exported as the
    /// gauge `realtime.stream.push_delay`). Updated after each frame.
    pub fn stream_push_delay(&self) -> std::time::Duration {
        self.core.stream_push_delay()
    }

    /// Per-resource status of this instance over the last `window_secs`: the status source's
    /// totals (if any) joined with the buffer's levels, peaks and counts. Resources the status
    /// source does not list are left out when there is a source (so failures for unknown names do
    /// not invent pools).
    pub fn resource_views(
        &self,
        window_secs: u32,
        filter: &EventFilter,
    ) -> (Totals, Vec<ResourceView>) {
        crate::views::resource_views(&self.core, &Scope::Local, window_secs, filter)
    }

    /// This instance's id: the host name and process id unless set with
    /// [`RealtimeBuilder::instance_id`](crate::RealtimeBuilder::instance_id). Shown in the page header, `/realtime/config`,
    /// `/realtime/stats` and every stream frame, so a client knows which replica answered.
    pub fn instance_id(&self) -> &str {
        &self.core.instance_id
    }

    /// Whether cluster mode is on and its view is live (backfilled, Redis reachable). While it
    /// is not, routes answer from this instance alone and say `"state": "degraded"`.
    pub fn cluster_healthy(&self) -> bool {
        self.core.cluster.as_ref().is_some_and(|c| c.healthy())
    }

    /// Cluster mode's state, instances and counters, as `/realtime/stats` shows them (`None`
    /// without cluster mode).
    pub fn cluster_info(&self) -> Option<ClusterInfo> {
        let now = self.core.buffer.clock().now_ms();
        self.core.cluster.as_ref().map(|c| c.info(now))
    }

    /// The [layer](Realtime::layer) wrapped once around a whole router: see
    /// [`RealtimeLayer::wrap`].
    pub fn wrap(&self, router: Router) -> RealtimeService<Router> {
        self.layer().wrap(router)
    }

    /// The dashboard routes, with absolute paths under `/realtime`:
    ///
    /// | route | what |
    /// |---|---|
    /// | `GET /realtime` | the dashboard page |
    /// | `GET /realtime/assets/{*path}` | its scripts, styles, vendored Chart.js |
    /// | `GET /realtime/config` | labels, ranges, retention for the page |
    /// | `GET /realtime/stats?window=S` | buffer facts, rates, resources, recent events (JSON) |
    /// | `GET /realtime/stream?resource=&user=` | live frames (Server-Sent Events) |
    /// | `GET /realtime/ws?resource=&user=` | the same frames over a WebSocket (JSON text messages) |
    /// | `GET /realtime/history?window=S&resource=` | downsampled chart series (JSON) |
    /// | `GET /realtime/events.csv?window=S&resource=&user=` | buffered events (CSV, streamed) |
    /// | `GET /realtime/report?window=30d&format=csv` | usage report from the usage tier (JSON or CSV) |
    /// | `GET /realtime/advice?window=30d` | pool-sizing advice from the usage tier (JSON) |
    ///
    /// Merge them into an app (`app.merge(realtime.routes())`) or nest them under a prefix
    /// (`Router::new().nest("/admin", realtime.routes())` serves `/admin/realtime`); the page
    /// uses relative URLs, so both work.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        crate::routes::dashboard(RouteState {
            core: self.core.clone(),
            stream: self.stream.clone(),
            #[cfg(feature = "usage")]
            usage: self.usage.clone(),
        })
    }

    /// `GET /metrics`: this instance's metrics in Prometheus text format (feature `prometheus`).
    #[cfg(feature = "prometheus")]
    pub fn metrics_routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        crate::routes::metrics(self.metrics.clone())
    }

    /// Live streams cut so far because their client accepted no bytes within the server's write
    /// timeout (a stalled reader; see [`serve`](crate::serve)).
    pub fn slow_stream_disconnects(&self) -> u64 {
        self.core.slow_stream_disconnects()
    }

    /// The JSON snapshot frame a new `/realtime/stream` client with `filter` would receive now,
    /// built from scratch (what the stream does once per channel; its per-tick frames cost the
    /// same or less). For debugging, tests and benchmarks; needs no runtime.
    ///
    /// ```
    /// use realtime_layer::{Event, Realtime};
    ///
    /// let realtime = Realtime::builder().build().unwrap();
    /// realtime.record(Event::borrow("GPU", "ann"));
    /// let frame: serde_json::Value =
    ///     serde_json::from_str(&realtime.snapshot_frame(&Default::default())).unwrap();
    /// assert_eq!(frame["kind"], "snapshot");
    /// assert_eq!(frame["resources"][0]["borrowed"], 1);
    /// assert_eq!(frame["events"][0]["user"], "ann");
    /// ```
    pub fn snapshot_frame(&self, filter: &EventFilter) -> String {
        crate::stream::snapshot_frame(&self.core, filter)
    }
}

#[cfg(feature = "sidecar")]
impl Realtime {
    /// The ingest routes (feature `sidecar`; `None` unless built with
    /// [`RealtimeBuilder::ingest`](crate::RealtimeBuilder::ingest)):
    ///
    /// | route | what |
    /// |---|---|
    /// | `POST /v1/logs` | OTLP/HTTP logs (protobuf or JSON, gzip): lease events |
    /// | `POST /ingest` | NDJSON events, one per line (gzip) |
    /// | `PUT /status` | pool sizes, commits, overage limits and prices (valid for a TTL) |
    /// | `GET /status` | the pushed statuses and their age |
    ///
    /// See [`ingest`](crate::ingest) and `docs/SIDECAR.md`.
    pub fn ingest_routes<S: Clone + Send + Sync + 'static>(&self) -> Option<Router<S>> {
        let ingest = self.ingest.as_ref()?;
        Some(ingest.routes(self.core.clone()))
    }

    /// What the ingest endpoints did since start (`None` without ingest).
    pub fn ingest_stats(&self) -> Option<crate::IngestStats> {
        self.core.ingest.as_ref().map(|c| c.snapshot())
    }
}

impl RealtimeLayer {
    /// A layer recording into `realtime` (same as [`Realtime::layer`]).
    pub fn new(realtime: Realtime) -> Self {
        RealtimeLayer::from_core(realtime.core)
    }
}
