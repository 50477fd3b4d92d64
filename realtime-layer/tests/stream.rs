//! `/realtime/stream` over real TCP: frames, ids, push latency, reconnects, filters, limits,
//! the clients gauge and graceful shutdown.

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use realtime_layer::{Event, Realtime, ResourceStatus};
use serde_json::Value;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

mod common;
use common::{serve_realtime as serve, wait_for};

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// One parsed SSE message.
#[derive(Debug)]
struct Msg {
    id: Option<u64>,
    retry: Option<u64>,
    /// The frame with resource positions resolved to names ([`common::FrameNames`]).
    frame: Value,
    /// The frame as sent.
    raw: Value,
}

/// A minimal SSE reader over a reqwest body.
struct SseClient {
    body: ByteStream,
    buf: String,
    comments: usize,
    names: common::FrameNames,
}

impl SseClient {
    async fn connect(addr: SocketAddr, query: &str, last_id: Option<u64>) -> SseClient {
        let res = Self::request(addr, query, last_id).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        SseClient::from_response(res)
    }

    async fn request(addr: SocketAddr, query: &str, last_id: Option<u64>) -> reqwest::Response {
        let mut req = reqwest::Client::new().get(format!("http://{addr}/realtime/stream{query}"));
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        req.send().await.expect("request")
    }

    fn from_response(res: reqwest::Response) -> SseClient {
        SseClient {
            body: Box::pin(res.bytes_stream()),
            buf: String::new(),
            comments: 0,
            names: common::FrameNames::default(),
        }
    }

    /// The next message, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Msg> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut retry, mut data) = (None, None, None::<String>);
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().expect("numeric id"));
                    } else if let Some(v) = line.strip_prefix("retry: ") {
                        retry = Some(v.parse().expect("numeric retry"));
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        assert!(data.is_none(), "one data line per frame");
                        data = Some(v.to_owned());
                    }
                }
                if let Some(data) = data {
                    let raw: Value = serde_json::from_str(&data).expect("JSON frame");
                    let mut frame = raw.clone();
                    self.names.resolve(&mut frame);
                    return Some(Msg {
                        id,
                        retry,
                        frame,
                        raw,
                    });
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.push_str(std::str::from_utf8(&chunk).unwrap()),
                Some(Err(_)) | None => return None,
            }
        }
    }

    async fn next_within(&mut self, d: Duration) -> Msg {
        tokio::time::timeout(d, self.next())
            .await
            .expect("a frame in time")
            .expect("stream open")
    }

    /// Reads frames until one satisfies `pred` (within `d`), returning it and the time taken.
    async fn until(&mut self, d: Duration, mut pred: impl FnMut(&Msg) -> bool) -> (Msg, Duration) {
        let start = Instant::now();
        loop {
            let left = d.checked_sub(start.elapsed()).expect("condition in time");
            let msg = self.next_within(left).await;
            if pred(&msg) {
                return (msg, start.elapsed());
            }
        }
    }
}

fn events_of(msg: &Msg) -> Vec<Value> {
    common::frame_events(&msg.frame)
}

fn has_user(msg: &Msg, user: &str) -> bool {
    events_of(msg).iter().any(|e| e["user"] == user)
}

