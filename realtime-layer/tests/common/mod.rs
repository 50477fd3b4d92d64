//! Helpers shared by the integration tests: real servers on loopback ports, JSON GETs, metric
//! lookups and bounded waits. Each test binary uses a subset.
#![allow(dead_code)]

use axum::Router;
use realtime_layer::Realtime;
use serde_json::Value;
use std::net::SocketAddr;
use tokio::task::JoinHandle;

/// A server on a loopback port that ends when its `Realtime` shuts down.
pub struct Server {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Serves the instance's routes and `/metrics` until [`Realtime::shutdown`].
pub async fn serve_realtime(realtime: &Realtime) -> Server {
    let app = realtime.routes().merge(realtime.metrics_routes());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = realtime.shutdown_token();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .unwrap();
    });
    Server { addr, task }
}

/// Serves `app` until the test ends.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[allow(unused_imports)] // not every test binary waits
pub use test_support::wait::wait_for;

/// GET `path` of the server at `addr`: the status and the body as JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    test_support::http::get_json(format!("http://{addr}{path}")).await
}

/// The Prometheus text of `/metrics`.
pub async fn metrics_text(addr: SocketAddr) -> String {
    test_support::http::metrics_text(format!("http://{addr}/metrics")).await
}

/// The value of the first sample of `metric` (any labels) in `/metrics`.
pub async fn metric_value(addr: SocketAddr, metric: &str) -> f64 {
    let text = metrics_text(addr).await;
    test_support::http::metric_in(&text, metric)
        .unwrap_or_else(|| panic!("no {metric} in:\n{text}"))
}

/// What a stream client keeps between frames to read them: the resource list, whose positions
/// a delta's `res` entries (`i`) and compact events refer to.
#[allow(dead_code)]
#[derive(Debug, Default)]
pub struct FrameNames {
    resources: Vec<String>,
}

#[allow(dead_code)]
impl FrameNames {
    /// Applies `frame`'s resource list, then writes names where the frame has positions (each
    /// `res` entry gains `name`, each compact event's resource becomes its name), so assertions
    /// read names. Panics on a position outside the list: the server sent a wrong index.
    pub fn resolve(&mut self, frame: &mut Value) {
        if let Some(list) = frame["resources"].as_array() {
            self.resources = list
                .iter()
                .map(|r| r["name"].as_str().expect("resource name").to_owned())
                .collect();
        }
        let names = &self.resources;
        let name_at = |i: &Value| -> Value {
            let i = i.as_u64().expect("position") as usize;
            let name = names
                .get(i)
                .unwrap_or_else(|| panic!("position {i} outside the resource list {names:?}"));
            Value::from(name.as_str())
        };
        if let Some(res) = frame.get_mut("res").and_then(Value::as_array_mut) {
            for entry in res {
                let name = name_at(&entry["i"]);
                entry["name"] = name;
            }
        }
        if let Some(ev) = frame.get_mut("ev").and_then(Value::as_array_mut) {
            for c in ev {
                if c[2].is_number() {
                    let name = name_at(&c[2]);
                    c[2] = name;
                }
            }
        }
    }
}

/// The events of a stream frame as objects: a snapshot's `events`, or a delta's compact `ev`
/// (`[dt, kind, resource, user, borrow_id, extra]`) expanded the way the page does it.
#[allow(dead_code)]
pub fn frame_events(frame: &Value) -> Vec<Value> {
    let mut out = frame["events"].as_array().cloned().unwrap_or_default();
    let ts = frame["ts_ms"].as_i64().unwrap_or(0);
    for c in frame["ev"].as_array().into_iter().flatten() {
        let kind = ["borrow", "return", "failure"][c[1].as_u64().expect("kind code") as usize];
        out.push(serde_json::json!({
            "ts_ms": ts + c[0].as_i64().expect("dt"),
            "kind": kind,
            "resource": c[2],
            "user": c[3],
            "borrow_id": c.get(4).cloned().unwrap_or(Value::Null),
            "overage": kind == "borrow" && c.get(5) == Some(&Value::from(1)),
            "reason": c.get(5).filter(|v| v.is_string()).cloned().unwrap_or(Value::Null),
        }));
    }
    out
}
