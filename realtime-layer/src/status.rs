//! Optional authoritative pool status supplied by the app (for the utilization chart).

use serde::{Deserialize, Serialize};

/// The size and use of one resource pool, as the app knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// Resource name (matches the names in events).
    pub name: String,
    /// Units in the pool.
    pub total: u32,
    /// Units included in the contract; borrows at or above it are overage.
    pub commit: u32,
    /// Units checked out now.
    pub borrowed: u32,
}

impl ResourceStatus {
    /// Status of `name`: `total` units, `commit` of them committed, `borrowed` in use.
    pub fn new(name: impl Into<String>, total: u32, commit: u32, borrowed: u32) -> Self {
        ResourceStatus {
            name: name.into(),
            total,
            commit,
            borrowed,
        }
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
}

impl<F> StatusSource for F
where
    F: Fn() -> Vec<ResourceStatus> + Send + Sync + 'static,
{
    fn status(&self) -> Vec<ResourceStatus> {
        self()
    }
}
