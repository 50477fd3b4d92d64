//! Signed clients against the real binary with `--require-signature`, over real HTTP: nonce-less
//! repeats granted up to capacity and counted (refused only with `--strict-replay`), nonces used
//! once (across a restart and a second process on the same database too), wrong and stale
//! signatures refused in both forms, idempotent retries answered rather than refused, and the
//! stress tool signing and authenticating with zero 401s.
//!
//! Signatures are computed here from the documented format (README, "Securing it"), not with the
//! server's helpers, so the documentation is what is tested.

mod common;

use common::binary::{spawn, Binary};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::path::PathBuf;
use std::process::Command;

/// Five licenses: the 6th concurrent borrow is refused `409 exhausted`.
const SMALL: &str = "Small Tool";
/// Plenty of licenses (the stress run).
const ROOMY: &str = "Roomy Tool";
const VENDOR: &str = "vendor-7";
const SECRET: &str = "vendor-7-secret-5c1e0b9a44";
const API_KEY: &str = "ak-signed-clients-8d2f6a1c";

/// Tools, vendor secrets and API keys files in a temp dir, and a database path.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let tool = |name: &str, total: u32| {
            format!(
                "[[tools]]\nname = \"{name}\"\ntotal = {total}\ncommit = {total}\nmax_overage = 0\n\
                 commit_price = 1\noverage_price_per_license = 0\n"
            )
        };
        std::fs::write(
            dir.path().join("tools.toml"),
            tool(SMALL, 5) + &tool(ROOMY, 100_000),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("vendors.toml"),
            format!("[vendors]\n\"{VENDOR}\" = \"{SECRET}\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("keys.toml"),
            format!("[keys.\"{API_KEY}\"]\ntenant = \"acme\"\nusers = [\"*\"]\n"),
        )
        .unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("licenses.db")
    }

    /// A signing server on this setup's database, with `extra` flags.
    fn server(&self, extra: &[&str]) -> Binary {
        let mut args = vec![
            "--log".to_string(),
            "warn".into(),
            "--db".into(),
            self.path("licenses.db"),
            "--tools".into(),
            self.path("tools.toml"),
            "--vendor-secrets".into(),
            self.path("vendors.toml"),
            "--require-signature".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        spawn(&args, &[])
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hmac_hex(secret: &str, text: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The nonce-less form: HMAC of `tool|user|timestamp[|api_key]`.
fn nonceless_signature(secret: &str, tool: &str, user: &str, ts: i64, key: Option<&str>) -> String {
    let mut text = format!("{tool}|{user}|{ts}");
    if let Some(key) = key {
        text = format!("{text}|{key}");
    }
    hmac_hex(secret, text.as_bytes())
}

/// The nonce form: HMAC of `<n>:tool|<n>:user|<n>:timestamp|<n>:nonce[|<n>:api_key]`.
fn nonce_signature(
    secret: &str,
    tool: &str,
    user: &str,
    ts: i64,
    nonce: &str,
    key: Option<&str>,
) -> String {
    let ts = ts.to_string();
    let fields = [Some(tool), Some(user), Some(ts.as_str()), Some(nonce), key];
    let text: Vec<String> = fields
        .iter()
        .flatten()
        .map(|f| format!("{}:{f}", f.len()))
        .collect();
    hmac_hex(secret, text.join("|").as_bytes())
}

/// One signed borrow as a client sends it.
#[derive(Clone)]
struct Signed {
    tool: String,
    user: String,
    ts: i64,
    nonce: Option<String>,
    signature: String,
    idempotency_key: Option<String>,
    api_key: Option<String>,
}

impl Signed {
    fn nonceless(tool: &str, user: &str, ts: i64) -> Signed {
        Signed {
            tool: tool.into(),
            user: user.into(),
            ts,
            nonce: None,
            signature: nonceless_signature(SECRET, tool, user, ts, None),
            idempotency_key: None,
            api_key: None,
        }
    }

    fn with_nonce(tool: &str, user: &str, nonce: &str) -> Signed {
        Signed::with_nonce_at(tool, user, nonce, now())
    }

    fn with_nonce_at(tool: &str, user: &str, nonce: &str, ts: i64) -> Signed {
        Signed {
            tool: tool.into(),
            user: user.into(),
            ts,
            nonce: Some(nonce.into()),
            signature: nonce_signature(SECRET, tool, user, ts, nonce, None),
            idempotency_key: None,
            api_key: None,
        }
    }

    fn idempotency_key(mut self, key: &str) -> Signed {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sends it to `url`: (status, body, whether answered as an idempotent replay).
    async fn send(&self, url: &str) -> (u16, Value, bool) {
        let client = reqwest::Client::new();
        let mut req = client
            .post(format!("{url}/licenses/borrow"))
            .header("x-vendor-id", VENDOR)
            .header("x-timestamp", self.ts.to_string())
            .header("x-signature", &self.signature)
            .json(&json!({"tool": self.tool, "user": self.user}));
        if let Some(nonce) = &self.nonce {
            req = req.header("x-nonce", nonce);
        }
        if let Some(key) = &self.idempotency_key {
            req = req.header("idempotency-key", key);
        }
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let replayed = resp.headers().get("idempotent-replayed").is_some();
        (status, resp.json().await.unwrap(), replayed)
    }
}

async fn give_back(url: &str, id: &Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/licenses/return"))
        .json(&json!({ "id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn metrics(url: &str) -> String {
    test_support::http::metrics_text(format!("{url}/metrics")).await
}

/// The sample of `metric` whose labels include every `name="value"` of `labels` (0 if none).
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    test_support::http::metric_with(text, metric, labels).unwrap_or(0.0)
}

fn assert_refused(answer: &(u16, Value, bool), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], code, "{}", answer.1);
}

#[tokio::test]
async fn nonceless_repeats_are_granted_up_to_capacity_then_409_and_counted() {
    let setup = Setup::new();
    let server = setup.server(&[]);
    // The original clients' format: 20 borrows of one tool for one user in one second carry one
    // signature.
    let request = Signed::nonceless(SMALL, "ann", now());
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(request.send(&server.url).await);
    }
    for (i, answer) in answers.iter().enumerate() {
        if i < 5 {
            assert_eq!(answer.0, 200, "borrow {i}: {}", answer.1);
        } else {
            assert_refused(answer, 409, "exhausted");
        }
    }
    let text = metrics(&server.url).await;
    assert_eq!(
        sample(&text, "license_demo_signature_repeats_total", &[]),
        19.0
    );
    assert_eq!(
        sample(&text, "license_demo_signature_nonceless_total", &[]),
        20.0
    );
    let refused = [("http_route", "/licenses/borrow"), ("reason", "exhausted")];
    assert_eq!(sample(&text, "realtime_refusals_total", &refused), 15.0);
    let stats = test_support::http::get_ok(format!("{}/realtime/stats", server.url)).await;
    assert_eq!(stats["counters"]["license_demo.signature.repeats"], 19);
    let row = stats["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "exhausted")
        .unwrap_or_else(|| panic!("no exhausted refusals in {stats}"));
    assert_eq!(
        (row["status"].as_u64(), row["count"].as_u64()),
        (Some(409), Some(15))
    );
}

#[tokio::test]
async fn strict_replay_refuses_nonceless_repeats_but_not_nonces() {
    let setup = Setup::new();
    let server = setup.server(&["--strict-replay"]);
    let request = Signed::nonceless(SMALL, "ann", now());
    assert_eq!(request.send(&server.url).await.0, 200);
    for _ in 0..19 {
        assert_refused(&request.send(&server.url).await, 401, "signature_replayed");
    }
    // The nonce form is unaffected: 4 more licenses, then the capacity answer.
    for i in 0..5 {
        let answer = Signed::with_nonce(SMALL, "ann", &format!("strict-nonce-{i:04}-abcdef"))
            .send(&server.url)
            .await;
        if i < 4 {
            assert_eq!(answer.0, 200, "{}", answer.1);
        } else {
            assert_refused(&answer, 409, "exhausted");
        }
    }
    let text = metrics(&server.url).await;
    assert_eq!(
        sample(&text, "license_demo_signature_repeats_total", &[]),
        0.0
    );
    let replays = [
        ("reason", "signature_replayed"),
        ("http_response_status_code", "401"),
    ];
    assert_eq!(sample(&text, "realtime_refusals_total", &replays), 19.0);
}

#[tokio::test]
async fn a_replayed_nonce_is_always_refused() {
    let setup = Setup::new();
    let server = setup.server(&[]);
    let first = Signed::with_nonce(SMALL, "bea", "nonce-0001-replayed-x");
    let granted = first.send(&server.url).await;
    assert_eq!(granted.0, 200, "{}", granted.1);
    assert_refused(&first.send(&server.url).await, 401, "signature_replayed");
    // The same nonce and timestamp signed afresh for another user is still spent (one use per
    // vendor and timestamp, as OAuth 1.0 scopes nonces).
    let reused = Signed::with_nonce_at(SMALL, "cid", "nonce-0001-replayed-x", first.ts);
    assert_refused(&reused.send(&server.url).await, 401, "signature_replayed");
    // Under another timestamp it is another signed request (only the secret's holder can make
    // it): accepted.
    let later = Signed::with_nonce_at(SMALL, "cid", "nonce-0001-replayed-x", first.ts - 7);
    let granted_later = later.send(&server.url).await;
    assert_eq!(granted_later.0, 200, "{}", granted_later.1);
    give_back(&server.url, &granted_later.1["id"]).await;
    // A request refused for capacity spends its nonce too: replayed once licenses are back, it
    // does not take one.
    for i in 0..4 {
        let fill = Signed::with_nonce(SMALL, "bea", &format!("nonce-fill-{i:04}-abcdef"));
        assert_eq!(fill.send(&server.url).await.0, 200);
    }
    let refused = Signed::with_nonce(SMALL, "dee", "nonce-0002-refused-x");
    assert_refused(&refused.send(&server.url).await, 409, "exhausted");
    give_back(&server.url, &granted.1["id"]).await;
    assert_refused(&refused.send(&server.url).await, 401, "signature_replayed");
    let status = test_support::http::get_ok(format!(
        "{}/licenses/{}/status",
        server.url,
        SMALL.replace(' ', "%20")
    ))
    .await;
    assert_eq!(status["borrowed"], 4, "the replay took nothing");
}

#[tokio::test]
async fn wrong_or_stale_signatures_are_refused_in_both_forms() {
    let setup = Setup::new();
    let server = setup.server(&[]);
    let url = &server.url;
    let ts = now();
    let nonce = "nonce-0003-wrongsig-x";
    // Another secret.
    let mut wrong = Signed::nonceless(SMALL, "eve", ts);
    wrong.signature = nonceless_signature("another-secret-0123456789", SMALL, "eve", ts, None);
    assert_refused(&wrong.send(url).await, 401, "signature_invalid");
    let mut wrong = Signed::with_nonce(SMALL, "eve", nonce);
    wrong.signature = nonce_signature("another-secret-0123456789", SMALL, "eve", ts, nonce, None);
    assert_refused(&wrong.send(url).await, 401, "signature_invalid");
    // Signed for someone else.
    let mut other = Signed::nonceless(SMALL, "eve", ts);
    other.user = "fay".into();
    assert_refused(&other.send(url).await, 401, "signature_invalid");
    let mut other = Signed::with_nonce(SMALL, "eve", nonce);
    other.user = "fay".into();
    assert_refused(&other.send(url).await, 401, "signature_invalid");
    // A nonce-form signature sent without its nonce, and the other way round.
    let mut stripped = Signed::with_nonce(SMALL, "eve", nonce);
    stripped.nonce = None;
    assert_refused(&stripped.send(url).await, 401, "signature_invalid");
    let mut added = Signed::nonceless(SMALL, "eve", ts);
    added.nonce = Some(nonce.into());
    assert_refused(&added.send(url).await, 401, "signature_invalid");
    // The signed text is unambiguous: tool `Small|x` with user `eve` is not tool `Small` with
    // user `x|eve`.
    let mut shifted = Signed::with_nonce("Small|x", "eve", nonce);
    (shifted.tool, shifted.user) = ("Small".into(), "x|eve".into());
    assert_refused(&shifted.send(url).await, 401, "signature_invalid");
    // A nonce that is not 16 to 64 URL-safe characters.
    for bad in ["short", "sixteen chars ok", &"n".repeat(65)] {
        let mut request = Signed::with_nonce(SMALL, "eve", nonce);
        request.nonce = Some(bad.to_string());
        assert_refused(&request.send(url).await, 401, "nonce_invalid");
    }
    // Stale or from the future, in both forms. The window is ±300 s around the server's clock;
    // `ts` was read earlier in this test, so the server may be a second or more past it: stay
    // well outside the window on both sides (±301 accepted a "future" request when a second
    // ticked in between).
    for off in [-310, 310] {
        let stale = Signed::nonceless(SMALL, "eve", ts + off);
        assert_refused(&stale.send(url).await, 401, "signature_expired");
        let mut stale = Signed::with_nonce(SMALL, "eve", nonce);
        stale.ts = ts + off;
        stale.signature = nonce_signature(SECRET, SMALL, "eve", ts + off, nonce, None);
        assert_refused(&stale.send(url).await, 401, "signature_expired");
    }
    // None of that spent the nonce: the real request goes through once.
    let real = Signed::with_nonce(SMALL, "eve", nonce);
    assert_eq!(real.send(url).await.0, 200);
    let text = metrics(url).await;
    let invalid = [
        ("reason", "signature_invalid"),
        ("http_route", "/licenses/borrow"),
    ];
    assert_eq!(sample(&text, "realtime_refusals_total", &invalid), 7.0);
    assert_eq!(
        sample(
            &text,
            "realtime_refusals_total",
            &[("reason", "signature_expired")]
        ),
        4.0
    );
}

#[tokio::test]
async fn a_nonce_replayed_after_a_restart_or_to_a_second_process_is_refused() {
    let setup = Setup::new();
    let first = setup.server(&[]);
    let request = Signed::with_nonce(SMALL, "gus", "nonce-0004-restart-xy");
    assert_eq!(request.send(&first.url).await.0, 200);
    first.kill(); // SIGKILL: nothing is flushed on the way out

    let restarted = setup.server(&[]);
    assert_refused(
        &request.send(&restarted.url).await,
        401,
        "signature_replayed",
    );
    // Two processes on one database: a nonce used on one is spent on the other.
    let second = setup.server(&[]);
    let fresh = Signed::with_nonce(SMALL, "gus", "nonce-0005-twoprocs-z");
    assert_eq!(fresh.send(&restarted.url).await.0, 200);
    assert_refused(&fresh.send(&second.url).await, 401, "signature_replayed");
    let other = Signed::with_nonce(SMALL, "gus", "nonce-0006-twoprocs-z");
    assert_eq!(other.send(&second.url).await.0, 200);
    assert_refused(&other.send(&restarted.url).await, 401, "signature_replayed");
    assert!(setup.db().exists());
}

#[tokio::test]
async fn a_signed_retry_with_the_same_idempotency_key_is_answered_not_refused() {
    let setup = Setup::new();
    let server = setup.server(&[]);
    let url = &server.url;
    let mut held = Vec::new();
    for i in 0..5 {
        let fill = Signed::with_nonce(SMALL, "hal", &format!("nonce-hold-{i:04}-abcdef"));
        let answer = fill.send(url).await;
        assert_eq!(answer.0, 200);
        held.push(answer.1["id"].clone());
    }
    let retry =
        Signed::with_nonce(SMALL, "ida", "nonce-0007-retry-xyzw").idempotency_key("order-1");
    assert_refused(&retry.send(url).await, 409, "exhausted");
    // The client retries the very same request: the pool answers again (still exhausted) ...
    assert_refused(&retry.send(url).await, 409, "exhausted");
    // ... and once a license is back, the retry is a fresh attempt that gets it.
    give_back(url, &held[0]).await;
    let granted = retry.send(url).await;
    assert_eq!(granted.0, 200, "{}", granted.1);
    assert!(!granted.2, "a fresh borrow, not a replayed answer");
    // From then on the stored outcome answers, without a second license.
    give_back(url, &held[1]).await;
    let again = retry.send(url).await;
    assert_eq!(
        (again.0, &again.1["id"], again.2),
        (200, &granted.1["id"], true)
    );
    // A retry signed afresh (new nonce, same key) gets the stored outcome too.
    let resigned =
        Signed::with_nonce(SMALL, "ida", "nonce-0008-retry-xyzw").idempotency_key("order-1");
    let answer = resigned.send(url).await;
    assert_eq!((answer.0, &answer.1["id"]), (200, &granted.1["id"]));
    // The same signed request under another key is a replay.
    let other_key = retry.clone().idempotency_key("order-2");
    assert_refused(&other_key.send(url).await, 401, "signature_replayed");
    // An unknown tool answers 404 on the retry as on the first try.
    let unknown = Signed::with_nonce("No Such Tool", "ida", "nonce-0009-unknown-x")
        .idempotency_key("order-3");
    assert_refused(&unknown.send(url).await, 404, "unknown_tool");
    assert_refused(&unknown.send(url).await, 404, "unknown_tool");
}

#[tokio::test]
async fn the_stress_tool_signs_and_authenticates_with_zero_401s() {
    let setup = Setup::new();
    let keys = setup.path("keys.toml");
    let server = setup.server(&["--api-keys", &keys]);
    let out = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args(["stress", "--target", &server.url, "--profile", "custom"])
        .args([
            "--workers",
            "8",
            "--ops",
            "40",
            "--hold-ms",
            "0",
            "--tool",
            ROOMY,
        ])
        .args([
            "--vendor-id",
            VENDOR,
            "--api-key",
            API_KEY,
            "--json",
            "--no-progress",
        ])
        .env("LICENSE_DEMO_STRESS_VENDOR_SECRET", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["attempted"], 320, "{report}");
    assert_eq!(report["successes"], 320, "{report}");
    assert_eq!(report["returns_ok"], 320, "{report}");
    assert_eq!(report["failures"], json!({}), "{report}");
    assert_eq!(report["config"]["credentials"]["vendor_id"], VENDOR);
    assert!(
        !stdout.contains(SECRET) && !stdout.contains(API_KEY),
        "{stdout}"
    );
    let text = metrics(&server.url).await;
    assert_eq!(
        sample(
            &text,
            "realtime_refusals_total",
            &[("http_response_status_code", "401")]
        ),
        0.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "license_demo_signature_nonceless_total", &[]),
        0.0
    );
    // Without the key the same run is refused, and counted so.
    let out = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args(["stress", "--target", &server.url, "--profile", "custom"])
        .args(["--workers", "2", "--ops", "3", "--tool", ROOMY])
        .args(["--vendor-id", VENDOR, "--json", "--no-progress"])
        .env("LICENSE_DEMO_STRESS_VENDOR_SECRET", SECRET)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failures"]["unauthorized"], 6, "{report}");
    let text = metrics(&server.url).await;
    let unauthorized = [
        ("reason", "unauthorized"),
        ("http_response_status_code", "401"),
    ];
    assert_eq!(sample(&text, "realtime_refusals_total", &unauthorized), 6.0);
}
