//! Overage cost summed per currency over a view's resources (prices in different currencies are
//! never added).

use super::cost::round2;
use super::resources::ResourceView;
use serde::Serialize;
use std::collections::BTreeMap;

/// Cost figures of all priced resources in one currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CurrencyCost {
    /// The currency.
    pub currency: String,
    /// Sum of the commit prices.
    pub commit: f64,
    /// Sum of [`ResourceCost::overage_cost_now`](crate::ResourceCost::overage_cost_now).
    pub overage_now: f64,
    /// Sum of [`ResourceCost::overage_cost_in_window`](crate::ResourceCost::overage_cost_in_window).
    pub overage_in_window: f64,
}

/// Cost over a window, per currency (prices in different currencies are never added).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostSummary {
    /// The window the accrued figures cover.
    pub window_seconds: u32,
    /// One entry per currency, sorted by currency.
    pub currencies: Vec<CurrencyCost>,
}

impl CostSummary {
    /// Sums the costs of `views`; `None` when no resource has pricing.
    pub fn of(views: &[ResourceView], window_seconds: u32) -> Option<CostSummary> {
        let mut by: BTreeMap<&str, CurrencyCost> = BTreeMap::new();
        for cost in views.iter().filter_map(|v| v.cost.as_ref()) {
            let c = by
                .entry(cost.currency.as_str())
                .or_insert_with(|| CurrencyCost {
                    currency: cost.currency.clone(),
                    ..CurrencyCost::default()
                });
            c.commit += cost.commit_price;
            c.overage_now += cost.overage_cost_now;
            c.overage_in_window += cost.overage_cost_in_window;
        }
        if by.is_empty() {
            return None;
        }
        let currencies = by
            .into_values()
            .map(|c| CurrencyCost {
                commit: round2(c.commit),
                overage_now: round2(c.overage_now),
                overage_in_window: round2(c.overage_in_window),
                ..c
            })
            .collect();
        Some(CostSummary {
            window_seconds,
            currencies,
        })
    }
}
