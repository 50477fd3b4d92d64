//! Cluster tagging: a cluster view's buffer ([`EventBuffer::new_tagged`]) stores, with each event,
//! which instance recorded it, and the events travel between instances in their stored form
//! ([`StoredEvent`]): read from a local buffer with [`EventBuffer::stored_after`], merged into a
//! view at their own times with [`EventBuffer::record_stored`].
//!
//! Separate because a local buffer never uses any of it: the store only keeps an optional
//! instance interner and a tag per ring slot, and everything that gives them meaning is here.

use super::config::{BufferConfig, ConfigError};
// One item per line, as in `queries.rs`.
use super::filter::Cursor;
use super::filter::Resolved;
use super::ring::PackedEvent;
use super::store::{Inner, KINDS};
use super::{borrow_id, EventBuffer};
use crate::clock::Clock;
use crate::event::EventKind;
use std::sync::Arc;

/// Most instances a cluster buffer tells apart (more fold into `(other)`).
pub(crate) const MAX_INSTANCES: usize = 64;

/// An event in its stored form with names resolved: what cluster mode ships between instances.
/// Borrow ids stay 64-bit codes, so a return still matches its borrow on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    pub(crate) ts_ms: u64,
    pub(crate) kind: EventKind,
    pub(crate) resource: Arc<str>,
    pub(crate) user: Arc<str>,
    /// Overage (borrows), or expired (returns: the flag bit a return stores).
    pub(crate) overage: bool,
    /// Borrow id kind (0: none) and code, for borrows and returns.
    pub(crate) id_kind: u8,
    pub(crate) id: u64,
    /// Failure reason (failures only).
    pub(crate) reason: Option<Arc<str>>,
}

impl EventBuffer {
    /// A buffer whose events also remember which instance recorded them (a cluster view).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn new_tagged(
        config: BufferConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        Self::build(config, clock, Some(MAX_INSTANCES))
    }

    /// Events after `cursor` in their stored form, oldest first, at most `limit`; the count of
    /// events that left the buffer before they could be read; the cursor to go on from.
    pub(crate) fn stored_after(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> (Vec<StoredEvent>, u64, Cursor) {
        let inner = self.lock();
        let lost: u64 = (0..3)
            .map(|k| inner.rings[k].front_seq().saturating_sub(cursor.seqs[k]))
            .sum();
        let mut out = Vec::new();
        let resolved = Resolved {
            resource: None,
            user: None,
            instance: None,
        };
        let end = if limit == 0 {
            cursor
        } else {
            inner.walk(cursor, &resolved, |k, e, _| {
                out.push(inner.to_stored(k, e));
                out.len() < limit
            })
        };
        (out, lost, end)
    }

    /// Stores events recorded by `instance` at their own times (a cluster view's merge). An event
    /// older than the newest one stored is stamped at that newest time instead, so the rings
    /// stay ordered; one older than the retention is dropped. Returns how many were stored.
    pub(crate) fn record_stored<'a>(
        &self,
        instance: &str,
        events: impl IntoIterator<Item = &'a StoredEvent>,
    ) -> usize {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let tag = inner.intern_instance(instance);
        let mut stored = 0;
        for e in events {
            stored += inner.record_stored(now, e, tag) as usize;
        }
        stored
    }

    /// Names of the instances whose events this buffer holds or held (cluster views), sorted.
    pub(crate) fn instance_names(&self) -> Vec<Arc<str>> {
        let inner = self.lock();
        let Some(instances) = &inner.instances else {
            return Vec::new();
        };
        let mut names: Vec<Arc<str>> = (1..instances.len() as u16)
            .map(|i| instances.name(i).clone())
            .collect();
        names.sort();
        names
    }

    /// Events whose instance name was folded into `(other)` (more than 64 instances).
    pub(crate) fn folded_instances(&self) -> u64 {
        self.lock().folded_instances
    }

    /// Borrowed level per resource implied by the held events of `instance` (borrows minus
    /// returns, at least 0): the best a cluster view knows of an instance without a status source.
    pub(crate) fn instance_levels(&self, instance: &str) -> Vec<(Arc<str>, u32)> {
        let inner = self.lock();
        let Some(tag) = inner.instances.as_ref().and_then(|i| i.lookup(instance)) else {
            return Vec::new();
        };
        let mut levels = vec![0i64; inner.resources.len()];
        for (k, delta) in [(0usize, 1i64), (1, -1)] {
            let ring = &inner.rings[k];
            for seq in ring.front_seq()..ring.end_seq() {
                if ring.tag(seq) == tag as u8 {
                    if let Some(e) = ring.get(seq) {
                        levels[e.resource() as usize] += delta;
                    }
                }
            }
        }
        let mut out: Vec<(Arc<str>, u32)> = levels
            .iter()
            .enumerate()
            .filter(|(_, l)| **l > 0)
            .map(|(r, l)| (inner.resources.name(r as u16).clone(), *l as u32))
            .collect();
        out.sort();
        out
    }
}

