//! [`UsageStore`]: the read side. A handle on the file with a small pool of read connections
//! (WAL readers never block the writer), and the answers: report, advice, history series.

use super::query::{self, Coverage, Merged};
use super::record::{Usage, MINUTE_MS};
use super::store::{self, Tier};
use super::{AdviceReport, UsageConfig, UsageError, UsageReport};
use crate::status::ResourceStatus;
use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Read connections open at once; more readers wait (at most [`READ_WAIT`]).
const MAX_READERS: usize = 4;
const READ_WAIT: Duration = Duration::from_secs(5);

/// Merged runs of hours and days kept (they never change once rolled up, and a window that
/// slides by a minute keeps reading the same runs): a few MB at 1,000 resources.
const CACHED_RUNS: usize = 8;

/// A run of rolled-up periods (tier, first, end) and its records merged per id.
type CachedRun = ((Tier, u64, u64), Arc<query::Slots>);

struct Shared {
    config: UsageConfig,
    idle: Mutex<(Vec<Connection>, usize)>,
    freed: Condvar,
    /// Merged runs of rolled-up periods, newest use last.
    runs: Mutex<Vec<CachedRun>>,
}

/// A usage store on disk (feature `usage`): open it, then ask for reports and advice; write it
/// with a [`UsageRecorder`](super::UsageRecorder) (an instance built with
/// [`RealtimeBuilder::usage`](crate::RealtimeBuilder::usage) runs one itself). Cheap to clone.
#[derive(Clone)]
pub struct UsageStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for UsageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageStore")
            .field("path", &self.shared.config.path)
            .finish_non_exhaustive()
    }
}

/// A borrowed read connection, back to the pool when dropped.
struct Reader<'a> {
    store: &'a Shared,
    conn: Option<Connection>,
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.store.idle.lock().0.push(conn);
            self.store.freed.notify_one();
        }
    }
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }
}

