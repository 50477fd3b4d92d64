//! The pool-sizing advisor: for each resource, what every commit level would have cost for the
//! window's observed demand, the cheapest, and the refusals each (commit, max overage) pair
//! would have caused.
//!
//! **Demand** is the window's borrow attempts, each at the borrowed level it found: the borrows
//! (at the level they started from) and the refusals (at the level that refused them), straight
//! from the level histogram. Demand above today's capacity is **censored**: a refused attempt
//! shows that someone wanted a unit, not for how long, so it counts as one attempt at the level
//! it found and nothing more. Under a pair (commit `c`, max overage `m`) an attempt that found
//! `L` borrowed is refused when `L ≥ min(total, c + m)`, an overage borrow when `c ≤ L` and not
//! refused, a borrow within commit otherwise.
//!
//! **Cost** is license-demo's model: the commit price buys the committed licenses (today's
//! commit price ÷ today's commit, per license, prorated over the window by the billing period),
//! and every borrow that starts at or above commit pays the overage price. The curve keeps
//! today's capacity (`max overage = today's capacity − c`) when today's contract allows overage,
//! so no level refuses more than today; without overage (max overage 0) a level is its own
//! capacity and only levels refusing no more than today are recommended. Pools without prices
//! get the smallest size that would have refused at most 1 % of the attempts.

use super::money::{div_round, to_cents, units};
use super::query::Merged;
use super::record::LevelHist;
use super::report::rows;
use super::UsageConfig;
use crate::status::ResourceStatus;
use serde::Serialize;

/// Most commit levels (and capacities) listed per resource; the answer is exact beyond it, only
/// the lists stop.
pub const MAX_LEVELS: u32 = 4096;

/// One commit level of a resource's cost curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitLevel {
    /// The commit.
    pub commit: u32,
    /// The max overage assumed with it (today's capacity kept; 0 without overage).
    pub max_overage: u32,
    /// Attempts that would have been overage borrows.
    pub overage_borrows: u64,
    /// Attempts that would have been refused.
    pub refusals: u64,
    /// Commit cost for the window plus overage cost (priced resources only).
    pub cost: Option<f64>,
}

/// The advice for one resource (see the module docs of `usage::advice` for the model).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceAdvice {
    /// Resource name.
    pub resource: String,
    /// Whether costs are known (the status source gives prices and a commit to divide the commit
    /// price by).
    pub priced: bool,
    /// Currency of the money fields.
    pub currency: Option<String>,
    /// Today's pool size (without a status source: one above the highest level seen).
    pub total: u32,
    /// Today's commit (0 without a status source).
    pub commit: u32,
    /// Today's max overage (`None`: up to the pool size).
    pub max_overage: Option<u32>,
    /// Today's capacity: `min(total, commit + max_overage)`.
    pub capacity: u32,
    /// Borrow attempts in the window (borrows + refusals).
    pub attempts: u64,
    /// Attempts refused in the window.
    pub refusals: u64,
    /// True when attempts were refused: demand above today's capacity is then unknown (censored)
    /// and each refused attempt counts as one attempt at the level it found.
    pub censored: bool,
    /// The plain-words version of `censored` (absent when nothing was refused).
    pub note: Option<String>,
    /// Commit price per license for the window (priced only).
    pub commit_unit_price: Option<f64>,
    /// Price of one overage borrow (priced only).
    pub overage_unit_price: Option<f64>,
    /// Cost of today's commit for the observed demand.
    pub current_cost: Option<f64>,
    /// The cheapest commit that refuses no more than today (today's when none is cheaper).
    pub recommended_commit: Option<u32>,
    /// The max overage to go with it (keeps today's capacity).
    pub recommended_max_overage: Option<u32>,
    /// Cost at the recommended commit.
    pub recommended_cost: Option<f64>,
    /// `current_cost - recommended_cost` (0 when today's commit is the cheapest).
    pub saving: Option<f64>,
    /// The smallest pool size that would have refused at most 1 % of the attempts.
    pub recommended_size: u32,
    /// The cost curve: commit levels 0..=total (at most [`MAX_LEVELS`]).
    pub levels: Vec<CommitLevel>,
    /// Refusals at each capacity 0..=total (at most [`MAX_LEVELS`]): a pair (commit `c`, max
    /// overage `m`) refuses `refusals_at_capacity[min(total, c + m)]`.
    pub refusals_at_capacity: Vec<u64>,
    /// True when `levels` and `refusals_at_capacity` stop before `total`.
    pub truncated: bool,
}

