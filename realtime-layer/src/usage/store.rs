//! The SQLite file: schema, names, the three tiers' rows, rollups and retention.
//!
//! ```text
//! meta(key TEXT PRIMARY KEY, value INTEGER)    format, closed (minutes closed: every minute
//!                                              before it is final), rolled_hours, rolled_days
//! resources(id INTEGER PRIMARY KEY, name)      ids 1..=4095 (0 is the pool-wide total)
//! reasons(id INTEGER PRIMARY KEY, name)        refusal reasons
//! minutes(key INTEGER PRIMARY KEY, data BLOB)  key = minute × 64 + shard (ids / 64)
//! hours(key ..., data ...), days(key ..., data ...)   the same, rolled up
//! ```
//!
//! One row per period and shard of 64 resources (`codec.rs`), appended in key order, so closing a
//! minute is one short transaction at the end of one B-tree and a query reads whole pages. The
//! file runs in WAL mode with `synchronous=NORMAL`: a committed minute survives a crash or
//! `kill -9` of the process (an OS crash may lose the last ones), and readers never block the
//! writer. Rows past retention are deleted at each hour's close; SQLite reuses their pages, so
//! the file stops growing once retention is reached.

use super::codec::{self, Corrupt};
use super::record::{Usage, DAY_MS, HOUR_MS, MINUTE_MS};
use super::UsageError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use std::path::Path;

/// Format written in `meta`: a file of another format is refused, never misread.
pub(crate) const STORE_FORMAT: u64 = 1;
/// Resource ids per row.
pub(crate) const SHARD: u16 = 64;
/// Most resource ids (0 is the total; names past it fold into `(other)`).
pub(crate) const MAX_IDS: usize = 4096;

/// A tier: how long its periods are and which table holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    Minute,
    Hour,
    Day,
}

impl Tier {
    pub(crate) fn ms(self) -> u64 {
        match self {
            Tier::Minute => MINUTE_MS,
            Tier::Hour => HOUR_MS,
            Tier::Day => DAY_MS,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Tier::Minute => "minutes",
            Tier::Hour => "hours",
            Tier::Day => "days",
        }
    }

    /// The tier below (what this one rolls up), and how many of its periods make one of these.
    fn below(self) -> Option<(Tier, u64)> {
        match self {
            Tier::Minute => None,
            Tier::Hour => Some((Tier::Minute, 60)),
            Tier::Day => Some((Tier::Hour, 24)),
        }
    }
}

pub(crate) fn sql_error(path: &Path) -> impl Fn(rusqlite::Error) -> UsageError + '_ {
    move |e| UsageError::Store {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

pub(crate) fn corrupt(path: &Path) -> impl Fn(Corrupt) -> UsageError + '_ {
    move |_| UsageError::Corrupt {
        path: path.display().to_string(),
    }
}

/// Opens (creating when missing) the file at `path` with its pragmas and schema; `write`: the
/// writer's connection (creates the schema), otherwise a reader's.
pub(crate) fn connect(path: &Path, write: bool) -> Result<Connection, UsageError> {
    let err = sql_error(path);
    let conn = Connection::open(path).map_err(&err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&err)?;
    if write {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS resources(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS reasons(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS minutes(key INTEGER PRIMARY KEY, data BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS hours(key INTEGER PRIMARY KEY, data BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS days(key INTEGER PRIMARY KEY, data BLOB NOT NULL);",
        )
        .map_err(&err)?;
        match meta(&conn, "format").map_err(&err)? {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('format', ?1)",
                    [STORE_FORMAT as i64],
                )
                .map_err(&err)?;
            }
            Some(STORE_FORMAT) => {}
            Some(found) => {
                return Err(UsageError::Format {
                    path: path.display().to_string(),
                    found,
                    expected: STORE_FORMAT,
                })
            }
        }
    }
    Ok(conn)
}

pub(crate) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<u64>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get::<_, i64>(0))
        .optional()
        .map(|v| v.map(|v| v.max(0) as u64))
}

pub(crate) fn set_meta(tx: &Transaction<'_>, key: &str, value: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")?
        .execute(params![key, value as i64])?;
    Ok(())
}

/// Names by id of `table` (`resources` or `reasons`).
pub(crate) fn names(conn: &Connection, table: &str) -> rusqlite::Result<BTreeMap<u32, String>> {
    let sql = format!("SELECT id, name FROM {table}");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (id, name) = row?;
        out.insert(id as u32, name);
    }
    Ok(out)
}

