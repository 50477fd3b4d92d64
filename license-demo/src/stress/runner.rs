//! The load loop: workers, pacing, HTTP calls, and the before/after status snapshots.

use super::report::{Latency, StressReport};
use super::{Mode, StressConfig, StressError};
use crate::auth::signature::{NonceSigner, X_NONCE, X_SIGNATURE, X_TIMESTAMP, X_VENDOR_ID};
use crate::pool::ToolStatus;
use crate::secret::Secret;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Runs the configured load against `config.target` and returns the measured report.
///
/// The server must answer `GET /licenses/status` first (that is the "before" snapshot).
pub async fn run(config: StressConfig) -> Result<StressReport, StressError> {
    validate(&config)?;
    let base = config.target.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.workers.max(1))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| StressError::Config(format!("cannot build HTTP client: {e}")))?;

    let before = fetch_status(&client, &base).await?;
    if let Some(tool) = &config.tool {
        if !before.iter().any(|s| &s.tool == tool) {
            return Err(StressError::Config(format!(
                "tool {tool:?} is not served by {base}"
            )));
        }
    }
    let tools: Vec<String> = before.iter().map(|s| s.tool.clone()).collect();
    if tools.is_empty() {
        return Err(StressError::Server {
            target: base,
            detail: "the server lists no tools".into(),
        });
    }

    let bar = if config.progress {
        let bar = ProgressBar::new(config.total_ops() as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ops ({per_sec}, eta {eta}) {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let ctx = Arc::new(Context {
        borrow_url: parse_url(&format!("{base}/licenses/borrow"))?,
        return_url: parse_url(&format!("{base}/licenses/return"))?,
        client,
        tools,
        pacer: config.rate.map(Pacer::new),
        bar: bar.clone(),
        signer: config
            .credentials
            .vendor
            .as_ref()
            .map(|(id, secret)| (id.clone(), NonceSigner::new(secret.expose().as_bytes()))),
        config: config.clone(),
    });

    let started = Instant::now();
    let mut workers = JoinSet::new();
    for w in 0..config.workers {
        // Even spread: worker w starts at ramp_up * w / workers.
        let delay = config.ramp_up.mul_f64(w as f64 / config.workers as f64);
        workers.spawn(worker(w, Arc::clone(&ctx), delay));
    }
    let mut total = WorkerStats::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(stats) => total.merge(stats),
            Err(e) => {
                return Err(StressError::Config(format!("a worker task failed: {e}")));
            }
        }
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();

    let after = fetch_status(&ctx.client, &base).await?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let requests = total.borrow_latencies_us.len() + total.return_latencies_us.len();
    Ok(StressReport {
        attempted: total.attempted,
        successes: total.successes,
        failures: total.failures,
        overage_borrows: total.overage_borrows,
        returns_ok: total.returns_ok,
        returns_failed: total.returns_failed,
        elapsed_secs: secs,
        ops_per_sec: total.attempted as f64 / secs,
        requests_per_sec: requests as f64 / secs,
        borrow_latency_ms: Latency::from_micros(total.borrow_latencies_us),
        return_latency_ms: match config.mode {
            Mode::FullCycle => Some(Latency::from_micros(total.return_latencies_us)),
            Mode::CheckoutOnly => None,
        },
        before,
        after,
        config,
    })
}

fn parse_url(s: &str) -> Result<reqwest::Url, StressError> {
    reqwest::Url::parse(s).map_err(|e| StressError::Config(format!("bad URL {s:?}: {e}")))
}

#[derive(serde::Serialize)]
struct BorrowBody<'a> {
    tool: &'a str,
    user: &'a str,
}

#[derive(serde::Serialize)]
struct ReturnBody<'a> {
    id: &'a str,
}

fn validate(c: &StressConfig) -> Result<(), StressError> {
    if c.workers == 0 || c.ops_per_worker == 0 {
        return Err(StressError::Config(
            "workers and ops per worker must be at least 1".into(),
        ));
    }
    if c.workers > 10_000 {
        return Err(StressError::Config("at most 10000 workers".into()));
    }
    if let Some(rate) = c.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(StressError::Config(
                "--rate must be a positive number".into(),
            ));
        }
    }
    let url = reqwest::Url::parse(&c.target)
        .map_err(|e| StressError::Config(format!("target {:?} is not a URL: {e}", c.target)))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(StressError::Config("target must be an http(s) URL".into()));
    }
    Ok(())
}

async fn fetch_status(
    client: &reqwest::Client,
    base: &str,
) -> Result<Vec<ToolStatus>, StressError> {
    let fail = |detail: String| StressError::Server {
        target: base.to_string(),
        detail,
    };
    let resp = client
        .get(format!("{base}/licenses/status"))
        .send()
        .await
        .map_err(|e| fail(format!("GET /licenses/status failed: {e}")))?;
    if !resp.status().is_success() {
        return Err(fail(format!(
            "GET /licenses/status answered {}",
            resp.status()
        )));
    }
    resp.json()
        .await
        .map_err(|e| fail(format!("GET /licenses/status body: {e}")))
}

struct Context {
    config: StressConfig,
    client: reqwest::Client,
    // Parsed once: reqwest would otherwise re-parse a string URL on every request.
    borrow_url: reqwest::Url,
    return_url: reqwest::Url,
    tools: Vec<String>,
    pacer: Option<Pacer>,
    bar: ProgressBar,
    /// The vendor's keyed HMAC, built once (signing is on the client's hot path too).
    signer: Option<(String, NonceSigner)>,
}

