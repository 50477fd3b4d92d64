//! HTTP golden signals (opt-in with [`RealtimeLayer::http_metrics`](crate::RealtimeLayer::http_metrics)):
//! per route and method, requests, server errors and latency.
//!
//! Routes are axum's [`MatchedPath`] templates (`/licenses/{tool}/status`), never raw paths, so the
//! label set is bounded by the router; requests that matched no route count as `(unmatched)`, and
//! past [`MAX_ROUTES`] distinct (route, method) pairs new ones fold into `(other)`. Methods outside
//! the standard nine are `_OTHER`, as the OpenTelemetry HTTP semantic conventions say.
//!
//! Exported as the OpenTelemetry histogram `http.server.request.duration` (seconds) with
//! `http.route`, `http.request.method` and `http.response.status_code`, and kept in memory for
//! `/realtime/stats` (`http`) and the page's HTTP panel.

use axum::extract::MatchedPath;
use opentelemetry::metrics::Histogram;
use opentelemetry::KeyValue;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Most distinct (route, method) pairs kept; more fold into `(other)`.
pub const MAX_ROUTES: usize = 200;

/// Bucket bounds (seconds) of the OpenTelemetry HTTP semantic conventions for
/// `http.server.request.duration`; the in-memory latency quantiles use the same buckets.
pub const HTTP_DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

const UNMATCHED: &str = "(unmatched)";
const OTHER_ROUTE: &str = "(other)";

/// One (route, method) pair since start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteStats {
    /// The route template (`http.route`), `(unmatched)` or `(other)`.
    pub route: Arc<str>,
    /// The request method (`http.request.method`).
    pub method: &'static str,
    /// Requests answered.
    pub requests: u64,
    /// Answers with a 5xx status (server errors).
    pub server_errors: u64,
    /// Answers with a 4xx status.
    pub client_errors: u64,
    /// Mean latency, seconds.
    pub mean_seconds: f64,
    /// Latency quantiles, seconds: the upper bound of the bucket holding the quantile (an upper
    /// estimate; `null` past the last bucket, 10 s).
    pub p50_seconds: Option<f64>,
    /// See `p50_seconds`.
    pub p90_seconds: Option<f64>,
    /// See `p50_seconds`.
    pub p99_seconds: Option<f64>,
}

#[derive(Default)]
struct Counts {
    requests: u64,
    server_errors: u64,
    client_errors: u64,
    sum_seconds: f64,
    buckets: [u64; HTTP_DURATION_BUCKETS.len() + 1],
}

/// The golden signals of one instance.
pub(crate) struct HttpMetrics {
    routes: Mutex<HashMap<(Arc<str>, &'static str), Counts>>,
    histograms: Vec<Histogram<f64>>,
}

/// What a request needs carried to its response.
pub(crate) struct HttpStart {
    metrics: Arc<HttpMetrics>,
    route: Option<Arc<str>>,
    method: &'static str,
    start: Instant,
}

/// The method as the semantic conventions name it (a bounded set).
fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

impl HttpMetrics {
    pub(crate) fn new(histograms: Vec<Histogram<f64>>) -> Self {
        HttpMetrics {
            routes: Mutex::new(HashMap::new()),
            histograms,
        }
    }

    /// Notes a request's route, method and start time.
    pub(crate) fn start<B>(self: &Arc<Self>, req: &http::Request<B>) -> HttpStart {
        HttpStart {
            metrics: self.clone(),
            route: req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| Arc::from(p.as_str())),
            method: method_name(req.method()),
            start: Instant::now(),
        }
    }

    /// Every (route, method) seen, sorted by route then method.
    pub(crate) fn snapshot(&self) -> Vec<RouteStats> {
        let routes = self.routes.lock();
        let mut out: Vec<RouteStats> = routes
            .iter()
            .map(|((route, method), c)| {
                let quantile = |q: f64| {
                    let rank = ((q * c.requests as f64).ceil() as u64).max(1);
                    let mut seen = 0;
                    c.buckets
                        .iter()
                        .position(|n| {
                            seen += n;
                            seen >= rank
                        })
                        .and_then(|i| HTTP_DURATION_BUCKETS.get(i).copied())
                };
                RouteStats {
                    route: route.clone(),
                    method,
                    requests: c.requests,
                    server_errors: c.server_errors,
                    client_errors: c.client_errors,
                    mean_seconds: if c.requests == 0 {
                        0.0
                    } else {
                        c.sum_seconds / c.requests as f64
                    },
                    p50_seconds: quantile(0.5),
                    p90_seconds: quantile(0.9),
                    p99_seconds: quantile(0.99),
                }
            })
            .collect();
        out.sort_by(|a, b| a.route.cmp(&b.route).then(a.method.cmp(b.method)));
        out
    }
}

impl HttpStart {
    /// The response went out with `status`.
    pub(crate) fn finish(self, status: http::StatusCode) {
        let seconds = self.start.elapsed().as_secs_f64();
        let route = {
            let mut routes = self.metrics.routes.lock();
            let mut route = self.route.unwrap_or_else(|| Arc::from(UNMATCHED));
            if !routes.contains_key(&(route.clone(), self.method)) && routes.len() >= MAX_ROUTES {
                route = Arc::from(OTHER_ROUTE);
            }
            let c = routes.entry((route.clone(), self.method)).or_default();
            c.requests += 1;
            c.server_errors += status.is_server_error() as u64;
            c.client_errors += status.is_client_error() as u64;
            c.sum_seconds += seconds;
            let bucket = HTTP_DURATION_BUCKETS
                .iter()
                .position(|b| seconds <= *b)
                .unwrap_or(HTTP_DURATION_BUCKETS.len());
            c.buckets[bucket] += 1;
            route
        };
        if self.metrics.histograms.is_empty() {
            return;
        }
        let attributes = [
            KeyValue::new("http.route", route.to_string()),
            KeyValue::new("http.request.method", self.method),
            KeyValue::new("http.response.status_code", i64::from(status.as_u16())),
        ];
        for h in &self.metrics.histograms {
            h.record(seconds, &attributes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish(m: &Arc<HttpMetrics>, route: &str, status: u16) {
        HttpStart {
            metrics: m.clone(),
            route: Some(Arc::from(route)),
            method: "GET",
            start: Instant::now(),
        }
        .finish(http::StatusCode::from_u16(status).unwrap());
    }

    #[test]
    fn routes_past_the_cap_fold_into_other() {
        let m = Arc::new(HttpMetrics::new(Vec::new()));
        for i in 0..MAX_ROUTES + 50 {
            finish(&m, &format!("/r{i}"), 200);
        }
        finish(&m, "/r0", 503);
        let routes = m.snapshot();
        assert_eq!(routes.len(), MAX_ROUTES + 1);
        let other = routes.iter().find(|r| &*r.route == OTHER_ROUTE).unwrap();
        assert_eq!(other.requests, 50);
        let first = routes.iter().find(|r| &*r.route == "/r0").unwrap();
        assert_eq!((first.requests, first.server_errors), (2, 1));
        // Everything here takes well under 5 ms: the first bucket holds every quantile.
        assert_eq!(first.p99_seconds, Some(HTTP_DURATION_BUCKETS[0]));
    }

    #[test]
    fn methods_are_a_bounded_set() {
        assert_eq!(method_name(&http::Method::GET), "GET");
        let custom = http::Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_name(&custom), "_OTHER");
    }
}
