//! The real `realtime-sidecar` binary in a child process on a loopback port, stopped by pid
//! when dropped; and what the sidecar tests send and read.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running sidecar (killed when dropped).
pub struct Sidecar {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// A sender token and its tokens-file entry.
pub const TOKEN: &str = "sidecar-test-token-0001";
pub const GPU_ONLY_TOKEN: &str = "sidecar-test-token-gpu1";

impl Sidecar {
    /// Starts the binary with `--bind 127.0.0.1:0` and `args`, and waits for its URL.
    pub fn start(args: &[&str]) -> Sidecar {
        Self::start_with(args, None)
    }

    /// The same with a tokens file holding [`TOKEN`] (any resource) and [`GPU_ONLY_TOKEN`]
    /// (resource `GPU A100` only, 2,000 events/s).
    pub fn with_tokens(args: &[&str]) -> Sidecar {
        let tokens = format!(
            "[[token]]\nname = \"all\"\ntoken = \"{TOKEN}\"\n\n\
             [[token]]\nname = \"gpu\"\ntoken = \"{GPU_ONLY_TOKEN}\"\nresources = [\"GPU A100\"]\nrate = 2000\n"
        );
        Self::start_with(args, Some(tokens))
    }

    fn start_with(args: &[&str], tokens: Option<String>) -> Sidecar {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_realtime-sidecar"));
        command
            .args(["--bind", "127.0.0.1:0", "--log", "warn"])
            .args(args);
        if let Some(tokens) = tokens {
            let path = dir.path().join("tokens.toml");
            std::fs::write(&path, tokens).expect("tokens file");
            command.arg("--tokens").arg(path);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("realtime-sidecar starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("realtime-sidecar listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("realtime-sidecar printed no URL within 30 s");
            }
        };
        Sidecar { child, url, dir }
    }

    /// `path` under the sidecar's URL.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `/realtime/stats?window=300` (JSON).
    pub async fn stats(&self) -> Value {
        test_support::http::get_ok(self.at("/realtime/stats?window=300")).await
    }

    /// Posts an NDJSON body (not compressed) with `token`; returns status and JSON answer.
    pub async fn post_ndjson(
        &self,
        body: impl Into<reqwest::Body>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = test_support::http::client()
            .post(self.at("/ingest"))
            .header("content-type", "application/x-ndjson")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        test_support::http::send_json(request, "POST /ingest").await
    }

    /// The process id (to stop it from a test).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Unix ms now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// One NDJSON line.
pub fn line(kind: &str, resource: &str, user: &str, id: Option<&str>, ts_ms: u64) -> String {
    let mut v =
        serde_json::json!({"kind": kind, "resource": resource, "user": user, "ts_ms": ts_ms});
    if let Some(id) = id {
        v["borrow_id"] = id.into();
    }
    format!("{v}\n")
}

/// The resource named `name` in a stats answer.
pub fn resource<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no resource {name:?} in {stats}"))
}

/// The hold times of `name` in a stats answer.
pub fn holds<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["hold_times"]["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["resource"] == name))
        .unwrap_or_else(|| panic!("no hold times for {name:?} in {stats}"))
}

/// Reads SSE frames from `url` until `done(all data so far)` or `limit`; returns the data
/// lines' JSON.
pub async fn sse_until(
    response: reqwest::Response,
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    use futures_util::StreamExt;
    let mut frames = Vec::new();
    let mut pending = String::new();
    let mut stream = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + limit;
    while !done(&frames) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("SSE: condition not met within {limit:?}: {frames:?}"))
            .expect("stream open")
            .expect("chunk");
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            for data in event.lines().filter_map(|l| l.strip_prefix("data: ")) {
                frames.push(serde_json::from_str(data).expect("frame JSON"));
            }
        }
    }
    frames
}
