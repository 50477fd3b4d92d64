//! [`UsageRecorder`]: the write side. Events in (with their times), minutes closed into the
//! store as time passes, hours and days rolled up as they end, old rows expired.
//!
//! The instance's tier drives one from the live buffer (`tier.rs`); `license-demo seed-usage` and
//! the tests drive one directly with timestamped events.

use super::accumulate::{Accumulator, Settings, Step};
use super::record::MINUTE_MS;
use super::store::{self, Tier, MAX_IDS};
use super::{UsageConfig, UsageError};
use crate::event::{Event, EventKind};
use crate::status::ResourceStatus;
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::PathBuf;

/// The name ids past [`MAX_IDS`] resources (or 65,535 reasons) fold into.
const OTHER: &str = "(other)";
const MAX_REASONS: u32 = 65_535;

/// What a recorder has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Minutes closed (written, or skipped as empty).
    pub minutes_closed: u64,
    /// Resource-minute records written.
    pub records_written: u64,
    /// Bytes of record blobs written (before SQLite's own overhead).
    pub blob_bytes: u64,
    /// Events older than the first minute this recorder opened that it did not count (already
    /// in closed minutes, or from before the store existed).
    pub skipped_events: u64,
}

/// Writes usage into a store: give it events in time order with
/// [`record_at`](Self::record_at), the pools' sizes and prices with
/// [`set_status`](Self::set_status), and let time pass with [`advance`](Self::advance).
///
/// One recorder writes a store at a time (the instance's tier holds one while it runs).
///
/// ```
/// use realtime_layer::{Event, ResourceStatus, UsageConfig, UsageRecorder, UsageStore};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = UsageStore::open(UsageConfig::new(dir.path().join("usage.db"))).unwrap();
/// let t0 = 1_800_000_000_000; // a minute boundary
/// let mut rec = UsageRecorder::new(&store, t0).unwrap();
/// rec.set_status(&[ResourceStatus::new("seat", 10, 5, 0)]);
/// rec.record_at(t0 + 1_000, &Event::borrow("seat", "ann")).unwrap();
/// rec.advance(t0 + 60_000).unwrap(); // the minute closes
/// let report = store.report(t0, t0 + 60_000, &[]).unwrap();
/// assert_eq!(report.resources[0].borrows, 1);
/// ```
pub struct UsageRecorder {
    path: PathBuf,
    conn: Connection,
    config: UsageConfig,
    acc: Accumulator,
    resources: HashMap<String, u16>,
    reasons: HashMap<String, u32>,
    next_resource: u16,
    next_reason: u32,
    /// Names to insert with the next write.
    new_names: Vec<(&'static str, u32, String)>,
    /// Events before this time and before the open minute are from before this recorder.
    started_ms: u64,
    rolled_hours: u64,
    rolled_days: u64,
    stats: RecorderStats,
}

impl std::fmt::Debug for UsageRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageRecorder")
            .field("path", &self.path)
            .field("open_minute", &self.acc.minute())
            .finish_non_exhaustive()
    }
}

impl UsageRecorder {
    /// A recorder for `store` starting at `now_ms`: it opens the minute after the store's last
    /// closed one, or `now_ms`'s minute when that is later (minutes in between stay empty).
    pub fn new(store: &super::UsageStore, now_ms: u64) -> Result<Self, UsageError> {
        let config = store.config().clone();
        let path = config.path.clone();
        let err = store::sql_error(&path);
        let conn = store::connect(&path, true)?;
        let closed = store::meta(&conn, "closed").map_err(&err)?;
        let now_minute = now_ms / MINUTE_MS;
        let open = closed.map_or(now_minute, |c| c.max(now_minute));
        let resources: HashMap<String, u16> = store::names(&conn, "resources")
            .map_err(&err)?
            .into_iter()
            .map(|(id, name)| (name, id as u16))
            .collect();
        let reasons: HashMap<String, u32> = store::names(&conn, "reasons")
            .map_err(&err)?
            .into_iter()
            .map(|(id, name)| (name, id))
            .collect();
        let rolled_hours = store::meta(&conn, "rolled_hours")
            .map_err(&err)?
            .unwrap_or(open / 60);
        let rolled_days = store::meta(&conn, "rolled_days")
            .map_err(&err)?
            .unwrap_or(open / 60 / 24);
        let mut rec = UsageRecorder {
            next_resource: resources
                .values()
                .filter(|id| usize::from(**id) < MAX_IDS - 1)
                .max()
                .map_or(1, |m| m + 1),
            next_reason: reasons.values().max().map_or(1, |m| m + 1),
            resources,
            reasons,
            path: path.clone(),
            conn,
            config,
            acc: Accumulator::new(open),
            new_names: Vec::new(),
            started_ms: now_ms,
            rolled_hours,
            rolled_days,
            stats: RecorderStats::default(),
        };
        // A crash between a minute's write and its hour's rollup is caught up here.
        rec.write(None)?;
        Ok(rec)
    }

