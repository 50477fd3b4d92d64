//! Bounded string interning: names become small integers; past the cap they fold into `(other)`.

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
}

impl Interner {
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
        }
    }

    /// The index of `name`, adding it while under the cap.
    pub(crate) fn intern(&mut self, name: &str) -> u16 {
        if let Some(&index) = self.map.get(name) {
            return index;
        }
        if self.names.len() > self.max {
            self.folded += 1;
            return OTHER;
        }
        let index = self.names.len() as u16;
        let name: Arc<str> = Arc::from(name);
        self.name_bytes += name.len();
        self.names.push(name.clone());
        self.map.insert(name, index);
        index
    }

    /// The index of a known name, without adding it.
    pub(crate) fn lookup(&self, name: &str) -> Option<u16> {
        self.map.get(name).copied()
    }

    pub(crate) fn name(&self, index: u16) -> &Arc<str> {
        self.names
            .get(index as usize)
            .unwrap_or(&self.names[OTHER as usize])
    }

    /// Number of names including `(other)`.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Heap bytes held: the strings, their `Arc` headers, the vector and the map's table.
    pub(crate) fn heap_bytes(&self) -> usize {
        let arc_header = 2 * std::mem::size_of::<usize>();
        self.name_bytes
            + self.names.len() * arc_header
            + self.names.capacity() * std::mem::size_of::<Arc<str>>()
            + self.map.capacity() * (std::mem::size_of::<(Arc<str>, u16)>() + 1)
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
}
