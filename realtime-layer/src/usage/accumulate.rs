//! The open minute: events in, one [`Usage`] record per resource out when the minute closes.
//!
//! Pure bookkeeping (no I/O, no clock): the recorder decides when a minute closes and where the
//! records go. Per resource it keeps the borrowed level and the time of its last change; every
//! event first adds the time since then to the current level's cell, then counts itself:
//!
//! - a **borrow** starts at the current level (`starts` of that cell), then the level goes up;
//! - a **return** takes the level down (never below 0, like the live buffer);
//! - a **refusal** is counted at the level it found (`refusals` of that cell);
//! - a **level correction** (the app's status source says otherwise) moves the level without
//!   counting a borrow or a return.
//!
//! Id 0 is the pool-wide total: its level is the sum of all levels, so its peak is the peak of
//! the merged level, never a sum of peaks.

use super::record::{Usage, MINUTE_MS};

/// What the status source says of a resource: used when its minutes close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) commit: Option<u32>,
    pub(crate) total: Option<u32>,
    /// Price of one overage borrow, in cents.
    pub(crate) overage_cents: Option<u64>,
}

#[derive(Debug, Clone)]
struct Open {
    level: u32,
    /// When the level last changed (or the minute started).
    last_ms: u64,
    usage: Usage,
    /// Something happened this minute (an event or a level change).
    active: bool,
}

impl Open {
    fn new(level: u32, at_ms: u64) -> Open {
        Open {
            level,
            last_ms: at_ms,
            usage: Usage::starting_at(level),
            active: false,
        }
    }

    /// Adds the time up to `ts` to the current level (`with_hist`: not for the total).
    fn pass(&mut self, ts: u64, with_hist: bool) {
        if ts > self.last_ms {
            if with_hist {
                self.usage.hist.cell(self.level).ms += ts - self.last_ms;
            }
            self.last_ms = ts;
        }
    }

    fn set(&mut self, level: u32) {
        self.level = level;
        self.usage.min = self.usage.min.min(level);
        self.usage.peak = self.usage.peak.max(level);
        self.usage.end = level;
        self.active = true;
    }
}

/// The event kinds the accumulator counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Borrow {
        overage: bool,
    },
    Return,
    Refusal {
        reason: u32,
    },
    /// The level is now this (a correction).
    Level(u32),
}

/// The open minute of every resource.
#[derive(Debug)]
pub(crate) struct Accumulator {
    minute: u64,
    /// By resource id; index 0 is the total.
    open: Vec<Option<Open>>,
    settings: Vec<Settings>,
}

impl Accumulator {
    /// Opens minute `minute` (Unix minutes) with every level at 0.
    pub(crate) fn new(minute: u64) -> Self {
        Accumulator {
            minute,
            open: vec![Some(Open::new(0, minute * MINUTE_MS))],
            settings: Vec::new(),
        }
    }

    /// The open minute (Unix minutes).
    pub(crate) fn minute(&self) -> u64 {
        self.minute
    }

    pub(crate) fn start_ms(&self) -> u64 {
        self.minute * MINUTE_MS
    }

    pub(crate) fn end_ms(&self) -> u64 {
        self.start_ms() + MINUTE_MS
    }

    /// The level of resource `id` now.
    pub(crate) fn level(&self, id: u16) -> u32 {
        self.open
            .get(id as usize)
            .and_then(|o| o.as_ref())
            .map_or(0, |o| o.level)
    }

    pub(crate) fn set_settings(&mut self, id: u16, settings: Settings) {
        let i = id as usize;
        if self.settings.len() <= i {
            self.settings.resize(i + 1, Settings::default());
        }
        self.settings[i] = settings;
    }

    fn open_mut(&mut self, id: u16) -> &mut Open {
        let i = id as usize;
        if self.open.len() <= i {
            self.open.resize(i + 1, None);
        }
        let start = self.start_ms();
        self.open[i].get_or_insert_with(|| Open::new(0, start))
    }

    /// Applies `step` to resource `id` (not 0) at `ts`, a time within the open minute (the caller
    /// clamps).
    pub(crate) fn apply(&mut self, ts: u64, id: u16, step: Step) {
        debug_assert!(id != 0);
        let ts = ts.clamp(self.start_ms(), self.end_ms());
        let o = self.open_mut(id);
        o.pass(ts, true);
        o.active = true;
        let before = o.level;
        match step {
            Step::Borrow { overage } => {
                o.usage.hist.cell(before).starts += 1;
                o.usage.borrows += 1;
                o.usage.overage += u64::from(overage);
                o.set(before.saturating_add(1));
            }
            Step::Return => {
                o.usage.returns += 1;
                o.set(before.saturating_sub(1));
            }
            Step::Refusal { reason } => {
                o.usage.hist.cell(before).refusals += 1;
                o.usage.add_failures(reason, 1);
            }
            Step::Level(level) => o.set(level),
        }
        let after = o.level;
        let total = self.open[0].get_or_insert_with(|| Open::new(0, ts));
        total.pass(ts, false);
        total.active = true;
        match step {
            Step::Borrow { overage } => {
                total.usage.borrows += 1;
                total.usage.overage += u64::from(overage);
            }
            Step::Return => total.usage.returns += 1,
            Step::Refusal { reason } => total.usage.add_failures(reason, 1),
            Step::Level(_) => {}
        }
        if after != before {
            let level = (total.level + after).saturating_sub(before);
            total.set(level);
        }
    }