impl UsageStore {
    /// Opens (creating when missing) the store of `config`; checks its format.
    pub fn open(config: UsageConfig) -> Result<UsageStore, UsageError> {
        config.validate().map_err(UsageError::Config)?;
        // The writer's connection creates the schema; readers only read.
        drop(store::connect(&config.path, true)?);
        Ok(UsageStore {
            shared: Arc::new(Shared {
                config,
                idle: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
                runs: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Its settings.
    pub fn config(&self) -> &UsageConfig {
        &self.shared.config
    }

    fn reader(&self) -> Result<Reader<'_>, UsageError> {
        let s = &*self.shared;
        let mut idle = s.idle.lock();
        loop {
            if let Some(conn) = idle.0.pop() {
                return Ok(Reader {
                    store: s,
                    conn: Some(conn),
                });
            }
            if idle.1 < MAX_READERS {
                idle.1 += 1;
                drop(idle);
                return match store::connect(&s.config.path, false) {
                    Ok(conn) => Ok(Reader {
                        store: s,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        s.idle.lock().1 -= 1;
                        Err(e)
                    }
                };
            }
            if s.freed.wait_for(&mut idle, READ_WAIT).timed_out() {
                return Err(UsageError::Busy);
            }
        }
    }

    fn coverage(&self, conn: &Connection) -> Result<Coverage, UsageError> {
        query::coverage(conn, &self.shared.config.path)
    }

    /// The end of the newest closed minute (Unix ms; `None` before the first minute closed).
    pub fn closed_until_ms(&self) -> Result<Option<u64>, UsageError> {
        let conn = self.reader()?;
        let cov = self.coverage(&conn)?;
        Ok((cov.closed > 0).then_some(cov.closed * MINUTE_MS))
    }

    /// The window of the last `window_secs` that the store answers: it ends at the newest closed
    /// minute and starts `window_secs` (rounded down to whole minutes) before; a window longer
    /// than the minute tier's retention starts on an hour (the minutes before are gone).
    pub fn window(&self, window_secs: u64) -> Result<(u64, u64), UsageError> {
        let conn = self.reader()?;
        let cov = self.coverage(&conn)?;
        Ok(window_of(&cov, self.config(), window_secs))
    }

    /// Bytes the store's file takes now (pages × page size, the write-ahead log not included).
    pub fn disk_bytes(&self) -> Result<u64, UsageError> {
        let conn = self.reader()?;
        let err = store::sql_error(&self.shared.config.path);
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(&err)?;
        let size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(&err)?;
        let free: i64 = conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .map_err(&err)?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// A run of rolled-up periods merged per id, from the cache when it is there.
    fn run(
        &self,
        conn: &Connection,
        tier: Tier,
        from: u64,
        to: u64,
    ) -> Result<Arc<query::Slots>, UsageError> {
        let key = (tier, from, to);
        {
            let mut runs = self.shared.runs.lock();
            if let Some(i) = runs.iter().position(|(k, _)| *k == key) {
                let hit = runs.remove(i);
                let slots = hit.1.clone();
                runs.push(hit);
                return Ok(slots);
            }
        }
        let slots = Arc::new(query::piece(
            conn,
            &self.shared.config.path,
            tier,
            from,
            to,
        )?);
        let mut runs = self.shared.runs.lock();
        if runs.len() >= CACHED_RUNS {
            runs.remove(0);
        }
        runs.push((key, slots.clone()));
        Ok(slots)
    }

    /// Per resource id, its records of `start_ms..end_ms` merged, and the names.
    fn merged(&self, start_ms: u64, end_ms: u64) -> Result<Merged, UsageError> {
        let conn = self.reader()?;
        let path = &self.shared.config.path;
        let err = store::sql_error(path);
        let cov = self.coverage(&conn)?;
        let (start, end) = (start_ms / MINUTE_MS, end_ms / MINUTE_MS);
        let usage = if end > start {
            query::merged(&conn, path, start, end, &cov, |tier, from, to| {
                self.run(&conn, tier, from, to)
            })?
        } else {
            BTreeMap::new()
        };
        Ok(Merged {
            usage,
            resources: store::names(&conn, "resources").map_err(&err)?,
            reasons: store::names(&conn, "reasons").map_err(&err)?,
            start_ms: start * MINUTE_MS,
            end_ms: end.max(start) * MINUTE_MS,
        })
    }

    /// The usage report of `start_ms..end_ms` (whole minutes; see [`UsageReport`]), with today's
    /// commit, pool size and prices from `status`.
    pub fn report(
        &self,
        start_ms: u64,
        end_ms: u64,
        status: &[ResourceStatus],
    ) -> Result<UsageReport, UsageError> {
        let m = self.merged(start_ms, end_ms)?;
        Ok(super::report::build(&m, status, self.config()))
    }

    /// The pool-sizing advice of `start_ms..end_ms` under today's `status` (see
    /// [`AdviceReport`]).
    pub fn advice(
        &self,
        start_ms: u64,
        end_ms: u64,
        status: &[ResourceStatus],
    ) -> Result<AdviceReport, UsageError> {
        let m = self.merged(start_ms, end_ms)?;
        Ok(super::advice::build(&m, status, self.config()))
    }

    /// Records of one resource (`None`: the pool-wide total) in `start_ms..end_ms`, per period,
    /// from tiers no coarser than `max_tier` (history buckets).
    pub(crate) fn series(
        &self,
        start_ms: u64,
        end_ms: u64,
        resource: Option<&str>,
        max_tier: Tier,
    ) -> Result<Vec<(u64, u64, Usage)>, UsageError> {
        let conn = self.reader()?;
        let path = &self.shared.config.path;
        let cov = self.coverage(&conn)?;
        let id = match resource {
            None => 0,
            Some(name) => {
                let names = store::names(&conn, "resources").map_err(store::sql_error(path))?;
                match names.into_iter().find(|(_, n)| n == name) {
                    Some((id, _)) => id as u16,
                    None => return Ok(Vec::new()),
                }
            }
        };
        let (start, end) = (start_ms / MINUTE_MS, end_ms / MINUTE_MS);
        query::series(&conn, path, start, end.max(start), &cov, max_tier, id)
    }
}

/// See [`UsageStore::window`].
pub(crate) fn window_of(cov: &Coverage, config: &UsageConfig, window_secs: u64) -> (u64, u64) {
    let end = cov.closed;
    let minutes = (window_secs / 60).max(1);
    let mut start = end.saturating_sub(minutes);
    if minutes > config.minutes_kept() {
        start = start.div_ceil(60) * 60;
    }
    (start * MINUTE_MS, end * MINUTE_MS)
}
