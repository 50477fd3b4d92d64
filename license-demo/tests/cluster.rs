//! Cluster mode with real processes and a real Redis: two license-demo binaries ("two sites",
//! each its own SQLite file, `per-instance` pools) share one live dashboard.

mod common;
use serde_json::{json, Value};
use std::io::BufReader;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::redis::RedisServer;

const TOOL: &str = "AUTOSAR Configuration Tool";

/// One license-demo process in cluster mode.
struct Site {
    child: Child,
    url: String,
    client: reqwest::Client,
}

impl Site {
    fn spawn(redis: &str, id: &str, db: &Path) -> Site {
        let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
            .args(["--bind", "127.0.0.1:0", "--log", "warn", "--redis", redis])
            .args(["--instance-id", id, "--db"])
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("license-demo starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let url = common::read_url(&mut out, &mut String::new());
        // Keep reading: the server prints more, and a closed pipe would end it.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Site {
            child,
            url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.url);
        let (status, body) = test_support::http::send_json(self.client.get(&url), &url).await;
        assert!((200..300).contains(&status), "GET {path}: {status} {body}");
        body
    }

    /// Borrows `TOOL` for `user`; returns the borrow id and how long the request took.
    async fn borrow(&self, user: &str) -> (String, Duration) {
        let start = Instant::now();
        let resp = self
            .client
            .post(format!("{}/licenses/borrow", self.url))
            .json(&json!({"tool": TOOL, "user": user}))
            .send()
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        (body["id"].as_str().unwrap().to_string(), took)
    }

