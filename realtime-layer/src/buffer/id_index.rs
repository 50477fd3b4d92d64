//! The duplicate index of an ingest buffer's borrow and return rings: which borrow ids a ring
//! holds, so an at-least-once sender's retried batch counts once.
//!
//! Compact by design: a slot holds only an event's ring position (a wrapping 32-bit sequence
//! number) and a one-byte tag (7 bits of the id's hash, 0 for an empty slot); the key, the
//! event's borrow id kind and code, is read from the ring itself. Open addressing with linear
//! probing and backward-shift deletion: no tombstones, so under the ring's constant churn the
//! table stays at its load (at most 80%: 131,072 slots, 655 KB, for 100,000 ids) instead of
//! doubling as a tombstoned table does. An entry leaves the table when its event leaves the ring
//! (expiry or cap), so "within retention" means exactly "while the buffer holds the event".
//! The hash is seeded per table, so a sender cannot choose ids that collide.

/// The id of the event at a stored position, from the ring: `(kind, code)`.
pub(crate) trait KeyAt: Fn(u32) -> Option<(u8, u64)> {}
impl<F: Fn(u32) -> Option<(u8, u64)>> KeyAt for F {}

/// Smallest table (slots).
const MIN_SLOTS: usize = 64;

/// Positions of a ring's events that carry a borrow id, found by id. The ring answers what id
/// a stored position holds (`key_at`: a 32-bit wrapping sequence number to `(kind, code)`).
pub(crate) struct IdIndex {
    seqs: Vec<u32>,
    /// Per slot: 0 empty, else `0x80 | 7 hash bits`.
    tags: Vec<u8>,
    len: usize,
    seed: u64,
}

impl Default for IdIndex {
    fn default() -> Self {
        IdIndex {
            seqs: Vec::new(),
            tags: Vec::new(),
            len: 0,
            seed: ahash::RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl IdIndex {
    /// A 64-bit finalizer (splitmix64) over the code, kind and this table's seed.
    fn hash(&self, kind: u8, code: u64) -> u64 {
        let mut z = code ^ ((kind as u64) << 61) ^ self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn mask(&self) -> usize {
        self.tags.len().wrapping_sub(1)
    }

    /// Home slot and tag of a hash.
    fn place(&self, h: u64) -> (usize, u8) {
        ((h as usize) & self.mask(), 0x80 | (h >> 57) as u8)
    }

    /// The slot holding an entry `matches` accepts among those with this id's hash.
    fn find(&self, kind: u8, code: u64, matches: impl Fn(u32) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let (mut i, tag) = self.place(self.hash(kind, code));
        loop {
            match self.tags[i] {
                0 => return None,
                t if t == tag && matches(self.seqs[i]) => return Some(i),
                _ => i = (i + 1) & self.mask(),
            }
        }
    }

    /// Whether a position whose event has this borrow id is indexed.
    pub(crate) fn contains(&self, kind: u8, code: u64, key_at: impl KeyAt) -> bool {
        self.find(kind, code, |seq| key_at(seq) == Some((kind, code)))
            .is_some()
    }

    /// Adds the event at sequence number `seq` with this borrow id (no id: nothing to add).
    /// Growing the table rehashes every entry from the ring through `key_at`.
    pub(crate) fn insert(&mut self, seq: u64, kind: u8, code: u64, key_at: impl KeyAt) {
        if kind == super::borrow_id::NONE {
            return;
        }
        // At most 80% full.
        if (self.len + 1) * 5 > self.tags.len() * 4 {
            self.grow(&key_at);
        }
        let h = self.hash(kind, code);
        self.put(h, seq as u32);
        self.len += 1;
    }

    fn put(&mut self, h: u64, seq: u32) {
        let (mut i, tag) = self.place(h);
        while self.tags[i] != 0 {
            i = (i + 1) & self.mask();
        }
        self.tags[i] = tag;
        self.seqs[i] = seq;
    }

    fn grow(&mut self, key_at: &impl KeyAt) {
        let slots = (self.tags.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.seqs, vec![0; slots]);
        let old_tags = std::mem::replace(&mut self.tags, vec![0; slots]);
        for (seq, tag) in old.into_iter().zip(old_tags) {
            if tag != 0 {
                if let Some((kind, code)) = key_at(seq) {
                    let h = self.hash(kind, code);
                    self.put(h, seq);
                } else {
                    self.len -= 1;
                }
            }
        }
    }

    /// Removes the entry of the event at sequence number `seq` with this borrow id, which is
    /// leaving the ring (still readable through `key_at`, as are the entries that move).
    pub(crate) fn remove(&mut self, seq: u64, kind: u8, code: u64, key_at: impl KeyAt) {
        if kind == super::borrow_id::NONE {
            return;
        }
        let Some(mut hole) = self.find(kind, code, |s| s == seq as u32) else {
            return;
        };
        self.len -= 1;
        // Backward shift: pull later entries of the cluster into the hole when their home slot
        // is not between the hole and them.
        let mask = self.mask();
        let mut j = (hole + 1) & mask;
        while self.tags[j] != 0 {
            let home = key_at(self.seqs[j]).map(|(k, c)| self.place(self.hash(k, c)).0);
            let movable = match home {
                Some(home) => (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask),
                // An entry whose event is gone cannot be placed: keep it where it is.
                None => false,
            };
            if movable {
                self.tags[hole] = self.tags[j];
                self.seqs[hole] = self.seqs[j];
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.tags[hole] = 0;
    }

    /// Heap bytes (positions and tags).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.seqs.capacity() * 4 + self.tags.capacity()
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
