//! Two pools on one database file (two connections, as two processes would have): the counters
//! follow each other's commits, a pool alone never re-reads, keys and expiries are per database.
//! (`tests/shared_db.rs` does the same with two real processes.)

use super::*;
use realtime_layer::ManualClock;
use std::sync::Mutex;

fn spec(name: &str, total: u32, commit: u32, max_overage: u32, price: f64) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        total,
        commit,
        max_overage,
        commit_price: 100.0,
        overage_price_per_license: price,
    }
}

fn tools() -> Vec<ToolSpec> {
    vec![spec("T", 10, 2, 8, 0.1), spec("U", 5, 5, 0, 0.0)]
}

fn open_two(dir: &tempfile::TempDir, options: PoolOptions) -> (LicensePool, LicensePool) {
    let loc = DbLocation::File(dir.path().join("shared.db"));
    let a = LicensePool::open_with(&loc, tools(), Durability::Normal, options.clone()).unwrap();
    let b = LicensePool::open_with(&loc, tools(), Durability::Normal, options).unwrap();
    (a, b)
}

async fn granted(pool: &LicensePool, tool: &str, user: &str) -> Borrow {
    match pool.borrow(tool, user).await.unwrap() {
        BorrowOutcome::Granted(b) => b,
        other => panic!("not granted: {other:?}"),
    }
}

/// `(borrowed, overage_borrows, current_overage_cost)` of `tool`.
fn counts(pool: &LicensePool, tool: &str) -> (u32, u64, f64) {
    let s = pool.tool_status(tool).unwrap();
    (s.borrowed, s.overage_borrows, s.current_overage_cost)
}

#[tokio::test]
async fn each_pool_reports_the_other_pools_borrows_returns_and_charges() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = open_two(&dir, PoolOptions::default());
    let first = granted(&a, "T", "ann").await;
    assert_eq!(counts(&a, "T"), (1, 0, 0.0));
    assert_eq!(counts(&b, "T"), (1, 0, 0.0), "B sees A's borrow");
    // Overage borrows on both sides: one cost, whoever charged.
    let mut ids = vec![first.id];
    for i in 0..5 {
        let pool = if i % 2 == 0 { &b } else { &a };
        ids.push(granted(pool, "T", "bob").await.id);
    }
    assert_eq!(counts(&a, "T"), counts(&b, "T"));
    let (borrowed, charges, cost) = counts(&b, "T");
    assert_eq!((borrowed, charges), (6, 4));
    assert!((cost - 0.4).abs() < 1e-9, "{cost}");
    assert_eq!(a.occupancy(), b.occupancy(), "the status source agrees too");
    // Returned through the other pool.
    for (i, id) in ids.iter().enumerate() {
        let pool = if i % 2 == 0 { &b } else { &a };
        assert!(pool.return_license(id).await.unwrap().is_some());
    }
    assert_eq!(counts(&a, "T").0, 0);
    assert_eq!(counts(&b, "T").0, 0);
    assert_eq!(
        counts(&a, "T"),
        counts(&b, "T"),
        "charges stay after return"
    );
    assert!(a.resyncs() > 0 && b.resyncs() > 0);
}

#[tokio::test]
async fn a_pools_own_commit_right_after_the_other_pools_counts_both() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = open_two(&dir, PoolOptions::default());
    assert_eq!(counts(&a, "U").0, 0);
    // B commits; A's writer commits next, with no status read on A in between: A's own delta
    // alone would miss B's borrow.
    granted(&b, "U", "from-b").await;
    granted(&a, "U", "from-a").await;
    assert_eq!(counts(&a, "U").0, 2);
    granted(&a, "U", "from-a").await;
    assert_eq!(counts(&a, "U").0, 3);
    assert_eq!(counts(&b, "U").0, 3);
}

#[tokio::test]
async fn a_pool_alone_on_its_database_never_re_reads() {
    let dir = tempfile::tempdir().unwrap();
    let pool = LicensePool::open(
        &DbLocation::File(dir.path().join("alone.db")),
        tools(),
        Durability::Normal,
    )
    .unwrap();
    for i in 0..50 {
        let b = granted(&pool, "T", "u").await;
        assert_eq!(counts(&pool, "T").0, 1);
        if i % 7 == 0 {
            pool.heartbeat(&b.id, Owner::default()).await.unwrap();
            pool.open_borrows(Owner::default()).await.unwrap();
        }
        pool.return_license(&b.id).await.unwrap();
        assert_eq!(pool.status()[0].borrowed, 0);
    }
    assert_eq!(pool.resyncs(), 0);
    // A second connection's commit is caught by the next read, once.
    let other = Connection::open(dir.path().join("alone.db")).unwrap();
    other
        .execute(
            "INSERT INTO open_borrows(id, tool, user, borrowed_at, is_overage, renewed_ms)
             VALUES ('x', 'U', 'v', '2026-01-01T00:00:00.000000Z', 0, 1)",
            [],
        )
        .unwrap();
    assert_eq!(counts(&pool, "U").0, 1);
    assert_eq!(counts(&pool, "U").0, 1);
    assert_eq!(pool.resyncs(), 1);
}

