//! A dashboard left open in a background tab costs the server almost nothing: in headless
//! Chromium, the page goes to the background (a new tab in front: Page Visibility says
//! `hidden`), swaps its live stream for a `hidden=1` one (keep-alives only, no frames) and stops
//! polling stats; back in front it resumes with its last event id and shows what it missed (the
//! catch-up snapshot), with zero console errors.
//!
//! Needs chromium and chromedriver; SKIPPED without them unless `REQUIRE_BROWSER=1`.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use realtime_layer::{Event, Realtime, StreamConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::browser::{assert_clean_log, binaries, start_session};

/// Every request the server saw: when, and its path with query.
type Seen = Arc<Mutex<Vec<(Instant, String)>>>;

async fn serve(rt: &Realtime, seen: Seen) -> String {
    let app: Router = rt
        .routes()
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let seen = seen.clone();
            async move {
                let uri = req.uri().to_string();
                seen.lock().unwrap().push((Instant::now(), uri));
                let res: Response = next.run(req).await;
                res
            }
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The requests to `path` seen after `since`.
fn requests(seen: &Seen, since: Instant, path: &str) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(at, uri)| *at >= since && uri.starts_with(path))
        .map(|(_, uri)| uri.clone())
        .collect()
}

/// The users shown in the page's event log.
const LOG_USERS: &str = "Array.from(document.querySelectorAll('#events-body tr'))
    .map(r => r.textContent).join(' ')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_tab_gets_keep_alives_only_and_catches_up_in_front() {
    let Some(bins) = binaries("background-tab browser test") else {
        return;
    };
    let rt = Realtime::builder()
        .stream_config(StreamConfig {
            tick: Duration::from_millis(200),
            push_delay: Duration::from_millis(50),
            keep_alive: Duration::from_millis(500),
            ..StreamConfig::default()
        })
        .build()
        .unwrap();
    let seen: Seen = Arc::default();
    let base = serve(&rt, seen.clone()).await;
    rt.record(Event::borrow("GPU", "before-hiding"));

    let (driver, browser, profile) = start_session(&bins, "visibility", 1280, 900).await;
    let wait = Duration::from_secs(15);
    browser.goto(&format!("{base}/realtime")).await.unwrap();
    let page = browser.window().await.unwrap();
    browser
        .wait_for(
            "connected with the first event shown",
            &format!(
                "return document.getElementById('status').dataset.state === 'connected' && \
                 ({LOG_USERS}).includes('before-hiding')"
            ),
            wait,
        )
        .await;

    // To the background: a new tab in front.
    let hidden_at = Instant::now();
    let tab = browser.open_tab().await.unwrap();
    let deadline = Instant::now() + wait;
    while requests(&seen, hidden_at, "/realtime/stream?")
        .iter()
        .all(|u| !u.contains("hidden=1"))
    {
        assert!(
            Instant::now() < deadline,
            "no hidden=1 stream: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Events while hidden; the stats poll (every 5 s) stays quiet.
    for user in ["while-hidden-1", "while-hidden-2"] {
        rt.record(Event::borrow("GPU", user));
    }
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    assert_eq!(rt.stream_clients(), 1, "the hidden page keeps one stream");
    let polls = requests(
        &seen,
        hidden_at + Duration::from_millis(500),
        "/realtime/stats",
    );
    assert!(polls.is_empty(), "a hidden tab polled stats: {polls:?}");

    // Back to the front: resumes with its last id and shows what it missed.
    let shown_at = Instant::now();
    browser.close_window().await.unwrap();
    browser.switch_to(&page).await.unwrap();
    let _ = tab;
    browser
        .wait_for(
            "the missed events in the log, connected again",
            &format!(
                "return document.visibilityState === 'visible' && \
                 document.getElementById('status').dataset.state === 'connected' && \
                 ({LOG_USERS}).includes('while-hidden-2') && ({LOG_USERS}).includes('while-hidden-1')"
            ),
            wait,
        )
        .await;
    let resumed = requests(&seen, shown_at, "/realtime/stream?");
    assert!(
        resumed
            .iter()
            .any(|u| u.contains("last_event_id=") && !u.contains("hidden")),
        "no resume with last_event_id: {resumed:?}"
    );
    // Events shown once each (the catch-up has exactly the missed ones).
    let log: String = browser
        .execute(&format!("return {LOG_USERS}"), vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(log.matches("while-hidden-1").count(), 1, "{log}");
    let console = browser.browser_log().await.unwrap_or_default();
    browser.quit().await;
    drop(driver);
    drop(profile);
    rt.shutdown();
    assert_clean_log(&console);
}
