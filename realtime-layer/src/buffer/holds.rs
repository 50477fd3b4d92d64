//! Hold times: how long a borrow stays out, found by matching each return to its borrow by
//! borrow id.
//!
//! Nothing is stored twice. An open borrow (with an id) is a map entry from its key (resource,
//! id kind, id fingerprint) to the sequence number of its event in the borrow ring, whose
//! timestamp is the borrow time; the entry goes when that event leaves the ring (by the cap:
//! counted in `evicted`; or by retention: that hold is no longer measured). A return that closes
//! a borrow keeps the hold's duration in a `u32` beside the return ring (`held`, aligned with
//! the ring's sequence numbers, allocated on the first measured hold, 4 bytes per return), so
//! hold samples are bounded and expire exactly like the returns they belong to. Quantiles over
//! a window are exact: the durations of the window's returns are sorted on demand.

use super::interner::Interner;
use super::ring::EventRing;
use super::{EventBuffer, EventFilter};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Upper bounds (seconds) of the hold-time histogram buckets; a last bucket holds the rest.
pub const HOLD_BUCKETS_SECONDS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
];

/// Resource index, borrow id kind and code: what identifies an open borrow.
pub(super) type OpenKey = (u16, u8, u64);

/// `held` of a return that measured nothing (no id, or no open borrow matched it).
const NOT_MEASURED: u32 = u32::MAX;

/// Open borrows and measured holds of one buffer.
pub(crate) struct Holds {
    /// Open borrows: the sequence number of the newest borrow event of each key.
    open: HashMap<OpenKey, u64, ahash::RandomState>,
    /// Per return event from `held_front` on: the hold it closed, in ms, or [`NOT_MEASURED`].
    /// Empty until the first measured hold (buffers whose events carry no ids pay nothing).
    held: VecDeque<u32>,
    /// Sequence number (in the return ring) of `held[0]`.
    held_front: u64,
    /// Most entries `held` keeps: the return ring's cap (it grows like the ring, never past it).
    max_held: usize,
    /// Open borrows forgotten before their return because their event left the ring by the cap.
    pub(crate) evicted: u64,
    /// Returns with an id that matched no open borrow (borrowed before start, or forgotten).
    pub(crate) unmatched: u64,
}

impl Holds {
    pub(crate) fn new(max_returns: usize) -> Self {
        Holds {
            open: HashMap::with_hasher(ahash::RandomState::new()),
            held: VecDeque::new(),
            held_front: 0,
            max_held: max_returns,
            evicted: 0,
            unmatched: 0,
        }
    }

