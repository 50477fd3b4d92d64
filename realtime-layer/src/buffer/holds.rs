//! Hold times: how long a borrow stays out, found by matching each return to its borrow by
//! borrow id.
//!
//! Open borrows (with an id) wait in a map keyed by resource and id fingerprint; a return with
//! the same key closes one and leaves a sample `(returned at, resource, held ms)`. Both are
//! bounded: at most `max_borrows` open borrows (the oldest is forgotten first, counted in
//! `evicted`) and `max_returns` samples, and both expire with the buffer's retention (a borrow
//! older than retention can no longer be matched: that hold is not measured). Quantiles over a
//! window are exact: the samples of the window are sorted on demand.

use super::interner::Interner;
use super::{EventBuffer, EventFilter};
use serde::Serialize;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Upper bounds (seconds) of the hold-time histogram buckets; a last bucket holds the rest.
pub const HOLD_BUCKETS_SECONDS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
];

/// Resource index, borrow id kind and code: what identifies an open borrow.
type OpenKey = (u16, u8, u64);

/// An open borrow in borrow order: its key and the number of the borrow that opened it, so an
/// entry left behind by an earlier borrow of the same key (returned, or borrowed again) is
/// recognised as stale even within the same millisecond. 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Opened {
    t: u64,
    code: u64,
    n: u32,
    res: u16,
    kind: u8,
}

impl Opened {
    fn key(&self) -> OpenKey {
        (self.res, self.kind, self.code)
    }
}

/// One measured hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HoldSample {
    /// When the return came (Unix ms).
    pub(crate) returned_ms: u64,
    /// How long the borrow was out.
    pub(crate) held_ms: u64,
    pub(crate) res: u16,
}

/// Open borrows and measured holds of one buffer.
pub(crate) struct Holds {
    /// Open borrows: when each went out and the number of the borrow that opened it.
    open: HashMap<OpenKey, (u64, u32), ahash::RandomState>,
    /// Open borrows in borrow order (stale entries, already returned or borrowed again, are
    /// skipped on pop).
    order: VecDeque<Opened>,
    /// Number of the next borrow (wraps; entries are at most `2 * max_open` apart).
    next_n: u32,
    max_open: usize,
    samples: VecDeque<HoldSample>,
    max_samples: usize,
    /// Sequence number of `samples[0]` (exporters read on from a sequence number).
    front_seq: u64,
    /// Open borrows forgotten before their return because of the cap.
    pub(crate) evicted: u64,
    /// Returns with an id that matched no open borrow (borrowed before start, or forgotten).
    pub(crate) unmatched: u64,
}

