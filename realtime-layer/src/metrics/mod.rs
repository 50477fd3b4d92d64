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
//! - `realtime.buffer.events` gauge, attribute `kind`;
//! - `realtime.stream.clients` gauge (open SSE and WebSocket streams);
//! - cluster mode's `realtime.cluster.*` instruments (see `cluster.rs`).
//!
//! User names are never attributes (unbounded cardinality); resource names are bounded by the
//! buffer's `max_resources` cap (extra names fold into `(other)`).

mod cluster;
#[cfg(feature = "prometheus")]
mod prometheus_export;

use crate::buffer::ConfigError;
use crate::state::Shared;
use crate::status::ResourceStatus;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use std::sync::atomic::Ordering;
use std::sync::Weak;

#[cfg(feature = "prometheus")]
pub(crate) use prometheus_export::metrics_handler;

/// Meters to register on: our own Prometheus-backed one and/or the user's.
pub(crate) struct Meters {
    meters: Vec<Meter>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<prometheus_export::PrometheusPipeline>,
}

/// Keeps instruments (and our own provider) alive for as long as the instance lives.
pub(crate) struct Metrics {
    _instruments: Vec<Box<dyn std::any::Any + Send + Sync>>,
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus: Option<prometheus_export::PrometheusPipeline>,
}

impl Metrics {
    pub(crate) fn meters(user: Option<Meter>) -> Result<Meters, ConfigError> {
        let mut meters = Vec::new();
        #[cfg(feature = "prometheus")]
        let prometheus = {
            let pipeline = prometheus_export::PrometheusPipeline::new()?;
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

    pub(crate) fn install(meters: Meters, shared: Weak<Shared>) -> Metrics {
        let mut instruments: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
        for meter in &meters.meters {
            let s = shared.clone();
            instruments.push(Box::new(
                meter
                    .u64_observable_counter("realtime.borrows")
                    .with_description("Successful checkouts since start")
                    .with_callback(move |obs| {
                        let Some(s) = s.upgrade() else { return };
                        for (name, borrows, overage, _) in s.buffer.lifetime_totals().resources {
                            let res = KeyValue::new("resource", name.to_string());
                            obs.observe(
                                borrows - overage,
                                &[res.clone(), KeyValue::new("overage", "false")],
                            );
                            obs.observe(overage, &[res, KeyValue::new("overage", "true")]);
                        }
                    })
                    .build(),
            ));
            let s = shared.clone();
            instruments.push(Box::new(
                meter
                    .u64_observable_counter("realtime.returns")
                    .with_description("Returns since start")
                    .with_callback(move |obs| {
                        let Some(s) = s.upgrade() else { return };
                        for (name, _, _, returns) in s.buffer.lifetime_totals().resources {
                            obs.observe(returns, &[KeyValue::new("resource", name.to_string())]);
                        }
                    })
                    .build(),
            ));
            let s = shared.clone();
            instruments.push(Box::new(
                meter
                    .u64_observable_counter("realtime.failures")
                    .with_description("Refused checkouts since start")
                    .with_callback(move |obs| {
                        let Some(s) = s.upgrade() else { return };
                        for (name, reason, n) in s.buffer.lifetime_totals().failures {
                            obs.observe(
                                n,
                                &[
                                    KeyValue::new("resource", name.to_string()),
                                    KeyValue::new("reason", reason.to_string()),
                                ],
                            );
                        }
                    })
                    .build(),
            ));
            let s = shared.clone();
            instruments.push(Box::new(
                meter
                    .u64_observable_gauge("realtime.borrowed")
                    .with_description("Units checked out now, per resource")
                    .with_callback(move |obs| {
                        let Some(s) = s.upgrade() else { return };
                        // The app's own counts win, so the gauge is right even when nobody
                        // reads the dashboard (the buffer's levels are synced only on reads).
                        if let Some(source) = &s.status_source {
                            for r in source.status() {
                                obs.observe(
                                    r.borrowed as u64,
                                    &[KeyValue::new("resource", r.name)],
                                );
                            }
                            return;
                        }
                        for (name, level) in s.buffer.levels() {
                            obs.observe(
                                level as u64,
                                &[KeyValue::new("resource", name.to_string())],
                            );
                        }
                    })
                    .build(),
            ));
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
                let s = shared.clone();
                instruments.push(Box::new(
                    meter
                        .u64_observable_gauge(name)
                        .with_description(description)
                        .with_callback(move |obs| {
                            let Some(s) = s.upgrade() else { return };
                            let Some(source) = &s.status_source else {
                                return;
                            };
                            for r in source.status() {
                                obs.observe(field(&r) as u64, &[KeyValue::new("resource", r.name)]);
                            }
                        })
                        .build(),
                ));
            }
            let s = shared.clone();
            instruments.push(Box::new(
                meter
                    .u64_observable_gauge("realtime.buffer.events")
                    .with_description("Events held in the realtime buffer, per kind")
                    .with_callback(move |obs| {
                        let Some(s) = s.upgrade() else { return };
                        let stats = s.buffer.stats();
                        obs.observe(stats.borrow_count, &[KeyValue::new("kind", "borrow")]);
                        obs.observe(stats.return_count, &[KeyValue::new("kind", "return")]);
                        obs.observe(stats.failure_count, &[KeyValue::new("kind", "failure")]);
                    })
                    .build(),
            ));
            let s = shared.clone();
            instruments.push(Box::new(
                meter
                    .u64_observable_gauge("realtime.stream.clients")
                    .with_description("Open live streams (Server-Sent Events and WebSocket)")
                    .with_callback(move |obs| {
                        let Some(s) = s.upgrade() else { return };
                        obs.observe(s.stream_clients.load(Ordering::Relaxed), &[]);
                    })
                    .build(),
            ));
            cluster::install(meter, &shared, &mut instruments);
        }
        Metrics {
            _instruments: instruments,
            #[cfg(feature = "prometheus")]
            prometheus: meters.prometheus,
        }
    }
}
