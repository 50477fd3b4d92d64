//! `LicensePool`: the license state, stored in SQLite and mirrored in memory for cheap reads.
//!
//! # Design
//! One dedicated writer thread owns the only SQLite connection. Requests reach it through a
//! channel; it drains whatever is queued (up to [`MAX_BATCH`] jobs) and runs the whole batch in a
//! single `BEGIN IMMEDIATE` transaction, then commits and answers every job. Inside the
//! transaction each borrow counts the tool's open borrows and inserts its row, so the
//! check-and-insert is atomic: jobs run one after another on one connection and the write lock is
//! held from the first read, so no two borrows can both see the last free license (the Python
//! original read and wrote on separate connections and over-borrowed). Batching is group commit:
//! under load one commit (and, with `--durability full`, one fsync) covers many requests.
//!
//! Open borrows live in a small table of their own (`open_borrows`); a return moves the row to
//! the append-only `borrow_history`. Overage charges are append-only too. So the pages a borrow or
//! return touches are few, hot and cached, whatever the size of the history.
//!
//! Nobody learns about a change before it is committed: the in-memory counters (used by
//! `GET /licenses/status` and the realtime status source) are updated after `COMMIT` and before
//! the replies are sent.
//!
//! # Idempotency and leases
//! A borrow may carry an idempotency key: the key, the request (tool, user) and the borrow it
//! produced are stored in the same transaction as the borrow, so a retry after a lost answer, a
//! restart or a `kill -9` finds the first borrow instead of taking a second license. Keys are
//! kept [`IDEMPOTENCY_WINDOW`] (24 h).
//!
//! With a lease TTL ([`PoolOptions::lease_ttl`]) every open borrow stores when it was last renewed
//! (borrow or heartbeat). The writer sweeps borrows not renewed within the TTL inside a batch
//! transaction, exactly like returns (history row with reason `expired`, counters after
//! `COMMIT`), and reports them to the listener set with [`LicensePool::on_expired`]. Expiry is
//! computed from stored times, so it survives restarts.
//!
//! # Durability
//! The database runs in WAL mode. With `synchronous=NORMAL` (the default, [`Durability::Normal`])
//! a committed transaction is in the WAL file before the client gets its answer, so it survives a
//! crash or `kill -9` of this process; only an OS crash or power loss can lose the last few
//! transactions. [`Durability::Full`] (`synchronous=FULL`) fsyncs the WAL on every commit and
//! survives those too, at some cost in throughput (batching keeps it small under load).

use crate::config::ToolSpec;
use realtime_layer::{Clock, SystemClock};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::oneshot;

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// How long an idempotency key keeps answering with its first borrow.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Longest pause between two lease sweeps (shorter TTLs sweep every quarter TTL).
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Options of [`LicensePool::open_with`]; the default is the original's semantics (no leases,
/// system clock).
#[derive(Clone, Default)]
pub struct PoolOptions {
    /// Borrows not renewed (borrow or heartbeat) within this are returned by the pool with reason
    /// `expired`. `None`: a borrow is held until it is returned.
    pub lease_ttl: Option<Duration>,
    /// Time source for leases and idempotency windows (Unix ms); `None`: the system clock.
    pub clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for PoolOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolOptions")
            .field("lease_ttl", &self.lease_ttl)
            .field("custom_clock", &self.clock.is_some())
            .finish()
    }
}

/// Who a borrow is taken for, beyond tool and user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BorrowOptions {
    /// Tenant of the API key that asked (stored with the borrow; scopes returns and lists).
    pub tenant: Option<String>,
    /// Client-chosen key: a second borrow with the same key (and tenant) within
    /// [`IDEMPOTENCY_WINDOW`] answers with the first borrow.
    pub idempotency_key: Option<String>,
    /// Only answer with the borrow already stored under `idempotency_key`, never borrow anew
    /// (for a request that may be a replay, e.g. a reused signature).
    pub replay_only: bool,
}

/// Who asks to return, renew or list borrows: each given field must match the borrow's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// The borrowing user.
    pub user: Option<String>,
    /// The tenant of the borrow (API keys on).
    pub tenant: Option<String>,
}

/// Result of an operation on one existing borrow (return, heartbeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned<T> {
    /// Done.
    Done(T),
    /// No open borrow has that id.
    NotFound,
    /// The borrow belongs to another user or tenant; nothing changed.
    NotOwner,
}

/// A borrow the pool returned itself because its lease ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Borrow id.
    pub id: String,
    /// Tool of the borrow.
    pub tool: String,
    /// User of the borrow.
    pub user: String,
}

type ExpiryListener = Arc<dyn Fn(&[Expired]) + Send + Sync>;

/// Where expiries go: kept until a listener is set, then handed to it after each commit.
enum ExpirySink {
    Pending(Vec<Expired>),
    Listener(ExpiryListener),
}

/// How hard SQLite works to make commits durable (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives process crashes and `kill -9`; an OS crash may lose the
    /// last transactions.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced; survives power loss too.
    Full,
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A file path (created if missing).
    File(PathBuf),
    /// A private in-memory database (`:memory:`), gone when the pool closes.
    Memory,
}

