//! The database layout (`SCHEMA`), its upgrades on open, and loading the catalogue and live
//! counters at start-up.

use super::live::{read_counts, ToolCounters};
use super::timestamps::ms_i64;
use super::types::{Durability, PoolError};
use crate::config::ToolSpec;
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashMap;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tools (
    name TEXT PRIMARY KEY,
    total INTEGER NOT NULL,
    commit_qty INTEGER NOT NULL,
    max_overage INTEGER NOT NULL,
    commit_price REAL NOT NULL,
    overage_price_per_license REAL NOT NULL
);
-- Open borrows only. It holds at most the sum of the totals, so it stays a few hot, cached pages
-- however long the history grows: borrow, count and return touch only those pages (random
-- UUID keys in an ever-growing table would dirty a random page per borrow).
-- `renewed_ms` (last borrow or heartbeat, Unix ms) drives leases; `tenant` is the API key's.
CREATE TABLE IF NOT EXISTS open_borrows (
    id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    user TEXT NOT NULL,
    borrowed_at TEXT NOT NULL,
    is_overage INTEGER NOT NULL,
    tenant TEXT,
    renewed_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS open_borrows_by_tool ON open_borrows(tool);
-- Returned borrows, append-only and unindexed (kept for audit; nothing on the hot path reads it).
-- `reason` is NULL for a return by the client, `expired` for a lease the pool ended.
CREATE TABLE IF NOT EXISTS borrow_history (
    id TEXT NOT NULL,
    tool TEXT NOT NULL,
    user TEXT NOT NULL,
    borrowed_at TEXT NOT NULL,
    returned_at TEXT NOT NULL,
    is_overage INTEGER NOT NULL,
    reason TEXT
);
-- `tenant` is the API key's of the borrow (NULL without keys): charges are listed per tenant.
CREATE TABLE IF NOT EXISTS overage_charges (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    tool TEXT NOT NULL,
    borrow_id TEXT NOT NULL,
    user TEXT NOT NULL,
    charged_at TEXT NOT NULL,
    amount REAL NOT NULL,
    tenant TEXT
);
CREATE INDEX IF NOT EXISTS overage_charges_by_tool ON overage_charges(tool);
-- Idempotency keys of borrows, per tenant ('' without API keys), kept 24 h: the borrow a retry
-- answers with, and whether (when, why) it was returned since.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    tool TEXT NOT NULL,
    user TEXT NOT NULL,
    borrow_id TEXT NOT NULL,
    borrowed_at TEXT NOT NULL,
    is_overage INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    returned_at TEXT,
    return_reason TEXT,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys(created_ms);
-- Signed borrows seen (--require-signature): the replay key of each (a digest of vendor,
-- timestamp and nonce, or of a nonce-less signature) until its timestamp leaves the window
-- (`expires_s`, Unix seconds; pruned then), with the Idempotency-Key it came with (a retry with
-- it is no replay). Keyed by expiry first: inserts land on the newest pages and the prune
-- removes the oldest ones, instead of dirtying random pages of the whole window (a digest-keyed
-- table with an expiry index touched one random page per borrow, and per pruned row). A replay
-- carries the same signed timestamp, so it finds its row under the same expiry.
CREATE TABLE IF NOT EXISTS signature_replays (
    expires_s INTEGER NOT NULL,
    key BLOB NOT NULL,
    scope TEXT NOT NULL,
    idem_key TEXT,
    PRIMARY KEY (expires_s, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_by_borrow ON idempotency_keys(borrow_id);
";

/// Indexes on columns added after the first release: created once the columns exist.
const ADDED_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS overage_charges_by_tenant ON overage_charges(tenant);
";

/// Per-tool sums of `overage_charges`, kept by triggers in the charge's own transaction: the
/// status's overage cost is read from the database (whichever process charged) without summing
/// an ever-growing table. Created, and filled from the charges already recorded, in the same
/// transaction, so no charge is counted twice or missed.
const OVERAGE_TOTALS: &str = "
CREATE TABLE overage_totals (
    tool TEXT PRIMARY KEY,
    charges INTEGER NOT NULL,
    amount REAL NOT NULL
) WITHOUT ROWID;
INSERT INTO overage_totals(tool, charges, amount)
    SELECT tool, COUNT(*), TOTAL(amount) FROM overage_charges GROUP BY tool;
";

/// The triggers that keep `overage_totals` (re-created when missing, e.g. after a restore).
const OVERAGE_TRIGGERS: &str = "
CREATE TRIGGER IF NOT EXISTS overage_totals_on_charge AFTER INSERT ON overage_charges BEGIN
    INSERT INTO overage_totals(tool, charges, amount) VALUES (NEW.tool, 1, NEW.amount)
        ON CONFLICT(tool) DO UPDATE SET charges = charges + 1, amount = amount + NEW.amount;
END;
CREATE TRIGGER IF NOT EXISTS overage_totals_on_delete AFTER DELETE ON overage_charges BEGIN
    UPDATE overage_totals SET charges = charges - 1, amount = amount - OLD.amount
        WHERE tool = OLD.tool;
END;
";

/// Columns added after the first release: databases created before get them on open.
const ADDED_COLUMNS: [(&str, &str, &str); 6] = [
    ("open_borrows", "tenant", "TEXT"),
    ("open_borrows", "renewed_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("borrow_history", "reason", "TEXT"),
    ("overage_charges", "tenant", "TEXT"),
    ("idempotency_keys", "returned_at", "TEXT"),
    ("idempotency_keys", "return_reason", "TEXT"),
];

/// WAL size (pages) at which a commit also checkpoints (copies the WAL into the database file,
/// with an fsync). SQLite's default; measured against 4000: bigger checkpoints stall the writer
/// longer (p99 borrow latency under load 21 ms vs 63 ms) for no throughput gain.
const AUTOCHECKPOINT_PAGES: u32 = 1000;

/// How long a write waits for another process's transaction on the same database before it
/// fails.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The pause before the `attempt`-th retry of a lock another process holds, or `None` once the
/// pauses so far add up to [`BUSY_TIMEOUT`].
///
/// SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms, long next to a batch
/// transaction (well under a millisecond without fsync): with two processes on one file the
/// waiting writer slept while the other committed batch after batch. Short pauses first, longer
/// ones only when the wait is long.
pub(super) fn busy_pause(attempt: u32) -> Option<Duration> {
    const SHORT: u32 = 20; // 20 x 100 us = 2 ms
    const MEDIUM: u32 = 100; // + 80 x 500 us = 42 ms
    let pause = match attempt {
        a if a < SHORT => Duration::from_micros(100),
        a if a < MEDIUM => Duration::from_micros(500),
        _ => Duration::from_millis(2),
    };
    let long_tries = BUSY_TIMEOUT
        .saturating_sub(Duration::from_millis(42))
        .as_millis()
        / 2;
    (u128::from(attempt) < u128::from(MEDIUM) + long_tries).then_some(pause)
}

/// Sets the pragmas, creates missing tables and adds columns newer than the database, in one
/// write transaction (several processes may open one database at once: one upgrades it, the
/// others find it upgraded).
pub(super) fn prepare_schema(
    conn: &mut Connection,
    durability: Durability,
    now_ms: u64,
) -> Result<(), PoolError> {
    conn.busy_handler(Some(|attempt: i32| {
        match busy_pause(u32::try_from(attempt).unwrap_or(0)) {
            Some(pause) => {
                std::thread::sleep(pause);
                true
            }
            None => false,
        }
    }))?;
    // journal_mode answers with a row ("wal", or "memory" for :memory:), so query it.
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES};"
    ))?;
    // The write lock before reading what to upgrade (a deferred transaction that read first
    // could not write after another process's upgrade).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA)?;
    let has_totals: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'overage_totals'",
        [],
        |r| r.get(0),
    )?;
    if !has_totals {
        tx.execute_batch(OVERAGE_TOTALS)?;
    }
    tx.execute_batch(OVERAGE_TRIGGERS)?;
    upgrade_columns(&tx, now_ms)?;
    tx.commit()?;
    Ok(())
}

