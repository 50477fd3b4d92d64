//! OpenTelemetry export. Instruments are *observable*: their callbacks read the buffer's lifetime
//! totals at collection time, so recording an event costs the request path nothing extra.
//!
//! Exported (Prometheus names in brackets):
//! - `realtime.borrows` [`realtime_borrows_total`] counter, attributes `resource`, `overage`;
//! - `realtime.returns` [`realtime_returns_total`] counter, attribute `resource`;
//! - `realtime.failures` [`realtime_failures_total`] counter, attributes `resource`, `reason`;
//! - `realtime.borrowed` gauge, attribute `resource`;
//! - `realtime.capacity` and `realtime.commit` gauges, attribute `resource` (units in the pool and
//!   units committed; only with a [`StatusSource`](crate::StatusSource), which knows them);
//! - `realtime.overage.cost` [`realtime_overage_cost_total`] counter, attributes `resource`,
//!   `currency`: overage borrows since start times the overage unit price (only resources whose
//!   status has [`Pricing`](crate::Pricing));
//! - `realtime.hold.duration` [`realtime_hold_duration_seconds`] histogram (seconds), attribute
//!   `resource`: how long borrows stayed out, for returns matched to their borrow by id;
//! - `http.server.request.duration` [`http_server_request_duration_seconds`] histogram, attributes
//!   `http.route`, `http.request.method`, `http.response.status_code` (only for services wrapped
//!   in a layer built with [`RealtimeLayer::http_metrics`](crate::RealtimeLayer::http_metrics));
//! - `realtime.refusals` [`realtime_refusals_total`] counter, attributes `http.route`, `reason`,
//!   `http.response.status_code`: refused requests (only for services wrapped in a
//!   [`Realtime::refusal_layer`](crate::Realtime::refusal_layer));
//! - the app's own counters ([`RealtimeBuilder::counter`](crate::RealtimeBuilder::counter)),
//!   under their names;
//! - `realtime.buffer.events` gauge, attribute `kind`;
//! - `realtime.stream.clients` gauge (open SSE and WebSocket streams);
//! - `realtime.stream.push_delay` [`realtime_stream_push_delay_seconds`] gauge (seconds): the
//!   push delay now, stretched while many streams are open
//!   ([`StreamConfig::push_delay_for`](crate::StreamConfig::push_delay_for));
//! - `realtime.stream.slow_disconnects` [`realtime_stream_slow_disconnects_total`] counter
//!   (streams cut by the server's write timeout: their client stopped reading);
//! - cluster mode's `realtime.cluster.*` instruments (see `cluster.rs`).
//!
//! Counter series of every known resource (the status source's and those seen in events) exist
//! from the first collection at 0, with the failure reasons declared by
//! [`RealtimeBuilder::failure_reasons`](crate::RealtimeBuilder::failure_reasons): a burst of
//! refusals on a fresh series is then a visible increase for `rate()` and `increase()` instead of
//! a series that appears already above 0.
//!
//! User names are never attributes (unbounded cardinality); resource names are bounded by the
//! buffer's `max_resources` cap (extra names fold into `(other)`).

mod cluster;
mod ingest;
#[cfg(feature = "prometheus")]
mod prometheus_export;
mod register;
mod zero;

use crate::buffer::{ConfigError, HOLD_BUCKETS_SECONDS};
use crate::core::{Core, HttpMetrics, HTTP_DURATION_BUCKETS};
use crate::status::ResourceStatus;
#[cfg(feature = "prometheus")]
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::KeyValue;
use register::{Kind, Registrar};
use std::sync::{Arc, Weak};

#[cfg(feature = "prometheus")]
pub(crate) use prometheus_export::metrics_handler;

/// Meters to register on: our own Prometheus-backed one and/or the user's.
pub(crate) struct Meters {
    meters: Vec<Meter>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<prometheus_export::PrometheusPipeline>,
}

impl Meters {
    /// Our own meter (feature `prometheus`; its resource names the service `service_name`) and
    /// the user's.
    pub(crate) fn new(
        user: Option<Meter>,
        #[cfg_attr(not(feature = "prometheus"), allow(unused_variables))] service_name: Option<
            String,
        >,
    ) -> Result<Meters, ConfigError> {
        let mut meters = Vec::new();
        #[cfg(feature = "prometheus")]
        let prometheus = {
            let pipeline = prometheus_export::PrometheusPipeline::new(service_name)?;
            meters.push(pipeline.provider.meter("realtime-layer"));
            Some(pipeline)
        };
        match user {
            Some(meter) => meters.push(meter),
            None if meters.is_empty() => {
                meters.push(opentelemetry::global::meter("realtime-layer"))
            }
            None => {}
        }
        Ok(Meters {
            meters,
            #[cfg(feature = "prometheus")]
            prometheus,
        })
    }

