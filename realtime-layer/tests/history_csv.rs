//! `/realtime/history` and `/realtime/events.csv` over real TCP, with a manual clock.

use realtime_layer::{Event, ManualClock, Realtime, RANGES};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

mod common;

/// A second that is a multiple of 3600 (so every bucket size divides it).
const T0: u64 = 1_764_338_400;

fn at(clock: &ManualClock, sec: u64, ms: u64) {
    clock.set(sec * 1000 + ms);
}

async fn serve(realtime: &Realtime) -> SocketAddr {
    common::serve(realtime.routes()).await
}

async fn get(addr: SocketAddr, path: &str) -> reqwest::Response {
    reqwest::get(format!("http://{addr}{path}")).await.unwrap()
}

async fn get_json(addr: SocketAddr, path: &str, status: u16) -> Value {
    let (got, body) = common::get_json(addr, path).await;
    assert_eq!(got, status, "{path}: {body}");
    body
}

fn nums(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn setup() -> (Realtime, ManualClock) {
    let clock = ManualClock::new(T0 * 1000);
    let realtime = Realtime::builder().clock(clock.clone()).build().unwrap();
    (realtime, clock)
}

#[tokio::test]
async fn history_per_second_is_zero_filled_and_carries_the_level() {
    let (realtime, clock) = setup();
    at(&clock, T0, 100);
    for u in ["a", "b", "c"] {
        realtime.record(Event::borrow("Tool", u).overage(u == "c"));
    }
    at(&clock, T0 + 2, 0);
    realtime.record(Event::returned("Tool", "a"));
    at(&clock, T0 + 5, 0);
    realtime.record(Event::failure("Tool", "d", "exhausted"));
    at(&clock, T0 + 10, 500);
    let addr = serve(&realtime).await;

    let h = get_json(addr, "/realtime/history?window=60", 200).await;
    assert_eq!(h["window_seconds"], 60);
    assert_eq!(h["bucket_seconds"], 1);
    assert_eq!(
        h["end"],
        T0 + 10,
        "the current second is left to the stream"
    );
    let t = nums(&h["t"]);
    assert_eq!(t.len(), 60);
    assert_eq!(h["start"], t[0]);
    assert_eq!(*t.last().unwrap(), T0 + 9);
    assert!(t.windows(2).all(|w| w[1] == w[0] + 1));
    let i = t.iter().position(|&s| s == T0).unwrap();
    let borrows = nums(&h["borrows"]["sum"]);
    assert_eq!(borrows.iter().sum::<u64>(), 3);
    assert_eq!(borrows[i], 3);
    assert_eq!(nums(&h["borrows"]["max"])[i], 3);
    assert_eq!(nums(&h["overage_borrows"]["sum"])[i], 1);
    assert_eq!(nums(&h["returns"]["sum"])[i + 2], 1);
    assert_eq!(nums(&h["failures"]["sum"])[i + 5], 1);
    let peak = nums(&h["peak_borrowed"]["max"]);
    assert_eq!(peak.len(), 60);
    assert!(peak[..i].iter().all(|&p| p == 0));
    assert_eq!(&peak[i..], &[3, 3, 3, 2, 2, 2, 2, 2, 2, 2]);

    // Per resource.
    at(&clock, T0 + 10, 600);
    realtime.record(Event::borrow("Other", "z"));
    at(&clock, T0 + 11, 0);
    let h = get_json(addr, "/realtime/history?window=60&resource=Other", 200).await;
    assert_eq!(nums(&h["borrows"]["sum"]).iter().sum::<u64>(), 1);
    assert_eq!(*nums(&h["peak_borrowed"]["max"]).last().unwrap(), 1);
    let h = get_json(addr, "/realtime/history?window=60&resource=Tool", 200).await;
    assert_eq!(nums(&h["borrows"]["sum"]).iter().sum::<u64>(), 3);
}

#[tokio::test]
async fn history_buckets_keep_sums_and_spikes() {
    let (realtime, clock) = setup();
    // A spike of 5 borrows in one second, then 3 borrows spread over 3 seconds.
    at(&clock, T0 + 1, 0);
    for i in 0..5 {
        realtime.record(Event::borrow("Tool", format!("s{i}")));
    }
    for s in 11..14 {
        at(&clock, T0 + s, 0);
        realtime.record(Event::borrow("Tool", format!("p{s}")));
    }
    at(&clock, T0 + 100, 500);
    let addr = serve(&realtime).await;
    let h = get_json(addr, "/realtime/history?window=3600", 200).await;
    assert_eq!(h["bucket_seconds"], 10);
    let t = nums(&h["t"]);
    assert_eq!(t.len(), 360);
    assert!(t.iter().all(|s| s % 10 == 0), "aligned buckets");
    assert_eq!(*t.last().unwrap(), T0 + 90);
    let i = t.iter().position(|&s| s == T0).unwrap();
    let (sum, max) = (nums(&h["borrows"]["sum"]), nums(&h["borrows"]["max"]));
    assert_eq!((sum[i], max[i]), (5, 5));
    assert_eq!((sum[i + 1], max[i + 1]), (3, 1));
    assert_eq!(sum.iter().sum::<u64>(), 8);
    let peak = nums(&h["peak_borrowed"]["max"]);
    assert_eq!(peak[i - 1], 0);
    assert_eq!(&peak[i..], &[5, 8, 8, 8, 8, 8, 8, 8, 8, 8]);
}

#[tokio::test]
async fn every_range_has_at_most_360_points() {
    let (realtime, clock) = setup();
    at(&clock, T0 + 1, 0); // inside the 6 h retention at the end
    realtime.record(Event::borrow("Tool", "a"));
    at(&clock, T0 + 6 * 3600 - 1, 0);
    realtime.record(Event::borrow("Tool", "b"));
    at(&clock, T0 + 6 * 3600, 250);
    let addr = serve(&realtime).await;
    // The ranges within the live buffer (longer ones need a usage tier: tests/usage_tier.rs).
    for w in RANGES.into_iter().filter(|w| *w <= 21_600) {
        let h = get_json(addr, &format!("/realtime/history?window={w}"), 200).await;
        let bucket = h["bucket_seconds"].as_u64().unwrap();
        assert_eq!(bucket, (w as u64).div_ceil(360));
        let n = h["t"].as_array().unwrap().len();
        assert!(
            n <= 360 && n as u64 * bucket >= w as u64,
            "w={w}: {n} x {bucket}"
        );
        for s in ["borrows", "overage_borrows", "returns", "failures"] {
            assert_eq!(h[s]["sum"].as_array().unwrap().len(), n);
            assert_eq!(h[s]["max"].as_array().unwrap().len(), n);
        }
        assert_eq!(h["peak_borrowed"]["max"].as_array().unwrap().len(), n);
        let sum: u64 = nums(&h["borrows"]["sum"]).iter().sum();
        assert_eq!(sum, if w == 21600 { 2 } else { 1 }, "w={w}");
    }
}

#[tokio::test]
async fn bad_parameters_answer_json_errors() {
    let (realtime, _clock) = setup();
    realtime.record(Event::borrow("Tool", "a"));
    let addr = serve(&realtime).await;
    for route in ["history", "events.csv"] {
        for (q, status, code) in [
            ("window=abc", 400, "invalid_window"),
            ("window=0", 400, "invalid_window"),
            ("window=-5", 400, "invalid_window"),
            ("window=1.5", 400, "invalid_window"),
            ("window=99999999999999999999", 400, "invalid_window"),
            ("window=21601", 400, "invalid_window"),
            ("window=60&resource=nope", 404, "unknown_resource"),
        ] {
            let body = get_json(addr, &format!("/realtime/{route}?{q}"), status).await;
            assert_eq!(body["error"], code, "{route}?{q}");
            assert!(body["detail"].is_string());
        }
    }
}

const HOSTILE_RESOURCES: [&str; 3] = ["Tool, \"Pro\"\nEdition", "Ünïcødé ☃ 工具", "plain"];
const HOSTILE_USERS: [&str; 5] = [
    "bob,\"the\" builder",
    "=HYPERLINK(\"http://x\")",
    "line\r\nbreak",
    "  spaced  ",
    "\"",
];

#[tokio::test]
async fn csv_round_trips_hostile_names() {
    let (realtime, clock) = setup();
    at(&clock, T0, 7);
    let mut expected = Vec::new();
    for (i, res) in HOSTILE_RESOURCES.iter().enumerate() {
        for (j, user) in HOSTILE_USERS.iter().enumerate() {
            clock.advance(Duration::from_millis(3));
            let ts = clock_ms(&clock);
            let event = match (i + j) % 3 {
                0 => Event::borrow(*res, *user)
                    .overage(j % 2 == 0)
                    .borrow_id((i * 10 + j).to_string()),
                1 => Event::returned(*res, *user).borrow_id((i * 10 + j).to_string()),
                _ => Event::failure(*res, *user, "quota, \"hard\"\nlimit"),
            };
            realtime.record(event.clone());
            expected.push((ts, event));
        }
    }
    let addr = serve(&realtime).await;
    let res = get(addr, "/realtime/events.csv?window=60&raw=true").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"realtime-events.csv\""
    );
    let body = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "ts",
            "kind",
            "resource",
            "user",
            "borrow_id",
            "overage",
            "reason"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), expected.len());
    for (row, (ts, e)) in rows.iter().zip(&expected) {
        assert_eq!(row[0], rfc3339(*ts));
        assert_eq!(&row[1], e.kind().as_str());
        assert_eq!(&row[2], e.resource());
        assert_eq!(&row[3], e.user());
        assert_eq!(&row[4], e.borrow_id_str().unwrap_or(""));
        let overage = match e.kind() {
            realtime_layer::EventKind::Borrow => e.is_overage().to_string(),
            _ => String::new(),
        };
        assert_eq!(row[5], overage);
        assert_eq!(&row[6], e.reason().unwrap_or(""));
    }

    // Filters.
    let q = "/realtime/events.csv?window=60&user=bob%2C%22the%22%20builder&resource=plain";
    let body = get(addr, q).await.text().await.unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!((&rows[0][2], &rows[0][3]), ("plain", HOSTILE_USERS[0]));

    // By default formula cells are neutralised with a leading quote; nothing else changes.
    let body = get(addr, "/realtime/events.csv?window=60&resource=plain")
        .await
        .text()
        .await
        .unwrap();
    let users: Vec<String> = csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap()[3].to_string())
        .collect();
    assert_eq!(users.len(), HOSTILE_USERS.len());
    assert_eq!(users[1], "'=HYPERLINK(\"http://x\")");
    for i in [0, 2, 3, 4] {
        assert_eq!(users[i], HOSTILE_USERS[i]);
    }
    let res = get(addr, "/realtime/events.csv?raw=maybe").await;
    assert_eq!(res.status(), 400);
}

