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
//! # Several processes on one database
//! Several license servers may share one database file (replicas behind a load balancer): SQLite
//! serialises their write transactions, so grants, charges, idempotency keys and lease expiry
//! stay exact across them (a borrow on one process and its return on another, a retry with the
//! same `Idempotency-Key` on the other process answering the first borrow, an expired lease
//! returned by whichever process sweeps first and found gone by the other). The counters follow
//! the database, not this process: a status read checks `PRAGMA data_version` and re-reads the
//! counts in one query only when another connection committed (module `live`), so a process
//! alone on its database pays one cheap `PRAGMA` per status read and nothing else. Overage sums
//! are kept per tool in the database (`overage_totals`, by triggers), so every process reports
//! the same cost.
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
//!
//! # Layout
//! - `types`: the public data types (options, outcomes, statuses, errors);
//! - `state`: what the handles and the writer thread share (catalogue, live counters);
//! - `live`: the live counters and how they follow other processes' commits;
//! - `jobs`: the messages to the writer thread and their answers;
//! - `writer`: the writer thread (batching, sweeps, publishing after `COMMIT`);
//! - `transactions`: the SQL of each operation inside a batch transaction;
//! - `replays`: the replay memory of signed borrows (checked in the borrow's transaction);
//! - `schema`: tables, upgrades on open, loading the catalogue;
//! - `timestamps`: the stored time formats.

mod jobs;
mod lists;
mod live;
mod reader;
mod replays;
mod schema;
mod state;
mod timestamps;
mod transactions;
mod types;
mod writer;

pub use types::{
    Borrow, BorrowOptions, BorrowOutcome, ChargesPage, ChargesQuery, Closed, ClosedBorrow,
    DbLocation, Denial, Durability, Expired, OpenBorrow, OverageCharge, Owned, Owner, PoolError,
    PoolOptions, ReplayClaim, Returned, ToolStatus, IDEMPOTENCY_WINDOW, MAX_CHARGES_PAGE,
    MAX_REMEMBERED_SIGNATURES,
};
pub use writer::MAX_BATCH;

