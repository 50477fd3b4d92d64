//! The replay memory of signed borrows: the `signature_replays` table, written in the same batch
//! transaction as the borrow (or the refusal) a signed request leads to.
//!
//! A row holds a replay key (a digest of the vendor, timestamp and nonce, or of a nonce-less
//! signature), the Unix second its timestamp leaves the window (after which a replay fails the clock check
//! anyway, so the row is pruned) and the idempotency key it came with. Because it is in the
//! database, a restart or a second process on the same file remembers it too.

use super::timestamps::ms_i64;
use super::types::{BorrowOptions, BorrowOutcome, ReplayClaim, MAX_REMEMBERED_SIGNATURES};
use rusqlite::{params, OptionalExtension};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The writer's bookkeeping of the table (shared: handles read the counter).
#[derive(Debug, Default)]
pub(super) struct ReplayMemory {
    /// Rows in the table, as far as this process knows (its own inserts and prunes).
    rows: AtomicI64,
    /// The second of the last prune.
    pruned_at: AtomicI64,
    /// Nonce-less repeats accepted since start (after COMMIT).
    repeats: AtomicU64,
}

/// What a batch changed, applied after COMMIT.
#[derive(Debug, Default)]
pub(super) struct ReplayDelta {
    rows: i64,
    repeats: u64,
}

/// Whether a signed borrow may go on.
pub(super) enum Admission {
    /// Go on (new key, a retry with the same idempotency key, or an accepted repeat).
    Go,
    /// Answer this instead of borrowing.
    Refuse(BorrowOutcome),
}

impl ReplayMemory {
    /// Starts from the rows already stored (by earlier runs or other processes).
    pub(super) fn new(rows: i64) -> Self {
        ReplayMemory {
            rows: AtomicI64::new(rows),
            ..ReplayMemory::default()
        }
    }

    /// Nonce-less repeats accepted since start.
    pub(super) fn repeats(&self) -> u64 {
        self.repeats.load(Ordering::Relaxed)
    }

    /// Applies a committed batch's changes.
    pub(super) fn apply(&self, delta: &ReplayDelta) {
        if delta.rows != 0 {
            let rows = self.rows.fetch_add(delta.rows, Ordering::Relaxed) + delta.rows;
            if rows < 0 {
                // Another process pruned rows this one inserted.
                self.rows.store(0, Ordering::Relaxed);
            }
        }
        if delta.repeats != 0 {
            self.repeats.fetch_add(delta.repeats, Ordering::Relaxed);
        }
    }
}

/// Checks and remembers the replay key of a signed borrow (`options.replay`), inside the batch
/// transaction. Unsigned borrows always go on.
pub(super) fn admit(
    tx: &rusqlite::Transaction<'_>,
    memory: &ReplayMemory,
    options: &BorrowOptions,
    now_ms: u64,
    delta: &mut ReplayDelta,
) -> Result<Admission, rusqlite::Error> {
    let Some(claim) = &options.replay else {
        return Ok(Admission::Go);
    };
    let now_s = ms_i64(now_ms) / 1000;
    if memory.pruned_at.swap(now_s, Ordering::Relaxed) != now_s {
        let pruned = tx
            .prepare_cached("DELETE FROM signature_replays WHERE expires_s < ?1")?
            .execute([now_s])?;
        delta.rows -= pruned as i64;
    }
    let scope = options.tenant.as_deref().unwrap_or("");
    let idem = options.idempotency_key.as_deref();
    let first = if memory.rows.load(Ordering::Relaxed) + delta.rows >= MAX_REMEMBERED_SIGNATURES {
        match seen(tx, claim)? {
            None => return Ok(Admission::Refuse(BorrowOutcome::ReplayMemoryFull)),
            some => some,
        }
    } else {
        let inserted = tx
            .prepare_cached(
                "INSERT INTO signature_replays(expires_s, key, scope, idem_key) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(expires_s, key) DO NOTHING",
            )?
            .execute(params![claim.expires_at, &claim.key[..], scope, idem])?;
        if inserted == 1 {
            delta.rows += 1;
            None
        } else {
            seen(tx, claim)?
        }
    };
    let repeat = match first {
        None => claim.seen_elsewhere,
        // A retry with the same idempotency key is not a replay (nor a counted repeat).
        Some((first_scope, Some(first_key)))
            if idem == Some(&first_key) && first_scope == scope =>
        {
            return Ok(Admission::Go)
        }
        Some(_) => true,
    };
    if !repeat {
        return Ok(Admission::Go);
    }
    if claim.repeat_allowed {
        delta.repeats += 1;
        Ok(Admission::Go)
    } else {
        Ok(Admission::Refuse(BorrowOutcome::SignatureReplayed))
    }
}

/// The scope and idempotency key a replay key was first seen with.
fn seen(
    tx: &rusqlite::Transaction<'_>,
    claim: &ReplayClaim,
) -> Result<Option<(String, Option<String>)>, rusqlite::Error> {
    tx.prepare_cached(
        "SELECT scope, idem_key FROM signature_replays WHERE expires_s = ?1 AND key = ?2",
    )?
    .query_row(params![claim.expires_at, &claim.key[..]], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}
