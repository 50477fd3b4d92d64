//! JSON over HTTP for tests: every helper returns `(status, body)` so a test asserts both, and
//! panics with the URL when the request itself fails or the body is not JSON.

use serde_json::Value;
use std::time::Duration;

/// A client with a timeout, so a hung server fails the test instead of hanging it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// GET `url`; the status and the body parsed as JSON.
pub async fn get_json(url: impl AsRef<str>) -> (u16, Value) {
    send_json(client().get(url.as_ref()), url.as_ref()).await
}

/// POST `body` as JSON to `url`; the status and the answer parsed as JSON.
pub async fn post_json(url: impl AsRef<str>, body: &Value) -> (u16, Value) {
    send_json(client().post(url.as_ref()).json(body), url.as_ref()).await
}

/// Sends `request` (built by the caller: headers, auth); the status and the body as JSON.
pub async fn send_json(request: reqwest::RequestBuilder, what: &str) -> (u16, Value) {
    let res = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = res.status().as_u16();
    let text = res
        .text()
        .await
        .unwrap_or_else(|e| panic!("{what}: body: {e}"));
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: answer {status} is not JSON ({e}): {text:?}"));
    (status, body)
}

/// GET `url`, asserting a 200, as JSON.
pub async fn get_ok(url: impl AsRef<str>) -> Value {
    let (status, body) = get_json(url.as_ref()).await;
    assert_eq!(status, 200, "GET {}: {body}", url.as_ref());
    body
}

/// The Prometheus text of `url` (a `/metrics` route), asserting a 200.
pub async fn metrics_text(url: impl AsRef<str>) -> String {
    let res = client()
        .get(url.as_ref())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", url.as_ref()));
    assert_eq!(res.status(), 200, "GET {}", url.as_ref());
    res.text().await.expect("metrics text")
}

/// The value of the first sample of `metric` (any labels) in Prometheus `text`.
pub fn metric_in(text: &str, metric: &str) -> Option<f64> {
    metric_with(text, metric, &[])
}

/// The value of the first sample of `metric` in Prometheus `text` whose labels include every
/// `name="value"` pair of `labels`.
pub fn metric_with(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with([' ', '{']))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
