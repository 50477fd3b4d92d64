//! `GET /realtime/config`: what the page needs once at start-up.

use super::RouteState;
use crate::labels::Labels;
use crate::views::Scope;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;

/// Chart ranges offered by the page, in seconds: those within the history's reach are listed
/// (the live buffer's retention, or the usage tier's when there is one: 24 h, 7 d, 30 d).
pub const RANGES: [u32; 10] = [
    60, 300, 600, 1800, 3600, 10800, 21600, 86400, 604_800, 2_592_000,
];

#[derive(Serialize)]
pub(crate) struct ConfigResponse {
    labels: Labels,
    retention_seconds: u64,
    /// The live buffer's retention: stats and CSV windows stop there.
    live_retention_seconds: u64,
    tick_ms: u64,
    ranges: Vec<u32>,
    default_range: u32,
    resources: Vec<Arc<str>>,
    /// The instance that answered.
    instance: Arc<str>,
    /// Cluster mode: its name, state and known instances (for the page's selector).
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterConfig>,
    /// The usage tier (absent without one): the page then shows the report and the advisor.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageInfo>,
}

#[derive(Serialize)]
struct UsageInfo {
    /// How far back per-minute records go, and hourly rollups.
    minute_retention_seconds: u64,
    hour_retention_seconds: u64,
    /// The period commit prices are quoted for.
    billing_period_seconds: u64,
    /// Report and advice windows the page offers.
    report_windows: Vec<u64>,
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
    let live = core.buffer.config().retention.as_secs();
    #[cfg(feature = "usage")]
    let usage = routes.usage.as_ref().map(|u| {
        let c = u.storage().config();
        UsageInfo {
            minute_retention_seconds: c.minute_retention.as_secs(),
            hour_retention_seconds: c.hour_retention.as_secs(),
            billing_period_seconds: c.billing_period.as_secs(),
            report_windows: [86_400, 604_800, 2_592_000]
                .into_iter()
                .filter(|w| *w <= c.hour_retention.as_secs())
                .collect(),
        }
    });
    #[cfg(not(feature = "usage"))]
    let usage: Option<UsageInfo> = None;
    // History reaches as far as the usage tier keeps hours, or the live buffer.
    let retention = usage
        .as_ref()
        .map_or(live, |u| u.hour_retention_seconds.max(live));
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
        live_retention_seconds: live,
        tick_ms: core.stream_config.tick.as_millis() as u64,
        ranges,
        default_range,
        resources: views.into_iter().map(|v| v.name).collect(),
        instance: core.instance_id.clone(),
        cluster,
        usage,
    })
}
