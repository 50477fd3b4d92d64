//! What overage costs: per resource from its [`Pricing`], and summed per currency.

use crate::snapshot::ResourceView;
use crate::status::Pricing;
use serde::Serialize;
use std::collections::BTreeMap;

/// One resource's cost figures (only for resources with [`Pricing`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceCost {
    /// Currency of every figure.
    pub currency: String,
    /// Price of the committed quantity.
    pub commit_price: f64,
    /// Charge per overage borrow.
    pub overage_unit_price: f64,
    /// What the units above commit out right now cost (`overage × overage_unit_price`).
    pub overage_cost_now: f64,
    /// What the overage borrows of the window cost (`overage_borrows × overage_unit_price`).
    pub overage_cost_in_window: f64,
    /// Commitment plus the window's overage.
    pub total_in_window: f64,
}

impl ResourceCost {
    /// Cost of `overage_now` units out above commit and `overage_borrows` overage borrows.
    pub fn new(pricing: &Pricing, overage_now: u32, overage_borrows: u64) -> Self {
        let in_window = round2(overage_borrows as f64 * pricing.overage_unit_price);
        ResourceCost {
            currency: pricing.currency.clone(),
            commit_price: pricing.commit_price,
            overage_unit_price: pricing.overage_unit_price,
            overage_cost_now: round2(overage_now as f64 * pricing.overage_unit_price),
            overage_cost_in_window: in_window,
            total_in_window: round2(pricing.commit_price + in_window),
        }
    }
}

/// Cost figures of all priced resources in one currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CurrencyCost {
    /// The currency.
    pub currency: String,
    /// Sum of the commit prices.
    pub commit: f64,
    /// Sum of [`ResourceCost::overage_cost_now`].
    pub overage_now: f64,
    /// Sum of [`ResourceCost::overage_cost_in_window`].
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

/// Money to the cent (sums of many products otherwise show float noise).
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
