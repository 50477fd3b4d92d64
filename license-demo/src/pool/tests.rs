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
