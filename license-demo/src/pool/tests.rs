//! Unit tests of the pool through its public handle (a second SQLite connection breaks or
//! pre-fills the database where a case needs it).

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
    let page = pool.overage_charges(ChargesQuery::default()).await.unwrap();
    assert_eq!((page.charges.len(), page.next), (1, None));
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
         INSERT INTO open_borrows VALUES ('old-1', 'T', 'u', '2026-01-01T00:00:00.000000Z', 0);
         CREATE TABLE overage_charges (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,
             tool TEXT NOT NULL, borrow_id TEXT NOT NULL, user TEXT NOT NULL,
             charged_at TEXT NOT NULL, amount REAL NOT NULL);
         INSERT INTO overage_charges VALUES (1, 'c-1', 'T', 'gone-1', 'u', '2026-01-01T00:00:00.000000Z', 5.0);
         CREATE TABLE idempotency_keys (scope TEXT NOT NULL, key TEXT NOT NULL, tool TEXT NOT NULL,
             user TEXT NOT NULL, borrow_id TEXT NOT NULL, borrowed_at TEXT NOT NULL,
             is_overage INTEGER NOT NULL, created_ms INTEGER NOT NULL,
             PRIMARY KEY (scope, key)) WITHOUT ROWID;
         INSERT INTO idempotency_keys VALUES ('', 'old-key', 'T', 'u', 'gone-1',
             '2026-01-01T00:00:00.000000Z', 1, 1800000000000);",
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
    // Old charges are listed (without a tenant: only while keys are off).
    let page = pool.overage_charges(ChargesQuery::default()).await.unwrap();
    assert_eq!(page.charges[0].id, "c-1");
    let keyed = ChargesQuery {
        owner: Owner {
            tenant: Some("acme".into()),
            ..Owner::default()
        },
        ..ChargesQuery::default()
    };
    assert!(pool
        .overage_charges(keyed)
        .await
        .unwrap()
        .charges
        .is_empty());
    // An old key whose borrow was returned before the upgrade says it is no longer held.
    let old_key = BorrowOptions {
        idempotency_key: Some("old-key".into()),
        ..BorrowOptions::default()
    };
    let BorrowOutcome::ReplayedClosed(gone) = pool.borrow_with("T", "u", old_key).await.unwrap()
    else {
        panic!("not a closed replay")
    };
    assert_eq!(
        (gone.borrow.id.as_str(), gone.returned_at),
        ("gone-1", None)
    );
    // The old borrow's lease starts at the upgrade, not at the epoch.
    assert_eq!(pool.expire_due().await.unwrap(), 0);
    let options = BorrowOptions {
        tenant: Some("acme".into()),
        idempotency_key: Some("k".into()),
        replay: None,
    };
    let BorrowOutcome::Granted(b) = pool.borrow_with("T", "v", options.clone()).await.unwrap()
    else {
        panic!("not granted")
    };
    let BorrowOutcome::Replayed(again) = pool.borrow_with("T", "v", options).await.unwrap() else {
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
        ..Owner::default()
    };
    assert_eq!(pool.open_borrows(of("a")).await.unwrap().len(), 7);
    assert!(pool.open_borrows(of("b")).await.unwrap().is_empty());
}

