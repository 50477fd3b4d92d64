//! The usage tier is exact: random event histories (hours long, across hour and day boundaries,
//! so minutes, hourly and daily rollups all answer) go through a real [`UsageRecorder`] into a
//! real SQLite file, and the report and the advice of random whole-minute windows are compared
//! with a brute-force replay of the events themselves: every count, every level, every
//! millisecond, to the cent and to the refusal.
#![cfg(feature = "usage")]

use proptest::prelude::*;
use realtime_layer::{Event, Pricing, ResourceStatus, UsageConfig, UsageRecorder, UsageStore};
use std::collections::BTreeMap;

const MIN: u64 = 60_000;
const DAY: u64 = 86_400_000;
/// 23:50 UTC on some day: histories cross an hour and a day boundary early on.
const T0: u64 = 20_000 * DAY + 23 * 3_600_000 + 50 * MIN;
const RESOURCES: [&str; 3] = ["alpha", "beta", "gamma"];
const REASONS: [&str; 2] = ["exhausted", "max_overage"];

#[derive(Debug, Clone)]
struct Op {
    gap_ms: u64,
    kind: u8,
    resource: usize,
    overage: bool,
    reason: usize,
}

fn op() -> impl Strategy<Value = Op> {
    let gap = prop_oneof![
        6 => 0u64..4_000,
        3 => 0u64..120_000,
        1 => 0u64..5_400_000,
    ];
    (gap, 0u8..3, 0usize..3, any::<bool>(), 0usize..2).prop_map(
        |(gap_ms, kind, resource, overage, reason)| Op {
            gap_ms,
            kind,
            resource,
            overage,
            reason,
        },
    )
}

fn status() -> Vec<ResourceStatus> {
    vec![
        ResourceStatus::new("alpha", 6, 3, 0).with_pricing(Pricing::new("EUR", 3000.0, 125.5)),
        ResourceStatus::new("beta", 4, 2, 0)
            .with_max_overage(1)
            .with_pricing(Pricing::new("USD", 999.99, 7.0)),
        // gamma has no status row: sizing advice only.
    ]
}

/// What the brute force knows of one resource over a window.
#[derive(Debug, Default, Clone)]
struct Truth {
    borrows: u64,
    overage: u64,
    returns: u64,
    refusals: BTreeMap<String, u64>,
    peak: u32,
    /// Milliseconds at each level.
    time: BTreeMap<u32, u64>,
    /// Attempts (borrows + refusals) at the level they found.
    attempts: BTreeMap<u32, u64>,
}

/// Replays `events` (time, resource, kind, overage, reason) and keeps what falls in `s..e`.
fn replay(events: &[(u64, usize, u8, bool, usize)], s: u64, e: u64) -> Vec<Truth> {
    let mut level = [0u32; 3];
    let mut last = [T0; 3];
    let mut out = vec![Truth::default(); 3];
    // Time at a level within the window, for the span `from..to`.
    let spend = |t: &mut Truth, lvl: u32, from: u64, to: u64| {
        let (a, b) = (from.max(s), to.min(e));
        if b > a {
            *t.time.entry(lvl).or_default() += b - a;
        }
    };
    for &(ts, r, kind, overage, reason) in events {
        spend(&mut out[r], level[r], last[r], ts);
        last[r] = ts;
        let inside = (s..e).contains(&ts);
        if ts <= s {
            out[r].peak = level[r];
        }
        let before = level[r];
        match kind {
            0 => {
                level[r] += 1;
                if inside {
                    out[r].borrows += 1;
                    out[r].overage += u64::from(overage);
                    *out[r].attempts.entry(before).or_default() += 1;
                }
            }
            1 => {
                level[r] = level[r].saturating_sub(1);
                if inside {
                    out[r].returns += 1;
                }
            }
            _ => {
                if inside {
                    *out[r].refusals.entry(REASONS[reason].into()).or_default() += 1;
                    *out[r].attempts.entry(before).or_default() += 1;
                }
            }
        }
        if inside {
            out[r].peak = out[r].peak.max(level[r]);
        } else if ts <= s {
            out[r].peak = level[r];
        }
    }
    for r in 0..3 {
        let lvl = level[r];
        spend(&mut out[r], lvl, last[r], e);
        if last[r] <= s {
            out[r].peak = lvl;
        }
    }
    out
}

