//! What overage costs, per resource, from its [`Pricing`] (sums per currency: `cost_summary.rs`).

use crate::status::Pricing;
use serde::Serialize;

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

/// Money to the cent (sums of many products otherwise show float noise).
pub(super) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
