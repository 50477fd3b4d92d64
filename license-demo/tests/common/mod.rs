//! Helpers shared by the integration tests: a real server on 127.0.0.1:0 over a temp SQLite file.
#![allow(dead_code)]

pub mod binary;

use license_demo::auth::SecurityConfig;
use license_demo::config::{default_tools, ToolSpec};
use license_demo::pool::{DbLocation, Durability};
use license_demo::server::{self, RunningServer, ServerConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use test_support::http::send_json;

/// A server plus the temp dir holding its database.
pub struct TestServer {
    pub server: RunningServer,
    pub base: String,
    pub client: reqwest::Client,
    pub db: PathBuf,
    pub dir: tempfile::TempDir,
}

pub fn tool(name: &str, total: u32, commit: u32, max_overage: u32, price: f64) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        total,
        commit,
        max_overage,
        commit_price: 1000.0,
        overage_price_per_license: price,
    }
}

pub async fn start_at(db: &Path, tools: Vec<ToolSpec>) -> RunningServer {
    start_secured_at(db, tools, SecurityConfig::default()).await
}

pub async fn start_secured_at(
    db: &Path,
    tools: Vec<ToolSpec>,
    security: SecurityConfig,
) -> RunningServer {
    server::start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        db: DbLocation::File(db.to_path_buf()),
        tools,
        durability: Durability::Normal,
        cluster: None,
        security,
        serve: Default::default(),
        stream: Default::default(),
        usage: None,
        clock_offset_ms: 0,
    })
    .await
    .expect("server starts")
}

pub async fn start(tools: Vec<ToolSpec>) -> TestServer {
    start_secured(tools, SecurityConfig::default()).await
}

/// A server with the given security settings.
pub async fn start_secured(tools: Vec<ToolSpec>, security: SecurityConfig) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("licenses.db");
    let server = start_secured_at(&db, tools, security).await;
    let base = server.url();
    TestServer {
        server,
        base,
        client: reqwest::Client::new(),
        db,
        dir,
    }
}

pub async fn start_default() -> TestServer {
    start(default_tools()).await
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST /licenses/borrow; returns (status, body).
    pub async fn borrow(&self, tool: &str, user: &str) -> (u16, Value) {
        self.post_json("/licenses/borrow", json!({"tool": tool, "user": user}))
            .await
    }

    /// POST /licenses/return; returns (status, body).
    pub async fn return_id(&self, id: &str) -> (u16, Value) {
        self.post_json("/licenses/return", json!({ "id": id }))
            .await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        send_json(self.client.post(self.url(path)).json(&body), path).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        send_json(request, path).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send_json(self.client.get(self.url(path)), path).await
    }

    /// GET /licenses/{tool}/status (200 expected).
    pub async fn status_of(&self, tool: &str) -> Value {
        let path = format!("/licenses/{}/status", encode(tool));
        let (code, body) = self.get(&path).await;
        assert_eq!(code, 200, "{body}");
        body
    }
}

/// Percent-encodes a path segment.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asserts an error answer has the `{"error", "detail"}` shape with `code`.
pub fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "unexpected status, body {body}");
    assert_eq!(body["error"], code, "body {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail missing in {body}"
    );
}

/// Reads a license-demo's stdout up to the line with its URL (log lines may come first) and
/// returns that URL; everything read is appended to `text`.
pub fn read_url(out: &mut impl std::io::BufRead, text: &mut String) -> String {
    loop {
        let before = text.len();
        if out.read_line(text).unwrap() == 0 {
            panic!("no URL in {text:?}");
        }
        if let Some(url) = text[before..]
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
        {
            return url.to_string();
        }
    }
}
