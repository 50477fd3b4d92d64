//! Ingest throughput and latency of the real `realtime-sidecar` binary over loopback.
//!
//! `cargo bench -p realtime-layer --features sidecar --bench ingest`
//!
//! For each format (NDJSON, OTLP protobuf) a fresh sidecar runs; a sender in its own process
//! (this binary again, with `INGEST_BENCH_SENDER` set) builds 1,000-event batches stamped with
//! the current time (borrows and their returns with unique UUID ids, 1 failure in 20, 50
//! resources, 1,000 users) and posts them over `CONNECTIONS` keep-alive connections for
//! `SECONDS`. Meanwhile this process posts a probe event every 50 ms and times it to the SSE
//! frame that carries it (`/realtime/stream?user=probe`: a filtered channel, so no probe is
//! dropped from a busy frame). At the end it reads the buffer's size from `/realtime/stats`.
//!
//! Environment: `INGEST_BENCH_SECONDS` (default 8), `INGEST_BENCH_CONNECTIONS` (default 4).

use futures_util::StreamExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BATCH: usize = 1_000;
const RESOURCES: usize = 50;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `n`-th batch: 475 borrows and their 475 returns (ids unique across batches), 50
/// failures, every event stamped `ts`.
fn batch_events(n: u64) -> Vec<(&'static str, usize, usize, Option<String>)> {
    let mut out = Vec::with_capacity(BATCH);
    for i in 0..BATCH as u64 {
        let k = n * BATCH as u64 + i;
        let (res, user) = ((k % RESOURCES as u64) as usize, (k % 1_000) as usize);
        let id = |j: u64| {
            format!(
                "{:08x}-{:04x}-4{:03x}-8000-000000000000",
                j >> 16,
                j & 0xffff,
                (j >> 4) & 0xfff
            )
        };
        out.push(match i % 20 {
            19 => ("failure", res, user, None),
            m if m % 2 == 0 => ("borrow", res, user, Some(id(k))),
            _ => (
                "return",
                (k - 1) as usize % RESOURCES,
                ((k - 1) % 1_000) as usize,
                Some(id(k - 1)),
            ),
        });
    }
    out
}

fn ndjson_body(n: u64, ts: u64) -> Vec<u8> {
    let mut s = String::with_capacity(BATCH * 120);
    for (kind, res, user, id) in batch_events(n) {
        let _ = write!(s, "{{\"kind\":\"{kind}\",\"resource\":\"pool-{res:02}\",\"user\":\"user-{user:04}\",\"ts_ms\":{ts}");
        match (kind, id) {
            ("failure", _) => s.push_str(",\"reason\":\"exhausted\"}\n"),
            (_, Some(id)) => {
                let _ = writeln!(s, ",\"borrow_id\":\"{id}\"}}");
            }
            _ => s.push_str("}\n"),
        }
    }
    s.into_bytes()
}