pub(crate) fn insert_name(
    tx: &Transaction<'_>,
    table: &str,
    id: u32,
    name: &str,
) -> rusqlite::Result<()> {
    let sql = format!("INSERT OR REPLACE INTO {table}(id, name) VALUES (?1, ?2)");
    tx.prepare_cached(&sql)?.execute(params![id as i64, name])?;
    Ok(())
}

/// Writes the records of one period (ids ascending), one row per shard.
pub(crate) fn write_period(
    tx: &Transaction<'_>,
    tier: Tier,
    period: u64,
    records: &[(u16, Usage)],
) -> rusqlite::Result<usize> {
    let sql = format!(
        "INSERT OR REPLACE INTO {}(key, data) VALUES (?1, ?2)",
        tier.table()
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut bytes = 0;
    let mut i = 0;
    while i < records.len() {
        let shard = records[i].0 / SHARD;
        let mut j = i;
        while j < records.len() && records[j].0 / SHARD == shard {
            j += 1;
        }
        let part: Vec<(u16, &Usage)> = records[i..j].iter().map(|(id, u)| (*id, u)).collect();
        let blob = codec::encode(&part, tier.ms());
        bytes += blob.len();
        stmt.execute(params![
            (period * u64::from(SHARD) + u64::from(shard)) as i64,
            blob
        ])?;
        i = j;
    }
    Ok(bytes)
}

/// Calls `f(period, blob)` for the rows of `tier` with periods in `from..to`, in time order;
/// `shard`: only that shard's rows. Blobs are borrowed from SQLite's row, never copied.
pub(crate) fn for_each_row(
    conn: &Connection,
    path: &Path,
    tier: Tier,
    from: u64,
    to: u64,
    shard: Option<u16>,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), UsageError>,
) -> Result<(), UsageError> {
    if from >= to {
        return Ok(());
    }
    let err = sql_error(path);
    let sql = format!(
        "SELECT key, data FROM {} WHERE key >= ?1 AND key < ?2 ORDER BY key",
        tier.table()
    );
    let s = u64::from(SHARD);
    let mut stmt = conn.prepare_cached(&sql).map_err(&err)?;
    let mut rows = stmt
        .query(params![(from * s) as i64, (to * s) as i64])
        .map_err(&err)?;
    while let Some(row) = rows.next().map_err(&err)? {
        let key = row.get::<_, i64>(0).map_err(&err)? as u64;
        if shard.is_some_and(|want| key % s != u64::from(want)) {
            continue;
        }
        let blob = row
            .get_ref(1)
            .map_err(&err)?
            .as_blob()
            .map_err(|_| UsageError::Corrupt {
                path: path.display().to_string(),
            })?;
        f(key / s, blob)?;
    }
    Ok(())
}

/// Rolls the periods of the tier below `tier` up into `tier`'s period `period`: per id, the
/// merge of its records, filled to the whole period at level 0 (a resource has no record in a
/// period it sat idle at 0). Writes nothing when nothing below exists.
pub(crate) fn roll_up(
    tx: &Transaction<'_>,
    path: &Path,
    tier: Tier,
    period: u64,
) -> Result<(), UsageError> {
    let Some((below, n)) = tier.below() else {
        return Ok(());
    };
    let mut slots: Vec<Option<Usage>> = Vec::new();
    for_each_row(
        tx,
        path,
        below,
        period * n,
        (period + 1) * n,
        None,
        |_, blob| codec::decode_merged(blob, below.ms(), &mut slots).map_err(corrupt(path)),
    )?;
    let records: Vec<(u16, Usage)> = slots
        .into_iter()
        .enumerate()
        .filter_map(|(id, slot)| {
            slot.map(|mut u| {
                if id != 0 {
                    u.fill_to(tier.ms());
                }
                (id as u16, u)
            })
        })
        .collect();
    if records.is_empty() {
        return Ok(());
    }
    write_period(tx, tier, period, &records).map_err(sql_error(path))?;
    Ok(())
}

/// Deletes `tier`'s rows of periods before `before`.
pub(crate) fn expire(tx: &Transaction<'_>, tier: Tier, before: u64) -> rusqlite::Result<usize> {
    let sql = format!("DELETE FROM {} WHERE key < ?1", tier.table());
    tx.prepare_cached(&sql)?
        .execute([(before * u64::from(SHARD)) as i64])
}

/// The first period of `tier` that has a row (`None`: empty).
pub(crate) fn first_period(conn: &Connection, tier: Tier) -> rusqlite::Result<Option<u64>> {
    let sql = format!("SELECT MIN(key) FROM {}", tier.table());
    conn.query_row(&sql, [], |r| r.get::<_, Option<i64>>(0))
        .map(|k| k.map(|k| k as u64 / u64::from(SHARD)))
}
