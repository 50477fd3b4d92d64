//! One bounded, time-ordered ring of packed events per kind.

use super::id_index::IdIndex;
use std::collections::VecDeque;

/// Low 12 bits of [`PackedEvent::res`]: the resource index.
pub(crate) const RES_MASK: u16 = 0x0fff;
/// Largest resource index a packed event can hold.
pub(crate) const MAX_RESOURCES: usize = RES_MASK as usize;
const OVERAGE_BIT: u16 = 1 << 12;
const ID_KIND_SHIFT: u16 = 13;

/// A stored event: 16 bytes. The kind is implied by the ring it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedEvent {
    /// Borrow id code (borrows/returns) or reason index (failures).
    pub(crate) id: u64,
    /// Milliseconds since the buffer's base time.
    pub(crate) t: u32,
    /// Resource index (12 bits), overage flag (1 bit), borrow id kind (2 bits).
    pub(crate) res: u16,
    /// User index.
    pub(crate) user: u16,
}

const _: () = assert!(std::mem::size_of::<PackedEvent>() == 16);

impl PackedEvent {
    pub(crate) fn new(t: u32, res: u16, user: u16, overage: bool, id_kind: u8, id: u64) -> Self {
        let mut packed = (res & RES_MASK) | ((id_kind as u16 & 0b11) << ID_KIND_SHIFT);
        if overage {
            packed |= OVERAGE_BIT;
        }
        PackedEvent {
            id,
            t,
            res: packed,
            user,
        }
    }

    pub(crate) fn resource(&self) -> u16 {
        self.res & RES_MASK
    }

    pub(crate) fn overage(&self) -> bool {
        self.res & OVERAGE_BIT != 0
    }

    pub(crate) fn id_kind(&self) -> u8 {
        ((self.res >> ID_KIND_SHIFT) & 0b11) as u8
    }
}

/// The borrow id of the event at a 32-bit wrapping sequence number (what the id index keeps).
fn key_at(
    events: &VecDeque<PackedEvent>,
    front_seq: u64,
) -> impl Fn(u32) -> Option<(u8, u64)> + '_ {
    move |seq| {
        let i = seq.wrapping_sub(front_seq as u32) as usize;
        events.get(i).map(|e| (e.id_kind(), e.id))
    }
}

/// A ring of events of one kind, oldest first, with a running sequence number so readers can
/// resume where they stopped even while old events are dropped.
pub(crate) struct EventRing {
    events: VecDeque<PackedEvent>,
    /// Per event, the index of the instance that recorded it (cluster buffers only: a local
    /// buffer keeps this empty and pays nothing for it). Kept beside the events rather than in
    /// them so a stored event stays 16 bytes.
    tags: Option<VecDeque<u8>>,
    /// The borrow ids this ring holds (ingest buffers only, for duplicate detection; see
    /// `id_index.rs`).
    ids: Option<IdIndex>,
    cap: usize,
    /// Sequence number of `events[0]`.
    front_seq: u64,
}

impl EventRing {
    pub(crate) fn new(cap: usize) -> Self {
        EventRing {
            events: VecDeque::new(),
            tags: None,
            ids: None,
            cap,
            front_seq: 0,
        }
    }

    /// The same ring, also indexing its events by borrow id ([`contains_id`](Self::contains_id)).
    #[cfg(test)]
    pub(crate) fn with_id_index(mut self) -> Self {
        self.index_ids();
        self
    }

    #[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
    /// Starts indexing events by borrow id (an empty ring: events already held are not indexed).
    pub(crate) fn index_ids(&mut self) {
        debug_assert!(self.events.is_empty());
        self.ids.get_or_insert_with(IdIndex::default);
    }

    #[cfg_attr(not(feature = "sidecar"), allow(dead_code))]
    /// Whether the ring holds an event with this borrow id (`false` without an id index).
    pub(crate) fn contains_id(&self, kind: u8, code: u64) -> bool {
        self.ids
            .as_ref()
            .is_some_and(|ids| ids.contains(kind, code, key_at(&self.events, self.front_seq)))
    }

    /// A ring that also keeps one instance tag per event.
    pub(crate) fn tagged(cap: usize) -> Self {
        EventRing {
            tags: Some(VecDeque::new()),
            ..EventRing::new(cap)
        }
    }

