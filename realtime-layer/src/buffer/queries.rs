//! The read side of the store: filters resolved to interned indices, window summaries, the newest
//! events, the merged oldest-first walk behind cursors and pages, and per-second series (from the
//! aggregates, or from the events when a filter needs them).
//!
//! Separate from the write side ([`store`](super::store)) because none of it runs on the request
//! path: every function here reads [`Inner`] under the lock, after
//! [`Inner::advance`] has expired what is past retention.

use super::answers::{
    EventRecord, ResourceActivity, SecondPoint, SecondSeries, Totals, WindowSummary,
};
use super::borrow_id;
// One item per line: `filter` is also a function name elsewhere in the crate, and the import
// circle check (shared/tools/import_cycles.py) resolves a bare `super::filter` by name.
use super::filter::Cursor;
use super::filter::EventFilter;
use super::filter::Resolved;
use super::interner;
use super::ring::PackedEvent;
use super::store::{Inner, KINDS};
use crate::event::{EventKind, EXPIRED_REASON};
use std::sync::Arc;

impl Inner {
    pub(super) fn resolve(&self, filter: &EventFilter) -> Resolved {
        Resolved {
            resource: filter.resource.as_deref().map(|n| self.resources.lookup(n)),
            user: filter.user.as_deref().map(|n| self.users.lookup(n)),
            instance: filter.instance.as_deref().map(|n| {
                self.instances
                    .as_ref()
                    .and_then(|i| i.lookup(n))
                    .map(|tag| tag as u8)
            }),
        }
    }

    fn to_record(&self, kind: usize, e: &PackedEvent, tag: u8) -> EventRecord {
        let is_failure = KINDS[kind] == EventKind::Failure;
        EventRecord {
            ts_ms: self.abs(e.t),
            kind: KINDS[kind],
            resource: self.resources.name(e.resource()).clone(),
            user: self.users.name(e.user).clone(),
            borrow_id: if is_failure {
                None
            } else {
                borrow_id::decode(e.id_kind(), e.id)
            },
            overage: e.overage() && KINDS[kind] == EventKind::Borrow,
            reason: match KINDS[kind] {
                EventKind::Failure => Some(self.reasons.name(e.id as u16).clone()),
                EventKind::Return if e.overage() => Some(Arc::from(EXPIRED_REASON)),
                _ => None,
            },
            instance: self.instances.as_ref().map(|i| i.name(tag as u16).clone()),
        }
    }

    pub(super) fn summarize(
        &self,
        now: u64,
        window_secs: u32,
        filter: &EventFilter,
    ) -> WindowSummary {
        let resolved = self.resolve(filter);
        let now_sec = now / 1000;
        let from_sec = (now_sec + 1).saturating_sub(window_secs.max(1) as u64);
        let n = self.resources.len();
        let mut per_res = vec![Totals::default(); n];
        // Levels and peaks are kept per resource, for all instances together: an instance's own
        // come from its status rows (see the cluster view), so they start at 0 here.
        let per_instance = resolved.instance.is_some();
        let mut peaks: Vec<u32> = (0..n as u16)
            .map(|r| {
                if per_instance {
                    0
                } else {
                    self.seconds.level(r)
                }
            })
            .collect();
        let mut active = vec![false; n];
        if !resolved.matches_nothing() {
            if !per_instance {
                self.seconds
                    .for_each(from_sec as u32, u32::MAX, |_, entries| {
                        for e in entries {
                            let r = e.res as usize;
                            peaks[r] = peaks[r].max(e.peak as u32);
                            if !resolved.scans_events() {
                                per_res[r].add_second(e);
                            }
                        }
                    });
            }
            if resolved.scans_events() {
                let t_from = self.rel(from_sec * 1000);
                for (k, ring) in self.rings.iter().enumerate() {
                    let mut seq = ring.seq_at(t_from);
                    while let Some(e) = ring.get(seq) {
                        if resolved.accepts(e, ring.tag(seq)) {
                            per_res[e.resource() as usize].add_event(KINDS[k], e.overage());
                        }
                        seq += 1;
                    }
                }
            }
        }
        let mut totals = Totals::default();
        let mut resources = Vec::new();
        for r in 0..n {
            let t = per_res[r];
            active[r] = t != Totals::default() || self.seconds.level(r as u16) > 0;
            if let Some(Some(only)) = resolved.resource {
                if only as usize != r {
                    continue;
                }
            }
            if resolved.matches_nothing() {
                continue;
            }
            totals.borrows += t.borrows;
            totals.overage_borrows += t.overage_borrows;
            totals.returns += t.returns;
            totals.failures += t.failures;
            // `(other)` only shows when something was folded into it.
            if r == interner::OTHER as usize && !active[r] {
                continue;
            }
            resources.push(ResourceActivity {
                name: self.resources.name(r as u16).clone(),
                borrowed: if per_instance {
                    0
                } else {
                    self.seconds.level(r as u16)
                },
                peak_borrowed: peaks[r],
                totals: t,
            });
        }
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        WindowSummary { totals, resources }
    }

