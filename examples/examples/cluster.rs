//! cluster — two replicas, one live view: cluster mode on Redis Streams.
//!
//! Two instances of a meeting-room booking service ("east" and "west", each owning its own
//! rooms) join the same cluster through Redis. Each dashboard shows both: the header says
//! "cluster · 2 instances", every event is tagged with the instance that recorded it, totals add
//! up both pools, and the instance selector narrows the view to one replica. Stop Redis and each
//! page falls back to its own instance, saying so; start it again and the cluster view returns.
//!
//! Run (needs a Redis server; `apt-get install redis-server` gives one on 127.0.0.1:6379):
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p realtime-examples --example cluster -- --simulate`
//! then open both printed dashboards. In production each replica is its own process: the same
//! `Cluster` configuration in every one of them is all it takes.

use axum::{extract::Path, routing::post, Router};
use realtime_layer::{Cluster, Event, PoolScope, Realtime, ResourceStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const ROOMS: u32 = 6;

/// One replica: its rooms in use, its handlers and its realtime instance (in cluster mode).
pub fn replica(
    id: &str,
    redis_url: &str,
) -> Result<(Router, Realtime), realtime_layer::ConfigError> {
    let in_use = Arc::new(AtomicU32::new(0));
    let status = in_use.clone();
    let realtime = Realtime::builder()
        .instance_id(id)
        // Each replica owns its rooms: cluster totals are the sum of both.
        .status_source(move || {
            vec![ResourceStatus::new(
                "rooms",
                ROOMS,
                4,
                status.load(Ordering::Relaxed),
            )]
        })
        .cluster(
            Cluster::redis(redis_url)
                .name("rooms-example")
                .pool_scope(PoolScope::PerInstance),
        )
        .build()?;
    let (book_count, free_count) = (in_use.clone(), in_use);
    let app = Router::new()
        .route(
            "/book/{user}",
            post(move |Path(user): Path<String>| async move {
                let taken = book_count.fetch_add(1, Ordering::Relaxed);
                if taken >= ROOMS {
                    book_count.fetch_sub(1, Ordering::Relaxed);
                    return (Event::failure("rooms", user, "exhausted"), "no room free\n");
                }
                (Event::borrow("rooms", user).overage(taken >= 4), "booked\n")
            }),
        )
        .route(
            "/free/{user}",
            post(move |Path(user): Path<String>| async move {
                let _ = free_count
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                (Event::returned("rooms", user), "freed\n")
            }),
        )
        .layer(realtime.layer())
        .merge(realtime.routes());
    Ok((app, realtime))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = realtime_examples::Args::parse(3007);
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let (east_app, east) = replica("east", &redis_url)?;
    let (west_app, west) = replica("west", &redis_url)?;
    let mut west_bind = args.bind;
    if west_bind.port() != 0 {
        west_bind.set_port(west_bind.port() + 1);
    }
    if args.simulate {
        tokio::spawn(simulate(east_app.clone()));
        tokio::spawn(simulate(west_app.clone()));
    }
    let west_server = tokio::spawn({
        let west = west.clone();
        async move { realtime_examples::serve(west_app, west_bind, &west, "/realtime").await }
    });
    realtime_examples::serve(east_app, args.bind, &east, "/realtime").await?;
    west.shutdown();
    west_server.await??;
    Ok(())
}

/// Books and frees rooms at random through the app itself, so events pass the layer.
async fn simulate(app: Router) {
    let mut rng = realtime_examples::Rng::new();
    loop {
        let user = rng.pick(&realtime_examples::USERS);
        let path = if rng.below(2) == 0 { "book" } else { "free" };
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("/{path}/{user}"))
            .body(axum::body::Body::empty())
            .unwrap();
        realtime_examples::send(&app, request).await;
        rng.pause(200, 500).await;
    }
}
