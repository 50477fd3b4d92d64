//! `GET /realtime/config`: what the page needs once at start-up.

use super::RouteState;
use crate::labels::Labels;
use crate::views::Scope;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;

/// Chart ranges offered by the page, in seconds.
pub const RANGES: [u32; 7] = [60, 300, 600, 1800, 3600, 10800, 21600];

#[derive(Serialize)]
pub(crate) struct ConfigResponse {
    labels: Labels,
    retention_seconds: u64,
    tick_ms: u64,
    ranges: Vec<u32>,
    default_range: u32,
    resources: Vec<Arc<str>>,
    /// The instance that answered.
    instance: Arc<str>,
    /// Cluster mode: its name, state and known instances (for the page's selector).
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterConfig>,
}

#[derive(Serialize)]
struct ClusterConfig {
    name: String,
    state: &'static str,
    live_instances: usize,
    instances: Vec<Arc<str>>,
}

pub(crate) async fn config(State(routes): State<RouteState>) -> Json<ConfigResponse> {
    let core = &*routes.core;
    let retention = core.buffer.config().retention.as_secs();
    let ranges: Vec<u32> = RANGES
        .iter()
        .copied()
        .filter(|r| *r as u64 <= retention)
        .collect();
    let default_range = if retention >= 1800 {
        1800
    } else {
        ranges.last().copied().unwrap_or(retention as u32)
    };
    core.feed_cluster();
    let (_, views) = crate::views::resource_views(core, &Scope::Default, 60, &Default::default());
    let now = core.buffer.clock().now_ms();
    let cluster = core.cluster.as_ref().map(|c| ClusterConfig {
        name: c.name.clone(),
        state: c.state_name(),
        live_instances: c.live_peers(now).len() + 1,
        instances: c.known_instances(),
    });
    Json(ConfigResponse {
        labels: core.labels.clone(),
        retention_seconds: retention,
        tick_ms: core.stream_config.tick.as_millis() as u64,
        ranges,
        default_range,
        resources: views.into_iter().map(|v| v.name).collect(),
        instance: core.instance_id.clone(),
        cluster,
    })
}
