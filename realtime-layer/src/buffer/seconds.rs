//! Per-second, per-resource aggregates: what rates, peaks and history read instead of events.
//!
//! Sparse: only seconds with activity get a head, and only resources active in that second get an
//! entry, so memory follows activity, not wall time, and a 6 h query touches at most one entry per
//! active (second, resource) pair whatever the number of buffered events.

use std::collections::VecDeque;

/// Counts of one resource in one second (10 bytes). A count that would pass 255 opens a
/// continuation entry for the same resource and second, so busy seconds cost more entries while
/// the common case stays small; readers sum counts, take the max peak and the last end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ResSecond {
    pub(crate) res: u16,
    pub(crate) borrows: u8,
    pub(crate) overage: u8,
    pub(crate) returns: u8,
    pub(crate) failures: u8,
    /// Highest borrowed level seen in the second (including its starting level).
    pub(crate) peak: u16,
    /// Borrowed level at the end of the second (carried into idle seconds).
    pub(crate) end: u16,
}

/// One active second: where its entries start, and the pool-wide borrowed level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecondHead {
    pub(crate) sec: u32,
    /// Wrapping sequence number of the second's first entry.
    start: u32,
    /// Pool-wide levels, saturating at 65,535 like the per-resource ones (keeps a head 12 bytes).
    pub(crate) peak_total: u16,
    pub(crate) end_total: u16,
}

pub(crate) struct SecondAggregates {
    heads: VecDeque<SecondHead>,
    entries: VecDeque<ResSecond>,
    /// Wrapping sequence number of `entries[0]`.
    front_entry: u32,
    /// Per resource: (second, entry sequence) of its entry in the newest second.
    current: Vec<(u32, u32)>,
    /// Per resource: borrowed level now.
    levels: Vec<u32>,
    level_total: u64,
    /// Most entries held; past it the oldest whole seconds go (see `BufferConfig`).
    max_entries: usize,
    /// Seconds dropped early because of `max_entries`.
    pub(crate) dropped_seconds: u64,
}

#[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
/// How far back (entries) a late event looks for its resource's level before it is counted in
/// the newest second instead.
pub(crate) const LATE_SCAN: usize = 65_536;

#[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
/// What a late event counts ([`SecondAggregates::count_late`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LateKind {
    /// A borrow (and whether it was overage).
    Borrow {
        /// Overage borrow.
        overage: bool,
    },
    /// A return.
    Return,
    /// A failure.
    Failure,
}

/// Grows by a quarter when full (not by doubling): at steady state the aggregates hold about as
/// many slots as they use, which is most of the memory left after the events themselves.
/// Never past `cap` slots, so a capped deque holds no spare room beyond it.
fn grow<T>(deque: &mut VecDeque<T>, cap: usize) {
    if deque.len() == deque.capacity() {
        let room = cap.saturating_sub(deque.len()).max(1);
        deque.reserve_exact((deque.len() / 4 + 64).min(room));
    }
}

fn sat16(v: u32) -> u16 {
    v.min(u16::MAX as u32) as u16
}

/// A level one borrow up or one return down.
fn step(level: u32, borrowed: bool) -> u32 {
    if borrowed {
        level.saturating_add(1)
    } else {
        level.saturating_sub(1)
    }
}

/// Sets `res`'s level: the running total, the entry's end and peak, the second's totals.
fn write_level(
    levels: &mut [u32],
    level_total: &mut u64,
    res: u16,
    level: u32,
    entry: &mut ResSecond,
    head: Option<&mut SecondHead>,
) {
    let old = levels[res as usize];
    levels[res as usize] = level;
    *level_total = *level_total + level as u64 - old as u64;
    // Read each peak before writing next to it: reading a field back right after a narrow
    // store beside it stalls store-to-load forwarding (it was a tenth of the record path).
    let end = sat16(level);
    let peak = entry.peak.max(end);
    *entry = ResSecond {
        end,
        peak,
        ..*entry
    };
    let total = (*level_total).min(u16::MAX as u64) as u16;
    if let Some(head) = head {
        head.peak_total = head.peak_total.max(total);
        head.end_total = total;
    }
}

