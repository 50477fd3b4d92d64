//! End-to-end test of the dashboard in headless Chromium (through chromedriver).
//!
//! Starts a real server with simulated history and live load, opens `/realtime`, records events
//! through the layer (one with a hostile user name), and checks what a person would see: the
//! status is "connected", the cards move, the utilization chart lists the resources, the hostile
//! name is rendered as text, the range selector reloads history, the layout holds from 360 to
//! 1,920 px (nothing cut off, overlapping or scrolling sideways; axes carry units), the view lives
//! in the URL, and the browser console shows no errors or CSP violations. A second test serves 300
//! resources: every panel stays within two screens. Screenshots (light, dark, per width, 300
//! resources) go to `target/browser/`.
//!
//! Needs `chromium` and `chromedriver` on `PATH` (or `CHROME` / `CHROMEDRIVER` set). When they are
//! missing the test prints `SKIPPED` and passes, unless `REQUIRE_BROWSER=1` (set by `.ci/run`),
//! which makes a missing browser a failure.

use axum::extract::Query;
use axum::routing::post;
use axum::Router;
use realtime_layer::{Clock, Event, Labels, Pricing, Realtime, ResourceStatus, SystemClock};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_support::browser::{assert_clean_log, binaries, start_session, Session};

const HOSTILE: &str = "<img src=x onerror=alert(1)>";
const HOSTILE_REASON: &str = "<b>exhausted</b>";
/// Minutes of simulated history recorded before the page opens.
const HISTORY_MINUTES: i64 = 40;

/// The system clock shifted by an adjustable offset, to record "past" events quickly.
#[derive(Clone, Default)]
struct ShiftedClock(Arc<AtomicI64>);

impl ShiftedClock {
    fn set_offset_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> u64 {
        (SystemClock::new().now_ms() as i64 + self.0.load(Ordering::SeqCst)) as u64
    }
}

/// A small license-pool simulation: pools with totals and commits, users borrowing and returning.
struct Sim {
    rng: u64,
    pools: Vec<(String, u32, u32, u32)>, // name, total, commit, borrowed
    holders: Vec<Vec<(String, String)>>,
}

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
];

impl Sim {
    fn new() -> Sim {
        let pools = vec![
            ("ECU Suite".to_string(), 20, 8, 0),
            ("CAN Analyzer".to_string(), 12, 8, 0),
            ("Flash Programmer".to_string(), 8, 4, 0),
            ("HIL Simulator".to_string(), 6, 2, 0),
        ];
        let holders = vec![Vec::new(); pools.len()];
        Sim {
            rng: 0x9E37_79B9_7F4A_7C15,
            pools,
            holders,
        }
    }

