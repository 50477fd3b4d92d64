//! Time at capacity: the "do we need more?" answer. Per resource over a window, the seconds
//! spent at or above commit (every further borrow is overage) and at or above the pool size
//! (exhausted: further borrows are refused), with the refusals of the window by reason.

use super::resources::ResourceView;
use crate::buffer::{Denials, EventBuffer, EventFilter};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One resource's time at capacity over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityTime {
    /// Resource name.
    pub resource: Arc<str>,
    /// Committed quantity (from the status source; `None` without one).
    pub commit: Option<u32>,
    /// Pool size (from the status source).
    pub total: Option<u32>,
    /// Seconds of the window in which borrowed reached `commit` (at least 1 unit): in overage
    /// territory. `None` without a status source.
    pub seconds_at_commit: Option<u64>,
    /// Seconds of the window in which borrowed reached `total`: exhausted.
    pub seconds_exhausted: Option<u64>,
    /// `seconds_exhausted` as a share of the window, 0..=1.
    pub exhausted_share: Option<f64>,
    /// Refused borrows in the window by reason.
    pub denials: BTreeMap<Arc<str>, u64>,
}

/// Time at capacity of every resource in `views` (and of resources with refusals but no view),
/// most time exhausted first, then most time at commit, then by name.
pub(crate) fn capacity_times(
    buffer: &EventBuffer,
    views: &[ResourceView],
    window_secs: u32,
    filter: &EventFilter,
) -> Vec<CapacityTime> {
    // A commit (or pool) of 0 would count every second; count only seconds with use.
    let questions: Vec<(&str, u32)> = views
        .iter()
        .flat_map(|v| [(&*v.name, v.commit), (&*v.name, v.total)])
        .filter_map(|(name, level)| level.map(|l| (name, l.max(1))))
        .collect();
    let mut answers = buffer
        .seconds_at_or_above(window_secs, &questions)
        .into_iter();
    let mut denials: BTreeMap<Arc<str>, BTreeMap<Arc<str>, u64>> = buffer
        .denials(window_secs, filter)
        .into_iter()
        .map(
            |Denials {
                 resource,
                 by_reason,
             }| (resource, by_reason),
        )
        .collect();
    let mut out: Vec<CapacityTime> = views
        .iter()
        .map(|v| {
            // The answers come in question order: commit, then total, of each view that has them.
            let at_commit = v.commit.and_then(|_| answers.next());
            let exhausted = v.total.and_then(|_| answers.next());
            CapacityTime {
                resource: v.name.clone(),
                commit: v.commit,
                total: v.total,
                seconds_at_commit: at_commit,
                seconds_exhausted: exhausted,
                exhausted_share: exhausted
                    .map(|s| (s as f64 / window_secs.max(1) as f64 * 1e4).round() / 1e4),
                denials: denials.remove(&v.name).unwrap_or_default(),
            }
        })
        .collect();
    out.extend(
        denials
            .into_iter()
            .map(|(resource, by_reason)| CapacityTime {
                resource,
                commit: None,
                total: None,
                seconds_at_commit: None,
                seconds_exhausted: None,
                exhausted_share: None,
                denials: by_reason,
            }),
    );
    out.sort_by(|a, b| {
        b.seconds_exhausted
            .cmp(&a.seconds_exhausted)
            .then(b.seconds_at_commit.cmp(&a.seconds_at_commit))
            .then(a.resource.cmp(&b.resource))
    });
    out
}