impl DbLocation {
    /// `":memory:"` means in-memory, anything else is a file path.
    pub fn parse(s: &str) -> Self {
        if s == ":memory:" {
            DbLocation::Memory
        } else {
            DbLocation::File(PathBuf::from(s))
        }
    }
}

/// A successful borrow, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Borrow {
    /// Borrow id (UUID v4), used to return it.
    pub id: String,
    /// Tool name.
    pub tool: String,
    /// Borrowing user.
    pub user: String,
    /// RFC 3339 UTC timestamp with microseconds.
    pub borrowed_at: String,
    /// True when this borrow went above the tool's commit and was charged.
    pub overage: bool,
    /// When the lease ends unless renewed (leases on), RFC 3339 UTC.
    pub lease_expires_at: Option<String>,
}

/// Why a borrow was refused although the tool exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// All `total` licenses are out.
    Exhausted,
    /// `commit + max_overage` licenses are out.
    MaxOverage,
}

impl Denial {
    /// Every reason a borrow can be refused for.
    pub const ALL: [Denial; 2] = [Denial::Exhausted, Denial::MaxOverage];

    /// Short machine reason (`exhausted`, `max_overage`) used on the wire and in events.
    pub fn code(self) -> &'static str {
        match self {
            Denial::Exhausted => "exhausted",
            Denial::MaxOverage => "max_overage",
        }
    }
}

/// Result of a borrow attempt on a known tool.
#[derive(Debug, Clone)]
pub enum BorrowOutcome {
    /// The license is borrowed.
    Granted(Borrow),
    /// No license could be given.
    Denied(Denial),
    /// The idempotency key was used before with the same request: this is that first borrow
    /// (it may have been returned since); nothing new was borrowed.
    Replayed(Borrow),
    /// The idempotency key was used before with a different tool or user; nothing was borrowed.
    KeyConflict,
    /// `replay_only` was asked and nothing is stored under the key; nothing was borrowed.
    NothingToReplay,
}

/// A return that closed an open borrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    /// Tool of the borrow.
    pub tool: String,
    /// User of the borrow.
    pub user: String,
}

/// One recorded overage charge (kept after the license is returned).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OverageCharge {
    /// Charge id (UUID v4).
    pub id: String,
    /// Tool charged.
    pub tool: String,
    /// The borrow that caused it.
    pub borrow_id: String,
    /// The borrowing user.
    pub user: String,
    /// When it was charged (the borrow time), RFC 3339 UTC.
    pub charged_at: String,
    /// Amount charged (the tool's overage price at that time).
    pub amount: f64,
}

/// An open borrow as listed by `GET /borrows`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OpenBorrow {
    /// Borrow id.
    pub id: String,
    /// Tool name.
    pub tool: String,
    /// Borrowing user.
    pub user: String,
    /// RFC 3339 UTC timestamp.
    pub borrowed_at: String,
}

/// Per-tool status, the body of `GET /licenses/{tool}/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolStatus {
    /// Tool name.
    pub tool: String,
    /// Hard cap.
    pub total: u32,
    /// Licenses out now.
    pub borrowed: u32,
    /// `total - borrowed`.
    pub available: u32,
    /// Licenses in the contract.
    pub commit: u32,
    /// Extra licenses allowed above commit.
    pub max_overage: u32,
    /// Licenses out above commit now: `max(0, borrowed - commit)`.
    pub overage: u32,
    /// `borrowed <= commit` (a boolean, as in the original API).
    pub in_commit: bool,
    /// Price of the committed block.
    pub commit_price: f64,
    /// Price charged per overage borrow.
    pub overage_price_per_license: f64,
    /// Sum of all overage charges recorded for this tool (they persist after return).
    pub current_overage_cost: f64,
    /// `commit_price + current_overage_cost`.
    pub total_cost: f64,
    /// Number of overage borrows ever charged for this tool (an addition to the original API;
    /// 0 when read from a server that does not send it).
    #[serde(default)]
    pub overage_borrows: u64,
}

/// Failures of the pool itself (not business refusals).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    /// The tool is not in the catalogue.
    #[error("unknown tool")]
    UnknownTool,
    /// SQLite failed; the batch was rolled back.
    #[error("storage error: {0}")]
    Storage(String),
    /// The pool was closed.
    #[error("the license pool is shut down")]
    Closed,
}

impl From<rusqlite::Error> for PoolError {
    fn from(e: rusqlite::Error) -> Self {
        PoolError::Storage(e.to_string())
    }
}

/// Live counters for one tool, mirrored from SQLite after each commit.
#[derive(Debug, Clone, Copy, Default)]
struct ToolCounters {
    borrowed: u32,
    overage_borrows: u64,
    overage_charged: f64,
}

type Reply<T> = oneshot::Sender<Result<T, PoolError>>;