    /// The HTTP golden signals, exported on every meter as `http.server.request.duration`
    /// (the core holds them: layers built with `http_metrics()` feed them on the request path).
    pub(crate) fn http_metrics(&self) -> HttpMetrics {
        let histograms = self
            .meters
            .iter()
            .map(|meter| {
                meter
                    .f64_histogram("http.server.request.duration")
                    .with_unit("s")
                    .with_description(
                        "Duration of HTTP server requests (RealtimeLayer::http_metrics)",
                    )
                    .with_boundaries(HTTP_DURATION_BUCKETS.to_vec())
                    .build()
            })
            .collect();
        HttpMetrics::new(histograms)
    }
}

/// Keeps instruments (and our own provider) alive for as long as the instance's facade and its
/// `/metrics` route live.
pub(crate) struct Metrics {
    _instruments: Vec<Box<dyn std::any::Any + Send + Sync>>,
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus: Option<prometheus_export::PrometheusPipeline>,
}

impl Metrics {
    /// Registers every instrument on every meter, reading `core` at collection time. `reasons`
    /// are the failure reasons whose counter series start at 0.
    pub(crate) fn install(meters: Meters, core: Weak<Core>, reasons: Arc<[String]>) -> Metrics {
        let mut instruments: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
        for meter in &meters.meters {
            let mut r = Registrar::new(meter, &core, &mut instruments);
            register_buffer_instruments(&mut r, reasons.clone());
            register_pool_instruments(&mut r);
            register_stream_instruments(&mut r);
            register_request_counters(&mut r, &core);
            cluster::register(&mut r);
            ingest::register(&mut r);
        }
        Metrics {
            _instruments: instruments,
            #[cfg(feature = "prometheus")]
            prometheus: meters.prometheus,
        }
    }
}

/// Counters of the events themselves, and the buffer's size.
fn register_buffer_instruments(r: &mut Registrar<'_>, reasons: Arc<[String]>) {
    r.u64(
        Kind::Counter,
        "realtime.borrows",
        "Successful checkouts since start",
        |core, obs| {
            for (name, borrows, overage, _) in zero::resource_totals(core) {
                let res = KeyValue::new("resource", name.to_string());
                obs.observe(
                    borrows - overage,
                    &[res.clone(), KeyValue::new("overage", "false")],
                );
                obs.observe(overage, &[res, KeyValue::new("overage", "true")]);
            }
        },
    );
    r.u64(
        Kind::Counter,
        "realtime.returns",
        "Returns since start",
        |core, obs| {
            for (name, _, _, returns) in zero::resource_totals(core) {
                obs.observe(returns, &[KeyValue::new("resource", name.to_string())]);
            }
        },
    );
    r.u64(
        Kind::Counter,
        "realtime.failures",
        "Refused checkouts since start",
        move |core, obs| {
            for (name, reason, n) in zero::failure_totals(core, &reasons) {
                obs.observe(
                    n,
                    &[
                        KeyValue::new("resource", name.to_string()),
                        KeyValue::new("reason", reason.to_string()),
                    ],
                );
            }
        },
    );
    r.u64(
        Kind::Gauge,
        "realtime.buffer.events",
        "Events held in the realtime buffer, per kind",
        |core, obs| {
            let stats = core.buffer.stats();
            obs.observe(stats.borrow_count, &[KeyValue::new("kind", "borrow")]);
            obs.observe(stats.return_count, &[KeyValue::new("kind", "return")]);
            obs.observe(stats.failure_count, &[KeyValue::new("kind", "failure")]);
        },
    );
}