/// The advice of a window (`GET /realtime/advice`, [`UsageStore::advice`](super::UsageStore::advice)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdviceReport {
    /// Start of the window (Unix ms).
    pub start_ms: u64,
    /// End of the window, exclusive (Unix ms).
    pub end_ms: u64,
    /// The window in seconds.
    pub window_seconds: u64,
    /// The period commit prices are quoted for, in seconds.
    pub billing_period_seconds: u64,
    /// The model in one paragraph.
    pub model: &'static str,
    /// Per resource, sorted by name.
    pub resources: Vec<ResourceAdvice>,
}

/// The model, as every answer states it.
pub const MODEL: &str = "Demand is the window's borrow attempts, each at the borrowed level it \
found; demand above today's capacity is censored by refusals, so a refused attempt counts as one \
attempt at the level that refused it. Under commit c and max overage m an attempt that found L \
borrowed is refused when L >= min(total, c + m) and is an overage borrow when L >= c. Cost = c x \
(today's commit price / today's commit, prorated over the window by the billing period) + the \
overage price x overage borrows. The curve keeps today's capacity (max overage = capacity - c) \
when today's contract allows overage; the recommendation is the cheapest commit that refuses no \
more attempts than today.";

/// Attempts at or above each level: `at_or_above(l)` is what a capacity of `l` refuses.
struct Demand {
    base: u32,
    /// suffix[i]: attempts at levels >= base + i.
    suffix: Vec<u64>,
}

impl Demand {
    fn of(hist: &LevelHist) -> Demand {
        let mut suffix = vec![0u64; hist.cells.len() + 1];
        for i in (0..hist.cells.len()).rev() {
            suffix[i] = suffix[i + 1] + hist.cells[i].starts + hist.cells[i].refusals;
        }
        Demand {
            base: hist.base,
            suffix,
        }
    }

    fn at_or_above(&self, level: u32) -> u64 {
        let i = level.saturating_sub(self.base) as usize;
        self.suffix.get(i).copied().unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.suffix[0]
    }

    /// One above the highest level with an attempt (0 without attempts).
    fn end(&self) -> u32 {
        let last = self.suffix.iter().rposition(|&n| n > 0);
        last.map_or(0, |i| self.base + i as u32 + 1)
    }
}

/// Today's contract and prices of one resource.
struct Terms {
    total: u32,
    commit: u32,
    capacity: u32,
    overage_allowed: bool,
    /// (commit price cents, overage price cents, currency), when priced.
    prices: Option<(u64, u64, String)>,
    window_ms: u64,
    period_ms: u64,
}

impl Terms {
    fn cap(&self, c: u32) -> u32 {
        let cap = if self.overage_allowed {
            c.max(self.capacity)
        } else {
            c
        };
        cap.min(self.total)
    }

    fn overage_borrows(&self, d: &Demand, c: u32) -> u64 {
        let cap = self.cap(c);
        if cap > c {
            d.at_or_above(c) - d.at_or_above(cap)
        } else {
            0
        }
    }

    fn refusals(&self, d: &Demand, c: u32) -> u64 {
        d.at_or_above(self.cap(c))
    }

