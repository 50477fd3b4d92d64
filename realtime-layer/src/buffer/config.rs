//! The buffer's limits: [`BufferConfig`], its defaults, and the validation that keeps every limit
//! within what the compact storage can index ([`ConfigError`] otherwise).
//!
//! Separate because it is plain data, checked once when a buffer is built: nothing here touches
//! events, and the rest of the crate (builder, metrics) needs only this part.

use super::ring;
use std::time::Duration;

/// Limits of an [`EventBuffer`](super::EventBuffer). The defaults keep six hours, at most 100,000 borrows, 100,000
/// returns and 10,000 failures, 10,000 distinct users and 1,000 distinct resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferConfig {
    /// How long events are kept.
    pub retention: Duration,
    /// Most borrows kept (oldest dropped first).
    pub max_borrows: usize,
    /// Most returns kept.
    pub max_returns: usize,
    /// Most failures kept.
    pub max_failures: usize,
    /// Distinct user names before new ones fold into `(other)` (at most 65,534).
    pub max_users: usize,
    /// Distinct resource names before new ones fold into `(other)` (at most 4,094).
    pub max_resources: usize,
    /// Distinct failure reasons before new ones fold into `(other)` (at most 65,534).
    pub max_reasons: usize,
    /// Most per-second aggregate entries (one per resource active in a second, 10 bytes each;
    /// at least 65,536). Past it the oldest seconds go before their retention ends, so memory
    /// stays bounded even with many resources busy every second; `aggregates_dropped_seconds`
    /// in the stats counts them. The default, 3,000,000 (~30 MB), holds 6 h of 138 resources
    /// active every single second.
    pub max_second_entries: usize,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            retention: Duration::from_secs(6 * 3600),
            max_borrows: 100_000,
            max_returns: 100_000,
            max_failures: 10_000,
            max_users: 10_000,
            max_resources: 1_000,
            max_reasons: 256,
            max_second_entries: 3_000_000,
        }
    }
}

/// A configuration value out of its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid realtime configuration: {0}")]
pub struct ConfigError(pub String);

impl BufferConfig {
    /// Checks the limits that the compact storage imposes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let secs = self.retention.as_secs();
        if !(1..=7 * 24 * 3600).contains(&secs) {
            return Err(ConfigError(format!(
                "retention must be between 1 second and 7 days, got {secs} s"
            )));
        }
        if self.max_users == 0 || self.max_users > u16::MAX as usize - 1 {
            return Err(ConfigError(format!(
                "max_users must be in 1..=65534, got {}",
                self.max_users
            )));
        }
        if self.max_resources == 0 || self.max_resources > ring::MAX_RESOURCES - 1 {
            return Err(ConfigError(format!(
                "max_resources must be in 1..=4094, got {}",
                self.max_resources
            )));
        }
        if self.max_reasons == 0 || self.max_reasons > u16::MAX as usize - 1 {
            return Err(ConfigError(format!(
                "max_reasons must be in 1..=65534, got {}",
                self.max_reasons
            )));
        }
        if self.max_second_entries < 65_536 {
            return Err(ConfigError(format!(
                "max_second_entries must be at least 65536, got {}",
                self.max_second_entries
            )));
        }
        Ok(())
    }
}