impl Holds {
    pub(crate) fn new(max_open: usize, max_samples: usize) -> Self {
        Holds {
            open: HashMap::with_hasher(ahash::RandomState::new()),
            order: VecDeque::new(),
            next_n: 0,
            max_open: max_open.max(1),
            samples: VecDeque::new(),
            max_samples: max_samples.max(1),
            front_seq: 0,
            evicted: 0,
            unmatched: 0,
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.open.capacity() * (std::mem::size_of::<(OpenKey, (u64, u32))>() + 1)
            + self.order.capacity() * std::mem::size_of::<Opened>()
            + self.samples.capacity() * std::mem::size_of::<HoldSample>()
    }

    /// A borrow with an id went out at `now_ms`.
    pub(crate) fn on_borrow(&mut self, now_ms: u64, res: u16, id_kind: u8, code: u64) {
        let key = (res, id_kind, code);
        let n = self.next_n;
        match self.open.entry(key) {
            // Already open since this very millisecond: the borrow time does not change.
            Entry::Occupied(e) if e.get().0 == now_ms => return,
            Entry::Occupied(mut e) => {
                e.insert((now_ms, n));
            }
            Entry::Vacant(e) => {
                e.insert((now_ms, n));
            }
        }
        self.next_n = n.wrapping_add(1);
        self.order.push_back(Opened {
            t: now_ms,
            code,
            n,
            res,
            kind: id_kind,
        });
        while self.open.len() > self.max_open {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.forget_if_live(&oldest) {
                self.evicted += 1;
            }
        }
        // Keep the order queue from filling with stale entries.
        if self.order.len() > 2 * self.max_open {
            let open = &self.open;
            self.order
                .retain(|o| open.get(&o.key()).is_some_and(|&(_, n)| n == o.n));
        }
    }

    /// Forgets the open borrow `entry` stands for, unless it was returned or borrowed again
    /// since; true when it was still open.
    fn forget_if_live(&mut self, entry: &Opened) -> bool {
        let key = entry.key();
        if self.open.get(&key).is_some_and(|&(_, n)| n == entry.n) {
            self.open.remove(&key);
            return true;
        }
        false
    }

    /// A return with an id came at `now_ms`: closes its borrow and keeps the hold.
    pub(crate) fn on_return(&mut self, now_ms: u64, res: u16, id_kind: u8, code: u64) {
        self.on_return_at(now_ms, now_ms, res, id_kind, code);
    }

    /// A return with an id, made at `returned_ms` (the sender's time) and stored at `stored_ms`
    /// (its place in time order, at or after `returned_ms`): the hold is measured between the
    /// sender's times, the sample is kept in stored order (windows select by `stored_ms`).
    pub(crate) fn on_return_at(
        &mut self,
        stored_ms: u64,
        returned_ms: u64,
        res: u16,
        id_kind: u8,
        code: u64,
    ) {
        let now_ms = returned_ms;
        let Some((borrowed_ms, _)) = self.open.remove(&(res, id_kind, code)) else {
            self.unmatched += 1;
            return;
        };
        if self.samples.len() == self.max_samples {
            self.samples.pop_front();
            self.front_seq += 1;
        }
        self.samples.push_back(HoldSample {
            returned_ms: stored_ms,
            held_ms: now_ms.saturating_sub(borrowed_ms),
            res,
        });
    }

    /// Forgets open borrows and samples from before `cutoff_ms`.
    pub(crate) fn expire_before(&mut self, cutoff_ms: u64) {
        while let Some(oldest) = self.order.front().copied().filter(|o| o.t < cutoff_ms) {
            self.order.pop_front();
            self.forget_if_live(&oldest);
        }
        while self
            .samples
            .front()
            .is_some_and(|s| s.returned_ms < cutoff_ms)
        {
            self.samples.pop_front();
            self.front_seq += 1;
        }
    }

    /// Samples returned at or after `from_ms`.
    fn since(&self, from_ms: u64) -> impl Iterator<Item = &HoldSample> {
        let start = self.samples.partition_point(|s| s.returned_ms < from_ms);
        self.samples.range(start..)
    }

    /// Open borrows per resource index.
    fn open_per_resource(&self, n: usize) -> Vec<u32> {
        let mut open = vec![0u32; n];
        for &(res, _, _) in self.open.keys() {
            if let Some(c) = open.get_mut(res as usize) {
                *c += 1;
            }
        }
        open
    }
}

/// Hold-time distribution of one resource over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldTimes {
    /// Resource name.
    pub resource: Arc<str>,
    /// Holds that ended (borrow returned) within the window.
    pub count: u64,
    /// Median hold, seconds (nearest rank; `None` without holds).
    pub p50_seconds: Option<f64>,
    /// 90th percentile hold, seconds.
    pub p90_seconds: Option<f64>,
    /// 99th percentile hold, seconds.
    pub p99_seconds: Option<f64>,
    /// Mean hold, seconds.
    pub mean_seconds: Option<f64>,
    /// Longest hold, seconds.
    pub max_seconds: Option<f64>,
    /// Holds per bucket of [`HOLD_BUCKETS_SECONDS`] (a hold of exactly a bound counts in that
    /// bound's bucket), plus one last bucket for longer holds.
    pub histogram: Vec<u64>,
    /// Borrows with an id still out now (their hold is not over yet).
    pub open: u32,
}

/// Hold times of every resource over a window, and how complete they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HoldSummary {
    /// The bucket bounds of every `histogram`, seconds.
    pub bucket_bounds_seconds: Vec<f64>,
    /// Per resource with holds or open borrows, sorted by name.
    pub resources: Vec<HoldTimes>,
    /// Returns with an id that matched no open borrow since start (borrowed before the process
    /// started or beyond the caps): their holds are unknown.
    pub unmatched_returns: u64,
    /// Open borrows forgotten because more than `max_borrows` were open at once.
    pub evicted_borrows: u64,
}