    /// Cost in cents (priced only).
    fn cost(&self, d: &Demand, c: u32) -> Option<u64> {
        let (commit_cents, overage_cents, _) = self.prices.as_ref()?;
        let commit_part = if self.commit == 0 {
            0
        } else {
            div_round(
                u128::from(c) * u128::from(*commit_cents) * u128::from(self.window_ms),
                u128::from(self.commit) * u128::from(self.period_ms),
            )
        };
        Some(commit_part + overage_cents * self.overage_borrows(d, c))
    }
}

fn advise(
    name: String,
    hist: &LevelHist,
    refusals: u64,
    row: Option<&ResourceStatus>,
    window_ms: u64,
    period_ms: u64,
) -> ResourceAdvice {
    let d = Demand::of(hist);
    let seen = hist.top().map_or(0, |t| t.saturating_add(1)).max(d.end());
    let total = row.map_or(seen, |r| r.total);
    let commit = row.map_or(0, |r| r.commit.min(total));
    let max_overage = row.and_then(|r| r.max_overage);
    let capacity = max_overage.map_or(total, |m| commit.saturating_add(m).min(total));
    let prices = row.and_then(|r| r.pricing.as_ref()).and_then(|p| {
        let commit_cents = to_cents(p.commit_price);
        // A commit price with nothing committed has no per-license price.
        (commit > 0 || commit_cents == 0).then(|| {
            (
                commit_cents,
                to_cents(p.overage_unit_price),
                p.currency.clone(),
            )
        })
    });
    let terms = Terms {
        total,
        commit,
        capacity,
        overage_allowed: capacity > commit,
        prices,
        window_ms,
        period_ms,
    };
    let listed = total.min(MAX_LEVELS);
    let levels: Vec<CommitLevel> = (0..=listed)
        .map(|c| CommitLevel {
            commit: c,
            max_overage: terms.cap(c) - c.min(terms.cap(c)),
            overage_borrows: terms.overage_borrows(&d, c),
            refusals: terms.refusals(&d, c),
            cost: terms.cost(&d, c).map(units),
        })
        .collect();
    let today = terms.refusals(&d, commit);
    let attempts = d.total();
    let recommended_size = (0..=d.end())
        .find(|&k| d.at_or_above(k) * 100 <= attempts)
        .unwrap_or(0);
    // Beyond the highest attempt every level costs its commit part only: the cheapest commit is
    // at most one above it, or today's.
    let mut best: Option<(u64, u32)> = None;
    if terms.prices.is_some() {
        let candidates = (0..=d.end().min(total)).chain(std::iter::once(commit));
        for c in candidates {
            if terms.refusals(&d, c) > today {
                continue;
            }
            let cost = terms.cost(&d, c).unwrap_or(0);
            let better = match best {
                None => true,
                Some((b, bc)) => {
                    cost < b || (cost == b && c.abs_diff(commit) < bc.abs_diff(commit))
                }
            };
            if better {
                best = Some((cost, c));
            }
        }
    }
    let current = terms.cost(&d, commit);
    ResourceAdvice {
        resource: name,
        priced: terms.prices.is_some(),
        currency: terms.prices.as_ref().map(|p| p.2.clone()),
        total,
        commit,
        max_overage,
        capacity,
        attempts,
        refusals,
        censored: refusals > 0,
        note: (refusals > 0).then(|| {
            format!(
                "{refusals} attempts were refused: demand above today's capacity ({capacity}) is censored, each refused attempt counts once at the level that refused it"
            )
        }),
        commit_unit_price: terms.prices.as_ref().map(|(c, _, _)| {
            if commit == 0 {
                0.0
            } else {
                units(div_round(
                    u128::from(*c) * u128::from(window_ms),
                    u128::from(commit) * u128::from(period_ms),
                ))
            }
        }),
        overage_unit_price: terms.prices.as_ref().map(|(_, o, _)| units(*o)),
        current_cost: current.map(units),
        recommended_commit: best.map(|(_, c)| c),
        recommended_max_overage: best.map(|(_, c)| terms.cap(c) - c.min(terms.cap(c))),
        recommended_cost: best.map(|(cost, _)| units(cost)),
        saving: best
            .zip(current)
            .map(|((b, _), cur)| units(cur.saturating_sub(b))),
        recommended_size,
        refusals_at_capacity: (0..=listed).map(|k| d.at_or_above(k)).collect(),
        truncated: listed < total,
        levels,
    }
}

