//! The push delay stretches with the audience (`StreamConfig::frame_budget`): a few readers get
//! frames at `push_delay`, a crowd gets fewer frames, never further apart than `max_push_delay`,
//! and the delay comes back down when the crowd leaves; the delay now is on the handle and in
//! `/metrics`. Over real HTTP on loopback.

use futures_util::StreamExt;
use realtime_layer::{Event, Realtime, StreamConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

mod common;
use common::{serve_realtime as serve, wait_for};

/// The arrival times of a stream's frames (SSE messages with a `data:` line), read in the
/// background until the token is cancelled.
struct FrameTimes {
    times: std::sync::Arc<parking_lot::Mutex<Vec<Instant>>>,
}

impl FrameTimes {
    async fn open(addr: SocketAddr, stop: CancellationToken) -> FrameTimes {
        let res = reqwest::get(format!("http://{addr}/realtime/stream"))
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        let times = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = times.clone();
        tokio::spawn(async move {
            let mut body = res.bytes_stream();
            let mut buf = String::new();
            loop {
                let chunk = tokio::select! {
                    _ = stop.cancelled() => return,
                    chunk = body.next() => chunk,
                };
                let Some(Ok(chunk)) = chunk else { return };
                buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    if block.lines().any(|l| l.starts_with("data: ")) {
                        seen.lock().push(Instant::now());
                    }
                }
            }
        });
        FrameTimes { times }
    }

    /// The gaps between the frames that arrived within `window` from now (after it has passed).
    async fn gaps_over(&self, window: Duration) -> Vec<Duration> {
        let from = Instant::now();
        tokio::time::sleep(window).await;
        let times: Vec<Instant> = self
            .times
            .lock()
            .iter()
            .copied()
            .filter(|t| *t >= from)
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_delay_stretches_with_the_readers_and_comes_back() {
    // 40 frames a second in all: one reader gets 25 ms (push_delay 20 ms), eight get 200 ms.
    let config = StreamConfig {
        tick: Duration::from_secs(10),
        push_delay: Duration::from_millis(20),
        max_push_delay: Duration::from_millis(200),
        frame_budget: 40,
        ..StreamConfig::default()
    };
    assert_eq!(config.push_delay_for(8), Duration::from_millis(200));
    let realtime = Realtime::builder().stream_config(config).build().unwrap();
    let server = serve(&realtime).await;
    let stop = CancellationToken::new();
    // An event every 10 ms: every build has something to push.
    let load = {
        let (realtime, stop) = (realtime.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                realtime.record(Event::borrow("GPU", "ann"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let gauge = common::metric_value(server.addr, "realtime_stream_push_delay_seconds").await;
    assert!(
        (gauge - 0.02).abs() < 1e-9,
        "push delay gauge before any stream: {gauge}"
    );
    let first = FrameTimes::open(server.addr, stop.clone()).await;
    let alone = first.gaps_over(Duration::from_millis(1_500)).await;
    assert!(
        alone.len() >= 20,
        "one reader: a frame every ~25 ms, got {} in 1.5 s",
        alone.len() + 1
    );

    let crowd_stop = CancellationToken::new();
    let mut crowd = Vec::new();
    for _ in 0..7 {
        crowd.push(FrameTimes::open(server.addr, crowd_stop.clone()).await);
    }
    wait_for(|| realtime.stream_clients() == 8, Duration::from_secs(2)).await;
    // The delay is taken when a build is scheduled: skip the one scheduled before the crowd.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let crowded = first.gaps_over(Duration::from_millis(1_500)).await;
    assert!(
        (3..=8).contains(&crowded.len()),
        "eight readers: a frame every ~200 ms, got {} in 1.5 s: {crowded:?}",
        crowded.len() + 1
    );
    // Builds are never closer than the stretched delay (200 ms); a late delivery may shorten
    // the gap after it on a busy machine, never to the unstretched 25 ms.
    let shortest = crowded.iter().min().copied().unwrap_or_default();
    assert!(
        shortest >= Duration::from_millis(100),
        "frame gaps with eight readers: {crowded:?}"
    );
    // What an operator sees: the delay now, on the handle and in /metrics.
    assert_eq!(realtime.stream_push_delay(), Duration::from_millis(200));
    let gauge = common::metric_value(server.addr, "realtime_stream_push_delay_seconds").await;
    assert!((gauge - 0.2).abs() < 1e-9, "push delay gauge: {gauge}");
    for reader in &crowd[1..] {
        let got = reader.times.lock().len();
        assert!(got >= 3, "every reader of the crowd gets the frames: {got}");
    }

    crowd_stop.cancel();
    drop(crowd);
    wait_for(|| realtime.stream_clients() == 1, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = first.gaps_over(Duration::from_millis(1_500)).await;
    assert!(
        again.len() >= 20,
        "alone again: back to ~25 ms, got {} frames in 1.5 s",
        again.len() + 1
    );
    assert_eq!(realtime.stream_push_delay(), Duration::from_millis(25));

    stop.cancel();
    load.await.unwrap();
    realtime.shutdown();
}

#[test]
fn a_zero_frame_budget_is_refused() {
    let err = Realtime::builder()
        .stream_config(StreamConfig {
            frame_budget: 0,
            ..StreamConfig::default()
        })
        .build()
        .expect_err("a zero budget");
    assert!(err.to_string().contains("frame budget"), "{err}");
}
