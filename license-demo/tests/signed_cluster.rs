//! Cluster mode's shared replay memory, with two real binaries (each its own SQLite file) on a
//! real Redis: a nonce used on one replica is refused on the other, a nonce-less repeat sent to
//! the other replica is accepted and counted there, and with Redis down signed borrows answer
//! `503 replay_check_unavailable` (never a silent pass) until it is back.

mod common;

use common::binary::{spawn, Binary};
use license_demo::auth::{sign, sign_with_nonce};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use test_support::redis::RedisServer;

const TOOL: &str = "AUTOSAR Configuration Tool";
const VENDOR: &str = "vendor-9";
const SECRET: &str = "vendor-9-secret-77e1c4d0b2";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn replica(redis: &str, id: &str, dir: &tempfile::TempDir) -> Binary {
    let vendors = dir.path().join("vendors.toml");
    std::fs::write(
        &vendors,
        format!("[vendors]\n\"{VENDOR}\" = \"{SECRET}\"\n"),
    )
    .unwrap();
    let db = dir.path().join(format!("{id}.db"));
    spawn(
        &[
            "--log",
            "warn",
            "--redis",
            redis,
            "--instance-id",
            id,
            "--db",
            db.to_str().unwrap(),
            "--vendor-secrets",
            vendors.to_str().unwrap(),
            "--require-signature",
        ],
        &[],
    )
}

/// A signed borrow of `TOOL` for `user`: nonce form with `nonce`, else nonce-less at `ts`.
async fn borrow(
    url: &str,
    user: &str,
    ts: i64,
    nonce: Option<&str>,
) -> (u16, Value, Option<String>) {
    let signature = match nonce {
        Some(n) => sign_with_nonce(SECRET.as_bytes(), TOOL, user, ts, n, None),
        None => sign(SECRET.as_bytes(), TOOL, user, ts, None),
    };
    let mut req = reqwest::Client::new()
        .post(format!("{url}/licenses/borrow"))
        .header("x-vendor-id", VENDOR)
        .header("x-timestamp", ts.to_string())
        .header("x-signature", signature)
        .json(&json!({"tool": TOOL, "user": user}));
    if let Some(n) = nonce {
        req = req.header("x-nonce", n);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().await.unwrap(), retry_after)
}

#[tokio::test]
async fn replicas_share_the_replay_memory_in_redis() {
    let Some(mut redis) = RedisServer::start("replicas_share_the_replay_memory_in_redis") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = replica(&redis.url, "site-a", &dir);
    let b = replica(&redis.url, "site-b", &dir);

    let nonce = "cluster-nonce-0001-abc";
    let ts = now();
    let (code, body, _) = borrow(&a.url, "uma", ts, Some(nonce)).await;
    assert_eq!(code, 200, "{body}");
    let (code, body, _) = borrow(&b.url, "uma", ts, Some(nonce)).await;
    assert_eq!(
        (code, &body["error"]),
        (401, &json!("signature_replayed")),
        "{body}"
    );
    // Replayed to the first replica, the database refuses it too.
    let (code, _, _) = borrow(&a.url, "uma", ts, Some(nonce)).await;
    assert_eq!(code, 401);

    // A nonce-less repeat is accepted by default, on the other replica as well, and counted
    // there although its own database never saw the signature.
    let ts = now();
    assert_eq!(borrow(&a.url, "vic", ts, None).await.0, 200);
    assert_eq!(borrow(&b.url, "vic", ts, None).await.0, 200);
    let text = test_support::http::metrics_text(format!("{}/metrics", b.url)).await;
    assert_eq!(
        test_support::http::metric_in(&text, "license_demo_signature_repeats_total"),
        Some(1.0),
        "{text}"
    );
    let text = test_support::http::metrics_text(format!("{}/metrics", a.url)).await;
    assert_eq!(
        test_support::http::metric_in(&text, "license_demo_signature_repeats_total"),
        Some(0.0)
    );

    // Redis down: the replay check cannot be made, so signed borrows are refused (503 with
    // Retry-After), not let through.
    redis.kill();
    let (code, body, retry_after) =
        borrow(&a.url, "wes", now(), Some("cluster-nonce-0002-abc")).await;
    assert_eq!(
        (code, &body["error"]),
        (503, &json!("replay_check_unavailable")),
        "{body}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Back up: signed borrows work again.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 0;
    loop {
        i += 1;
        let nonce = format!("cluster-nonce-1{i:03}-abc");
        let (code, body, _) = borrow(&a.url, "wes", now(), Some(&nonce)).await;
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after Redis came back: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