    /// Heap bytes: the open-borrow map and the durations beside the return ring.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.open.capacity() * (std::mem::size_of::<(OpenKey, u64)>() + 1)
            + self.held.capacity() * std::mem::size_of::<u32>()
    }

    /// A borrow with key `key` went out as event `seq` of the borrow ring (an earlier open borrow
    /// of the same key is superseded: its hold is measured from the newest borrow).
    pub(crate) fn on_borrow(&mut self, key: OpenKey, seq: u64) {
        self.open.insert(key, seq);
    }

    /// The return event `seq` of the return ring came at relative time `t`; `key` when it
    /// carries an id. Closes its open borrow (found in `borrows`) and keeps the hold.
    pub(crate) fn on_return(
        &mut self,
        key: Option<OpenKey>,
        seq: u64,
        t: u32,
        borrows: &EventRing,
    ) {
        let held = match key {
            None => None,
            Some(key) => match self.open.remove(&key).and_then(|b| borrows.get(b)) {
                Some(borrow) => Some(t.saturating_sub(borrow.t).min(NOT_MEASURED - 1)),
                None => {
                    self.unmatched += 1;
                    None
                }
            },
        };
        if self.held.is_empty() {
            let Some(held) = held else { return };
            self.held_front = seq;
            self.push_held(held);
            return;
        }
        // Every return after the first measured one has its slot, so slots follow sequence
        // numbers (a gap can only be returns that left the ring already).
        while self.held_front + (self.held.len() as u64) < seq {
            self.push_held(NOT_MEASURED);
        }
        self.push_held(held.unwrap_or(NOT_MEASURED));
    }

    fn push_held(&mut self, held: u32) {
        if self.held.len() == self.held.capacity() && self.held.len() < self.max_held {
            let len = self.held.len();
            self.held
                .reserve_exact(len.max(64).min(self.max_held.saturating_sub(len).max(1)));
        }
        self.held.push_back(held);
        while self.held.len() > self.max_held.max(1) {
            self.held.pop_front();
            self.held_front += 1;
        }
    }

    /// The borrow event `seq` with key `key` left the borrow ring (`by_cap`: pushed out by the
    /// cap, not expired): its borrow is no longer open, unless a newer borrow of the key is.
    pub(crate) fn on_borrow_dropped(&mut self, key: OpenKey, seq: u64, by_cap: bool) {
        if self.open.get(&key) == Some(&seq) {
            self.open.remove(&key);
            self.evicted += by_cap as u64;
        }
    }

    /// The return ring now starts at `front_seq`: durations of returns before it go too.
    pub(crate) fn on_returns_dropped(&mut self, front_seq: u64) {
        while self.held_front < front_seq && self.held.pop_front().is_some() {
            self.held_front += 1;
        }
    }

    /// The hold closed by return event `seq`, in ms (`None`: not measured, or gone).
    pub(super) fn held_ms(&self, seq: u64) -> Option<u64> {
        let i = seq.checked_sub(self.held_front)?;
        let held = *self.held.get(i as usize)?;
        (held != NOT_MEASURED).then_some(held as u64)
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
            let returns = &inner.rings[1];
            for seq in returns.seq_at(inner.rel(from_ms))..returns.end_seq() {
                if let (Some(ms), Some(e)) = (inner.holds.held_ms(seq), returns.get(seq)) {
                    if let Some(v) = held.get_mut(e.resource() as usize) {
                        v.push(ms);
                    }
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

    /// Holds measured by the returns from return-ring sequence number `after` on (resource,
    /// seconds), oldest first, at most `limit`, and the sequence number to read on from. Holds
    /// whose return already left the ring are skipped. For exporters that feed a histogram as
    /// holds end.
    pub(crate) fn holds_after(&self, after: u64, limit: usize) -> (Vec<(Arc<str>, f64)>, u64) {
        let inner = self.lock();
        let returns = &inner.rings[1];
        let mut seq = after.max(returns.front_seq());
        let mut out = Vec::new();
        while seq < returns.end_seq() && out.len() < limit {
            if let (Some(ms), Some(e)) = (inner.holds.held_ms(seq), returns.get(seq)) {
                out.push((inner.resources.name(e.resource()).clone(), secs(ms)));
            }
            seq += 1;
        }
        (out, seq)
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
        let (buf, clock) = buffer(BufferConfig::default());
        for _ in 0..10_000 {
            buf.record(&Event::borrow("a", "u").borrow_id("42"));
        }
        // One open borrow, whatever the number of its borrow events: nothing kept per borrow.
        assert_eq!(buf.lock().holds.open.len(), 1);
        clock.advance(Duration::from_millis(500));
        buf.record(&Event::returned("a", "u").borrow_id("42"));
        let h = buf.hold_times(60, &EventFilter::default());
        assert_eq!(
            (h.resources[0].count, h.resources[0].max_seconds),
            (1, Some(0.5))
        );
    }

    #[test]
    fn borrow_return_cycles_of_one_id_in_one_millisecond_stay_bounded() {
        let (buf, clock) = buffer(BufferConfig {
            max_borrows: 4,
            max_returns: 4,
            ..BufferConfig::default()
        });
        for _ in 0..10_000 {
            buf.record(&Event::borrow("a", "u").borrow_id("42"));
            buf.record(&Event::returned("a", "u").borrow_id("42"));
        }
        buf.record(&Event::borrow("a", "u").borrow_id("42"));
        {
            let inner = buf.lock();
            assert_eq!(inner.holds.open.len(), 1);
            // One duration per return still in the ring, never more.
            assert!(inner.holds.held.len() <= 4, "{}", inner.holds.held.len());
            assert_eq!(inner.holds.evicted, 0);
        }
        clock.advance(Duration::from_millis(7));
        buf.record(&Event::returned("a", "u").borrow_id("42"));
        let (holds, _) = buf.holds_after(0, 10);
        assert_eq!(holds.last().map(|h| h.1), Some(0.007));
    }

    #[test]
    fn durations_stay_aligned_with_the_return_ring() {
        let (buf, clock) = buffer(BufferConfig {
            max_borrows: 8,
            max_returns: 3,
            ..BufferConfig::default()
        });
        // Returns without ids before the first measured hold cost nothing.
        buf.record(&Event::returned("a", "u"));
        assert_eq!(buf.lock().holds.held.capacity(), 0);
        for i in 0..6u64 {
            buf.record(&Event::borrow("a", "u").borrow_id(i.to_string()));
        }
        // Interleave measured and unmeasured returns past the ring's cap of 3.
        for i in 0..6u64 {
            clock.advance(Duration::from_secs(1));
            buf.record(&Event::returned("a", "u").borrow_id(i.to_string()));
            buf.record(&Event::returned("a", "u"));
        }
        // The ring holds: return 5 (held 6 s) between two id-less returns.
        let h = buf.hold_times(600, &EventFilter::default());
        assert_eq!(
            (h.resources[0].count, h.resources[0].p50_seconds),
            (1, Some(6.0))
        );
        let inner = buf.lock();
        assert_eq!(inner.holds.held.len(), 3);
        assert_eq!(inner.holds.held_front, inner.rings[1].front_seq());
    }
}
