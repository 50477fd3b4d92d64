//! The sidecar's ingest instruments (only observed when ingest is on):
//! - `realtime.ingest.events` counter [`realtime_ingest_events_total`], attribute `outcome`:
//!   `stored`, `duplicate` (a borrow id already held: a sender's retry), `ignored` (OTLP records
//!   that are not lease events), `rejected`;
//! - `realtime.ingest.rejected` counter, attribute `reason` (`malformed`, `too_old`, `future`,
//!   `forbidden`, `rate_limited`, `overloaded`): every refused event;
//! - `realtime.ingest.refused_requests` counter, attribute `reason` (`unauthorized`,
//!   `too_large`, `unsupported`, `bad_body`): requests refused before their events were read;
//! - `realtime.ingest.late` and `realtime.ingest.clamped_future` counters: events stored in an
//!   earlier second than the newest, and events stamped a little ahead, taken as now;
//! - `realtime.ingest.queued` gauge: events waiting in the apply queue.

use super::register::{Kind, Registrar};
use crate::core::{Core, IngestStats};
use opentelemetry::metrics::AsyncInstrument;
use opentelemetry::KeyValue;

/// `observe` with the ingest counters, when ingest is on.
fn ingest<T>(
    observe: impl Fn(&IngestStats, &dyn AsyncInstrument<T>) + Send + Sync + 'static,
) -> impl Fn(&Core, &dyn AsyncInstrument<T>) + Send + Sync + 'static {
    move |core, obs| {
        if let Some(c) = core.ingest.as_deref() {
            observe(&c.snapshot(), obs);
        }
    }
}

pub(super) fn register(r: &mut Registrar<'_>) {
    r.u64(
        Kind::Counter,
        "realtime.ingest.events",
        "Events posted to the sidecar since start, by outcome",
        ingest(|s, obs| {
            let rejected: u64 = s.rejected.values().sum();
            for (outcome, n) in [
                ("stored", s.stored),
                ("duplicate", s.duplicates),
                ("ignored", s.ignored),
                ("rejected", rejected),
            ] {
                obs.observe(n, &[KeyValue::new("outcome", outcome)]);
            }
        }),
    );
    r.u64(
        Kind::Counter,
        "realtime.ingest.rejected",
        "Events posted to the sidecar and not stored, by reason",
        ingest(|s, obs| {
            for (reason, n) in &s.rejected {
                obs.observe(*n, &[KeyValue::new("reason", *reason)]);
            }
        }),
    );
    r.u64(
        Kind::Counter,
        "realtime.ingest.refused_requests",
        "Ingest requests refused before their events could be read, by reason",
        ingest(|s, obs| {
            for (reason, n) in &s.refused_requests {
                obs.observe(*n, &[KeyValue::new("reason", *reason)]);
            }
        }),
    );
    r.u64(
        Kind::Counter,
        "realtime.ingest.late",
        "Stored events older than the newest stored then, counted in their own second",
        ingest(|s, obs| obs.observe(s.late, &[])),
    );
    r.u64(
        Kind::Counter,
        "realtime.ingest.clamped_future",
        "Stored events stamped ahead of the sidecar's clock (within the allowed skew), taken as now",
        ingest(|s, obs| obs.observe(s.clamped_future, &[])),
    );
    r.u64(
        Kind::Gauge,
        "realtime.ingest.queued",
        "Events waiting in the sidecar's apply queue",
        ingest(|s, obs| obs.observe(s.queued, &[])),
    );
}
