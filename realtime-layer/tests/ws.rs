//! `/realtime/ws` over real TCP with `tokio-tungstenite`: snapshot then deltas as bare JSON text
//! messages, push latency, filters, resume, errors before the upgrade, the shared stream limit,
//! the clients gauge, pings, ignored input and graceful shutdown.

use futures_util::{SinkExt, StreamExt};
use realtime_layer::{Event, Realtime, ResourceStatus, StreamConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod common;
use common::{get_json, serve_realtime as serve, wait_for, Server};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Shuts the instance down and waits for the server to finish (promptly, sockets included).
async fn stop(realtime: &Realtime, server: Server) {
    realtime.shutdown();
    tokio::time::timeout(Duration::from_secs(3), server.task)
        .await
        .expect("serve returns promptly")
        .unwrap();
}

async fn try_connect(addr: SocketAddr, query: &str) -> Result<Socket, WsError> {
    tokio_tungstenite::connect_async(format!("ws://{addr}/realtime/ws{query}"))
        .await
        .map(|(socket, _)| socket)
}

async fn connect(addr: SocketAddr, query: &str) -> Socket {
    try_connect(addr, query).await.expect("WebSocket upgrade")
}

/// The status (and JSON body when it came with the headers) of a refused upgrade.
async fn refused(addr: SocketAddr, query: &str) -> (u16, Option<Value>) {
    match try_connect(addr, query).await {
        Ok(_) => panic!("upgrade of {query:?} accepted"),
        Err(WsError::Http(res)) => {
            let body = res
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok());
            (res.status().as_u16(), body)
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The next text message parsed as a frame (pings and pongs are skipped and counted); `None` when
/// the socket closed (with the Close frame, if any, in `closed`).
struct Client {
    socket: Socket,
    pings: usize,
    closed: Option<Option<CloseCode>>,
    names: common::FrameNames,
}

impl Client {
    async fn open(addr: SocketAddr, query: &str) -> Client {
        Client {
            socket: connect(addr, query).await,
            pings: 0,
            closed: None,
            names: common::FrameNames::default(),
        }
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => {
                    assert!(
                        text.starts_with('{') && text.ends_with('}'),
                        "bare JSON, no SSE framing: {text:?}"
                    );
                    let mut frame = serde_json::from_str(&text).expect("JSON frame");
                    self.names.resolve(&mut frame);
                    return Some(frame);
                }
                Ok(Message::Ping(_)) => self.pings += 1,
                Ok(Message::Close(frame)) => {
                    self.closed = Some(frame.map(|f| f.code));
                }
                Ok(other) => panic!("unexpected message {other:?}"),
                Err(_) => return None,
            }
        }
    }

    async fn next_within(&mut self, d: Duration) -> Value {
        tokio::time::timeout(d, self.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
    }

    /// Reads frames until one satisfies `pred` (within `d`), returning it and the time taken.
    async fn until(
        &mut self,
        d: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> (Value, Duration) {
        let start = Instant::now();
        loop {
            let left = d.checked_sub(start.elapsed()).expect("condition in time");
            let frame = self.next_within(left).await;
            if pred(&frame) {
                return (frame, start.elapsed());
            }
        }
    }
}

fn events_of(frame: &Value) -> Vec<Value> {
    common::frame_events(frame)
}

fn has_user(frame: &Value, user: &str) -> bool {
    events_of(frame).iter().any(|e| e["user"] == user)
}

fn seq(frame: &Value) -> u64 {
    frame["seq"].as_u64().expect("numeric seq")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_deltas_pushed_within_500ms_with_increasing_seq() {
    let realtime = Realtime::builder().build().unwrap(); // default 1 s tick, 100 ms push
    realtime.record(Event::borrow("GPU A100", "ann"));
    let server = serve(&realtime).await;
    let mut ws = Client::open(server.addr, "").await;
    let snap = ws.next_within(Duration::from_secs(2)).await;
    assert_eq!(snap["kind"], "snapshot");
    assert_eq!(snap["resources"][0]["borrowed"], 1);
    assert_eq!(events_of(&snap)[0]["user"], "ann");
    for key in ["rates", "buffer", "point", "events_omitted", "ts_ms"] {
        assert!(!snap[key].is_null(), "snapshot has {key}");
    }
    assert_eq!(realtime.stream_clients(), 1);

    let mut last = seq(&snap);
    for i in 0..5u64 {
        let user = format!("user-{i}");
        let recorded = Instant::now();
        realtime.record(Event::borrow("GPU A100", user.clone()));
        let (frame, _) = ws
            .until(Duration::from_secs(2), |f| {
                assert!(seq(f) > last, "seq increases: {} after {last}", seq(f));
                last = seq(f);
                assert_eq!(f["kind"], "delta");
                has_user(f, &user)
            })
            .await;
        let latency = recorded.elapsed();
        assert!(
            latency < Duration::from_millis(500),
            "pushed within 500 ms: {latency:?}"
        );
        assert_eq!(frame["res"][0]["borrowed"], 2 + i);
    }

    // Idle: deltas still tick.
    let a = ws.next_within(Duration::from_secs(3)).await;
    let b = ws.next_within(Duration::from_secs(3)).await;
    assert!(seq(&b) > seq(&a));

    // The client closes: the session ends and the gauge drops.
    ws.socket.close(None).await.unwrap();
    wait_for(|| realtime.stream_clients() == 0, Duration::from_secs(3)).await;
    stop(&realtime, server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_restrict_frames_and_bad_params_fail_before_the_upgrade() {
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
    let mut by_res = Client::open(server.addr, "?resource=Tool%20B").await;
    let mut by_user = Client::open(server.addr, "?user=bob").await;
    let snap = by_res.next_within(Duration::from_secs(2)).await;
    let names: Vec<Value> = snap["resources"]
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
        ("Tool A", "end"),
        ("Tool B", "end"),
    ] {
        realtime.record(Event::borrow(res, user));
    }
    let mut res_events = Vec::new();
    by_res
        .until(Duration::from_secs(3), |f| {
            res_events.extend(events_of(f));
            has_user(f, "end")
        })
        .await;
    let users: Vec<&str> = res_events
        .iter()
        .map(|e| e["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["ann", "bob", "end"]);
    assert!(res_events.iter().all(|e| e["resource"] == "Tool B"));

    let (frame, _) = by_user
        .until(Duration::from_secs(3), |f| !events_of(f).is_empty())
        .await;
    let events = events_of(&frame);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["user"] == "bob"));

    // Errors come as JSON before any upgrade.
    let (status, body) = refused(server.addr, "?resource=nope").await;
    assert_eq!(status, 404);
    if let Some(body) = body {
        assert_eq!(body["error"], "unknown_resource");
    }
    let (status, body) = get_json(server.addr, "/realtime/ws?resource=nope").await;
    assert_eq!((status, &body["error"]), (404, &json!("unknown_resource")));
    let long = "u".repeat(1025);
    let (status, _) = refused(server.addr, &format!("?user={long}")).await;
    assert_eq!(status, 400);
    // A plain GET (no upgrade headers): a JSON 4xx, not a stream.
    let (status, body) = get_json(server.addr, "/realtime/ws").await;
    assert!((400..500).contains(&status), "{status}");
    assert_eq!(body["error"], "websocket_upgrade_required");
    drop((by_res, by_user));
    wait_for(|| realtime.stream_clients() == 0, Duration::from_secs(3)).await;
    stop(&realtime, server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_streams_is_shared_with_sse_and_disconnects_free_the_slot() {
    let realtime = Realtime::builder()
        .tick(Duration::from_millis(100))
        .max_streams(1)
        .build()
        .unwrap();
    let server = serve(&realtime).await;

    // An SSE stream holds the only slot: the upgrade is refused with the JSON 503.
    let sse = reqwest::get(format!("http://{}/realtime/stream", server.addr))
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert_eq!(realtime.stream_clients(), 1);
    let (status, body) = refused(server.addr, "").await;
    assert_eq!(status, 503);
    if let Some(body) = body {
        assert_eq!(body["error"], "too_many_streams");
    }
    let res = reqwest::get(format!("http://{}/realtime/ws", server.addr))
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "too_many_streams"
    );
    assert_eq!(realtime.stream_clients(), 1, "refusals are not counted");
    drop(sse);
    wait_for(|| realtime.stream_clients() == 0, Duration::from_secs(3)).await;

    // A WebSocket holds it: SSE is refused.
    let mut ws = Client::open(server.addr, "").await;
    ws.next_within(Duration::from_secs(2)).await;
    assert_eq!(realtime.stream_clients(), 1);
    let (status, body) = get_json(server.addr, "/realtime/stream").await;
    assert_eq!((status, &body["error"]), (503, &json!("too_many_streams")));

    // The client vanishes without a Close: the gauge still returns to 0.
    drop(ws);
    wait_for(|| realtime.stream_clients() == 0, Duration::from_secs(3)).await;
    let gauge = common::metric_value(server.addr, "realtime_stream_clients").await;
    assert_eq!(gauge, 0.0);
    let mut again = Client::open(server.addr, "").await;
    again.next_within(Duration::from_secs(2)).await;
    stop(&realtime, server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_query_resumes_with_exactly_the_missed_events() {
    let realtime = Realtime::builder()
        .tick(Duration::from_millis(200))
        .build()
        .unwrap();
    let server = serve(&realtime).await;
    let mut ws = Client::open(server.addr, "").await;
    ws.next_within(Duration::from_secs(2)).await;
    realtime.record(Event::borrow("pool", "seen"));
    let (frame, _) = ws
        .until(Duration::from_secs(2), |f| has_user(f, "seen"))
        .await;
    let last = seq(&frame);
    drop(ws);
    realtime.record(Event::returned("pool", "missed-1"));
    realtime.record(Event::failure("pool", "missed-2", "exhausted"));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut again = Client::open(server.addr, &format!("?last_event_id={last}")).await;
    let snap = again.next_within(Duration::from_secs(2)).await;
    assert_eq!(snap["kind"], "snapshot");
    assert!(seq(&snap) > last);
    let users: Vec<String> = events_of(&snap)
        .iter()
        .map(|e| e["user"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users, ["missed-1", "missed-2"]);
    stop(&realtime, server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_sent_and_client_messages_are_ignored_but_bounded() {
    let realtime = Realtime::builder()
        .stream_config(StreamConfig {
            keep_alive: Duration::from_millis(200),
            ..Default::default()
        })
        .build()
        .unwrap();
    let server = serve(&realtime).await;
    let mut ws = Client::open(server.addr, "").await;
    ws.next_within(Duration::from_secs(2)).await;
    for i in 0..50 {
        ws.socket
            .send(Message::text(format!("{{\"hello\": {i}}}")))
            .await
            .unwrap();
    }
    ws.socket
        .send(Message::binary(vec![0u8; 100]))
        .await
        .unwrap();
    // Still served: the next frame comes (the idle tick, ~1 s later), pings in between.
    ws.next_within(Duration::from_secs(3)).await;
    assert!(ws.pings >= 3, "pings: {}", ws.pings);
    assert_eq!(realtime.stream_clients(), 1);

    // An oversized message ends the session instead of being buffered.
    let _ = ws.socket.send(Message::binary(vec![0u8; 64 * 1024])).await;
    let end = tokio::time::timeout(Duration::from_secs(3), async {
        while ws.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "session ended");
    wait_for(|| realtime.stream_clients() == 0, Duration::from_secs(3)).await;
    stop(&realtime, server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_completes_with_websockets_open() {
    let realtime = Realtime::builder().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = realtime.routes();
    let token = realtime.shutdown_token();
    let server = tokio::spawn(async move {
        tokio::time::timeout(
            Duration::from_secs(3),
            axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()),
        )
        .await
    });
    let mut clients = Vec::new();
    for q in ["", "", "?user=x"] {
        let mut c = Client::open(addr, q).await;
        c.next_within(Duration::from_secs(2)).await;
        clients.push(c);
    }
    assert_eq!(realtime.stream_clients(), 3);
    let start = Instant::now();
    realtime.shutdown();
    server
        .await
        .unwrap()
        .expect("graceful shutdown completes promptly")
        .unwrap();
    eprintln!("graceful shutdown took {:?}", start.elapsed());
    for c in &mut clients {
        let end = tokio::time::timeout(Duration::from_secs(2), async {
            while c.next().await.is_some() {}
        })
        .await;
        assert!(end.is_ok(), "socket ended");
        assert_eq!(c.closed, Some(Some(CloseCode::Away)), "a Close frame first");
    }
    wait_for(|| realtime.stream_clients() == 0, Duration::from_secs(2)).await;
    // After shutdown new sockets are refused.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = realtime.routes();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, _) = refused(addr, "").await;
    assert_eq!(status, 503);
}
