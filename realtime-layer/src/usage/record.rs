//! What the tier keeps per resource and period (a minute, an hour, a day): counts, levels, money
//! and the **level histogram** (per borrowed level: the time spent there, the borrows that
//! started there and the refusals that found it). Seat-seconds, time-weighted percentiles, time
//! at commit and every answer of the advisor come from the histogram, so a period's record is
//! exact whatever the order of its events.
//!
//! Plain data and merging only; encoding is `codec.rs`, accumulating events is `accumulate.rs`.

/// Milliseconds in a minute, an hour, a day.
pub(crate) const MINUTE_MS: u64 = 60_000;
pub(crate) const HOUR_MS: u64 = 3_600_000;
pub(crate) const DAY_MS: u64 = 86_400_000;

/// One borrowed level in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cell {
    /// Milliseconds spent at the level.
    pub(crate) ms: u64,
    /// Borrows that started at the level (it was the level just before them).
    pub(crate) starts: u64,
    /// Refused borrows that found the level.
    pub(crate) refusals: u64,
}

impl Cell {
    fn add(&mut self, other: &Cell) {
        self.ms += other.ms;
        self.starts += other.starts;
        self.refusals += other.refusals;
    }
}

/// Cells of consecutive levels from `base` up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LevelHist {
    pub(crate) base: u32,
    pub(crate) cells: Vec<Cell>,
}

impl LevelHist {
    /// The cell of `level`, growing the histogram down or up to it.
    pub(crate) fn cell(&mut self, level: u32) -> &mut Cell {
        if self.cells.is_empty() {
            self.base = level;
            self.cells.push(Cell::default());
        } else if level < self.base {
            let grow = (self.base - level) as usize;
            self.cells
                .splice(0..0, std::iter::repeat_n(Cell::default(), grow));
            self.base = level;
        } else if (level - self.base) as usize >= self.cells.len() {
            self.cells
                .resize((level - self.base) as usize + 1, Cell::default());
        }
        &mut self.cells[(level - self.base) as usize]
    }

    /// The cell of `level` (empty outside the histogram).
    pub(crate) fn get(&self, level: u32) -> Cell {
        level
            .checked_sub(self.base)
            .and_then(|i| self.cells.get(i as usize))
            .copied()
            .unwrap_or_default()
    }

    /// Highest level with a cell (`None` when empty).
    pub(crate) fn top(&self) -> Option<u32> {
        (!self.cells.is_empty()).then(|| self.base + self.cells.len() as u32 - 1)
    }

    /// Adds `other` cell by cell.
    pub(crate) fn add(&mut self, other: &LevelHist) {
        let Some(top) = other.top() else { return };
        self.cell(other.base);
        self.cell(top);
        let off = (other.base - self.base) as usize;
        for (i, c) in other.cells.iter().enumerate() {
            self.cells[off + i].add(c);
        }
    }

    /// Milliseconds over every level.
    pub(crate) fn total_ms(&self) -> u64 {
        self.cells.iter().map(|c| c.ms).sum()
    }

    /// Milliseconds at `level` or above.
    pub(crate) fn ms_at_or_above(&self, level: u32) -> u64 {
        let from = level.saturating_sub(self.base) as usize;
        self.cells.iter().skip(from).map(|c| c.ms).sum()
    }

    /// The integral of the level over time, in level × milliseconds.
    pub(crate) fn level_ms(&self) -> u128 {
        self.cells
            .iter()
            .enumerate()
            .map(|(i, c)| (self.base as u128 + i as u128) * c.ms as u128)
            .sum()
    }
}

/// One resource over one period. `id` 0 of a period is the pool-wide total (all resources'
/// levels added): counts and levels only, no histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) borrows: u64,
    pub(crate) overage: u64,
    pub(crate) returns: u64,
    /// Refusals by reason id, sorted by id.
    pub(crate) failures: Vec<(u32, u64)>,
    /// Lowest, highest and last borrowed level of the period.
    pub(crate) min: u32,
    pub(crate) peak: u32,
    pub(crate) end: u32,
    /// Commit and pool size in effect (when the period closed; the newest for a merge).
    pub(crate) commit: Option<u32>,
    pub(crate) total: Option<u32>,
    /// What the period's overage borrows cost, in cents of the resource's currency.
    pub(crate) overage_cents: u64,
    /// Milliseconds at or above commit (at least one unit out), and at or above the pool size.
    pub(crate) at_commit_ms: u64,
    pub(crate) exhausted_ms: u64,
    pub(crate) hist: LevelHist,
}

