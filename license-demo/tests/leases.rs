//! Leases: borrows not renewed by a heartbeat within the TTL go back to the pool, show as
//! `expired` returns on the dashboard, and expire from stored times after a restart.

mod common;

use common::tool;
use license_demo::auth::SecurityConfig;
use license_demo::pool::{DbLocation, Durability, LicensePool, Owner, PoolOptions};
use license_demo::server::build_app;
use realtime_layer::ManualClock;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(60);

struct Served {
    base: String,
    client: reqwest::Client,
    pool: LicensePool,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

/// The real router over a pool whose lease clock the test moves.
async fn serve_with_manual_clock() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let pool = LicensePool::open_with(
        &DbLocation::File(dir.path().join("leases.db")),
        vec![tool("Seat", 2, 1, 1, 5.0)],
        Durability::Normal,
        PoolOptions {
            lease_ttl: Some(TTL),
            clock: Some(Arc::new(clock.clone())),
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (app, _rt) = build_app(&pool, &SecurityConfig::default(), addr).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        pool,
        clock,
        _dir: dir,
    }
}

impl Served {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let request = self.client.post(format!("{}{path}", self.base)).json(&body);
        test_support::http::send_json(request, path).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) =
            test_support::http::send_json(self.client.get(format!("{}{path}", self.base)), path)
                .await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

#[tokio::test]
async fn an_unrenewed_lease_expires_and_shows_as_an_expired_return() {
    let s = serve_with_manual_clock().await;
    let (code, kept) = s
        .post("/licenses/borrow", json!({"tool": "Seat", "user": "kim"}))
        .await;
    assert_eq!(code, 200, "{kept}");
    assert!(kept["lease_expires_at"].as_str().unwrap().ends_with('Z'));
    let (_, lost) = s
        .post("/licenses/borrow", json!({"tool": "Seat", "user": "lee"}))
        .await;
    let (code, body) = s
        .post("/licenses/borrow", json!({"tool": "Seat", "user": "max"}))
        .await;
    assert_eq!((code, body["error"].as_str()), (409, Some("exhausted")));

    s.clock.advance(Duration::from_secs(40));
    let (code, beat) = s
        .post("/licenses/heartbeat", json!({"id": kept["id"]}))
        .await;
    assert_eq!(code, 200, "{beat}");
    assert_eq!(beat["status"], "ok");
    let (code, body) = s
        .post(
            "/licenses/heartbeat",
            json!({"id": kept["id"], "user": "lee"}),
        )
        .await;
    assert_eq!((code, body["error"].as_str()), (403, Some("not_owner")));
    s.clock.advance(Duration::from_secs(30)); // lee: 70 s without renewal, kim: 30 s
                                              // The writer sweeps by itself too; this makes the sweep happen now.
    s.pool.expire_due().await.unwrap();

    let status = s.get("/licenses/Seat/status").await;
    assert_eq!(
        status["borrowed"], 1,
        "the expired license is back in the pool"
    );
    let open = s.pool.open_borrows(Owner::default()).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, kept["id"].as_str().unwrap());
    // A return of the expired borrow is a 404 like any closed borrow; a heartbeat too.
    let (code, _) = s.post("/licenses/return", json!({"id": lost["id"]})).await;
    assert_eq!(code, 404);
    let (code, _) = s
        .post("/licenses/heartbeat", json!({"id": lost["id"]}))
        .await;
    assert_eq!(code, 404);
    // The license can be borrowed again.
    let (code, _) = s
        .post("/licenses/borrow", json!({"tool": "Seat", "user": "max"}))
        .await;
    assert_eq!(code, 200);

    let stats = s.get("/realtime/stats?window=300").await;
    let events = stats["recent_events"].as_array().unwrap();
    let expired: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "return" && e["reason"] == "expired")
        .collect();
    assert_eq!(expired.len(), 1, "{stats}");
    assert_eq!(expired[0]["user"], "lee");
    assert_eq!(expired[0]["resource"], "Seat");
    assert_eq!(stats["return_count"], 1, "an expiry counts as a return");
}

#[tokio::test]
async fn leases_expire_from_stored_times_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let loc = DbLocation::File(dir.path().join("restart.db"));
    let clock = ManualClock::new(1_800_000_000_000);
    let open = || {
        LicensePool::open_with(
            &loc,
            vec![tool("Seat", 3, 3, 0, 0.0)],
            Durability::Normal,
            PoolOptions {
                lease_ttl: Some(TTL),
                clock: Some(Arc::new(clock.clone())),
            },
        )
        .unwrap()
    };
    let pool = open();
    pool.borrow("Seat", "old").await.unwrap();
    pool.close();
    clock.advance(TTL + Duration::from_secs(1));
    let pool = open();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    pool.on_expired(move |e| sink.lock().unwrap().extend(e.iter().cloned()));
    assert_eq!(pool.tool_status("Seat").unwrap().borrowed, 1);
    pool.expire_due().await.unwrap();
    assert_eq!(pool.tool_status("Seat").unwrap().borrowed, 0);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].user, "old");
}

#[tokio::test]
async fn without_a_ttl_borrows_never_expire() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let pool = LicensePool::open_with(
        &DbLocation::File(dir.path().join("forever.db")),
        vec![tool("Seat", 1, 1, 0, 0.0)],
        Durability::Normal,
        PoolOptions {
            lease_ttl: None,
            clock: Some(Arc::new(clock.clone())),
        },
    )
    .unwrap();
    pool.borrow("Seat", "u").await.unwrap();
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(pool.expire_due().await.unwrap(), 0);
    assert_eq!(pool.tool_status("Seat").unwrap().borrowed, 1);
}