fn fast(tick_ms: u64) -> Realtime {
    Realtime::builder()
        .tick(Duration::from_millis(tick_ms))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_deltas_with_increasing_ids_and_push_within_window() {
    let realtime = Realtime::builder().build().unwrap(); // default 1 s tick, 100 ms push
    realtime
        .record(Event::borrow("GPU A100", "ann").borrow_id("550e8400-e29b-41d4-a716-446655440000"));
    let server = serve(&realtime).await;

    let res = SseClient::request(server.addr, "", None).await;
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    let mut sse = SseClient::from_response(res);

    let first = sse.next_within(Duration::from_secs(2)).await;
    assert_eq!(first.retry, Some(3000), "retry: on the first message");
    assert_eq!(first.frame["kind"], "snapshot");
    assert_eq!(first.id, first.frame["seq"].as_u64());
    for field in ["rates", "resources", "buffer", "events", "point", "ts_ms"] {
        assert!(!first.frame[field].is_null(), "snapshot has {field}");
    }
    assert_eq!(first.frame["resources"][0]["name"], "GPU A100");
    assert_eq!(first.frame["resources"][0]["borrowed"], 1);
    assert_eq!(first.frame["events"][0]["user"], "ann");
    assert_eq!(first.frame["events"][0]["borrow_id"], "550e8400-e29b-41d4");
    assert_eq!(first.frame["buffer"]["total_events"], 1);

    // Let the stream go idle, then measure event-to-frame latency a few times.
    let mut last_id = first.id.unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(150 + 70 * i)).await;
        let user = format!("user-{i}");
        realtime.record(Event::borrow("GPU A100", user.clone()));
        let recorded = Instant::now();
        let (msg, _) = sse
            .until(Duration::from_secs(2), |m| {
                let id = m.id.unwrap();
                assert!(id > last_id, "ids increase: {id} after {last_id}");
                last_id = id;
                assert_eq!(m.retry, None, "retry only once");
                assert_eq!(m.frame["kind"], "delta");
                has_user(m, &user)
            })
            .await;
        let latency = recorded.elapsed();
        worst = worst.max(latency);
        // Deltas carry only what changed: the one resource's new level, not the whole list.
        assert!(msg.frame["resources"].is_null());
        assert_eq!(msg.frame["res"][0]["name"], "GPU A100");
        // On the wire, the resource is its position in the list, in `res` and in `ev`.
        assert_eq!(msg.raw["res"][0]["i"], 0);
        assert!(msg.raw["res"][0].get("name").is_none());
        assert_eq!(msg.raw["ev"][0][2], 0);
        assert_eq!(msg.frame["res"][0]["borrowed"], 2 + i);
        assert!(
            msg.frame["res"][0]["total"].is_null(),
            "unchanged fields left out"
        );
        assert_eq!(msg.frame["events_omitted"].as_u64().unwrap_or(0), 0);
    }
    eprintln!("worst event-to-frame latency: {worst:?}");
    assert!(
        worst < Duration::from_millis(350),
        "push within the 100 ms window (+ scheduling slack), worst {worst:?}"
    );

    // Idle: frames still tick about once per second, small, with the clock moving.
    let (a, _) = sse.until(Duration::from_secs(3), |_| true).await;
    let (b, gap) = sse.until(Duration::from_secs(3), |_| true).await;
    assert!(b.id > a.id);
    assert!(
        gap > Duration::from_millis(700),
        "idle frames ~1 s apart: {gap:?}"
    );
    assert!(b.frame["ts_ms"].as_u64() > a.frame["ts_ms"].as_u64());
    realtime.shutdown();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_coalesced_and_bounded() {
    let realtime = fast(1000);
    let server = serve(&realtime).await;
    let mut sse = SseClient::connect(server.addr, "", None).await;
    sse.next_within(Duration::from_secs(2)).await;
    let events: Vec<Event> = (0..500)
        .map(|i| Event::borrow("pool", format!("u{i}")))
        .collect();
    realtime.record_all(&events);
    let (msg, _) = sse
        .until(Duration::from_secs(2), |m| !events_of(m).is_empty())
        .await;
    let got = events_of(&msg);
    assert!(got.len() <= 20, "events are bounded per frame");
    assert_eq!(
        got.len() as u64 + msg.frame["events_omitted"].as_u64().unwrap_or(0),
        500
    );
    assert_eq!(got.last().unwrap()["user"], "u499", "the newest are kept");
    let start = Instant::now();
    let mut frames = 0;
    while start.elapsed() < Duration::from_secs(1) {
        for i in 0..20 {
            realtime.record(Event::failure("pool", format!("f{i}"), "exhausted"));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), sse.next()).await {
            frames += 1;
        }
    }
    assert!(
        frames <= 14,
        "at most ~10 frames/s under constant load, got {frames}"
    );
    realtime.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_with_a_snapshot_without_gap_or_duplicate() {
    let realtime = fast(200);
    let server = serve(&realtime).await;
    let mut sse = SseClient::connect(server.addr, "", None).await;
    sse.next_within(Duration::from_secs(2)).await;
    realtime.record(Event::borrow("pool", "seen-1"));
    realtime.record(Event::borrow("pool", "seen-2"));
    let (msg, _) = sse
        .until(Duration::from_secs(2), |m| has_user(m, "seen-2"))
        .await;
    let last_id = msg.id.unwrap();
    drop(sse);

    // Missed while disconnected.
    realtime.record(Event::returned("pool", "missed-1"));
    realtime.record(Event::failure("pool", "missed-2", "exhausted"));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut again = SseClient::connect(server.addr, "", Some(last_id)).await;
    let snap = again.next_within(Duration::from_secs(2)).await;
    assert_eq!(snap.frame["kind"], "snapshot");
    assert!(snap.id.unwrap() > last_id);
    let users: Vec<String> = events_of(&snap)
        .iter()
        .map(|e| e["user"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users, ["missed-1", "missed-2"], "exactly the missed events");
    assert_eq!(snap.frame["resources"][0]["borrowed"], 1);
    // And then deltas continue from the snapshot.
    realtime.record(Event::borrow("pool", "after"));
    let (next, _) = again
        .until(Duration::from_secs(2), |m| has_user(m, "after"))
        .await;
    assert_eq!(next.frame["kind"], "delta");
    assert_eq!(events_of(&next).len(), 1);

    // An id the server does not remember: a snapshot with the newest events.
    let mut stale = SseClient::connect(server.addr, "", Some(7)).await;
    let snap = stale.next_within(Duration::from_secs(2)).await;
    assert_eq!(snap.frame["kind"], "snapshot");
    assert_eq!(events_of(&snap).len(), 5);
    realtime.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_and_user_filters_restrict_events_and_rates() {
    let realtime = Realtime::builder()
        .tick(Duration::from_millis(200))
        .status_source(|| {
            vec![
                ResourceStatus::new("Tool A", 10, 5, 0),
                ResourceStatus::new("Tool B", 4, 2, 0),
            ]
        })
        .build()
        .unwrap();
    let server = serve(&realtime).await;
    let mut by_res = SseClient::connect(server.addr, "?resource=Tool%20B", None).await;
    let mut by_user = SseClient::connect(server.addr, "?user=bob", None).await;
    let snap = by_res.next_within(Duration::from_secs(2)).await;
    let names: Vec<Value> = snap.frame["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, ["Tool B"]);
    by_user.next_within(Duration::from_secs(2)).await;

    for (res, user) in [
        ("Tool A", "ann"),
        ("Tool B", "ann"),
        ("Tool A", "bob"),
        ("Tool B", "bob"),
        ("Tool B", "bob"),
    ] {
        realtime.record(Event::borrow(res, user));
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    realtime.record(Event::failure("Tool A", "carl", "marker"));
    let mut res_events = Vec::new();
    let mut res_rates = None;
    by_res
        .until(Duration::from_secs(3), |m| {
            res_events.extend(events_of(m));
            if !m.frame["rates"].is_null() {
                res_rates = Some(m.frame["rates"].clone());
            }
            res_rates
                .as_ref()
                .is_some_and(|r| r["borrows_per_min"] == 3.0)
        })
        .await;
    assert_eq!(res_events.len(), 3);
    assert!(res_events.iter().all(|e| e["resource"] == "Tool B"));

    let mut user_events = Vec::new();
    let mut user_rates = None;
    by_user
        .until(Duration::from_secs(3), |m| {
            user_events.extend(events_of(m));
            if !m.frame["rates"].is_null() {
                user_rates = Some(m.frame["rates"].clone());
            }
            user_rates
                .as_ref()
                .is_some_and(|r| r["borrows_per_min"] == 3.0)
        })
        .await;
    assert_eq!(user_events.len(), 3);
    assert!(user_events.iter().all(|e| e["user"] == "bob"));

    // Unknown resource: the JSON 404 of the other routes.
    let res = SseClient::request(server.addr, "?resource=nope", None).await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unknown_resource");
    realtime.shutdown();
}

async fn metrics_gauge(addr: SocketAddr) -> u64 {
    common::metric_value(addr, "realtime_stream_clients").await as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_streams_answers_503_and_disconnects_free_slots_and_gauge() {
    let realtime = Realtime::builder()
        .tick(Duration::from_millis(100))
        .max_streams(3)
        .build()
        .unwrap();
    let server = serve(&realtime).await;
    assert_eq!(metrics_gauge(server.addr).await, 0);
    let mut open = Vec::new();
    for q in ["", "?user=a", ""] {
        let mut c = SseClient::connect(server.addr, q, None).await;
        c.next_within(Duration::from_secs(2)).await;
        open.push(c);
    }
    assert_eq!(realtime.stream_clients(), 3);
    assert_eq!(metrics_gauge(server.addr).await, 3);

    let res = SseClient::request(server.addr, "", None).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "too_many_streams");
    assert!(body["detail"].as_str().unwrap().contains('3'));
    assert_eq!(
        realtime.stream_clients(),
        3,
        "a refused stream is not counted"
    );

    open.pop();
    wait_for(|| realtime.stream_clients() == 2, Duration::from_secs(3)).await;
    let mut c = SseClient::connect(server.addr, "", None).await;
    c.next_within(Duration::from_secs(2)).await;
    assert_eq!(realtime.stream_clients(), 3);
    drop(c);
    open.clear();
    wait_for(|| realtime.stream_clients() == 0, Duration::from_secs(3)).await;
    assert_eq!(metrics_gauge(server.addr).await, 0);
    realtime.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_completes_with_streams_open() {
    let realtime = Realtime::builder().build().unwrap();
    let server = serve(&realtime).await;
    let mut clients = Vec::new();
    for q in ["", "", "?user=x"] {
        let mut c = SseClient::connect(server.addr, q, None).await;
        c.next_within(Duration::from_secs(2)).await;
        clients.push(c);
    }
    // A hidden page's stream has no channel (keep-alives only): it watches the shutdown token
    // itself, where visible streams learn of shutdown from their channel.
    clients.push(SseClient::connect(server.addr, "?hidden=1", None).await);
    wait_for(|| realtime.stream_clients() == 4, Duration::from_secs(3)).await;
    let start = Instant::now();
    realtime.shutdown();
    tokio::time::timeout(Duration::from_secs(3), server.task)
        .await
        .expect("serve returns promptly")
        .unwrap();
    eprintln!("graceful shutdown took {:?}", start.elapsed());
    for c in &mut clients {
        let end = tokio::time::timeout(Duration::from_secs(2), async {
            while c.next().await.is_some() {}
        })
        .await;
        assert!(end.is_ok(), "stream ended");
    }
    assert_eq!(realtime.stream_clients(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_comments_are_sent() {
    let realtime = Realtime::builder()
        .stream_config(realtime_layer::StreamConfig {
            keep_alive: Duration::from_millis(200),
            ..Default::default()
        })
        .build()
        .unwrap();
    let server = serve(&realtime).await;
    let mut sse = SseClient::connect(server.addr, "", None).await;
    sse.next_within(Duration::from_secs(2)).await;
    sse.next_within(Duration::from_secs(2)).await; // the next tick, ~1 s later
    assert!(sse.comments >= 3, "keep-alive comments: {}", sse.comments);
    realtime.shutdown();
}

/// The keep-alive timer is polled only once it fired (frames wake the stream far more often):
/// keep-alives still come on time between frames that arrive every tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_come_on_time_while_frames_flow() {
    let realtime = Realtime::builder()
        .stream_config(realtime_layer::StreamConfig {
            keep_alive: Duration::from_millis(200),
            tick: Duration::from_millis(50),
            ..Default::default()
        })
        .build()
        .unwrap();
    let server = serve(&realtime).await;
    let mut sse = SseClient::connect(server.addr, "", None).await;
    let start = std::time::Instant::now();
    let mut frames = 0;
    while start.elapsed() < Duration::from_millis(1_300) {
        sse.next_within(Duration::from_secs(2)).await;
        frames += 1;
    }
    assert!(frames >= 10, "frames every tick: {frames}");
    // 1.3 s at one per 200 ms: 6, less a little for a busy machine.
    assert!(
        sse.comments >= 4,
        "keep-alive comments between frames: {}",
        sse.comments
    );
    realtime.shutdown();
}

/// A page in a hidden tab (`hidden=1`): keep-alives only, whatever is recorded; it counts as an
/// open stream; a normal reconnect with its last id gets the catch-up snapshot of what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_page_gets_keep_alives_only_then_catches_up() {
    let realtime = Realtime::builder()
        .tick(Duration::from_millis(50))
        .stream_config(realtime_layer::StreamConfig {
            tick: Duration::from_millis(50),
            push_delay: Duration::from_millis(10),
            keep_alive: Duration::from_millis(100),
            ..Default::default()
        })
        .build()
        .unwrap();
    let server = serve(&realtime).await;

    // Visible first: the snapshot, then a delta with ann's borrow; remember its id.
    let mut visible = SseClient::connect(server.addr, "", None).await;
    visible.next_within(Duration::from_secs(2)).await;
    realtime.record(Event::borrow("GPU", "ann"));
    let (seen, _) = visible
        .until(Duration::from_secs(2), |m| has_user(m, "ann"))
        .await;
    let last_id = seen.id.expect("frames carry ids");
    drop(visible);

    // Hidden: the body carries the retry advice and comments, and not one frame.
    let res = SseClient::request(server.addr, "?hidden=1", None).await;
    assert_eq!(res.status(), 200);
    wait_for(|| realtime.stream_clients() == 1, Duration::from_secs(2)).await;
    let mut body = res.bytes_stream();
    let mut text = String::new();
    let until = Instant::now() + Duration::from_millis(700);
    for user in ["bob", "cid", "dan"] {
        realtime.record(Event::borrow("GPU", user));
    }
    while let Ok(Some(Ok(chunk))) =
        tokio::time::timeout_at(until.into(), futures_util::StreamExt::next(&mut body)).await
    {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.starts_with("retry: "), "{text:?}");
    assert!(
        !text.contains("data:"),
        "a hidden page got frames: {text:?}"
    );
    assert!(
        text.matches(": keep-alive").count() >= 3,
        "keep-alives: {text:?}"
    );
    drop(body);
    wait_for(|| realtime.stream_clients() == 0, Duration::from_secs(2)).await;

    // Visible again, resuming after the last frame it saw: exactly what it missed.
    let mut back = SseClient::connect(server.addr, "", Some(last_id)).await;
    let catch_up = back.next_within(Duration::from_secs(2)).await;
    assert_eq!(catch_up.frame["kind"], "snapshot");
    let users: Vec<String> = events_of(&catch_up)
        .iter()
        .map(|e| e["user"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(users, ["bob", "cid", "dan"]);

    // A bad value is a clear 400.
    let res = SseClient::request(server.addr, "?hidden=maybe", None).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_hidden");
    realtime.shutdown();
}
