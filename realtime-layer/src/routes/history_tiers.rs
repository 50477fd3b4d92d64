//! `/realtime/history` beyond the live buffer (feature `usage`): buckets of whole minutes (or
//! whole hours, for windows of more than 15 days) from the usage tier up to its newest closed
//! minute, the seam, and the live buffer's seconds after it. The tier's minutes and the buffer's
//! seconds count the same events, so a bucket across the seam counts each once.

use super::history::{seconds_history, HistoryResponse, MAX_BUCKETS};
use super::RouteState;
use crate::error::ApiError;
use crate::usage::{Tier, UsageError, UsageTier, HOUR_MS};
use crate::views::Scope;
use axum::http::StatusCode;

/// The longest window the tier answers: what its hourly rollups keep.
pub(super) fn retention(usage: &UsageTier) -> u64 {
    usage.storage().config().hour_retention.as_secs()
}

/// Buckets for a window: whole minutes up to an hour, whole hours beyond.
pub(super) fn bucket_for(window_s: u64) -> u64 {
    let b = window_s.div_ceil(MAX_BUCKETS).max(60);
    if b <= 3600 {
        b.div_ceil(60) * 60
    } else {
        b.div_ceil(3600) * 3600
    }
}

pub(super) fn usage_error(e: UsageError) -> ApiError {
    match e {
        UsageError::Busy => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "usage_busy", e.to_string())
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "usage_unavailable",
            other.to_string(),
        ),
    }
}

pub(super) async fn route(
    routes: RouteState,
    usage: UsageTier,
    scope: Scope,
    window: u64,
    resource: Option<String>,
) -> Result<HistoryResponse, ApiError> {
    if scope != Scope::Default {
        return Err(ApiError::bad_request(
            "invalid_scope",
            "windows beyond the live buffer come from the usage tier, which follows the default view: drop scope and instance",
        ));
    }
    tokio::task::spawn_blocking(move || {
        let core = &*routes.core;
        let end = core.buffer.clock().now_ms() / 1000;
        build(core, &usage, window, end, resource.as_deref())
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
    .map_err(usage_error)
}

/// The answer for `window` seconds before `end` (Unix s).
pub(super) fn build(
    core: &crate::core::Core,
    usage: &UsageTier,
    window: u64,
    end: u64,
    resource: Option<&str>,
) -> Result<HistoryResponse, UsageError> {
    let bucket = bucket_for(window);
    let seam = usage
        .storage()
        .closed_until_ms()?
        .map_or(0, |ms| ms / 1000)
        .min(end);
    let mut out = seconds_history(core, &Scope::Default, window, bucket, end, resource, seam);
    let max_tier = if bucket.is_multiple_of(3600) {
        Tier::Hour
    } else {
        Tier::Minute
    };
    out.max_period_seconds = if max_tier == Tier::Hour { 3600 } else { 60 };
    out.seam = Some(seam);
    if seam > out.start {
        let records = usage
            .storage()
            .series(out.start * 1000, seam * 1000, resource, max_tier)?;
        for (start_ms, period_ms, u) in records {
            let i = ((start_ms / 1000).saturating_sub(out.start) / bucket) as usize;
            if i >= out.t.len() {
                continue;
            }
            debug_assert!(period_ms <= HOUR_MS);
            out.borrows.add_at(i, u.borrows);
            out.overage_borrows.add_at(i, u.overage);
            out.returns.add_at(i, u.returns);
            out.failures.add_at(i, u.refusals());
            let peak = &mut out.peak_borrowed.max[i];
            *peak = (*peak).max(u.peak);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_whole_minutes_or_hours() {
        assert_eq!(bucket_for(86_400), 240);
        assert_eq!(bucket_for(7 * 86_400), 1680);
        assert_eq!(bucket_for(30 * 86_400), 7200);
        assert_eq!(bucket_for(8 * 3600), 120);
        assert_eq!(bucket_for(400 * 86_400), 97_200);
    }
}
