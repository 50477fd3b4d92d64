//! A real `prometheus` for tests: its own loopback port and temp dir, scraping given targets
//! every second with given rule files loaded, stopped by pid; and `promtool`.
//!
//! Missing binaries print a loud SKIPPED line, unless `REQUIRE_PROMETHEUS=1` /
//! `REQUIRE_PROMTOOL=1` (CI sets both), which turn them into failures.

use crate::free_port;
use crate::require::{find_binary, or_skip};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running Prometheus server (killed when dropped).
pub struct Prometheus {
    child: Child,
    /// `127.0.0.1:PORT` of its HTTP API.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Prometheus scraping `targets` (`host:port`, job `job`) every second, evaluating every
    /// second with `rule_files` loaded; or `None` after a SKIPPED line when it is not installed.
    pub fn start(test: &str, job: &str, targets: &[String], rule_files: &[&Path]) -> Option<Self> {
        let binary = or_skip(
            find_binary("PROMETHEUS", &["prometheus"]),
            "REQUIRE_PROMETHEUS",
            test,
            "prometheus is not on PATH (Debian/Ubuntu: apt-get install -y prometheus)",
        )?;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut rules = Vec::new();
        for (i, file) in rule_files.iter().enumerate() {
            let name = format!("rules-{i}.yml");
            std::fs::copy(file, dir.path().join(&name))
                .unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
            rules.push(name);
        }
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{}]\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            rules.join(", "),
            targets.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Some(Prometheus {
            child,
            addr,
            _dir: dir,
        })
    }

    /// An instant query's result vector (empty while Prometheus is not up yet or on an error).
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        self.api("query", &[("query", promql)], "result").await
    }

    /// The alerts Prometheus holds now (pending and firing).
    pub async fn alerts(&self) -> Vec<Value> {
        self.api("alerts", &[], "alerts").await
    }

    /// `data[field]` of `GET /api/v1/{path}` as an array (empty while Prometheus is not up yet,
    /// or on an error).
    async fn api(&self, path: &str, query: &[(&str, &str)], field: &str) -> Vec<Value> {
        let Ok(res) = crate::http::client()
            .get(format!("http://{}/api/v1/{path}", self.addr))
            .query(query)
            .send()
            .await
        else {
            return Vec::new();
        };
        let body: Value = res.json().await.unwrap_or(Value::Null);
        body["data"][field].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `promtool` on `PATH`; `None` when missing (a failure instead with `REQUIRE_PROMTOOL=1`).
/// Callers print what they skip: some checks still run without it.
pub fn promtool() -> Option<PathBuf> {
    let found = find_binary("PROMTOOL", &["promtool"]);
    if found.is_none() && crate::require::required("REQUIRE_PROMTOOL") {
        panic!(
            "REQUIRE_PROMTOOL=1 but promtool is not on PATH: install it \
             (Debian/Ubuntu: apt-get install -y prometheus) or unset REQUIRE_PROMTOOL"
        );
    }
    found
}
