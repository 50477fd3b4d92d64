//! The real `realtime-sidecar` binary over loopback HTTP: gzip NDJSON from the real `curl`,
//! hostile bodies and senders, tokens, rates, the apply queue's high-water mark, sender times,
//! retried batches, status push with its TTL, and dashboard credentials.

mod sidecar;

use flate2::write::GzEncoder;
use prost::Message;
use serde_json::{json, Value};
use sidecar::{line, now_ms, resource, Sidecar, GPU_ONLY_TOKEN, TOKEN};
use std::io::Write;
use std::time::Duration;
use test_support::http::{client, get_json, metrics_text, send_json};

/// Writes `request` on a fresh connection (ignoring a write cut short by the server) and returns
/// everything the server answered.
async fn raw_request(sidecar: &Sidecar, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = sidecar.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer within 10 s");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The value of `metric`'s sample whose labels include `label`.
fn sample(text: &str, metric: &str, label: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn post(
    sidecar: &Sidecar,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .post(sidecar.at(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn gzip_ndjson_from_curl() {
    let Some(curl) = test_support::require::or_skip(
        test_support::require::find_binary("CURL", &["curl"]),
        "REQUIRE_CURL",
        "gzip_ndjson_from_curl",
        "curl is not installed (apt-get install curl)",
    ) else {
        return;
    };
    let sidecar = Sidecar::start(&[]);
    let now = now_ms();
    let mut body = String::new();
    for i in 0..50 {
        let id = format!("lease-{i}");
        body += &line("borrow", "GPU A100", "ann", Some(&id), now - 20_000 + i);
        body += &line("return", "GPU A100", "ann", Some(&id), now - 10_000 + i);
    }
    body += &line("failure", "GPU A100", "bob", None, now - 5_000);
    let file = sidecar.dir.path().join("events.ndjson.gz");
    std::fs::write(&file, gzip(body.as_bytes())).unwrap();
    let output = tokio::process::Command::new(curl)
        .args([
            "-sS",
            "--fail-with-body",
            "-H",
            "Content-Type: application/x-ndjson",
        ])
        .args(["-H", "Content-Encoding: gzip", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(sidecar.at("/ingest"))
        .output()
        .await
        .expect("curl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer,
        json!({"accepted": 101, "rejected": 0, "duplicates": 0, "errors": []})
    );
    let stats = sidecar.stats().await;
    assert_eq!(
        (
            stats["borrow_count"].as_u64(),
            stats["return_count"].as_u64()
        ),
        (Some(50), Some(50))
    );
    let holds = sidecar::holds(&stats, "GPU A100");
    assert_eq!(
        (holds["count"].as_u64(), holds["max_seconds"].as_f64()),
        (Some(50), Some(10.0))
    );
}

#[tokio::test]
async fn hostile_bodies_get_clear_4xx() {
    let sidecar = Sidecar::start(&["--max-body-bytes", "1048576"]);
    // Bad protobuf: 400 with an OTLP google.rpc.Status body.
    let r = post(
        &sidecar,
        "/v1/logs",
        "application/x-protobuf",
        vec![0xff, 0xff, 0x01],
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    #[derive(Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let status = Status::decode(r.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);
    assert!(status.message.starts_with("bad_body"), "{}", status.message);
    // Wrong content types.
    for (path, ct) in [
        ("/v1/logs", "text/plain"),
        ("/ingest", "application/json"),
        ("/ingest", ""),
    ] {
        let (code, body) = send_json(
            client()
                .post(sidecar.at(path))
                .header("content-type", ct)
                .body("{}"),
            path,
        )
        .await;
        assert_eq!(
            (code, body["error"].as_str()),
            (415, Some("unsupported_media_type")),
            "{path} {ct}"
        );
    }
    // A gzip bomb: 64 MB of zeros in ~64 KB, stopped at the 1 MiB cap.
    let bomb = gzip(&vec![b'\n'; 64 << 20]);
    assert!(bomb.len() < 200_000);
    let r = client()
        .post(sidecar.at("/ingest"))
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(bomb);
    let (code, body) = send_json(r, "bomb").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (413, Some("body_too_large"))
    );
    // A 10 MB body, declared: refused from its headers, before the body is read (a client
    // still sending would see the connection close under it, so this one sends headers only).
    let answer = raw_request(
        &sidecar,
        "POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 10485760\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    // Chunks without a declared length: read up to the 1 MiB cap, then refused (1.5 MB sent;
    // the rest of a 10 MB body would never be read).
    let one = line("borrow", "GPU A100", "ann", None, now_ms());
    let chunk = one.repeat(100_000 / one.len() + 1);
    let mut request = "POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n".to_string();
    for _ in 0..15 {
        request += &format!("{:x}\r\n{chunk}\r\n", chunk.len());
    }
    let answer = raw_request(&sidecar, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Not gzip although it says so; an encoding we do not take.
    for (encoding, expected) in [("gzip", 400), ("br", 415)] {
        let r = client()
            .post(sidecar.at("/ingest"))
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", encoding)
            .body("plain text");
        assert_eq!(send_json(r, encoding).await.0, expected, "{encoding}");
    }
    // Invalid UTF-8: that line is reported, the others are stored.
    let now = now_ms();
    let mut body = line("borrow", "GPU A100", "ann", Some("u1"), now).into_bytes();
    body.extend_from_slice(b"{\"kind\":\"borrow\",\"resource\":\"GPU\xff\",\"user\":\"x\"}\n");
    body.extend_from_slice(line("failure", "GPU A100", "bob", None, now).as_bytes());
    let (code, answer) = sidecar.post_ndjson(body, None).await;
    assert_eq!(code, 200);
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(answer["errors"][0]["line"], 2);
    assert!(answer["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    // OTLP/JSON that is not UTF-8 or not a request: 400; malformed records: partial success.
    let r = post(
        &sidecar,
        "/v1/logs",
        "application/json",
        b"{\"resourceLogs\":\"\xff\"}".to_vec(),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"].as_str(), v["code"].as_i64()),
        (Some("bad_body"), Some(3))
    );
    let request = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"eventName": "lease.borrow", "timeUnixNano": (now * 1_000_000).to_string(), "attributes": [
            {"key": "lease.resource", "value": {"stringValue": "GPU A100"}},
            {"key": "lease.user", "value": {"stringValue": "json"}}]},
        {"eventName": "lease.borrow", "attributes": [{"key": "lease.user", "value": {"stringValue": "x"}}]}
    ]}]}]});
    let r = post(
        &sidecar,
        "/v1/logs",
        "application/json",
        request.to_string().into_bytes(),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["partialSuccess"]["rejectedLogRecords"], "1");
    assert!(v["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("missing lease.resource"));
    // Everything is counted.
    let stats = sidecar.stats().await;
    assert_eq!(stats["borrow_count"], 2, "{stats}");
    let ingest = &stats["ingest"];
    assert_eq!(ingest["refused_requests"]["bad_body"], 3, "{ingest}");
    assert_eq!(ingest["refused_requests"]["unsupported"], 4, "{ingest}");
    // The bomb, the declared 10 MB and the chunked one.
    assert_eq!(ingest["refused_requests"]["too_large"], 3, "{ingest}");
    assert_eq!(ingest["rejected"]["malformed"], 2, "{ingest}");
    let metrics = metrics_text(sidecar.at("/metrics")).await;
    assert_eq!(
        sample(
            &metrics,
            "realtime_ingest_refused_requests_total",
            "reason=\"too_large\""
        ),
        Some(3.0)
    );
    // Still serving after all that.
    assert_eq!(get_json(sidecar.at("/realtime/stats")).await.0, 200);
}

#[tokio::test]
async fn tokens_missing_wrong_and_restricted() {
    let sidecar = Sidecar::with_tokens(&[]);
    let now = now_ms();
    let gpu = line("borrow", "GPU A100", "ann", Some("t1"), now);
    let cpu = line("borrow", "CPU pool", "ann", Some("t2"), now);
    let r = post(
        &sidecar,
        "/ingest",
        "application/x-ndjson",
        gpu.clone().into_bytes(),
        None,
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "missing_token");
    let (code, body) = sidecar
        .post_ndjson(gpu.clone(), Some("sidecar-test-token-0002"))
        .await;
    assert_eq!((code, body["error"].as_str()), (401, Some("invalid_token")));
    let r = post(
        &sidecar,
        "/v1/logs",
        "application/json",
        b"{}".to_vec(),
        Some("nope"),
    )
    .await;
    assert_eq!(r.status(), 401);
    // The GPU-only token: its own resource yes, another no (nothing of the batch is stored).
    let (code, body) = sidecar
        .post_ndjson(format!("{gpu}{cpu}"), Some(GPU_ONLY_TOKEN))
        .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (403, Some("resource_not_allowed")),
        "{body}"
    );
    let (code, _) = sidecar.post_ndjson(gpu.clone(), Some(GPU_ONLY_TOKEN)).await;
    assert_eq!(code, 200);
    let (code, _) = sidecar.post_ndjson(cpu.clone(), Some(TOKEN)).await;
    assert_eq!(code, 200);
    let push = json!({"resources": [{"name": "CPU pool", "commit": 2}]});
    let r = client()
        .put(sidecar.at("/status"))
        .bearer_auth(GPU_ONLY_TOKEN)
        .json(&push);
    assert_eq!(send_json(r, "status").await.0, 403);
    let r = client().put(sidecar.at("/status")).json(&push);
    assert_eq!(send_json(r, "status").await.0, 401);
    let stats = sidecar.stats().await;
    assert_eq!(stats["borrow_count"], 2);
    assert_eq!(stats["ingest"]["refused_requests"]["unauthorized"], 4);
    assert_eq!(stats["ingest"]["rejected"]["forbidden"], 2);
    // The dashboard is not behind sender tokens (it has its own credentials).
    assert_eq!(get_json(sidecar.at("/realtime/config")).await.0, 200);
}

#[tokio::test]
async fn replayed_batch_counts_once_and_sender_times_are_checked() {
    let sidecar = Sidecar::start(&["--max-future-skew", "2m"]);
    let now = now_ms();
    let mut batch = String::new();
    for i in 0..20 {
        let id = format!("r-{i}");
        batch += &line("borrow", "GPU A100", "ann", Some(&id), now - 60_000 + i);
        batch += &line("return", "GPU A100", "ann", Some(&id), now - 30_000 + i);
    }
    let (_, first) = sidecar.post_ndjson(batch.clone(), None).await;
    assert_eq!(
        (first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(40), Some(0))
    );
    let (code, again) = sidecar.post_ndjson(batch, None).await;
    assert_eq!(code, 200);
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(40), Some(40))
    );
    // An hour ahead and a week back: rejected with their line; a minute ahead: taken as now.
    let times = line("borrow", "GPU A100", "fut", Some("f1"), now + 3_600_000)
        + &line(
            "borrow",
            "GPU A100",
            "old",
            Some("o1"),
            now - 7 * 24 * 3_600_000,
        )
        + &line("borrow", "GPU A100", "soon", Some("s1"), now + 60_000);
    let (code, answer) = sidecar.post_ndjson(times, None).await;
    assert_eq!(code, 200);
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(2))
    );
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(
        (errors[0]["line"].as_u64(), errors[1]["line"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(
        errors[0]["error"].as_str().unwrap().contains("ahead"),
        "{answer}"
    );
    assert!(
        errors[1]["error"].as_str().unwrap().contains("retention"),
        "{answer}"
    );
    // A late event (older than the newest stored) lands in its own second of history.
    let (code, _) = sidecar
        .post_ndjson(
            line("failure", "GPU A100", "late", None, now - 45_000),
            None,
        )
        .await;
    assert_eq!(code, 200);
    let stats = sidecar.stats().await;
    assert_eq!(
        (
            stats["borrow_count"].as_u64(),
            stats["return_count"].as_u64()
        ),
        (Some(21), Some(20))
    );
    let ingest = &stats["ingest"];
    assert_eq!(
        (
            ingest["duplicates"].as_u64(),
            ingest["clamped_future"].as_u64()
        ),
        (Some(40), Some(1))
    );
    assert_eq!(
        (
            ingest["rejected"]["future"].as_u64(),
            ingest["rejected"]["too_old"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(ingest["late"].as_u64().unwrap() >= 1, "{ingest}");
    let late_sec = (now - 45_000) / 1000;
    let history = test_support::http::get_ok(sidecar.at("/realtime/history?window=120")).await;
    assert_eq!(history["bucket_seconds"], 1, "{history}");
    let t = history["t"].as_array().unwrap();
    let sums = history["failures"]["sum"].as_array().unwrap();
    let failures_at: Vec<u64> = t
        .iter()
        .zip(sums)
        .filter(|(_, n)| n.as_u64() > Some(0))
        .map(|(t, _)| t.as_u64().unwrap())
        .collect();
    assert_eq!(
        failures_at,
        vec![late_sec],
        "the late failure is in its own second: {history}"
    );
    let metrics = metrics_text(sidecar.at("/metrics")).await;
    assert_eq!(
        sample(
            &metrics,
            "realtime_ingest_events_total",
            "outcome=\"duplicate\""
        ),
        Some(40.0)
    );
}

#[tokio::test]
async fn rate_limit_and_queue_high_water_mark() {
    let sidecar = Sidecar::with_tokens(&[]);
    let now = now_ms();
    let burst: String = (0..10_000)
        .map(|i| line("failure", "GPU A100", "u", None, now - i % 1000))
        .collect();
    let (code, _) = sidecar.post_ndjson(burst, Some(GPU_ONLY_TOKEN)).await;
    assert_eq!(code, 200, "the burst fits");
    let r = post(
        &sidecar,
        "/ingest",
        "application/x-ndjson",
        line("failure", "GPU A100", "u", None, now)
            .repeat(5_000)
            .into_bytes(),
        Some(GPU_ONLY_TOKEN),
    )
    .await;
    // 5,000 more right after: the bucket refills at 2,000/s.
    assert_eq!(r.status(), 429);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // The other token has its own bucket.
    let (code, _) = sidecar
        .post_ndjson(line("failure", "GPU A100", "u", None, now), Some(TOKEN))
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        sidecar.stats().await["ingest"]["rejected"]["rate_limited"],
        5_000
    );

    let small = Sidecar::start(&["--queue-high-water", "10"]);
    let batch: String = (0..11)
        .map(|i| line("failure", "GPU A100", "u", None, now - i))
        .collect();
    let r = post(
        &small,
        "/ingest",
        "application/x-ndjson",
        batch.into_bytes(),
        None,
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let (code, _) = small
        .post_ndjson(line("failure", "GPU A100", "u", None, now), None)
        .await;
    assert_eq!(code, 200, "a batch under the mark goes through");
    let stats = small.stats().await;
    assert_eq!(
        (
            stats["failure_count"].as_u64(),
            stats["ingest"]["rejected"]["overloaded"].as_u64()
        ),
        (Some(1), Some(11))
    );
}

#[tokio::test]
async fn a_thousand_concurrent_senders() {
    let _ = realtime_layer::serve::raise_nofile_limit();
    let sidecar = Sidecar::start(&[]);
    let now = now_ms();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..1_000u64 {
        let client = client.clone();
        let url = sidecar.at("/ingest");
        tasks.spawn(async move {
            let body: String = (0..5)
                .map(|i| {
                    line(
                        "borrow",
                        &format!("pool-{}", s % 10),
                        &format!("sender-{s}"),
                        Some(&format!("{s}-{i}")),
                        now - 1_000 + i,
                    )
                })
                .collect();
            let r = client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .expect("request");
            r.status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    let stats = sidecar.stats().await;
    assert_eq!(stats["borrow_count"], 5_000);
    assert_eq!(stats["ingest"]["stored"], 5_000);
    assert_eq!(resource(&stats, "pool-3")["borrowed"], 500);
}

#[tokio::test]
async fn status_push_expires_into_unknown_and_dashboard_auth() {
    let sidecar = Sidecar::start(&["--status-ttl", "1s", "--dashboard-auth", "ops:secret"]);
    let push = json!({"resources": [{"name": "GPU A100", "commit": 4, "max_overage": 2,
        "pricing": {"currency": "EUR", "commit_price": 4000.0, "overage_unit_price": 250.0}}]});
    let (code, answer) = send_json(client().put(sidecar.at("/status")).json(&push), "status").await;
    assert_eq!((code, answer["updated"].as_u64()), (200, Some(1)));
    let bad = json!({"resources": [{"name": "GPU A100", "commit": 4, "total": 2}]});
    let (code, answer) = send_json(client().put(sidecar.at("/status")).json(&bad), "status").await;
    assert_eq!(
        (code, answer["error"].as_str()),
        (400, Some("invalid_status"))
    );
    let now = now_ms();
    let body: String = (0..5)
        .map(|i| line("borrow", "GPU A100", "ann", Some(&format!("p{i}")), now))
        .collect();
    assert_eq!(sidecar.post_ndjson(body, None).await.0, 200);
    // The dashboard needs its credentials; ingest does not.
    let refused = client()
        .get(sidecar.at("/realtime/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"Basic realm="realtime-sidecar dashboard", charset="UTF-8""#
    );
    let stats = || async {
        let r = client()
            .get(sidecar.at("/realtime/stats?window=60"))
            .basic_auth("ops", Some("secret"));
        send_json(r, "stats").await.1
    };
    let fresh = stats().await;
    let gpu = resource(&fresh, "GPU A100");
    assert_eq!(
        (
            gpu["total"].as_u64(),
            gpu["borrowed"].as_u64(),
            gpu["overage"].as_u64()
        ),
        (Some(6), Some(5), Some(1))
    );
    assert_eq!(gpu["cost"]["overage_cost_now"], 250.0, "{gpu}");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let stale = stats().await;
    let gpu = resource(&stale, "GPU A100");
    assert!(
        gpu["total"].is_null() && gpu["commit"].is_null() && gpu.get("cost").is_none(),
        "unknown, not stale: {gpu}"
    );
    assert_eq!(gpu["borrowed"], 5, "the level still comes from the events");
    let (_, rows) = get_json(sidecar.at("/status")).await;
    assert_eq!(rows["resources"][0]["fresh"], false, "{rows}");
}

/// `--help` names the environment variables but never prints their values: a Redis URL with a
/// password or dashboard credentials set in the environment stay out of the help text.
#[test]
fn help_hides_secret_environment_values() {
    // (variable, value, the part of it that must never show)
    let secrets = [
        (
            "REALTIME_SIDECAR_REDIS",
            "redis://:redis-pw-5d0f3c8e@127.0.0.1:6379",
            "redis-pw-5d0f3c8e",
        ),
        (
            "REALTIME_SIDECAR_DASHBOARD_AUTH",
            "ops:dash-pw-9a7b41e2",
            "dash-pw-9a7b41e2",
        ),
        (
            "REALTIME_SIDECAR_DASHBOARD_TOKEN",
            "dash-token-b6c4e1f0",
            "dash-token-b6c4e1f0",
        ),
    ];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_realtime-sidecar"))
        .arg("--help")
        .envs(secrets.map(|(name, value, _)| (name, value)))
        .output()
        .expect("run realtime-sidecar --help");
    assert!(out.status.success(), "--help failed: {out:?}");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for (name, _, secret) in secrets {
        assert!(text.contains(name), "--help does not name {name}:\n{text}");
        assert!(
            !text.contains(secret),
            "--help prints {name}'s value:\n{text}"
        );
    }
}
