//! Every example binary with `--simulate --bind 127.0.0.1:0`: it prints its dashboard URL and its
//! own synthetic traffic shows up in `/…/realtime/stats` within a few seconds.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `cargo test` builds the examples next to the test binaries: target/<profile>/examples/.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples");
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn check(name: &str, token: Option<&str>) {
    let bin = example_binary(name);
    assert!(
        bin.exists(),
        "{} missing: run through `cargo test`, which builds the examples",
        bin.display()
    );
    let mut cmd = Command::new(&bin);
    cmd.args(["--simulate", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(token) = token {
        cmd.env("ADMIN_TOKEN", token);
    }
    let mut child = Running(cmd.spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();
    let url = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("Dashboard: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} printed no dashboard URL"));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut req = client.get(format!("{url}/stats?window=60"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let (_, stats) = test_support::http::send_json(req, &url).await;
        if stats["total_events"].as_u64().unwrap_or(0) > 0 {
            let first = &stats["recent_events"][0];
            assert!(
                ["borrow", "return", "failure"].contains(&first["kind"].as_str().unwrap()),
                "{name}: {stats}"
            );
            assert!(!first["resource"].as_str().unwrap().is_empty());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: no event after 15 s of --simulate: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_example_simulates_traffic() {
    for name in [
        "minimal",
        "response-extensions",
        "classifier",
        "plain-tower",
        "pool-status",
        "otel-prometheus",
    ] {
        check(name, None).await;
    }
    check("nested", Some("t0ken")).await;
}
