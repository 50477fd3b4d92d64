//! The duplicate index of an ingest buffer's borrow and return rings: which borrow ids a ring
//! holds, so an at-least-once sender's retried batch counts once.
//!
//! Compact by design: the table stores only each event's ring position (a wrapping 32-bit
//! sequence number, 4 bytes plus hashbrown's 1 control byte per slot); the key, the event's borrow
//! id kind and code, is read from the ring itself. An entry leaves the table when its event leaves
//! the ring (expiry or cap), so "within retention" means exactly "while the buffer holds the
//! event".

use super::ring::PackedEvent;
use hashbrown::HashTable;
use std::collections::VecDeque;

/// Fixed seeds: hashing a 64-bit code needs no protection against chosen collisions beyond what
/// the code already has (UUID prefixes and hashes are spread; numbers are mixed here).
fn hash(kind: u8, code: u64) -> u64 {
    // A 64-bit finalizer (splitmix64): decimal ids 1, 2, 3 spread over the whole table.
    let mut z = code ^ ((kind as u64) << 61) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Positions of a ring's events that carry a borrow id, found by id.
#[derive(Default)]
pub(crate) struct IdIndex {
    table: HashTable<u32>,
}

impl IdIndex {
    /// Whether `events` (whose first element has sequence number `front_seq`) holds an event
    /// with this borrow id.
    pub(crate) fn contains(
        &self,
        events: &VecDeque<PackedEvent>,
        front_seq: u64,
        kind: u8,
        code: u64,
    ) -> bool {
        self.table
            .find(hash(kind, code), |&seq| {
                let i = seq.wrapping_sub(front_seq as u32) as usize;
                events
                    .get(i)
                    .is_some_and(|e| e.id == code && e.id_kind() == kind)
            })
            .is_some()
    }

    /// Adds the event at sequence number `seq`, already pushed onto `events` (whose first element
    /// has sequence number `front_seq`). Growing the table rehashes every entry from its event.
    pub(crate) fn insert(&mut self, events: &VecDeque<PackedEvent>, front_seq: u64, seq: u64) {
        let Some(e) = seq
            .checked_sub(front_seq)
            .and_then(|i| events.get(i as usize))
        else {
            return;
        };
        let kind = e.id_kind();
        if kind == super::borrow_id::NONE {
            return;
        }
        let rehash = |&s: &u32| {
            let i = s.wrapping_sub(front_seq as u32) as usize;
            events.get(i).map_or(0, |e| hash(e.id_kind(), e.id))
        };
        self.table.insert_unique(hash(kind, e.id), seq as u32, rehash);
    }

    /// Removes the entry of `e`, the event at sequence number `seq`, which is leaving the ring.
    pub(crate) fn remove(&mut self, seq: u64, e: &PackedEvent) {
        let kind = e.id_kind();
        if kind == super::borrow_id::NONE {
            return;
        }
        if let Ok(entry) = self.table.find_entry(hash(kind, e.id), |&s| s == seq as u32) {
            entry.remove();
        }
    }

    /// Heap bytes (slots and control bytes).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.table.allocation_size()
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