/// The value at quantile `q` of sorted `v` (nearest rank: the smallest value with at least
/// `q * n` values at or below it).
fn nearest_rank(v: &[u64], q: f64) -> u64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn bucket_of(held_ms: u64) -> usize {
    HOLD_BUCKETS_SECONDS
        .iter()
        .position(|b| held_ms as f64 <= b * 1000.0)
        .unwrap_or(HOLD_BUCKETS_SECONDS.len())
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn hold_times(resource: Arc<str>, mut held: Vec<u64>, open: u32) -> HoldTimes {
    held.sort_unstable();
    let mut histogram = vec![0u64; HOLD_BUCKETS_SECONDS.len() + 1];
    for &h in &held {
        histogram[bucket_of(h)] += 1;
    }
    let q = |p| (!held.is_empty()).then(|| secs(nearest_rank(&held, p)));
    HoldTimes {
        resource,
        count: held.len() as u64,
        p50_seconds: q(0.5),
        p90_seconds: q(0.9),
        p99_seconds: q(0.99),
        mean_seconds: (!held.is_empty())
            .then(|| secs(held.iter().sum::<u64>()) / held.len() as f64),
        max_seconds: held.last().map(|&m| secs(m)),
        histogram,
        open,
    }
}

fn lookup(names: &Interner, filter: &EventFilter) -> Option<Option<u16>> {
    filter.resource.as_deref().map(|n| names.lookup(n))
}

impl EventBuffer {
    /// Hold times per resource of the borrows returned in the last `window_secs` seconds (the
    /// current second included), matched by borrow id. Borrows and returns without an id are not
    /// measured. The filter's resource applies; a user filter is ignored (holds are kept per
    /// resource only).
    ///
    /// ```
    /// use realtime_layer::{BufferConfig, Event, EventBuffer, ManualClock};
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let buffer = EventBuffer::new(BufferConfig::default(), Arc::new(clock.clone())).unwrap();
    /// buffer.record(&Event::borrow("seat", "ann").borrow_id("7"));
    /// clock.advance(Duration::from_secs(90));
    /// buffer.record(&Event::returned("seat", "ann").borrow_id("7"));
    /// let holds = buffer.hold_times(60, &Default::default());
    /// assert_eq!(holds.resources[0].p50_seconds, Some(90.0));
    /// ```
    pub fn hold_times(&self, window_secs: u32, filter: &EventFilter) -> HoldSummary {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let from_ms = (now / 1000 + 1).saturating_sub(window_secs.max(1) as u64) * 1000;
        let only = lookup(&inner.resources, filter);
        let n = inner.resources.len();
        let mut held: Vec<Vec<u64>> = vec![Vec::new(); n];
        if only != Some(None) {
            for s in inner.holds.since(from_ms) {
                if let Some(v) = held.get_mut(s.res as usize) {
                    v.push(s.held_ms);
                }
            }
        }
        let open = inner.holds.open_per_resource(n);
        let mut resources: Vec<HoldTimes> = held
            .into_iter()
            .enumerate()
            .filter(|(r, v)| {
                only.is_none_or(|o| o == Some(*r as u16)) && (!v.is_empty() || open[*r] > 0)
            })
            .map(|(r, v)| hold_times(inner.resources.name(r as u16).clone(), v, open[r]))
            .collect();
        resources.sort_by(|a, b| a.resource.cmp(&b.resource));
        HoldSummary {
            bucket_bounds_seconds: HOLD_BUCKETS_SECONDS.to_vec(),
            resources,
            unmatched_returns: inner.holds.unmatched,
            evicted_borrows: inner.holds.evicted,
        }
    }

    /// Holds measured after sequence number `after` (resource, seconds), oldest first, at most
    /// `limit`, and the sequence number to read on from. Holds already dropped from the bounded
    /// store are skipped. For exporters that feed a histogram as holds end.
    pub(crate) fn holds_after(&self, after: u64, limit: usize) -> (Vec<(Arc<str>, f64)>, u64) {
        let inner = self.lock();
        let holds = &inner.holds;
        let start = after.max(holds.front_seq);
        let skip = (start - holds.front_seq) as usize;
        let out: Vec<(Arc<str>, f64)> = holds
            .samples
            .iter()
            .skip(skip)
            .take(limit)
            .map(|s| (inner.resources.name(s.res).clone(), secs(s.held_ms)))
            .collect();
        let next = start + out.len() as u64;
        (out, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::BufferConfig;
    use crate::clock::ManualClock;
    use crate::event::Event;
    use std::time::Duration;

    const T0: u64 = 1_800_000_000_000;

    fn buffer(config: BufferConfig) -> (EventBuffer, ManualClock) {
        let clock = ManualClock::new(T0);
        (
            EventBuffer::new(config, Arc::new(clock.clone())).unwrap(),
            clock,
        )
    }

    #[test]
    fn returns_match_borrows_by_id_and_quantiles_are_exact() {
        let (buf, clock) = buffer(BufferConfig::default());
        // 10 borrows of "a", ids 1..=10, all at T0; id i comes back after i * 10 s.
        for i in 1..=10u64 {
            buf.record(&Event::borrow("a", "u").borrow_id(i.to_string()));
        }
        buf.record(&Event::borrow("b", "u").borrow_id("x-1"));
        for i in 1..=10u64 {
            clock.set(T0 + i * 10_000);
            buf.record(&Event::returned("a", "u").borrow_id(i.to_string()));
        }
        // A return without a borrow, and one without an id: neither is a hold.
        buf.record(&Event::returned("a", "u").borrow_id("99"));
        buf.record(&Event::returned("a", "u"));

        let all = buf.hold_times(3600, &EventFilter::default());
        assert_eq!(all.unmatched_returns, 1);
        assert_eq!(all.resources.len(), 2);
        let a = &all.resources[0];
        assert_eq!(&*a.resource, "a");
        assert_eq!(a.count, 10);
        assert_eq!(a.p50_seconds, Some(50.0));
        assert_eq!(a.p90_seconds, Some(90.0));
        assert_eq!(a.p99_seconds, Some(100.0));
        assert_eq!(a.mean_seconds, Some(55.0));
        assert_eq!(a.max_seconds, Some(100.0));
        assert_eq!(a.open, 0);
        // Buckets: ≤1 s, ≤5, ≤15 (10 s), ≤30 (20, 30), ≤60 (40..60), ≤300 (70..100).
        assert_eq!(a.histogram, vec![0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0]);
        let b = &all.resources[1];
        assert_eq!((b.count, b.open, b.p50_seconds), (0, 1, None));

        // The last 30 s (returns at 80, 90, 100 s): the window counts by return time.
        let recent = buf.hold_times(30, &EventFilter::default());
        assert_eq!(recent.resources[0].count, 3);
        assert_eq!(recent.resources[0].p50_seconds, Some(90.0));

        let only_b = buf.hold_times(
            3600,
            &EventFilter {
                resource: Some("b".into()),
                user: None,
                ..EventFilter::default()
            },
        );
        assert_eq!(only_b.resources.len(), 1);
        assert_eq!(&*only_b.resources[0].resource, "b");
        let unknown = buf.hold_times(
            3600,
            &EventFilter {
                resource: Some("nope".into()),
                user: None,
                ..EventFilter::default()
            },
        );
        assert!(unknown.resources.is_empty());
    }

    #[test]
    fn open_borrows_and_samples_are_bounded_and_expire() {
        let config = BufferConfig {
            max_borrows: 3,
            max_returns: 2,
            retention: Duration::from_secs(600),
            ..BufferConfig::default()
        };
        let (buf, clock) = buffer(config);
        for i in 0..5u64 {
            buf.record(&Event::borrow("a", "u").borrow_id(i.to_string()));
        }
        // Ids 0 and 1 were forgotten (cap 3): their returns are unmatched.
        clock.advance(Duration::from_secs(2));
        for i in 0..5u64 {
            buf.record(&Event::returned("a", "u").borrow_id(i.to_string()));
        }
        let h = buf.hold_times(600, &EventFilter::default());
        assert_eq!((h.evicted_borrows, h.unmatched_returns), (2, 2));
        // Three matched, two samples kept.
        assert_eq!(h.resources[0].count, 2);
        let (exported, next) = buf.holds_after(0, 10);
        assert_eq!(exported.len(), 2);
        assert_eq!(exported[0].1, 2.0);
        assert_eq!(buf.holds_after(next, 10).0.len(), 0);

        // A borrow older than retention can no longer be matched.
        buf.record(&Event::borrow("a", "u").borrow_id("late"));
        clock.advance(Duration::from_secs(601));
        buf.record(&Event::returned("a", "u").borrow_id("late"));
        let h = buf.hold_times(600, &EventFilter::default());
        assert!(h.resources.is_empty(), "{h:?}");
        assert_eq!(h.unmatched_returns, 3);
    }

    #[test]
    fn the_same_id_borrowed_again_in_one_millisecond_keeps_one_entry() {
        let mut holds = Holds::new(4, 4);
        for _ in 0..10_000 {
            holds.on_borrow(T0, 1, 1, 42);
        }
        // One open borrow, one queue entry: no growth, no scan per borrow.
        assert_eq!((holds.open.len(), holds.order.len()), (1, 1));
        holds.on_return(T0 + 500, 1, 1, 42);
        assert_eq!(holds.samples.len(), 1);
        assert_eq!(holds.samples[0].held_ms, 500);
    }

    #[test]
    fn borrow_return_cycles_of_one_id_in_one_millisecond_stay_bounded() {
        let mut holds = Holds::new(4, 4);
        for _ in 0..10_000 {
            holds.on_borrow(T0, 1, 1, 42);
            holds.on_return(T0, 1, 1, 42);
        }
        holds.on_borrow(T0, 1, 1, 42);
        // Entries of returned borrows are stale even at the same millisecond: compacted at
        // twice the cap, and none of them is taken for the borrow still open.
        assert_eq!(holds.open.len(), 1);
        assert!(holds.order.len() <= 8, "{}", holds.order.len());
        assert_eq!(holds.evicted, 0);
        holds.on_return(T0 + 7, 1, 1, 42);
        assert_eq!(holds.samples.back().map(|s| s.held_ms), Some(7));
    }
}
