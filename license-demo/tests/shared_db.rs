//! One database, two processes: two real `license-demo` binaries on one SQLite file, requests
//! routed to either as a load balancer would. Grants, charges, keys and lease expiry are per
//! database, and so are `/licenses/status`, the live levels and the cluster view.

mod common;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::io::BufReader;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::redis::RedisServer;
use test_support::wait::until;

/// 10 licenses, commit 10, no overage.
const TEN: &str = "CAN Bus Analyzer Pro";
/// 15 licenses, commit 10, at most 3 over commit (800 each): 13 can be out.
const THIRTEEN: &str = "GreenHills Multi IDE";

/// One license-demo process.
struct Proc {
    child: Child,
    url: String,
    client: reqwest::Client,
}

impl Proc {
    fn spawn(db: &Path, extra: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
            .args(["--bind", "127.0.0.1:0", "--log", "warn", "--db"])
            .arg(db)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("license-demo starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let url = common::read_url(&mut out, &mut String::new());
        // Keep reading: the server prints more, and a closed pipe would end it.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Proc {
            child,
            url,
            client: test_support::http::client(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.url);
        let (status, body) = test_support::http::send_json(self.client.get(&url), &url).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POST /licenses/borrow, with an `Idempotency-Key` when given: status, headers, body.
    async fn borrow(&self, tool: &str, user: &str, key: Option<&str>) -> (u16, HeaderMap, Value) {
        let mut request = self
            .client
            .post(format!("{}/licenses/borrow", self.url))
            .json(&json!({"tool": tool, "user": user}));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let resp = request.send().await.expect("borrow sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.json().await.expect("JSON answer"))
    }

    async fn give_back(&self, id: &str) {
        let url = format!("{}/licenses/return", self.url);
        let request = self.client.post(&url).json(&json!({ "id": id }));
        let (status, body) = test_support::http::send_json(request, &url).await;
        assert_eq!(status, 200, "return {id}: {body}");
    }

    /// `borrowed` of `tool` in `/licenses/{tool}/status`.
    async fn borrowed(&self, tool: &str) -> u64 {
        let status = self
            .get(&format!("/licenses/{}/status", common::encode(tool)))
            .await;
        status["borrowed"].as_u64().unwrap()
    }

    /// `/licenses/status` as tool name -> status.
    async fn statuses(&self) -> std::collections::BTreeMap<String, Value> {
        let list = self.get("/licenses/status").await;
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| (s["tool"].as_str().unwrap().to_string(), s.clone()))
            .collect()
    }

    /// Open borrows per tool, from `GET /borrows` (read from the database).
    async fn open_per_tool(&self) -> std::collections::BTreeMap<String, u64> {
        let mut per_tool = std::collections::BTreeMap::new();
        for b in self.get("/borrows").await.as_array().unwrap() {
            *per_tool
                .entry(b["tool"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        per_tool
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn resource<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

/// Waits (at most `limit`) until `tool`'s status says `want` borrowed on every process, and the
/// live view (`/realtime/stats`, built from the status source) too; returns how long it took.
async fn all_report(procs: &[&Proc], tool: &str, want: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    until(
        &format!("{tool}: {want} borrowed everywhere"),
        limit,
        Duration::from_millis(20),
        || async {
            for p in procs {
                if p.borrowed(tool).await != want {
                    return None;
                }
                let stats = p.get("/realtime/stats").await;
                if resource(&stats, tool)["borrowed"] != want {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    start.elapsed()
}

#[tokio::test]
async fn a_borrow_on_one_process_and_its_return_on_the_other_show_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    let a = Proc::spawn(&db, &[]);
    let b = Proc::spawn(&db, &[]);
    // B's live stream, open before anything happens: its levels must follow A's borrow.
    let mut live = LiveLevel::open(&b, TEN).await;
    live.wait_for(0).await;

    let t0 = Instant::now();
    let (code, _, borrow) = a.borrow(TEN, "ann", None).await;
    assert_eq!(code, 200, "{borrow}");
    live.wait_for(1).await;
    let level = t0.elapsed();
    println!("B's live stream showed A's borrow after {level:?} (one tick: 1 s)");
    // One tick, plus slack for a loaded machine.
    assert!(level < Duration::from_millis(2500), "{level:?}");
    let took = all_report(&[&a, &b], TEN, 1, Duration::from_secs(1)).await;
    println!("borrow on A: both report it after {took:?}");

    let t0 = Instant::now();
    b.give_back(borrow["id"].as_str().unwrap()).await;
    let took = all_report(&[&a, &b], TEN, 0, Duration::from_secs(1)).await;
    println!("return on B: both report it after {took:?}");
    live.wait_for(0).await;
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    for p in [&a, &b] {
        assert!(p.open_per_tool().await.is_empty());
    }
}

/// A live stream (`/realtime/stream`) read frame by frame, following one resource's level.
struct LiveLevel {
    stream: reqwest::Response,
    tool: &'static str,
    text: String,
    position: Option<usize>,
    level: Option<u64>,
}

impl LiveLevel {
    async fn open(p: &Proc, tool: &'static str) -> LiveLevel {
        let stream = p
            .client
            .get(format!("{}/realtime/stream", p.url))
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        LiveLevel {
            stream,
            tool,
            text: String::new(),
            position: None,
            level: None,
        }
    }

    /// Reads frames until the level is `want`; the time it took.
    async fn wait_for(&mut self, want: u64) -> Duration {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.stream.chunk())
                .await
                .expect("a frame in time")
                .expect("stream readable")
                .expect("stream open");
            self.text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = self.text.find("\n\n") {
                let frame: String = self.text.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    self.apply(&serde_json::from_str(data).unwrap());
                }
            }
            if self.level == Some(want) {
                return start.elapsed();
            }
        }
        panic!(
            "{} never reached {want} in the live stream (last {:?})",
            self.tool, self.level
        )
    }

    /// A snapshot's `resources` (or a delta's, when the set changed), then a delta's `res`.
    fn apply(&mut self, frame: &Value) {
        if let Some(list) = frame["resources"].as_array() {
            self.position = list.iter().position(|r| r["name"] == self.tool);
            self.level = self.position.and_then(|i| list[i]["borrowed"].as_u64());
        }
        for change in frame["res"].as_array().into_iter().flatten() {
            if self.position.is_some_and(|i| change["i"] == i) && change["borrowed"].is_u64() {
                self.level = change["borrowed"].as_u64();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_borrows_over_both_processes_stay_exact_and_both_report_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    let a = std::sync::Arc::new(Proc::spawn(&db, &[]));
    let b = std::sync::Arc::new(Proc::spawn(&db, &[]));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (to, back) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (to, back) = (to.clone(), back.clone());
        let tool = if i % 4 < 2 { TEN } else { THIRTEEN };
        tasks.push(tokio::spawn(async move {
            let (code, _, body) = to.borrow(tool, &format!("user-{i}"), None).await;
            (back, tool, code, body)
        }));
    }
    let mut granted = Vec::new();
    let mut refused = std::collections::BTreeMap::new();
    for t in tasks {
        let (back, tool, code, body) = t.await.unwrap();
        match code {
            200 => granted.push((back, tool, body)),
            409 => {
                *refused
                    .entry(body["error"].as_str().unwrap().to_string())
                    .or_insert(0) += 1
            }
            other => panic!("borrow answered {other}: {body}"),
        }
    }
    let count = |tool: &str| granted.iter().filter(|(_, t, _)| *t == tool).count();
    assert_eq!(
        (count(TEN), count(THIRTEEN)),
        (10, 13),
        "refusals {refused:?}"
    );
    assert_eq!(refused.get("exhausted"), Some(&90));
    assert_eq!(refused.get("max_overage"), Some(&87));
    let overage = granted
        .iter()
        .filter(|(_, _, b)| b["overage"] == true)
        .count();
    assert_eq!(overage, 3);

    for p in [&a, &b] {
        let statuses = p.statuses().await;
        let open = p.open_per_tool().await;
        for (tool, status) in &statuses {
            assert_eq!(
                status["borrowed"].as_u64().unwrap(),
                open.get(tool).copied().unwrap_or(0),
                "{tool} on {}: status {status} vs /borrows {open:?}",
                p.url
            );
        }
        assert_eq!(statuses[TEN]["borrowed"], 10);
        assert_eq!(statuses[THIRTEEN]["borrowed"], 13);
        assert_eq!(statuses[THIRTEEN]["overage_borrows"], 3);
        assert_eq!(statuses[THIRTEEN]["current_overage_cost"], 2400.0);
        let charges = p
            .get(&format!(
                "/overage-charges?tool={}",
                common::encode(THIRTEEN)
            ))
            .await;
        assert_eq!(charges["charges"].as_array().unwrap().len(), 3);
        let live = p.get("/realtime/stats").await;
        assert_eq!(resource(&live, TEN)["borrowed"], 10, "{live}");
        assert_eq!(resource(&live, THIRTEEN)["borrowed"], 13, "{live}");
    }

    // All returned through the other process.
    let mut returns = Vec::new();
    for (back, _, body) in granted {
        returns.push(tokio::spawn(async move {
            back.give_back(body["id"].as_str().unwrap()).await;
        }));
    }
    for r in returns {
        r.await.unwrap();
    }
    for p in [&a, &b] {
        for (tool, status) in p.statuses().await {
            assert_eq!(status["borrowed"], 0, "{tool} on {}: {status}", p.url);
        }
        assert!(p.open_per_tool().await.is_empty());
        let live = p.get("/realtime/stats").await;
        for r in live["resources"].as_array().unwrap() {
            assert_eq!(r["borrowed"], 0, "{} on {}: {r}", r["name"], p.url);
        }
        let status = p.statuses().await;
        assert_eq!(
            status[THIRTEEN]["current_overage_cost"], 2400.0,
            "charges stay"
        );
    }
}

#[tokio::test]
async fn an_idempotency_key_retried_on_the_other_process_gets_the_first_borrow() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    let a = Proc::spawn(&db, &[]);
    let b = Proc::spawn(&db, &[]);
    let (code, headers, first) = a.borrow(TEN, "kim", Some("order-4711")).await;
    assert_eq!(code, 200, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (code, headers, again) = b.borrow(TEN, "kim", Some("order-4711")).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["borrowed_at"], first["borrowed_at"]);
    // Same key, another request: refused on either process.
    let (code, _, body) = b.borrow(TEN, "someone-else", Some("order-4711")).await;
    common::assert_error(code, &body, 422, "idempotency_key_reused");
    assert_eq!(a.borrowed(TEN).await, 1);
    assert_eq!(b.borrowed(TEN).await, 1);
}

#[tokio::test]
async fn a_lease_expiring_with_both_processes_up_is_returned_once() {
    let Some(redis) = RedisServer::start("shared_db::a_lease_expiring_is_returned_once") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    let cluster = |id: &'static str| {
        [
            "--redis",
            redis.url.as_str(),
            "--pool-scope",
            "shared",
            "--lease-ttl",
            "1",
            "--instance-id",
            id,
        ]
    };
    let a = Proc::spawn(&db, &cluster("lease-a"));
    let b = Proc::spawn(&db, &cluster("lease-b"));
    test_support::wait::cluster_ready(&b.url, 2, Duration::from_secs(10), |_| true).await;
    // Leases taken on both processes; nobody renews them; both processes sweep.
    let mut ids = Vec::new();
    for (i, p) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (code, _, body) = p.borrow(THIRTEEN, &format!("lessee-{i}"), None).await;
        assert_eq!(code, 200, "{body}");
        ids.push(body["id"].as_str().unwrap()[..18].to_string());
    }
    all_report(&[&a, &b], THIRTEEN, 0, Duration::from_secs(5)).await;
    // Several sweeps of each process after the expiry, and the cluster view caught up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for p in [&a, &b] {
        let stats = p.get("/realtime/stats").await;
        assert_eq!(stats["scope"], "cluster", "{stats}");
        let mut expired: Vec<String> = stats["recent_events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == "expired")
            .map(|e| e["borrow_id"].as_str().unwrap().to_string())
            .collect();
        expired.sort();
        ids.sort();
        assert_eq!(expired, ids, "one expired event per lease in {stats}");
        // One pool shared by both: the cluster total is the tool's, not twice it.
        let row = resource(&stats, THIRTEEN);
        assert_eq!(
            (row["total"].as_u64(), row["borrowed"].as_u64()),
            (Some(15), Some(0))
        );
    }
    drop((a, b));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM borrow_history WHERE reason = 'expired'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 4);
}
