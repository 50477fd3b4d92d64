//! The store behind the buffer's lock ([`Inner`]) and its write side: construction, the time base
//! and its rebasing, expiry ([`Inner::advance`]), recording an event ([`Inner::record`]: names
//! interned, one ring push, the per-second aggregates, hold tracking and lifetime counters), and
//! what it holds (stats, memory, lifetime totals).
//!
//! Separate from the read side ([`queries`](super::queries)) because this is the hot path every
//! captured event goes through; the readers only need the fields and the time conversions.

use super::answers::{BufferStats, LifetimeTotals, MemoryBreakdown};
use super::borrow_id;
use super::config::BufferConfig;
use super::holds::{Holds, OpenKey};
use super::interner::Interner;
use super::ring::{EventRing, PackedEvent};
use super::seconds::SecondAggregates;
use super::static_names::StaticNames;
use crate::event::{Event, EventKind, EXPIRED_REASON};
use std::collections::HashMap;

/// The kind of the events in each ring (`rings[k]` holds `KINDS[k]`).
pub(super) const KINDS: [EventKind; 3] = [EventKind::Borrow, EventKind::Return, EventKind::Failure];

/// Timestamps are stored as u32 milliseconds from a base that moves forward before they overflow.
const REBASE_AFTER_MS: u64 = 1 << 31;

/// How long recording may go without running expiry (readers always run it first).
const LAZY_EXPIRY_MS: u64 = 10;

/// The open-borrow key of a borrow event with an id.
fn open_key(e: &PackedEvent) -> Option<OpenKey> {
    (e.id_kind() != borrow_id::NONE).then_some((e.resource(), e.id_kind(), e.id))
}

/// Everything behind the buffer's lock.
pub(super) struct Inner {
    pub(super) config: BufferConfig,
    pub(super) retention_ms: u64,
    base_ms: u64,
    pub(super) last_t: u32,
    /// The `now` of the last [`Inner::advance`]: a second call within the same millisecond
    /// (bursts) has nothing left to expire and returns at once.
    last_now: u64,
    pub(super) rings: [EventRing; 3],
    pub(super) seconds: SecondAggregates,
    pub(super) users: Interner,
    pub(super) resources: Interner,
    pub(super) reasons: Interner,
    /// Instance names of a cluster buffer (`None` in a local buffer, whose rings are untagged).
    pub(super) instances: Option<Interner>,
    /// Newest relative time given to a stored event (events from other instances arrive a little
    /// out of order; they are stamped no earlier than this so every ring stays time-ordered).
    pub(super) last_insert_t: u32,
    /// Fast paths of `resources` and `users` for `&'static str` names.
    static_resources: StaticNames,
    static_users: StaticNames,
    pub(super) folded_instances: u64,
    /// Since start, per resource: borrows, overage borrows, returns (for counters).
    pub(super) lifetime: Vec<[u64; 3]>,
    /// Since start, per (resource, reason): failures.
    pub(super) lifetime_failures: HashMap<(u16, u16), u64, ahash::RandomState>,
    /// Open borrows by id and measured hold times.
    pub(super) holds: Holds,
    /// The capture queue's swap partner (see [`EventBuffer::lock`](super::EventBuffer::lock)).
    pub(super) applying: Vec<(u64, Event)>,
}

impl Inner {
    /// An empty store with `config`'s limits (validated already), its time base at `now`.
    /// `max_instances` makes a cluster view's store, whose events remember which of at most that
    /// many instances recorded them; `applying` is the capture queue's swap partner, allocated
    /// whole up front like the queue.
    pub(super) fn new(
        config: BufferConfig,
        now: u64,
        max_instances: Option<usize>,
        applying: Vec<(u64, Event)>,
    ) -> Self {
        let tagged = max_instances.is_some();
        let ring = |cap| {
            if tagged {
                EventRing::tagged(cap)
            } else {
                EventRing::new(cap)
            }
        };
        let retention_ms = config.retention.as_millis() as u64;
        Inner {
            retention_ms,
            // A cluster view also stores events older than itself (backfill), so its time base
            // starts a retention earlier.
            base_ms: if tagged {
                now.saturating_sub(retention_ms)
            } else {
                now
            },
            last_t: 0,
            last_now: 0,
            rings: [
                ring(config.max_borrows),
                ring(config.max_returns),
                ring(config.max_failures),
            ],
            seconds: SecondAggregates::new(config.max_second_entries),
            users: Interner::reclaiming(config.max_users),
            resources: Interner::new(config.max_resources),
            reasons: Interner::new(config.max_reasons),
            instances: max_instances.map(Interner::new),
            last_insert_t: 0,
            static_resources: StaticNames::new(),
            static_users: StaticNames::new(),
            folded_instances: 0,
            lifetime: Vec::new(),
            lifetime_failures: HashMap::with_hasher(ahash::RandomState::new()),
            holds: Holds::new(config.max_returns),
            applying,
            config,
        }
    }