    async fn give_back(&self, id: &str) -> Duration {
        let start = Instant::now();
        let resp = self
            .client
            .post(format!("{}/licenses/return", self.url))
            .json(&json!({ "id": id }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        start.elapsed()
    }

    /// Polls `/realtime/stats` until `cond` holds; returns the stats and the time it took.
    async fn wait_stats(
        &self,
        what: &str,
        limit: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> (Value, Duration) {
        let start = Instant::now();
        loop {
            let stats = self.get("/realtime/stats").await;
            if cond(&stats) {
                return (stats, start.elapsed());
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}; last stats {stats}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn has_user(stats: &Value, user: &str) -> bool {
    stats["recent_events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|e| e["user"] == user))
}

fn live(stats: &Value) -> u64 {
    stats["cluster"]["live_instances"].as_u64().unwrap_or(0)
}

fn tool_row<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

/// Reads `/realtime/stream` until a frame mentions `needle`; returns the time from `since`.
async fn wait_in_stream(
    site: &Site,
    needle: &str,
    since: Instant,
    mut body: reqwest::Response,
) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.chunk())
            .await
            .expect("stream chunk in time")
            .expect("stream readable")
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains(needle) {
            return since.elapsed();
        }
    }
    panic!("{needle} never appeared in {}'s stream", site.url)
}

#[tokio::test]
async fn two_sites_share_one_live_view_and_survive_restarts() {
    let Some(redis) = RedisServer::start("cluster::two_sites_share_one_live_view") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Site::spawn(&redis.url, "site-a", &dir.path().join("a.db"));
    let mut b = Site::spawn(&redis.url, "site-b", &dir.path().join("b.db"));
    for site in [&a, &b] {
        site.wait_stats("both instances live", Duration::from_secs(10), |s| {
            s["cluster"]["state"] == "ok" && live(s) == 2
        })
        .await;
        let config = site.get("/realtime/config").await;
        assert_eq!(config["cluster"]["live_instances"], 2, "{config}");
        assert_eq!(config["cluster"]["instances"], json!(["site-a", "site-b"]));
    }

    // A borrow on A shows in B's stats and in B's live stream.
    let stream = b
        .client
        .get(format!("{}/realtime/stream", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let t0 = Instant::now();
    let (id, _) = a.borrow("ann-from-a").await;
    let (stats, in_stats) = b
        .wait_stats("A's borrow in B's stats", Duration::from_secs(5), |s| {
            has_user(s, "ann-from-a") && tool_row(s, TOOL)["borrowed"] == 1
        })
        .await;
    let in_stream = wait_in_stream(&b, "ann-from-a", t0, stream).await;
    println!("cross-instance: stats {in_stats:?}, stream {in_stream:?} (target 300 ms)");
    // Generous bounds (shared CI machine); the benchmark measures the 300 ms target.
    assert!(in_stats < Duration::from_secs(2) && in_stream < Duration::from_secs(2));
    let event = stats["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["user"] == "ann-from-a")
        .unwrap();
    assert_eq!(event["instance"], "site-a");
    // Two sites of 12 each: the cluster totals add up; each site alone is its own.
    assert_eq!(tool_row(&stats, TOOL)["total"], 24);
    let local = b.get("/realtime/stats?scope=local").await;
    assert_eq!(local["scope"], "local");
    assert!(!has_user(&local, "ann-from-a"));
    assert_eq!(tool_row(&local, TOOL)["borrowed"], 0);
    let only_a = b.get("/realtime/stats?instance=site-a").await;
    assert_eq!(only_a["scope"], "instance");
    assert!(has_user(&only_a, "ann-from-a"));
    assert_eq!(tool_row(&only_a, TOOL)["total"], 12);
    assert_eq!(tool_row(&only_a, TOOL)["borrowed"], 1);
    let csv = b
        .client
        .get(format!("{}/realtime/events.csv", b.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("ts,kind,resource,user,borrow_id,overage,reason,instance"));
    assert!(
        csv.contains("ann-from-a,") && csv.contains(",site-a"),
        "{csv}"
    );
    a.give_back(&id).await;

    // B restarted: its backfilled view has A's earlier events.
    b.kill9();
    let b2 = Site::spawn(&redis.url, "site-b2", &dir.path().join("b.db"));
    let (stats, _) = b2
        .wait_stats("backfilled view", Duration::from_secs(10), |s| {
            s["cluster"]["state"] == "ok" && has_user(s, "ann-from-a")
        })
        .await;
    // At least A's borrow came through the backfill (its return may land a moment later, live).
    assert!(
        stats["cluster"]["backfilled_events"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    drop(b);

    // Garbage in the stream: skipped, counted, nothing crashes.
    let key = "realtime:{license-demo}:events";
    redis.cli(&["XADD", key, "*", "v", "1", "i", "evil", "b", "{not json"]);
    redis.cli(&["XADD", key, "*", "foreign", "entry"]);
    b2.wait_stats("garbage counted", Duration::from_secs(5), |s| {
        s["cluster"]["skipped_entries"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    a.borrow("after-garbage").await;
    b2.wait_stats("still merging", Duration::from_secs(5), |s| {
        has_user(s, "after-garbage")
    })
    .await;
}

#[tokio::test]
async fn redis_outage_degrades_to_local_views_without_slowing_requests() {
    let Some(mut redis) = RedisServer::start("cluster::redis_outage") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Site::spawn(&redis.url, "out-a", &dir.path().join("a.db"));
    let b = Site::spawn(&redis.url, "out-b", &dir.path().join("b.db"));
    b.wait_stats("both live", Duration::from_secs(10), |s| live(s) == 2)
        .await;

    async fn cycle_times(site: &Site, n: usize) -> Vec<Duration> {
        let mut times = Vec::new();
        for i in 0..n {
            let (id, t) = site.borrow(&format!("u{i}")).await;
            times.push(t);
            times.push(site.give_back(&id).await);
        }
        times.sort();
        times
    }
    let up = cycle_times(&a, 50).await;
    redis.kill();
    let (stats, _) = a
        .wait_stats("degraded", Duration::from_secs(10), |s| {
            s["cluster"]["state"] == "degraded"
        })
        .await;
    assert_eq!(stats["scope"], "local");
    assert!(stats["cluster"]["last_error"].is_string(), "{stats}");
    let down = cycle_times(&a, 50).await;
    let (p50_up, p50_down) = (up[up.len() / 2], down[down.len() / 2]);
    println!("borrow/return p50 with Redis up {p50_up:?}, down {p50_down:?}");
    // Requests never wait on Redis: a slow or dead Redis would add its timeouts (≥ 500 ms).
    assert!(
        down[down.len() - 1] < Duration::from_millis(400),
        "{down:?}"
    );
    // The local view keeps serving this instance's events.
    a.wait_stats("local events served", Duration::from_secs(5), |s| {
        has_user(s, "u49")
    })
    .await;
    let frame = first_frame(&a).await;
    assert_eq!(frame["cluster"]["state"], "degraded", "{frame}");
    assert_eq!(frame["instance"], "out-a");

    // Redis back (empty): the cluster view resumes without restarting A or B.
    redis.restart();
    for site in [&a, &b] {
        site.wait_stats("recovered", Duration::from_secs(20), |s| {
            s["cluster"]["state"] == "ok" && live(s) == 2
        })
        .await;
    }
    a.borrow("after-outage").await;
    b.wait_stats("merging again", Duration::from_secs(5), |s| {
        has_user(s, "after-outage")
    })
    .await;
}

async fn first_frame(site: &Site) -> Value {
    let mut resp = site
        .client
        .get(format!("{}/realtime/stream", site.url))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("\n\n") || !text.contains("data: ") {
        let chunk = resp.chunk().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let line = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    serde_json::from_str(line).unwrap()
}

#[tokio::test]
async fn a_killed_instance_leaves_the_live_totals_within_ten_seconds() {
    let Some(redis) = RedisServer::start("cluster::killed_instance") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut a = Site::spawn(&redis.url, "gone-a", &dir.path().join("a.db"));
    let b = Site::spawn(&redis.url, "gone-b", &dir.path().join("b.db"));
    a.borrow("held-by-a").await;
    b.wait_stats("A's borrow counted", Duration::from_secs(10), |s| {
        live(s) == 2 && tool_row(s, TOOL)["borrowed"] == 1 && tool_row(s, TOOL)["total"] == 24
    })
    .await;
    a.kill9();
    let (stats, took) = b
        .wait_stats("A gone from live totals", Duration::from_secs(12), |s| {
            live(s) == 1 && tool_row(s, TOOL)["total"] == 12
        })
        .await;
    println!("killed instance left the live totals after {took:?}");
    assert!(took <= Duration::from_secs(11), "{took:?}");
    assert_eq!(tool_row(&stats, TOOL)["borrowed"], 0);
    // Its events stay in the history.
    assert!(has_user(&stats, "held-by-a"));
    let gone = stats["cluster"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "gone-a")
        .unwrap();
    assert_eq!(gone["live"], false);
}
