//! The usage tier of a real instance over real HTTP, with a manual clock: history across the seam
//! between the tier's minutes and the live buffer's seconds (no event counted twice or missed),
//! the report and advice routes (JSON, CSV, errors), and a restart that keeps everything.
#![cfg(feature = "usage")]

use realtime_layer::{Clock, Event, ManualClock, Pricing, Realtime, ResourceStatus};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

/// Midnight UTC: every bucket size divides it.
const T0: u64 = 1_764_288_000;

fn build(clock: &ManualClock, path: &std::path::Path, levels: Arc<Mutex<[u32; 2]>>) -> Realtime {
    Realtime::builder()
        .clock(clock.clone())
        .usage(path)
        .status_source(move || {
            let l = *levels.lock().unwrap();
            vec![
                ResourceStatus::new("cad", 10, 6, l[0])
                    .with_pricing(Pricing::new("EUR", 6000.0, 100.0)),
                ResourceStatus::new("gpu", 4, 4, l[1]).with_max_overage(0),
            ]
        })
        .build()
        .unwrap()
}

/// Eight hours of traffic, a borrow every 30 s alternating between the tools, each returned 75 s
/// later; returns the borrow times (Unix s) per tool. The tier reads the buffer every simulated
/// minute (the buffer keeps six hours, so the first two hours live only in the tier).
fn traffic(rt: &Realtime, clock: &ManualClock, levels: &Arc<Mutex<[u32; 2]>>) -> Vec<u64> {
    let usage = rt.usage().unwrap();
    let mut borrows = Vec::new();
    let mut open: Vec<(u64, usize)> = Vec::new();
    let names = ["cad", "gpu"];
    let mut t = T0 * 1000 + 500;
    let end = (T0 + 8 * 3600) * 1000;
    let mut i = 0usize;
    while t < end {
        clock.set(t);
        // Returns due.
        while let Some(&(due, r)) = open.first() {
            if due > t {
                break;
            }
            open.remove(0);
            levels.lock().unwrap()[r] -= 1;
            rt.record(Event::returned(names[r], "u"));
        }
        let r = i % 2;
        let level = levels.lock().unwrap()[r];
        if r == 1 && level >= 4 {
            rt.record(Event::failure("gpu", "u", "exhausted"));
        } else {
            levels.lock().unwrap()[r] += 1;
            rt.record(Event::borrow(names[r], "u").overage(r == 0 && level >= 6));
            borrows.push(t / 1000);
            open.push((t + 75_000, r));
        }
        if i % 2 == 1 {
            usage.flush().unwrap();
        }
        i += 1;
        t += 30_000;
    }
    // The last minute closes; three more borrows stay in the live buffer only (the open minute).
    clock.set(end + 5_000);
    usage.flush().unwrap();
    for s in [6, 7, 8] {
        clock.set(end + s * 1000);
        rt.record(Event::borrow("lic", "u"));
        borrows.push(end / 1000 + s);
    }
    clock.set(end + 10_000);
    borrows
}

