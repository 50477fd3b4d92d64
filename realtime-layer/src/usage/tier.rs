//! [`UsageTier`]: an instance's usage tier. A thread of its own (SQLite writes are blocking I/O)
//! reads the live buffer through a cursor every flush interval, off the request path, and feeds
//! a [`UsageRecorder`]: events at their recorded times, the status source's sizes and prices, and
//! the buffer's levels (which the status source corrects) as level corrections. Minutes close a
//! grace period after they end; a graceful shutdown writes the open minute too.
//!
//! In cluster mode the tier reads the cluster view's buffer, so its minutes follow the view:
//! every instance's events, levels merged, peaks of the merged level.

use super::accumulate::Step;
use super::recorder::UsageRecorder;
use super::{AdviceReport, UsageError, UsageReport, UsageStore};
use crate::buffer::{Cursor, EventBuffer};
use crate::core::Core;
use crate::event::EventKind;
use crate::status::ResourceStatus;
use crate::views::Scope;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long after its end a minute closes (events of other instances arrive a little late).
const GRACE_MS: u64 = 2_000;
/// Events per read of the buffer.
const BATCH: usize = 16_384;

struct Feed {
    recorder: UsageRecorder,
    cursor: Cursor,
    /// Buffer resource index → tier id.
    resources: Vec<u16>,
    /// Buffer reason index → tier reason id.
    reasons: Vec<u32>,
}

struct Shared {
    store: UsageStore,
    core: Weak<Core>,
    /// `None` once closed.
    feed: Mutex<Option<Feed>>,
    stop: Mutex<bool>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    lost: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The usage tier of an instance built with [`RealtimeBuilder::usage`](crate::RealtimeBuilder::usage)
/// (feature `usage`): [`Realtime::usage`](crate::Realtime::usage) hands it out. Cheap to clone.
#[derive(Clone)]
pub struct UsageTier {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for UsageTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageTier")
            .field("store", &self.shared.store)
            .finish_non_exhaustive()
    }
}

/// The buffer the tier follows: the cluster view's when cluster mode is on.
fn source(core: &Core) -> &EventBuffer {
    match core.cluster.as_deref() {
        Some(cluster) => &cluster.buffer,
        None => &core.buffer,
    }
}