use crate::config::ToolSpec;
use jobs::{Job, Reply};
use live::{Live, WriterMark};
use reader::Reader;
use realtime_layer::{Clock, SystemClock};
use replays::ReplayMemory;
use rusqlite::Connection;
use schema::{count_replays, load_catalogue, prepare_schema};
use state::{lock_mutex, read_lock, tool_status, write_lock, ExpiryListener, ExpirySink, Shared};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;
use writer::writer_loop;

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
        let mut conn = match location {
            DbLocation::File(path) => Connection::open(path)?,
            DbLocation::Memory => Connection::open_in_memory()?,
        };
        // Room for every statement of the batch transactions, the version check and the counts.
        conn.set_prepared_statement_cache_capacity(32);
        prepare_schema(&mut conn, durability, clock.now_ms())?;
        let replay_rows = count_replays(&conn, clock.now_ms())?;
        let index: HashMap<String, usize> = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let counters = load_catalogue(&mut conn, &tools, &index)?;
        let (live, mark) = match location {
            DbLocation::File(path) => Live::watching(path, &conn, &index)?,
            DbLocation::Memory => (Live::private(counters), WriterMark::default()),
        };
        let (sender, receiver) = mpsc::channel();
        let reader = match location {
            DbLocation::File(path) => Some(Arc::new(Reader::new(path))),
            DbLocation::Memory => None,
        };
        let shared = Arc::new(Shared {
            tools,
            index,
            live,
            sender: RwLock::new(Some(sender)),
            writer: std::sync::Mutex::new(None),
            lease_ttl_ms,
            clock,
            expiries: std::sync::Mutex::new(ExpirySink::Pending(Vec::new())),
            reader,
            replays: ReplayMemory::new(replay_rows),
        });
        let writer_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("license-db-writer".into())
            .spawn(move || writer_loop(conn, mark, receiver, &writer_shared))
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

    /// Open borrows, newest first, that `filter` matches (all when empty). Read outside the
    /// writer's transaction (see the `reader` module).
    pub async fn open_borrows(&self, filter: Owner) -> Result<Vec<OpenBorrow>, PoolError> {
        match self.reader()? {
            Some(reader) => reader.read(move |c| lists::list_open(c, &filter)).await,
            None => self.ask(|reply| Job::OpenBorrows { filter, reply }).await,
        }
    }

    /// Expires every borrow whose lease has run out now, without waiting for the next sweep;
    /// answers how many expired (0 when leases are off).
    pub async fn expire_due(&self) -> Result<usize, PoolError> {
        self.ask(|reply| Job::Sweep { reply }).await
    }

    /// Nonce-less signed borrows accepted although their signature was seen before (the default
    /// without `--strict-replay`), since this pool opened.
    pub fn signature_repeats(&self) -> u64 {
        self.shared.replays.repeats()
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

    /// One page of recorded overage charges, newest first, that `query` selects. Read outside
    /// the writer's transaction (see the `reader` module): a long list never delays a borrow.
    pub async fn overage_charges(&self, query: ChargesQuery) -> Result<ChargesPage, PoolError> {
        match self.reader()? {
            Some(reader) => reader.read(move |c| lists::list_charges(c, &query)).await,
            None => self.ask(|reply| Job::Charges { query, reply }).await,
        }
    }

    /// The reader of a database file (`None` for `:memory:`); `Closed` once the pool is.
    fn reader(&self) -> Result<Option<&Arc<Reader>>, PoolError> {
        if read_lock(&self.shared.sender).is_none() {
            return Err(PoolError::Closed);
        }
        Ok(self.shared.reader.as_ref())
    }

    /// Status of every tool, sorted by name: the database's state, from the in-memory
    /// counters (see [`LicensePool::occupancy`] for what a read costs).
    pub fn status(&self) -> Vec<ToolStatus> {
        let shared = &self.shared;
        shared.live.read(&shared.index, |counters| {
            shared
                .tools
                .iter()
                .zip(counters)
                .map(|(spec, c)| tool_status(spec, c))
                .collect()
        })
    }

    /// Status of one tool, `None` when unknown.
    pub fn tool_status(&self, tool: &str) -> Option<ToolStatus> {
        let i = *self.shared.index.get(tool)?;
        let spec = &self.shared.tools[i];
        Some(self.shared.live.read(&self.shared.index, |counters| {
            tool_status(spec, &counters[i])
        }))
    }

    /// `(name, total, commit, borrowed)` per tool: the cheap feed for the realtime status source.
    ///
    /// Like [`LicensePool::status`] it answers the database's state, whichever process wrote
    /// it: one `PRAGMA data_version` (a few microseconds, no await) tells whether another
    /// connection committed since the counters were last known exact, and only then are the
    /// counts re-read, in one query. A process alone on its database never re-reads.
    pub fn occupancy(&self) -> Vec<(String, u32, u32, u32)> {
        let shared = &self.shared;
        shared.live.read(&shared.index, |counters| {
            shared
                .tools
                .iter()
                .zip(counters)
                .map(|(t, c)| (t.name.clone(), t.total, t.commit, c.borrowed))
                .collect()
        })
    }

    /// How many times the live counters were re-read from the database because another
    /// connection (another process on the same file) had committed; 0 for a process alone on
    /// its database.
    pub fn resyncs(&self) -> u64 {
        self.shared.live.resyncs()
    }

    /// Stops accepting work, lets the writer finish what is queued and waits for it; the
    /// connection is closed (and the WAL checkpointed) when this returns. Idempotent.
    pub fn close(&self) {
        write_lock(&self.shared.sender).take();
        if let Some(reader) = &self.shared.reader {
            reader.close();
        }
        let handle = lock_mutex(&self.shared.writer).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("license-db-writer thread panicked");
            }
        }
        self.shared.live.close();
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

#[cfg(test)]
mod shared_db_tests;
#[cfg(test)]
mod tests;
