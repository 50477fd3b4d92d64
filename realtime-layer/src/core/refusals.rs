//! Refused requests (401, 403, 409, 413, 415, 421, 422, 429) counted by route and reason, fed by
//! the refusal layer ([`Realtime::refusal_layer`](crate::Realtime::refusal_layer)).
//!
//! Labels stay bounded: routes are axum's [`MatchedPath`](axum::extract::MatchedPath) templates
//! (`(unmatched)` without one), reasons are the app's short codes ([`Refusal`](crate::Refusal);
//! `http_<status>` without one; anything that is not a short code counts as `(invalid)`), and
//! past [`MAX_REFUSAL_SERIES`] distinct (route, reason, status) triples new ones fold into
//! `(other)`. Exported as the OpenTelemetry counter `realtime.refusals` and listed under
//! `refusals` in `/realtime/stats`.

use http::StatusCode;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The statuses counted as refusals: the server understood the request and declined it.
pub const REFUSAL_STATUSES: [u16; 8] = [401, 403, 409, 413, 415, 421, 422, 429];

/// Most distinct (route, reason, status) triples kept; more fold into `(other)`.
pub const MAX_REFUSAL_SERIES: usize = 200;

/// Longest reason code kept as it is.
const MAX_REASON_BYTES: usize = 64;

const UNMATCHED: &str = "(unmatched)";
const OTHER: &str = "(other)";
const INVALID: &str = "(invalid)";

/// Refusals of one (route, reason, status) since start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalCount {
    /// The route template (`http.route`), `(unmatched)` or `(other)`.
    pub route: Arc<str>,
    /// The reason code, `http_<status>`, `(invalid)` or `(other)`.
    pub reason: Arc<str>,
    /// The answer's status.
    pub status: u16,
    /// Requests refused so.
    pub count: u64,
}

/// A series: route, reason, status.
type SeriesKey = (Arc<str>, Arc<str>, u16);

/// The refusal counters of one instance.
#[derive(Default)]
pub(crate) struct Refusals {
    /// Set once a refusal layer exists: `/realtime/stats` lists refusals (an empty list means
    /// "none yet", not "not measured").
    enabled: AtomicBool,
    series: Mutex<HashMap<SeriesKey, u64>>,
}

/// Whether `status` is a refusal.
pub(crate) fn is_refusal(status: StatusCode) -> bool {
    REFUSAL_STATUSES.contains(&status.as_u16())
}

/// `reason` when it is a short code (`[A-Za-z0-9_.-]`, at most 64 bytes), else `(invalid)`.
fn bounded_reason(reason: &str) -> &str {
    let code = !reason.is_empty()
        && reason.len() <= MAX_REASON_BYTES
        && reason
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if code {
        reason
    } else {
        INVALID
    }
}

impl Refusals {
    /// A layer feeds these counters from now on.
    pub(crate) fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Counts one refused answer (`status` must be a refusal status).
    pub(crate) fn count(&self, route: Option<&str>, reason: Option<&str>, status: StatusCode) {
        let fallback;
        let reason = match reason {
            Some(r) => bounded_reason(r),
            None => {
                fallback = format!("http_{}", status.as_u16());
                &fallback
            }
        };
        let route = route.unwrap_or(UNMATCHED);
        let status = status.as_u16();
        let mut series = self.series.lock();
        let mut key = (Arc::from(route), Arc::from(reason), status);
        if !series.contains_key(&key) && series.len() >= MAX_REFUSAL_SERIES {
            key = (Arc::from(OTHER), Arc::from(OTHER), status);
        }
        *series.entry(key).or_default() += 1;
    }

    /// Every triple counted, most refusals first (`None` when no refusal layer exists).
    pub(crate) fn snapshot(&self) -> Option<Vec<RefusalCount>> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let mut out: Vec<RefusalCount> = self
            .series
            .lock()
            .iter()
            .map(|((route, reason, status), count)| RefusalCount {
                route: route.clone(),
                reason: reason.clone(),
                status: *status,
                count: *count,
            })
            .collect();
        out.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.route.cmp(&b.route))
                .then_with(|| a.reason.cmp(&b.reason))
                .then(a.status.cmp(&b.status))
        });
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        let r = Refusals::default();
        assert!(r.snapshot().is_none(), "not measured before a layer exists");
        r.enable();
        let conflict = StatusCode::CONFLICT;
        r.count(Some("/borrow"), Some("exhausted"), conflict);
        r.count(Some("/borrow"), Some("exhausted"), conflict);
        r.count(None, None, StatusCode::UNAUTHORIZED);
        r.count(Some("/borrow"), Some("bad reason <script>"), conflict);
        r.count(Some("/borrow"), Some(&"x".repeat(65)), conflict);
        for i in 0..MAX_REFUSAL_SERIES + 10 {
            r.count(Some(&format!("/r{i}")), Some("nope"), StatusCode::FORBIDDEN);
        }
        let all = r.snapshot().unwrap();
        assert_eq!(all.len(), MAX_REFUSAL_SERIES + 1);
        let find = |route: &str, reason: &str| {
            all.iter()
                .find(|c| &*c.route == route && &*c.reason == reason)
                .map(|c| c.count)
        };
        assert_eq!(find("/borrow", "exhausted"), Some(2));
        assert_eq!(find(UNMATCHED, "http_401"), Some(1));
        assert_eq!(find("/borrow", INVALID), Some(2));
        // 3 triples came first; the rest of the cap went to /rN, the overflow to (other).
        assert_eq!(find(OTHER, OTHER), Some(13));
        assert!(is_refusal(conflict) && !is_refusal(StatusCode::NOT_FOUND));
    }
}
