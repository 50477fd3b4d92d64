//! Counter values to export: the lifetime totals, plus a 0 for every known series that has not
//! counted anything yet, so the first increase of a series is visible to `rate()`.

use crate::core::Core;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Names of the resources the status source lists (empty without one).
fn status_names(core: &Core) -> Vec<String> {
    core.status_source
        .as_ref()
        .map(|s| s.status().into_iter().map(|r| r.name).collect())
        .unwrap_or_default()
}

/// Per resource: (name, borrows, overage borrows, returns) since start, with zeros for the
/// status source's resources that saw no event yet.
pub(super) fn resource_totals(core: &Core) -> Vec<(Arc<str>, u64, u64, u64)> {
    let mut rows: BTreeMap<Arc<str>, (u64, u64, u64)> = core
        .buffer
        .lifetime_totals()
        .resources
        .into_iter()
        .map(|(name, b, o, r)| (name, (b, o, r)))
        .collect();
    for name in status_names(core) {
        rows.entry(Arc::from(name)).or_default();
    }
    rows.into_iter()
        .map(|(n, (b, o, r))| (n, b, o, r))
        .collect()
}

/// Per (resource, reason): failures since start, with zeros for every declared reason of every
/// known resource (the status source's and those with events).
pub(super) fn failure_totals(core: &Core, reasons: &[String]) -> Vec<(Arc<str>, Arc<str>, u64)> {
    let lifetime = core.buffer.lifetime_totals();
    let mut rows: BTreeMap<(Arc<str>, Arc<str>), u64> = lifetime
        .failures
        .into_iter()
        .map(|(res, why, n)| ((res, why), n))
        .collect();
    if !reasons.is_empty() {
        let mut names: BTreeSet<Arc<str>> = lifetime
            .resources
            .into_iter()
            .map(|(name, ..)| name)
            .collect();
        names.extend(rows.keys().map(|(res, _)| res.clone()));
        names.extend(status_names(core).into_iter().map(Arc::from));
        for name in names {
            for reason in reasons {
                rows.entry((name.clone(), Arc::from(reason.as_str())))
                    .or_insert(0);
            }
        }
    }
    rows.into_iter().map(|((r, w), n)| (r, w, n)).collect()
}

/// Per priced resource: (name, currency, overage borrows since start × overage unit price).
pub(super) fn overage_costs(core: &Core) -> Vec<(String, String, f64)> {
    let Some(source) = &core.status_source else {
        return Vec::new();
    };
    let overage: BTreeMap<Arc<str>, u64> = core
        .buffer
        .lifetime_totals()
        .resources
        .into_iter()
        .map(|(name, _, o, _)| (name, o))
        .collect();
    source
        .status()
        .into_iter()
        .filter_map(|r| {
            let pricing = r.pricing?;
            let n = overage.get(r.name.as_str()).copied().unwrap_or(0);
            Some((
                r.name,
                pricing.currency,
                n as f64 * pricing.overage_unit_price,
            ))
        })
        .collect()
}
