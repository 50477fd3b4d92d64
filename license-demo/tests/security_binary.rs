//! The security flags of the real binary: an idempotent retry across `kill -9`, and a server
//! started with keys, vendor secrets, required signatures, leases and dashboard credentials.

mod common;

use common::binary::spawn;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ECU: &str = "ECU Development Suite";

#[tokio::test]
async fn an_idempotent_retry_after_kill_dash_nine_returns_the_same_borrow() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("idem.db");
    let db = db.to_str().unwrap();
    let client = reqwest::Client::new();
    let borrow = |url: &str| {
        client
            .post(format!("{url}/licenses/borrow"))
            .header("idempotency-key", "order-7f3a")
            .json(&json!({"tool": ECU, "user": "kit"}))
    };
    let server = spawn(&["--log", "warn", "--db", db], &[]);
    let first: Value = borrow(&server.url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.kill(); // SIGKILL: the answer may as well have been lost

    let server = spawn(&["--log", "warn", "--db", db], &[]);
    let url = server.url.clone();
    let retry = borrow(&url).send().await.unwrap();
    assert_eq!(retry.status(), 200);
    let retry: Value = retry.json().await.unwrap();
    let status = ecu_status(&client, &url).await;
    server.kill();
    assert!(first["id"].is_string(), "{first}");
    assert_eq!(retry, first, "same borrow after the crash");
    assert_eq!(status["borrowed"], 1, "no second license");
}

#[tokio::test]
async fn a_fully_secured_server_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    let key = "ak-acme-4f1c9e2b7d5a8c03";
    std::fs::write(
        &keys,
        format!("[keys.\"{key}\"]\ntenant = \"acme\"\nusers = [\"*\"]\n"),
    )
    .unwrap();
    let vendors = dir.path().join("vendors.toml");
    let secret = "vendor-secret-93b1d0c4e8";
    std::fs::write(
        &vendors,
        format!("[vendors]\n\"vendor-42\" = \"{secret}\"\n"),
    )
    .unwrap();
    let db = dir.path().join("secure.db");
    let server = spawn(
        &[
            "--log",
            "debug",
            "--db",
            db.to_str().unwrap(),
            "--api-keys",
            keys.to_str().unwrap(),
            "--vendor-secrets",
            vendors.to_str().unwrap(),
            "--require-signature",
            "--lease-ttl",
            "1",
        ],
        &[("LICENSE_DEMO_DASHBOARD_AUTH", "ops:dash-pass")],
    );
    let url = server.url.clone();
    let client = reqwest::Client::new();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let borrow = |signature: Option<String>| {
        let req = client
            .post(format!("{url}/licenses/borrow"))
            .bearer_auth(key)
            .header("x-vendor-id", "vendor-42")
            .header("x-timestamp", ts.to_string())
            .json(&json!({"tool": ECU, "user": "lou"}));
        match signature {
            Some(sig) => req.header("x-signature", sig),
            None => req,
        }
    };
    let unsigned = borrow(None).send().await.unwrap();
    assert_eq!(
        unsigned.status(),
        401,
        "--require-signature refuses unsigned borrows"
    );
    let signature = license_demo::auth::sign(secret.as_bytes(), ECU, "lou", ts, Some(key));
    let granted = borrow(Some(signature)).send().await.unwrap();
    assert_eq!(granted.status(), 200);
    let granted: Value = granted.json().await.unwrap();
    assert!(granted["lease_expires_at"].is_string(), "{granted}");
    let no_key = client.get(format!("{url}/borrows")).send().await.unwrap();
    assert_eq!(no_key.status(), 401);

    // The 1 s lease runs out (nobody heartbeats); poll for at most 15 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    let stats = loop {
        let stats: Value = client
            .get(format!("{url}/realtime/stats?window=300"))
            .basic_auth("ops", Some("dash-pass"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let expired = stats["recent_events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["reason"] == "expired"));
        if expired || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let expiry = stats["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "return" && e["reason"] == "expired")
        .unwrap_or_else(|| panic!("no expired return in {stats}"));
    assert_eq!(expiry["user"], "lou");
    let status = ecu_status(&client, &url).await;
    assert_eq!(status["borrowed"], 0);
    let dashboard = client.get(format!("{url}/realtime")).send().await.unwrap();
    assert_eq!(dashboard.status(), 401);
    // The browser's login prompt names this server's dashboard.
    assert_eq!(
        dashboard.headers()["www-authenticate"],
        r#"Basic realm="license-demo dashboard", charset="UTF-8""#
    );

    let printed = server.kill();
    assert!(printed.contains("DEBUG"), "debug logs were on: {printed}");
    for secret_text in [key, secret, "dash-pass"] {
        assert!(
            !printed.contains(secret_text),
            "{secret_text} leaked into the output"
        );
    }
}

/// `GET /licenses/ECU Development Suite/status`.
async fn ecu_status(client: &reqwest::Client, url: &str) -> Value {
    let url = format!("{url}/licenses/ECU%20Development%20Suite/status");
    test_support::http::send_json(client.get(&url), &url)
        .await
        .1
}
