//! In cluster mode the usage tier follows the cluster view: two instances on one real
//! `redis-server`, a shared pool, and each instance's tier counts both instances' borrows, with
//! peaks of the merged level (one license used by one instance, then by the other, is a peak of
//! 1, never 2).
//!
//! Needs redis-server (SKIPPED otherwise, a failure with `REQUIRE_REDIS=1`).
#![cfg(all(feature = "usage", feature = "redis"))]

use realtime_layer::{Clock, Cluster, Event, ManualClock, PoolScope, Realtime, SystemClock};
use std::time::Duration;

mod common;

fn instance(redis: &str, id: &str, clock: &ManualClock, dir: &std::path::Path) -> Realtime {
    Realtime::builder()
        .instance_id(id)
        .clock(clock.clone())
        .usage(dir.join(format!("{id}.db")))
        .cluster(
            Cluster::redis(redis)
                .name("usage-test")
                .pool_scope(PoolScope::Shared),
        )
        .build()
        .expect("cluster instance")
}

/// Borrows held in `addr`'s cluster view (the buffer's count: without status sources the
/// view's resource list depends on heartbeats).
async fn cluster_borrows(addr: std::net::SocketAddr) -> u64 {
    let (_, stats) = common::get_json(addr, "/realtime/stats?window=600").await;
    assert_eq!(stats["scope"], "cluster", "{stats}");
    stats["borrow_count"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tier_follows_the_cluster_view_with_merged_peaks() {
    let Some(redis) = test_support::redis::RedisServer::start("usage_cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A shared manual clock at a minute boundary of real time (Redis trims by it).
    let clock = ManualClock::new(SystemClock::new().now_ms() / 60_000 * 60_000 + 1_000);
    let alpha = instance(&redis.url, "alpha", &clock, dir.path());
    let beta = instance(&redis.url, "beta", &clock, dir.path());
    let (a_addr, b_addr) = (
        common::serve(alpha.routes()).await,
        common::serve(beta.routes()).await,
    );
    for addr in [a_addr, b_addr] {
        test_support::wait::cluster_ready(
            &format!("http://{addr}"),
            2,
            Duration::from_secs(15),
            |_| true,
        )
        .await;
    }

    // GPU: alpha uses one license and gives it back, then beta does: never two at once.
    alpha.record(Event::borrow("GPU", "ann"));
    clock.advance(Duration::from_secs(1));
    alpha.record(Event::returned("GPU", "ann"));
    clock.advance(Duration::from_secs(1));
    // Let alpha's events reach beta before beta's own (the merged order is then the real one).
    test_support::wait::until(
        "alpha's GPU events at beta",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async move { (cluster_borrows(b_addr).await == 1).then_some(()) },
    )
    .await;
    beta.record(Event::borrow("GPU", "bob"));
    clock.advance(Duration::from_secs(1));
    beta.record(Event::returned("GPU", "bob"));
    // CAD: both at once.
    alpha.record(Event::borrow("CAD", "ann"));
    beta.record(Event::borrow("CAD", "bob"));
    for addr in [a_addr, b_addr] {
        test_support::wait::until(
            "every borrow in the cluster view",
            Duration::from_secs(10),
            Duration::from_millis(100),
            || async move { (cluster_borrows(addr).await == 4).then_some(()) },
        )
        .await;
    }

    clock.advance(Duration::from_secs(120));
    for (rt, name) in [(&alpha, "alpha"), (&beta, "beta")] {
        let usage = rt.usage().unwrap();
        usage.flush().unwrap();
        let report = usage.report(Duration::from_secs(3600)).unwrap();
        let get = |n: &str| {
            report
                .resources
                .iter()
                .find(|r| r.resource == n)
                .cloned()
                .unwrap()
        };
        let (gpu, cad) = (get("GPU"), get("CAD"));
        assert_eq!(
            (gpu.borrows, gpu.returns),
            (2, 2),
            "{name}: both instances' GPU borrows"
        );
        assert_eq!(
            gpu.peak_borrowed, 1,
            "{name}: the merged level, not a sum of peaks"
        );
        assert_eq!((cad.borrows, cad.peak_borrowed), (2, 2), "{name}: {cad:?}");
        let advice = usage.advice(Duration::from_secs(3600)).unwrap();
        let gpu = advice
            .resources
            .iter()
            .find(|a| a.resource == "GPU")
            .unwrap();
        assert_eq!(
            (gpu.attempts, gpu.recommended_size),
            (2, 1),
            "{name}: {gpu:?}"
        );
    }
    for rt in [alpha, beta] {
        rt.usage().unwrap().close().unwrap();
        rt.shutdown();
    }
}
