//! The usage report: per resource over a window, what was used, refused and paid.

use super::money::{div_round, to_cents, units};
use super::query::Merged;
use super::record::{LevelHist, Usage};
use super::UsageConfig;
use crate::status::ResourceStatus;
use serde::Serialize;
use std::collections::BTreeMap;

/// A resource's usage over a window (see [`UsageReport`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceUsage {
    /// Resource name.
    pub resource: String,
    /// Today's commit and pool size (from the status source; absent without one).
    pub commit: Option<u32>,
    /// Today's pool size.
    pub total: Option<u32>,
    /// Highest borrowed level of the window.
    pub peak_borrowed: u32,
    /// Time-weighted 95th percentile of the borrowed level: the level the pool was at or below
    /// for 95 % of the window.
    pub p95_borrowed: u32,
    /// The integral of the borrowed level over the window, in seat-seconds (exact to the ms).
    pub seat_seconds: f64,
    /// The same in seat-hours (3 decimals).
    pub seat_hours: f64,
    /// Successful borrows.
    pub borrows: u64,
    /// Borrows the app marked as overage.
    pub overage_borrows: u64,
    /// Returns.
    pub returns: u64,
    /// Refused borrows, all reasons.
    pub refusals: u64,
    /// Refused borrows by reason.
    pub refusals_by_reason: BTreeMap<String, u64>,
    /// refusals / (borrows + refusals), 0..=1 (4 decimals).
    pub denial_rate: f64,
    /// Seconds at or above the commit in effect (at least one unit out).
    pub seconds_at_commit: f64,
    /// Seconds at or above the pool size in effect: exhausted.
    pub seconds_exhausted: f64,
    /// Currency of the money fields (absent without prices).
    pub currency: Option<String>,
    /// What the window's overage borrows cost, at the prices in effect when each minute closed.
    pub overage_cost: Option<f64>,
    /// Today's commit price for the window: commit price × window / billing period.
    pub commit_cost: Option<f64>,
    /// Commit cost plus overage cost.
    pub total_cost: Option<f64>,
}

/// Money of one currency over the report's resources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrencyTotal {
    /// The currency.
    pub currency: String,
    /// Sum of the commit costs.
    pub commit_cost: f64,
    /// Sum of the overage costs.
    pub overage_cost: f64,
    /// Sum of the totals.
    pub total_cost: f64,
}

/// The usage report of a window (`GET /realtime/report`, [`UsageStore::report`](super::UsageStore::report)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    /// Start of the window (Unix ms, a minute boundary).
    pub start_ms: u64,
    /// End of the window, exclusive: the end of the newest closed minute.
    pub end_ms: u64,
    /// `end_ms - start_ms` in seconds.
    pub window_seconds: u64,
    /// The period commit prices are quoted for, in seconds.
    pub billing_period_seconds: u64,
    /// Per resource, sorted by name: every resource with usage in the window and every resource
    /// the status source lists.
    pub resources: Vec<ResourceUsage>,
    /// Money per currency (prices in different currencies are never added).
    pub costs: Vec<CurrencyTotal>,
}

/// Smallest level at or below which the pool spent at least `pct` % of the histogram's time.
pub(crate) fn time_percentile(hist: &LevelHist, pct: u64) -> u32 {
    let total = u128::from(hist.total_ms());
    let mut cum = 0u128;
    for (i, c) in hist.cells.iter().enumerate() {
        cum += u128::from(c.ms);
        if cum * 100 >= total * u128::from(pct) {
            return hist.base + i as u32;
        }
    }
    hist.top().unwrap_or(0)
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

/// Usage of every resource in `m` and every row of `status` (the latter with zeros when idle).
pub(crate) fn rows<'a>(
    m: &'a Merged,
    status: &'a [ResourceStatus],
) -> Vec<(String, Usage, Option<&'a ResourceStatus>)> {
    let window = m.end_ms - m.start_ms;
    let mut by_name: BTreeMap<String, (Usage, Option<&ResourceStatus>)> = BTreeMap::new();
    for (id, u) in &m.usage {
        if *id == 0 {
            continue;
        }
        let name = m
            .resources
            .get(&u32::from(*id))
            .cloned()
            .unwrap_or_else(|| format!("#{id}"));
        by_name.insert(name, (u.clone(), None));
    }
    for row in status {
        let entry = by_name.entry(row.name.clone()).or_insert_with(|| {
            let mut idle = Usage::default();
            idle.fill_to(window);
            (idle, None)
        });
        entry.1 = Some(row);
    }
    by_name.into_iter().map(|(n, (u, s))| (n, u, s)).collect()
}

pub(crate) fn build(m: &Merged, status: &[ResourceStatus], config: &UsageConfig) -> UsageReport {
    let window_ms = m.end_ms - m.start_ms;
    let period_ms = config.billing_period.as_millis() as u64;
    let mut costs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut resources = Vec::new();
    for (name, u, row) in rows(m, status) {
        let refusals = u.refusals();
        let attempts = u.borrows + refusals;
        let pricing = row.and_then(|r| r.pricing.as_ref());
        let money = pricing.map(|p| {
            let commit = div_round(
                u128::from(to_cents(p.commit_price)) * u128::from(window_ms),
                u128::from(period_ms),
            );
            let entry = costs.entry(p.currency.clone()).or_default();
            entry.0 += commit;
            entry.1 += u.overage_cents;
            (p.currency.clone(), commit, u.overage_cents)
        });
        let level_ms = u.hist.level_ms();
        resources.push(ResourceUsage {
            resource: name,
            commit: row.map(|r| r.commit),
            total: row.map(|r| r.total),
            peak_borrowed: u.peak,
            p95_borrowed: time_percentile(&u.hist, 95),
            seat_seconds: level_ms as f64 / 1000.0,
            seat_hours: round(level_ms as f64 / 3_600_000.0, 3),
            borrows: u.borrows,
            overage_borrows: u.overage,
            returns: u.returns,
            refusals,
            refusals_by_reason: u
                .failures
                .iter()
                .map(|(r, n)| {
                    let reason = m.reasons.get(r).cloned().unwrap_or_else(|| format!("#{r}"));
                    (reason, *n)
                })
                .collect(),
            denial_rate: if attempts == 0 {
                0.0
            } else {
                round(refusals as f64 / attempts as f64, 4)
            },
            seconds_at_commit: u.at_commit_ms as f64 / 1000.0,
            seconds_exhausted: u.exhausted_ms as f64 / 1000.0,
            currency: money.as_ref().map(|(c, _, _)| c.clone()),
            overage_cost: money.as_ref().map(|(_, _, o)| units(*o)),
            commit_cost: money.as_ref().map(|(_, c, _)| units(*c)),
            total_cost: money.as_ref().map(|(_, c, o)| units(c + o)),
        });
    }
    UsageReport {
        start_ms: m.start_ms,
        end_ms: m.end_ms,
        window_seconds: window_ms / 1000,
        billing_period_seconds: period_ms / 1000,
        resources,
        costs: costs
            .into_iter()
            .map(|(currency, (commit, overage))| CurrencyTotal {
                currency,
                commit_cost: units(commit),
                overage_cost: units(overage),
                total_cost: units(commit + overage),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_weigh_time() {
        let mut h = LevelHist::default();
        h.cell(0).ms = 90;
        h.cell(1).ms = 5;
        h.cell(4).ms = 5;
        assert_eq!(time_percentile(&h, 90), 0);
        assert_eq!(time_percentile(&h, 95), 1);
        assert_eq!(time_percentile(&h, 96), 4);
        assert_eq!(time_percentile(&LevelHist::default(), 95), 0);
    }
}