fn otlp_body(n: u64, ts: u64) -> Vec<u8> {
    let kv = |key: &str, v: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let records = batch_events(n)
        .into_iter()
        .map(|(kind, res, user, id)| {
            let mut attributes = vec![
                kv("lease.resource", &format!("pool-{res:02}")),
                kv("lease.user", &format!("user-{user:04}")),
            ];
            if let Some(id) = id {
                attributes.push(kv("lease.id", &id));
            }
            if kind == "failure" {
                attributes.push(kv("lease.reason", "exhausted"));
            }
            LogRecord {
                time_unix_nano: ts * 1_000_000,
                event_name: format!("lease.{kind}"),
                attributes,
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The sender process: posts batches for the given time, prints one result line.
async fn sender(url: String, format: String, seconds: u64, connections: u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize)
        .build()
        .unwrap();
    let (path, ct) = if format == "otlp" {
        ("/v1/logs", "application/x-protobuf")
    } else {
        ("/ingest", "application/x-ndjson")
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (client, url, format) = (client.clone(), format!("{url}{path}"), format.clone());
        tasks.spawn(async move {
            let (mut events, mut refused, mut n) = (0u64, 0u64, c);
            while Instant::now() < deadline {
                let body = if format == "otlp" {
                    otlp_body(n, now_ms())
                } else {
                    ndjson_body(n, now_ms())
                };
                n += connections;
                let r = client
                    .post(&url)
                    .header("content-type", ct)
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => events += BATCH as u64,
                    Ok(r) => {
                        refused += 1;
                        let wait = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse().ok())
                            .unwrap_or(1);
                        tokio::time::sleep(Duration::from_millis(100 * wait)).await;
                    }
                    Err(_) => refused += 1,
                }
            }
            (events, refused)
        });
    }
    let (mut events, mut refused) = (0, 0);
    while let Some(Ok((e, r))) = tasks.join_next().await {
        events += e;
        refused += r;
    }
    println!(
        "RESULT {events} {refused} {:.3}",
        start.elapsed().as_secs_f64()
    );
}

/// CPU seconds (user + system) the process `pid` used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

struct Row {
    format: &'static str,
    events_per_s: f64,
    refused: u64,
    p50_ms: f64,
    p99_ms: f64,
    probes: usize,
    bytes_per_event: f64,
    events_held: u64,
    cpu_us_per_event: f64,
    /// The buffer's own breakdown (`memory` of `/realtime/stats`), bytes per held event.
    memory: String,
}

async fn run(format: &'static str, seconds: u64, connections: u64) -> Row {
    let mut sidecar = Command::new(env!("CARGO_BIN_EXE_realtime-sidecar"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--log",
            "warn",
            "--rate-limit",
            "10000000",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sidecar starts");
    let mut lines = BufReader::new(sidecar.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("sidecar output").expect("line");
        if let Some(url) = line.strip_prefix("realtime-sidecar listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let client = reqwest::Client::new();
    let stream = client
        .get(format!("{url}/realtime/stream?user=probe"))
        .send()
        .await
        .unwrap();
    let cpu_before = cpu_seconds(sidecar.id());
    let child = Command::new(std::env::current_exe().unwrap())
        .env("INGEST_BENCH_SENDER", format)
        .env("INGEST_BENCH_URL", &url)
        .env("INGEST_BENCH_SECONDS", seconds.to_string())
        .env("INGEST_BENCH_CONNECTIONS", connections.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Probes: one event every 50 ms, timed to the frame that carries it.
    let probes = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let end = Instant::now() + Duration::from_secs(seconds);
            tokio::time::sleep(Duration::from_millis(500)).await;
            while Instant::now() < end {
                let n = sent.len();
                let body = format!("{{\"kind\":\"failure\",\"resource\":\"pool-00\",\"user\":\"probe\",\"reason\":\"p{n}\",\"ts_ms\":{}}}\n", now_ms());
                sent.push(Instant::now());
                let _ = client
                    .post(format!("{url}/ingest"))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent
        })
    };
    let mut seen: Vec<(usize, Instant)> = Vec::new();
    let mut body = stream.bytes_stream();
    let mut pending = String::new();
    let stop = Instant::now() + Duration::from_secs(seconds + 2);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(stop.into(), body.next()).await {
        let at = Instant::now();
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            for data in event.lines().filter_map(|l| l.strip_prefix("data: ")) {
                let mut from = 0;
                while let Some(i) = data[from..].find("\"p") {
                    let rest = &data[from + i + 2..];
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let (Ok(n), true) = (
                        digits.parse::<usize>(),
                        rest[digits.len()..].starts_with('"'),
                    ) {
                        seen.push((n, at));
                    }
                    from += i + 2;
                }
            }
        }
    }
    let sent = probes.await.unwrap();
    let output = child.wait_with_output().unwrap();
    let result = String::from_utf8_lossy(&output.stdout);
    let parts: Vec<f64> = result
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("sender result")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let cpu = cpu_seconds(sidecar.id()) - cpu_before;
    // The first frame that carried each probe.
    let mut first = std::collections::HashMap::new();
    for (n, at) in seen {
        first.entry(n).or_insert(at);
    }
    let mut latencies: Vec<f64> = first
        .iter()
        .filter_map(|(n, at)| {
            sent.get(*n)
                .map(|s| at.duration_since(*s).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let stats: serde_json::Value = client
        .get(format!("{url}/realtime/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = sidecar.kill();
    let _ = sidecar.wait();
    let held = stats["total_events"].as_u64().unwrap_or(0);
    Row {
        format,
        events_per_s: parts[0] / parts[2],
        refused: parts[1] as u64,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        probes: latencies.len(),
        bytes_per_event: stats["memory_bytes"].as_f64().unwrap_or(0.0) / held.max(1) as f64,
        events_held: held,
        cpu_us_per_event: cpu * 1e6 / parts[0].max(1.0),
        memory: stats["memory"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        Some(format!("{k} {:.1}", v.as_f64()? / held.max(1) as f64))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(format) = std::env::var("INGEST_BENCH_SENDER") {
        let url = std::env::var("INGEST_BENCH_URL").expect("INGEST_BENCH_URL");
        let (seconds, connections) = (
            env_u64("INGEST_BENCH_SECONDS", 8),
            env_u64("INGEST_BENCH_CONNECTIONS", 4),
        );
        runtime.block_on(sender(url, format, seconds, connections));
        return;
    }
    let (seconds, connections) = (
        env_u64("INGEST_BENCH_SECONDS", 8),
        env_u64("INGEST_BENCH_CONNECTIONS", 4),
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\n== realtime-sidecar ingest over loopback: {seconds} s per format, {connections} connections, 1,000-event batches ==");
    println!("load average before: {}", load.trim());
    let rows: Vec<Row> = ["ndjson", "otlp"]
        .iter()
        .map(|f| runtime.block_on(run(f, seconds, connections)))
        .collect();
    println!(
        "\n| format | events/s | refused batches | ingest → SSE p50 | p99 | probes | sidecar CPU µs/event | events held | bytes/event (buffer) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {} | {:.1} ms | {:.1} ms | {} | {:.2} | {} | {:.1} |",
            r.format,
            r.events_per_s,
            r.refused,
            r.p50_ms,
            r.p99_ms,
            r.probes,
            r.cpu_us_per_event,
            r.events_held,
            r.bytes_per_event
        );
    }
    for r in &rows {
        println!(
            "{} buffer bytes per held event by part: {}",
            r.format, r.memory
        );
    }
    println!("\ntargets: NDJSON >= 300,000 events/s, OTLP protobuf >= 200,000 events/s, p99 <= 150 ms, <= 24 B/event");
    println!(
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
