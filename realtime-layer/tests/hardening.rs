//! Hardening of the realtime routes over real HTTP: names that would spoof others are shown
//! escaped, user names are reclaimed once their events left the buffer, and axum's own
//! rejections answer the JSON error shape.

mod common;

use common::{get_json, serve_realtime};
use realtime_layer::{Event, ManualClock, Realtime};
use std::time::Duration;

#[tokio::test]
async fn deceptive_names_are_shown_escaped_and_still_filterable() {
    let realtime = Realtime::builder().build().unwrap();
    // "ann" followed by a right-to-left override, and one with a zero-width space.
    realtime.record(Event::borrow("GPU\u{200B}", "ann\u{202E}nimda"));
    let server = serve_realtime(&realtime).await;
    let (status, stats) = get_json(server.addr, "/realtime/stats?window=60").await;
    assert_eq!(status, 200);
    assert_eq!(stats["recent_events"][0]["user"], "ann<U+202E>nimda");
    assert_eq!(stats["recent_events"][0]["resource"], "GPU<U+200B>");
    // Filtering by the original name (percent-encoded) finds the event.
    let (status, filtered) = get_json(
        server.addr,
        "/realtime/stats?window=60&user=ann%E2%80%AEnimda&resource=GPU%E2%80%8B",
    )
    .await;
    assert_eq!(status, 200, "{filtered}");
    assert_eq!(filtered["recent_events"].as_array().unwrap().len(), 1);
    realtime.shutdown();
}

#[tokio::test]
async fn users_are_reclaimed_after_a_flood_ages_out() {
    let clock = ManualClock::new(1_764_338_400_000);
    let realtime = Realtime::builder()
        .clock(clock.clone())
        .retention(Duration::from_secs(60))
        .build()
        .unwrap();
    let flood: Vec<Event> = (0..50_000)
        .map(|i| Event::borrow("GPU", format!("flood-{i}")))
        .collect();
    realtime.record_all(&flood);
    realtime.record(Event::borrow("GPU", "during-the-flood"));
    let stats = realtime.buffer().stats();
    assert!(
        stats.folded_users > 0,
        "the flood should exceed the user cap"
    );
    let during = realtime.buffer().recent_events(60, 1, &Default::default());
    assert_eq!(&*during[0].user, realtime_layer::OTHER_NAME);

    // The flood ages out; a new user is shown by name, and memory went back down.
    clock.advance(Duration::from_secs(61));
    realtime.record(Event::borrow("GPU", "newcomer"));
    let after = realtime.buffer().recent_events(60, 1, &Default::default());
    assert_eq!(&*after[0].user, "newcomer");
    assert!(realtime.buffer().stats().memory_bytes <= stats.memory_bytes);
}

#[tokio::test]
async fn axum_rejections_answer_json() {
    let realtime = Realtime::builder().build().unwrap();
    let server = serve_realtime(&realtime).await;
    // A wrong method: axum answers 405 with an empty body by itself.
    let res = reqwest::Client::new()
        .post(format!("http://{}/realtime/stats", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    realtime.shutdown();
}