impl Inner {
    fn intern_instance(&mut self, name: &str) -> u8 {
        let Some(instances) = &mut self.instances else {
            return 0;
        };
        let before = instances.folded;
        let tag = instances.intern(name);
        self.folded_instances += instances.folded - before;
        tag as u8
    }

    /// Stores one event of another instance (or of this one, in a cluster view) at its own time,
    /// clamped into `[newest stored, now]`. False when it is already past retention.
    fn record_stored(&mut self, now: u64, e: &StoredEvent, tag: u8) -> bool {
        if e.ts_ms < now.saturating_sub(self.retention_ms) {
            return false;
        }
        let now_t = self.rel(now).max(self.last_t);
        let t = self.rel(e.ts_ms).max(self.last_insert_t).min(now_t);
        self.last_insert_t = t;
        let sec = (self.abs(t) / 1000) as u32;
        let res = self.intern_resource(&e.resource);
        let user = self.users.intern(&e.user);
        match e.kind {
            EventKind::Borrow => {
                let packed = PackedEvent::new(t, res, user, e.overage, e.id_kind, e.id);
                self.push_event(0, packed, tag);
                self.seconds.on_borrow(sec, res, e.overage);
                if e.id_kind != borrow_id::NONE {
                    let seq = self.rings[0].end_seq() - 1;
                    self.holds.on_borrow((res, e.id_kind, e.id), seq);
                }
            }
            EventKind::Return => {
                // For a return the flag is "expired" (see `Inner::record`).
                let packed = PackedEvent::new(t, res, user, e.overage, e.id_kind, e.id);
                self.push_event(1, packed, tag);
                self.seconds.on_return(sec, res);
                // In a cluster view a borrow and its return may come from two instances.
                let key = (e.id_kind != borrow_id::NONE).then_some((res, e.id_kind, e.id));
                let seq = self.rings[1].end_seq() - 1;
                self.holds.on_return(key, seq, t, &self.rings[0]);
            }
            EventKind::Failure => {
                let why = self
                    .reasons
                    .intern(e.reason.as_deref().unwrap_or("unknown"));
                let packed = PackedEvent::new(t, res, user, false, 0, why as u64);
                self.push_event(2, packed, tag);
                self.seconds.on_failure(sec, res);
            }
        }
        true
    }

    fn to_stored(&self, kind: usize, e: &PackedEvent) -> StoredEvent {
        let is_failure = KINDS[kind] == EventKind::Failure;
        StoredEvent {
            ts_ms: self.abs(e.t),
            kind: KINDS[kind],
            resource: self.resources.name(e.resource()).clone(),
            user: self.users.name(e.user).clone(),
            overage: e.overage(),
            id_kind: if is_failure { 0 } else { e.id_kind() },
            id: if is_failure { 0 } else { e.id },
            reason: is_failure.then(|| self.reasons.name(e.id as u16).clone()),
        }
    }
}
