//! Each example, started on port 0 and checked over real HTTP: an event it generates appears in
//! its `/…/realtime/stats`.

#[allow(dead_code)]
#[path = "../examples/classifier.rs"]
mod classifier;
#[allow(dead_code)]
#[path = "../examples/minimal.rs"]
mod minimal;
#[allow(dead_code)]
#[path = "../examples/nested.rs"]
mod nested;
#[allow(dead_code)]
#[path = "../examples/otel_prometheus.rs"]
mod otel_prometheus;
#[allow(dead_code)]
#[path = "../examples/plain_tower.rs"]
mod plain_tower;
#[allow(dead_code)]
#[path = "../examples/pool_status.rs"]
mod pool_status;
#[allow(dead_code)]
#[path = "../examples/response_extensions.rs"]
mod response_extensions;

use realtime_layer::Realtime;
use serde_json::Value;
use std::net::SocketAddr;

async fn serve<S>(app: S) -> SocketAddr
where
    S: realtime_examples::AppService,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn post(url: String, user: Option<&str>) -> u16 {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json");
    if let Some(user) = user {
        req = req
            .body(serde_json::json!({ "user": user }).to_string())
            .header("x-user", user);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn stats(url: String) -> Value {
    test_support::http::get_ok(url).await
}

fn events(stats: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = stats["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let detail = e["reason"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| e["overage"].to_string());
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["resource"].as_str().unwrap().to_owned(),
                detail,
            )
        })
        .collect();
    out.reverse();
    out
}

fn ev(kind: &str, resource: &str, detail: &str) -> (String, String, String) {
    (kind.into(), resource.into(), detail.into())
}