pub(crate) fn build(m: &Merged, status: &[ResourceStatus], config: &UsageConfig) -> AdviceReport {
    let window_ms = m.end_ms - m.start_ms;
    let period_ms = config.billing_period.as_millis() as u64;
    let resources = rows(m, status)
        .into_iter()
        .map(|(name, u, row)| advise(name, &u.hist, u.refusals(), row, window_ms, period_ms))
        .collect();
    AdviceReport {
        start_ms: m.start_ms,
        end_ms: m.end_ms,
        window_seconds: window_ms / 1000,
        billing_period_seconds: period_ms / 1000,
        model: MODEL,
        resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Pricing;

    fn hist(attempts: &[(u32, u64, u64)]) -> LevelHist {
        let mut h = LevelHist::default();
        for &(level, starts, refusals) in attempts {
            let c = h.cell(level);
            c.starts += starts;
            c.refusals += refusals;
        }
        h
    }

    #[test]
    fn an_over_committed_pool_is_told_to_commit_less() {
        // Commit 8 of 12, capacity 12; attempts never found more than 5 out.
        let h = hist(&[(0, 30, 0), (3, 20, 0), (5, 4, 0)]);
        let row =
            ResourceStatus::new("cad", 12, 8, 0).with_pricing(Pricing::new("EUR", 8000.0, 500.0));
        let a = advise(
            "cad".into(),
            &h,
            0,
            Some(&row),
            30 * 86_400_000,
            30 * 86_400_000,
        );
        // Per license 1,000; commit 4 pays 4,000 + 4 overage (the level-5 attempts) x 500.
        assert_eq!(a.current_cost, Some(8000.0));
        assert_eq!(a.levels[4].cost, Some(6000.0));
        assert_eq!(a.levels[4].overage_borrows, 4);
        assert_eq!(a.levels[3].cost, Some(3000.0 + 24.0 * 500.0));
        // Commit 6 costs as little (6,000, no overage) and is closer to today's: it wins the tie.
        assert_eq!(a.levels[6].cost, Some(6000.0));
        assert_eq!(a.recommended_commit, Some(6));
        assert_eq!(a.recommended_max_overage, Some(6));
        assert_eq!(a.saving, Some(2000.0));
        assert_eq!(a.recommended_size, 6);
        assert!(!a.censored);
        assert_eq!(a.refusals_at_capacity[4], 4);
    }

    #[test]
    fn without_overage_a_level_is_its_own_capacity() {
        // Commit 10, no overage; 3 refusals at 10; otherwise at most 7 out.
        let h = hist(&[(0, 50, 0), (7, 5, 0), (10, 0, 3)]);
        let row = ResourceStatus::new("can", 10, 10, 0)
            .with_max_overage(0)
            .with_pricing(Pricing::new("EUR", 2000.0, 0.0));
        let a = advise("can".into(), &h, 3, Some(&row), 1000, 1000);
        // Commit 8 refuses what 10 refused (the attempts at 10); 7 would refuse the level-7
        // attempts too.
        assert_eq!(a.recommended_commit, Some(8));
        assert_eq!(a.recommended_max_overage, Some(0));
        assert_eq!(a.saving, Some(400.0));
        assert!(a.censored && a.note.is_some());
        assert_eq!(a.levels[8].refusals, 3);
        assert_eq!(a.levels[7].refusals, 8);
        // Unpriced: the 1 % size (58 attempts: one refusal allowed at most 0.58 -> 0).
        let bare = advise("can".into(), &h, 3, None, 1000, 1000);
        assert!(!bare.priced && bare.recommended_commit.is_none());
        assert_eq!((bare.total, bare.recommended_size), (11, 11));
    }
}