    pub(super) fn recent(
        &self,
        from_ms: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Vec<EventRecord> {
        let resolved = self.resolve(filter);
        if resolved.matches_nothing() {
            return Vec::new();
        }
        let t_from = self.rel(from_ms);
        // Walk the three rings backwards, always taking the newest head. Within one millisecond
        // the order is borrow, return, failure (the exact reverse of `walk`).
        let mut next: [u64; 3] = std::array::from_fn(|k| self.rings[k].end_seq());
        let mut out = Vec::new();
        while out.len() < limit {
            let mut best: Option<(usize, u32)> = None;
            for (k, (ring, &seq)) in self.rings.iter().zip(&next).enumerate() {
                if seq > ring.front_seq() {
                    if let Some(e) = ring.get(seq - 1) {
                        if e.t >= t_from && best.is_none_or(|(_, t)| e.t >= t) {
                            best = Some((k, e.t));
                        }
                    }
                }
            }
            let Some((k, _)) = best else { break };
            next[k] -= 1;
            if let Some(e) = self.rings[k].get(next[k]) {
                let tag = self.rings[k].tag(next[k]);
                if resolved.accepts(e, tag) {
                    out.push(self.to_record(k, e, tag));
                }
            }
        }
        out
    }

    /// Merged oldest-first walk from `cursor`; calls `f` for each accepted event (kind, event,
    /// instance tag).
    pub(super) fn walk(
        &self,
        cursor: Cursor,
        resolved: &Resolved,
        mut f: impl FnMut(usize, &PackedEvent, u8) -> bool,
    ) -> Cursor {
        let mut next: [u64; 3] =
            std::array::from_fn(|k| cursor.seqs[k].max(self.rings[k].front_seq()));
        loop {
            let mut best: Option<(usize, u32)> = None;
            for (k, (ring, &seq)) in self.rings.iter().zip(&next).enumerate() {
                if let Some(e) = ring.get(seq) {
                    if best.is_none_or(|(_, t)| e.t < t) {
                        best = Some((k, e.t));
                    }
                }
            }
            let Some((k, _)) = best else { break };
            let e = self.rings[k].get(next[k]).copied();
            let tag = self.rings[k].tag(next[k]);
            next[k] += 1;
            if let Some(e) = e {
                if resolved.accepts(&e, tag) && !f(k, &e, tag) {
                    break;
                }
            }
        }
        Cursor { seqs: next }
    }

    pub(super) fn events_after(
        &self,
        cursor: Cursor,
        limit: usize,
        filter: &EventFilter,
    ) -> (Vec<EventRecord>, u64, Cursor) {
        let end = Cursor {
            seqs: std::array::from_fn(|k| self.rings[k].end_seq()),
        };
        let resolved = self.resolve(filter);
        if resolved.matches_nothing() {
            return (Vec::new(), 0, end);
        }
        let mut picked: std::collections::VecDeque<(usize, PackedEvent, u8)> = Default::default();
        let mut skipped = 0u64;
        let end = self.walk(cursor, &resolved, |k, e, tag| {
            if picked.len() == limit {
                picked.pop_front();
                skipped += 1;
            }
            if limit > 0 {
                picked.push_back((k, *e, tag));
            } else {
                skipped += 1;
            }
            true
        });
        let out = picked
            .iter()
            .map(|(k, e, tag)| self.to_record(*k, e, *tag))
            .collect();
        (out, skipped, end)
    }

    pub(super) fn page(
        &self,
        cursor: Cursor,
        limit: usize,
        filter: &EventFilter,
    ) -> (Vec<EventRecord>, Cursor) {
        let resolved = self.resolve(filter);
        if resolved.matches_nothing() || limit == 0 {
            return (Vec::new(), cursor);
        }
        let mut out = Vec::new();
        // `walk` advances past each event before handing it over, so stopping after the last
        // taken one leaves the cursor exactly there.
        let end = self.walk(cursor, &resolved, |k, e, tag| {
            out.push(self.to_record(k, e, tag));
            out.len() < limit
        });
        (out, end)
    }

    pub(super) fn seconds_series(
        &self,
        from_sec: u64,
        to_sec: u64,
        resource: Option<&str>,
    ) -> SecondSeries {
        let res = match resource {
            Some(name) => match self.resources.lookup(name) {
                Some(r) => Some(r),
                None => return SecondSeries::default(),
            },
            None => None,
        };
        let from = from_sec.min(u32::MAX as u64) as u32;
        let to = to_sec.min(u32::MAX as u64) as u32;
        let mut points = Vec::new();
        self.seconds.for_each(from, to, |head, entries| {
            let mut p = SecondPoint {
                t: head.sec as u64,
                ..SecondPoint::default()
            };
            match res {
                None => {
                    for e in entries {
                        p.borrows += e.borrows as u32;
                        p.overage_borrows += e.overage as u32;
                        p.returns += e.returns as u32;
                        p.failures += e.failures as u32;
                    }
                    p.peak_borrowed = head.peak_total as u32;
                    p.end_borrowed = head.end_total as u32;
                }
                Some(r) => {
                    let mut found = false;
                    for e in entries.filter(|e| e.res == r) {
                        found = true;
                        p.borrows += e.borrows as u32;
                        p.overage_borrows += e.overage as u32;
                        p.returns += e.returns as u32;
                        p.failures += e.failures as u32;
                        p.peak_borrowed = p.peak_borrowed.max(e.peak as u32);
                        p.end_borrowed = e.end as u32;
                    }
                    if !found {
                        return;
                    }
                }
            }
            points.push(p);
        });
        SecondSeries {
            level_before: self.seconds.level_before(from, res),
            points,
        }
    }

    /// See [`EventBuffer::seconds_filtered`](super::EventBuffer::seconds_filtered): the seconds
    /// that `filter` accepts, counted from the held events themselves.
    pub(super) fn seconds_filtered(
        &self,
        from_sec: u64,
        to_sec: u64,
        filter: &EventFilter,
    ) -> SecondSeries {
        let resolved = self.resolve(filter);
        let mut series = SecondSeries::default();
        if resolved.matches_nothing() {
            return series;
        }
        let mut level: i64 = 0;
        let start = Cursor {
            seqs: std::array::from_fn(|k| self.rings[k].front_seq()),
        };
        self.walk(start, &resolved, |k, e, _| {
            let sec = self.abs(e.t) / 1000;
            if sec > to_sec {
                return false;
            }
            if sec < from_sec {
                level += match KINDS[k] {
                    EventKind::Borrow => 1,
                    EventKind::Return => -1,
                    EventKind::Failure => 0,
                };
                series.level_before = level.max(0) as u32;
                return true;
            }
            if series.points.last().is_none_or(|p| p.t != sec) {
                let carried = level.max(0) as u32;
                series.points.push(SecondPoint {
                    t: sec,
                    peak_borrowed: carried,
                    end_borrowed: carried,
                    ..SecondPoint::default()
                });
            }
            if let Some(p) = series.points.last_mut() {
                match KINDS[k] {
                    EventKind::Borrow => {
                        p.borrows += 1;
                        p.overage_borrows += e.overage() as u32;
                        level += 1;
                    }
                    EventKind::Return => {
                        p.returns += 1;
                        level -= 1;
                    }
                    EventKind::Failure => p.failures += 1,
                }
                p.end_borrowed = level.max(0) as u32;
                p.peak_borrowed = p.peak_borrowed.max(p.end_borrowed);
            }
            true
        });
        series
    }
}
