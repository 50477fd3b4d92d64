//! Bounded string interning: names become small integers; past the cap they fold into `(other)`.
//!
//! A reclaiming interner (user names) also counts the buffered events of each name; when the last
//! one leaves the buffer (by age or by a ring's cap) the name is forgotten and its index reused,
//! so the cap bounds the names *in the buffer*, not every name ever seen: once a flood of users
//! has aged out, new users are shown by name again.
//!
//! Names are stored with deceptive characters made visible (see [`crate::names`]).

use crate::names::visible;
use std::collections::HashMap;
use std::sync::Arc;

/// Index 0 of every interner: where names beyond the cap are folded.
pub(crate) const OTHER: u16 = 0;
/// The name that user or resource names beyond the caps are folded into.
pub const OTHER_NAME: &str = "(other)";

pub(crate) struct Interner {
    names: Vec<Arc<str>>,
    map: HashMap<Arc<str>, u16, foldhash::fast::RandomState>,
    /// Distinct names allowed besides `(other)`.
    max: usize,
    /// Interning calls answered with `(other)` because the cap was reached.
    pub(crate) folded: u64,
    name_bytes: usize,
    /// Buffered events per index (reclaiming interners only; empty otherwise).
    uses: Vec<u32>,
    /// Reclaimed indices, reused before new ones.
    free: Vec<u16>,
    /// Per index, how many times its name was reclaimed (reclaiming interners only): a cache
    /// entry taken at another generation names an index that may now mean another name.
    generations: Vec<u32>,
    reclaiming: bool,
}

impl Interner {
    /// An interner whose names stay until the buffer is dropped (resources, reasons).
    pub(crate) fn new(max: usize) -> Self {
        let other: Arc<str> = Arc::from(OTHER_NAME);
        let mut map = HashMap::with_hasher(foldhash::fast::RandomState::default());
        map.insert(other.clone(), OTHER);
        Interner {
            names: vec![other],
            map,
            max,
            folded: 0,
            name_bytes: OTHER_NAME.len(),
            uses: Vec::new(),
            free: Vec::new(),
            generations: Vec::new(),
            reclaiming: false,
        }
    }

    /// An interner that forgets a name once [`Interner::release`] has been called for every
    /// [`Interner::intern`] of it.
    pub(crate) fn reclaiming(max: usize) -> Self {
        let mut interner = Interner::new(max);
        interner.reclaiming = true;
        interner.uses.push(0);
        interner.generations.push(0);
        interner
    }

    /// The index of `name` (one more buffered event of it), adding it while under the cap.
    pub(crate) fn intern(&mut self, name: &str) -> u16 {
        let index = match self.map.get(name) {
            Some(&index) => index,
            None => self.add(name),
        };
        if self.reclaiming {
            let uses = &mut self.uses[index as usize];
            *uses = uses.saturating_add(1);
        }
        index
    }

    fn add(&mut self, raw: &str) -> u16 {
        let shown = visible(raw);
        if let Some(&index) = self.map.get(shown.as_ref()) {
            return index;
        }
        if self.names.len() - self.free.len() > self.max {
            self.folded += 1;
            return OTHER;
        }
        let name: Arc<str> = Arc::from(shown.as_ref());
        self.name_bytes += name.len();
        let index = match self.free.pop() {
            Some(index) => {
                self.names[index as usize] = name.clone();
                index
            }
            None => {
                self.names.push(name.clone());
                if self.reclaiming {
                    self.uses.push(0);
                    self.generations.push(0);
                }
                (self.names.len() - 1) as u16
            }
        };
        self.map.insert(name, index);
        index
    }

