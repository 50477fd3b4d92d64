//! What the facade and the writer thread share: the catalogue, the live counters mirrored from
//! SQLite, the job channel and the expiry listener, plus the poison-tolerant lock helpers.

use super::jobs::Job;
use super::live::{Live, ToolCounters};
use super::replays::ReplayMemory;
use super::types::{Expired, ToolStatus};
use crate::config::ToolSpec;
use realtime_layer::Clock;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

pub(super) type ExpiryListener = Arc<dyn Fn(&[Expired]) + Send + Sync>;

/// Where expiries go: kept until a listener is set, then handed to it after each commit.
pub(super) enum ExpirySink {
    Pending(Vec<Expired>),
    Listener(ExpiryListener),
}

/// What every clone of a [`LicensePool`](super::LicensePool) and the writer thread share.
pub(super) struct Shared {
    pub(super) tools: Vec<ToolSpec>,
    pub(super) index: HashMap<String, usize>,
    pub(super) live: Live,
    pub(super) sender: RwLock<Option<mpsc::Sender<Job>>>,
    pub(super) writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    pub(super) lease_ttl_ms: Option<u64>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) expiries: std::sync::Mutex<ExpirySink>,
    /// Read-only connections for the lists (a database file only).
    pub(super) reader: Option<Arc<super::reader::Reader>>,
    /// The replay memory's bookkeeping (rows, prunes, accepted repeats).
    pub(super) replays: ReplayMemory,
}

pub(super) fn tool_status(spec: &ToolSpec, c: &ToolCounters) -> ToolStatus {
    let overage = c.borrowed.saturating_sub(spec.commit);
    ToolStatus {
        tool: spec.name.clone(),
        total: spec.total,
        borrowed: c.borrowed,
        available: spec.total.saturating_sub(c.borrowed),
        commit: spec.commit,
        max_overage: spec.max_overage,
        overage,
        in_commit: c.borrowed <= spec.commit,
        commit_price: spec.commit_price,
        overage_price_per_license: spec.overage_price_per_license,
        current_overage_cost: c.overage_charged,
        total_cost: spec.commit_price + c.overage_charged,
        overage_borrows: c.overage_borrows,
    }
}

// Poisoning only happens if a thread panicked while holding the lock; the data (plain counters)
// is still meaningful, so keep serving instead of cascading the panic.
pub(super) fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
pub(super) fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
pub(super) fn lock_mutex<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
