//! Cluster mode against a real `redis-server` started for the run (on a free loopback port),
//! printed as a table (`cargo bench -p realtime-layer --features redis --bench cluster`):
//!
//! 1. cross-instance latency: an event recorded on instance A until the SSE frame carrying it
//!    reaches a client of instance B (two instances, 200 samples; target p99 ≤ 300 ms);
//! 2. publish throughput: events one instance publishes through one local Redis, batched
//!    (target ≥ 100,000/s);
//! 3. Redis memory per retained event (`INFO memory` before/after; target ≤ 64 B), for large
//!    batches (busy) and small ones (~20 events per flush);
//! 4. HTTP request latency of a handler that records an event, Redis up vs Redis stopped (no
//!    measurable difference: publishing is off the request path).
//!
//! Whole run: about a minute. Needs `redis-server` (`apt-get install redis-server`); without it
//! the bench says SKIPPED.

use axum::routing::post;
use axum::Router;
use realtime_layer::{BufferConfig, Cluster, Event, Realtime};
use std::time::{Duration, Instant};

fn instance(url: &str, cluster: &str, id: &str, big: bool) -> Realtime {
    let mut builder = Realtime::builder().instance_id(id);
    let mut settings = Cluster::redis(url).name(cluster);
    if big {
        builder = builder.buffer_config(BufferConfig {
            max_borrows: 1_000_000,
            ..BufferConfig::default()
        });
        settings = settings
            .max_pending(1_000_000)
            .replay_window(Duration::from_secs(600));
    }
    builder.cluster(settings).build().expect("cluster instance")
}

async fn ready(rts: &[&Realtime]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !rts.iter().all(|rt| {
        rt.cluster_info()
            .is_some_and(|c| c.state == "ok" && c.live_instances == rts.len())
    }) {
        assert!(Instant::now() < deadline, "cluster not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Event on A → frame on B's SSE stream.
async fn cross_instance(url: &str) -> Vec<Duration> {
    let a = instance(url, "lat", "a", false);
    let b = instance(url, "lat", "b", false);
    ready(&[&a, &b]).await;
    let base = serve(b.routes()).await;
    let mut stream = reqwest::get(format!("{base}/realtime/stream"))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    tokio::spawn(async move {
        while let Ok(Some(chunk)) = stream.chunk().await {
            let at = Instant::now();
            let _ = tx.send((String::from_utf8_lossy(&chunk).into_owned(), at));
        }
    });
    let mut samples = Vec::new();
    for i in 0..200u32 {
        // Uneven spacing, like real traffic (and never in step with the flush interval).
        tokio::time::sleep(Duration::from_millis(40 + (i as u64 * 37) % 90)).await;
        while rx.try_recv().is_ok() {}
        let user = format!("lat-{i}-user");
        let start = Instant::now();
        a.record(Event::borrow("GPU", user.clone()));
        loop {
            let (text, at) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("frame within 5 s")
                .expect("stream open");
            if text.contains(&user) {
                samples.push(at - start);
                break;
            }
        }
    }
    a.shutdown();
    b.shutdown();
    samples.sort();
    samples
}

/// Events/s one instance publishes; Redis bytes per event.
async fn publish(redis: &test_support::redis::RedisServer, n: u64, per_flush: u64) -> (f64, f64) {
    let cluster = format!("pub-{n}-{per_flush}");
    let rt = instance(&redis.url, &cluster, "p", true);
    ready(&[&rt]).await;
    let before = redis.used_memory();
    let start = Instant::now();
    let mut recorded = 0;
    while recorded < n {
        let burst: Vec<Event> = (0..per_flush.min(n - recorded))
            .map(|i| {
                Event::borrow(
                    ["GPU A100", "GPU H100", "CAD"][(i % 3) as usize],
                    format!("user-{}", i % 500),
                )
                .borrow_id(format!("{:08x}-0000-4000-8000-000000000000", recorded + i))
            })
            .collect();
        rt.record_all(&burst);
        recorded += burst.len() as u64;
        if per_flush < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.cluster_info().unwrap().published_events < n {
        assert!(
            Instant::now() < deadline,
            "not published: {:?}",
            rt.cluster_info()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let info = rt.cluster_info().unwrap();
    assert_eq!(info.publish_dropped, 0, "{info:?}");
    let bytes = redis.used_memory().saturating_sub(before) as f64 / n as f64;
    rt.shutdown();
    (n as f64 / secs, bytes)
}

async fn borrow_latencies(base: &str, client: &reqwest::Client, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let res = client.post(format!("{base}/borrow")).send().await.unwrap();
        assert!(res.status().is_success());
        out.push(start.elapsed());
    }
    out.sort();
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(mut redis) = test_support::redis::RedisServer::start("cluster bench") else {
        return;
    };
    println!("# cluster mode (realtime-layer, redis-server on loopback)\n");

    let lat = cross_instance(&redis.url).await;
    println!(
        "| cross-instance latency (event on A → SSE frame on B), 200 samples | p50 | p99 | max |"
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| two instances, one Redis | {:.0} ms | {:.0} ms | {:.0} ms |\n",
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );

    println!("| publishing (one instance, batched) | events | events/s | Redis bytes/event |");
    println!("|---|---:|---:|---:|");
    for (label, n, per_flush) in [
        ("one burst (1,000 events per entry)", 300_000, 300_000),
        ("steady, ~20 events per 50 ms flush", 4_000, 20),
    ] {
        let (rate, bytes) = publish(&redis, n, per_flush).await;
        // The steady run is paced by its own sleeps: its rate says nothing about capacity.
        let rate = if per_flush < n {
            "(paced)".to_string()
        } else {
            format!("{rate:.0}")
        };
        println!("| {label} | {n} | {rate} | {bytes:.1} |");
    }

    // A handler that records an event, measured with Redis up and with Redis stopped.
    let rt = instance(&redis.url, "http", "h", false);
    ready(&[&rt]).await;
    let app = Router::new()
        .route(
            "/borrow",
            post(|| async { (Event::borrow("GPU", "bench"), "ok") }),
        )
        .layer(rt.layer());
    let base = serve(app).await;
    let client = reqwest::Client::new();
    borrow_latencies(&base, &client, 500).await;
    let up = borrow_latencies(&base, &client, 3_000).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down = borrow_latencies(&base, &client, 3_000).await;
    assert_eq!(rt.cluster_info().unwrap().state, "degraded");
    // Up again (an empty Redis on the same port): the run order cannot explain a difference.
    redis.restart();
    ready(&[&rt]).await;
    let again = borrow_latencies(&base, &client, 3_000).await;
    println!("\n| request recording an event, 3,000 sequential | p50 | p99 |");
    println!("|---|---:|---:|");
    for (label, l) in [
        ("Redis up", &up),
        ("Redis stopped", &down),
        ("Redis up again (restarted)", &again),
    ] {
        println!(
            "| {label} | {:.0} µs | {:.0} µs |",
            pct(l, 0.5).as_secs_f64() * 1e6,
            pct(l, 0.99).as_secs_f64() * 1e6
        );
    }
    rt.shutdown();
}