    /// One buffered event of `index` left the buffer; its name is forgotten with the last one.
    pub(crate) fn release(&mut self, index: u16) {
        if !self.reclaiming || index == OTHER {
            return;
        }
        let Some(uses) = self.uses.get_mut(index as usize) else {
            return;
        };
        *uses = uses.saturating_sub(1);
        if *uses == 0 {
            if let Some(generation) = self.generations.get_mut(index as usize) {
                *generation = generation.wrapping_add(1);
            }
            let other = self.names[OTHER as usize].clone();
            let name = std::mem::replace(&mut self.names[index as usize], other);
            self.map.remove(&name);
            self.name_bytes -= name.len();
            self.free.push(index);
        }
    }

    /// The generation of `index`: it changes when the index's name is reclaimed (always 0 in a
    /// non-reclaiming interner, whose indices never change meaning).
    pub(crate) fn generation(&self, index: u16) -> u32 {
        self.generations.get(index as usize).copied().unwrap_or(0)
    }

    /// One more buffered event of `index`, known from a cache taken at `generation`: false
    /// (nothing counted) when the index was reclaimed since, and the name must be interned.
    #[inline]
    pub(crate) fn intern_cached(&mut self, index: u16, generation: u32) -> bool {
        if !self.reclaiming {
            return true;
        }
        if self.generation(index) != generation {
            return false;
        }
        if let Some(uses) = self.uses.get_mut(index as usize) {
            *uses = uses.saturating_add(1);
        }
        true
    }

    /// The index of a known name, without adding it.
    pub(crate) fn lookup(&self, name: &str) -> Option<u16> {
        self.map
            .get(name)
            .or_else(|| self.map.get(visible(name).as_ref()))
            .copied()
    }

    pub(crate) fn name(&self, index: u16) -> &Arc<str> {
        self.names
            .get(index as usize)
            .unwrap_or(&self.names[OTHER as usize])
    }

    /// Index slots in use or reclaimed, including `(other)` (indices are below this).
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Heap bytes held: the strings, their `Arc` headers, the vectors and the map's table.
    pub(crate) fn heap_bytes(&self) -> usize {
        let arc_header = 2 * std::mem::size_of::<usize>();
        self.name_bytes
            + (self.names.len() - self.free.len()) * arc_header
            + self.names.capacity() * std::mem::size_of::<Arc<str>>()
            + self.map.capacity() * (std::mem::size_of::<(Arc<str>, u16)>() + 1)
            + self.uses.capacity() * std::mem::size_of::<u32>()
            + self.free.capacity() * std::mem::size_of::<u16>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_beyond_cap() {
        let mut names = Interner::new(2);
        assert_eq!(names.intern("a"), 1);
        assert_eq!(names.intern("b"), 2);
        assert_eq!(names.intern("a"), 1);
        assert_eq!(names.intern("c"), OTHER);
        assert_eq!(names.intern("d"), OTHER);
        assert_eq!(names.folded, 2);
        assert_eq!(&**names.name(2), "b");
        assert_eq!(names.lookup("c"), None);
    }

    #[test]
    fn reclaims_names_whose_events_left() {
        let mut names = Interner::reclaiming(2);
        let a = names.intern("a");
        names.intern("a");
        let b = names.intern("b");
        assert_eq!(names.intern("c"), OTHER);
        names.release(a);
        assert_eq!(
            names.lookup("a"),
            Some(a),
            "one event of a is still buffered"
        );
        names.release(a);
        assert_eq!(names.lookup("a"), None);
        // The freed slot takes the next new name; the cap holds.
        let c = names.intern("c");
        assert_eq!((c, &**names.name(c)), (a, "c"));
        assert_eq!(names.intern("d"), OTHER);
        names.release(b);
        names.release(OTHER);
        let d = names.intern("d");
        assert_eq!(&**names.name(d), "d");
    }

    #[test]
    fn stores_deceptive_characters_visibly() {
        let mut names = Interner::new(10);
        let i = names.intern("ann\u{202E}x");
        assert_eq!(&**names.name(i), "ann<U+202E>x");
        assert_eq!(names.intern("ann\u{202E}x"), i);
        assert_eq!(names.lookup("ann\u{202E}x"), Some(i));
        assert_eq!(names.lookup("ann<U+202E>x"), Some(i));
    }
}
