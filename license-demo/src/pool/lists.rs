//! The SQL of the two lists, `GET /borrows` and `GET /overage-charges`: plain reads, run on a
//! reader connection (`reader`), or on the writer for a `:memory:` database.

use super::types::{ChargesPage, ChargesQuery, OpenBorrow, OverageCharge, Owner, MAX_CHARGES_PAGE};
use rusqlite::types::Value;
use rusqlite::Connection;

/// `users` as the JSON array `json_each` reads (`None`: any user).
fn users_json(owner: &Owner) -> Option<String> {
    owner
        .users
        .as_ref()
        .map(|users| serde_json::Value::from(users.clone()).to_string())
}

pub(super) fn list_open(conn: &Connection, filter: &Owner) -> rusqlite::Result<Vec<OpenBorrow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, tool, user, borrowed_at FROM open_borrows
         WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR tenant = ?2)
           AND (?3 IS NULL OR user IN (SELECT value FROM json_each(?3)))
         ORDER BY borrowed_at DESC, id DESC",
    )?;
    let users = users_json(filter);
    let args = (
        filter.user.as_deref(),
        filter.tenant.as_deref(),
        users.as_deref(),
    );
    let rows = stmt.query_map(args, |r| {
        Ok(OpenBorrow {
            id: r.get(0)?,
            tool: r.get(1)?,
            user: r.get(2)?,
            borrowed_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// One page of charges, newest first. The statement names only the filters given, so SQLite
/// walks the tenant's (or tool's) index backwards from the cursor and stops after the page.
pub(super) fn list_charges(conn: &Connection, q: &ChargesQuery) -> rusqlite::Result<ChargesPage> {
    let limit = q.limit.clamp(1, MAX_CHARGES_PAGE);
    let mut sql = String::from(
        "SELECT seq, id, tool, borrow_id, user, charged_at, amount FROM overage_charges WHERE 1",
    );
    let mut args: Vec<Value> = Vec::new();
    let mut filter = |condition: &str, value: Value| {
        sql.push_str(" AND ");
        sql.push_str(condition);
        args.push(value);
    };
    if let Some(tool) = &q.tool {
        filter("tool = ?", Value::Text(tool.clone()));
    }
    if let Some(tenant) = &q.owner.tenant {
        filter("tenant = ?", Value::Text(tenant.clone()));
    }
    if let Some(user) = &q.owner.user {
        filter("user = ?", Value::Text(user.clone()));
    }
    if let Some(users) = users_json(&q.owner) {
        filter(
            "user IN (SELECT value FROM json_each(?))",
            Value::Text(users),
        );
    }
    if let Some(before) = q.before {
        filter("seq < ?", Value::Integer(before));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    // One more than the page: whether an older page exists.
    args.push(Value::Integer(limit as i64 + 1));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            OverageCharge {
                id: r.get(1)?,
                tool: r.get(2)?,
                borrow_id: r.get(3)?,
                user: r.get(4)?,
                charged_at: r.get(5)?,
                amount: r.get(6)?,
            },
        ))
    })?;
    let mut rows: Vec<(i64, OverageCharge)> = rows.collect::<Result<_, _>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    Ok(ChargesPage {
        charges: rows.into_iter().map(|(_, c)| c).collect(),
        next,
    })
}
