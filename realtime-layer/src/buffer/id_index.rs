//! The duplicate index of an ingest buffer's borrow and return rings: which borrow ids a ring
//! holds, so an at-least-once sender's retried batch counts once.
//!
//! Compact by design: the table stores only each event's ring position (a wrapping 32-bit
//! sequence number, 4 bytes plus hashbrown's 1 control byte per slot); the key, the event's borrow
//! id kind and code, is read from the ring itself. An entry leaves the table when its event leaves
//! the ring (expiry or cap), so "within retention" means exactly "while the buffer holds the
//! event".

use hashbrown::HashTable;

/// Fixed seeds: hashing a 64-bit code needs no protection against chosen collisions beyond what
/// the code already has (UUID prefixes and hashes are spread; numbers are mixed here).
fn hash(kind: u8, code: u64) -> u64 {
    // A 64-bit finalizer (splitmix64): decimal ids 1, 2, 3 spread over the whole table.
    let mut z = code ^ ((kind as u64) << 61) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Positions of a ring's events that carry a borrow id, found by id. The ring answers what id
/// a stored position holds (`key_at`: a 32-bit wrapping sequence number to `(kind, code)`).
#[derive(Default)]
pub(crate) struct IdIndex {
    table: HashTable<u32>,
}

impl IdIndex {
    /// Whether a position whose event has this borrow id is indexed.
    pub(crate) fn contains(
        &self,
        kind: u8,
        code: u64,
        key_at: impl Fn(u32) -> Option<(u8, u64)>,
    ) -> bool {
        self.table
            .find(hash(kind, code), |&seq| key_at(seq) == Some((kind, code)))
            .is_some()
    }

    /// Adds the event at sequence number `seq` with this borrow id (no id: nothing to add).
    /// Growing the table rehashes every entry from the ring through `key_at`.
    pub(crate) fn insert(
        &mut self,
        seq: u64,
        kind: u8,
        code: u64,
        key_at: impl Fn(u32) -> Option<(u8, u64)>,
    ) {
        if kind == super::borrow_id::NONE {
            return;
        }
        let rehash = |&s: &u32| key_at(s).map_or(0, |(k, c)| hash(k, c));
        self.table
            .insert_unique(hash(kind, code), seq as u32, rehash);
    }

    /// Removes the entry of the event at sequence number `seq` with this borrow id, which is
    /// leaving the ring.
    pub(crate) fn remove(&mut self, seq: u64, kind: u8, code: u64) {
        if kind == super::borrow_id::NONE {
            return;
        }
        if let Ok(entry) = self
            .table
            .find_entry(hash(kind, code), |&s| s == seq as u32)
        {
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
