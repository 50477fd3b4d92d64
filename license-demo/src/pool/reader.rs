//! Reads outside the writer: the lists (`GET /borrows`, `GET /overage-charges`) are answered on
//! read-only connections of their own, never inside the writer's batch transaction.
//!
//! In WAL mode a reader sees the last committed state and neither waits for the writer nor makes
//! it wait, so a slow or large read cannot hold up borrows (inside the writer's transaction it
//! would: every queued borrow waits for the batch to commit). Reads run on Tokio's blocking pool,
//! at most [`READERS`] at once (the others wait their turn), each bounded by its page size.
//! Answers are consistent with every acknowledged write: a write is answered after its `COMMIT`.
//!
//! A `:memory:` database cannot be opened twice: its reads stay on the writer (bounded by the
//! same page sizes).

use super::types::PoolError;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Reads running at once (and read-only connections kept open).
pub(super) const READERS: usize = 2;

/// The read-only connections of a database file.
pub(super) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    turns: Semaphore,
}

impl Reader {
    pub(super) fn new(path: &Path) -> Self {
        Reader {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            turns: Semaphore::new(READERS),
        }
    }

    /// Runs `read` on a read-only connection, off the async workers.
    pub(super) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let _turn = self.turns.acquire().await.map_err(|_| PoolError::Closed)?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let idle = this.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => open(&this.path)?,
            };
            let answer = read(&conn).map_err(PoolError::from);
            // Kept for the next read, unless the pool closed meanwhile.
            if !this.turns.is_closed() {
                this.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn);
            }
            answer
        })
        .await
        .map_err(|e| PoolError::Storage(format!("read task failed: {e}")))?
    }

    /// Closes the connections and refuses further reads.
    pub(super) fn close(&self) {
        self.turns.close();
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

fn open(path: &Path) -> Result<Connection, PoolError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}