enum Job {
    Borrow {
        tool: usize,
        user: String,
        options: BorrowOptions,
        reply: Reply<BorrowOutcome>,
    },
    Return {
        id: String,
        owner: Owner,
        reply: Reply<Owned<Returned>>,
    },
    Heartbeat {
        id: String,
        owner: Owner,
        reply: Reply<Owned<Option<String>>>,
    },
    OpenBorrows {
        filter: Owner,
        reply: Reply<Vec<OpenBorrow>>,
    },
    Sweep {
        reply: Reply<usize>,
    },
    Charges {
        tool: Option<String>,
        reply: Reply<Vec<OverageCharge>>,
    },
}

/// What a job did, kept until the batch commits.
enum Done {
    Borrow(Reply<BorrowOutcome>, Result<BorrowOutcome, PoolError>),
    Return(Reply<Owned<Returned>>, Result<Owned<Returned>, PoolError>),
    Heartbeat(
        Reply<Owned<Option<String>>>,
        Result<Owned<Option<String>>, PoolError>,
    ),
    Sweep(Reply<usize>, Result<usize, PoolError>),
    OpenBorrows(Reply<Vec<OpenBorrow>>, Result<Vec<OpenBorrow>, PoolError>),
    Charges(
        Reply<Vec<OverageCharge>>,
        Result<Vec<OverageCharge>, PoolError>,
    ),
}

struct Shared {
    tools: Vec<ToolSpec>,
    index: HashMap<String, usize>,
    counters: RwLock<Vec<ToolCounters>>,
    sender: RwLock<Option<mpsc::Sender<Job>>>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    lease_ttl_ms: Option<u64>,
    clock: Arc<dyn Clock>,
    expiries: std::sync::Mutex<ExpirySink>,
}

/// Handle to the license state; cheap to clone, safe to share across tasks.
#[derive(Clone)]
pub struct LicensePool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LicensePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicensePool")
            .field("tools", &self.shared.tools.len())
            .finish()
    }
}

impl LicensePool {
    /// Opens (creating if needed) the database, records the catalogue in it, loads the live
    /// counters and starts the writer thread.
    ///
    /// Open borrows of tools no longer in the catalogue stay in the database and can still be
    /// returned; they are not counted anywhere.
    pub fn open(
        location: &DbLocation,
        tools: Vec<ToolSpec>,
        durability: Durability,
    ) -> Result<Self, PoolError> {
        Self::open_with(location, tools, durability, PoolOptions::default())
    }

    /// [`LicensePool::open`] with leases and/or another clock.
    pub fn open_with(
        location: &DbLocation,
        tools: Vec<ToolSpec>,
        durability: Durability,
        options: PoolOptions,
    ) -> Result<Self, PoolError> {
        let clock = options
            .clock
            .unwrap_or_else(|| Arc::new(SystemClock::new()) as Arc<dyn Clock>);
        let lease_ttl_ms = options
            .lease_ttl
            .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        let mut tools = tools;
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let conn = match location {
            DbLocation::File(path) => Connection::open(path)?,
            DbLocation::Memory => Connection::open_in_memory()?,
        };
        prepare_schema(&conn, durability, clock.now_ms())?;
        let counters = load_catalogue(&conn, &tools)?;
        let index = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::new(Shared {
            tools,
            index,
            counters: RwLock::new(counters),
            sender: RwLock::new(Some(sender)),
            writer: std::sync::Mutex::new(None),
            lease_ttl_ms,
            clock,
            expiries: std::sync::Mutex::new(ExpirySink::Pending(Vec::new())),
        });
        let writer_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("license-db-writer".into())
            .spawn(move || writer_loop(conn, receiver, &writer_shared))
            .map_err(|e| PoolError::Storage(format!("cannot start writer thread: {e}")))?;
        *lock_mutex(&shared.writer) = Some(handle);
        Ok(LicensePool { shared })
    }

    /// The catalogue, sorted by name.
    pub fn tools(&self) -> &[ToolSpec] {
        &self.shared.tools
    }

    /// Borrows one license of `tool` for `user`.
    pub async fn borrow(&self, tool: &str, user: &str) -> Result<BorrowOutcome, PoolError> {
        self.borrow_with(tool, user, BorrowOptions::default()).await
    }

    /// Borrows one license of `tool` for `user`, for a tenant and/or with an idempotency key.
    pub async fn borrow_with(
        &self,
        tool: &str,
        user: &str,
        options: BorrowOptions,
    ) -> Result<BorrowOutcome, PoolError> {
        let tool = *self.shared.index.get(tool).ok_or(PoolError::UnknownTool)?;
        self.ask(|reply| Job::Borrow {
            tool,
            user: user.to_string(),
            options,
            reply,
        })
        .await
    }

    /// Returns the borrow `id` whoever borrowed it; `Ok(None)` when no open borrow has that id.
    pub async fn return_license(&self, id: &str) -> Result<Option<Returned>, PoolError> {
        match self.return_as(id, Owner::default()).await? {
            Owned::Done(r) => Ok(Some(r)),
            Owned::NotFound | Owned::NotOwner => Ok(None),
        }
    }

    /// Returns the borrow `id` if it belongs to `owner` (each given field must match).
    pub async fn return_as(&self, id: &str, owner: Owner) -> Result<Owned<Returned>, PoolError> {
        self.ask(|reply| Job::Return {
            id: id.to_string(),
            owner,
            reply,
        })
        .await
    }