/// Spaces operation starts `1/rate` apart across all workers, without bursts after idle time.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn acquire(&self) {
        let when = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if *next < now {
                *next = now;
            }
            let when = *next;
            *next += self.interval;
            when
        };
        tokio::time::sleep_until(when.into()).await;
    }
}

#[derive(Default)]
struct WorkerStats {
    attempted: u64,
    successes: u64,
    failures: BTreeMap<String, u64>,
    overage_borrows: u64,
    returns_ok: u64,
    returns_failed: u64,
    borrow_latencies_us: Vec<u64>,
    return_latencies_us: Vec<u64>,
}

impl WorkerStats {
    fn merge(&mut self, o: WorkerStats) {
        self.attempted += o.attempted;
        self.successes += o.successes;
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        self.overage_borrows += o.overage_borrows;
        self.returns_ok += o.returns_ok;
        self.returns_failed += o.returns_failed;
        self.borrow_latencies_us.extend(o.borrow_latencies_us);
        self.return_latencies_us.extend(o.return_latencies_us);
    }
}

#[derive(Deserialize)]
struct BorrowAnswer {
    id: String,
    #[serde(default)]
    overage: bool,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
}

/// The failure reason of a non-200 answer: its `error` code, else `http_<status>`.
async fn failure_reason(resp: reqwest::Response) -> String {
    let status = resp.status();
    match resp.json::<ErrorAnswer>().await {
        Ok(ErrorAnswer { error: Some(code) }) if !code.is_empty() => code,
        _ => format!("http_{}", status.as_u16()),
    }
}

async fn worker(index: usize, ctx: Arc<Context>, delay: Duration) -> WorkerStats {
    tokio::time::sleep(delay).await;
    let c = &ctx.config;
    let user = format!("{}-{index}", c.user_prefix);
    let mut rng = fastrand::Rng::new();
    let mut stats = WorkerStats {
        borrow_latencies_us: Vec::with_capacity(c.ops_per_worker),
        return_latencies_us: Vec::with_capacity(c.ops_per_worker),
        ..WorkerStats::default()
    };
    for _ in 0..c.ops_per_worker {
        if let Some(pacer) = &ctx.pacer {
            pacer.acquire().await;
        }
        let tool = match &c.tool {
            Some(t) => t.as_str(),
            None => ctx.tools[rng.usize(..ctx.tools.len())].as_str(),
        };
        stats.attempted += 1;
        let body = BorrowBody { tool, user: &user };
        let t0 = Instant::now();
        let request = ctx.client.post(ctx.borrow_url.clone()).json(&body);
        let answer = authenticate(request, &ctx, tool, &user).send().await;
        let borrowed = match answer {
            Ok(resp) if resp.status().is_success() => {
                let parsed = resp.json::<BorrowAnswer>().await;
                stats.borrow_latencies_us.push(micros(t0));
                match parsed {
                    Ok(b) => Some(b),
                    Err(_) => {
                        *stats.failures.entry("bad_answer".into()).or_default() += 1;
                        None
                    }
                }
            }
            Ok(resp) => {
                let reason = failure_reason(resp).await;
                stats.borrow_latencies_us.push(micros(t0));
                *stats.failures.entry(reason).or_default() += 1;
                None
            }
            Err(_) => {
                stats.borrow_latencies_us.push(micros(t0));
                *stats.failures.entry("transport".into()).or_default() += 1;
                None
            }
        };
        if let Some(b) = borrowed {
            stats.successes += 1;
            if b.overage {
                stats.overage_borrows += 1;
            }
            if c.mode == Mode::FullCycle {
                if !c.hold.is_zero() {
                    tokio::time::sleep(c.hold).await;
                }
                let t1 = Instant::now();
                let mut request = ctx
                    .client
                    .post(ctx.return_url.clone())
                    .json(&ReturnBody { id: &b.id });
                if let Some(key) = &c.credentials.api_key {
                    request = request.bearer_auth(key.expose());
                }
                let answer = request.send().await;
                match answer {
                    Ok(resp) if resp.status().is_success() => {
                        // Drain the body so the connection goes back to the pool.
                        let _ = resp.bytes().await;
                        stats.returns_ok += 1;
                    }
                    Ok(resp) => {
                        let _ = resp.bytes().await;
                        stats.returns_failed += 1;
                    }
                    Err(_) => stats.returns_failed += 1,
                }
                stats.return_latencies_us.push(micros(t1));
            }
        }
        ctx.bar.inc(1);
    }
    stats
}

/// Adds the API key and, with a vendor, a nonce-form signature to a borrow of `tool` for `user`.
fn authenticate(
    mut request: reqwest::RequestBuilder,
    ctx: &Context,
    tool: &str,
    user: &str,
) -> reqwest::RequestBuilder {
    let api_key = ctx.config.credentials.api_key.as_ref().map(Secret::expose);
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    if let Some((vendor, signer)) = &ctx.signer {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let nonce = signer.next_nonce();
        let signature = signer.sign(tool, user, timestamp, &nonce, api_key);
        request = request
            .header(X_VENDOR_ID, vendor)
            .header(X_TIMESTAMP, timestamp)
            .header(X_NONCE, nonce)
            .header(X_SIGNATURE, signature);
    }
    request
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Names of the tools served at `target` (from `GET /licenses/status`).
pub async fn list_tools(target: &str) -> Result<Vec<String>, StressError> {
    let base = target.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| StressError::Config(format!("cannot build HTTP client: {e}")))?;
    Ok(fetch_status(&client, base)
        .await?
        .into_iter()
        .map(|s| s.tool)
        .collect())
}
