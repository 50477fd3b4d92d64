//! The real binary's usage tier: `seed-usage` fills a month, the server answers the report and
//! the advisor from it, a graceful restart keeps everything (the open minute included), and a
//! `kill -9` loses at most the open minute.
//!
//! The server runs with its dashboard clock shifted (the hidden `--clock-offset-ms`) so that it
//! starts a few seconds before a minute boundary: the test sees a minute close in seconds.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TOOL: &str = "CAN Bus Analyzer Pro";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn spawn(db: &Path, offset_ms: i64) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--log",
            "warn",
            "--clock-offset-ms",
        ])
        .arg(offset_ms.to_string())
        .arg("--db")
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Keep reading: a closed pipe would fail the server's later lines.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (child, url)
}

async fn borrows_of(url: &str) -> (u64, Value) {
    let report = test_support::http::get_ok(format!("{url}/realtime/report?window=30d")).await;
    let n = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == TOOL)
        .map_or(0, |r| r["borrows"].as_u64().unwrap());
    (n, report)
}

async fn borrow(client: &reqwest::Client, url: &str, n: usize) {
    for i in 0..n {
        let resp = client
            .post(format!("{url}/licenses/borrow"))
            .json(&serde_json::json!({"tool": TOOL, "user": format!("u{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

fn terminate(child: &mut Child) {
    // SIGTERM: the graceful path (the server writes the open minute before it exits).
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_seeded_month_survives_restarts_and_kill_dash_nine_loses_at_most_the_open_minute() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("licenses.db");
    let seeded = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args(["seed-usage", "--days", "29", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&seeded.stdout);
    assert!(seeded.status.success(), "{text}");
    assert!(
        text.contains("AUTOSAR Configuration Tool: commit 8 -> 5 would have saved"),
        "{text}"
    );
    assert!(dir.path().join("licenses.usage.db").exists());

    // Six seconds before a minute boundary on the server's clock.
    let offset = (60_000 - 6_000 - now_ms().rem_euclid(60_000)).rem_euclid(60_000);
    let client = reqwest::Client::new();
    let (mut child, url) = spawn(&db, offset);
    let (seeded_borrows, report) = borrows_of(&url).await;
    assert!(seeded_borrows > 100, "{report}");
    assert_eq!(report["resources"].as_array().unwrap().len(), 6);
    let advice = test_support::http::get_ok(format!("{url}/realtime/advice?window=30d")).await;
    let autosar = advice["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["resource"] == "AUTOSAR Configuration Tool")
        .unwrap()
        .clone();
    assert_eq!(autosar["recommended_commit"], 5, "{autosar}");

    // Three borrows in the minute before the boundary; it closes a grace period after it.
    borrow(&client, &url, 3).await;
    test_support::wait::until(
        "the minute with the three borrows to close",
        Duration::from_secs(20),
        Duration::from_millis(250),
        || {
            let url = url.clone();
            async move { (borrows_of(&url).await.0 == seeded_borrows + 3).then_some(()) }
        },
    )
    .await;

    // Two more in the open minute, then a graceful restart: all five are kept.
    borrow(&client, &url, 2).await;
    terminate(&mut child);
    let (mut child, url) = spawn(&db, offset);
    assert_eq!(borrows_of(&url).await.0, seeded_borrows + 5);

    // One more in the new open minute, then kill -9: it is lost, nothing else.
    borrow(&client, &url, 1).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, url) = spawn(&db, offset);
    let (after, report) = borrows_of(&url).await;
    assert_eq!(after, seeded_borrows + 5, "{report}");
    terminate(&mut child);
}