    /// Moves the time base of an empty store a retention back, so events older than the store
    /// (a cluster view's backfill, a sender's late batch) keep their own times.
    pub(super) fn base_a_retention_back(&mut self) {
        debug_assert!(self.rings.iter().all(|r| r.len() == 0));
        self.base_ms = self.base_ms.saturating_sub(self.retention_ms);
    }

    pub(super) fn rel(&self, abs_ms: u64) -> u32 {
        abs_ms.saturating_sub(self.base_ms).min(u32::MAX as u64) as u32
    }

    pub(super) fn abs(&self, t: u32) -> u64 {
        self.base_ms + t as u64
    }

    pub(super) fn intern_resource(&mut self, name: &str) -> u16 {
        self.resources.intern(name)
    }

    /// Moves time to `now`: expires old events and seconds, and rebases timestamps when needed.
    /// Returns the (monotonic) relative time of `now`.
    pub(super) fn advance(&mut self, now: u64) -> u32 {
        if now == self.last_now {
            return self.last_t;
        }
        self.last_now = now;
        let cutoff = now.saturating_sub(self.retention_ms);
        if now.saturating_sub(self.base_ms) >= REBASE_AFTER_MS {
            let new_base = cutoff.max(self.base_ms);
            let delta = (new_base - self.base_ms).min(u32::MAX as u64) as u32;
            let t_min = self.rel(cutoff);
            for k in 0..3 {
                self.expire_ring(k, t_min);
                self.rings[k].rebase(delta);
            }
            self.last_t = self.last_t.saturating_sub(delta);
            self.last_insert_t = self.last_insert_t.saturating_sub(delta);
            self.base_ms = new_base;
        }
        let t_min = self.rel(cutoff);
        if cutoff > self.base_ms {
            for k in 0..3 {
                self.expire_ring(k, t_min);
            }
        }
        // A second goes as soon as its start is past retention (never kept longer than events).
        self.seconds.expire_before(cutoff.div_ceil(1000) as u32);
        let t = self.rel(now).max(self.last_t);
        self.last_t = t;
        t
    }

    /// The relative time of an event recorded at `now`. Expiry may lag up to
    /// [`LAZY_EXPIRY_MS`] here: every reader calls [`advance`](Self::advance) in full first, so
    /// no answer ever includes an expired event, and recording skips most of the expiry checks.
    fn record_time(&mut self, now: u64) -> u32 {
        if now >= self.last_now && now - self.last_now < LAZY_EXPIRY_MS {
            let t = self.rel(now).max(self.last_t);
            self.last_t = t;
            return t;
        }
        self.advance(now)
    }

    /// Records one event at `now` (see [`record_one`](Self::record_one)).
    pub(super) fn record(&mut self, now: u64, event: &Event) {
        self.record_one(now, event);
    }

    /// Records captured events in order, each at its captured time, and drops them (`batch`
    /// is left empty, its capacity kept): the capture queue's apply loop, with the record path
    /// inlined into it.
    pub(super) fn record_batch(&mut self, batch: &mut Vec<(u64, Event)>) {
        for (now, event) in batch.drain(..) {
            self.record_one(now, &event);
        }
    }

    /// Names interned, one ring push, the per-second aggregates, hold tracking and lifetime
    /// counters.
    #[inline(always)]
    fn record_one(&mut self, now: u64, event: &Event) {
        let t = self.record_time(now);
        self.last_insert_t = t;
        let sec = (self.abs(t) / 1000) as u32;
        // Folded names are counted by the interners themselves (`folded`).
        let res = self
            .static_resources
            .intern(event.resource_name(), &mut self.resources);
        // User names are reclaimed (their indices are reused): the cache checks the index's
        // generation, so a stale entry is never handed out.
        let user = self.static_users.intern(event.user_name(), &mut self.users);
        if self.lifetime.len() <= res as usize {
            self.lifetime.resize(res as usize + 1, [0; 3]);
        }
        match event.kind() {
            EventKind::Borrow => {
                let (kind, code) = event
                    .borrow_id_str()
                    .map_or((borrow_id::NONE, 0), borrow_id::encode);
                let overage = event.is_overage();
                self.push_event(0, PackedEvent::new(t, res, user, overage, kind, code), 0);
                if kind != borrow_id::NONE {
                    let seq = self.rings[0].end_seq() - 1;
                    self.holds.on_borrow((res, kind, code), seq);
                }
                self.seconds.on_borrow(sec, res, overage);
                self.lifetime[res as usize][0] += 1;
                self.lifetime[res as usize][1] += overage as u64;
            }
            EventKind::Return => {
                let (kind, code) = event
                    .borrow_id_str()
                    .map_or((borrow_id::NONE, 0), borrow_id::encode);
                // Returns never carry overage: their flag bit marks an expiry instead.
                let expired = event.reason() == Some(EXPIRED_REASON);
                self.push_event(1, PackedEvent::new(t, res, user, expired, kind, code), 0);
                let key = (kind != borrow_id::NONE).then_some((res, kind, code));
                let seq = self.rings[1].end_seq() - 1;
                self.holds.on_return(key, seq, t, &self.rings[0]);
                self.seconds.on_return(sec, res);
                self.lifetime[res as usize][2] += 1;
            }
            EventKind::Failure => {
                let why = self.reasons.intern(event.reason().unwrap_or("unknown"));
                self.push_event(2, PackedEvent::new(t, res, user, false, 0, why as u64), 0);
                self.seconds.on_failure(sec, res);
                *self.lifetime_failures.entry((res, why)).or_insert(0) += 1;
            }
        }
    }

