//! The live counters (borrowed, overage charges per tool) and how they follow the database when
//! other processes write to it too.
//!
//! # Why and how
//! The counters answer `GET /licenses/status` and the realtime status source without a query.
//! The writer thread moves them by its own batches' deltas after each `COMMIT`. Another process
//! on the same database file commits behind our back; SQLite's `PRAGMA data_version` tells a
//! connection exactly that: its value changes when *another* connection has committed since the
//! last call, never for the connection's own commits. Two connections use it:
//!
//! - a small read connection (`reader`) checked by every status read: when its `data_version`
//!   equals the one recorded when the counters were last known exact (`seen`), they are still
//!   exact; otherwise the counts are re-read in one query and `seen` moves;
//! - the writer's own connection, whose `data_version` only moves for foreign commits: read
//!   inside each batch transaction and again after `COMMIT`, it tells the writer whether its
//!   deltas apply to exact counters, or whether it must re-read them instead.
//!
//! The reader's `data_version` also moves for this process's own commits, so after each commit
//! the writer records the reader's new value as `seen` (under the same lock as the counters): a
//! process alone on its database never re-reads, each status read costs one `PRAGMA`.
//!
//! Ordering rules that keep the counters exact (every re-read is a fresh snapshot taken after the
//! version it is recorded with, so at worst a commit is counted and then re-read once more):
//! - `seen` is only ever set together with counters that include everything up to it;
//! - a status read that re-reads may include a batch the writer has committed but not applied
//!   yet; it bumps `rereads`, and a writer that sees `rereads` moved during its batch re-reads
//!   instead of applying its delta (never both).
//!
//! An in-memory database has no other connection: nothing is checked.

use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Longest a status read waits for a lock on the database (readers of a WAL database almost
/// never wait; past this the last counters are answered and the next read tries again).
const READER_BUSY_TIMEOUT: Duration = Duration::from_millis(50);

/// Live counters for one tool, mirrored from SQLite.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ToolCounters {
    pub(super) borrowed: u32,
    pub(super) overage_borrows: u64,
    pub(super) overage_charged: f64,
}

/// Poisoning only happens if a thread panicked while holding the lock; plain counters and a
/// connection are still usable.
fn lock_mutex<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Per-tool open borrows, overage charges and their sum: one query, one snapshot.
const COUNTS_SQL: &str = "
SELECT tool, SUM(n), SUM(c), SUM(a) FROM (
    SELECT tool, COUNT(*) AS n, 0 AS c, 0.0 AS a FROM open_borrows GROUP BY tool
    UNION ALL
    SELECT tool, 0, charges, amount FROM overage_totals
) GROUP BY tool";

/// Reads every tool's counters from the database in one query (tools not in `index` are
/// skipped; tools without rows are 0).
pub(super) fn read_counts(
    conn: &Connection,
    index: &HashMap<String, usize>,
) -> rusqlite::Result<Vec<ToolCounters>> {
    let mut counters = vec![ToolCounters::default(); index.len()];
    let mut stmt = conn.prepare_cached(COUNTS_SQL)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let tool: String = row.get(0)?;
        let Some(&i) = index.get(&tool) else {
            continue;
        };
        let borrowed: i64 = row.get(1)?;
        let charges: i64 = row.get(2)?;
        counters[i] = ToolCounters {
            borrowed: u32::try_from(borrowed).unwrap_or(u32::MAX),
            overage_borrows: u64::try_from(charges).unwrap_or(0),
            overage_charged: row.get(3)?,
        };
    }
    Ok(counters)
}

/// `PRAGMA data_version` of `conn`: changes when another connection committed since the last
/// call.
pub(super) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))
}

/// The counters and the connection that checks them, behind one lock.
struct Inner {
    counters: Vec<ToolCounters>,
    /// `None` for an in-memory database, or once the pool is closed.
    reader: Option<Connection>,
    /// The reader's `data_version` when `counters` were last known exact; `None`: re-read.
    seen: Option<i64>,
}

/// The live counters, kept equal to the database's truth.
pub(super) struct Live {
    inner: Mutex<Inner>,
    /// Whether other connections can write (a file database).
    watching: bool,
    /// Re-reads by status reads so far (see the module doc).
    rereads: AtomicU64,
    /// Re-reads by anyone (status reads and the writer): how often another process's commit
    /// had to be caught up with.
    resyncs: AtomicU64,
}

/// What the writer noted in its batch transaction, to settle the counters after `COMMIT`.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchMark {
    /// `Live::rereads` when the batch began.
    rereads: u64,
    /// The writer connection's `data_version` inside the batch (`None`: not watching, or it
    /// could not be read: then the counters are re-read).
    version: Option<i64>,
    /// Another connection committed since the writer last settled the counters.
    foreign_before: bool,
}

/// The writer thread's own memory between batches.
#[derive(Debug, Default)]
pub(super) struct WriterMark {
    /// The writer connection's `data_version` when it last settled the counters.
    version: Option<i64>,
}

impl Live {
    /// Counters for an in-memory database (nobody else can write to it).
    pub(super) fn private(counters: Vec<ToolCounters>) -> Self {
        Self::new(counters, None, None)
    }

