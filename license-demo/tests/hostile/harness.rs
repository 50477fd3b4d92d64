//! The harness of the hostile-client scenarios: the real binary as a child process, plain
//! HTTP helpers, background borrow/return load, and reading a Prometheus metric.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const BIN: &str = env!("CARGO_BIN_EXE_license-demo");

/// One scenario at a time: each one loads the machine on its own.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The real binary, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) addr: SocketAddr,
    /// Kept open: the server prints more lines, and a closed pipe would fail them.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `license-demo` on a free loopback port over `db` with extra flags; with
    /// `nofile`, under `ulimit -n nofile` (soft and hard).
    pub(crate) fn spawn(db: &Path, extra: &[&str], nofile: Option<u32>) -> Server {
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(["--bind", "127.0.0.1:0", "--log", "error", "--db"])
            .arg(db)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("banner");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        let addr = url["http://".len()..].parse().expect("address");
        Server {
            child,
            url,
            addr,
            _stdout: stdout,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }

    /// CPU time used so far (user + system), in clock ticks (1/100 s).
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Latencies of `n` sequential `GET /licenses/status`; each must answer 200.
pub(crate) async fn status_latencies(url: &str, n: usize) -> Vec<Duration> {
    let client = client();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let resp = client
            .get(format!("{url}/licenses/status"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        out.push(t.elapsed());
    }
    out
}

pub(crate) fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 99).div_ceil(100) - 1]
}

pub(crate) async fn get_json(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Borrow/return traffic from `workers` loops (a cycle each 10 ms at most) until `stop`.
pub(crate) fn borrow_return_load(url: &str, workers: usize, stop: Arc<AtomicBool>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for w in 0..workers {
        let (url, stop) = (url.to_string(), stop.clone());
        set.spawn(async move {
            let client = client();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let Ok(resp) = client
                    .post(format!("{url}/licenses/borrow"))
                    .json(&json!({"tool": "ECU Development Suite", "user": format!("load-{w}")}))
                    .send()
                    .await
                else {
                    continue;
                };
                let body: Value = resp.json().await.unwrap_or_default();
                if let Some(id) = body["id"].as_str() {
                    let _ = client
                        .post(format!("{url}/licenses/return"))
                        .json(&json!({ "id": id }))
                        .send()
                        .await;
                }
            }
        });
    }
    set
}

/// The value of an unlabelled metric in Prometheus text.
pub(crate) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name || n.starts_with(&format!("{name}{{"))).then(|| v.trim())
        })
        .and_then(|v| v.parse::<f64>().ok())
        .map_or_else(|| panic!("{name} missing in\n{text}"), |v| v as u64)
}

pub(crate) fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}
