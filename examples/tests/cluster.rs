//! The `cluster` example with a real `redis-server`: both replicas' dashboards show both
//! replicas' simulated traffic.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn both_replicas_see_both_replicas_traffic() {
    let Some(redis) = test_support::redis::RedisServer::start("examples::cluster") else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples/cluster");
    assert!(
        bin.exists(),
        "{} missing: run through `cargo test`",
        bin.display()
    );
    let mut child = Command::new(&bin)
        .args(["--simulate", "--bind", "127.0.0.1:0"])
        .env("REDIS_URL", &redis.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut urls = Vec::new();
    while urls.len() < 2 {
        let line = lines.next().expect("two dashboard lines").unwrap();
        if let Some(url) = line.strip_prefix("Dashboard: ") {
            urls.push(url.to_string());
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    for url in &urls {
        // The example's URLs end in `/realtime`: the cluster view of both replicas, each
        // replica's simulated events in it.
        let base = url.trim_end_matches("/realtime");
        let stats = test_support::wait::cluster_ready(base, 2, Duration::from_secs(30), |stats| {
            let from = |id: &str| {
                stats["recent_events"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["instance"] == id))
            };
            from("east") && from("west")
        })
        .await;
        let rooms = stats["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "rooms"))
            .map(|r| r["total"].clone());
        // Two pools of 6 rooms each.
        assert_eq!(rooms, Some(serde_json::json!(12)), "{stats}");
    }
    let _ = child.kill();
    let _ = child.wait();
}
