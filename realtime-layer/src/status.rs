//! Optional authoritative pool status supplied by the app (for the utilization chart).

use serde::{Deserialize, Serialize};

/// What a resource costs: the price of the committed block and of each overage unit.
///
/// Prices are plain numbers in `currency` (an ISO 4217 code such as `EUR`, shown on the page and
/// exported as the `currency` attribute); realtime-layer only multiplies and adds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// Price of the committed quantity (per contract period, as the app bills it).
    pub commit_price: f64,
    /// Charge for each borrow above commit.
    pub overage_unit_price: f64,
    /// Currency of both prices, e.g. `EUR`.
    pub currency: String,
}

impl Pricing {
    /// `commit_price` for the commitment and `overage_unit_price` per overage borrow, in
    /// `currency`.
    pub fn new(currency: impl Into<String>, commit_price: f64, overage_unit_price: f64) -> Self {
        Pricing {
            commit_price,
            overage_unit_price,
            currency: currency.into(),
        }
    }
}

/// The size and use of one resource pool, as the app knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// Resource name (matches the names in events).
    pub name: String,
    /// Units in the pool.
    pub total: u32,
    /// Units included in the contract; borrows at or above it are overage.
    pub commit: u32,
    /// Units checked out now.
    pub borrowed: u32,
    /// Most units lent above `commit` (`None`: up to `total`). The advisor's "today's
    /// capacity" is `min(total, commit + max_overage)` (see [`ResourceStatus::with_max_overage`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_overage: Option<u32>,
    /// What the resource costs, when the app knows (see [`ResourceStatus::with_pricing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
}

impl ResourceStatus {
    /// Status of `name`: `total` units, `commit` of them committed, `borrowed` in use.
    pub fn new(name: impl Into<String>, total: u32, commit: u32, borrowed: u32) -> Self {
        ResourceStatus {
            name: name.into(),
            total,
            commit,
            borrowed,
            max_overage: None,
            pricing: None,
        }
    }

    /// The same status with an overage ceiling: at most `max_overage` units above commit (a
    /// contract's cap; borrows past `commit + max_overage` are refused even below `total`). Used
    /// by the usage advisor for today's capacity.
    ///
    /// ```
    /// use realtime_layer::ResourceStatus;
    ///
    /// let s = ResourceStatus::new("IDE", 15, 10, 0).with_max_overage(3);
    /// assert_eq!(s.max_overage, Some(3));
    /// ```
    pub fn with_max_overage(mut self, max_overage: u32) -> Self {
        self.max_overage = Some(max_overage);
        self
    }

    /// The same status with prices: the page then shows overage cost, `/realtime/stats` carries
    /// it and `/metrics` exports `realtime_overage_cost_total`.
    ///
    /// ```
    /// use realtime_layer::{Pricing, ResourceStatus};
    ///
    /// let s = ResourceStatus::new("GPU A100", 8, 4, 5).with_pricing(Pricing::new("EUR", 4000.0, 250.0));
    /// assert_eq!(s.pricing.unwrap().overage_unit_price, 250.0);
    /// ```
    pub fn with_pricing(mut self, pricing: Pricing) -> Self {
        self.pricing = Some(pricing);
        self
    }
}

/// Supplies [`ResourceStatus`] for every resource. Called off the request path (once per stream
/// tick and per stats request), so it must be cheap and must not block: read in-memory counters,
/// not a database.
///
/// Any `Fn() -> Vec<ResourceStatus>` closure is a status source:
///
/// ```
/// use realtime_layer::{ResourceStatus, StatusSource};
///
/// let source = || vec![ResourceStatus::new("GPU A100", 8, 4, 5)];
/// assert_eq!(source.status()[0].borrowed, 5);
/// ```
pub trait StatusSource: Send + Sync + 'static {
    /// Current status of every resource.
    fn status(&self) -> Vec<ResourceStatus>;

    /// Whether [`status`](Self::status) lists every resource the app has (default `true`):
    /// resources with events but no row are then left out of the views, so failures for unknown
    /// names do not invent pools. A source that may lack rows, such as statuses pushed by
    /// another process that expire when not refreshed, returns `false`: such resources are shown
    /// with unknown totals instead.
    fn lists_every_resource(&self) -> bool {
        true
    }
}

impl<F> StatusSource for F
where
    F: Fn() -> Vec<ResourceStatus> + Send + Sync + 'static,
{
    fn status(&self) -> Vec<ResourceStatus> {
        self()
    }
}