    /// Renews the lease of borrow `id` if it belongs to `owner`; answers the new lease end
    /// (RFC 3339), `None` when leases are off.
    pub async fn heartbeat(
        &self,
        id: &str,
        owner: Owner,
    ) -> Result<Owned<Option<String>>, PoolError> {
        self.ask(|reply| Job::Heartbeat {
            id: id.to_string(),
            owner,
            reply,
        })
        .await
    }

    /// Open borrows, newest first, of the user and/or tenant in `filter` (all when empty).
    pub async fn open_borrows(&self, filter: Owner) -> Result<Vec<OpenBorrow>, PoolError> {
        self.ask(|reply| Job::OpenBorrows { filter, reply }).await
    }

    /// Expires every borrow whose lease has run out now, without waiting for the next sweep;
    /// answers how many expired (0 when leases are off).
    pub async fn expire_due(&self) -> Result<usize, PoolError> {
        self.ask(|reply| Job::Sweep { reply }).await
    }

    /// The lease length, when leases are on.
    pub fn lease_ttl(&self) -> Option<Duration> {
        self.shared.lease_ttl_ms.map(Duration::from_millis)
    }

    /// Sets the function told about expired borrows (after their transaction commits, on the
    /// writer thread: keep it short). Expiries that happened before it was set are handed to it
    /// now. Replaces any previous listener.
    pub fn on_expired(&self, listener: impl Fn(&[Expired]) + Send + Sync + 'static) {
        let listener: ExpiryListener = Arc::new(listener);
        let mut sink = lock_mutex(&self.shared.expiries);
        if let ExpirySink::Pending(pending) = &*sink {
            if !pending.is_empty() {
                listener(pending);
            }
        }
        *sink = ExpirySink::Listener(listener);
    }

    /// Recorded overage charges, newest first, optionally of one tool only.
    pub async fn overage_charges(
        &self,
        tool: Option<String>,
    ) -> Result<Vec<OverageCharge>, PoolError> {
        self.ask(|reply| Job::Charges { tool, reply }).await
    }

    /// Status of every tool, sorted by name, from the in-memory counters (no SQLite access).
    pub fn status(&self) -> Vec<ToolStatus> {
        let counters = read_lock(&self.shared.counters);
        self.shared
            .tools
            .iter()
            .zip(counters.iter())
            .map(|(spec, c)| tool_status(spec, c))
            .collect()
    }

    /// Status of one tool, `None` when unknown.
    pub fn tool_status(&self, tool: &str) -> Option<ToolStatus> {
        let i = *self.shared.index.get(tool)?;
        let counters = read_lock(&self.shared.counters);
        Some(tool_status(&self.shared.tools[i], &counters[i]))
    }

    /// `(name, total, commit, borrowed)` per tool: the cheap feed for the realtime status source.
    pub fn occupancy(&self) -> Vec<(String, u32, u32, u32)> {
        let counters = read_lock(&self.shared.counters);
        self.shared
            .tools
            .iter()
            .zip(counters.iter())
            .map(|(t, c)| (t.name.clone(), t.total, t.commit, c.borrowed))
            .collect()
    }

    /// Stops accepting work, lets the writer finish what is queued and waits for it; the
    /// connection is closed (and the WAL checkpointed) when this returns. Idempotent.
    pub fn close(&self) {
        write_lock(&self.shared.sender).take();
        let handle = lock_mutex(&self.shared.writer).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("license-db-writer thread panicked");
            }
        }
        // The listener may hold what holds this pool (the dashboard's status source): let go.
        *lock_mutex(&self.shared.expiries) = ExpirySink::Pending(Vec::new());
    }

    async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, PoolError> {
        let (reply, answer) = oneshot::channel();
        self.submit(job(reply))?;
        answer.await.map_err(|_| PoolError::Closed)?
    }

    fn submit(&self, job: Job) -> Result<(), PoolError> {
        let sender = read_lock(&self.shared.sender);
        match sender.as_ref() {
            Some(s) => s.send(job).map_err(|_| PoolError::Closed),
            None => Err(PoolError::Closed),
        }
    }
}

fn tool_status(spec: &ToolSpec, c: &ToolCounters) -> ToolStatus {
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
fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
fn lock_mutex<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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
CREATE TABLE IF NOT EXISTS overage_charges (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    tool TEXT NOT NULL,
    borrow_id TEXT NOT NULL,
    user TEXT NOT NULL,
    charged_at TEXT NOT NULL,
    amount REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS overage_charges_by_tool ON overage_charges(tool);
-- Idempotency keys of borrows, per tenant ('' without API keys), kept 24 h: the borrow a retry
-- answers with.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    tool TEXT NOT NULL,
    user TEXT NOT NULL,
    borrow_id TEXT NOT NULL,
    borrowed_at TEXT NOT NULL,
    is_overage INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys(created_ms);
";

/// Columns added after the first release: databases created before get them on open.
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("open_borrows", "tenant", "TEXT"),
    ("open_borrows", "renewed_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("borrow_history", "reason", "TEXT"),
];

/// WAL size (pages) at which a commit also checkpoints (copies the WAL into the database file,
/// with an fsync). SQLite's default; measured against 4000: bigger checkpoints stall the writer
/// longer (p99 borrow latency under load 21 ms vs 63 ms) for no throughput gain.
const AUTOCHECKPOINT_PAGES: u32 = 1000;

fn prepare_schema(conn: &Connection, durability: Durability, now_ms: u64) -> Result<(), PoolError> {
    // journal_mode answers with a row ("wal", or "memory" for :memory:), so query it.
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000; \
         PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}; {SCHEMA}"
    ))?;
    for (table, column, decl) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    // Borrows from before leases existed count as renewed when first opened with them.
    conn.execute(
        "UPDATE open_borrows SET renewed_ms = ?1 WHERE renewed_ms = 0",
        [ms_i64(now_ms)],
    )?;
    Ok(())
}