#[tokio::test]
async fn an_idempotency_key_retried_on_the_other_pool_answers_the_first_borrow() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = open_two(&dir, PoolOptions::default());
    let options = BorrowOptions {
        tenant: None,
        idempotency_key: Some("retry-1".into()),
        replay: None,
    };
    let BorrowOutcome::Granted(first) = a.borrow_with("U", "kim", options.clone()).await.unwrap()
    else {
        panic!("not granted")
    };
    let BorrowOutcome::Replayed(again) = b.borrow_with("U", "kim", options).await.unwrap() else {
        panic!("not replayed")
    };
    assert_eq!(again.id, first.id);
    assert_eq!(counts(&a, "U").0, 1);
    assert_eq!(counts(&b, "U").0, 1);
}

#[tokio::test]
async fn an_expired_lease_is_returned_once_when_both_pools_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let options = PoolOptions {
        lease_ttl: Some(Duration::from_secs(10)),
        clock: Some(Arc::new(clock.clone())),
    };
    let (a, b) = open_two(&dir, options);
    let seen: Arc<Mutex<Vec<(char, String)>>> = Arc::default();
    for (name, pool) in [('a', &a), ('b', &b)] {
        let seen = Arc::clone(&seen);
        pool.on_expired(move |expired| {
            let mut seen = lock_mutex(&seen);
            seen.extend(expired.iter().map(|e| (name, e.id.clone())));
        });
    }
    let mut ids = Vec::new();
    for i in 0..4 {
        let pool = if i % 2 == 0 { &a } else { &b };
        ids.push(granted(pool, "T", "lee").await.id);
    }
    clock.advance(Duration::from_secs(11));
    let (na, nb) = tokio::join!(a.expire_due(), b.expire_due());
    // Each pool may also have swept on its own timer: count the listeners, not the answers.
    let _ = (na.unwrap(), nb.unwrap());
    a.expire_due().await.unwrap();
    b.expire_due().await.unwrap();
    let mut expired: Vec<String> = lock_mutex(&seen).iter().map(|(_, id)| id.clone()).collect();
    expired.sort();
    ids.sort();
    assert_eq!(
        expired,
        ids,
        "each lease expired exactly once: {:?}",
        lock_mutex(&seen)
    );
    assert_eq!(counts(&a, "T").0, 0);
    assert_eq!(counts(&b, "T").0, 0);
    a.close();
    b.close();
    let db = Connection::open(dir.path().join("shared.db")).unwrap();
    let rows: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM borrow_history WHERE reason = 'expired'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 4);
}

/// Both pools borrow and return as fast as they can while status reads run in between: at the
/// end (and after every quiet moment) both counters equal the database's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_stay_exact_under_concurrent_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = open_two(&dir, PoolOptions::default());
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (mine, other) = if w % 2 == 0 {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        tasks.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for i in 0..60 {
                if let BorrowOutcome::Granted(x) = mine.borrow("T", "w").await.unwrap() {
                    // Every third borrow stays out; the others go back through the other pool.
                    if i % 3 == 0 {
                        kept.push(x.id);
                    } else {
                        other.return_license(&x.id).await.unwrap();
                    }
                }
                let _ = other.status();
            }
            kept
        }));
    }
    let mut kept = 0;
    for t in tasks {
        kept += t.await.unwrap().len();
    }
    let db = Connection::open(dir.path().join("shared.db")).unwrap();
    let (rows, charges, cost): (u32, i64, f64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM open_borrows WHERE tool = 'T'),
                    (SELECT COUNT(*) FROM overage_charges WHERE tool = 'T'),
                    (SELECT TOTAL(amount) FROM overage_charges WHERE tool = 'T')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(rows as usize, kept);
    for pool in [&a, &b] {
        let (borrowed, n, c) = counts(pool, "T");
        assert_eq!((borrowed, n as i64), (rows, charges));
        assert!((c - cost).abs() < 1e-6, "{c} vs {cost}");
    }
}

#[tokio::test]
async fn charges_recorded_before_the_overage_totals_existed_are_summed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let pool =
        LicensePool::open(&DbLocation::File(path.clone()), tools(), Durability::Normal).unwrap();
    for _ in 0..4 {
        granted(&pool, "T", "old").await;
    }
    pool.close();
    // As a database of the previous version: charges, no totals, no triggers.
    let old = Connection::open(&path).unwrap();
    old.execute_batch(
        "DROP TRIGGER overage_totals_on_charge; DROP TRIGGER overage_totals_on_delete;
         DROP TABLE overage_totals;",
    )
    .unwrap();
    drop(old);
    let pool = LicensePool::open(&DbLocation::File(path), tools(), Durability::Normal).unwrap();
    let (borrowed, charges, cost) = counts(&pool, "T");
    assert_eq!((borrowed, charges), (4, 2));
    assert!((cost - 0.2).abs() < 1e-9, "{cost}");
    granted(&pool, "T", "new").await;
    pool.close();
    let pool = LicensePool::open(
        &DbLocation::File(dir.path().join("old.db")),
        tools(),
        Durability::Normal,
    )
    .unwrap();
    assert_eq!(
        counts(&pool, "T").1,
        3,
        "the trigger counted the new charge"
    );
}
