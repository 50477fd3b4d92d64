//! What a status read costs, alone on the database and with another writer.
//!
//! `GET /licenses/status` and the realtime status source (read on every live frame) answer from
//! in-memory counters after one `PRAGMA data_version`; the counts are re-read, in one query, only
//! when another connection (another process on the same file) committed since. Cases:
//!
//! - `memory`: an in-memory database (no other connection can exist, nothing is checked): the
//!   counters alone, the cost every status read had before the check;
//! - `alone`: a file database nobody else writes to: the check, never a re-read;
//! - `other-writer`: another connection commits (one row in, or out) before every read: the
//!   check and a re-read each time, the worst case.
//!
//! Each case times `LicensePool::status()` (6 tools) in-process, then `GET /licenses/status`
//! over HTTP against a release `license-demo` process (client on this machine, keep-alive).
//!
//! The writer's side of the check (a process alone pays it once per write batch: one `PRAGMA
//! data_version` in the batch transaction, two after `COMMIT`): case `cycles` runs borrow ->
//! return one at a time on a file database nobody else writes to and prints ns per cycle; under
//! callgrind, `--toggle-collect='*Live*settle*' --toggle-collect='*Live*mark_batch*'` counts
//! the check's instructions, `--toggle-collect='*run_batch*'` the whole batches'.
//!
//! Run: `cargo bench -p license-demo --bench status_cost`
//! Tune: `BENCH_ITERS` (reads or cycles per case, default 20000), `BENCH_CASES` (comma list
//! of cases, default `memory,alone,other-writer,cycles`), `BENCH_HTTP=0` (skip the HTTP column).
//! Instruction counts (run the built bench binary, path printed by `cargo bench --no-run`):
//! `BENCH_HTTP=0 BENCH_CASES=alone BENCH_ITERS=1000 valgrind --tool=callgrind
//! --toggle-collect='*LicensePool*status*' target/release/deps/status_cost-HASH`, then
//! instructions per read = the total `Ir` / 1000.

use license_demo::config::default_tools;
use license_demo::pool::{BorrowOutcome, DbLocation, Durability, LicensePool};
use rusqlite::Connection;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Another connection on the database: each call commits one change (a borrow row in, then out).
struct OtherWriter {
    conn: Connection,
    inserted: bool,
}

impl OtherWriter {
    fn open(db: &Path) -> OtherWriter {
        let conn = Connection::open(db).expect("second connection");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        OtherWriter {
            conn,
            inserted: false,
        }
    }

    fn commit(&mut self) {
        let sql = if self.inserted {
            "DELETE FROM open_borrows WHERE id = 'bench-other'"
        } else {
            "INSERT INTO open_borrows(id, tool, user, borrowed_at, is_overage, renewed_ms)
             VALUES ('bench-other', 'ECU Development Suite', 'other', '2026-01-01T00:00:00.000000Z', 0, 1)"
        };
        self.conn.execute(sql, []).expect("other writer commits");
        self.inserted = !self.inserted;
    }
}

fn main() {
    let iters: u32 = env_or("BENCH_ITERS", 20_000);
    let http = std::env::var("BENCH_HTTP").map_or(true, |v| v != "0");
    let cases: Vec<String> = std::env::var("BENCH_CASES")
        .unwrap_or_else(|_| "memory,alone,other-writer,cycles".into())
        .split(',')
        .map(|c| c.trim().to_string())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("license-demo status read cost, {iters} reads per case, 6 tools");
    println!(
        "{:<14} {:>16} {:>10} {:>18}",
        "case", "status() ns", "re-reads", "GET status us"
    );
    for case in &cases {
        if case == "cycles" {
            let ns = runtime.block_on(cycle_cost(iters));
            println!(
                "{:<14} {:>16.0} {:>10} {:>18}",
                "cycles", ns, "-", "(ns per borrow+return)"
            );
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("status.db");
        let location = match case.as_str() {
            "memory" => DbLocation::Memory,
            "alone" | "other-writer" => DbLocation::File(db.clone()),
            other => panic!("unknown case {other}"),
        };
        let pool = LicensePool::open(&location, default_tools(), Durability::Normal).expect("pool");
        let mut other = (case == "other-writer").then(|| OtherWriter::open(&db));
        let mut spent = Duration::ZERO;
        let mut sink = 0u64;
        for _ in 0..iters {
            if let Some(other) = other.as_mut() {
                other.commit();
            }
            let start = Instant::now();
            let status = pool.status();
            spent += start.elapsed();
            sink += u64::from(status[0].borrowed);
        }
        std::hint::black_box(sink);
        let rereads = pool.resyncs();
        pool.close();
        drop(pool);
        let over_http = match (http, case.as_str()) {
            (false, _) | (true, "memory") => "-".to_string(),
            (true, _) => {
                let us = runtime.block_on(http_cost(&db, case == "other-writer", iters));
                format!("{us:.1}")
            }
        };
        println!(
            "{:<14} {:>16.0} {:>10} {:>18}",
            case,
            spent.as_nanos() as f64 / f64::from(iters),
            rereads,
            over_http
        );
    }
}

/// Mean ns of one borrow -> return through the pool (one batch each), alone on a file database.
async fn cycle_cost(iters: u32) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let location = DbLocation::File(dir.path().join("cycles.db"));
    let pool = LicensePool::open(&location, default_tools(), Durability::Normal).expect("pool");
    let start = Instant::now();
    for _ in 0..iters {
        let outcome = pool
            .borrow("ECU Development Suite", "u")
            .await
            .expect("borrow");
        let BorrowOutcome::Granted(b) = outcome else {
            panic!("not granted: {outcome:?}")
        };
        pool.return_license(&b.id).await.expect("return");
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(iters);
    assert_eq!(pool.resyncs(), 0, "alone: never re-read");
    pool.close();
    ns
}

/// Mean µs of `GET /licenses/status` against a `license-demo` process on `db`, with another
/// connection committing (untimed) before each request when `other_writer`.
async fn http_cost(db: &Path, other_writer: bool, iters: u32) -> f64 {
    let server = Server::spawn(db);
    let client = reqwest::Client::new();
    let url = format!("{}/licenses/status", server.url);
    let mut other = other_writer.then(|| OtherWriter::open(db));
    let mut spent = Duration::ZERO;
    for i in 0..iters + 200 {
        if let Some(other) = other.as_mut() {
            other.commit();
        }
        let start = Instant::now();
        let resp = client.get(&url).send().await.expect("status answered");
        let body = resp.bytes().await.expect("status body");
        // The first 200 warm the connection and the server up.
        if i >= 200 {
            spent += start.elapsed();
        }
        std::hint::black_box(body);
    }
    spent.as_secs_f64() * 1e6 / f64::from(iters)
}

/// A release `license-demo` process (killed when dropped).
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn spawn(db: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
            .args(["--bind", "127.0.0.1:0", "--log", "warn", "--db"])
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("license-demo starts");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let url = loop {
            line.clear();
            if out.read_line(&mut line).expect("stdout readable") == 0 {
                panic!("license-demo printed no URL");
            }
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                break url.to_string();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