/// Upserts the catalogue and reads the live counters of each tool.
fn load_catalogue(conn: &Connection, tools: &[ToolSpec]) -> Result<Vec<ToolCounters>, PoolError> {
    let tx = conn.unchecked_transaction()?;
    let mut counters = Vec::with_capacity(tools.len());
    for t in tools {
        tx.execute(
            "INSERT INTO tools(name, total, commit_qty, max_overage, commit_price, overage_price_per_license)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(name) DO UPDATE SET total=excluded.total, commit_qty=excluded.commit_qty,
                 max_overage=excluded.max_overage, commit_price=excluded.commit_price,
                 overage_price_per_license=excluded.overage_price_per_license",
            params![t.name, t.total, t.commit, t.max_overage, t.commit_price, t.overage_price_per_license],
        )?;
        let borrowed: u32 = tx.query_row(
            "SELECT COUNT(*) FROM open_borrows WHERE tool = ?1",
            [&t.name],
            |r| r.get(0),
        )?;
        let (overage_borrows, overage_charged): (i64, f64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(amount), 0.0) FROM overage_charges WHERE tool = ?1",
            [&t.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let overage_borrows = u64::try_from(overage_borrows).unwrap_or(0);
        if borrowed > t.total {
            tracing::warn!(
                tool = %t.name, borrowed, total = t.total,
                "more licenses are out than the configured total; new borrows fail until enough are returned"
            );
        }
        counters.push(ToolCounters {
            borrowed,
            overage_borrows,
            overage_charged,
        });
    }
    tx.commit()?;
    Ok(counters)
}

fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

fn format_rfc3339(at: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    at.format(&fmt)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000000Z"))
}

fn ms_rfc3339(ms: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format_rfc3339(at)
}

/// SQLite integers are i64; Unix ms fit until the year 292 million.
fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn writer_loop(mut conn: Connection, receiver: mpsc::Receiver<Job>, shared: &Shared) {
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
            run_batch(&mut conn, batch, shared, sweep);
        }
    }
}

fn run_batch(conn: &mut Connection, batch: Vec<Job>, shared: &Shared, sweep: bool) {
    let mut done = Vec::with_capacity(batch.len());
    let mut expired = Vec::new();
    // Per-tool changes, applied to the shared counters only after COMMIT succeeds.
    let mut delta: Vec<(usize, i64, u64, f64)> = Vec::new();
    let outcome = (|| -> Result<(), PoolError> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Expire first, so a borrow in this batch can take a license that just came back.
        let swept = if sweep {
            expire_in_tx(&tx, shared, &mut expired, &mut delta)
        } else {
            Ok(())
        };
        for job in batch {
            done.push(run_job(&tx, job, shared, &mut delta, &mut expired));
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
        Ok(())
    })();
    if let Err(e) = outcome {
        tracing::error!(error = %e, jobs = done.len(), "license batch rolled back");
        for d in done {
            d.fail_writes(e.clone());
        }
        return;
    }
    if !delta.is_empty() {
        let mut counters = write_lock(&shared.counters);
        for (tool, borrowed, charges, amount) in delta {
            let c = &mut counters[tool];
            c.borrowed = (i64::from(c.borrowed) + borrowed).max(0) as u32;
            c.overage_borrows += charges;
            c.overage_charged += amount;
        }
    }
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
            let r = borrow_in_tx(tx, spec, &user, &options, now_ms, shared.lease_ttl_ms);
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
        Job::Charges { tool, reply } => Done::Charges(
            reply,
            list_charges(tx, tool.as_deref()).map_err(PoolError::from),
        ),
    }
}