#[tokio::test]
async fn signed_borrows_are_remembered_in_the_database_until_their_window_ends() {
    let dir = tempfile::tempdir().unwrap();
    let db = DbLocation::File(dir.path().join("replays.db"));
    let clock = realtime_layer::ManualClock::new(1_700_000_000_000);
    let open = || {
        LicensePool::open_with(
            &db,
            vec![spec("T", 1, 1, 0)],
            Durability::Normal,
            PoolOptions {
                lease_ttl: None,
                clock: Some(Arc::new(clock.clone())),
            },
        )
        .unwrap()
    };
    let claim = |key: u8, repeat_allowed: bool| ReplayClaim {
        key: [key; 16],
        expires_at: 1_700_000_300,
        repeat_allowed,
        seen_elsewhere: false,
    };
    let signed = |key: u8, repeat_allowed: bool, idem: Option<&str>| BorrowOptions {
        tenant: None,
        idempotency_key: idem.map(str::to_string),
        replay: Some(claim(key, repeat_allowed)),
    };
    let pool = open();
    let BorrowOutcome::Granted(b) = pool
        .borrow_with("T", "u", signed(1, false, None))
        .await
        .unwrap()
    else {
        panic!("not granted")
    };
    let again = pool
        .borrow_with("T", "u", signed(1, false, None))
        .await
        .unwrap();
    assert!(
        matches!(again, BorrowOutcome::SignatureReplayed),
        "{again:?}"
    );
    // A key first refused for capacity is spent too; its retry with the same idempotency key
    // is a fresh attempt.
    let full = pool
        .borrow_with("T", "v", signed(2, false, Some("k")))
        .await
        .unwrap();
    assert!(
        matches!(full, BorrowOutcome::Denied(Denial::Exhausted)),
        "{full:?}"
    );
    assert!(pool.return_license(&b.id).await.unwrap().is_some());
    let retried = pool
        .borrow_with("T", "v", signed(2, false, Some("k")))
        .await
        .unwrap();
    assert!(matches!(retried, BorrowOutcome::Granted(_)), "{retried:?}");
    let other_key = pool
        .borrow_with("T", "v", signed(2, false, Some("j")))
        .await
        .unwrap();
    assert!(
        matches!(other_key, BorrowOutcome::SignatureReplayed),
        "{other_key:?}"
    );
    // Repeats allowed: answered by the pool (here: exhausted) and counted.
    let repeat = pool
        .borrow_with("T", "u", signed(1, true, None))
        .await
        .unwrap();
    assert!(
        matches!(repeat, BorrowOutcome::Denied(Denial::Exhausted)),
        "{repeat:?}"
    );
    assert_eq!(pool.signature_repeats(), 1);
    pool.close();

    // Reopened: still remembered (and the repeat count starts again).
    let pool = open();
    let again = pool
        .borrow_with("T", "u", signed(1, false, None))
        .await
        .unwrap();
    assert!(
        matches!(again, BorrowOutcome::SignatureReplayed),
        "{again:?}"
    );
    assert_eq!(pool.signature_repeats(), 0);
    // Past the window the row is pruned (a replay fails the clock check by then anyway).
    clock.advance(Duration::from_secs(301));
    let fresh = pool
        .borrow_with("T", "w", signed(1, false, None))
        .await
        .unwrap();
    assert!(
        !matches!(fresh, BorrowOutcome::SignatureReplayed),
        "{fresh:?}"
    );
    pool.close();
    let conn = rusqlite::Connection::open(dir.path().join("replays.db")).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM signature_replays", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the expired rows are gone, the new one is kept");
}

fn file_pool(dir: &tempfile::TempDir, options: PoolOptions) -> LicensePool {
    LicensePool::open_with(
        &DbLocation::File(dir.path().join("p.db")),
        vec![spec("T", 100, 0, 100)], // every borrow is charged
        Durability::Normal,
        options,
    )
    .unwrap()
}

async fn borrow_for(pool: &LicensePool, tenant: &str, user: &str) -> Borrow {
    let options = BorrowOptions {
        tenant: Some(tenant.into()),
        ..BorrowOptions::default()
    };
    match pool.borrow_with("T", user, options).await.unwrap() {
        BorrowOutcome::Granted(b) => b,
        other => panic!("not granted: {other:?}"),
    }
}

