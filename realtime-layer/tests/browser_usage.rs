//! The dashboard with a usage tier, in headless Chromium: a month of usage recorded through the
//! library's recorder, then the page's 24 h, 7 d and 30 d ranges (history from the tier, dated
//! axes) and the advisor's card for the over-committed tool ("commit 8 → 4 would have saved
//! …"), with screenshots in `target/browser/` and not one console error.
//!
//! Needs `chromium` and `chromedriver` (SKIPPED otherwise, a failure with `REQUIRE_BROWSER=1`).
#![cfg(feature = "usage")]

use realtime_layer::{
    Clock, Event, Pricing, Realtime, ResourceStatus, SystemClock, UsageConfig, UsageRecorder,
    UsageStore,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use test_support::browser::{binaries, start_session, Session};

const MIN: u64 = 60_000;
const DAY: u64 = 86_400_000;

fn status() -> Vec<ResourceStatus> {
    vec![
        ResourceStatus::new("CAD Suite", 12, 8, 0).with_pricing(Pricing::new("EUR", 8000.0, 400.0)),
        ResourceStatus::new("Simulator", 10, 4, 0).with_pricing(Pricing::new("EUR", 4000.0, 90.0)),
        ResourceStatus::new("GPU <b>lab</b>", 6, 6, 0).with_max_overage(0),
    ]
}

/// A month: working hours busy, each tool with its own team size (the CAD suite's team is 4:
/// committed at 8, it never needs more than 4).
fn seed(path: &std::path::Path) {
    let store = UsageStore::open(UsageConfig::new(path)).unwrap();
    let end = SystemClock::new().now_ms() / MIN * MIN;
    let start = end - 30 * DAY;
    let mut rec = UsageRecorder::new(&store, start).unwrap();
    rec.set_status(&status());
    let teams = [("CAD Suite", 4u32), ("Simulator", 7), ("GPU <b>lab</b>", 8)];
    let mut levels = [0u32; 3];
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut t = start;
    while t < end {
        let hour = (t % DAY) / 3_600_000;
        let busy = (8..18).contains(&hour);
        for (i, (name, team)) in teams.iter().enumerate() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let want = if busy { *team } else { 1 };
            let ts = t + rng % MIN;
            if levels[i] < want && !rng.is_multiple_of(3) {
                if i == 2 && levels[i] >= 6 {
                    rec.record_at(ts, &Event::failure(*name, "u", "exhausted"))
                        .unwrap();
                    continue;
                }
                levels[i] += 1;
                rec.record_at(
                    ts,
                    &Event::borrow(*name, "u").overage(i == 1 && levels[i] > 4),
                )
                .unwrap();
            } else if levels[i] > 0 && (levels[i] > want || rng.is_multiple_of(4)) {
                levels[i] -= 1;
                rec.record_at(ts, &Event::returned(*name, "u")).unwrap();
            }
        }
        t += 5 * MIN;
    }
    rec.advance(end).unwrap();
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

async fn shot(browser: &Session, name: &str) -> Result<(), String> {
    let dir = target_dir().join("browser");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(name);
    std::fs::write(&path, browser.screenshot().await?).map_err(|e| e.to_string())?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

/// Picks `range` in the toolbar and waits for its history to be drawn from the tier.
async fn show_range(browser: &Session, range: u64) -> Result<Value, String> {
    browser
        .execute(
            "var s = document.getElementById('range'); s.value = String(arguments[0]);
             s.dispatchEvent(new Event('change')); return true;",
            vec![json!(range)],
        )
        .await?;
    Ok(browser
        .wait_for(
            &format!("the {range} s range drawn from the usage tier"),
            &format!(
                "var c = document.getElementById('charts');
                 var d = Chart.getChart('chart-borrows').data;
                 return c.dataset.range === '{range}'
                     && c.dataset.renderedLoads === c.dataset.historyLoads
                     && d.labels.length > 100
                     && [d.labels[0], d.labels.length, d.datasets[0].data.filter(function (v) {{ return v > 0; }}).length];"
            ),
            Duration::from_secs(20),
        )
        .await)
}

async fn checks(browser: &Session, base: &str) -> Result<(), String> {
    browser.goto(&format!("{base}/realtime")).await?;
    let options = browser
        .wait_for(
            "the long ranges in the selector",
            "var o = Array.from(document.getElementById('range').options).map(function (x) { return x.textContent; });
             return o.indexOf('30 d') >= 0 && o;",
            Duration::from_secs(15),
        )
        .await;
    for want in ["24 h", "7 d", "30 d"] {
        assert!(options.to_string().contains(want), "{options}");
    }
    for (range, name) in [
        (86_400u64, "usage-24h.png"),
        (604_800, "usage-7d.png"),
        (2_592_000, "usage-30d.png"),
    ] {
        let drawn = show_range(browser, range).await?;
        // Dated labels (`MM-DD HH:MM`) and buckets with borrows over the whole range.
        assert!(drawn[0].as_str().unwrap().contains('-'), "{drawn}");
        assert!(drawn[2].as_u64().unwrap() > 10, "{drawn}");
        assert!(
            browser
                .execute(
                    &format!("return location.search.indexOf('range={range}') >= 0;"),
                    vec![]
                )
                .await?
                == json!(true)
        );
        shot(browser, name).await?;
    }
    let card = browser
        .wait_for(
            "the advisor's card for the CAD suite",
            "var cards = Array.from(document.querySelectorAll('#advice-cards .advice-card'));
             var cad = cards.filter(function (c) { return c.querySelector('.advice-resource').textContent === 'CAD Suite'; })[0];
             return cad && [cad.querySelector('.advice-headline').textContent, cards.length,
                 !!Chart.getChart(cad.querySelector('canvas')),
                 document.getElementById('usage-body').rows.length];",
            Duration::from_secs(20),
        )
        .await;
    let headline = card[0].as_str().unwrap();
    assert!(
        headline.starts_with("commit 8 → 4 would have saved €") && headline.ends_with("over 30 d"),
        "{card}"
    );
    assert_eq!(card[2], true, "a cost curve per card: {card}");
    assert_eq!(card[3], 3, "a report row per tool: {card}");
    // The hostile name is text.
    let names = browser
        .execute(
            "return Array.from(document.querySelectorAll('#usage-body td.resource')).map(function (c) { return c.textContent; });",
            vec![],
        )
        .await?;
    assert!(names.to_string().contains("GPU <b>lab</b>"), "{names}");
    browser
        .execute(
            "document.getElementById('panel-usage').scrollIntoView(); return true;",
            vec![],
        )
        .await?;
    shot(browser, "usage-advisor.png").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_ranges_and_the_advisor_card_in_headless_chromium() {
    let Some(bins) = binaries("usage browser test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.db");
    seed(&path);
    let rt = Realtime::builder()
        .usage(&path)
        .status_source(status)
        .build()
        .unwrap();
    let app: axum::Router = rt.routes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}");

    let (driver, browser, profile) = start_session(&bins, "usage", 1440, 1100).await;
    let result = checks(&browser, &base).await;
    let log = browser.browser_log().await.unwrap_or_default();
    browser.quit().await;
    drop(driver);
    drop(profile);
    server.abort();
    rt.usage().unwrap().close().unwrap();
    result.unwrap();
    let bad: Vec<String> = log
        .iter()
        .filter(|e| {
            e["level"] == "SEVERE"
                || e["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Content Security Policy")
        })
        .map(|e| e.to_string())
        .collect();
    assert!(
        bad.is_empty(),
        "browser console errors:\n{}",
        bad.join("\n")
    );
}
