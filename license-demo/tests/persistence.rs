//! State survives a clean restart and a `kill -9` of the real binary.

mod common;

use common::{start_at, tool, TestServer};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

#[tokio::test]
async fn restart_on_the_same_file_keeps_borrows_and_charges() {
    let tools = vec![tool("Keep", 10, 1, 9, 20.0)];
    let s = common::start(tools.clone()).await;
    let mut ids = vec![];
    for _ in 0..4 {
        ids.push(
            s.borrow("Keep", "hal").await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(s.return_id(&ids[0]).await.0, 200);
    let before = s.status_of("Keep").await;
    assert_eq!(before["borrowed"], 3);
    assert_eq!(before["current_overage_cost"], 60.0);

    let TestServer {
        server,
        dir,
        db,
        client,
        ..
    } = s;
    server.shutdown().await.unwrap();
    let server = start_at(&db, tools).await;
    let s = TestServer {
        base: server.url(),
        server,
        dir,
        db,
        client,
    };

    assert_eq!(s.status_of("Keep").await, before);
    let (_, open) = s.get("/borrows?user=hal").await;
    let open: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(open, [ids[3].as_str(), ids[2].as_str(), ids[1].as_str()]);
    // A borrow made before the restart can be returned after it, once.
    assert_eq!(s.return_id(&ids[1]).await.0, 200);
    assert_eq!(s.return_id(&ids[0]).await.0, 404);
    let (_, charges) = s.get("/overage-charges").await;
    assert_eq!(charges["charges"].as_array().unwrap().len(), 3);
    // The next borrow continues from the persisted count (2 out, commit 1 -> overage).
    assert_eq!(s.borrow("Keep", "hal").await.1["overage"], true);
}

/// Starts the real binary on a free port; returns the child and its base URL.
fn spawn_binary(db: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args(["--bind", "127.0.0.1:0", "--log", "warn", "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (child, url)
}

#[tokio::test]
async fn kill_dash_nine_loses_no_committed_borrow() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let client = reqwest::Client::new();
    let ecu = "ECU Development Suite";

    let (mut child, url) = spawn_binary(&db);
    let mut ids = vec![];
    for i in 0..8 {
        let resp = client
            .post(format!("{url}/licenses/borrow"))
            .json(&serde_json::json!({"tool": ecu, "user": format!("k{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    child.kill().unwrap(); // SIGKILL on Unix: no shutdown code runs
    child.wait().unwrap();

    let (mut child, url) = spawn_binary(&db);
    let status =
        test_support::http::get_ok(format!("{url}/licenses/ECU%20Development%20Suite/status"))
            .await;
    let open = test_support::http::get_ok(format!("{url}/borrows")).await;
    let charges = test_support::http::get_ok(format!("{url}/overage-charges")).await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(status["borrowed"], 8, "{status}");
    assert_eq!(status["overage"], 3);
    let mut open_ids: Vec<String> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    open_ids.sort();
    ids.sort();
    assert_eq!(open_ids, ids);
    assert_eq!(charges["charges"].as_array().unwrap().len(), 3);
}