fn borrow_in_tx(
    tx: &rusqlite::Transaction<'_>,
    spec: &ToolSpec,
    user: &str,
    options: &BorrowOptions,
    now_ms: u64,
    lease_ttl_ms: Option<u64>,
) -> Result<BorrowOutcome, rusqlite::Error> {
    let scope = options.tenant.as_deref().unwrap_or("");
    if let Some(key) = &options.idempotency_key {
        let window_ms = IDEMPOTENCY_WINDOW.as_millis() as u64;
        tx.prepare_cached("DELETE FROM idempotency_keys WHERE created_ms < ?1")?
            .execute([ms_i64(now_ms.saturating_sub(window_ms))])?;
        let first = tx
            .prepare_cached(
                "SELECT tool, user, borrow_id, borrowed_at, is_overage FROM idempotency_keys
                 WHERE scope = ?1 AND key = ?2",
            )?
            .query_row([scope, key.as_str()], |r| {
                Ok(Borrow {
                    tool: r.get(0)?,
                    user: r.get(1)?,
                    id: r.get(2)?,
                    borrowed_at: r.get(3)?,
                    overage: r.get(4)?,
                    lease_expires_at: None,
                })
            })
            .optional()?;
        if let Some(mut first) = first {
            if first.tool != spec.name || first.user != user {
                return Ok(BorrowOutcome::KeyConflict);
            }
            first.lease_expires_at = lease_end(tx, &first.id, lease_ttl_ms)?;
            return Ok(BorrowOutcome::Replayed(first));
        }
    }
    if options.replay_only {
        return Ok(BorrowOutcome::NothingToReplay);
    }
    let borrowed: u32 = tx
        .prepare_cached("SELECT COUNT(*) FROM open_borrows WHERE tool = ?1")?
        .query_row([&spec.name], |r| r.get(0))?;
    if borrowed >= spec.total {
        return Ok(BorrowOutcome::Denied(Denial::Exhausted));
    }
    if u64::from(borrowed) >= u64::from(spec.commit) + u64::from(spec.max_overage) {
        return Ok(BorrowOutcome::Denied(Denial::MaxOverage));
    }
    let overage = borrowed >= spec.commit;
    let id = uuid::Uuid::new_v4().to_string();
    let borrowed_at = now_rfc3339();
    tx.prepare_cached(
        "INSERT INTO open_borrows(id, tool, user, borrowed_at, is_overage, tenant, renewed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        spec.name,
        user,
        borrowed_at,
        overage,
        options.tenant,
        ms_i64(now_ms)
    ])?;
    if overage {
        tx.prepare_cached(
            "INSERT INTO overage_charges(id, tool, borrow_id, user, charged_at, amount)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            uuid::Uuid::new_v4().to_string(),
            spec.name,
            id,
            user,
            borrowed_at,
            spec.overage_price_per_license
        ])?;
    }
    if let Some(key) = &options.idempotency_key {
        tx.prepare_cached(
            "INSERT INTO idempotency_keys(scope, key, tool, user, borrow_id, borrowed_at, is_overage, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            scope,
            key,
            spec.name,
            user,
            id,
            borrowed_at,
            overage,
            ms_i64(now_ms)
        ])?;
    }
    Ok(BorrowOutcome::Granted(Borrow {
        id,
        tool: spec.name.clone(),
        user: user.to_string(),
        borrowed_at,
        overage,
        lease_expires_at: lease_ttl_ms.map(|ttl| ms_rfc3339(now_ms.saturating_add(ttl))),
    }))
}

