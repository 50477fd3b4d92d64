//! Views: what a route or a frame answers from (this instance, the cluster, one instance) and the
//! per-resource answers built on it: levels and counts joined with the status source's pools,
//! rates, overage cost and time at capacity.
//!
//! Everything here reads the [`Core`](crate::core::Core) by reference and computes; nothing
//! keeps state. The stream, the routes and the exporters all answer through these functions, so
//! a number means the same everywhere.

mod capacity;
mod cost;
mod cost_summary;
mod resources;
mod scope;

pub(crate) use capacity::capacity_times;
pub use capacity::CapacityTime;
pub use cost::ResourceCost;
pub use cost_summary::{CostSummary, CurrencyCost};
pub(crate) use resources::resource_views;
pub use resources::{Rates, ResourceView};
pub(crate) use scope::{Scope, Source};
