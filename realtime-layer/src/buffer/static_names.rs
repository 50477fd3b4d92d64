//! A pointer-keyed cache in front of an [`Interner`](super::interner::Interner) for names that
//! are `&'static str` (string literals in `Event::borrow("GPU A100", "alice")`).
//!
//! A `'static` string never moves and never changes, so its address and length identify it: a
//! hit costs a few instructions instead of hashing and comparing the bytes. Different addresses
//! with the same text simply take the interner's path once each and land on the same index.
//! Folded names (`(other)`) are never cached, so every folded event is still counted. Each entry
//! remembers the index's generation: a reclaiming interner (user names) reuses the index of a
//! name whose events all left the buffer, and bumps its generation then, so a stale entry is
//! recognised and the name interned again (and an event is counted exactly once either way).

use super::interner::{Interner, OTHER};
use std::borrow::Cow;

/// Slots of the direct-mapped cache (a power of two).
const SLOTS: usize = 64;

#[derive(Clone, Copy, Default)]
struct Slot {
    ptr: usize,
    len: usize,
    index: u16,
    generation: u32,
}

/// Direct-mapped cache: `(address, length)` of a static name to its interned index.
pub(crate) struct StaticNames {
    slots: Box<[Slot; SLOTS]>,
}

impl StaticNames {
    pub(crate) fn new() -> Self {
        StaticNames {
            slots: Box::new([Slot::default(); SLOTS]),
        }
    }

    fn slot(name: &'static str) -> usize {
        let ptr = name.as_ptr() as usize;
        (ptr >> 3 ^ ptr >> 9 ^ name.len()) & (SLOTS - 1)
    }

    /// The index of `name` in `interner` (one more use of it): from the cache when it is a
    /// cached static name whose index was not reclaimed since, else interned (and cached for a
    /// static name unless it was folded).
    #[inline]
    #[allow(clippy::ptr_arg)] // the `Cow` variant is the point: only `Borrowed` is `'static`
    pub(crate) fn intern(&mut self, name: &Cow<'static, str>, interner: &mut Interner) -> u16 {
        let Cow::Borrowed(name) = name else {
            return interner.intern(name);
        };
        let slot = &mut self.slots[Self::slot(name)];
        if slot.ptr == name.as_ptr() as usize
            && slot.len == name.len()
            && slot.len != 0
            && interner.intern_cached(slot.index, slot.generation)
        {
            return slot.index;
        }
        let index = interner.intern(name);
        if index != OTHER {
            *slot = Slot {
                ptr: name.as_ptr() as usize,
                len: name.len(),
                index,
                generation: interner.generation(index),
            };
        }
        index
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<[Slot; SLOTS]>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_names_hit_the_cache_and_owned_names_do_not() {
        let mut cache = StaticNames::new();
        let mut names = Interner::new(10);
        let name: Cow<'static, str> = Cow::Borrowed("GPU A100");
        let first = cache.intern(&name, &mut names);
        assert_eq!(cache.intern(&name, &mut names), first);
        let owned: Cow<'static, str> = Cow::Owned("GPU A100".to_owned());
        assert_eq!(cache.intern(&owned, &mut names), first);
    }

    #[test]
    fn folded_answers_are_not_cached() {
        let mut cache = StaticNames::new();
        let mut names = Interner::new(1);
        let _ = names.intern("the only one");
        let name: Cow<'static, str> = Cow::Borrowed("one too many");
        for i in 1..=3 {
            assert_eq!(cache.intern(&name, &mut names), OTHER);
            assert_eq!(names.folded, i, "every folded event is counted");
        }
    }

    #[test]
    fn a_reclaimed_index_is_not_handed_out_for_its_old_name() {
        let mut cache = StaticNames::new();
        let mut users = Interner::reclaiming(10);
        let ann: Cow<'static, str> = Cow::Borrowed("ann");
        let i = cache.intern(&ann, &mut users);
        assert_eq!(cache.intern(&ann, &mut users), i);
        // Both events of "ann" leave: the index is reclaimed and goes to "bob".
        users.release(i);
        users.release(i);
        assert_eq!(users.intern("bob"), i);
        // The cache must not answer `i` (now "bob") for "ann", nor count a use of "bob".
        let again = cache.intern(&ann, &mut users);
        assert_ne!(again, i);
        assert_eq!(&**users.name(again), "ann");
        users.release(i);
        assert_eq!(&**users.name(i), "(other)", "bob had exactly one use");
        // And the fresh entry hits again, counting uses of the new index.
        assert_eq!(cache.intern(&ann, &mut users), again);
        users.release(again);
        assert_eq!(&**users.name(again), "ann", "one use left");
        users.release(again);
        assert_eq!(&**users.name(again), "(other)");
    }
}