impl SecondAggregates {
    pub(crate) fn new(max_entries: usize) -> Self {
        SecondAggregates {
            max_entries,
            dropped_seconds: 0,
            heads: VecDeque::new(),
            entries: VecDeque::new(),
            front_entry: 0,
            current: Vec::new(),
            levels: Vec::new(),
            level_total: 0,
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.heads.capacity() * std::mem::size_of::<SecondHead>()
            + self.entries.capacity() * std::mem::size_of::<ResSecond>()
            + self.current.capacity() * 8
            + self.levels.capacity() * 4
    }

    pub(crate) fn level(&self, res: u16) -> u32 {
        self.levels.get(res as usize).copied().unwrap_or(0)
    }

    #[cfg(test)]
    pub(crate) fn level_total(&self) -> u64 {
        self.level_total
    }

    fn ensure_res(&mut self, res: u16) {
        let need = res as usize + 1;
        if self.levels.len() < need {
            self.levels.resize(need, 0);
            self.current.resize(need, (u32::MAX, 0));
        }
    }

    /// The entry of `res` in second `sec` (the newest second; older seconds are clamped to it);
    /// a new continuation entry when the current one is `full`.
    fn touch(&mut self, sec: u32, res: u16, full: impl Fn(&ResSecond) -> bool) -> usize {
        self.ensure_res(res);
        let total = self.level_total.min(u16::MAX as u64) as u16;
        let sec = match self.heads.back() {
            Some(head) if head.sec >= sec => head.sec,
            _ => {
                let start = self.front_entry.wrapping_add(self.entries.len() as u32);
                grow(&mut self.heads, usize::MAX);
                self.heads.push_back(SecondHead {
                    sec,
                    start,
                    peak_total: total,
                    end_total: total,
                });
                sec
            }
        };
        let (cur_sec, cur_seq) = self.current[res as usize];
        if cur_sec == sec {
            let index = cur_seq.wrapping_sub(self.front_entry) as usize;
            if !full(&self.entries[index]) {
                return index;
            }
        }
        let level = sat16(self.levels[res as usize]);
        let seq = self.front_entry.wrapping_add(self.entries.len() as u32);
        // One over the cap for a moment: the push comes before the oldest second goes.
        grow(&mut self.entries, self.max_entries + 1);
        self.entries.push_back(ResSecond {
            res,
            peak: level,
            end: level,
            ..ResSecond::default()
        });
        self.current[res as usize] = (sec, seq);
        if self.entries.len() > self.max_entries && self.heads.len() > 1 {
            // Over the cap: the oldest second goes whole (a half second would lie). Every
            // second has at least one entry, so this keeps the count at the cap.
            self.drop_oldest_second();
            self.dropped_seconds += 1;
        }
        self.entries.len() - 1
    }

    fn set_level_inner(&mut self, index: usize, res: u16, level: u32) {
        let entry = &mut self.entries[index];
        let head = self.heads.back_mut();
        write_level(
            &mut self.levels,
            &mut self.level_total,
            res,
            level,
            entry,
            head,
        );
    }

    /// The common case of [`count_event`](Self::count_event) in one pass: the resource already
    /// has an entry in the newest second and it has room. Does what the general path does
    /// (`touch`, the count, `set_level_inner`) without looking up the entry and the head twice.
    /// False (nothing changed) when the general path must run.
    #[inline(always)]
    fn bump_current(
        &mut self,
        sec: u32,
        res: u16,
        room: &impl Fn(&ResSecond) -> bool,
        count: &impl Fn(&mut ResSecond),
        borrowed: bool,
    ) -> bool {
        let Some(&(cur_sec, cur_seq)) = self.current.get(res as usize) else {
            return false;
        };
        let Some(head) = self.heads.back_mut() else {
            return false;
        };
        if cur_sec != head.sec || sec > head.sec {
            return false;
        }
        let index = cur_seq.wrapping_sub(self.front_entry) as usize;
        let Some(entry) = self.entries.get_mut(index).filter(|e| room(e)) else {
            return false;
        };
        count(entry);
        let level = step(self.levels[res as usize], borrowed);
        write_level(
            &mut self.levels,
            &mut self.level_total,
            res,
            level,
            entry,
            Some(head),
        );
        true
    }

    /// Counts a borrow or return of `res` in second `sec` (`room`: the entry can take one more,
    /// `count`: add it) and moves the resource's level one up or down.
    #[inline(always)]
    fn count_event(
        &mut self,
        sec: u32,
        res: u16,
        room: impl Fn(&ResSecond) -> bool,
        count: impl Fn(&mut ResSecond),
        borrowed: bool,
    ) {
        if self.bump_current(sec, res, &room, &count, borrowed) {
            return;
        }
        self.count_event_slow(sec, res, room, count, borrowed);
    }

    /// [`count_event`](Self::count_event) when the resource has no entry with room in the
    /// newest second: kept out of line so the common case inlines into the record path.
    #[inline(never)]
    fn count_event_slow(
        &mut self,
        sec: u32,
        res: u16,
        room: impl Fn(&ResSecond) -> bool,
        count: impl Fn(&mut ResSecond),
        borrowed: bool,
    ) {
        let i = self.touch(sec, res, |e| !room(e));
        count(&mut self.entries[i]);
        let level = step(self.levels[res as usize], borrowed);
        self.set_level_inner(i, res, level);
    }

    #[inline]
    pub(crate) fn on_borrow(&mut self, sec: u32, res: u16, overage: bool) {
        self.count_event(
            sec,
            res,
            |e| e.borrows < u8::MAX && (!overage || e.overage < u8::MAX),
            |e| {
                e.borrows += 1;
                e.overage += overage as u8;
            },
            true,
        );
    }

    #[inline]
    pub(crate) fn on_return(&mut self, sec: u32, res: u16) {
        self.count_event(sec, res, |e| e.returns < u8::MAX, |e| e.returns += 1, false);
    }

    pub(crate) fn on_failure(&mut self, sec: u32, res: u16) {
        let i = self.touch(sec, res, |e| e.failures == u8::MAX);
        let entry = &mut self.entries[i];
        entry.failures += 1;
    }

    /// Sets the borrowed level from an authoritative source (the app's status source).
    /// Only a change is recorded, so an idle pool adds no entries.
    pub(crate) fn set_level(&mut self, sec: u32, res: u16, level: u32) {
        self.ensure_res(res);
        if self.levels[res as usize] != level {
            let i = self.touch(sec, res, |_| false);
            self.set_level_inner(i, res, level);
        }
    }

    #[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
    /// The newest active second, if any.
    pub(crate) fn newest_sec(&self) -> Option<u32> {
        self.heads.back().map(|h| h.sec)
    }

    #[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
    /// Counts one event of `res` into the past second `sec` (older than the newest active
    /// second: a late event of a sender, see `timed.rs`), and moves the resource's level now.
    ///
    /// The counts land in `sec` (found, or inserted in time order: entries and heads after it
    /// shift by one, which costs what lies between `sec` and now); the borrowed level moves in
    /// the newest second, where the event became known: levels of past seconds are not
    /// rewritten. False (nothing changed) when the resource's level at `sec` cannot be found
    /// within [`LATE_SCAN`] entries: the caller then counts the event in the newest second.
    pub(crate) fn count_late(&mut self, sec: u32, res: u16, kind: LateKind) -> bool {
        self.ensure_res(res);
        let room = |e: &ResSecond| match kind {
            LateKind::Borrow { overage } => {
                e.borrows < u8::MAX && (!overage || e.overage < u8::MAX)
            }
            LateKind::Return => e.returns < u8::MAX,
            LateKind::Failure => e.failures < u8::MAX,
        };
        let i = self.first_head(sec);
        let index = if self.heads.get(i).is_some_and(|h| h.sec == sec) {
            let range = self.head_range(i);
            let found = range.clone().rev().find(|&j| self.entries[j].res == res);
            match found {
                Some(j) if room(&self.entries[j]) => j,
                Some(j) => {
                    let level = self.entries[j].end;
                    self.insert_entry(i, range.end, res, level)
                }
                None => {
                    let Some(level) = self.level_at(i, res) else {
                        return false;
                    };
                    self.insert_entry(i, range.end, res, level)
                }
            }
        } else {
            let Some(level) = self.level_at(i, res) else {
                return false;
            };
            let start = match self.heads.get(i) {
                Some(h) => h.start,
                None => self.front_entry.wrapping_add(self.entries.len() as u32),
            };
            let total = i.checked_sub(1).map_or(0, |p| self.heads[p].end_total);
            self.heads.insert(
                i,
                SecondHead {
                    sec,
                    start,
                    peak_total: total,
                    end_total: total,
                },
            );
            let at = start.wrapping_sub(self.front_entry) as usize;
            self.insert_entry(i, at, res, level)
        };
        let entry = &mut self.entries[index];
        match kind {
            LateKind::Borrow { overage } => {
                entry.borrows += 1;
                entry.overage += overage as u8;
            }
            LateKind::Return => entry.returns += 1,
            LateKind::Failure => entry.failures += 1,
        }
        if let (LateKind::Borrow { .. } | LateKind::Return, Some(now)) = (kind, self.newest_sec()) {
            let level = step(
                self.levels[res as usize],
                matches!(kind, LateKind::Borrow { .. }),
            );
            let i = self.touch(now, res, |_| false);
            self.set_level_inner(i, res, level);
        }
        if self.entries.len() > self.max_entries && self.heads.len() > 1 {
            self.drop_oldest_second();
            self.dropped_seconds += 1;
        }
        true
    }

    #[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
    /// The level of `res` at the end of the seconds before head `i` (where a late entry goes):
    /// the newest value known there. `None` when it lies further back than [`LATE_SCAN`] entries.
    fn level_at(&self, i: usize, res: u16) -> Option<u16> {
        let (cur_sec, _) = self.current[res as usize];
        let before = self.heads.get(i).map_or(u32::MAX, |h| h.sec);
        if cur_sec == u32::MAX {
            // Never active: at 0 ever since (unless set before the entries we hold).
            return Some(sat16(self.levels[res as usize]));
        }
        if cur_sec < before {
            // No entry of `res` since: its level has not moved.
            return Some(sat16(self.levels[res as usize]));
        }
        let end = self.heads.get(i).map_or(self.entries.len(), |h| {
            h.start.wrapping_sub(self.front_entry) as usize
        });
        let from = end.saturating_sub(LATE_SCAN);
        match (from..end).rev().find(|&j| self.entries[j].res == res) {
            Some(j) => Some(self.entries[j].end),
            None if from == 0 => Some(0),
            None => None,
        }
    }

    #[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
    /// Inserts an entry of `res` at `level` at position `at` of the entries, which belongs to
    /// head `i`: every later head and every resource's current entry move one on. Returns `at`.
    fn insert_entry(&mut self, i: usize, at: usize, res: u16, level: u16) -> usize {
        let seq = self.front_entry.wrapping_add(at as u32);
        grow(&mut self.entries, self.max_entries + 1);
        self.entries.insert(
            at,
            ResSecond {
                res,
                peak: level,
                end: level,
                ..ResSecond::default()
            },
        );
        for head in self.heads.iter_mut().skip(i + 1) {
            head.start = head.start.wrapping_add(1);
        }
        let front = self.front_entry;
        for (cur_sec, cur_seq) in self.current.iter_mut() {
            if *cur_sec != u32::MAX && cur_seq.wrapping_sub(front) >= seq.wrapping_sub(front) {
                *cur_seq = cur_seq.wrapping_add(1);
            }
        }
        at
    }

    /// Drops seconds older than `sec_min`.
    pub(crate) fn expire_before(&mut self, sec_min: u32) {
        while self.heads.front().is_some_and(|h| h.sec < sec_min) {
            self.drop_oldest_second();
        }
    }

    fn drop_oldest_second(&mut self) {
        self.heads.pop_front();
        let next_start = match self.heads.front() {
            Some(h) => h.start,
            None => self.front_entry.wrapping_add(self.entries.len() as u32),
        };
        let drop = next_start.wrapping_sub(self.front_entry) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.front_entry = next_start;
    }

    fn head_range(&self, i: usize) -> std::ops::Range<usize> {
        let start = self.heads[i].start.wrapping_sub(self.front_entry) as usize;
        let end = match self.heads.get(i + 1) {
            Some(next) => next.start.wrapping_sub(self.front_entry) as usize,
            None => self.entries.len(),
        };
        start..end
    }

    /// Index of the first head with `sec >= from`.
    fn first_head(&self, from: u32) -> usize {
        self.heads.partition_point(|h| h.sec < from)
    }

    /// Calls `f(head, entries)` for each active second in `from..=to`, oldest first.
    pub(crate) fn for_each(
        &self,
        from: u32,
        to: u32,
        mut f: impl FnMut(&SecondHead, std::collections::vec_deque::Iter<'_, ResSecond>),
    ) {
        for i in self.first_head(from)..self.heads.len() {
            let head = &self.heads[i];
            if head.sec > to {
                break;
            }
            f(head, self.entries.range(self.head_range(i)));
        }
    }

    /// Borrowed level at the end of the last active second before `sec` (for one resource or all).
    pub(crate) fn level_before(&self, sec: u32, res: Option<u16>) -> u32 {
        let mut i = self.first_head(sec);
        while i > 0 {
            i -= 1;
            match res {
                None => return self.heads[i].end_total as u32,
                Some(r) => {
                    if let Some(e) = self
                        .entries
                        .range(self.head_range(i))
                        .rev()
                        .find(|e| e.res == r)
                    {
                        return e.end as u32;
                    }
                }
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_levels_and_expiry() {
        let mut agg = SecondAggregates::new(1_000);
        agg.on_borrow(10, 1, false);
        agg.on_borrow(10, 1, true);
        agg.on_return(10, 1);
        agg.on_failure(11, 2);
        agg.on_return(12, 1);
        let mut seen = Vec::new();
        agg.for_each(0, 100, |h, e| {
            seen.push((h.sec, h.peak_total, e.copied().collect::<Vec<_>>()))
        });
        assert_eq!(seen.len(), 3);
        let first = seen[0].2[0];
        assert_eq!((first.borrows, first.overage, first.returns), (2, 1, 1));
        assert_eq!((first.peak, first.end), (2, 1));
        assert_eq!(seen[0].1, 2);
        assert_eq!(seen[1].2[0].failures, 1);
        assert_eq!(agg.level(1), 0);
        assert_eq!(agg.level_before(12, Some(1)), 1);
        agg.expire_before(11);
        let mut secs = Vec::new();
        agg.for_each(0, 100, |h, _| secs.push(h.sec));
        assert_eq!(secs, vec![11, 12]);
        agg.set_level(13, 1, 5);
        agg.set_level(13, 1, 5);
        assert_eq!(agg.level_total(), 5);
    }
}
