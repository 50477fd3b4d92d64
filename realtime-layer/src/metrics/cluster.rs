//! Cluster mode's instruments (only observed when cluster mode is on):
//! - `realtime.cluster.events` counter [`realtime_cluster_events_total`], attribute `outcome`:
//!   `published`, `publish_dropped` (never reached Redis: full queue or past the replay
//!   window), `received`, `backfilled`;
//! - `realtime.cluster.skipped_entries` counter: malformed or foreign stream entries/heartbeats;
//! - `realtime.cluster.instances` gauge: live instances, this one included;
//! - `realtime.cluster.up` gauge: 1 while the cluster view is served, 0 while degraded.

use crate::state::Shared;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::sync::atomic::Ordering;
use std::sync::Weak;

pub(super) fn install(
    meter: &Meter,
    shared: &Weak<Shared>,
    instruments: &mut Vec<Box<dyn std::any::Any + Send + Sync>>,
) {
    let s = shared.clone();
    instruments.push(Box::new(
        meter
            .u64_observable_counter("realtime.cluster.events")
            .with_description("Events through the cluster link since start, by outcome")
            .with_callback(move |obs| {
                let Some(c) = s.upgrade().and_then(|s| s.cluster.clone()) else {
                    return;
                };
                let n = &c.counters;
                for (outcome, counter) in [
                    ("published", &n.published),
                    ("publish_dropped", &n.publish_dropped),
                    ("received", &n.received),
                    ("backfilled", &n.backfilled),
                ] {
                    obs.observe(
                        counter.load(Ordering::Relaxed),
                        &[KeyValue::new("outcome", outcome)],
                    );
                }
            })
            .build(),
    ));
    let s = shared.clone();
    instruments.push(Box::new(
        meter
            .u64_observable_counter("realtime.cluster.skipped_entries")
            .with_description("Malformed or foreign cluster stream entries and heartbeats skipped")
            .with_callback(move |obs| {
                if let Some(c) = s.upgrade().and_then(|s| s.cluster.clone()) {
                    obs.observe(c.counters.skipped_entries.load(Ordering::Relaxed), &[]);
                }
            })
            .build(),
    ));
    let s = shared.clone();
    instruments.push(Box::new(
        meter
            .u64_observable_gauge("realtime.cluster.instances")
            .with_description("Live instances in the cluster view, this one included")
            .with_callback(move |obs| {
                if let Some(c) = s.upgrade().and_then(|s| s.cluster.clone()) {
                    let now = c.buffer.clock().now_ms();
                    obs.observe(c.live_peers(now).len() as u64 + 1, &[]);
                }
            })
            .build(),
    ));
    let s = shared.clone();
    instruments.push(Box::new(
        meter
            .u64_observable_gauge("realtime.cluster.up")
            .with_description(
                "1 while the cluster view is served, 0 while degraded (Redis unreachable)",
            )
            .with_callback(move |obs| {
                if let Some(c) = s.upgrade().and_then(|s| s.cluster.clone()) {
                    obs.observe(c.healthy() as u64, &[]);
                }
            })
            .build(),
    ));
}
