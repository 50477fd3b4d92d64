//! The binary's command line: help text, `--tools FILE`, bad input.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_license-demo");

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--bind",
        "--db",
        "--tools",
        "--log",
        "--durability",
        "stress",
    ] {
        assert!(text.contains(flag), "{flag} missing in\n{text}");
    }
    let out = Command::new(BIN)
        .args(["stress", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--target",
        "--profile",
        "--workers",
        "--ops",
        "--ramp-up",
        "--mode",
        "--tool",
        "--rate",
        "--json",
        "light",
        "extreme",
        "checkout-only",
    ] {
        assert!(text.contains(flag), "{flag} missing in\n{text}");
    }
}

#[tokio::test]
async fn tools_file_replaces_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--bind", "127.0.0.1:0", "--log", "warn", "--tools"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools.example.toml"))
        .arg("--db")
        .arg(dir.path().join("t.db"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let dashboard = lines.next().unwrap().unwrap();
    assert!(first.contains("3 tools"), "{first}");
    assert!(
        dashboard.starts_with("Dashboard: http://127.0.0.1:") && dashboard.ends_with("/realtime")
    );
    let base = dashboard
        .trim_start_matches("Dashboard: ")
        .trim_end_matches("/realtime");
    let status = test_support::http::get_ok(format!("{base}/licenses/status")).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let names: Vec<&str> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tool"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CAN Bus Analyzer Pro",
            "ECU Development Suite",
            "Static Analyzer (site license)"
        ]
    );
    let site = &status[2];
    assert_eq!(site["total"], 50);
    assert_eq!(site["commit_price"], 12000.5);
}

#[test]
fn bad_configuration_exits_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[tools]]\nname = \"X\"\ntotal = 1\ncommit = 2\nmax_overage = 0\ncommit_price = 1\noverage_price_per_license = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["--bind", "127.0.0.1:0", "--db", ":memory:", "--tools"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("commit (2) exceeds total (1)"), "{err}");

    let out = Command::new(BIN)
        .args(["--bind", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());

    let out = Command::new(BIN)
        .args([
            "stress",
            "--profile",
            "custom",
            "--target",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers and --ops"));
}