fn upgrade_columns(conn: &Connection, now_ms: u64) -> Result<(), PoolError> {
    for (table, column, decl) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
            if (table, column) == ("overage_charges", "tenant") {
                // Charges from before tenants were stored: those of borrows still open get their
                // tenant; the others stay without one (listed only when API keys are off).
                conn.execute_batch(
                    "UPDATE overage_charges SET tenant = (SELECT tenant FROM open_borrows o
                     WHERE o.id = overage_charges.borrow_id) WHERE tenant IS NULL",
                )?;
            }
        }
    }
    conn.execute_batch(ADDED_INDEXES)?;
    // Borrows from before leases existed count as renewed when first opened with them.
    conn.execute(
        "UPDATE open_borrows SET renewed_ms = ?1 WHERE renewed_ms = 0",
        [ms_i64(now_ms)],
    )?;
    Ok(())
}

/// Rows of the replay memory still inside the timestamp window.
pub(super) fn count_replays(conn: &Connection, now_ms: u64) -> Result<i64, PoolError> {
    let now_s = ms_i64(now_ms) / 1000;
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM signature_replays WHERE expires_s >= ?1",
        [now_s],
        |r| r.get(0),
    )?)
}

/// Upserts the catalogue and reads the live counters of each tool (`index`: tool name to
/// position in `tools`).
pub(super) fn load_catalogue(
    conn: &mut Connection,
    tools: &[ToolSpec],
    index: &HashMap<String, usize>,
) -> Result<Vec<ToolCounters>, PoolError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for t in tools {
        tx.execute(
            "INSERT INTO tools(name, total, commit_qty, max_overage, commit_price, overage_price_per_license)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(name) DO UPDATE SET total=excluded.total, commit_qty=excluded.commit_qty,
                 max_overage=excluded.max_overage, commit_price=excluded.commit_price,
                 overage_price_per_license=excluded.overage_price_per_license",
            params![t.name, t.total, t.commit, t.max_overage, t.commit_price, t.overage_price_per_license],
        )?;
    }
    let counters = read_counts(&tx, index)?;
    tx.commit()?;
    for (t, c) in tools.iter().zip(&counters) {
        if c.borrowed > t.total {
            tracing::warn!(
                tool = %t.name, borrowed = c.borrowed, total = t.total,
                "more licenses are out than the configured total; new borrows fail until enough are returned"
            );
        }
    }
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_pauses_start_short_and_add_up_to_the_busy_timeout() {
        assert_eq!(busy_pause(0), Some(Duration::from_micros(100)));
        let pauses: Vec<Duration> = (0..).map_while(busy_pause).collect();
        let total: Duration = pauses.iter().sum();
        assert!(
            total >= BUSY_TIMEOUT && total <= BUSY_TIMEOUT + Duration::from_millis(2),
            "{total:?}"
        );
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
    }
}
