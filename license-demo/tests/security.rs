//! Access control over real HTTP: the browser-facing defaults (Content-Type, Origin, Host), API
//! keys and tenants, ownership of returns, idempotent borrows, signed requests, dashboard
//! credentials and `GET /version`.

mod common;

use common::{assert_error, start_default, start_secured, TestServer};
use hmac::{Hmac, Mac};
use license_demo::auth::{ApiKeys, DashboardAuth, SecurityConfig, SignatureVerifier};
use license_demo::config::{default_tools, parse_api_keys_toml, parse_vendor_secrets_toml};
use realtime_layer::SystemClock;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::Arc;

const ECU: &str = "ECU Development Suite";
const ACME_KEY: &str = "acme-key-0123456789abcdef";
const GLOBEX_KEY: &str = "globex-key-0123456789abcdef";
const VENDOR: &str = "vendor-42";
const VENDOR_SECRET: &str = "vendor-42-secret-0123456789";

const KEYS_TOML: &str = r#"
[keys."acme-key-0123456789abcdef"]
tenant = "acme"
users = ["alice", "bob"]

[keys."globex-key-0123456789abcdef"]
tenant = "globex"
users = ["*"]
"#;

fn keys() -> Option<Arc<ApiKeys>> {
    Some(Arc::new(ApiKeys::new(
        parse_api_keys_toml(KEYS_TOML).unwrap(),
    )))
}

fn signatures() -> Option<Arc<SignatureVerifier>> {
    let vendors = parse_vendor_secrets_toml(&format!(
        "[vendors]\n\"{VENDOR}\" = \"{VENDOR_SECRET}\"\nother = \"other-secret-0123456789\"\n"
    ))
    .unwrap();
    Some(Arc::new(SignatureVerifier::new(
        vendors,
        Arc::new(SystemClock::new()),
    )))
}