fn cents(price: f64) -> u128 {
    (price * 100.0).round() as u128
}

fn div_round(n: u128, d: u128) -> u128 {
    (n + d / 2) / d
}

fn money(c: u128) -> f64 {
    c as f64 / 100.0
}

fn check(ops: Vec<Op>, window: (u64, u64)) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = UsageStore::open(UsageConfig::new(dir.path().join("u.db"))).unwrap();
    let mut rec = UsageRecorder::new(&store, T0).unwrap();
    let rows = status();
    rec.set_status(&rows);
    let mut t = T0;
    let mut events = Vec::new();
    for o in &ops {
        t += o.gap_ms;
        let name = RESOURCES[o.resource];
        let event = match o.kind {
            0 => Event::borrow(name, "u").overage(o.overage),
            1 => Event::returned(name, "u"),
            _ => Event::failure(name, "u", REASONS[o.reason]),
        };
        rec.record_at(t, &event).unwrap();
        events.push((t, o.resource, o.kind, o.overage, o.reason));
    }
    let end_all = (t / MIN + 2) * MIN;
    rec.advance(end_all).unwrap();
    let minutes = (end_all - T0) / MIN;
    let s = T0 + (window.0 % minutes) * MIN;
    let e = (s + (1 + window.1 % minutes) * MIN).min(end_all);
    let report = store.report(s, e, &rows).unwrap();
    let advice = store.advice(s, e, &rows).unwrap();
    prop_assert_eq!((report.start_ms, report.end_ms), (s, e));
    let truth = replay(&events, s, e);
    let period = 30 * DAY as u128;
    for (r, name) in RESOURCES.iter().enumerate() {
        let want = &truth[r];
        let active = want.borrows + want.returns + want.attempts.values().sum::<u64>() > 0
            || want.time.keys().any(|l| *l > 0);
        let got = report.resources.iter().find(|x| x.resource == *name);
        let row = rows.iter().find(|x| x.name == *name);
        if got.is_none() {
            prop_assert!(!active && row.is_none(), "{name} missing from {report:?}");
            continue;
        }
        let got = got.unwrap();
        let total_ms: u64 = want.time.values().sum();
        prop_assert_eq!(total_ms, e - s);
        prop_assert_eq!(
            (got.borrows, got.overage_borrows, got.returns),
            (want.borrows, want.overage, want.returns),
            "{}",
            name
        );
        prop_assert_eq!(&got.refusals_by_reason, &want.refusals, "{}", name);
        prop_assert_eq!(got.peak_borrowed, want.peak, "peak of {}", name);
        let seat_ms: u64 = want.time.iter().map(|(l, ms)| u64::from(*l) * ms).sum();
        prop_assert_eq!(
            (got.seat_seconds * 1000.0).round() as u64,
            seat_ms,
            "seat-ms of {}",
            name
        );
        let mut cum = 0u64;
        let p95 = want
            .time
            .iter()
            .find(|(_, ms)| {
                cum += **ms;
                cum * 100 >= 95 * total_ms
            })
            .map_or(0, |(l, _)| *l);
        prop_assert_eq!(got.p95_borrowed, p95, "p95 of {}", name);
        if let Some(row) = row {
            let at = |level: u32| -> u64 { want.time.range(level..).map(|(_, ms)| ms).sum() };
            prop_assert_eq!(
                (got.seconds_at_commit * 1000.0).round() as u64,
                at(row.commit.max(1))
            );
            prop_assert_eq!(
                (got.seconds_exhausted * 1000.0).round() as u64,
                at(row.total.max(1))
            );
            let p = row.pricing.as_ref().unwrap();
            let overage = cents(p.overage_unit_price) * u128::from(want.overage);
            let commit = div_round(cents(p.commit_price) * u128::from(e - s), period);
            prop_assert_eq!(got.overage_cost, Some(money(overage)));
            prop_assert_eq!(got.commit_cost, Some(money(commit)));
            prop_assert_eq!(got.total_cost, Some(money(commit + overage)));
        }
        // The advice, by brute force: every commit level, every attempt.
        let a = advice
            .resources
            .iter()
            .find(|x| x.resource == *name)
            .unwrap();
        let attempts: Vec<(u32, u64)> = want.attempts.iter().map(|(l, n)| (*l, *n)).collect();
        let refused_at = |k: u32| -> u64 {
            attempts
                .iter()
                .filter(|(l, _)| *l >= k)
                .map(|(_, n)| n)
                .sum()
        };
        let n_attempts: u64 = attempts.iter().map(|(_, n)| n).sum();
        prop_assert_eq!(a.attempts, n_attempts);
        let top = (want.peak + 1).max(attempts.iter().map(|(l, _)| l + 1).max().unwrap_or(0));
        let total = row.map_or(top, |x| x.total);
        prop_assert_eq!(a.total, total);
        for k in 0..=total {
            prop_assert_eq!(
                a.refusals_at_capacity[k as usize],
                refused_at(k),
                "capacity {} of {}",
                k,
                name
            );
        }
        let size = (0u32..)
            .find(|&k| refused_at(k) * 100 <= n_attempts)
            .unwrap();
        prop_assert_eq!(a.recommended_size, size);
        let Some(row) = row else {
            prop_assert!(!a.priced && a.recommended_commit.is_none());
            continue;
        };
        let p = row.pricing.as_ref().unwrap();
        let capacity = row
            .max_overage
            .map_or(row.total, |m| (row.commit + m).min(row.total));
        let allowed = capacity > row.commit;
        let cap = |c: u32| if allowed { c.max(capacity) } else { c }.min(total);
        let cost = |c: u32| -> u128 {
            let over: u64 = attempts
                .iter()
                .filter(|(l, _)| *l >= c && *l < cap(c))
                .map(|(_, n)| n)
                .sum();
            div_round(
                u128::from(c) * cents(p.commit_price) * u128::from(e - s),
                u128::from(row.commit) * period,
            ) + cents(p.overage_unit_price) * u128::from(over)
        };
        for level in &a.levels {
            prop_assert_eq!(
                level.cost,
                Some(money(cost(level.commit))),
                "cost at {} of {}",
                level.commit,
                name
            );
            prop_assert_eq!(level.refusals, refused_at(cap(level.commit)));
        }
        let today = refused_at(cap(row.commit));
        let best = (0..=total)
            .filter(|&c| refused_at(cap(c)) <= today)
            .min_by_key(|&c| (cost(c), c.abs_diff(row.commit), c))
            .unwrap();
        prop_assert_eq!(
            a.recommended_commit,
            Some(best),
            "recommendation for {}",
            name
        );
        prop_assert_eq!(a.saving, Some(money(cost(row.commit) - cost(best))));
        prop_assert_eq!(a.current_cost, Some(money(cost(row.commit))));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn report_and_advice_match_a_brute_force_replay(
        ops in prop::collection::vec(op(), 1..160),
        window in (0u64..100_000, 0u64..100_000),
    ) {
        check(ops, window)?;
    }
}

/// A window over a whole day and more: the daily rollup answers, and still to the millisecond.
#[test]
fn whole_days_answer_from_rollups_exactly() {
    let mut ops = Vec::new();
    for i in 0..400u64 {
        ops.push(Op {
            gap_ms: if i % 50 == 0 {
                3_000_000
            } else {
                17_000 + i * 37 % 5_000
            },
            kind: (i * 7 % 3) as u8,
            resource: (i % 3) as usize,
            overage: i % 5 == 0,
            reason: (i % 2) as usize,
        });
    }
    check(ops, (0, 1_000_000)).unwrap();
}
