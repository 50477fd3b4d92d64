//! Cluster mode's instruments (only observed when cluster mode is on):
//! - `realtime.cluster.events` counter [`realtime_cluster_events_total`], attribute `outcome`:
//!   `published`, `publish_dropped` (never reached Redis: full queue or past the replay
//!   window), `received`, `backfilled`;
//! - `realtime.cluster.skipped_entries` counter: malformed or foreign stream entries/heartbeats;
//! - `realtime.cluster.instances` gauge: live instances, this one included;
//! - `realtime.cluster.up` gauge: 1 while the cluster view is served, 0 while degraded.

use super::register::{Kind, Registrar};
use crate::core::ClusterState;
use opentelemetry::metrics::AsyncInstrument;
use opentelemetry::KeyValue;
use std::sync::atomic::Ordering;

/// `observe` with the cluster state, when cluster mode is on.
fn cluster<T>(
    observe: impl Fn(&ClusterState, &dyn AsyncInstrument<T>) + Send + Sync + 'static,
) -> impl Fn(&crate::core::Core, &dyn AsyncInstrument<T>) + Send + Sync + 'static {
    move |core, obs| {
        if let Some(c) = core.cluster.as_deref() {
            observe(c, obs);
        }
    }
}

pub(super) fn register(r: &mut Registrar<'_>) {
    r.u64(
        Kind::Counter,
        "realtime.cluster.events",
        "Events through the cluster link since start, by outcome",
        cluster(|c, obs| {
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
        }),
    );
    r.u64(
        Kind::Counter,
        "realtime.cluster.skipped_entries",
        "Malformed or foreign cluster stream entries and heartbeats skipped",
        cluster(|c, obs| obs.observe(c.counters.skipped_entries.load(Ordering::Relaxed), &[])),
    );
    r.u64(
        Kind::Gauge,
        "realtime.cluster.instances",
        "Live instances in the cluster view, this one included",
        cluster(|c, obs| {
            let now = c.buffer.clock().now_ms();
            obs.observe(c.live_peers(now).len() as u64 + 1, &[]);
        }),
    );
    r.u64(
        Kind::Gauge,
        "realtime.cluster.up",
        "1 while the cluster view is served, 0 while degraded (Redis unreachable)",
        cluster(|c, obs| obs.observe(c.healthy() as u64, &[])),
    );
}
