//! The refusals on the page, in headless Chromium: with a refusal layer the card sits next to the
//! failures (total since start, the top reason, then a per-minute rate) and the table lists each
//! route, reason and status; reasons and routes go in as text; no console errors. Without a
//! refusal layer neither shows.
//!
//! Needs chromium and chromedriver; SKIPPED without them unless `REQUIRE_BROWSER=1`.

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use realtime_layer::{Event, Realtime, Refusal};
use serde_json::Value;
use std::time::Duration;
use test_support::browser::{binaries, start_session, Session};

mod common;
use common::serve;

async fn text(browser: &Session, id: &str) -> String {
    browser
        .execute(
            &format!("return document.getElementById('{id}').textContent"),
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_show_next_to_the_failures() {
    let Some(bins) = binaries("refusals browser test") else {
        return;
    };
    let rt = Realtime::builder().build().unwrap();
    let app = Router::new()
        .route(
            "/borrow",
            post(|| async {
                (
                    StatusCode::CONFLICT,
                    Refusal::new("exhausted"),
                    Event::failure("GPU", "ann", "exhausted"),
                    "all out",
                )
            }),
        )
        .route(
            "/signed",
            post(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    Refusal::new("signature_invalid"),
                    "no",
                )
            }),
        )
        .layer(rt.layer())
        .layer(rt.refusal_layer())
        .merge(rt.routes());
    let addr = serve(app).await;
    let http = reqwest::Client::new();
    for (path, n) in [("/borrow", 3), ("/signed", 2)] {
        for _ in 0..n {
            http.post(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap();
        }
    }
    // A page without a refusal layer, for the hidden case.
    let plain = Realtime::builder().build().unwrap();
    let plain_addr = serve(plain.routes()).await;

    let (driver, browser, profile) = start_session(&bins, "refusals", 1280, 900).await;
    let wait = Duration::from_secs(15);
    browser
        .goto(&format!("http://{addr}/realtime"))
        .await
        .unwrap();
    browser
        .wait_for(
            "the refusal card and table",
            "var c = document.getElementById('card-refusals'); \
             return !c.hidden && c.dataset.total === '5' && \
             document.querySelectorAll('#refusals-body tr').length === 2",
            wait,
        )
        .await;
    let sub = text(&browser, "m-refusals-sub").await;
    assert_eq!(sub, "5 since start · most: exhausted (409)");
    // Next to the failures card.
    let next: Value = browser
        .execute(
            "return document.getElementById('card-failures').nextElementSibling.id",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(next, "card-refusals");
    let rows: Value = browser
        .execute(
            "return Array.from(document.querySelectorAll('#refusals-body tr'))
               .map(r => Array.from(r.cells).slice(0, 4).map(c => c.textContent))",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            ["/borrow", "exhausted", "409", "3"],
            ["/signed", "signature_invalid", "401", "2"]
        ])
    );
    // The next poll (every 5 s) gives a rate: 2 more refusals in about 5 s.
    for _ in 0..2 {
        http.post(format!("http://{addr}/signed"))
            .send()
            .await
            .unwrap();
    }
    browser
        .wait_for(
            "a per-minute rate after the second poll",
            "return document.getElementById('card-refusals').dataset.total === '7' && \
             document.getElementById('m-refusals').textContent !== '–'",
            wait,
        )
        .await;
    let log = browser.browser_log().await.unwrap();
    let errors: Vec<&Value> = log.iter().filter(|e| e["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    browser
        .goto(&format!("http://{plain_addr}/realtime"))
        .await
        .unwrap();
    browser
        .wait_for(
            "the page without refusals",
            "return document.getElementById('status').dataset.state === 'connected'",
            wait,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hidden: Value = browser
        .execute(
            "return [document.getElementById('card-refusals').hidden, \
                     document.getElementById('panel-refusals').hidden]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hidden, serde_json::json!([true, true]));
    browser.quit().await;
    drop(driver);
    drop(profile);
}
