//! The usage tier's costs, printed as a table (a benchmark, not a timed test):
//!
//! - closing a minute of 1,000 active resources (encode, one SQLite transaction, commit);
//! - bytes on disk per resource-minute (the whole file, rollups and SQLite's overhead included);
//! - the report and the advice over 30 days for 1,000 resources, for the worst window shape:
//!   minutes and hours at both ends, days in between (the first question, which decodes every
//!   row, and the following ones, which reuse the merged runs of hours and days).
//!
//! Two days of traffic are recorded through a real `UsageRecorder` (1,000 resources, each
//! borrowed and returned about twice a minute, with refusals); the 30-day window is then made by
//! copying those real rows forward in SQLite (28 more days, plus the last day's first hours),
//! which is what a month of the same traffic writes. Run with
//! `cargo bench -p realtime-layer --features usage --bench usage`.

use realtime_layer::{Event, Pricing, ResourceStatus, UsageConfig, UsageRecorder, UsageStore};
use std::time::{Duration, Instant};

const RESOURCES: usize = 1_000;
const MIN: u64 = 60_000;
const DAY: u64 = 86_400_000;
/// Midnight UTC of the first recorded day.
const D0: u64 = 20_400 * DAY;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn names() -> Vec<String> {
    (0..RESOURCES).map(|i| format!("pool-{i:04}")).collect()
}

fn status(names: &[String]) -> Vec<ResourceStatus> {
    names
        .iter()
        .map(|n| {
            ResourceStatus::new(n.clone(), 20, 8, 0)
                .with_max_overage(10)
                .with_pricing(Pricing::new("EUR", 8000.0, 250.0))
        })
        .collect()
}

/// One minute of traffic: every resource borrows or returns about twice, refusals at capacity.
fn minute(
    rec: &mut UsageRecorder,
    names: &[String],
    levels: &mut [u32],
    rng: &mut Rng,
    start: u64,
) {
    for (i, name) in names.iter().enumerate() {
        for k in 0..2 {
            let t = start + (i as u64 * 37 + k * 29_000) % MIN;
            let up = rng.next() % 100 < 52 - levels[i] as u64 * 2;
            let event = if up && levels[i] >= 18 {
                Event::failure(name.clone(), "u", "max_overage")
            } else if up {
                levels[i] += 1;
                Event::borrow(name.clone(), "u").overage(levels[i] > 8)
            } else if levels[i] > 0 {
                levels[i] -= 1;
                Event::returned(name.clone(), "u")
            } else {
                continue;
            };
            rec.record_at(t, &event).unwrap();
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench-usage.db");
    let store = UsageStore::open(UsageConfig::new(&path)).unwrap();
    let names = names();
    let rows = status(&names);
    let mut rec = UsageRecorder::new(&store, D0).unwrap();
    rec.set_status(&rows);
    let mut levels = vec![0u32; RESOURCES];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    // Two days, minute by minute; the close of each minute is timed on its own.
    let mut closes = Vec::new();
    let setup = Instant::now();
    for m in 0..2 * 1440 {
        let start = D0 + m * MIN;
        minute(&mut rec, &names, &mut levels, &mut rng, start);
        let t = Instant::now();
        rec.advance(start + MIN).unwrap();
        // Minutes that end an hour also roll it up: timed apart.
        if (m + 1) % 60 != 0 {
            closes.push(t.elapsed());
        }
    }
    let stats = rec.stats();
    drop(rec);
    let bytes = store.disk_bytes().unwrap();
    let per_record = bytes as f64 / stats.records_written as f64;
    eprintln!("recorded 2 days in {:.1?}", setup.elapsed());

    // Copy the real rows forward: day 0 to days 2..=29, day 1's first 10 h 30 min to day 30.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let d = D0 / DAY;
    let shift = |table: &str, per_day: u64, from: u64, to: u64, by_days: u64| {
        let sql = format!(
            "INSERT OR REPLACE INTO {table}(key, data) SELECT key + ?3, data FROM {table} WHERE key >= ?1 AND key < ?2"
        );
        conn.execute(
            &sql,
            [
                (from * 64) as i64,
                (to * 64) as i64,
                (by_days * per_day * 64) as i64,
            ],
        )
        .unwrap();
    };
    for k in 2..30 {
        shift("days", 1, d, d + 1, k);
    }
    shift("hours", 24, (d + 1) * 24, (d + 1) * 24 + 10, 29);
    let m1 = (d + 1) * 1440;
    shift("minutes", 1440, m1 + 600, m1 + 630, 29);
    let end_minute = (d + 30) * 1440 + 630;
    for (key, value) in [
        ("closed", end_minute),
        ("rolled_hours", end_minute / 60),
        ("rolled_days", end_minute / 1440),
    ] {
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
            rusqlite::params![key, value as i64],
        )
        .unwrap();
    }
    drop(conn);

    let (start, end) = store.window(30 * 86_400).unwrap();
    assert_eq!(end, end_minute * MIN);
    // The first question merges every row (nothing cached); later ones reuse the merged runs of
    // hours and days and read only the edge minutes, as a dashboard polling every minute does.
    let t = Instant::now();
    store.report(start, end, &rows).unwrap();
    let cold = t.elapsed();
    let mut reports = Vec::new();
    let mut advices = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let r = store.report(start, end, &rows).unwrap();
        reports.push(t.elapsed());
        assert_eq!(r.resources.len(), RESOURCES);
        let t = Instant::now();
        let a = store.advice(start, end, &rows).unwrap();
        advices.push(t.elapsed());
        assert_eq!(a.resources.len(), RESOURCES);
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "usage tier, {RESOURCES} resources (load average: {})",
        load.trim()
    );
    println!("| measure | median | target |");
    println!("|---|---|---|");
    println!(
        "| minute close, {RESOURCES} active resources ({} closes) | {:.3} ms | <= 1 ms |",
        closes.len(),
        median(closes).as_secs_f64() * 1e3
    );
    println!(
        "| bytes on disk per resource-minute ({} records, {} bytes) | {per_record:.1} B | <= 64 B |",
        stats.records_written, bytes
    );
    println!(
        "| report, 30 days, first question (every row decoded) | {:.2} ms | |",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "| report, 30 days | {:.2} ms | <= 20 ms |",
        median(reports).as_secs_f64() * 1e3
    );
    println!(
        "| advice, 30 days | {:.2} ms | <= 50 ms |",
        median(advices).as_secs_f64() * 1e3
    );
}
