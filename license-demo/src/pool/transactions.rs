//! The SQL of each write, run inside the writer's batch transaction: borrow (with idempotency
//! keys), return, heartbeat, lease expiry. The lists are in `lists`.

use super::state::Shared;
use super::timestamps::{ms_i64, ms_rfc3339, now_rfc3339};
use super::types::{
    Borrow, BorrowOptions, BorrowOutcome, Closed, ClosedBorrow, Denial, Expired, Owned, Owner,
    PoolError, Returned, IDEMPOTENCY_WINDOW,
};
use crate::config::ToolSpec;
use rusqlite::{params, OptionalExtension};

pub(super) fn borrow_in_tx(
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
                "SELECT tool, user, borrow_id, borrowed_at, is_overage, returned_at, return_reason
                 FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
            )?
            .query_row([scope, key.as_str()], |r| {
                let borrow = Borrow {
                    tool: r.get(0)?,
                    user: r.get(1)?,
                    id: r.get(2)?,
                    borrowed_at: r.get(3)?,
                    overage: r.get(4)?,
                    lease_expires_at: None,
                };
                let returned_at: Option<String> = r.get(5)?;
                let reason: Option<String> = r.get(6)?;
                Ok((borrow, returned_at, reason))
            })
            .optional()?;
        if let Some((mut first, returned_at, reason)) = first {
            if first.tool != spec.name || first.user != user {
                return Ok(BorrowOutcome::KeyConflict);
            }
            let closed = match reason.as_deref() {
                Some("expired") => Closed::Expired,
                _ => Closed::Returned,
            };
            // Still open (a borrow closed before returns were noted here is simply gone).
            let renewed = match returned_at {
                Some(_) => None,
                None => open_renewed_ms(tx, &first.id)?,
            };
            let Some(renewed) = renewed else {
                return Ok(BorrowOutcome::ReplayedClosed(ClosedBorrow {
                    borrow: first,
                    closed,
                    returned_at,
                }));
            };
            first.lease_expires_at = lease_ttl_ms
                .map(|ttl| ms_rfc3339(u64::try_from(renewed).unwrap_or(0).saturating_add(ttl)));
            return Ok(BorrowOutcome::Replayed(first));
        }
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
            "INSERT INTO overage_charges(id, tool, borrow_id, user, charged_at, amount, tenant)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            uuid::Uuid::new_v4().to_string(),
            spec.name,
            id,
            user,
            borrowed_at,
            spec.overage_price_per_license,
            options.tenant
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

/// When the open borrow `id` was last renewed (borrow or heartbeat); `None` when it is not open.
fn open_renewed_ms(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
) -> Result<Option<i64>, rusqlite::Error> {
    tx.prepare_cached("SELECT renewed_ms FROM open_borrows WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
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
    Ok(row.map(|(user, tenant)| owner.matches(&user, tenant.as_deref())))
}

pub(super) fn return_in_tx(
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
    let returned_at = now_rfc3339();
    tx.prepare_cached(
        "INSERT INTO borrow_history(id, tool, user, borrowed_at, returned_at, is_overage, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        tool,
        user,
        borrowed_at,
        returned_at,
        overage,
        reason
    ])?;
    // An idempotent retry of this borrow now says it is no longer held.
    tx.prepare_cached(
        "UPDATE idempotency_keys SET returned_at = ?2, return_reason = ?3 WHERE borrow_id = ?1",
    )?
    .execute(params![id, returned_at, reason])?;
    Ok(Owned::Done(Returned { tool, user }))
}

pub(super) fn heartbeat_in_tx(
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
pub(super) fn expire_in_tx(
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
