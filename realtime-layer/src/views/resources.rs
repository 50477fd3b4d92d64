//! Views shared by the stats route and the stream: rates and per-resource status.

use super::cost::ResourceCost;
use super::scope::Scope;
use crate::buffer::{EventFilter, ResourceActivity, Totals};
use crate::core::Core;
use crate::status::Pricing;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Rates over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    /// The window the rates are computed over.
    pub window_seconds: u32,
    /// Borrows per minute.
    pub borrows_per_min: f64,
    /// Returns per minute.
    pub returns_per_min: f64,
    /// Failures per minute.
    pub failures_per_min: f64,
    /// Share of borrows that were overage, in percent (0 without borrows).
    pub overage_percent: f64,
    /// Failures per borrow attempt (failures / (borrows + failures)), 0..=1.
    pub denial_rate: f64,
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

impl Rates {
    /// Rates of `totals` counted over `window_seconds`.
    ///
    /// ```
    /// use realtime_layer::{Rates, Totals};
    ///
    /// let t = Totals { borrows: 30, overage_borrows: 6, returns: 15, failures: 10 };
    /// let r = Rates::from_totals(&t, 60);
    /// assert_eq!((r.borrows_per_min, r.overage_percent, r.denial_rate), (30.0, 20.0, 0.25));
    /// ```
    pub fn from_totals(totals: &Totals, window_seconds: u32) -> Rates {
        let per_min = 60.0 / window_seconds.max(1) as f64;
        let attempts = totals.borrows + totals.failures;
        Rates {
            window_seconds,
            borrows_per_min: round(totals.borrows as f64 * per_min, 4),
            returns_per_min: round(totals.returns as f64 * per_min, 4),
            failures_per_min: round(totals.failures as f64 * per_min, 4),
            overage_percent: if totals.borrows == 0 {
                0.0
            } else {
                round(
                    100.0 * totals.overage_borrows as f64 / totals.borrows as f64,
                    2,
                )
            },
            denial_rate: if attempts == 0 {
                0.0
            } else {
                round(totals.failures as f64 / attempts as f64, 4)
            },
        }
    }
}

/// One resource as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceView {
    /// Resource name.
    pub name: Arc<str>,
    /// Pool size (from the status source; `None` without one).
    pub total: Option<u32>,
    /// Committed quantity (from the status source).
    pub commit: Option<u32>,
    /// Checked out now.
    pub borrowed: u32,
    /// Borrowed above commit.
    pub overage: u32,
    /// Borrowed within commit.
    pub in_commit: u32,
    /// `total - borrowed`.
    pub available: Option<u32>,
    /// High-water mark of `borrowed` over the window.
    pub peak_borrowed: u32,
    /// Counts within the window.
    #[serde(flatten)]
    pub totals: Totals,
    /// Prices, from the status source (absent without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// Overage cost now and over the window (only with `pricing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<ResourceCost>,
}

/// Per-resource status in `scope`'s view: its status rows (if any) joined with its buffer's
/// levels, peaks and counts.
pub(crate) fn resource_views(
    core: &Core,
    scope: &Scope,
    window_secs: u32,
    filter: &EventFilter,
) -> (Totals, Vec<ResourceView>) {
    let buffer = scope.buffer(core);
    let filter = scope.filter(core, filter);
    let status = scope.status(core);
    if let Some(status) = &status {
        if scope.syncs_levels(core) {
            // The app's counts are authoritative: fold them into the levels (and so into peaks).
            buffer.sync_levels(status.iter().map(|s| (s.name.as_str(), s.borrowed)));
        }
    }
    let summary = buffer.summarize(window_secs, &filter);
    let mut activity: HashMap<Arc<str>, _> = summary
        .resources
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    if status.is_none() {
        if let Some(id) = &filter.instance {
            // One instance without a status source: its level is what its held events imply.
            for (name, level) in buffer.instance_levels(id) {
                if let Some(a) = activity.get_mut(&name) {
                    a.borrowed = level;
                    a.peak_borrowed = a.peak_borrowed.max(level);
                }
            }
        }
    }
    let mut views = Vec::new();
    match status {
        Some(status) => {
            for s in status {
                if filter
                    .resource
                    .as_deref()
                    .is_some_and(|only| only != s.name)
                {
                    continue;
                }
                let a = activity.remove(s.name.as_str());
                let borrowed = s.borrowed;
                let overage = borrowed.saturating_sub(s.commit);
                let totals = a.as_ref().map(|a| a.totals).unwrap_or_default();
                let cost = s
                    .pricing
                    .as_ref()
                    .map(|p| ResourceCost::new(p, overage, totals.overage_borrows));
                views.push(ResourceView {
                    name: a
                        .as_ref()
                        .map_or_else(|| Arc::from(s.name.as_str()), |a| a.name.clone()),
                    total: Some(s.total),
                    commit: Some(s.commit),
                    borrowed,
                    overage,
                    in_commit: borrowed - overage,
                    available: Some(s.total.saturating_sub(borrowed)),
                    peak_borrowed: a.map_or(borrowed, |a| a.peak_borrowed.max(borrowed)),
                    totals,
                    pricing: s.pricing,
                    cost,
                });
            }
            let partial = core
                .status_source
                .as_ref()
                .is_some_and(|s| !s.lists_every_resource());
            if partial {
                // Resources without a (fresh) row: shown with unknown totals.
                views.extend(activity.into_values().map(unknown_pool));
            }
        }
        None => views.extend(activity.into_values().map(unknown_pool)),
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    (summary.totals, views)
}

/// A resource known from its events only: pool size, commit and prices unknown.
fn unknown_pool(a: ResourceActivity) -> ResourceView {
    ResourceView {
        name: a.name,
        total: None,
        commit: None,
        borrowed: a.borrowed,
        overage: 0,
        in_commit: a.borrowed,
        available: None,
        peak_borrowed: a.peak_borrowed,
        totals: a.totals,
        pricing: None,
        cost: None,
    }
}
