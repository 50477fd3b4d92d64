//! Two real `realtime-sidecar` processes on one real `redis-server` (`--redis`, as for
//! license-demo): each serves both sidecars' events, at their senders' times.

mod sidecar;

use sidecar::{line, now_ms, Sidecar};
use std::time::Duration;
use test_support::redis::RedisServer;

#[tokio::test]
async fn a_sidecar_pair_shows_each_others_events() {
    let Some(redis) = RedisServer::start("a_sidecar_pair_shows_each_others_events") else {
        return;
    };
    let name = format!("sidecar-pair-{}", std::process::id());
    let start = |id: &str| {
        Sidecar::start(&[
            "--redis",
            &redis.url,
            "--cluster-name",
            &name,
            "--instance-id",
            id,
        ])
    };
    let (a, b) = (start("sidecar-a"), start("sidecar-b"));
    let now = now_ms();
    let to_a = line("borrow", "GPU A100", "ann", Some("c-1"), now - 2_000)
        + &line("failure", "GPU A100", "cy", None, now - 1_500);
    let to_b = line("return", "GPU A100", "ann", Some("c-1"), now - 1_000)
        + &line("borrow", "CPU pool", "bob", Some("c-2"), now - 500);
    assert_eq!(a.post_ndjson(to_a, None).await.0, 200);
    assert_eq!(b.post_ndjson(to_b, None).await.0, 200);
    for (sidecar, borrow_first) in [(&a, true), (&b, false)] {
        let stats =
            test_support::wait::cluster_ready(&sidecar.url, 2, Duration::from_secs(20), |s| {
                s["total_events"] == 4
            })
            .await;
        assert_eq!(
            (
                stats["borrow_count"].as_u64(),
                stats["return_count"].as_u64()
            ),
            (Some(2), Some(1))
        );
        let instances: Vec<&str> = stats["recent_events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["instance"].as_str())
            .collect();
        assert!(
            instances.contains(&"sidecar-a") && instances.contains(&"sidecar-b"),
            "{instances:?}"
        );
        // A borrow on one sidecar and its return on the other make one hold of 1 s (by the
        // senders' times) where the borrow arrives first; where the return arrives before its
        // borrow, the hold cannot be matched (counted as an unmatched return).
        let holds = sidecar::holds(&stats, "GPU A100");
        if borrow_first {
            assert_eq!(
                (holds["count"].as_u64(), holds["max_seconds"].as_f64()),
                (Some(1), Some(1.0)),
                "{holds}"
            );
        }
        // Each instance alone still answers with its own events.
        let local =
            test_support::http::get_ok(sidecar.at("/realtime/stats?window=300&scope=local")).await;
        assert_eq!(local["total_events"], 2);
    }
}