fn port(s: &TestServer) -> u16 {
    s.server.local_addr().port()
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn borrow_body(user: &str) -> String {
    json!({"tool": ECU, "user": user}).to_string()
}

#[tokio::test]
async fn cross_site_borrows_are_refused_by_default() {
    let s = start_default().await;
    // The classic CSRF form: a text/plain "simple request" (no CORS preflight) from another site.
    let (code, body) = send(
        s.client
            .post(s.url("/licenses/borrow"))
            .header("content-type", "text/plain")
            .header("origin", "http://evil.example")
            .body(borrow_body("victim")),
    )
    .await;
    assert_error(code, &body, 403, "forbidden_origin");
    // Even without an Origin (e.g. a stripped Referer policy), text/plain is not JSON.
    let (code, body) = send(
        s.client
            .post(s.url("/licenses/borrow"))
            .header("content-type", "text/plain")
            .body(borrow_body("victim")),
    )
    .await;
    assert_error(code, &body, 415, "unsupported_media_type");
    let (code, body) = send(
        s.client
            .post(s.url("/licenses/borrow"))
            .body(borrow_body("x")),
    )
    .await;
    assert_error(code, &body, 415, "unsupported_media_type");
    // A JSON borrow from a foreign page (it would need a preflight, but refuse it anyway).
    let (code, body) = send(
        s.client
            .post(s.url("/licenses/return"))
            .header("origin", "http://evil.example")
            .json(&json!({"id": "x"})),
    )
    .await;
    assert_error(code, &body, 403, "forbidden_origin");
    assert_eq!(
        s.status_of(ECU).await["borrowed"],
        0,
        "nothing was borrowed"
    );

    // Same-origin pages and clients that send no Origin keep working.
    let own = format!("http://127.0.0.1:{}", port(&s));
    let (code, body) = send(
        s.client
            .post(s.url("/licenses/borrow"))
            .header("origin", own)
            .header("content-type", "application/json; charset=utf-8")
            .body(borrow_body("alice")),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(s.borrow(ECU, "bob").await.0, 200);
    // Cross-site WebSocket hijacking of the live stream is refused too.
    let (code, body) = send(
        s.client
            .get(s.url("/realtime/ws"))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("origin", "http://evil.example"),
    )
    .await;
    assert_error(code, &body, 403, "forbidden_origin");
    // Reads are not Origin-checked (the dashboard and status pages are plain GETs).
    let (code, _) = send(
        s.client
            .get(s.url("/licenses/status"))
            .header("origin", "http://evil.example"),
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn allowed_origins_extend_same_origin() {
    let s = start_secured(
        default_tools(),
        SecurityConfig {
            allowed_origins: vec!["https://tools.example.com".into()],
            ..Default::default()
        },
    )
    .await;
    let post = |origin: &'static str| {
        s.client
            .post(s.url("/licenses/borrow"))
            .header("origin", origin)
            .json(&json!({"tool": ECU, "user": "u"}))
    };
    assert_eq!(send(post("https://tools.example.com")).await.0, 200);
    let (code, body) = send(post("https://evil.example.com")).await;
    assert_error(code, &body, 403, "forbidden_origin");
    let (code, body) = send(post("null")).await;
    assert_error(code, &body, 403, "forbidden_origin");
    // The listed site gets CORS answers, so its page can really call the API; others do not.
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url("/licenses/borrow"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization,idempotency-key",
            )
    };
    let ok = preflight("https://tools.example.com").send().await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://tools.example.com"
    );
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    // Every header a signed browser client sends, the nonce form's `X-Nonce` included.
    for header in [
        "idempotency-key",
        "authorization",
        "x-signature",
        "x-timestamp",
        "x-vendor-id",
        "x-nonce",
    ] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }
    let evil = preflight("https://evil.example.com").send().await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn dns_rebinding_host_is_refused_and_loopback_names_work() {
    let s = start_default().await;
    let p = port(&s);
    for path in [
        "/licenses/status",
        "/realtime",
        "/realtime/stats",
        "/metrics",
    ] {
        let (code, body) = send(
            s.client
                .get(s.url(path))
                .header("host", format!("evil.example:{p}")),
        )
        .await;
        assert_error(code, &body, 421, "misdirected_request");
    }
    let (code, body) = send(
        s.client
            .post(s.url("/licenses/borrow"))
            .header("host", format!("rebind.evil.example:{p}"))
            .json(&json!({"tool": ECU, "user": "u"})),
    )
    .await;
    assert_error(code, &body, 421, "misdirected_request");
    for host in [
        format!("localhost:{p}"),
        format!("127.0.0.1:{p}"),
        format!("[::1]:{p}"),
    ] {
        let (code, body) = send(s.client.get(s.url("/licenses/status")).header("host", host)).await;
        assert_eq!(code, 200, "{body}");
    }
    // Another port is another server.
    let (code, _) = send(
        s.client
            .get(s.url("/licenses/status"))
            .header("host", format!("localhost:{}", p.wrapping_add(1))),
    )
    .await;
    assert_eq!(code, 421);
    assert_eq!(s.status_of(ECU).await["borrowed"], 0);
}

#[tokio::test]
async fn allowed_hosts_replace_the_defaults() {
    let s = start_secured(
        default_tools(),
        SecurityConfig {
            allowed_hosts: vec!["licenses.example.com".into()],
            ..Default::default()
        },
    )
    .await;
    let get = |host: &str| {
        s.client
            .get(s.url("/licenses/status"))
            .header("host", host.to_string())
    };
    assert_eq!(send(get("licenses.example.com")).await.0, 200);
    assert_eq!(send(get("licenses.example.com:443")).await.0, 200);
    assert_eq!(send(get("other.example.com")).await.0, 421);
}

#[tokio::test]
async fn the_dashboard_loads_on_loopback_with_defaults() {
    let s = start_default().await;
    let page = s.client.get(s.url("/realtime")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().to_lowercase().contains("<html"));
    for path in ["/realtime/stats", "/realtime/config", "/metrics"] {
        let resp = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let localhost = format!("http://localhost:{}/realtime", port(&s));
    let page = s.client.get(localhost).send().await.unwrap();
    assert_eq!(page.status(), 200);
}

#[tokio::test]
async fn version_answers_the_crate_version() {
    let s = start_default().await;
    let (code, body) = s.get("/version").await;
    assert_eq!(code, 200);
    assert_eq!(body, json!({"version": env!("CARGO_PKG_VERSION")}));
}

#[tokio::test]
async fn a_return_by_another_user_is_forbidden() {
    let s = start_default().await;
    let id = s.borrow(ECU, "alice").await.1["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = s
        .post_json("/licenses/return", json!({"id": id, "user": "mallory"}))
        .await;
    assert_error(code, &body, 403, "not_owner");
    assert_eq!(s.status_of(ECU).await["borrowed"], 1, "still borrowed");
    let (code, body) = s
        .post_json("/licenses/return", json!({"id": id, "user": "alice"}))
        .await;
    assert_eq!(code, 200, "{body}");
    // Without `user` (the original's clients send only the id) the id is the proof.
    let id = s.borrow(ECU, "alice").await.1["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.return_id(&id).await.0, 200);
}

fn keyed(s: &TestServer, key: Option<&str>, path: &str) -> reqwest::RequestBuilder {
    let req = s.client.post(s.url(path));
    match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    }
}

#[tokio::test]
async fn api_keys_authenticate_and_scope_tenants() {
    let s = start_secured(
        default_tools(),
        SecurityConfig {
            api_keys: keys(),
            ..Default::default()
        },
    )
    .await;
    let borrow = |key: Option<&'static str>, user: &'static str| {
        keyed(&s, key, "/licenses/borrow").json(&json!({"tool": ECU, "user": user}))
    };
    let (code, body) = send(borrow(None, "alice")).await;
    assert_error(code, &body, 401, "unauthorized");
    let resp = borrow(Some("acme-key-wrong-0123456789"), "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let (code, body) = send(borrow(Some(ACME_KEY), "mallory")).await;
    assert_error(code, &body, 403, "forbidden_user");

    let (code, alice) = send(borrow(Some(ACME_KEY), "alice")).await;
    assert_eq!(code, 200, "{alice}");
    let (code, globex) = send(borrow(Some(GLOBEX_KEY), "anyone")).await;
    assert_eq!(code, 200, "{globex}");

    // Lists: 401 without a key, otherwise only the caller's tenant.
    let (code, _) = send(s.client.get(s.url("/borrows"))).await;
    assert_eq!(code, 401);
    let (_, acme_list) = send(s.client.get(s.url("/borrows")).bearer_auth(ACME_KEY)).await;
    assert_eq!(acme_list.as_array().unwrap().len(), 1);
    assert_eq!(acme_list[0]["id"], alice["id"]);
    let (_, globex_list) = send(s.client.get(s.url("/borrows")).bearer_auth(GLOBEX_KEY)).await;
    assert_eq!(globex_list.as_array().unwrap().len(), 1);
    assert_eq!(globex_list[0]["id"], globex["id"]);

    // Another tenant cannot return it; the same tenant can (another of its users too).
    let ret = |key: Option<&'static str>, id: &Value| {
        keyed(&s, key, "/licenses/return").json(&json!({ "id": id }))
    };
    assert_eq!(send(ret(None, &alice["id"])).await.0, 401);
    let (code, body) = send(ret(Some(GLOBEX_KEY), &alice["id"])).await;
    assert_error(code, &body, 403, "not_owner");
    assert_eq!(s.status_of(ECU).await["borrowed"], 2);
    let (code, body) = send(ret(Some(ACME_KEY), &alice["id"])).await;
    assert_eq!(code, 200, "{body}");
    // Status and version stay public.
    assert_eq!(s.get("/licenses/status").await.0, 200);
    assert_eq!(s.get("/version").await.0, 200);
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_first_borrow() {
    let s = start_default().await;
    let borrow = |key: &'static str, user: &'static str| {
        s.client
            .post(s.url("/licenses/borrow"))
            .header("idempotency-key", key)
            .json(&json!({"tool": ECU, "user": user}))
    };
    let first = borrow("retry-1", "ivy").send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = borrow("retry-1", "ivy").send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "same id, same body");
    assert_eq!(
        s.status_of(ECU).await["borrowed"],
        1,
        "one license, not two"
    );

    let (code, body) = send(borrow("retry-1", "jon")).await;
    assert_error(code, &body, 422, "idempotency_key_reused");
    let (code, body) = send(
        s.client
            .post(s.url("/licenses/borrow"))
            .header("idempotency-key", "has space")
            .json(&json!({"tool": ECU, "user": "ivy"})),
    )
    .await;
    assert_error(code, &body, 400, "invalid_idempotency_key");
    // Another key is another borrow.
    let (code, other) = send(borrow("retry-2", "ivy")).await;
    assert_eq!(code, 200);
    assert_ne!(other["id"], first["id"]);
    // After the borrow was returned the retry says so, and does not borrow anew.
    assert_eq!(s.return_id(first["id"].as_str().unwrap()).await.0, 200);
    let (code, late) = send(borrow("retry-1", "ivy")).await;
    assert_error(code, &late, 409, "borrow_returned");
    assert_eq!(
        (&late["id"], &late["state"]),
        (&first["id"], &json!("returned"))
    );
    assert_eq!(s.status_of(ECU).await["borrowed"], 1);
}

/// The signature exactly as documented: lowercase hex HMAC-SHA256 keyed with the vendor
/// secret, of `tool|user|timestamp`, plus `|api_key` when a Bearer key is sent.
fn documented_signature(
    secret: &str,
    tool: &str,
    user: &str,
    ts: i64,
    api_key: Option<&str>,
) -> String {
    let mut message = format!("{tool}|{user}|{ts}");
    if let Some(key) = api_key {
        message.push('|');
        message.push_str(key);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signed(
    s: &TestServer,
    vendor: &str,
    signature: &str,
    ts: i64,
    user: &str,
) -> reqwest::RequestBuilder {
    s.client
        .post(s.url("/licenses/borrow"))
        .header("x-vendor-id", vendor)
        .header("x-timestamp", ts.to_string())
        .header("x-signature", signature)
        .json(&json!({"tool": ECU, "user": user}))
}

#[tokio::test]
async fn signed_requests_as_the_original_clients_send_them() {
    let s = start_secured(
        default_tools(),
        SecurityConfig {
            signatures: signatures(),
            ..Default::default()
        },
    )
    .await;
    let ts = now_secs();
    let good = documented_signature(VENDOR_SECRET, ECU, "sam", ts, None);
    assert_eq!(
        good,
        license_demo::auth::sign(VENDOR_SECRET.as_bytes(), ECU, "sam", ts, None),
        "the server's helper signs exactly as documented"
    );
    let (code, body) = send(signed(&s, VENDOR, &good, ts, "sam")).await;
    assert_eq!(code, 200, "{body}");

    // The very same signed request again: the nonce-less form cannot tell a repeat from a
    // replay, so by default it is accepted (and counted), as the original did; --strict-replay
    // refuses it (tests/signed_clients.rs).
    let (code, body) = send(signed(&s, VENDOR, &good, ts, "sam")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(s.server.pool().signature_repeats(), 1);
    // Missing: an unsigned request.
    let (code, body) = s.borrow(ECU, "sam").await;
    assert_error(code, &body, 401, "signature_missing");
    // Bad: signed for another user.
    let other = documented_signature(VENDOR_SECRET, ECU, "eve", ts, None);
    let (code, body) = send(signed(&s, VENDOR, &other, ts, "sam")).await;
    assert_error(code, &body, 401, "signature_invalid");
    let (code, body) = send(signed(&s, VENDOR, "zz-not-hex", ts, "sam")).await;
    assert_error(code, &body, 401, "signature_invalid");
    // Stale: older (or newer) than 300 s. `ts` was read earlier and a second may have ticked
    // since, so stay well outside the window (±301 could land on its edge).
    for off in [-310, 310] {
        let stale = documented_signature(VENDOR_SECRET, ECU, "sam", ts + off, None);
        let (code, body) = send(signed(&s, VENDOR, &stale, ts + off, "sam")).await;
        assert_error(code, &body, 401, "signature_expired");
    }
    // Wrong vendor: unknown id, or a known vendor whose secret did not sign it.
    let (code, body) = send(signed(&s, "vendor-99", &good, ts, "sam")).await;
    assert_error(code, &body, 401, "unknown_vendor");
    let fresh = documented_signature(VENDOR_SECRET, ECU, "sam", ts - 1, None);
    let (code, body) = send(signed(&s, "other", &fresh, ts - 1, "sam")).await;
    assert_error(code, &body, 401, "signature_invalid");
    assert_eq!(
        s.status_of(ECU).await["borrowed"],
        2,
        "only the good one (twice)"
    );
    // Reads are not signed.
    assert_eq!(s.get("/licenses/status").await.0, 200);
}

#[tokio::test]
async fn signatures_cover_the_api_key_and_idempotent_retries() {
    let s = start_secured(
        default_tools(),
        SecurityConfig {
            api_keys: keys(),
            signatures: signatures(),
            ..Default::default()
        },
    )
    .await;
    let ts = now_secs();
    let without_key = documented_signature(VENDOR_SECRET, ECU, "bob", ts, None);
    let (code, body) =
        send(signed(&s, VENDOR, &without_key, ts, "bob").bearer_auth(ACME_KEY)).await;
    assert_error(code, &body, 401, "signature_invalid");
    let with_key = documented_signature(VENDOR_SECRET, ECU, "bob", ts, Some(ACME_KEY));
    let retry = || {
        signed(&s, VENDOR, &with_key, ts, "bob")
            .bearer_auth(ACME_KEY)
            .header("idempotency-key", "signed-retry")
    };
    let (code, first) = send(retry()).await;
    assert_eq!(code, 200, "{first}");
    // The client resends the identical request after a lost answer: same borrow, not a replay
    // refusal and not a second license.
    let (code, again) = send(retry()).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(s.status_of(ECU).await["borrowed"], 1);
}

#[tokio::test]
async fn unsigned_requests_pass_without_require_signature() {
    // The original's clients send signature headers (and a Bearer token) the default server
    // ignores; tests/api.rs checks a full borrow with them, this one a bogus signature.
    let s = start_default().await;
    let (code, body) = send(signed(&s, "nobody", "00", 1, "sam")).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn dashboard_credentials_guard_realtime_and_metrics_only() {
    for (auth, good) in [
        (
            DashboardAuth::basic("ops:s3cret").unwrap(),
            "Basic b3BzOnMzY3JldA==",
        ),
        (
            DashboardAuth::bearer("dash-token").unwrap(),
            "Bearer dash-token",
        ),
    ] {
        let s = start_secured(
            default_tools(),
            SecurityConfig {
                dashboard_auth: Some(auth),
                ..Default::default()
            },
        )
        .await;
        for path in ["/realtime", "/realtime/stats", "/metrics"] {
            let resp = s.client.get(s.url(path)).send().await.unwrap();
            assert_eq!(resp.status(), 401, "{path}");
            assert!(resp.headers().contains_key("www-authenticate"));
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized");
            let resp = s
                .client
                .get(s.url(path))
                .header("authorization", "Basic d3Jvbmc6d3Jvbmc=")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401, "{path}");
            let resp = s
                .client
                .get(s.url(path))
                .header("authorization", good)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path} with {good}");
        }
        // The license API is not behind the dashboard credentials.
        assert_eq!(s.borrow(ECU, "u").await.0, 200);
        assert_eq!(s.get("/licenses/status").await.0, 200);
    }
}
