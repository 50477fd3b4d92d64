//! The apply queue: decoded batches wait here for one task that stores them, one buffer lock
//! per batch. Handlers count the events they queue (`IngestCounters::queued`) and refuse new
//! batches over the high-water mark (503), so the queue is bounded; a queued batch is always
//! applied, even when its sender has gone, so nothing accepted is lost.

use crate::buffer::{TimedEvent, TimedOutcome};
use crate::core::{Core, IngestCounters};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot};

/// One batch and where its outcome goes.
pub(crate) struct Job {
    pub(crate) events: Vec<TimedEvent>,
    pub(crate) done: oneshot::Sender<TimedOutcome>,
}

/// Starts the apply task of `core`; it ends when every sender of the queue is dropped.
pub(crate) fn spawn(core: Weak<Core>, counters: Arc<IngestCounters>) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let n = job.events.len() as u64;
            let outcome = match core.upgrade() {
                Some(core) => {
                    let outcome = core.buffer.record_timed(&job.events);
                    core.activity.signal();
                    outcome
                }
                None => TimedOutcome::default(),
            };
            IngestCounters::add(&counters.stored, outcome.stored);
            IngestCounters::add(&counters.duplicates, outcome.duplicates);
            IngestCounters::add(&counters.late, outcome.late);
            counters.reject(crate::core::Rejection::TooOld, outcome.expired);
            counters.queued.fetch_sub(n, Ordering::Relaxed);
            // The sender may have gone: the events are stored all the same.
            let _ = job.done.send(outcome);
            // Let the handlers and the stream run between large batches.
            tokio::task::yield_now().await;
        }
    });
    tx
}