    /// The instance tag of event `seq` (0 in untagged rings).
    pub(crate) fn tag(&self, seq: u64) -> u8 {
        match &self.tags {
            Some(tags) => seq
                .checked_sub(self.front_seq)
                .and_then(|i| tags.get(i as usize).copied())
                .unwrap_or(0),
            None => 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<PackedEvent>()
            + self.tags.as_ref().map_or(0, |t| t.capacity())
            + self.ids.as_ref().map_or(0, |i| i.heap_bytes())
    }

    /// Sequence number the next pushed event will get.
    pub(crate) fn end_seq(&self) -> u64 {
        self.front_seq + self.events.len() as u64
    }

    pub(crate) fn front_seq(&self) -> u64 {
        self.front_seq
    }

    pub(crate) fn front(&self) -> Option<&PackedEvent> {
        self.events.front()
    }

    /// Appends, dropping the oldest event at the cap. Grows by doubling but never past the cap,
    /// so a full ring holds exactly `cap` slots.
    #[cfg(test)]
    pub(crate) fn push(&mut self, event: PackedEvent) {
        self.push_tagged(event, 0);
    }

    /// Whether the next push drops the oldest event (the ring is at its cap).
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.cap > 0 && self.events.len() == self.cap
    }

    /// Appends with an instance tag (ignored by untagged rings).
    #[inline]
    pub(crate) fn push_tagged(&mut self, event: PackedEvent, tag: u8) {
        // The common case inline: a local ring (no tags, no id index) with room, or at its cap.
        if self.tags.is_none() && self.ids.is_none() && self.cap > 0 {
            let len = self.events.len();
            if len < self.cap && len < self.events.capacity() {
                self.events.push_back(event);
                return;
            }
            if len == self.cap {
                self.events.pop_front();
                self.front_seq += 1;
                self.events.push_back(event);
                return;
            }
        }
        self.push_slow(event, tag);
    }

    /// [`push_tagged`](Self::push_tagged) in general: growth, tags and the id index.
    #[inline(never)]
    fn push_slow(&mut self, event: PackedEvent, tag: u8) {
        if self.cap == 0 {
            self.front_seq += 1;
            return;
        }
        if self.events.len() == self.cap {
            self.pop_front();
        } else if self.events.len() == self.events.capacity() {
            let len = self.events.len();
            let more = len.max(64).min(self.cap - len);
            self.events.reserve_exact(more);
            if let Some(tags) = &mut self.tags {
                tags.reserve_exact(more);
            }
        }
        self.events.push_back(event);
        if let Some(tags) = &mut self.tags {
            tags.push_back(tag);
        }
        if let Some(ids) = &mut self.ids {
            let seq = self.front_seq + self.events.len() as u64 - 1;
            let key = key_at(&self.events, self.front_seq);
            ids.insert(seq, event.id_kind(), event.id, key);
        }
    }

    fn pop_front(&mut self) {
        if let (Some(ids), Some(front)) = (&mut self.ids, self.events.front()) {
            let key = key_at(&self.events, self.front_seq);
            ids.remove(self.front_seq, front.id_kind(), front.id, key);
        }
        self.events.pop_front();
        if let Some(tags) = &mut self.tags {
            tags.pop_front();
        }
        self.front_seq += 1;
    }

    /// Drops events older than `t_min`.
    pub(crate) fn expire_before(&mut self, t_min: u32) {
        while self.events.front().is_some_and(|e| e.t < t_min) {
            self.pop_front();
        }
    }

