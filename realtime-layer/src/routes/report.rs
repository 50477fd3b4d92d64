//! `GET /realtime/report?window=30d[&format=csv]` and `GET /realtime/advice?window=30d`: the usage
//! report and the pool-sizing advice from the usage tier (feature `usage`, an instance built with
//! `RealtimeBuilder::usage`). Both read SQLite on a blocking thread, at most a few at once.
//!
//! Without a tier they answer `404 usage_disabled`, saying how to turn it on.

#[cfg(not(feature = "usage"))]
use super::{params::Params, RouteState};
#[cfg(not(feature = "usage"))]
use crate::error::ApiError;
#[cfg(not(feature = "usage"))]
use axum::{extract::State, response::Response};

/// Window used when none is given.
#[cfg(feature = "usage")]
const DEFAULT_WINDOW: u64 = 30 * 86_400;

#[cfg(not(feature = "usage"))]
fn disabled() -> ApiError {
    ApiError::not_found(
        "usage_disabled",
        "the usage report and advisor need realtime-layer's `usage` feature and a usage tier (RealtimeBuilder::usage(path))",
    )
}

#[cfg(not(feature = "usage"))]
pub(crate) async fn report(
    State(_): State<RouteState>,
    Params(_): Params,
) -> Result<Response, ApiError> {
    Err(disabled())
}

#[cfg(not(feature = "usage"))]
pub(crate) async fn advice(
    State(_): State<RouteState>,
    Params(_): Params,
) -> Result<Response, ApiError> {
    Err(disabled())
}

#[cfg(feature = "usage")]
pub(crate) use with_tier::{advice, report};

#[cfg(feature = "usage")]
mod with_tier {
    use super::super::csv::neutralise;
    use super::super::history_tiers::usage_error;
    use super::super::params::{self, Params};
    use super::super::RouteState;
    use super::DEFAULT_WINDOW;
    use crate::error::ApiError;
    use crate::usage::{UsageReport, UsageTier};
    use axum::extract::State;
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::Json;
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn tier(routes: &RouteState) -> Result<UsageTier, ApiError> {
        routes.usage.clone().ok_or_else(|| {
            ApiError::not_found(
                "usage_disabled",
                "this instance keeps no usage tier: build it with RealtimeBuilder::usage(path)",
            )
        })
    }

    /// The window (`window`, default 30 days, at most the hourly rollups' retention); scope and
    /// instance are refused (the tier follows the default view).
    fn window(q: &params::QueryMap, usage: &UsageTier) -> Result<Duration, ApiError> {
        if q.contains_key("scope") || q.contains_key("instance") {
            return Err(ApiError::bad_request(
                "invalid_scope",
                "the usage tier follows the instance's default view (the cluster in cluster mode): drop scope and instance",
            ));
        }
        let max = usage.storage().config().hour_retention.as_secs();
        let secs = params::window_up_to(q, max, "the usage tier's retention", DEFAULT_WINDOW)?;
        Ok(Duration::from_secs(secs))
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, crate::usage::UsageError> + Send + 'static,
    ) -> Result<T, ApiError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
            .map_err(usage_error)
    }

    pub(crate) async fn report(
        State(routes): State<RouteState>,
        Params(q): Params,
    ) -> Result<Response, ApiError> {
        let usage = tier(&routes)?;
        let window = window(&q, &usage)?;
        let csv = match q.get("format").map(|f| f.trim()) {
            None | Some("json") => false,
            Some("csv") => true,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_format",
                    format!("format must be \"json\" or \"csv\", got {other:?}"),
                ))
            }
        };
        let report = blocking(move || usage.report(window)).await?;
        if !csv {
            return Ok(Json(report).into_response());
        }
        let name = format!("usage-{}.csv", params::window_text(window.as_secs()));
        let mut response = to_csv(&report).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(response)
    }

    pub(crate) async fn advice(
        State(routes): State<RouteState>,
        Params(q): Params,
    ) -> Result<Response, ApiError> {
        let usage = tier(&routes)?;
        let window = window(&q, &usage)?;
        let advice = blocking(move || usage.advice(window)).await?;
        Ok(Json(advice).into_response())
    }

    /// The fixed columns of the CSV report; one `refused_<reason>` column per reason follows.
    pub(crate) const COLUMNS: [&str; 20] = [
        "resource",
        "start",
        "end",
        "commit",
        "total",
        "peak_borrowed",
        "p95_borrowed",
        "seat_hours",
        "borrows",
        "overage_borrows",
        "returns",
        "refusals",
        "denial_rate",
        "seconds_at_commit",
        "seconds_exhausted",
        "currency",
        "overage_cost",
        "commit_cost",
        "total_cost",
        "seat_seconds",
    ];

    /// One row per resource (RFC 4180; names neutralised against spreadsheet formulas).
    pub(crate) fn to_csv(r: &UsageReport) -> String {
        let reasons: BTreeSet<&str> = r
            .resources
            .iter()
            .flat_map(|x| x.refusals_by_reason.keys().map(String::as_str))
            .collect();
        let mut w = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let header: Vec<String> = COLUMNS
            .iter()
            .map(|c| c.to_string())
            .chain(
                reasons
                    .iter()
                    .map(|r| neutralise(&format!("refused_{r}")).into_owned()),
            )
            .collect();
        let _ = w.write_record(&header);
        let opt = |v: Option<String>| v.unwrap_or_default();
        let (start, end) = (
            super::super::csv::rfc3339_ms(r.start_ms),
            super::super::csv::rfc3339_ms(r.end_ms),
        );
        for x in &r.resources {
            let mut row = vec![
                neutralise(&x.resource).into_owned(),
                start.clone(),
                end.clone(),
                opt(x.commit.map(|v| v.to_string())),
                opt(x.total.map(|v| v.to_string())),
                x.peak_borrowed.to_string(),
                x.p95_borrowed.to_string(),
                x.seat_hours.to_string(),
                x.borrows.to_string(),
                x.overage_borrows.to_string(),
                x.returns.to_string(),
                x.refusals.to_string(),
                x.denial_rate.to_string(),
                x.seconds_at_commit.to_string(),
                x.seconds_exhausted.to_string(),
                opt(x.currency.as_deref().map(|c| neutralise(c).into_owned())),
                opt(x.overage_cost.map(|v| format!("{v:.2}"))),
                opt(x.commit_cost.map(|v| format!("{v:.2}"))),
                opt(x.total_cost.map(|v| format!("{v:.2}"))),
                x.seat_seconds.to_string(),
            ];
            for reason in &reasons {
                row.push(
                    x.refusals_by_reason
                        .get(*reason)
                        .copied()
                        .unwrap_or(0)
                        .to_string(),
                );
            }
            let _ = w.write_record(&row);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}