    /// Opens the read connection on `path` (the database `writer` has open) and reads the
    /// counters through it.
    pub(super) fn watching(
        path: &Path,
        writer: &Connection,
        index: &HashMap<String, usize>,
    ) -> rusqlite::Result<(Self, WriterMark)> {
        let reader = Connection::open(path)?;
        reader.busy_timeout(READER_BUSY_TIMEOUT)?;
        reader.execute_batch("PRAGMA query_only=1")?;
        // The writer's mark first: a commit after it is caught by the writer's next batch, one
        // after the reader's version by the next status read; one in between is in the counts.
        let writer_mark = WriterMark {
            version: Some(data_version(writer)?),
        };
        let version = data_version(&reader)?;
        let counters = read_counts(&reader, index)?;
        Ok((
            Self::new(counters, Some(reader), Some(version)),
            writer_mark,
        ))
    }

    fn new(counters: Vec<ToolCounters>, reader: Option<Connection>, seen: Option<i64>) -> Self {
        Live {
            watching: reader.is_some(),
            inner: Mutex::new(Inner {
                counters,
                reader,
                seen,
            }),
            rereads: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
        }
    }

    /// Calls `f` with counters equal to the database's now (re-read first when another
    /// connection committed since they were last known exact).
    pub(super) fn read<T>(
        &self,
        index: &HashMap<String, usize>,
        f: impl FnOnce(&[ToolCounters]) -> T,
    ) -> T {
        let mut inner = lock_mutex(&self.inner);
        let Inner {
            counters,
            reader,
            seen,
        } = &mut *inner;
        if let Some(reader) = reader.as_ref() {
            match catch_up(reader, *seen, index) {
                Ok(None) => {}
                Ok(Some((version, fresh))) => {
                    *counters = fresh;
                    *seen = Some(version);
                    self.rereads.fetch_add(1, Ordering::SeqCst);
                    self.resyncs.fetch_add(1, Ordering::Relaxed);
                }
                // The last counters, once; the next read tries again (`seen` did not move).
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check the license database for other writers")
                }
            }
        }
        f(counters)
    }

    /// Notes, inside the writer's batch transaction, what settling the counters will need.
    pub(super) fn mark_batch(&self, tx: &Connection, writer: &WriterMark) -> BatchMark {
        let rereads = self.rereads.load(Ordering::SeqCst);
        if !self.watching {
            return BatchMark {
                rereads,
                version: None,
                foreign_before: false,
            };
        }
        let version = data_version(tx).ok();
        BatchMark {
            rereads,
            version,
            foreign_before: version.is_none() || version != writer.version,
        }
    }

    /// After the writer's `COMMIT`: applies the batch's per-tool deltas `(tool, borrowed,
    /// charges, amount)`, or re-reads the counters when other connections committed around
    /// the batch, and records the versions that say the counters are exact. `wrote`: the batch
    /// changed rows (a batch that did not leaves everything as it is).
    pub(super) fn settle(
        &self,
        writer: &Connection,
        mark: BatchMark,
        writer_mark: &mut WriterMark,
        delta: &[(usize, i64, u64, f64)],
        wrote: bool,
        index: &HashMap<String, usize>,
    ) {
        if !wrote {
            // Nothing of ours to publish; a foreign commit is the status reads' to catch.
            return;
        }
        let mut inner = lock_mutex(&self.inner);
        let Inner {
            counters,
            reader,
            seen,
        } = &mut *inner;
        let Some(reader) = reader.as_ref() else {
            apply(counters, delta);
            return;
        };
        // The reader's version first, then the writer's: a foreign commit before the second
        // is seen by it (and re-read now), one after the first moves the reader (and is
        // re-read by the next status read).
        let reader_version = data_version(reader);
        let after = data_version(writer);
        let exact = mark.version.is_some()
            && !mark.foreign_before
            && self.rereads.load(Ordering::SeqCst) == mark.rereads
            && after.as_ref().ok() == mark.version.as_ref();
        if exact {
            apply(counters, delta);
        } else {
            match read_counts(writer, index) {
                Ok(fresh) => {
                    *counters = fresh;
                    self.resyncs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-read the license counters");
                    apply(counters, delta);
                    *seen = None;
                    writer_mark.version = None;
                    return;
                }
            }
        }
        *seen = reader_version.ok();
        writer_mark.version = after.ok();
    }

    /// How many times the counters were re-read because another connection had committed
    /// (0 for a process alone on its database).
    pub(super) fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }

    /// Closes the read connection (the counters keep their last values).
    pub(super) fn close(&self) {
        let reader = lock_mutex(&self.inner).reader.take();
        drop(reader);
    }
}

/// `Some((version, counters))` when another connection committed since `seen`, `None` when the
/// counters are still exact.
fn catch_up(
    reader: &Connection,
    seen: Option<i64>,
    index: &HashMap<String, usize>,
) -> rusqlite::Result<Option<(i64, Vec<ToolCounters>)>> {
    // The version before the counts: the snapshot read next includes at least what it covers.
    let version = data_version(reader)?;
    if seen == Some(version) {
        return Ok(None);
    }
    let fresh = read_counts(reader, index)?;
    Ok(Some((version, fresh)))
}

fn apply(counters: &mut [ToolCounters], delta: &[(usize, i64, u64, f64)]) {
    for &(tool, borrowed, charges, amount) in delta {
        let c = &mut counters[tool];
        c.borrowed = (i64::from(c.borrowed) + borrowed).max(0) as u32;
        c.overage_borrows += charges;
        c.overage_charged += amount;
    }
}