    /// What it has done so far.
    pub fn stats(&self) -> RecorderStats {
        self.stats
    }

    /// The start of the open minute (Unix ms): everything before it is closed.
    pub fn open_minute_ms(&self) -> u64 {
        self.acc.start_ms()
    }

    /// The id of resource `name`: new names get the next id; past 4,094 names they fold into
    /// `(other)`, which keeps the last id.
    pub(crate) fn resource_id(&mut self, name: &str) -> u16 {
        if let Some(&id) = self.resources.get(name) {
            return id;
        }
        let last = (MAX_IDS - 1) as u16;
        let (id, key) = if self.next_resource < last && name != OTHER {
            self.next_resource += 1;
            (self.next_resource - 1, name)
        } else {
            if let Some(&id) = self.resources.get(OTHER) {
                return id;
            }
            (last, OTHER)
        };
        self.resources.insert(key.to_owned(), id);
        self.new_names
            .push(("resources", u32::from(id), key.to_owned()));
        id
    }

    pub(crate) fn reason_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.reasons.get(name) {
            return id;
        }
        if self.next_reason >= MAX_REASONS && name != OTHER {
            return self.reason_id(OTHER);
        }
        let id = self.next_reason;
        self.next_reason += 1;
        self.reasons.insert(name.to_owned(), id);
        self.new_names.push(("reasons", id, name.to_owned()));
        id
    }

    /// Sizes and prices of the pools, used for every minute closed from now on (commit and pool
    /// size for time at commit and exhausted, the overage price for the minute's cost).
    pub fn set_status(&mut self, rows: &[ResourceStatus]) {
        for row in rows {
            let id = self.resource_id(&row.name);
            let cents = row
                .pricing
                .as_ref()
                .map(|p| super::money::to_cents(p.overage_unit_price));
            self.acc.set_settings(
                id,
                Settings {
                    commit: Some(row.commit),
                    total: Some(row.total),
                    overage_cents: cents,
                },
            );
        }
    }

    /// Records `event` at `ts_ms`. Events come in time order; one older than the open minute
    /// counts in the open minute, unless it is also older than this recorder (then it was
    /// counted before, or happened before the store existed, and is skipped).
    pub fn record_at(&mut self, ts_ms: u64, event: &Event) -> Result<(), UsageError> {
        let id = self.resource_id(event.resource());
        let step = match event.kind() {
            EventKind::Borrow => Step::Borrow {
                overage: event.is_overage(),
            },
            EventKind::Return => Step::Return,
            EventKind::Failure => Step::Refusal {
                reason: self.reason_id(event.reason().unwrap_or("unknown")),
            },
        };
        self.apply(ts_ms, id, step)
    }

    /// Sets resource `name`'s borrowed level at `ts_ms` (a correction: neither a borrow nor a
    /// return).
    pub fn set_level(&mut self, ts_ms: u64, name: &str, level: u32) -> Result<(), UsageError> {
        let id = self.resource_id(name);
        if self.acc.level(id) == level {
            return Ok(());
        }
        self.apply(ts_ms, id, Step::Level(level))
    }

    /// The level of resource id `id` in the open minute.
    pub(crate) fn level(&self, id: u16) -> u32 {
        self.acc.level(id)
    }

    pub(crate) fn apply(&mut self, ts_ms: u64, id: u16, step: Step) -> Result<(), UsageError> {
        let mut ts = ts_ms;
        if ts < self.acc.start_ms() {
            if ts < self.started_ms {
                self.stats.skipped_events += 1;
                return Ok(());
            }
            ts = self.acc.start_ms();
        }
        self.advance(ts)?;
        self.acc.apply(ts, id, step);
        Ok(())
    }

    /// Closes every minute that ends at or before `now_ms`. Returns how many closed.
    pub fn advance(&mut self, now_ms: u64) -> Result<u64, UsageError> {
        let before = self.stats.minutes_closed;
        while self.acc.end_ms() <= now_ms {
            if self.acc.is_idle() {
                // Nothing out, nothing happened: skip to now's minute in one step.
                let to = now_ms / MINUTE_MS;
                self.stats.minutes_closed += to - self.acc.minute();
                self.acc.jump(to);
                self.write(None)?;
                break;
            }
            let minute = self.acc.minute();
            let records = self.acc.close();
            self.stats.minutes_closed += 1;
            self.write(Some((minute, records)))?;
        }
        Ok(self.stats.minutes_closed - before)
    }

    /// Closes the open minute now, its rest counted at the levels of now (a graceful shutdown:
    /// nothing recorded is lost; the next recorder opens the minute after).
    pub fn close_open_minute(&mut self) -> Result<(), UsageError> {
        let minute = self.acc.minute();
        let records = self.acc.close();
        self.stats.minutes_closed += 1;
        self.write(Some((minute, records)))
    }

    /// One transaction: new names, the closed minute's records, `closed`, then the rollups of
    /// hours and days that ended and the expiry of rows past retention.
    fn write(
        &mut self,
        minute: Option<(u64, Vec<(u16, super::record::Usage)>)>,
    ) -> Result<(), UsageError> {
        let path = self.path.clone();
        let err = store::sql_error(&path);
        let closed = self.acc.minute();
        let tx = self.conn.transaction().map_err(&err)?;
        for (table, id, name) in self.new_names.drain(..) {
            store::insert_name(&tx, table, id, &name).map_err(&err)?;
        }
        if let Some((m, records)) = &minute {
            if !records.is_empty() {
                let bytes = store::write_period(&tx, Tier::Minute, *m, records).map_err(&err)?;
                self.stats.blob_bytes += bytes as u64;
                // The total (id 0) is not a resource.
                self.stats.records_written +=
                    records.iter().filter(|(id, _)| *id != 0).count() as u64;
            }
        }
        store::set_meta(&tx, "closed", closed).map_err(&err)?;
        let hours_done = closed / 60;
        if hours_done > self.rolled_hours {
            for hour in periods_with_rows(&tx, Tier::Minute, 60, self.rolled_hours, hours_done)
                .map_err(&err)?
            {
                store::roll_up(&tx, &path, Tier::Hour, hour)?;
            }
            let days_done = hours_done / 24;
            if days_done > self.rolled_days {
                for day in periods_with_rows(&tx, Tier::Hour, 24, self.rolled_days, days_done)
                    .map_err(&err)?
                {
                    store::roll_up(&tx, &path, Tier::Day, day)?;
                }
            }
            store::set_meta(&tx, "rolled_hours", hours_done).map_err(&err)?;
            store::set_meta(&tx, "rolled_days", days_done).map_err(&err)?;
            let hours_kept = self.config.hours_kept();
            store::expire(
                &tx,
                Tier::Minute,
                closed.saturating_sub(self.config.minutes_kept()),
            )
            .map_err(&err)?;
            store::expire(&tx, Tier::Hour, hours_done.saturating_sub(hours_kept)).map_err(&err)?;
            store::expire(&tx, Tier::Day, days_done.saturating_sub(hours_kept / 24))
                .map_err(&err)?;
            self.rolled_hours = hours_done;
            self.rolled_days = days_done;
        }
        tx.commit().map_err(&err)?;
        Ok(())
    }
}

/// The periods of the tier above `below` (each `n` of `below`'s periods) in `from..to` that have
/// rows in `below`.
fn periods_with_rows(
    conn: &Connection,
    below: Tier,
    n: u64,
    from: u64,
    to: u64,
) -> rusqlite::Result<Vec<u64>> {
    let table = match below {
        Tier::Minute => "minutes",
        Tier::Hour => "hours",
        Tier::Day => "days",
    };
    let s = u64::from(store::SHARD);
    let sql =
        format!("SELECT DISTINCT key / ?3 FROM {table} WHERE key >= ?1 AND key < ?2 ORDER BY 1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        [(from * n * s) as i64, (to * n * s) as i64, (n * s) as i64],
        |r| r.get::<_, i64>(0),
    )?;
    rows.map(|r| r.map(|v| v as u64)).collect()
}
