//! `GET /realtime/config`: what the page needs once at start-up.

use crate::handle::Realtime;
use crate::labels::Labels;
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
}

pub(crate) async fn config(State(realtime): State<Realtime>) -> Json<ConfigResponse> {
    let retention = realtime.buffer().config().retention.as_secs();
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
    let (_, views) = realtime.resource_views(60, &Default::default());
    Json(ConfigResponse {
        labels: realtime.labels().clone(),
        retention_seconds: retention,
        tick_ms: realtime.stream_config().tick.as_millis() as u64,
        ranges,
        default_range,
        resources: views.into_iter().map(|v| v.name).collect(),
    })
}