/// The lease end of an open borrow (None when leases are off or the borrow is closed).
fn lease_end(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    lease_ttl_ms: Option<u64>,
) -> Result<Option<String>, rusqlite::Error> {
    let Some(ttl) = lease_ttl_ms else {
        return Ok(None);
    };
    let renewed: Option<i64> = tx
        .prepare_cached("SELECT renewed_ms FROM open_borrows WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(renewed.map(|ms| ms_rfc3339(u64::try_from(ms).unwrap_or(0).saturating_add(ttl))))
}

/// Whether the open borrow `id` may be touched by `owner`; `None` when there is no such borrow.
fn owned_by(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    owner: &Owner,
) -> Result<Option<bool>, rusqlite::Error> {
    let row = tx
        .prepare_cached("SELECT user, tenant FROM open_borrows WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .optional()?;
    Ok(row.map(|(user, tenant)| {
        owner.user.as_ref().is_none_or(|u| *u == user)
            && owner
                .tenant
                .as_ref()
                .is_none_or(|t| Some(t) == tenant.as_ref())
    }))
}

fn return_in_tx(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    owner: &Owner,
    reason: Option<&str>,
) -> Result<Owned<Returned>, rusqlite::Error> {
    match owned_by(tx, id, owner)? {
        None => return Ok(Owned::NotFound),
        Some(false) => return Ok(Owned::NotOwner),
        Some(true) => {}
    }
    let closed = tx
        .prepare_cached(
            "DELETE FROM open_borrows WHERE id = ?1 RETURNING tool, user, borrowed_at, is_overage",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .optional()?;
    let Some((tool, user, borrowed_at, overage)) = closed else {
        return Ok(Owned::NotFound);
    };
    tx.prepare_cached(
        "INSERT INTO borrow_history(id, tool, user, borrowed_at, returned_at, is_overage, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        tool,
        user,
        borrowed_at,
        now_rfc3339(),
        overage,
        reason
    ])?;
    Ok(Owned::Done(Returned { tool, user }))
}

fn heartbeat_in_tx(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    owner: &Owner,
    now_ms: u64,
    lease_ttl_ms: Option<u64>,
) -> Result<Owned<Option<String>>, rusqlite::Error> {
    match owned_by(tx, id, owner)? {
        None => return Ok(Owned::NotFound),
        Some(false) => return Ok(Owned::NotOwner),
        Some(true) => {}
    }
    tx.prepare_cached("UPDATE open_borrows SET renewed_ms = ?2 WHERE id = ?1")?
        .execute(params![id, ms_i64(now_ms)])?;
    Ok(Owned::Done(
        lease_ttl_ms.map(|ttl| ms_rfc3339(now_ms.saturating_add(ttl))),
    ))
}

/// Returns every borrow whose lease ran out, like a client return with reason `expired`.
fn expire_in_tx(
    tx: &rusqlite::Transaction<'_>,
    shared: &Shared,
    expired: &mut Vec<Expired>,
    delta: &mut Vec<(usize, i64, u64, f64)>,
) -> Result<(), PoolError> {
    let Some(ttl) = shared.lease_ttl_ms else {
        return Ok(());
    };
    let cutoff = shared.clock.now_ms().saturating_sub(ttl);
    let due: Vec<String> = tx
        .prepare_cached("SELECT id FROM open_borrows WHERE renewed_ms < ?1 ORDER BY renewed_ms")?
        .query_map([ms_i64(cutoff)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in due {
        if let Owned::Done(ret) = return_in_tx(tx, &id, &Owner::default(), Some("expired"))? {
            if let Some(&i) = shared.index.get(&ret.tool) {
                delta.push((i, -1, 0, 0.0));
            }
            expired.push(Expired {
                id,
                tool: ret.tool,
                user: ret.user,
            });
        }
    }
    Ok(())
}

fn list_open(
    tx: &rusqlite::Transaction<'_>,
    filter: &Owner,
) -> Result<Vec<OpenBorrow>, rusqlite::Error> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, tool, user, borrowed_at FROM open_borrows
         WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR tenant = ?2)
         ORDER BY borrowed_at DESC, id DESC",
    )?;
    let rows = stmt.query_map([filter.user.as_deref(), filter.tenant.as_deref()], |r| {
        Ok(OpenBorrow {
            id: r.get(0)?,
            tool: r.get(1)?,
            user: r.get(2)?,
            borrowed_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

fn list_charges(
    tx: &rusqlite::Transaction<'_>,
    tool: Option<&str>,
) -> Result<Vec<OverageCharge>, rusqlite::Error> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, tool, borrow_id, user, charged_at, amount FROM overage_charges
         WHERE (?1 IS NULL OR tool = ?1) ORDER BY seq DESC",
    )?;
    let rows = stmt.query_map([tool], |r| {
        Ok(OverageCharge {
            id: r.get(0)?,
            tool: r.get(1)?,
            borrow_id: r.get(2)?,
            user: r.get(3)?,
            charged_at: r.get(4)?,
            amount: r.get(5)?,
        })
    })?;
    rows.collect()
}

impl Done {
    fn error(&self) -> Option<&PoolError> {
        match self {
            Done::Borrow(_, Err(e))
            | Done::Return(_, Err(e))
            | Done::Heartbeat(_, Err(e))
            | Done::Sweep(_, Err(e))
            | Done::OpenBorrows(_, Err(e))
            | Done::Charges(_, Err(e)) => Some(e),
            _ => None,
        }
    }

    /// After a rollback: writes report the error; reads keep their (still true) answer.
    fn fail_writes(self, err: PoolError) {
        match self {
            Done::Borrow(reply, _) => {
                let _ = reply.send(Err(err));
            }
            Done::Return(reply, _) => {
                let _ = reply.send(Err(err));
            }
            Done::Heartbeat(reply, _) => {
                let _ = reply.send(Err(err));
            }
            Done::Sweep(reply, _) => {
                let _ = reply.send(Err(err));
            }
            other => other.send(),
        }
    }

    // A send fails only when the caller gave up waiting (client disconnected); nothing to do.
    fn send(self) {
        match self {
            Done::Borrow(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Return(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Heartbeat(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Sweep(reply, r) => {
                let _ = reply.send(r);
            }
            Done::OpenBorrows(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Charges(reply, r) => {
                let _ = reply.send(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_tools;

    fn spec(name: &str, total: u32, commit: u32, max_overage: u32) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            total,
            commit,
            max_overage,
            commit_price: 100.0,
            overage_price_per_license: 10.0,
        }
    }

    #[tokio::test]
    async fn limits_overage_and_charges() {
        let pool = LicensePool::open(
            &DbLocation::Memory,
            vec![spec("T", 5, 2, 1)],
            Durability::Normal,
        )
        .unwrap();
        let mut overage = vec![];
        let mut ids = vec![];
        for _ in 0..3 {
            match pool.borrow("T", "u").await.unwrap() {
                BorrowOutcome::Granted(b) => {
                    overage.push(b.overage);
                    ids.push(b.id);
                }
                other => panic!("not granted: {other:?}"),
            }
        }
        assert_eq!(overage, vec![false, false, true]);
        assert!(matches!(
            pool.borrow("T", "u").await.unwrap(),
            BorrowOutcome::Denied(Denial::MaxOverage)
        ));
        assert!(matches!(
            pool.borrow("nope", "u").await,
            Err(PoolError::UnknownTool)
        ));
        let s = pool.tool_status("T").unwrap();
        assert_eq!((s.borrowed, s.overage, s.available), (3, 1, 2));
        assert_eq!(s.current_overage_cost, 10.0);
        assert_eq!(s.total_cost, 110.0);
        for id in &ids {
            assert!(pool.return_license(id).await.unwrap().is_some());
        }
        assert!(pool.return_license(&ids[0]).await.unwrap().is_none());
        let s = pool.tool_status("T").unwrap();
        assert_eq!(s.borrowed, 0);
        assert_eq!(s.current_overage_cost, 10.0, "charges persist after return");
        assert_eq!(pool.overage_charges(None).await.unwrap().len(), 1);
        pool.close();
        assert!(matches!(
            pool.borrow("T", "u").await,
            Err(PoolError::Closed)
        ));
    }

    #[tokio::test]
    async fn exhausted_when_commit_equals_total() {
        let pool = LicensePool::open(
            &DbLocation::Memory,
            vec![spec("T", 1, 1, 0)],
            Durability::Full,
        )
        .unwrap();
        assert!(matches!(
            pool.borrow("T", "u").await.unwrap(),
            BorrowOutcome::Granted(_)
        ));
        assert!(matches!(
            pool.borrow("T", "u").await.unwrap(),
            BorrowOutcome::Denied(Denial::Exhausted)
        ));
    }

    #[tokio::test]
    async fn a_storage_error_rolls_back_the_whole_borrow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.db");
        let pool = LicensePool::open(
            &DbLocation::File(path.clone()),
            vec![spec("T", 5, 0, 5)], // every borrow is overage, so it also writes a charge
            Durability::Normal,
        )
        .unwrap();
        // Break the charge insert behind the pool's back.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("DROP TABLE overage_charges").unwrap();
        let err = pool.borrow("T", "u").await.unwrap_err();
        assert!(matches!(err, PoolError::Storage(_)), "{err:?}");
        assert_eq!(pool.tool_status("T").unwrap().borrowed, 0);
        let rows: i64 = other
            .query_row("SELECT COUNT(*) FROM open_borrows", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            rows, 0,
            "the borrow row was rolled back with the failed charge"
        );
    }

    #[tokio::test]
    async fn a_database_from_before_leases_and_keys_is_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE open_borrows (id TEXT PRIMARY KEY, tool TEXT NOT NULL, user TEXT NOT NULL,
                 borrowed_at TEXT NOT NULL, is_overage INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE borrow_history (id TEXT NOT NULL, tool TEXT NOT NULL, user TEXT NOT NULL,
                 borrowed_at TEXT NOT NULL, returned_at TEXT NOT NULL, is_overage INTEGER NOT NULL);
             INSERT INTO open_borrows VALUES ('old-1', 'T', 'u', '2026-01-01T00:00:00.000000Z', 0);",
        )
        .unwrap();
        drop(old);
        let clock = realtime_layer::ManualClock::new(1_800_000_000_000);
        let pool = LicensePool::open_with(
            &DbLocation::File(path),
            vec![spec("T", 5, 5, 0)],
            Durability::Normal,
            PoolOptions {
                lease_ttl: Some(Duration::from_secs(10)),
                clock: Some(Arc::new(clock.clone())),
            },
        )
        .unwrap();
        assert_eq!(pool.tool_status("T").unwrap().borrowed, 1);
        // The old borrow's lease starts at the upgrade, not at the epoch.
        assert_eq!(pool.expire_due().await.unwrap(), 0);
        let options = BorrowOptions {
            tenant: Some("acme".into()),
            idempotency_key: Some("k".into()),
            replay_only: false,
        };
        let BorrowOutcome::Granted(b) = pool.borrow_with("T", "v", options.clone()).await.unwrap()
        else {
            panic!("not granted")
        };
        let BorrowOutcome::Replayed(again) = pool.borrow_with("T", "v", options).await.unwrap()
        else {
            panic!("not replayed")
        };
        assert_eq!(again.id, b.id);
        clock.advance(Duration::from_secs(11));
        // (The writer may sweep by itself first, so only the outcome is checked.)
        pool.expire_due().await.unwrap();
        assert_eq!(pool.tool_status("T").unwrap().borrowed, 0);
    }

    #[tokio::test]
    async fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let loc = DbLocation::File(dir.path().join("x.db"));
        let pool = LicensePool::open(&loc, default_tools(), Durability::Normal).unwrap();
        for _ in 0..7 {
            pool.borrow("ECU Development Suite", "a").await.unwrap();
        }
        pool.close();
        let pool = LicensePool::open(&loc, default_tools(), Durability::Normal).unwrap();
        let s = pool.tool_status("ECU Development Suite").unwrap();
        assert_eq!(s.borrowed, 7);
        assert_eq!(s.overage_borrows, 2);
        let of = |user: &str| Owner {
            user: Some(user.into()),
            tenant: None,
        };
        assert_eq!(pool.open_borrows(of("a")).await.unwrap().len(), 7);
        assert!(pool.open_borrows(of("b")).await.unwrap().is_empty());
    }
}
