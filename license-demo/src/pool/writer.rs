//! The writer thread: the only SQLite connection, draining the job queue in batches (group
//! commit), sweeping expired leases, and publishing counters and answers after `COMMIT`.

use super::jobs::{Done, Job};
use super::lists::{list_charges, list_open};
use super::live::WriterMark;
use super::replays::{admit, Admission, ReplayDelta};
use super::state::{lock_mutex, ExpirySink, Shared};
use super::transactions::{borrow_in_tx, expire_in_tx, heartbeat_in_tx, return_in_tx};
use super::types::{BorrowOutcome, Expired, Owned, PoolError};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::mpsc;
use std::time::Duration;

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// Longest pause between two lease sweeps (shorter TTLs sweep every quarter TTL).
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The writer thread: batches of queued jobs (and lease sweeps), one transaction each.
pub(super) fn writer_loop(
    mut conn: Connection,
    mut mark: WriterMark,
    receiver: mpsc::Receiver<Job>,
    shared: &Shared,
) {
    let sweep_every = shared.lease_ttl_ms.map(|ttl| {
        Duration::from_millis(ttl / 4).clamp(Duration::from_millis(10), MAX_SWEEP_INTERVAL)
    });
    let mut next_sweep_ms = 0u64;
    // Ends when every sender is gone (pool closed or dropped) and the queue is drained.
    loop {
        let first = match sweep_every {
            None => match receiver.recv() {
                Ok(job) => Some(job),
                Err(_) => break,
            },
            Some(every) => match receiver.recv_timeout(every) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut batch = Vec::with_capacity(16);
        batch.extend(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let now = shared.clock.now_ms();
        let sweep = sweep_every.is_some() && now >= next_sweep_ms;
        if let Some(every) = sweep_every.filter(|_| sweep) {
            next_sweep_ms = now + every.as_millis() as u64;
        }
        if sweep || !batch.is_empty() {
            run_batch(&mut conn, &mut mark, batch, shared, sweep);
        }
    }
}

fn run_batch(
    conn: &mut Connection,
    writer_mark: &mut WriterMark,
    batch: Vec<Job>,
    shared: &Shared,
    sweep: bool,
) {
    let mut done = Vec::with_capacity(batch.len());
    let mut expired = Vec::new();
    // Per-tool changes, applied to the shared counters only after COMMIT succeeds.
    let mut delta: Vec<(usize, i64, u64, f64)> = Vec::new();
    let mut replays = ReplayDelta::default();
    let changes_before = conn.total_changes();
    let outcome = (|| -> Result<_, PoolError> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Whether other processes committed since the counters were last settled.
        let mark = shared.live.mark_batch(&tx, writer_mark);
        // Expire first, so a borrow in this batch can take a license that just came back.
        let swept = if sweep {
            expire_in_tx(&tx, shared, &mut expired, &mut delta)
        } else {
            Ok(())
        };
        for job in batch {
            done.push(run_job(
                &tx,
                job,
                shared,
                &mut delta,
                &mut expired,
                &mut replays,
            ));
        }
        let failed = swept
            .err()
            .or_else(|| done.iter().find_map(Done::error).cloned());
        if let Some(e) = failed {
            // Roll back the whole batch so no caller is told "ok" about an undone write.
            tx.rollback()?;
            return Err(e);
        }
        tx.commit()?;
        Ok(mark)
    })();
    let mark = match outcome {
        Ok(mark) => mark,
        Err(e) => {
            tracing::error!(error = %e, jobs = done.len(), "license batch rolled back");
            for d in done {
                d.fail_writes(e.clone());
            }
            return;
        }
    };
    shared.replays.apply(&replays);
    let wrote = conn.total_changes() != changes_before;
    shared
        .live
        .settle(conn, mark, writer_mark, &delta, wrote, &shared.index);
    if !expired.is_empty() {
        tracing::debug!(count = expired.len(), "leases expired");
        let mut sink = lock_mutex(&shared.expiries);
        match &mut *sink {
            ExpirySink::Pending(pending) => pending.append(&mut expired),
            ExpirySink::Listener(listener) => listener(&expired),
        }
    }
    for d in done {
        d.send();
    }
}

fn run_job(
    tx: &rusqlite::Transaction<'_>,
    job: Job,
    shared: &Shared,
    delta: &mut Vec<(usize, i64, u64, f64)>,
    expired: &mut Vec<Expired>,
    replays: &mut ReplayDelta,
) -> Done {
    let now_ms = shared.clock.now_ms();
    match job {
        Job::Borrow {
            tool,
            user,
            options,
            reply,
        } => {
            let spec = &shared.tools[tool];
            // A signed borrow's replay key is checked and remembered first, in this transaction.
            let r = admit(tx, &shared.replays, &options, now_ms, replays).and_then(|a| match a {
                Admission::Go => {
                    borrow_in_tx(tx, spec, &user, &options, now_ms, shared.lease_ttl_ms)
                }
                Admission::Refuse(outcome) => Ok(outcome),
            });
            if let Ok(BorrowOutcome::Granted(b)) = &r {
                let (n, amount) = if b.overage {
                    (1, spec.overage_price_per_license)
                } else {
                    (0, 0.0)
                };
                delta.push((tool, 1, n, amount));
            }
            Done::Borrow(reply, r.map_err(PoolError::from))
        }
        Job::Return { id, owner, reply } => {
            let r = return_in_tx(tx, &id, &owner, None);
            if let Ok(Owned::Done(ret)) = &r {
                if let Some(&i) = shared.index.get(&ret.tool) {
                    delta.push((i, -1, 0, 0.0));
                }
            }
            Done::Return(reply, r.map_err(PoolError::from))
        }
        Job::Heartbeat { id, owner, reply } => Done::Heartbeat(
            reply,
            heartbeat_in_tx(tx, &id, &owner, now_ms, shared.lease_ttl_ms).map_err(PoolError::from),
        ),
        Job::Sweep { reply } => {
            // Counts the batch's own sweep too (it may have run just before this job).
            let r = expire_in_tx(tx, shared, expired, delta).map(|()| expired.len());
            Done::Sweep(reply, r)
        }
        Job::OpenBorrows { filter, reply } => {
            Done::OpenBorrows(reply, list_open(tx, &filter).map_err(PoolError::from))
        }
        Job::Charges { query, reply } => {
            Done::Charges(reply, list_charges(tx, &query).map_err(PoolError::from))
        }
    }
}
