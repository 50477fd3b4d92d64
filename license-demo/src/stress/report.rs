//! The end-of-run summary and its text rendering.

use super::{Mode, StressConfig};
use crate::pool::ToolStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Latency percentiles in milliseconds (nearest-rank on the exact sorted samples).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Latency {
    /// Summarises samples given in microseconds.
    pub fn from_micros(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let rank = |p: f64| {
            let idx = ((p / 100.0) * n as f64).ceil() as usize;
            samples[idx.clamp(1, n) - 1] as f64 / 1000.0
        };
        Latency {
            count: n,
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: samples[n - 1] as f64 / 1000.0,
        }
    }
}

/// What a stress run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StressReport {
    /// The run's configuration.
    pub config: StressConfig,
    /// Borrow attempts made (one per operation).
    pub attempted: u64,
    /// Borrows granted.
    pub successes: u64,
    /// Failed borrows by reason (`exhausted`, `max_overage`, `transport`, `http_500`, ...).
    pub failures: BTreeMap<String, u64>,
    /// Granted borrows the server flagged as overage.
    pub overage_borrows: u64,
    /// Returns answered 200 (full cycle).
    pub returns_ok: u64,
    /// Returns that failed (full cycle).
    pub returns_failed: u64,
    /// Wall time from the first worker start to the last worker end.
    pub elapsed_secs: f64,
    /// Operations (borrow attempts, each with its return in full cycle) per second.
    pub ops_per_sec: f64,
    /// HTTP requests (borrows + returns) per second.
    pub requests_per_sec: f64,
    /// Borrow request latency.
    pub borrow_latency_ms: Latency,
    /// Return request latency (full cycle only).
    pub return_latency_ms: Option<Latency>,
    /// `/licenses/status` before the run.
    pub before: Vec<ToolStatus>,
    /// `/licenses/status` after the run.
    pub after: Vec<ToolStatus>,
}

impl StressReport {
    /// Failed borrows, all reasons together.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

fn latency_row(out: &mut String, name: &str, l: &Latency) {
    let _ = writeln!(
        out,
        "  {name:<8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}   ({} requests)",
        l.p50, l.p95, l.p99, l.max, l.count
    );
}

/// Renders the report as the human summary printed at the end of `license-demo stress`.
pub fn render(r: &StressReport) -> String {
    let c = &r.config;
    let mut out = String::new();
    let _ = writeln!(out, "Stress test against {}", c.target);
    let _ = writeln!(
        out,
        "  profile {} | {} workers x {} ops | ramp-up {:.1} s | mode {} | tool {} | rate cap {}",
        c.profile.name(),
        c.workers,
        c.ops_per_worker,
        c.ramp_up.as_secs_f64(),
        c.mode.name(),
        c.tool.as_deref().unwrap_or("random"),
        c.rate.map_or("none".to_string(), |r| format!("{r} ops/s")),
    );
    if c.credentials != super::Credentials::default() {
        let _ = writeln!(out, "  credentials: {}", c.credentials.describe());
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  ops (borrow attempts)  {:>10}", r.attempted);
    let _ = writeln!(out, "  successes              {:>10}", r.successes);
    let _ = writeln!(out, "  failures               {:>10}", r.failed());
    for (reason, n) in &r.failures {
        let _ = writeln!(out, "    {reason:<20} {n:>10}");
    }
    let _ = writeln!(out, "  overage borrows        {:>10}", r.overage_borrows);
    if c.mode == Mode::FullCycle {
        let _ = writeln!(
            out,
            "  returns ok / failed    {:>10} / {}",
            r.returns_ok, r.returns_failed
        );
    } else {
        let _ = writeln!(out, "  left borrowed          {:>10}", r.successes);
    }
    let _ = writeln!(out, "  elapsed                {:>10.2} s", r.elapsed_secs);
    let _ = writeln!(
        out,
        "  throughput             {:>10.1} ops/s ({:.1} requests/s)",
        r.ops_per_sec, r.requests_per_sec
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "  latency ms      p50      p95      p99      max");
    latency_row(&mut out, "borrow", &r.borrow_latency_ms);
    if let Some(l) = &r.return_latency_ms {
        latency_row(&mut out, "return", l);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<34} {:>5} {:>6} {:>15} {:>15} {:>14}",
        "tool", "total", "commit", "borrowed b->a", "overage b->a", "charges b->a"
    );
    for after in &r.after {
        let before = r.before.iter().find(|b| b.tool == after.tool);
        let (bb, bo, bc) = before.map_or((0, 0, 0.0), |b| {
            (b.borrowed, b.overage, b.current_overage_cost)
        });
        let _ = writeln!(
            out,
            "  {:<34} {:>5} {:>6} {:>15} {:>15} {:>14}",
            truncate(&after.tool, 34),
            after.total,
            after.commit,
            format!("{bb} -> {}", after.borrowed),
            format!("{bo} -> {}", after.overage),
            format!("{bc:.0} -> {:.0}", after.current_overage_cost),
        );
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('~');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let l = Latency::from_micros((1..=100).map(|x| x * 1000).collect());
        assert_eq!((l.p50, l.p95, l.p99, l.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Latency::from_micros(vec![]).count, 0);
        let one = Latency::from_micros(vec![2500]);
        assert_eq!((one.p50, one.p99), (2.5, 2.5));
    }
}
