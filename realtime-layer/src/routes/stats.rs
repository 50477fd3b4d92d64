//! `GET /realtime/stats?window=SECONDS`: buffer facts, rates, per-resource status, recent events.

use super::params::{self, Params};
use super::RouteState;
use crate::buffer::{BufferStats, EventBuffer, EventRecord, HoldSummary, MemoryBreakdown};
use crate::core::ClusterInfo;
use crate::core::Core;
use crate::error::ApiError;
use crate::views::CapacityTime;
use crate::views::CostSummary;
use crate::views::{Rates, ResourceView};
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;

/// Most recent events listed in a stats answer.
pub const RECENT_EVENTS_LIMIT: usize = 100;

/// This instance's buffer memory by part (see [`MemoryBreakdown`]) and its cluster view's.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InstanceMemory {
    /// The local buffer, by part.
    #[serde(flatten)]
    pub local: MemoryBreakdown,
    /// The local buffer's total.
    pub local_total: u64,
    /// The cluster view's buffer, all-in (cluster mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_buffer: Option<u64>,
}

/// The stats answer (see `docs/PROTOCOL.md`).
#[derive(Debug, Serialize)]
pub struct StatsResponse {
    /// When it was computed (Unix ms).
    pub generated_at_ms: u64,
    /// The instance that answered.
    pub instance: Arc<str>,
    /// The view answered from: `local`, `cluster` or `instance` (`?instance=ID`).
    pub scope: &'static str,
    /// Cluster mode's state, instances (last-seen age, replication lag) and counters; absent
    /// without cluster mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    /// The window rates and counts cover.
    pub window_seconds: u32,
    /// Events held, all kinds.
    pub total_events: u64,
    /// Borrows held.
    pub borrow_count: u64,
    /// Returns held.
    pub return_count: u64,
    /// Failures held.
    pub failure_count: u64,
    /// Retention in hours.
    pub retention_hours: f64,
    /// Oldest event held (Unix ms), any kind.
    pub oldest_event_ms: Option<u64>,
    /// Events whose names were folded into `(other)`.
    pub folded_names: u64,
    /// Of which user names.
    pub folded_users: u64,
    /// Of which resource names.
    pub folded_resources: u64,
    /// Heap bytes held by the buffer answering (the cluster view's in cluster mode).
    pub memory_bytes: u64,
    /// This instance's memory for the live view: its own buffer by part, and the cluster view's
    /// buffer in cluster mode.
    pub memory: InstanceMemory,
    /// Seconds of aggregates dropped early by the entry cap (non-zero: long windows undercount).
    pub aggregates_dropped_seconds: u64,
    /// Live streams cut since start because their client stopped reading (write timeout).
    pub slow_stream_disconnects: u64,
    /// Rates over the window.
    pub rates: Rates,
    /// Per-resource status.
    pub resources: Vec<ResourceView>,
    /// Hold times per resource over the window (borrows matched to returns by borrow id).
    pub hold_times: HoldSummary,
    /// Time at capacity per resource over the window, most time exhausted first.
    pub capacity: Vec<CapacityTime>,
    /// Overage cost per currency (absent when no resource has pricing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostSummary>,
    /// HTTP golden signals per route and method since start (only with
    /// [`RealtimeLayer::http_metrics`](crate::RealtimeLayer::http_metrics); absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<crate::core::RouteStats>,
    /// Refused requests since start per route, reason and status, most first (only with
    /// [`Realtime::refusal_layer`](crate::Realtime::refusal_layer); absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusals: Option<Vec<crate::core::RefusalCount>>,
    /// The app's own counters by name ([`RealtimeBuilder::counter`](crate::RealtimeBuilder::counter);
    /// absent when there are none).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub counters: std::collections::BTreeMap<String, u64>,
    /// What the sidecar's ingest endpoints did since start (absent without ingest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest: Option<crate::core::IngestStats>,
    /// Newest events in the window, newest first (at most 100).
    pub recent_events: Vec<EventRecord>,
}

pub(crate) async fn stats(
    State(routes): State<RouteState>,
    Params(q): Params,
) -> Result<Json<StatsResponse>, ApiError> {
    let core = &*routes.core;
    let window = params::window(&q, core, 60)?;
    let scope = params::scope(&q, core)?;
    let filter = params::filter(&q, core, &scope)?;
    let (totals, resources) = crate::views::resource_views(core, &scope, window, &filter);
    let buffer = scope.buffer(core);
    let stats = buffer.stats();
    let scoped = scope.filter(core, &filter);
    let recent_events = buffer.recent_events(window, RECENT_EVENTS_LIMIT, &scoped);
    let now = buffer.clock().now_ms();
    let capacity = crate::views::capacity_times(buffer, &resources, window, &scoped);
    Ok(Json(StatsResponse {
        generated_at_ms: now,
        instance: core.instance_id.clone(),
        scope: scope.name(core),
        cluster: core.cluster.as_ref().map(|c| c.info(now)),
        window_seconds: window,
        total_events: stats.total_events,
        borrow_count: stats.borrow_count,
        return_count: stats.return_count,
        failure_count: stats.failure_count,
        retention_hours: stats.retention_ms as f64 / 3_600_000.0,
        oldest_event_ms: stats.oldest_event_ms,
        folded_names: stats.folded_names,
        folded_users: stats.folded_users,
        folded_resources: stats.folded_resources,
        memory_bytes: stats.memory_bytes,
        memory: instance_memory(core, buffer, &stats),
        aggregates_dropped_seconds: stats.aggregates_dropped_seconds,
        slow_stream_disconnects: core.slow_stream_disconnects(),
        rates: Rates::from_totals(&totals, window),
        hold_times: buffer.hold_times(window, &scoped),
        capacity,
        cost: CostSummary::of(&resources, window),
        http: core.http.snapshot(),
        refusals: core.refusals.snapshot(),
        counters: crate::core::read_counters(&core.counters),
        ingest: core.ingest.as_ref().map(|i| i.snapshot()),
        resources,
        recent_events,
    }))
}

/// The local buffer's parts and the cluster buffer's total; the stats of `answered` (the buffer
/// that answered, whose stats are `stats`) are not taken twice.
fn instance_memory(core: &Core, answered: &EventBuffer, stats: &BufferStats) -> InstanceMemory {
    let of = |buffer: &EventBuffer| {
        if std::ptr::eq(buffer, answered) {
            stats.clone()
        } else {
            buffer.stats()
        }
    };
    let local = of(&core.buffer).memory;
    InstanceMemory {
        local,
        local_total: local.total(),
        cluster_buffer: core.cluster.as_ref().map(|c| of(&c.buffer).memory_bytes),
    }
}
