//! `license-demo seed-usage`: a synthetic month in the usage tier, written through
//! realtime-layer's own recorder, so a new user sees the report and the advisor on first run.
//!
//! Each tool gets working-day demand (Monday to Friday, 08:00–18:00 UTC, highest early
//! afternoon; a trickle at night and on weekends), borrows held 20 to 60 minutes, and the pool's real
//! rules: a borrow at or above commit is overage, one at `commit + max_overage` is refused
//! (`max_overage`), one at `total` is refused (`exhausted`). The default catalogue's demand is set
//! so that the ECU suite runs into overage, the GreenHills IDE into its overage ceiling, and the
//! AUTOSAR tool, committed at 8, is used by a team of five: the advisor's clear case.

use crate::config::ToolSpec;
use crate::server::status_rows;
use anyhow::Context;
use realtime_layer::{Event, UsageConfig, UsageRecorder, UsageStore};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;
/// Mean hold time of a license, in minutes.
const HOLD_MINUTES: f64 = 40.0;

/// Peak demand as a share of each tool's commit, by position in the catalogue (cycled): the
/// third tool is the over-committed one.
const DEMAND: [f64; 6] = [1.8, 1.45, 0.5, 0.7, 1.15, 1.2];
/// The over-committed tool (third in the catalogue) has a team of this share of its commit
/// (5 engineers for a commit of 8): its level never goes above it.
const TEAM_SHARE: f64 = 0.625;

/// What a seeding did.
#[derive(Debug, Clone)]
pub struct SeedSummary {
    /// The tier's file.
    pub path: String,
    /// Days of history.
    pub days: u64,
    /// Borrows, returns and refusals written.
    pub events: u64,
    /// Resource-minutes written.
    pub records: u64,
    /// The file's size afterwards.
    pub disk_bytes: u64,
    /// One line per tool: the advisor's verdict over the seeded month.
    pub advice: Vec<String>,
}

impl std::fmt::Display for SeedSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Seeded {} days of usage into {}: {} events, {} resource-minutes, {} KiB on disk.",
            self.days,
            self.path,
            self.events,
            self.records,
            self.disk_bytes / 1024
        )?;
        writeln!(f, "Advisor over the seeded month:")?;
        for line in &self.advice {
            writeln!(f, "  {line}")?;
        }
        write!(
            f,
            "Start the server on the same database to see /realtime (report and advisor) and /realtime/advice."
        )
    }
}

/// Demand of the pool at `ms` as a share of its peak.
fn shape(ms: u64) -> f64 {
    let day = ms / DAY_MS;
    // 1970-01-01 was a Thursday: day 2 is a Saturday.
    let weekend = matches!(day % 7, 2 | 3);
    let hour = (ms % DAY_MS) as f64 / 3_600_000.0;
    if weekend {
        return 0.06;
    }
    if (8.0..18.0).contains(&hour) {
        let x = (hour - 8.0) / 10.0;
        0.1 + 0.9 * (std::f64::consts::PI * x).sin().powf(0.8)
    } else {
        0.04
    }
}

/// Poisson-distributed count with mean `lambda` (small means: Knuth's method).
fn poisson(rng: &mut fastrand::Rng, lambda: f64) -> u32 {
    let limit = (-lambda).exp();
    let mut p = 1.0;
    let mut k = 0;
    loop {
        p *= rng.f64();
        if p <= limit || k > 1_000 {
            return k;
        }
        k += 1;
    }
}

/// One tool's events over `start..end`: (time, kind 0/1/2, overage, reason).
fn tool_events(
    tool: &ToolSpec,
    peak: f64,
    team: u32,
    start: u64,
    end: u64,
    rng: &mut fastrand::Rng,
) -> Vec<(u64, u8, bool, &'static str)> {
    let mut out = Vec::new();
    let mut level = 0u32;
    let mut returns: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let ceiling = tool.commit.saturating_add(tool.max_overage).min(tool.total);
    let mut minute = start;
    while minute < end {
        let lambda = peak * shape(minute) / HOLD_MINUTES;
        let mut arrivals: Vec<u64> = (0..poisson(rng, lambda))
            .map(|_| minute + rng.u64(0..MINUTE_MS))
            .collect();
        arrivals.sort_unstable();
        for at in arrivals {
            while let Some(&Reverse(due)) = returns.peek() {
                if due > at {
                    break;
                }
                returns.pop();
                level -= 1;
                out.push((due, 1, false, ""));
            }
            if level >= team {
                // Everyone on the team already has a license: nobody asks.
                continue;
            }
            if level >= tool.total {
                out.push((at, 2, false, "exhausted"));
            } else if level >= ceiling {
                out.push((at, 2, false, "max_overage"));
            } else {
                out.push((at, 0, level >= tool.commit, ""));
                level += 1;
                // 20 to 60 minutes, evenly.
                let hold = HOLD_MINUTES * (0.5 + rng.f64());
                let hold_ms = (hold * MINUTE_MS as f64) as u64;
                returns.push(Reverse(at + hold_ms));
            }
        }
        minute += MINUTE_MS;
    }
    // Licenses still out at the end are returned right after it (outside the month).
    out
}

