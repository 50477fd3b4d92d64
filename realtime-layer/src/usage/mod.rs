//! The usage tier (feature `usage`): thirty days of per-minute usage beside the six-hour live
//! buffer, persisted in SQLite, with the usage report and the pool-sizing advisor on top.
//!
//! Per resource and minute it keeps borrows, overage borrows, returns, refusals by reason, the
//! lowest, highest and last borrowed level, the time at or above commit and exhausted, the
//! overage cost, and the **level histogram**: per borrowed level, the milliseconds spent there,
//! the borrows that started there and the refusals that found it. Seat-seconds, time-weighted
//! percentiles and the advisor's counterfactuals (what any commit or pool size would have cost
//! and refused) are sums over that histogram, so they are exact for any window of whole minutes.
//! Hours and days are rolled up as they end (kept 400 days by default), so a 30-day question
//! reads a few hundred rows whatever the traffic.
//!
//! ```no_run
//! use realtime_layer::Realtime;
//! use std::time::Duration;
//!
//! let realtime = Realtime::builder().usage("usage.db").build().unwrap();
//! let usage = realtime.usage().expect("built with a usage path");
//! let report = usage.report(Duration::from_secs(30 * 24 * 3600)).unwrap();
//! for r in &report.resources {
//!     println!("{}: peak {}, {} seat-hours", r.resource, r.peak_borrowed, r.seat_hours);
//! }
//! ```
//!
//! Files, bottom up: `record.rs` (what a period holds), `codec.rs` (its bytes), `accumulate.rs`
//! (events into the open minute), `money.rs`, `config.rs`, `store.rs` (the SQLite file),
//! `query.rs` (windows into rows), `reader.rs` ([`UsageStore`]), `report.rs`, `advice.rs`,
//! `recorder.rs` ([`UsageRecorder`]), `tier.rs` ([`UsageTier`]: the instance's thread).

mod accumulate;
mod advice;
mod codec;
mod config;
mod money;
mod query;
mod reader;
mod record;
mod recorder;
mod report;
mod store;
mod tier;

pub use advice::{AdviceReport, CommitLevel, ResourceAdvice, MAX_LEVELS, MODEL};
pub use config::UsageConfig;
pub use reader::UsageStore;
pub use recorder::{RecorderStats, UsageRecorder};
pub use report::{CurrencyTotal, ResourceUsage, UsageReport};
pub use tier::UsageTier;

pub(crate) use record::HOUR_MS;
pub(crate) use store::Tier;

/// Why the usage tier could not answer or write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// SQLite refused (the file is unreadable, read-only, full, locked past the timeout...).
    #[error("usage store {path}: {detail}")]
    Store {
        /// The file.
        path: String,
        /// SQLite's message.
        detail: String,
    },
    /// The file was written by another format of this crate.
    #[error("usage store {path} has format {found}; this version reads format {expected}")]
    Format {
        /// The file.
        path: String,
        /// Its format.
        found: u64,
        /// This version's.
        expected: u64,
    },
    /// A stored row does not decode (a damaged file).
    #[error("usage store {path}: a stored record does not decode (damaged file?)")]
    Corrupt {
        /// The file.
        path: String,
    },
    /// Every read connection stayed busy past the wait (too many long questions at once).
    #[error("the usage store is busy: too many reports at once, try again")]
    Busy,
    /// A setting is out of range.
    #[error("invalid usage configuration: {0}")]
    Config(String),
    /// The tier was closed (or its instance dropped): it answers but writes no more.
    #[error("the usage tier is closed")]
    Closed,
}