/// Levels, pool sizes, hold times and overage cost per resource.
fn register_pool_instruments(r: &mut Registrar<'_>) {
    let holds = HoldExport::new(r.meter());
    r.u64(
        Kind::Gauge,
        "realtime.borrowed",
        "Units checked out now, per resource",
        move |core, obs| {
            // Callbacks run before the SDK reads its histograms, so holds that ended since the
            // last collection are in this one.
            holds.drain(core);
            // The app's own counts win, so the gauge is right even when nobody reads the
            // dashboard (the buffer's levels are synced only on reads).
            if let Some(rows) = core.own_status() {
                for r in rows {
                    obs.observe(r.borrowed as u64, &[KeyValue::new("resource", r.name)]);
                }
                return;
            }
            for (name, level) in core.buffer.levels() {
                obs.observe(level as u64, &[KeyValue::new("resource", name.to_string())]);
            }
        },
    );
    // Pool sizes come only from the app: events say nothing about them.
    for (name, description, field) in [
        (
            "realtime.capacity",
            "Units in the pool, per resource (from the app's status source)",
            (|r: &ResourceStatus| r.total) as fn(&ResourceStatus) -> u32,
        ),
        (
            "realtime.commit",
            "Units included in the commitment, per resource; borrows above are overage",
            |r: &ResourceStatus| r.commit,
        ),
    ] {
        r.u64(Kind::Gauge, name, description, move |core, obs| {
            for row in core.own_status().unwrap_or_default() {
                obs.observe(field(&row) as u64, &[KeyValue::new("resource", row.name)]);
            }
        });
    }
    r.f64_counter(
        "realtime.overage.cost",
        "Overage borrows since start times the overage unit price, per resource and currency \
         (from the status source's pricing)",
        |core, obs| {
            for (name, currency, cost) in zero::overage_costs(core) {
                obs.observe(
                    cost,
                    &[
                        KeyValue::new("resource", name),
                        KeyValue::new("currency", currency),
                    ],
                );
            }
        },
    );
}

/// The live stream's clients, its push delay now and the streams cut for not reading.
fn register_stream_instruments(r: &mut Registrar<'_>) {
    r.u64(
        Kind::Gauge,
        "realtime.stream.clients",
        "Open live streams (Server-Sent Events and WebSocket)",
        |core, obs| obs.observe(core.stream_clients(), &[]),
    );
    r.f64_gauge(
        "realtime.stream.push_delay",
        "s",
        "The live stream's push delay now: push_delay, stretched while many streams are open \
         (frame_budget)",
        |core, obs| obs.observe(core.stream_push_delay().as_secs_f64(), &[]),
    );
    r.u64(
        Kind::Counter,
        "realtime.stream.slow_disconnects",
        "Live streams cut because their client accepted no data within the write timeout",
        |core, obs| obs.observe(core.slow_stream_disconnects(), &[]),
    );
}

/// Refused requests by route and reason, and the app's own counters.
fn register_request_counters(r: &mut Registrar<'_>, core: &Weak<Core>) {
    r.u64(
        Kind::Counter,
        "realtime.refusals",
        "Refused requests (401, 403, 409, 413, 415, 421, 422, 429) since start, per route and reason",
        |core, obs| {
            for c in core.refusals.snapshot().unwrap_or_default() {
                obs.observe(
                    c.count,
                    &[
                        KeyValue::new("http.route", c.route.to_string()),
                        KeyValue::new("reason", c.reason.to_string()),
                        KeyValue::new("http.response.status_code", i64::from(c.status)),
                    ],
                );
            }
        },
    );
    let Some(strong) = core.upgrade() else {
        return;
    };
    for (index, counter) in strong.counters.iter().enumerate() {
        r.u64(
            Kind::Counter,
            counter.name.clone(),
            counter.description.clone(),
            move |core, obs| {
                if let Some(c) = core.counters.get(index) {
                    obs.observe((c.read)(), &[]);
                }
            },
        );
    }
}

/// Most holds handed to the histogram per collection (more wait for the next one).
const HOLDS_PER_COLLECTION: usize = 100_000;

/// Feeds `realtime.hold.duration` of one meter from the buffer's measured holds.
struct HoldExport {
    histogram: Histogram<f64>,
    /// Sequence number of the next hold to export (locked through a drain, so two concurrent
    /// collections never export a hold twice).
    next: parking_lot::Mutex<u64>,
}

impl HoldExport {
    fn new(meter: &Meter) -> HoldExport {
        HoldExport {
            histogram: meter
                .f64_histogram("realtime.hold.duration")
                .with_unit("s")
                .with_description(
                    "How long borrows stayed out before their return, per resource (matched by \
                     borrow id)",
                )
                .with_boundaries(HOLD_BUCKETS_SECONDS.to_vec())
                .build(),
            next: parking_lot::Mutex::new(0),
        }
    }

    fn drain(&self, core: &Core) {
        let mut next = self.next.lock();
        let (holds, after) = core.buffer.holds_after(*next, HOLDS_PER_COLLECTION);
        *next = after;
        for (resource, seconds) in holds {
            self.histogram
                .record(seconds, &[KeyValue::new("resource", resource.to_string())]);
        }
    }
}
