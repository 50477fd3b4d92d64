//! A pointer-keyed cache in front of an [`Interner`](super::interner::Interner) for names that
//! are `&'static str` (string literals in `Event::borrow("GPU A100", "alice")`).
//!
//! A `'static` string never moves and never changes, so its address and length identify it: a
//! hit costs a few instructions instead of hashing and comparing the bytes. Different addresses
//! with the same text simply take the interner's path once each and land on the same index.
//! Folded names (`(other)`) are never cached, so every folded event is still counted. The cache
//! is only valid while the interner never renumbers a name it has handed out.

use std::borrow::Cow;

/// Slots of the direct-mapped cache (a power of two).
const SLOTS: usize = 64;

#[derive(Clone, Copy, Default)]
struct Slot {
    ptr: usize,
    len: usize,
    index: u16,
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

    /// The index of `name`: from the cache when it is a cached static name, else from `intern`
    /// (whose answer is cached for static names unless it is `folded`).
    #[inline]
    #[allow(clippy::ptr_arg)] // the `Cow` variant is the point: only `Borrowed` is `'static`
    pub(crate) fn index(
        &mut self,
        name: &Cow<'static, str>,
        folded: u16,
        intern: impl FnOnce(&str) -> u16,
    ) -> u16 {
        let Cow::Borrowed(name) = name else {
            return intern(name);
        };
        let slot = &mut self.slots[Self::slot(name)];
        if slot.ptr == name.as_ptr() as usize && slot.len == name.len() && slot.len != 0 {
            return slot.index;
        }
        let index = intern(name);
        if index != folded {
            *slot = Slot {
                ptr: name.as_ptr() as usize,
                len: name.len(),
                index,
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
        let mut calls = 0;
        let mut intern = |_: &str| {
            calls += 1;
            7
        };
        let name: Cow<'static, str> = Cow::Borrowed("GPU A100");
        assert_eq!(cache.index(&name, 0, &mut intern), 7);
        assert_eq!(cache.index(&name, 0, &mut intern), 7);
        let owned: Cow<'static, str> = Cow::Owned("GPU A100".to_owned());
        assert_eq!(cache.index(&owned, 0, &mut intern), 7);
        assert_eq!(calls, 2);
    }

    #[test]
    fn folded_answers_are_not_cached() {
        let mut cache = StaticNames::new();
        let mut calls = 0;
        let name: Cow<'static, str> = Cow::Borrowed("one too many");
        for _ in 0..3 {
            assert_eq!(
                cache.index(&name, 0, |_| {
                    calls += 1;
                    0
                }),
                0
            );
        }
        assert_eq!(calls, 3);
    }
}