impl UsageTier {
    /// Starts the tier of `core` on `store`: a recorder from now, and its thread.
    pub(crate) fn start(core: &Arc<Core>, store: UsageStore) -> Result<UsageTier, UsageError> {
        let now = source(core).clock().now_ms();
        let recorder = UsageRecorder::new(&store, now)?;
        let interval = store.config().flush_interval;
        let shared = Arc::new(Shared {
            store,
            core: Arc::downgrade(core),
            feed: Mutex::new(Some(Feed {
                recorder,
                cursor: Cursor::default(),
                resources: Vec::new(),
                reasons: Vec::new(),
            })),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            thread: Mutex::new(None),
            lost: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let runner = shared.clone();
        let handle = std::thread::Builder::new()
            .name("realtime-usage".into())
            .spawn(move || run(&runner, interval))
            .map_err(|e| UsageError::Config(format!("cannot start the usage thread: {e}")))?;
        *shared.thread.lock() = Some(handle);
        Ok(UsageTier { shared })
    }

    /// The store it writes.
    pub fn storage(&self) -> &UsageStore {
        &self.shared.store
    }

    /// Reads the live buffer now and closes the minutes that are due (the thread does this every
    /// flush interval; tests and tools call it to not wait).
    pub fn flush(&self) -> Result<(), UsageError> {
        let core = self.shared.core.upgrade().ok_or(UsageError::Closed)?;
        pass(&self.shared, &core)
    }

    /// Stops the thread after a last read and writes the open minute (its rest counted at the
    /// levels of now), so a graceful shutdown loses nothing. The store stays readable.
    pub fn close(&self) -> Result<(), UsageError> {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        let handle = self.shared.thread.lock().take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        finish(&self.shared)
    }

    /// Events that left the live buffer (its caps) before the tier read them, since start.
    pub fn lost_events(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }

    /// The newest write error, if the last pass failed (the tier retries every interval).
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().clone()
    }

    /// Today's pools (the view's status rows; empty without a status source).
    pub(crate) fn status(&self) -> Vec<ResourceStatus> {
        self.shared
            .core
            .upgrade()
            .and_then(|core| Scope::Default.status(&core))
            .unwrap_or_default()
    }

    /// The usage report of the last `window` (whole minutes, up to the newest closed one).
    pub fn report(&self, window: Duration) -> Result<UsageReport, UsageError> {
        let (start, end) = self.shared.store.window(window.as_secs())?;
        self.shared.store.report(start, end, &self.status())
    }

    /// The advice over the last `window`, under today's pools and prices.
    pub fn advice(&self, window: Duration) -> Result<AdviceReport, UsageError> {
        let (start, end) = self.shared.store.window(window.as_secs())?;
        self.shared.store.advice(start, end, &self.status())
    }
}

fn run(shared: &Arc<Shared>, interval: Duration) {
    loop {
        {
            let mut stop = shared.stop.lock();
            if !*stop {
                shared.wake.wait_for(&mut stop, interval);
            }
            if *stop {
                return;
            }
        }
        let Some(core) = shared.core.upgrade() else {
            let _ = finish(shared);
            return;
        };
        let result = pass(shared, &core);
        *shared.last_error.lock() = result.err().map(|e| e.to_string());
        if core.shutdown.is_cancelled() {
            drop(core);
            let _ = finish(shared);
            return;
        }
    }
}

/// One read of the buffer: status, events, level corrections, minutes due.
fn pass(shared: &Shared, core: &Core) -> Result<(), UsageError> {
    core.feed_cluster();
    let buffer = source(core);
    let now = buffer.clock().now_ms();
    let (rows, sync) = match core.cluster.as_deref() {
        Some(cluster) => (
            cluster.status_rows(core.own_status(), now),
            cluster.healthy(),
        ),
        None => (core.own_status(), true),
    };
    if let (Some(rows), true) = (&rows, sync) {
        // The app's counts are authoritative (as for every view): the levels the tier follows.
        buffer.sync_levels(rows.iter().map(|s| (s.name.as_str(), s.borrowed)));
    }
    let mut guard = shared.feed.lock();
    let feed = guard.as_mut().ok_or(UsageError::Closed)?;
    if let Some(rows) = &rows {
        feed.recorder.set_status(rows);
    }
    loop {
        let batch = buffer.feed_batch(feed.cursor, BATCH, feed.resources.len(), feed.reasons.len());
        shared.lost.fetch_add(batch.lost, Ordering::Relaxed);
        for name in &batch.new_resources {
            let id = feed.recorder.resource_id(name);
            feed.resources.push(id);
        }
        for name in &batch.new_reasons {
            let id = feed.recorder.reason_id(name);
            feed.reasons.push(id);
        }
        for e in &batch.events {
            let id = feed.resources[e.resource as usize];
            let step = match e.kind {
                EventKind::Borrow => Step::Borrow { overage: e.overage },
                EventKind::Return => Step::Return,
                EventKind::Failure => Step::Refusal {
                    reason: feed.reasons[e.reason as usize],
                },
            };
            feed.recorder.apply(e.ts_ms, id, step)?;
        }
        feed.cursor = batch.cursor;
        if batch.complete {
            let at = batch.now_ms.saturating_sub(GRACE_MS);
            for (index, &level) in batch.levels.iter().enumerate() {
                let id = feed.resources[index];
                // Several buffer names may share the tier's `(other)`: no correction there.
                if index != 0 && feed.recorder.level(id) != level {
                    feed.recorder.apply(at, id, Step::Level(level))?;
                }
            }
            break;
        }
    }
    feed.recorder.advance(now.saturating_sub(GRACE_MS))?;
    Ok(())
}

/// A last pass (when the instance is still there) and the open minute written; then closed.
fn finish(shared: &Shared) -> Result<(), UsageError> {
    if let Some(core) = shared.core.upgrade() {
        let _ = pass(shared, &core);
    }
    let mut guard = shared.feed.lock();
    match guard.take() {
        Some(mut feed) => feed.recorder.close_open_minute(),
        None => Ok(()),
    }
}