    /// `n` pools: a hostile name, then `Tool NNN` (every seventh with a longer name).
    fn many(n: usize) -> Sim {
        let mut pools = vec![(HOSTILE.to_string(), 8, 4, 0)];
        for i in 1..n {
            let name = if i % 7 == 0 {
                format!("Tool {i:03} (floating, site {})", i % 5)
            } else {
                format!("Tool {i:03}")
            };
            let total = 4 + (i as u32 % 13);
            pools.push((name, total, total / 2, 0));
        }
        let holders = vec![Vec::new(); pools.len()];
        Sim {
            rng: 0x2545_F491_4F6C_DD1D,
            pools,
            holders,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Events of `dt` simulated seconds. Each pool gets about `total * load / 20` requests a
    /// second and users keep a license ~20 s, so a pool runs at about `load` of its size.
    fn step(&mut self, load: f64, dt: f64) -> Vec<Event> {
        let mut events = Vec::new();
        for i in 0..self.pools.len() {
            let (name, total, commit, _) = self.pools[i].clone();
            let p = f64::from(total) * load * 0.05 * dt / 4.0;
            for _ in 0..4 {
                if !self.chance(p) {
                    continue;
                }
                let user = USERS[(self.next() % USERS.len() as u64) as usize].to_string();
                let borrowed = self.pools[i].3;
                if borrowed >= total {
                    events.push(Event::failure(name.clone(), user, "exhausted"));
                } else {
                    self.pools[i].3 += 1;
                    let id = format!("{}", self.next() % 1_000_000);
                    self.holders[i].push((user.clone(), id.clone()));
                    let borrow = Event::borrow(name.clone(), user);
                    events.push(borrow.overage(borrowed >= commit).borrow_id(id));
                }
            }
            let mut k = self.holders[i].len();
            while k > 0 {
                k -= 1;
                if self.chance(0.05 * dt) {
                    let (user, id) = self.holders[i].swap_remove(k);
                    self.pools[i].3 -= 1;
                    events.push(Event::returned(name.clone(), user).borrow_id(id));
                }
            }
        }
        events
    }

    fn status(&self) -> Vec<ResourceStatus> {
        self.pools
            .iter()
            .map(|(n, t, c, b)| {
                ResourceStatus::new(n.clone(), *t, *c, *b).with_pricing(Pricing::new(
                    "EUR",
                    1000.0 * f64::from(*c),
                    75.0,
                ))
            })
            .collect()
    }
}

/// Load over time (seconds since the start of the simulated history): a calm start, a busy
/// stretch with overage around minute 15, and a rising load into the live part of the test.
fn load_at(second: i64) -> f64 {
    let x = second as f64 / 60.0;
    let wave = 0.3 + 0.15 * (x / 2.5).sin();
    let busy = if (12.0..18.0).contains(&x) { 0.35 } else { 0.0 };
    let rising = ((x - 30.0) / 10.0).clamp(0.0, 1.0) * 0.45;
    (wave + busy + rising).clamp(0.05, 1.0)
}

/// `[bucket count, buckets with borrows]` of the borrows chart.
const BORROW_BUCKETS_JS: &str = "var d = Chart.getChart('chart-borrows').data;
    return [d.labels.length, d.datasets[0].data.filter(function (v) { return v > 0; }).length];";

#[derive(Deserialize)]
struct Checkout {
    kind: String,
    resource: String,
    user: String,
    #[serde(default)]
    overage: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// A handler behind the layer: the event travels in the response and the layer records it.
async fn checkout(Query(q): Query<Checkout>) -> (Event, &'static str) {
    let event = match q.kind.as_str() {
        "borrow" => Event::borrow(q.resource, q.user).overage(q.overage),
        "return" => Event::returned(q.resource, q.user),
        _ => Event::failure(
            q.resource,
            q.user,
            q.reason.unwrap_or_else(|| "exhausted".into()),
        ),
    };
    (event, "ok")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The tests of this file run one browser (and one simulated server) at a time: they share a
/// small machine, and the latency check should not measure the other test.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let _one = ONE_BROWSER.lock().await;
    let Some(bins) = binaries("dashboard browser test") else {
        return;
    };

    // ---- a server with 40 minutes of simulated history --------------------------------------
    // The clock starts in the past (the buffer counts time from its creation) and catches up.
    let history = HISTORY_MINUTES * 60;
    let clock = ShiftedClock::default();
    clock.set_offset_ms(-history * 1000);
    let sim = Arc::new(Mutex::new(Sim::new()));
    let status_sim = sim.clone();
    let rt = Realtime::builder()
        .clock(clock.clone())
        .labels(
            Labels::default()
                .title("License Server")
                .resource("Tool", "Tools"),
        )
        .status_source(move || status_sim.lock().unwrap().status())
        .build()
        .expect("realtime config");

    for s in 0..history {
        clock.set_offset_ms(-(history - s) * 1000);
        let events = sim.lock().unwrap().step(load_at(s), 1.0);
        rt.record_all(&events);
    }
    clock.set_offset_ms(0);

    let app: Router = Router::new()
        .route("/checkout", post(checkout))
        .layer(rt.layer().http_metrics())
        .merge(rt.routes())
        // The same routes under a prefix: the page's relative URLs must work there too.
        .nest("/admin", rt.routes());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let base = format!("http://{addr}");

    // Live load while the page is open, in quarter seconds. Events are recorded under the
    // simulation's lock so the status source never runs ahead of the recorded events.
    let load_rt = rt.clone();
    let load_sim = sim.clone();
    let load = tokio::spawn(async move {
        let mut quarter = history * 4;
        loop {
            {
                let mut sim = load_sim.lock().unwrap();
                let events = sim.step(load_at(quarter / 4), 0.25);
                load_rt.record_all(&events);
            }
            quarter += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });

    // The page carries the strict CSP the issue asks for.
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/realtime")).send().await.unwrap();
    assert!(page.status().is_success());
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );

    // ---- the browser -------------------------------------------------------------------------
    let (driver, browser, profile) = start_session(&bins, "main", 1440, 1400).await;
    // Run the checks in their own task so that a failed assertion still closes the browser.
    let browser = Arc::new(browser);
    let checks = {
        let (browser, rt, http, base) = (browser.clone(), rt.clone(), http.clone(), base.clone());
        tokio::spawn(async move { run_checks(&browser, &rt, &http, &base).await })
    };
    let result = checks.await;

    let log = browser.browser_log().await.unwrap_or_default();
    if let Ok(browser) = Arc::try_unwrap(browser) {
        browser.quit().await;
    }
    drop(driver);
    drop(profile);
    load.abort();
    rt.shutdown();
    server.abort();

    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
    // Everything the console saw during the whole run, CSP reports included.
    assert_clean_log(&log);
}

/// The server sees exactly one open stream (an old one may take a moment to be noticed closed).
async fn wait_one_stream(rt: &Realtime) -> Result<(), String> {
    for _ in 0..100 {
        if rt.stream_clients() == 1 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "expected 1 open stream, server counts {}",
        rt.stream_clients()
    ))
}

async fn text(browser: &Session, id: &str) -> String {
    browser
        .execute(
            "return document.getElementById(arguments[0]).textContent;",
            vec![json!(id)],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Samples of the end-to-end latency check.
const LATENCY_SAMPLES: usize = 40;

/// Records events one at a time and times each until its row appears in the page's event log
/// (a `MutationObserver` notes when; browser and server share the machine's clock). Prints
/// p50/p99; fails only when the median is above 1 s, so a few stalls of a busy shared machine (one
/// sample in 40 is the p99) do not make it flaky.
async fn end_to_end_latency(browser: &Session, rt: &Realtime) -> Result<(), String> {
    browser
        .execute(
            "window.__seen = {};
             new MutationObserver(function (records) {
                 var now = Date.now();
                 records.forEach(function (r) {
                     r.addedNodes.forEach(function (tr) {
                         var cell = tr.querySelector && tr.querySelector('td.user');
                         var user = cell && cell.textContent;
                         if (user && user.indexOf('latency-') === 0 && !(user in window.__seen)) {
                             window.__seen[user] = now;
                         }
                     });
                 });
             }).observe(document.getElementById('events-body'), { childList: true });
             return true;",
            vec![],
        )
        .await?;
    let mut sent = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let user = format!("latency-{i:02}");
        sent.push((user.clone(), wall_ms()));
        // A resource outside the status source: the samples show in the log but never move a
        // pool's level (the utilization check expects peaks within the pools' sizes).
        rt.record(Event::borrow("Latency Probe", user));
        // Spread out, and off the frame rhythm, so each sample is its own push.
        tokio::time::sleep(Duration::from_millis(130 + 17 * (i as u64 % 7))).await;
    }
    let seen = browser
        .wait_for(
            "every latency sample in the event log",
            &format!(
                "return Object.keys(window.__seen).length >= {LATENCY_SAMPLES} && window.__seen;"
            ),
            Duration::from_secs(20),
        )
        .await;
    let mut latencies: Vec<u64> = sent
        .iter()
        .map(|(user, at)| {
            let shown = seen[user].as_u64().unwrap_or(u64::MAX);
            shown.saturating_sub(*at)
        })
        .collect();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let (p50, p99) = (pct(0.50), pct(0.99));
    eprintln!(
        "end-to-end latency, record -> row in the page ({LATENCY_SAMPLES} samples): p50 {p50} ms, p99 {p99} ms, max {} ms",
        latencies[latencies.len() - 1]
    );
    if p50 > 1_000 {
        return Err(format!(
            "end-to-end latency p50 {p50} ms is above 1 s: {latencies:?}"
        ));
    }
    Ok(())
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The answers panels: hold times per resource, time at capacity sorted by time exhausted, the
/// overage-cost card and each resource's cost in the utilization tooltip.
async fn check_answer_panels(browser: &Session) -> Result<(), String> {
    let long = Duration::from_secs(20);
    let holds = browser
        .wait_for(
            "hold-time chart",
            "var c = Chart.getChart('chart-holds');
             return c && c.data.labels.length >= 4 && document.getElementById('holds-empty').hidden
                 && [c.data.labels, c.data.datasets.map(function (d) { return d.data; })];",
            long,
        )
        .await;
    // p50 ≤ p90 ≤ p99, all positive (users keep a license ~20 s).
    let q = &holds[1];
    for i in 0..holds[0].as_array().unwrap().len() {
        let (p50, p90, p99) = (
            q[0][i].as_f64().unwrap(),
            q[1][i].as_f64().unwrap(),
            q[2][i].as_f64().unwrap(),
        );
        assert!(
            0.0 < p50 && p50 <= p90 && p90 <= p99,
            "hold quantiles {holds}"
        );
    }
    let capacity = browser
        .wait_for(
            "time-at-capacity chart",
            "var c = Chart.getChart('chart-capacity');
             return c && c.data.labels.length === 4 && [c.data.labels, c.data.datasets[0].data, c.data.datasets[1].data];",
            long,
        )
        .await;
    let exhausted: Vec<f64> = capacity[2]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        exhausted.windows(2).all(|w| w[0] >= w[1]),
        "sorted by time exhausted: {capacity}"
    );
    assert!(
        exhausted[0] > 0.0,
        "the busy simulation exhausts a pool: {capacity}"
    );
    let cost = browser
        .wait_for(
            "overage-cost card",
            "var c = document.getElementById('card-cost'), v = document.getElementById('m-cost').textContent;
             return !c.hidden && v !== '–' && [v, document.getElementById('m-cost-sub').textContent];",
            long,
        )
        .await;
    assert!(
        cost[0].as_str().unwrap().contains('€')
            && cost[1].as_str().unwrap().contains("over commit"),
        "cost card {cost}"
    );
    let footer = browser
        .execute(
            "var c = Chart.getChart('chart-util');
             c.tooltip.setActiveElements([{ datasetIndex: 0, index: 0 }], { x: 10, y: 10 });
             c.update('none');
             var f = c.tooltip.footer;
             c.tooltip.setActiveElements([], { x: 0, y: 0 });
             c.update('none');
             return f;",
            vec![],
        )
        .await?;
    assert!(
        footer.to_string().contains("Cost in 30 min"),
        "cost in the utilization tooltip: {footer}"
    );
    Ok(())
}

/// The HTTP golden-signals table lists the measured route (after the test's own checkouts).
async fn check_http_panel(browser: &Session) -> Result<(), String> {
    let row = browser
        .wait_for(
            "HTTP routes panel",
            "var p = document.getElementById('panel-http'), b = document.getElementById('http-body');
             return !p.hidden && b.rows.length >= 1
                 && Array.prototype.map.call(b.rows[0].cells, function (c) { return c.textContent; });",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(row[0], "/checkout", "{row}");
    assert_eq!(row[1], "POST", "{row}");
    Ok(())
}

async fn run_checks(
    browser: &Session,
    rt: &Realtime,
    http: &reqwest::Client,
    base: &str,
) -> Result<(), String> {
    let long = Duration::from_secs(20);
    browser.goto(&format!("{base}/realtime")).await?;

    // Connected, labels from the layer, history loaded for the default 30 min range.
    browser
        .wait_for(
            "status connected",
            "return document.getElementById('status').dataset.state === 'connected';",
            long,
        )
        .await;
    assert_eq!(text(browser, "status-text").await, "Connected");
    assert_eq!(text(browser, "title").await, "License Server");
    assert_eq!(text(browser, "th-resource").await, "Tool");
    browser
        .wait_for(
            "history for 30 min",
            "var c = document.getElementById('charts').dataset; return c.range === '1800' && c.historyLoads === '1' && c.renderedLoads === '1';",
            long,
        )
        .await;
    let range = browser
        .execute("return document.getElementById('range').value;", vec![])
        .await?;
    assert_eq!(range, json!("1800"), "30 min is the default range");

    end_to_end_latency(browser, rt).await?;

    // Cards show numbers; remember the buffer size to see it move.
    let buffer_before = browser
        .wait_for(
            "cards filled",
            "var b = document.getElementById('m-buffer').textContent, r = document.getElementById('m-borrows').textContent;
             return b !== '–' && r !== '–' && b;",
            long,
        )
        .await;
    let buffer_before = buffer_before.as_str().unwrap().replace(',', "");
    let buffer_before: u64 = buffer_before
        .parse()
        .map_err(|_| format!("buffer card {buffer_before:?}"))?;
    assert!(
        buffer_before > 1000,
        "buffer card shows the simulated history: {buffer_before}"
    );

    // The utilization chart lists every resource from the status source.
    let labels = browser
        .wait_for(
            "utilization chart labels",
            "var c = Chart.getChart('chart-util'); return c && c.data.labels.length >= 4 && c.data.labels;",
            long,
        )
        .await;
    for name in [
        "ECU Suite",
        "CAN Analyzer",
        "Flash Programmer",
        "HIL Simulator",
    ] {
        assert!(
            labels.as_array().unwrap().contains(&json!(name)),
            "{name} in {labels}"
        );
    }
    // Bars stack to the pool size; every resource has a peak marker between borrowed and total.
    let util = browser
        .execute(
            "var d = Chart.getChart('chart-util').data;
             return d.labels.map(function (name, i) {
                 var ds = d.datasets;
                 return [name, ds[0].data[i], ds[1].data[i], ds[2].data[i], ds[3].data[i].x]; });",
            vec![],
        )
        .await?;
    for row in util.as_array().unwrap() {
        let n = |i: usize| row[i].as_f64().unwrap_or(-1.0);
        let (borrowed, total, peak) = (n(1) + n(2), n(1) + n(2) + n(3), n(4));
        assert!(borrowed <= peak && peak <= total, "utilization row {row}");
    }
    // Four tools fit: no top-N controls in the per-resource panels.
    let controls = browser
        .execute(
            "return Array.from(document.querySelectorAll('.res-controls')).map(function (c) { return c.hidden; });",
            vec![],
        )
        .await?;
    assert_eq!(controls, json!([true, true, true]), "top-N controls hidden");
    check_answer_panels(browser).await?;

    // History reached the charts: borrows spread over the 30 min, not piled up in one bucket.
    let total = browser.execute(BORROW_BUCKETS_JS, vec![]).await?;
    assert!(
        total[0].as_u64().unwrap() >= 300,
        "30 min of buckets: {total}"
    );
    assert!(
        total[1].as_u64().unwrap() >= 200,
        "history spread over the buckets: {total}"
    );

    // Events through the layer, with a hostile user name and reason.
    for (kind, overage, reason) in [
        ("borrow", "true", ""),
        ("return", "false", ""),
        ("failure", "false", HOSTILE_REASON),
    ] {
        let r = http
            .post(format!("{base}/checkout"))
            .query(&[
                ("kind", kind),
                ("resource", "ECU Suite"),
                ("user", HOSTILE),
                ("overage", overage),
                ("reason", reason),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        assert!(r.status().is_success(), "checkout {kind}: {}", r.status());
    }
    let hostile_rows = browser
        .wait_for(
            "hostile rows in the event log",
            "var rows = Array.from(document.querySelectorAll('#events-body tr')).filter(function (tr) {
                 return tr.querySelector('td.user').textContent === arguments[0]; });
             return rows.length >= 3 && rows.map(function (tr) {
                 return [tr.dataset.kind, tr.querySelector('td.user').innerHTML, tr.querySelector('td.details').textContent]; });"
                .replace("arguments[0]", &serde_json::to_string(HOSTILE).unwrap())
                .as_str(),
            long,
        )
        .await;
    let rows = hostile_rows.as_array().unwrap();
    for row in rows {
        assert_eq!(
            row[1],
            json!("&lt;img src=x onerror=alert(1)&gt;"),
            "escaped as text: {row}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r[0] == json!("failure") && r[2].as_str().unwrap().contains(HOSTILE_REASON)),
        "failure reason rendered as text: {hostile_rows}"
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == json!("borrow") && r[2].as_str().unwrap().contains("overage")),
        "overage borrow flagged: {hostile_rows}"
    );
    let injected = browser
        .execute("return document.querySelectorAll('#events-body img, #events-body b, select img').length;", vec![])
        .await?;
    assert_eq!(injected, json!(0), "no markup injected from event fields");
    check_http_panel(browser).await?;

    // The cards change: the buffer count grows with the recorded events.
    let grown = browser
        .wait_for(
            "buffer card to grow",
            &format!(
                "var v = parseInt(document.getElementById('m-buffer').textContent.replace(/[^0-9]/g, ''), 10);
                 return v > {buffer_before} && v;"
            ),
            long,
        )
        .await;
    assert!(grown.as_u64().unwrap() > buffer_before);
    let active = text(browser, "m-active").await;
    assert!(
        active.parse::<u32>().is_ok(),
        "active card is a number: {active:?}"
    );

    // The range selector reloads history: pick 5 min, then back to 30 min.
    browser.click(&browser.find("#range").await?).await?;
    browser
        .click(&browser.find("#range option[value='300']").await?)
        .await?;
    browser
        .wait_for(
            "history for 5 min",
            "var c = document.getElementById('charts').dataset; return c.range === '300' && c.historyLoads === '2' && c.renderedLoads === '2';",
            long,
        )
        .await;
    let five = browser.execute(BORROW_BUCKETS_JS, vec![]).await?;
    let n = five[0].as_u64().unwrap();
    assert!((250..=320).contains(&n), "5 min of 1 s buckets: {five}");
    assert!(
        five[1].as_u64().unwrap() >= 60,
        "5 min history has borrows: {five}"
    );
    browser.click(&browser.find("#range").await?).await?;
    browser
        .click(&browser.find("#range option[value='1800']").await?)
        .await?;
    browser
        .wait_for(
            "history for 30 min again",
            "var c = document.getElementById('charts').dataset; return c.range === '1800' && c.historyLoads === '3' && c.renderedLoads === '3';",
            long,
        )
        .await;

    // Still one connection, still connected; the stream counts one client.
    assert_eq!(text(browser, "status").await.trim(), "Connected");
    assert_eq!(rt.stream_clients(), 1, "exactly one EventSource open");

    // The resource filter: history and stream reconnect filtered, the log only shows that
    // resource, the CSV link carries the filter, and the old connection is closed.
    browser
        .click(&browser.find("#resource-filter").await?)
        .await?;
    browser
        .click(
            &browser
                .find("#resource-filter option[value='HIL Simulator']")
                .await?,
        )
        .await?;
    browser
        .wait_for(
            "history filtered by resource",
            "var c = document.getElementById('charts').dataset; return c.historyLoads === '4' && c.renderedLoads === '4';",
            long,
        )
        .await;
    browser
        .wait_for(
            "filtered events in the log",
            "var cells = Array.from(document.querySelectorAll('#events-body td.resource'));
             return cells.length >= 2 && cells.every(function (td) { return td.textContent === 'HIL Simulator'; });",
            long,
        )
        .await;
    let href = browser
        .execute("return document.getElementById('csv').href;", vec![])
        .await?;
    let href = href.as_str().unwrap_or("").to_owned();
    assert!(
        href.contains("/realtime/events.csv?window=1800&resource=HIL%20Simulator"),
        "{href}"
    );
    let csv = http.get(&href).send().await.map_err(|e| e.to_string())?;
    assert!(
        csv.status().is_success(),
        "CSV export answers: {}",
        csv.status()
    );
    let body = csv.text().await.map_err(|e| e.to_string())?;
    assert!(
        body.starts_with("ts,kind,resource,user,borrow_id,overage,reason"),
        "{body:.80}"
    );
    assert!(
        body.lines().skip(1).all(|l| l.contains(",HIL Simulator,")),
        "filtered CSV"
    );
    wait_one_stream(rt).await?;

    // Pause freezes the charts while the cards stay live; resume catches up.
    const LAST_LABEL_JS: &str =
        "var l = Chart.getChart('chart-borrows').data.labels; return l[l.length - 1];";
    browser.click(&browser.find("#pause").await?).await?;
    let frozen = browser.execute(LAST_LABEL_JS, vec![]).await?;
    let buffer_paused = text(browser, "m-buffer").await;
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(
        browser.execute(LAST_LABEL_JS, vec![]).await?,
        frozen,
        "charts frozen while paused"
    );
    assert_ne!(
        text(browser, "m-buffer").await,
        buffer_paused,
        "cards stay live while paused"
    );
    assert_eq!(text(browser, "pause").await, "Resume charts");
    browser.click(&browser.find("#pause").await?).await?;
    browser
        .wait_for(
            "charts to catch up on resume",
            &format!(
                "var l = Chart.getChart('chart-borrows').data.labels; return l[l.length - 1] !== {frozen};"
            ),
            long,
        )
        .await;

    // Back to all resources for the screenshots.
    browser
        .click(&browser.find("#resource-filter").await?)
        .await?;
    browser
        .click(&browser.find("#resource-filter option[value='']").await?)
        .await?;
    browser
        .wait_for(
            "unfiltered history",
            "var c = document.getElementById('charts').dataset; return c.historyLoads === '5' && c.renderedLoads === '5';",
            long,
        )
        .await;
    wait_one_stream(rt).await?;

    // Screenshots for review: let a few live seconds land first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    browser
        .execute(
            "document.activeElement.blur(); window.scrollTo(0, 0);",
            vec![],
        )
        .await?;
    let dir = target_dir().join("browser");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let light = dir.join("dashboard.png");
    std::fs::write(&light, browser.screenshot().await?).map_err(|e| e.to_string())?;
    eprintln!("screenshot: {}", light.display());
    check_widths(browser, &dir).await?;

    browser
        .cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let dark = dir.join("dashboard-dark.png");
    std::fs::write(&dark, browser.screenshot().await?).map_err(|e| e.to_string())?;
    eprintln!("screenshot: {}", dark.display());

    // Mounted under a prefix, the page finds its assets, config, history and stream.
    browser.goto(&format!("{base}/admin/realtime")).await?;
    browser
        .wait_for(
            "connected under /admin",
            "var c = document.getElementById('charts').dataset;
             return document.getElementById('status').dataset.state === 'connected'
                 && c.historyLoads === '1' && c.renderedLoads === '1' && typeof Chart !== 'undefined'
                 && document.getElementById('title').textContent === 'License Server';",
            long,
        )
        .await;
    let href = browser
        .execute("return document.getElementById('csv').href;", vec![])
        .await?;
    assert!(
        href.as_str()
            .unwrap_or("")
            .starts_with(&format!("{base}/admin/realtime/events.csv?")),
        "{href}"
    );
    wait_one_stream(rt).await?;
    check_url_state(browser, rt, base).await?;
    Ok(())
}

/// Widths the layout is checked at, phone to large desktop.
const WIDTHS: [u32; 5] = [360, 420, 768, 1280, 1920];

/// What a person would see as broken at the current width (an empty list when nothing is): the
/// page scrolling sideways, card or panel texts cut off, overlapping or clipped axis labels, and
/// duration ticks without a unit.
const LAYOUT_PROBLEMS_JS: &str = r#"
var bad = [];
var doc = document.documentElement;
if (doc.scrollWidth > innerWidth) bad.push('page scrolls sideways: ' + doc.scrollWidth + ' > ' + innerWidth);
document.querySelectorAll('.card .card-title, .card .card-value, .card .card-sub, .panel-head h2, .panel-note, .toolbar .btn, .res-controls .btn')
  .forEach(function (el) {
    if (el.offsetParent && el.scrollWidth > el.clientWidth + 1)
      bad.push('cut off: ' + (el.id || el.className) + ' "' + el.textContent + '" ' + el.scrollWidth + ' > ' + el.clientWidth);
  });
Object.values(Chart.instances).forEach(function (c) {
  if (!c.canvas.offsetParent) return;
  Object.keys(c.scales).forEach(function (id) {
    var s = c.scales[id];
    if (!s.isHorizontal()) return;
    var boxes = s.getLabelItems().filter(function (it) { return !it.options.rotation; }).map(function (it) {
      c.ctx.save();
      c.ctx.font = it.font.string;
      var w = c.ctx.measureText(String(it.label)).width;
      c.ctx.restore();
      var x = it.options.translation[0], a = it.options.textAlign;
      var left = a === 'center' ? x - w / 2 : a === 'right' || a === 'end' ? x - w : x;
      return [left, left + w, String(it.label)];
    }).sort(function (p, q) { return p[0] - q[0]; });
    for (var i = 1; i < boxes.length; i++)
      if (boxes[i][0] < boxes[i - 1][1]) bad.push(c.canvas.id + ' ' + id + ' labels overlap: ' + boxes[i - 1][2] + ' / ' + boxes[i][2]);
    boxes.forEach(function (b) {
      if (b[0] < -1 || b[1] > c.width + 1) bad.push(c.canvas.id + ' ' + id + ' label outside the chart: ' + b[2]);
    });
  });
});
['chart-holds', 'chart-capacity'].forEach(function (id) {
  Chart.getChart(id).scales.x.ticks.forEach(function (t) {
    if (!/^[0-9.]+ (µs|ms|s|min|h)$/.test(t.label)) bad.push(id + ' tick without a unit: ' + t.label);
  });
});
return bad;
"#;

/// Emulates a `width`×`height` screen and waits until the layout has no problems (charts follow
/// their boxes' size over the next frames); the problems left after a few seconds are the error.
async fn layout_at(browser: &Session, width: u32, height: u32) -> Result<(), String> {
    browser
        .cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await?;
    let mut problems = Value::Null;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        problems = browser.execute(LAYOUT_PROBLEMS_JS, vec![]).await?;
        if problems.as_array().is_some_and(|p| p.is_empty()) {
            return Ok(());
        }
    }
    Err(format!("layout at {width}×{height}: {problems:#}"))
}

/// Every width from 360 to 1,920 px: nothing cut off, overlapping or scrolling sideways; a
/// screenshot of the top of the page (and of the per-resource panels on phones) for review.
async fn check_widths(browser: &Session, dir: &Path) -> Result<(), String> {
    for width in WIDTHS {
        layout_at(browser, width, 900).await?;
        browser.execute("window.scrollTo(0, 0);", vec![]).await?;
        let path = dir.join(format!("dashboard-{width}.png"));
        std::fs::write(&path, browser.screenshot().await?).map_err(|e| e.to_string())?;
        eprintln!("screenshot: {}", path.display());
        if width < 768 {
            browser
                .execute(
                    "document.getElementById('panel-util').scrollIntoView();",
                    vec![],
                )
                .await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let path = dir.join(format!("dashboard-{width}-panels.png"));
            std::fs::write(&path, browser.screenshot().await?).map_err(|e| e.to_string())?;
            browser.execute("window.scrollTo(0, 0);", vec![]).await?;
        }
    }
    browser
        .cdp("Emulation.clearDeviceMetricsOverride", json!({}))
        .await?;
    Ok(())
}

async fn location_search(browser: &Session) -> Result<String, String> {
    let v = browser.execute("return location.search;", vec![]).await?;
    Ok(v.as_str().unwrap_or("").to_owned())
}

/// The view lives in the URL: a link with range, resource and user opens the page on them (the
/// controls show them, history, stats, stream and CSV follow them), changing a control rewrites
/// the URL, and a reload keeps it.
async fn check_url_state(browser: &Session, rt: &Realtime, base: &str) -> Result<(), String> {
    let long = Duration::from_secs(20);
    browser
        .goto(&format!(
            "{base}/realtime?range=300&resource=HIL%20Simulator&user=alice"
        ))
        .await?;
    browser
        .wait_for(
            "the view from the URL",
            "var c = document.getElementById('charts').dataset;
             return document.getElementById('status').dataset.state === 'connected'
                 && c.range === '300' && c.historyLoads === '1' && c.renderedLoads === '1';",
            long,
        )
        .await;
    let controls = browser
        .execute(
            "var $ = function (id) { return document.getElementById(id); };
             return [$('range').value, $('resource-filter').value, $('user-filter').value,
                     $('status').dataset.stream, $('csv').getAttribute('href')];",
            vec![],
        )
        .await?;
    assert_eq!(
        controls,
        json!([
            "300",
            "HIL Simulator",
            "alice",
            "realtime/stream?resource=HIL%20Simulator&user=alice",
            "realtime/events.csv?window=300&resource=HIL%20Simulator&user=alice"
        ]),
        "controls and links follow the URL"
    );
    let requests = browser
        .wait_for(
            "history and stats requests",
            "var n = performance.getEntriesByType('resource').map(function (e) { return e.name.slice(location.origin.length); });
             return n.some(function (u) { return u.indexOf('/realtime/stats?') === 0; }) && n;",
            long,
        )
        .await;
    let requests: Vec<&str> = requests
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "/realtime/history?window=300&resource=HIL%20Simulator",
        "/realtime/stats?window=300&resource=HIL%20Simulator&user=alice",
    ] {
        assert!(requests.contains(&expected), "{expected} in {requests:?}");
    }
    wait_one_stream(rt).await?;

    // Changing a control rewrites the URL (replaceState: no new history entry).
    let depth = browser.execute("return history.length;", vec![]).await?;
    browser.click(&browser.find("#range").await?).await?;
    browser
        .click(&browser.find("#range option[value='600']").await?)
        .await?;
    browser
        .wait_for(
            "history for 10 min",
            "var c = document.getElementById('charts').dataset; return c.range === '600' && c.renderedLoads === '2';",
            long,
        )
        .await;
    assert_eq!(
        location_search(browser).await?,
        "?range=600&resource=HIL%20Simulator&user=alice"
    );
    browser
        .click(&browser.find("#resource-filter").await?)
        .await?;
    browser
        .click(&browser.find("#resource-filter option[value='']").await?)
        .await?;
    browser
        .execute(
            "var u = document.getElementById('user-filter'); u.value = ''; u.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await?;
    browser
        .wait_for(
            "unfiltered stream",
            "return document.getElementById('status').dataset.stream === 'realtime/stream'
                 && document.getElementById('status').dataset.state === 'connected';",
            long,
        )
        .await;
    assert_eq!(location_search(browser).await?, "?range=600");
    assert_eq!(
        browser.execute("return history.length;", vec![]).await?,
        depth,
        "the URL is replaced, not pushed"
    );
    wait_one_stream(rt).await?;

    // A reload keeps the view.
    browser.execute("location.reload();", vec![]).await?;
    browser
        .wait_for(
            "the view after a reload",
            "var c = document.getElementById('charts').dataset;
             return document.getElementById('range').value === '600' && c.range === '600'
                 && c.renderedLoads === '1' && document.getElementById('resource-filter').value === '';",
            long,
        )
        .await;
    // Back at the default range, the URL is plain again.
    browser.click(&browser.find("#range").await?).await?;
    browser
        .click(&browser.find("#range option[value='1800']").await?)
        .await?;
    browser
        .wait_for(
            "default range",
            "return document.getElementById('charts').dataset.range === '1800' && location.search === '';",
            long,
        )
        .await;
    wait_one_stream(rt).await?;
    Ok(())
}

/// Three hundred resources: the per-resource panels (utilization, hold times, time at capacity)
/// show their top rows in a fixed height, so every panel starts within the first two screens at
/// desktop sizes; "show all" scrolls inside its panel; the filter and sort work; no console
/// errors. Screenshots: `target/browser/dashboard-300-*.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_with_300_resources() {
    let _one = ONE_BROWSER.lock().await;
    let Some(bins) = binaries("300-resource browser test") else {
        return;
    };
    // Ten minutes of history on 300 pools, then live load.
    let history = 10 * 60;
    let clock = ShiftedClock::default();
    clock.set_offset_ms(-history * 1000);
    let sim = Arc::new(Mutex::new(Sim::many(300)));
    let status_sim = sim.clone();
    let rt = Realtime::builder()
        .clock(clock.clone())
        .labels(
            Labels::default()
                .title("License Server")
                .resource("Tool", "Tools"),
        )
        .status_source(move || status_sim.lock().unwrap().status())
        .build()
        .expect("realtime config");
    for s in 0..history {
        clock.set_offset_ms(-(history - s) * 1000);
        let events = sim.lock().unwrap().step(0.6, 1.0);
        rt.record_all(&events);
    }
    clock.set_offset_ms(0);
    let app: Router = rt.routes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (load_rt, load_sim) = (rt.clone(), sim.clone());
    let load = tokio::spawn(async move {
        loop {
            {
                let mut sim = load_sim.lock().unwrap();
                let events = sim.step(0.6, 0.5);
                load_rt.record_all(&events);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    let (driver, browser, profile) = start_session(&bins, "300", 1440, 1400).await;
    let browser = Arc::new(browser);
    let checks = {
        let (browser, base) = (browser.clone(), base.clone());
        tokio::spawn(async move { check_many_resources(&browser, &base).await })
    };
    let result = checks.await;
    let log = browser.browser_log().await.unwrap_or_default();
    if let Ok(browser) = Arc::try_unwrap(browser) {
        browser.quit().await;
    }
    drop(driver);
    drop(profile);
    load.abort();
    rt.shutdown();
    server.abort();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
    assert_clean_log(&log);
}

/// The tops of the visible panels (page coordinates) and the viewport height.
const PANEL_TOPS_JS: &str =
    "return [innerHeight, Array.from(document.querySelectorAll('.panel')).filter(function (p) { return p.offsetParent; })
         .map(function (p) { return [p.id || p.getAttribute('aria-label') || p.querySelector('h2').textContent,
                                     Math.round(p.getBoundingClientRect().top + scrollY)]; })];";

async fn panels_within_two_screens(browser: &Session, what: &str) -> Result<(), String> {
    let tops = browser.execute(PANEL_TOPS_JS, vec![]).await?;
    let screen = tops[0].as_f64().unwrap();
    let panels = tops[1].as_array().unwrap();
    assert!(panels.len() >= 7, "{what}: panels {tops}");
    for p in panels {
        assert!(
            p[1].as_f64().unwrap() < 2.0 * screen,
            "{what}: panel {} starts at {} px, below two screens of {screen} px: {tops}",
            p[0],
            p[1]
        );
    }
    Ok(())
}

async fn check_many_resources(browser: &Session, base: &str) -> Result<(), String> {
    let long = Duration::from_secs(30);
    browser
        .cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await?;
    browser.goto(&format!("{base}/realtime")).await?;
    browser
        .wait_for(
            "connected, history drawn",
            "var c = document.getElementById('charts').dataset;
             return document.getElementById('status').dataset.state === 'connected' && c.renderedLoads === '1';",
            long,
        )
        .await;
    let shown = browser
        .wait_for(
            "top rows in the per-resource panels",
            "var n = function (id) { return Chart.getChart(id).data.labels.length; };
             var p = document.getElementById('panel-util').dataset;
             return p.resources === '300' && n('chart-util') === 8 && n('chart-holds') === 8 && n('chart-capacity') === 8
                 && [p.resources, document.getElementById('util-note').textContent];",
            long,
        )
        .await;
    assert!(
        shown[1].as_str().unwrap().contains("top 8 of 300"),
        "{shown}"
    );
    let dir = target_dir().join("browser");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (width, height) in [(1280, 800), (1920, 1080)] {
        layout_at(browser, width, height).await?;
        panels_within_two_screens(browser, &format!("{width}×{height}")).await?;
        browser.execute("window.scrollTo(0, 0);", vec![]).await?;
        let path = dir.join(format!("dashboard-300-{width}.png"));
        std::fs::write(&path, browser.screenshot().await?).map_err(|e| e.to_string())?;
        eprintln!("screenshot: {}", path.display());
    }

    // Show all: 300 rows in a chart that scrolls inside a panel of unchanged height.
    const UTIL_BOX_JS: &str =
        "var p = document.getElementById('panel-util'), s = p.querySelector('.chart-scroll');
         return [Math.round(p.getBoundingClientRect().height), s.scrollHeight, s.clientHeight,
                 Chart.getChart('chart-util').data.labels.length];";
    let before = browser.execute(UTIL_BOX_JS, vec![]).await?;
    browser
        .click(&browser.find("#panel-util .res-all").await?)
        .await?;
    let after = browser
        .wait_for(
            "all 300 rows",
            &format!("var r = (function () {{ {UTIL_BOX_JS} }})(); return r[3] === 300 && r;"),
            long,
        )
        .await;
    assert_eq!(
        after[0], before[0],
        "panel height unchanged: {before} {after}"
    );
    assert!(
        after[1].as_f64().unwrap() > 5.0 * after[2].as_f64().unwrap(),
        "the rows scroll inside the panel: {after}"
    );
    panels_within_two_screens(browser, "after show all").await?;
    browser
        .execute(
            "document.querySelector('#panel-util .chart-scroll').scrollTop = 3000;",
            vec![],
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser
        .execute(
            "document.getElementById('panel-util').scrollIntoView();",
            vec![],
        )
        .await?;
    let path = dir.join("dashboard-300-show-all.png");
    std::fs::write(&path, browser.screenshot().await?).map_err(|e| e.to_string())?;

    // The filter box narrows a panel; the sort reorders it.
    browser
        .execute(
            "var f = document.querySelector('#panel-holds .res-filter');
             f.value = 'tool 12'; f.dispatchEvent(new Event('input'));",
            vec![],
        )
        .await?;
    let filtered = browser
        .wait_for(
            "filtered hold times",
            "var l = Chart.getChart('chart-holds').data.labels;
             return l.length > 0 && l.every(function (n) { return n.indexOf('Tool 12') === 0; }) && l;",
            long,
        )
        .await;
    assert!(
        filtered.as_array().unwrap().len() <= 8,
        "top rows of the matches: {filtered}"
    );
    browser
        .execute(
            "var s = document.querySelector('#panel-capacity .res-sort');
             s.value = 'name'; s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await?;
    let by_name = browser
        .wait_for(
            "capacity by name",
            "var l = Chart.getChart('chart-capacity').data.labels.slice();
             var sorted = l.slice().sort(function (a, b) { return a.localeCompare(b); });
             return l.length === 8 && l.join('|') === sorted.join('|') && l;",
            long,
        )
        .await;
    assert_eq!(by_name[0], json!(HOSTILE), "{by_name}");
    // The hostile resource name is an option's text, never markup.
    let injected = browser
        .execute(
            "return document.querySelectorAll('select img, #events-body img, .panel img').length;",
            vec![],
        )
        .await?;
    assert_eq!(injected, json!(0), "no markup injected from resource names");
    Ok(())
}