    /// True when nothing is open: no resource out, nothing happened this minute. Then any number
    /// of empty minutes can be skipped at once ([`jump`](Self::jump)).
    pub(crate) fn is_idle(&self) -> bool {
        self.open
            .iter()
            .flatten()
            .all(|o| o.level == 0 && !o.active)
    }

    /// Moves an idle accumulator to minute `minute` (later than the open one).
    pub(crate) fn jump(&mut self, minute: u64) {
        debug_assert!(self.is_idle() && minute >= self.minute);
        self.minute = minute;
        let start = self.start_ms();
        for o in self.open.iter_mut().flatten() {
            o.last_ms = start;
        }
    }

    /// Closes the open minute: the records of every resource that was out or active (ids
    /// ascending; id 0, the total, first when any other has one), and opens the next minute.
    pub(crate) fn close(&mut self) -> Vec<(u16, Usage)> {
        let end = self.end_ms();
        let mut out = Vec::new();
        for (i, slot) in self.open.iter_mut().enumerate().skip(1) {
            let Some(o) = slot else { continue };
            if o.level == 0 && !o.active {
                // Nothing to say this minute: the next one starts clean.
                o.last_ms = end;
                continue;
            }
            o.pass(end, true);
            let s = self.settings.get(i).copied().unwrap_or_default();
            let mut u = std::mem::replace(&mut o.usage, Usage::starting_at(o.level));
            u.commit = s.commit;
            u.total = s.total;
            u.overage_cents = s.overage_cents.map_or(0, |p| p.saturating_mul(u.overage));
            // Like the live capacity answer: a commit or pool of 0 counts only time with use.
            u.at_commit_ms = s.commit.map_or(0, |c| u.hist.ms_at_or_above(c.max(1)));
            u.exhausted_ms = s.total.map_or(0, |t| u.hist.ms_at_or_above(t.max(1)));
            out.push((i as u16, u));
            o.active = false;
        }
        if let Some(total) = self.open[0].as_mut() {
            total.pass(end, false);
            let u = std::mem::replace(&mut total.usage, Usage::starting_at(total.level));
            if !out.is_empty() {
                out.insert(0, (0, u));
            }
            total.active = false;
        }
        self.minute += 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 29_000_000; // a minute in 2025

    #[test]
    fn a_minute_of_borrows_returns_and_refusals() {
        let mut acc = Accumulator::new(M);
        let t0 = M * MINUTE_MS;
        acc.set_settings(
            1,
            Settings {
                commit: Some(1),
                total: Some(2),
                overage_cents: Some(500),
            },
        );
        acc.apply(t0 + 10_000, 1, Step::Borrow { overage: false });
        acc.apply(t0 + 20_000, 1, Step::Borrow { overage: true });
        acc.apply(t0 + 20_000, 1, Step::Refusal { reason: 3 });
        acc.apply(t0 + 30_000, 1, Step::Return);
        acc.apply(t0 + 40_000, 2, Step::Borrow { overage: false });
        let recs = acc.close();
        let ids: Vec<u16> = recs.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [0, 1, 2]);
        let a = &recs[1].1;
        assert_eq!(
            (a.borrows, a.overage, a.returns, a.refusals()),
            (2, 1, 1, 1)
        );
        assert_eq!((a.min, a.peak, a.end), (0, 2, 1));
        assert_eq!(a.hist.get(0).ms, 10_000);
        assert_eq!(a.hist.get(1).ms, 10_000 + 30_000);
        assert_eq!(a.hist.get(2).ms, 10_000);
        assert_eq!((a.hist.get(0).starts, a.hist.get(1).starts), (1, 1));
        assert_eq!(a.hist.get(2).refusals, 1);
        assert_eq!(
            (a.at_commit_ms, a.exhausted_ms, a.overage_cents),
            (50_000, 10_000, 500)
        );
        // The total: 1 + 1 at most at once (resource 2 borrows after resource 1's return).
        let total = &recs[0].1;
        assert_eq!((total.peak, total.end, total.borrows), (2, 2, 3));
        // The next minute carries the levels; an idle resource at level 1 still has a record.
        assert_eq!(acc.minute(), M + 1);
        let next = acc.close();
        assert_eq!(next.len(), 3);
        assert_eq!(next[1].1.hist.get(1).ms, MINUTE_MS);
        assert!(!acc.is_idle());
    }

    #[test]
    fn idle_minutes_can_be_skipped_and_corrections_move_levels() {
        let mut acc = Accumulator::new(M);
        assert!(acc.is_idle());
        assert!(acc.close().is_empty());
        acc.jump(M + 100);
        let t = (M + 100) * MINUTE_MS;
        acc.apply(t + 30_000, 4, Step::Level(3));
        assert_eq!(acc.level(4), 3);
        let recs = acc.close();
        let r = &recs[1].1;
        assert_eq!((r.borrows, r.min, r.peak), (0, 0, 3));
        assert_eq!((r.hist.get(0).ms, r.hist.get(3).ms), (30_000, 30_000));
        assert_eq!(recs[0].1.peak, 3);
    }
}