fn nums(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_has_no_seam_and_the_tier_answers_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.db");
    let clock = ManualClock::new(T0 * 1000);
    let levels = Arc::new(Mutex::new([0u32; 2]));
    let rt = build(&clock, &path, levels.clone());
    let borrows = traffic(&rt, &clock, &levels);
    let now = clock.now_ms() / 1000;
    let addr = common::serve(rt.routes()).await;

    // 24 h: 4-minute buckets; tier minutes up to the seam, live seconds after it.
    let (status, h) = common::get_json(addr, "/realtime/history?window=24h").await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(
        (h["bucket_seconds"].as_u64(), h["window_seconds"].as_u64()),
        (Some(240), Some(86_400))
    );
    let seam = h["seam"].as_u64().unwrap();
    assert!(seam > now - 120 && seam <= now, "seam {seam} now {now}");
    let t = nums(&h["t"]);
    let sums = nums(&h["borrows"]["sum"]);
    assert_eq!(
        sums.iter().sum::<u64>(),
        borrows.len() as u64,
        "every borrow once"
    );
    // Any run of buckets counts exactly the borrows in it, across the seam and across the
    // live buffer's start (six hours ago), wherever it starts.
    for from in [0, t.len() / 2, t.len() - 100, t.len() - 3, t.len() - 1] {
        let since = t[from];
        let want = borrows.iter().filter(|b| **b >= since).count() as u64;
        assert_eq!(
            sums[from..].iter().sum::<u64>(),
            want,
            "buckets from {since}"
        );
    }
    // Inside the live buffer the sum of the buckets equals the buffer's own count.
    let (_, stats) = common::get_json(addr, "/realtime/stats?window=6h").await;
    let in_buffer = borrows.iter().filter(|b| **b > now - 21_600).count() as u64;
    assert_eq!(stats["rates"]["window_seconds"], 21_600);
    assert_eq!(
        stats["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["borrows"].as_u64().unwrap())
            .sum::<u64>(),
        // `lic` has no status row: the stats list the status source's pools only.
        in_buffer - 3
    );
    let since = now - 21_600 + 1;
    let first = t.iter().position(|b| *b >= since).unwrap();
    let inside: u64 = borrows.iter().filter(|b| **b >= t[first]).count() as u64;
    assert_eq!(sums[first..].iter().sum::<u64>(), inside);
    // A borrow of cad a minute, each back 90 s later (returns run on the 30 s grid): at most 2.
    let cad_borrows = ((8 * 3600 / 30) / 2) as u64;
    let (_, cad) = common::get_json(addr, "/realtime/history?window=7d&resource=cad").await;
    assert_eq!(cad["bucket_seconds"], 1680);
    assert_eq!(nums(&cad["peak_borrowed"]["max"]).iter().max(), Some(&2));
    assert_eq!(
        nums(&cad["borrows"]["sum"]).iter().sum::<u64>(),
        cad_borrows
    );

    // The report: 8 hours of whole minutes, both tools.
    let (status, r) = common::get_json(addr, "/realtime/report?window=30d").await;
    assert_eq!(status, 200, "{r}");
    let cad = &r["resources"][0];
    assert_eq!(
        (cad["resource"].as_str(), cad["peak_borrowed"].as_u64()),
        (Some("cad"), Some(2))
    );
    assert_eq!(cad["borrows"].as_u64(), Some(cad_borrows));
    // Over 30 days the pool sat empty most of the time; over the 8 busy hours it was at 2 half
    // the time.
    assert_eq!(cad["p95_borrowed"].as_u64(), Some(0));
    let (_, busy) = common::get_json(addr, "/realtime/report?window=8h").await;
    assert_eq!(busy["resources"][0]["p95_borrowed"].as_u64(), Some(2));
    // 90 s held per borrow, one borrow a minute: 1.5 seats on average over 8 hours.
    let seat_hours = cad["seat_hours"].as_f64().unwrap();
    assert!((seat_hours - 12.0).abs() < 0.1, "{seat_hours}");
    assert_eq!(
        cad["commit_cost"].as_f64(),
        Some(
            6000.0 * (r["window_seconds"].as_f64().unwrap() / 2_592_000.0 * 100.0).round() / 100.0
        )
    );
    // Commit 6 of cad is far above its peak of 2: the advisor says so.
    let (_, a) = common::get_json(addr, "/realtime/advice?window=30d").await;
    let cad = &a["resources"][0];
    assert_eq!(cad["commit"], 6);
    let rec = cad["recommended_commit"].as_u64().unwrap();
    assert!(rec < 6, "{cad}");
    assert!(cad["saving"].as_f64().unwrap() > 0.0);
    assert_eq!(a["resources"][1]["censored"], false);

    // CSV: a header and one row per tool.
    let csv = reqwest::get(format!(
        "http://{addr}/realtime/report?window=7d&format=csv"
    ))
    .await
    .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("resource,start,end,commit,total,peak_borrowed"),
        "{text}"
    );
    // lic only has the open minute so far: not in the tier yet.
    assert_eq!(lines.len(), 3, "{text}");

    // Clear errors.
    for (path, code, status) in [
        ("/realtime/report?window=5w", "invalid_window", 400),
        ("/realtime/report?window=500d", "invalid_window", 400),
        ("/realtime/report?format=xml", "invalid_format", 400),
        ("/realtime/advice?scope=local", "invalid_scope", 400),
        ("/realtime/stats?window=7d", "invalid_window", 400),
        (
            "/realtime/history?window=7d&scope=local",
            "invalid_scope",
            400,
        ),
    ] {
        let (got, body) = common::get_json(addr, path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    let (_, cfg) = common::get_json(addr, "/realtime/config").await;
    assert_eq!(cfg["ranges"].as_array().unwrap().last().unwrap(), 2_592_000);
    assert_eq!(
        cfg["usage"]["report_windows"],
        serde_json::json!([86400, 604800, 2592000])
    );

    // A restart on the same file keeps every closed minute, and the open one when closed
    // gracefully.
    let before = rt
        .usage()
        .unwrap()
        .report(Duration::from_secs(86_400))
        .unwrap();
    rt.usage().unwrap().close().unwrap();
    drop(rt);
    clock.advance(Duration::from_secs(30));
    let again = build(&clock, &path, levels.clone());
    let after = again
        .usage()
        .unwrap()
        .report(Duration::from_secs(86_400))
        .unwrap();
    assert_eq!(
        after.end_ms,
        before.end_ms + 60_000,
        "the open minute was written at close"
    );
    assert_eq!(after.resources[0].borrows, before.resources[0].borrows);
    let lic = |r: &realtime_layer::UsageReport| {
        r.resources
            .iter()
            .find(|x| x.resource == "lic")
            .map_or(0, |x| x.borrows)
    };
    assert_eq!(
        (lic(&before), lic(&after)),
        (0, 3),
        "the open minute's borrows survive"
    );
    again.usage().unwrap().close().unwrap();
}

#[tokio::test]
async fn without_a_tier_the_report_says_how_to_get_one() {
    let rt = Realtime::builder().build().unwrap();
    let addr = common::serve(rt.routes()).await;
    let (status, body) = common::get_json(addr, "/realtime/report?window=30d").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("usage_disabled")),
        "{body}"
    );
    let (status, body) = common::get_json(addr, "/realtime/history?window=24h").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_window")),
        "{body}"
    );
    let (status, _) = common::get_json(addr, "/realtime/history?window=6h").await;
    assert_eq!(status, 200);
}
