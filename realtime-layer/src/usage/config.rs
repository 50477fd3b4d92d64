//! [`UsageConfig`]: where the usage tier lives, how long it keeps each tier, the billing period
//! that prices are quoted for, and how often the live buffer is read.

use std::path::PathBuf;
use std::time::Duration;

const DAY: u64 = 24 * 3600;

/// Settings of the usage tier (feature `usage`).
///
/// ```
/// use realtime_layer::UsageConfig;
/// use std::time::Duration;
///
/// let config = UsageConfig::new("usage.db")
///     .minute_retention(Duration::from_secs(7 * 24 * 3600))
///     .hour_retention(Duration::from_secs(90 * 24 * 3600));
/// assert!(config.validate().is_ok());
/// assert!(UsageConfig::new("u.db").minute_retention(Duration::from_secs(60)).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageConfig {
    /// The SQLite file (created when missing; `-wal` and `-shm` files sit beside it).
    pub path: PathBuf,
    /// How long per-minute records are kept (default 30 days; 1 hour to 400 days).
    pub minute_retention: Duration,
    /// How long hourly and daily rollups are kept (default 400 days; at least the minute
    /// retention, at most 3,660 days).
    pub hour_retention: Duration,
    /// The period commit prices are quoted for (default 30 days): a window's commit cost is the
    /// commit price × window / period.
    pub billing_period: Duration,
    /// How often the tier reads the live buffer and closes minutes (default 1 s).
    pub flush_interval: Duration,
}

impl UsageConfig {
    /// The defaults, stored at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UsageConfig {
            path: path.into(),
            minute_retention: Duration::from_secs(30 * DAY),
            hour_retention: Duration::from_secs(400 * DAY),
            billing_period: Duration::from_secs(30 * DAY),
            flush_interval: Duration::from_secs(1),
        }
    }

    /// How long per-minute records are kept.
    pub fn minute_retention(mut self, d: Duration) -> Self {
        self.minute_retention = d;
        self
    }

    /// How long hourly and daily rollups are kept.
    pub fn hour_retention(mut self, d: Duration) -> Self {
        self.hour_retention = d;
        self
    }

    /// The period commit prices are quoted for.
    pub fn billing_period(mut self, d: Duration) -> Self {
        self.billing_period = d;
        self
    }

    /// How often the tier reads the live buffer.
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d;
        self
    }

    /// Checks the ranges above.
    pub fn validate(&self) -> Result<(), String> {
        let minutes = self.minute_retention.as_secs();
        if !(3600..=400 * DAY).contains(&minutes) {
            return Err(format!(
                "usage minute retention must be between 1 hour and 400 days, got {minutes} s"
            ));
        }
        let hours = self.hour_retention.as_secs();
        if hours < minutes || hours > 3660 * DAY {
            return Err(format!(
                "usage hour retention must be between the minute retention ({minutes} s) and 3660 days, got {hours} s"
            ));
        }
        let period = self.billing_period.as_secs();
        if !(3600..=3660 * DAY).contains(&period) {
            return Err(format!(
                "usage billing period must be between 1 hour and 3660 days, got {period} s"
            ));
        }
        if self.flush_interval.is_zero() || self.flush_interval > Duration::from_secs(30) {
            return Err("usage flush interval must be above zero and at most 30 s".into());
        }
        if self.path.as_os_str().is_empty() {
            return Err("usage path must not be empty".into());
        }
        Ok(())
    }

    /// Minutes kept.
    pub(crate) fn minutes_kept(&self) -> u64 {
        self.minute_retention.as_secs() / 60
    }

    /// Hours kept (days: this / 24).
    pub(crate) fn hours_kept(&self) -> u64 {
        self.hour_retention.as_secs() / 3600
    }
}
