//! The dashboard in cluster mode, in headless Chromium, against a real `redis-server`: two
//! instances in this process share one view. Checks the header ("cluster · 2 instances" and the
//! answering instance), the other instance's events in the log, the instance selector (the view
//! narrows to one instance), and the degraded banner when Redis dies.
//!
//! Needs chromium + chromedriver and redis-server; a missing one prints SKIPPED, unless
//! `REQUIRE_BROWSER=1` / `REQUIRE_REDIS=1` (CI) make it a failure.
#![cfg(feature = "redis")]

use realtime_layer::{Cluster, Event, Realtime, ResourceStatus};
use serde_json::json;
use std::time::Duration;
use test_support::browser::{assert_clean_log, binaries, start_session};

fn instance(redis: &str, id: &str, total: u32) -> Realtime {
    Realtime::builder()
        .instance_id(id)
        .status_source(move || vec![ResourceStatus::new("GPU", total, total / 2, 0)])
        .cluster(Cluster::redis(redis).name("browser-test"))
        .build()
        .expect("cluster instance")
}

async fn serve(rt: &Realtime) -> String {
    let app: axum::Router = rt.routes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_header_selector_and_degraded_banner() {
    let Some(bins) = binaries("cluster browser test") else {
        return;
    };
    let Some(mut redis) = test_support::redis::RedisServer::start("browser_cluster") else {
        return;
    };
    let alpha = instance(&redis.url, "alpha", 8);
    let beta = instance(&redis.url, "beta", 4);
    let base = serve(&beta).await;
    // Both live and backfilled before the page opens.
    test_support::wait::cluster_ready(&base, 2, Duration::from_secs(15), |_| true).await;
    alpha.record(Event::borrow("GPU", "ann-on-alpha"));
    beta.record(Event::borrow("GPU", "bob-on-beta"));

    let (driver, browser, profile) = start_session(&bins, "cluster", 1440, 1000).await;
    let wait = Duration::from_secs(15);
    browser.goto(&format!("{base}/realtime")).await.unwrap();

    let badge = browser
        .wait_for(
            "cluster badge",
            "var b = document.getElementById('cluster-badge'); \
             return !b.hidden && b.textContent === 'cluster · 2 instances' && b.textContent;",
            wait,
        )
        .await;
    assert_eq!(badge, "cluster · 2 instances");
    browser
        .wait_for(
            "answering instance",
            "return document.getElementById('instance-id').textContent === 'beta';",
            wait,
        )
        .await;
    browser
        .wait_for(
            "alpha's event in beta's log, tagged",
            "return Array.from(document.querySelectorAll('#events-body tr')).some(function (r) { \
               return r.textContent.indexOf('ann-on-alpha') >= 0 && r.textContent.indexOf('@ alpha') >= 0; });",
            wait,
        )
        .await;
    let options = browser
        .wait_for(
            "instance selector",
            "var f = document.getElementById('instance-field'); var s = document.getElementById('instance-filter'); \
             var v = Array.from(s.options).map(function (o) { return o.value; }); \
             return !f.hidden && v.indexOf('alpha') >= 0 && v.indexOf('beta') >= 0 && v;",
            wait,
        )
        .await;
    assert_eq!(options, json!(["", "alpha", "beta"]));
    // Narrow to alpha: beta's own event leaves the log, alpha's stays.
    browser
        .execute(
            "var s = document.getElementById('instance-filter'); s.value = 'alpha'; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .unwrap();
    browser
        .wait_for(
            "only alpha's events",
            "var t = document.getElementById('events-body').textContent; \
             return t.indexOf('ann-on-alpha') >= 0 && t.indexOf('bob-on-beta') < 0;",
            wait,
        )
        .await;
    let csv = browser
        .execute(
            "return document.getElementById('csv').getAttribute('href');",
            vec![],
        )
        .await
        .unwrap();
    assert!(csv.as_str().unwrap().contains("instance=alpha"), "{csv}");
    // The choice is in the URL (a link to alpha's view).
    let search = browser
        .execute("return location.search;", vec![])
        .await
        .unwrap();
    assert_eq!(search, "?instance=alpha");
    let png = browser.screenshot().await.unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("dashboard-cluster.png"), png);

    // A link with scope=local: this instance's events only, said in the instance selector.
    browser
        .goto(&format!("{base}/realtime?scope=local"))
        .await
        .unwrap();
    let local = browser
        .wait_for(
            "the local view from the URL",
            "var t = document.getElementById('events-body').textContent, s = document.getElementById('instance-filter');
             return t.indexOf('bob-on-beta') >= 0 && t.indexOf('ann-on-alpha') < 0
                 && [s.value, s.options[s.selectedIndex].textContent, document.getElementById('status').dataset.stream];",
            wait,
        )
        .await;
    assert_eq!(
        local,
        json!([
            "@local",
            "This instance only (scope=local)",
            "realtime/stream?scope=local"
        ])
    );

    // Redis dies: the page says so and keeps showing this instance.
    redis.kill();
    browser
        .wait_for(
            "degraded banner",
            "var b = document.getElementById('cluster-banner'); \
             return !b.hidden && b.textContent.indexOf('Cluster unreachable') >= 0 && \
               document.getElementById('cluster-badge').dataset.state === 'degraded';",
            Duration::from_secs(20),
        )
        .await;
    let png = browser.screenshot().await.unwrap();
    let _ = std::fs::write(dir.join("dashboard-cluster-degraded.png"), png);

    let log = browser.browser_log().await.unwrap_or_default();
    browser.quit().await;
    drop(driver);
    drop(profile);
    assert_clean_log(&log);
}