    /// Shifts every timestamp down by `delta` (events are all newer than `delta`).
    pub(crate) fn rebase(&mut self, delta: u32) {
        for event in self.events.iter_mut() {
            event.t = event.t.saturating_sub(delta);
        }
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&PackedEvent> {
        seq.checked_sub(self.front_seq)
            .and_then(|i| self.events.get(i as usize))
    }

    /// Sequence number of the first event at or after `t`.
    pub(crate) fn seq_at(&self, t: u32) -> u64 {
        self.front_seq + self.events.partition_point(|e| e.t < t) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: u32) -> PackedEvent {
        PackedEvent::new(t, 1, 1, false, 0, 0)
    }

    #[test]
    fn cap_drops_oldest_and_keeps_sequence() {
        let mut ring = EventRing::new(3);
        for t in 0..5 {
            ring.push(at(t));
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.front_seq(), 2);
        assert_eq!(ring.end_seq(), 5);
        assert_eq!(ring.get(2).unwrap().t, 2);
        assert!(ring.get(1).is_none());
        assert_eq!(ring.seq_at(3), 3);
        assert!(ring.capacity_bytes() <= 3 * 16 || ring.capacity_bytes() <= 64 * 16);
    }

    #[test]
    fn full_and_empty_caps() {
        let mut ring = EventRing::new(2);
        assert!(!ring.is_full());
        ring.push(at(1));
        ring.push(at(2));
        assert!(ring.is_full());
        ring.push(at(3));
        assert_eq!(
            (ring.front_seq(), ring.len(), ring.front().unwrap().t),
            (1, 2, 2)
        );
        // A ring of cap 0 keeps nothing, never counts as full, and still numbers its events.
        let mut none = EventRing::new(0);
        none.push(at(1));
        assert!(!none.is_full());
        assert_eq!((none.len(), none.front_seq(), none.end_seq()), (0, 1, 1));
    }

    #[test]
    fn tags_follow_their_events() {
        let mut ring = EventRing::tagged(2);
        ring.push_tagged(at(1), 5);
        ring.push_tagged(at(2), 6);
        ring.push_tagged(at(3), 7);
        assert_eq!((ring.tag(0), ring.tag(1), ring.tag(2)), (0, 6, 7));
        ring.expire_before(3);
        assert_eq!((ring.front_seq(), ring.tag(2)), (2, 7));
        assert_eq!(EventRing::new(4).tag(0), 0);
    }

    #[test]
    fn id_index_follows_the_ring() {
        let mut ring = EventRing::new(3).with_id_index();
        let with_id = |t: u32, code: u64| PackedEvent::new(t, 1, 1, false, 2, code);
        for (t, code) in [(1, 10), (2, 11), (3, 12)] {
            ring.push(with_id(t, code));
        }
        ring.push(at(4)); // no id: not indexed, drops code 10 at the cap
        assert!(!ring.contains_id(2, 10));
        assert!(ring.contains_id(2, 11) && ring.contains_id(2, 12));
        assert!(!ring.contains_id(1, 11), "the id kind is part of the key");
        ring.expire_before(3);
        assert!(!ring.contains_id(2, 11) && ring.contains_id(2, 12));
        // Growth rehashes from the events themselves.
        let mut big = EventRing::new(10_000).with_id_index();
        for i in 0..5_000u64 {
            big.push(with_id(i as u32, i * 7));
        }
        assert!((0..5_000u64).all(|i| big.contains_id(2, i * 7)));
        assert!(!big.contains_id(2, 3));
        assert_eq!(big.ids.as_ref().unwrap().len(), 5_000);
        // 4-byte slots and a tag byte each, at most 80% full: 8,192 slots for 5,000 ids.
        assert_eq!(big.ids.as_ref().unwrap().heap_bytes(), 8_192 * 5);
        // Churn (the ring's steady state) keeps the table at its size: no tombstones.
        for i in 5_000..100_000u64 {
            big.push(with_id(i as u32, i * 7));
            big.expire_before(i as u32 - 4_999);
        }
        assert_eq!(big.ids.as_ref().unwrap().len(), 5_000);
        assert_eq!(big.ids.as_ref().unwrap().heap_bytes(), 8_192 * 5);
        assert!((95_000..100_000u64).all(|i| big.contains_id(2, i * 7)));
        assert!(!big.contains_id(2, 94_999 * 7));
    }

    #[test]
    fn id_index_matches_the_ring_under_random_churn() {
        // Few distinct codes (many repeats and long probe clusters), a small cap, random expiry.
        let mut ring = EventRing::new(500).with_id_index();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for t in 0..20_000u32 {
            let code = rand() % 900;
            let kind = if rand() % 10 == 0 { 0 } else { 2 };
            ring.push(PackedEvent::new(t, 1, 1, false, kind, code));
            if rand() % 50 == 0 {
                ring.expire_before(t.saturating_sub((rand() % 400) as u32));
            }
            if t % 97 == 0 {
                let held: std::collections::HashSet<u64> = (ring.front_seq()..ring.end_seq())
                    .filter_map(|s| ring.get(s))
                    .filter(|e| e.id_kind() == 2)
                    .map(|e| e.id)
                    .collect();
                for code in 0..900 {
                    assert_eq!(
                        ring.contains_id(2, code),
                        held.contains(&code),
                        "t {t} code {code}"
                    );
                }
                let ids = ring.ids.as_ref().unwrap();
                let with_ids = (ring.front_seq()..ring.end_seq())
                    .filter(|s| ring.get(*s).is_some_and(|e| e.id_kind() != 0))
                    .count();
                assert_eq!(ids.len(), with_ids);
            }
        }
    }

    #[test]
    fn packs_flags() {
        let e = PackedEvent::new(7, 4095, 9, true, 3, 99);
        assert_eq!(e.resource(), 4095);
        assert!(e.overage());
        assert_eq!(e.id_kind(), 3);
    }
}