    /// Appends to ring `k`; when the cap drops the oldest event, releases its user name and its
    /// hold tracking.
    #[inline(always)]
    pub(super) fn push_event(&mut self, k: usize, event: PackedEvent, tag: u8) {
        let ring = &mut self.rings[k];
        // Only a full ring drops its oldest event (a ring of cap 0 holds none to drop).
        let evicted = ring
            .is_full()
            .then(|| (ring.front_seq(), ring.front().copied()));
        ring.push_tagged(event, tag);
        if let Some((front_seq, Some(old))) = evicted {
            self.dropped(k, front_seq, &old, true);
        }
    }

    /// Drops ring `k`'s events older than `t_min`, releasing what each held.
    fn expire_ring(&mut self, k: usize, t_min: u32) {
        let mut seq = self.rings[k].front_seq();
        while let Some(e) = self.rings[k].get(seq).copied().filter(|e| e.t < t_min) {
            self.dropped(k, seq, &e, false);
            seq += 1;
        }
        self.rings[k].expire_before(t_min);
        if k == 1 {
            self.holds.on_returns_dropped(self.rings[1].front_seq());
        }
    }

    /// Event `seq` of ring `k` leaves (`by_cap`: pushed out by the cap, else expired): its user
    /// name is released, a borrow stops being open, a return's hold goes with it.
    fn dropped(&mut self, k: usize, seq: u64, e: &PackedEvent, by_cap: bool) {
        self.users.release(e.user);
        match k {
            0 => {
                if let Some(key) = open_key(e) {
                    self.holds.on_borrow_dropped(key, seq, by_cap);
                }
            }
            1 => self.holds.on_returns_dropped(seq + 1),
            _ => {}
        }
    }

    pub(super) fn stats(&self) -> BufferStats {
        let counts: [u64; 3] = std::array::from_fn(|k| self.rings[k].len() as u64);
        let oldest = self
            .rings
            .iter()
            .filter_map(|r| r.front().map(|e| self.abs(e.t)))
            .min();
        let memory = MemoryBreakdown {
            rings: self.rings.iter().map(|r| r.capacity_bytes()).sum::<usize>() as u64,
            aggregates: self.seconds.heap_bytes() as u64,
            names: (self.users.heap_bytes()
                + self.resources.heap_bytes()
                + self.reasons.heap_bytes()
                + self.instances.as_ref().map_or(0, Interner::heap_bytes)
                + self.static_resources.heap_bytes()
                + self.static_users.heap_bytes()) as u64,
            holds: self.holds.heap_bytes() as u64,
            // The capture queue belongs to `EventBuffer`, which adds it.
            capture_queue: 0,
            counters: (self.lifetime.capacity() * 24 + self.lifetime_failures.capacity() * 16)
                as u64,
        };
        BufferStats {
            total_events: counts.iter().sum(),
            borrow_count: counts[0],
            return_count: counts[1],
            failure_count: counts[2],
            oldest_event_ms: oldest,
            folded_names: self.users.folded + self.resources.folded,
            folded_users: self.users.folded,
            folded_resources: self.resources.folded,
            retention_ms: self.retention_ms,
            memory_bytes: memory.total(),
            memory,
            aggregates_dropped_seconds: self.seconds.dropped_seconds,
        }
    }

    /// See [`EventBuffer::lifetime_totals`](super::EventBuffer::lifetime_totals).
    pub(super) fn lifetime_totals(&self) -> LifetimeTotals {
        let resources = self
            .lifetime
            .iter()
            .enumerate()
            .filter(|(_, c)| c.iter().any(|v| *v > 0))
            .map(|(i, c)| (self.resources.name(i as u16).clone(), c[0], c[1], c[2]))
            .collect();
        let failures = self
            .lifetime_failures
            .iter()
            .map(|(&(r, why), &n)| {
                (
                    self.resources.name(r).clone(),
                    self.reasons.name(why).clone(),
                    n,
                )
            })
            .collect();
        LifetimeTotals {
            resources,
            failures,
        }
    }
}