#[tokio::test]
async fn minimal_records_handler_events() {
    let rt = Realtime::builder().build().unwrap();
    let addr = serve(minimal::app(&rt)).await;
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/seats/A1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "seat A1 booked\n");
    let res = reqwest::Client::new()
        .delete(format!("http://{addr}/seats/A1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let s = stats(format!("http://{addr}/realtime/stats")).await;
    assert_eq!(
        events(&s),
        vec![ev("borrow", "A1", "false"), ev("return", "A1", "false")]
    );
    assert_eq!(s["recent_events"][0]["user"], "guest");
}

#[tokio::test]
async fn response_extensions_cover_parts_manual_and_multiple() {
    let rt = Realtime::builder().build().unwrap();
    let addr = serve(response_extensions::app(&rt, response_extensions::rooms())).await;
    let desks = format!("http://{addr}/rooms/Library/desks");
    for _ in 0..3 {
        assert_eq!(post(desks.clone(), Some("ann")).await, 201);
    }
    assert_eq!(post(desks.clone(), Some("bob")).await, 409);
    let res = reqwest::Client::new()
        .delete(&desks)
        .body(r#"{"user":"ann"}"#)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        post(format!("http://{addr}/rooms/Library/evacuate"), None).await,
        200
    );
    let s = stats(format!("http://{addr}/realtime/stats")).await;
    let mut got = events(&s);
    assert_eq!(got.len(), 7, "{got:?}");
    // The refusal and the returns after it may share a millisecond, where readers order events
    // by kind (borrow, return, failure), not by arrival: compare them as a set.
    got[3..].sort();
    assert_eq!(got[3], ev("failure", "Library", "exhausted"));
    assert_eq!(got[4], ev("return", "Library", "false"));
    assert_eq!(
        (s["borrow_count"].as_u64(), s["return_count"].as_u64()),
        (Some(3), Some(3))
    );
}

#[tokio::test]
async fn classifier_maps_untouched_handlers() {
    let rt = Realtime::builder().build().unwrap();
    let addr = serve(classifier::app(&rt, classifier::pools())).await;
    let url = format!("http://{addr}/pools/h100/leases");
    let codes = [
        post(url.clone(), Some("ann")).await,
        post(url.clone(), Some("ann")).await,
        post(url.clone(), Some("bob")).await,
    ];
    assert_eq!(codes, [201, 201, 409]);
    let res = reqwest::Client::new()
        .delete(&url)
        .header("x-user", "ann")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let s = stats(format!("http://{addr}/realtime/stats")).await;
    let mut got = events(&s);
    // The refusal and the return after it may share a millisecond, where readers order events
    // by kind (borrow, return, failure), not by arrival: compare those two as a set.
    got[2..].sort();
    assert_eq!(
        got,
        vec![
            ev("borrow", "h100", "false"),
            ev("borrow", "h100", "false"),
            ev("failure", "h100", "exhausted"),
            ev("return", "h100", "false")
        ]
    );
    let refused = s["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "failure")
        .expect("the refusal is in recent_events");
    assert_eq!(refused["user"], "bob");
}

#[tokio::test]
async fn plain_tower_service_on_hyper() {
    let rt = Realtime::builder().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(plain_tower::run(
        listener,
        rt.clone(),
        plain_tower::Garage::new(),
    ));
    let mut codes = Vec::new();
    for plate in ["A", "B", "C", "D"] {
        codes.push(post(format!("http://{addr}/levels/roof/enter/{plate}"), None).await);
    }
    assert_eq!(codes, [200, 200, 200, 409]);
    assert_eq!(
        post(format!("http://{addr}/levels/roof/exit/A"), None).await,
        200
    );
    let s = stats(format!("http://{addr}/realtime/stats")).await;
    let mut got = events(&s);
    // The refusal of D and the exit of A may fall in one millisecond, where readers order
    // events by kind (borrow, return, failure), not by arrival: compare those two as a set.
    got[3..5].sort();
    assert_eq!(got[3], ev("failure", "roof", "full"));
    assert_eq!(got[4], ev("return", "roof", "false"));
    let refused = s["recent_events"].as_array().unwrap()[..2]
        .iter()
        .find(|e| e["kind"] == "failure")
        .expect("the refusal among the two newest events");
    assert_eq!(refused["user"], "D");
    let page = reqwest::get(format!("http://{addr}/realtime"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
}

#[tokio::test]
async fn pool_status_reports_commit_and_overage() {
    let pools = pool_status::pools();
    let rt = pool_status::realtime(pools.clone());
    let analytics = &pools[2];
    assert!(
        analytics.acquire(&rt, "w1")
            && analytics.acquire(&rt, "w2")
            && analytics.acquire(&rt, "w3")
    );
    let addr = serve(pool_status::app(&rt)).await;
    let s = stats(format!("http://{addr}/realtime/stats")).await;
    let pool = s["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "analytics")
        .unwrap()
        .clone();
    assert_eq!(
        (
            pool["total"].as_u64(),
            pool["commit"].as_u64(),
            pool["borrowed"].as_u64(),
            pool["overage"].as_u64()
        ),
        (Some(8), Some(2), Some(3), Some(1))
    );
    assert_eq!(
        s["recent_events"][0]["overage"], true,
        "the third connection is above the reservation"
    );
    let config = stats(format!("http://{addr}/realtime/config")).await;
    assert_eq!(config["labels"]["resources"], "Pools");
}

#[tokio::test]
async fn otel_metrics_share_the_apps_registry() {
    let telemetry = otel_prometheus::Telemetry::new().unwrap();
    let (app, _rt) = otel_prometheus::build(&telemetry).unwrap();
    let addr = serve(app).await;
    assert_eq!(post(format!("http://{addr}/bikes/rent"), None).await, 200);
    let s = stats(format!("http://{addr}/realtime/stats")).await;
    assert_eq!(events(&s), vec![ev("borrow", "city-bikes", "false")]);
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("app_requests_total") && l.ends_with(" 1")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("realtime_borrows_total")
            && l.contains(r#"resource="city-bikes""#)
            && l.contains(r#"overage="false""#)
            && l.ends_with(" 1")),
        "{text}"
    );
}

#[tokio::test]
async fn nested_dashboard_needs_the_token() {
    let rt = Realtime::builder().build().unwrap();
    let addr = serve(nested::app(&rt, "s3cret".into())).await;
    assert_eq!(post(format!("http://{addr}/checkout"), None).await, 200);
    let client = reqwest::Client::new();
    let (status, denied) =
        test_support::http::get_json(format!("http://{addr}/admin/realtime/stats")).await;
    assert_eq!(
        (status, &denied["error"]),
        (401, &Value::from("unauthorized"))
    );
    let wrong = client
        .get(format!("http://{addr}/admin/realtime/stats"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = client
        .get(format!("http://{addr}/admin/realtime/stats"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let s: Value = ok.json().await.unwrap();
    assert_eq!(events(&s), vec![ev("borrow", "api-quota", "false")]);
    // The page link with ?token= sets a cookie that later requests carry.
    let page = client
        .get(format!("http://{addr}/admin/realtime?token=s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("admin_token=s3cret") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let with_cookie = client
        .get(format!("http://{addr}/admin/realtime/config"))
        .header("cookie", "admin_token=s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), 200);
    // Nothing is served at the unprefixed path.
    assert_eq!(
        client
            .get(format!("http://{addr}/realtime/stats"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}