#[tokio::test]
async fn charges_come_in_pages_scoped_to_a_tenant_and_its_users() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir, PoolOptions::default());
    let mut acme = Vec::new();
    for i in 0..8 {
        let user = if i < 5 { "alice" } else { "bob" };
        acme.push(borrow_for(&pool, "acme", user).await.id);
    }
    for _ in 0..4 {
        borrow_for(&pool, "globex", "carol").await;
    }
    let of = |tenant: Option<&str>, users: Option<&[&str]>| Owner {
        tenant: tenant.map(Into::into),
        users: users.map(|u| u.iter().map(|s| s.to_string()).collect()),
        ..Owner::default()
    };
    // Walk acme's charges two at a time: every one once, newest first, then no cursor.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = pool
            .overage_charges(ChargesQuery {
                owner: of(Some("acme"), None),
                limit: 2,
                before,
                ..ChargesQuery::default()
            })
            .await
            .unwrap();
        assert!(page.charges.len() <= 2);
        seen.extend(page.charges.into_iter().map(|c| c.borrow_id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    acme.reverse();
    assert_eq!(seen, acme);
    let count = |owner: Owner| {
        let pool = pool.clone();
        async move {
            let q = ChargesQuery {
                owner,
                limit: MAX_CHARGES_PAGE,
                ..ChargesQuery::default()
            };
            pool.overage_charges(q).await.unwrap().charges.len()
        }
    };
    assert_eq!(count(of(Some("acme"), Some(&["alice"]))).await, 5);
    assert_eq!(count(of(Some("acme"), Some(&["carol"]))).await, 0);
    assert_eq!(count(of(Some("globex"), None)).await, 4);
    assert_eq!(count(of(None, None)).await, 12);
    // The same scoping lists open borrows.
    let open = pool
        .open_borrows(of(Some("acme"), Some(&["bob"])))
        .await
        .unwrap();
    assert_eq!(open.len(), 3);
    assert!(open.iter().all(|b| b.user == "bob"));
}

#[tokio::test]
async fn lists_are_read_while_another_connection_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir, PoolOptions::default());
    borrow_for(&pool, "acme", "alice").await;
    // A writer elsewhere holds the database's write lock: inside the writer's transaction these
    // reads would wait for it (busy_timeout 5 s, then fail).
    let other = Connection::open(dir.path().join("p.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let quick = std::time::Duration::from_secs(2);
    let page = tokio::time::timeout(quick, pool.overage_charges(ChargesQuery::default()))
        .await
        .expect("charges answered without the write lock")
        .unwrap();
    assert_eq!(page.charges.len(), 1);
    let open = tokio::time::timeout(quick, pool.open_borrows(Owner::default()))
        .await
        .expect("borrows listed without the write lock")
        .unwrap();
    assert_eq!(open.len(), 1);
    other.execute_batch("ROLLBACK").unwrap();
    pool.close();
    assert!(matches!(
        pool.overage_charges(ChargesQuery::default()).await,
        Err(PoolError::Closed)
    ));
}

#[tokio::test]
async fn a_replay_says_whether_its_borrow_was_returned_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let clock = realtime_layer::ManualClock::new(1_800_000_000_000);
    let pool = file_pool(
        &dir,
        PoolOptions {
            lease_ttl: Some(Duration::from_secs(10)),
            clock: Some(Arc::new(clock.clone())),
        },
    );
    let keyed = |key: &str| BorrowOptions {
        idempotency_key: Some(key.into()),
        ..BorrowOptions::default()
    };
    let BorrowOutcome::Granted(b) = pool.borrow_with("T", "u", keyed("k1")).await.unwrap() else {
        panic!("not granted")
    };
    assert!(matches!(
        pool.borrow_with("T", "u", keyed("k1")).await.unwrap(),
        BorrowOutcome::Replayed(again) if again.id == b.id && again.lease_expires_at.is_some()
    ));
    pool.return_license(&b.id).await.unwrap().unwrap();
    let BorrowOutcome::ReplayedClosed(c) = pool.borrow_with("T", "u", keyed("k1")).await.unwrap()
    else {
        panic!("a returned borrow replayed as held")
    };
    assert_eq!(
        (c.borrow.id.as_str(), c.closed),
        (b.id.as_str(), Closed::Returned)
    );
    assert!(c.returned_at.is_some());
    let BorrowOutcome::Granted(e) = pool.borrow_with("T", "u", keyed("k2")).await.unwrap() else {
        panic!("not granted")
    };
    clock.advance(Duration::from_secs(11));
    pool.expire_due().await.unwrap();
    let BorrowOutcome::ReplayedClosed(c) = pool.borrow_with("T", "u", keyed("k2")).await.unwrap()
    else {
        panic!("an expired borrow replayed as held")
    };
    assert_eq!(
        (c.borrow.id.as_str(), c.closed),
        (e.id.as_str(), Closed::Expired)
    );
    assert_eq!(
        pool.tool_status("T").unwrap().borrowed,
        0,
        "nothing new borrowed"
    );
}