/// Writes `days` of synthetic usage for `tools` into the tier at `path`, ending at the current
/// minute. Refuses a tier that already holds usage unless `replace` (which starts it over).
pub fn seed_usage(
    path: &Path,
    tools: &[ToolSpec],
    days: u64,
    seed: u64,
    replace: bool,
) -> anyhow::Result<SeedSummary> {
    if replace {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {p:?}")),
            }
        }
    }
    let store = UsageStore::open(UsageConfig::new(path))?;
    if let Some(until) = store.closed_until_ms()? {
        anyhow::bail!(
            "the usage tier {} already holds usage (through {} ms since the epoch): pass --replace to start it over",
            path.display(),
            until
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_millis() as u64;
    let end = now / MINUTE_MS * MINUTE_MS;
    let start = end - days * DAY_MS;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut events: Vec<(u64, usize, u8, bool, &'static str)> = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let peak = f64::from(tool.commit.max(1)) * DEMAND[i % DEMAND.len()];
        let team = if i % DEMAND.len() == 2 {
            (f64::from(tool.commit) * TEAM_SHARE).round().max(1.0) as u32
        } else {
            u32::MAX
        };
        for (t, kind, overage, reason) in tool_events(tool, peak, team, start, end, &mut rng) {
            if t < end {
                events.push((t, i, kind, overage, reason));
            }
        }
    }
    events.sort_by_key(|e| e.0);
    let mut recorder = UsageRecorder::new(&store, start)?;
    let idle: Vec<(String, u32, u32, u32)> = tools
        .iter()
        .map(|t| (t.name.clone(), t.total, t.commit, 0))
        .collect();
    let rows = status_rows(tools, idle);
    recorder.set_status(&rows);
    for &(t, i, kind, overage, reason) in &events {
        let name = tools[i].name.clone();
        let event = match kind {
            0 => Event::borrow(name, "seed").overage(overage),
            1 => Event::returned(name, "seed"),
            _ => Event::failure(name, "seed", reason),
        };
        recorder.record_at(t, &event)?;
    }
    recorder.advance(end)?;
    let stats = recorder.stats();
    drop(recorder);
    let (from, to) = store.window(days * 86_400)?;
    let advice = store.advice(from, to, &rows)?;
    let lines = advice
        .resources
        .iter()
        .map(|a| match (a.recommended_commit, a.saving) {
            (Some(c), Some(s)) if c != a.commit && s > 0.0 => format!(
                "{}: commit {} -> {} would have saved {:.2} {} over {} days",
                a.resource,
                a.commit,
                c,
                s,
                a.currency.as_deref().unwrap_or(""),
                days
            ),
            (Some(_), _) => format!(
                "{}: commit {} is right for this demand",
                a.resource, a.commit
            ),
            _ => format!(
                "{}: smallest size refusing at most 1 %: {}",
                a.resource, a.recommended_size
            ),
        })
        .collect();
    Ok(SeedSummary {
        path: path.display().to_string(),
        days,
        events: events.len() as u64,
        records: stats.records_written,
        disk_bytes: store.disk_bytes()?,
        advice: lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_tools;

    #[test]
    fn a_seeded_week_has_peaks_overage_refusals_and_an_over_committed_tool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.db");
        let tools = default_tools();
        let summary = seed_usage(&path, &tools, 7, 20, false).unwrap();
        assert!(summary.events > 1_000, "{summary}");
        let store = UsageStore::open(UsageConfig::new(&path)).unwrap();
        let (from, to) = store.window(7 * 86_400).unwrap();
        let rows = status_rows(
            &tools,
            tools
                .iter()
                .map(|t| (t.name.clone(), t.total, t.commit, 0))
                .collect(),
        );
        let report = store.report(from, to, &rows).unwrap();
        let by = |name: &str| {
            report
                .resources
                .iter()
                .find(|r| r.resource == name)
                .unwrap()
        };
        assert!(by("ECU Development Suite").overage_borrows > 0);
        assert!(by("GreenHills Multi IDE")
            .refusals_by_reason
            .contains_key("max_overage"));
        let autosar = by("AUTOSAR Configuration Tool");
        assert!(autosar.peak_borrowed <= 5, "{autosar:?}");
        let advice = store.advice(from, to, &rows).unwrap();
        let a = advice
            .resources
            .iter()
            .find(|a| a.resource == "AUTOSAR Configuration Tool")
            .unwrap();
        assert!(
            a.recommended_commit.unwrap() < 8 && a.saving.unwrap() > 0.0,
            "{a:?}"
        );
        // A second seeding without --replace is refused; with it, it starts over.
        assert!(seed_usage(&path, &tools, 7, 20, false).is_err());
        assert!(seed_usage(&path, &tools, 2, 21, true).is_ok());
    }
}