impl Usage {
    /// A period that starts at `level`.
    pub(crate) fn starting_at(level: u32) -> Usage {
        Usage {
            min: level,
            peak: level,
            end: level,
            ..Usage::default()
        }
    }

    /// Refusals, all reasons.
    pub(crate) fn refusals(&self) -> u64 {
        self.failures.iter().map(|(_, n)| n).sum()
    }

    pub(crate) fn add_failures(&mut self, reason: u32, n: u64) {
        match self.failures.binary_search_by_key(&reason, |(r, _)| *r) {
            Ok(i) => self.failures[i].1 += n,
            Err(i) => self.failures.insert(i, (reason, n)),
        }
    }

    /// Adds a period that follows this one (or any period, when only sums matter): counts and
    /// money add, levels take the lowest and highest, the end and the settings are the later's.
    /// (`codec::decode_merged` does the same while decoding.)
    pub(crate) fn merge(&mut self, later: &Usage) {
        self.borrows += later.borrows;
        self.overage += later.overage;
        self.returns += later.returns;
        for &(r, n) in &later.failures {
            self.add_failures(r, n);
        }
        self.min = self.min.min(later.min);
        self.peak = self.peak.max(later.peak);
        self.end = later.end;
        if later.commit.is_some() {
            self.commit = later.commit;
        }
        if later.total.is_some() {
            self.total = later.total;
        }
        self.overage_cents += later.overage_cents;
        self.at_commit_ms += later.at_commit_ms;
        self.exhausted_ms += later.exhausted_ms;
        self.hist.add(&later.hist);
    }

    /// Fills a merge of records covering part of `period_ms` up to the whole: the time no record
    /// covers was spent at level 0 (a resource has no record in a period it sat idle at 0).
    pub(crate) fn fill_to(&mut self, period_ms: u64) {
        let covered = self.hist.total_ms();
        if covered < period_ms {
            self.hist.cell(0).ms += period_ms - covered;
            self.min = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_grow_both_ways_and_merge() {
        let mut h = LevelHist::default();
        h.cell(5).ms = 10;
        h.cell(3).starts = 2;
        h.cell(7).refusals = 1;
        assert_eq!((h.base, h.cells.len(), h.top()), (3, 5, Some(7)));
        assert_eq!(h.get(5).ms, 10);
        assert_eq!(h.get(9), Cell::default());
        let mut other = LevelHist::default();
        other.cell(1).ms = 4;
        other.cell(8).ms = 6;
        h.add(&other);
        assert_eq!((h.base, h.top()), (1, Some(8)));
        assert_eq!(h.total_ms(), 20);
        assert_eq!(h.ms_at_or_above(5), 16);
        assert_eq!(h.level_ms(), 4 + 50 + 48);
    }

    #[test]
    fn merging_usage_adds_counts_and_keeps_extremes() {
        let mut a = Usage::starting_at(2);
        a.borrows = 3;
        a.add_failures(4, 1);
        a.hist.cell(2).ms = 60_000;
        let mut b = Usage::starting_at(1);
        b.peak = 6;
        b.end = 4;
        b.add_failures(4, 2);
        b.add_failures(1, 1);
        b.commit = Some(3);
        b.hist.cell(4).ms = 60_000;
        a.merge(&b);
        assert_eq!((a.min, a.peak, a.end, a.borrows), (1, 6, 4, 3));
        assert_eq!(a.failures, vec![(1, 1), (4, 3)]);
        assert_eq!((a.refusals(), a.commit), (4, Some(3)));
        a.fill_to(180_000);
        assert_eq!(
            (a.min, a.hist.get(0).ms, a.hist.total_ms()),
            (0, 60_000, 180_000)
        );
    }
}