fn clock_ms(clock: &ManualClock) -> u64 {
    use realtime_layer::Clock;
    clock.now_ms()
}

fn rfc3339(ms: u64) -> String {
    // T0 is 2025-11-28T14:00:00Z; the events are within its first second.
    assert!((T0 * 1000..T0 * 1000 + 1000).contains(&ms));
    format!("2025-11-28T14:00:00.{:03}Z", ms % 1000)
}

#[tokio::test]
async fn csv_streams_many_pages_within_the_window() {
    let (realtime, clock) = setup();
    // Old events, outside a 60 s window.
    for i in 0..10 {
        realtime.record(Event::borrow("Tool", format!("old{i}")));
    }
    at(&clock, T0 + 600, 0);
    let events: Vec<Event> = (0..2500)
        .map(|i| Event::borrow("Tool", format!("u{i}")))
        .collect();
    realtime.record_all(&events);
    at(&clock, T0 + 610, 0);
    let addr = serve(&realtime).await;
    let body = get(addr, "/realtime/events.csv?window=60")
        .await
        .text()
        .await
        .unwrap();
    let users: Vec<String> = csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap()[3].to_owned())
        .collect();
    assert_eq!(users.len(), 2500);
    assert_eq!(users[0], "u0");
    assert_eq!(users[2499], "u2499");
    // Without a window: everything held.
    let body = get(addr, "/realtime/events.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body.lines().count(), 1 + 2510);
    // Nothing matches: just the header.
    let body = get(addr, "/realtime/events.csv?user=nobody")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ts,kind,resource,user,borrow_id,overage,reason\r\n");
}
