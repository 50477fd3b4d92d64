//! What a read selects: [`EventFilter`] (events by resource, user and instance name), its
//! resolved form (the same by interned index, as the rings store them) and [`Cursor`] (a position
//! in the event stream to read on from).
//!
//! Separate from the queries that use them because the holds, denials and levels files and the
//! cluster tagging take filters and cursors too; kept free of the store, they sit below all of those.

use super::ring::PackedEvent;

/// Restricts queries to one resource, one user and/or one instance (by exact name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EventFilter {
    /// Only this resource.
    pub resource: Option<String>,
    /// Only this user.
    pub user: Option<String>,
    /// Only events recorded by this instance (meaningful in a cluster view, whose events carry
    /// the id of the instance that recorded them; a local buffer's events carry none, so there
    /// it matches nothing).
    pub instance: Option<String>,
}

impl EventFilter {
    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.resource.is_none() && self.user.is_none() && self.instance.is_none()
    }
}

/// A position in the event stream of all three kinds; read on from it with
/// [`EventBuffer::events_after`](super::EventBuffer::events_after).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub(super) seqs: [u64; 3],
}

/// Filter resolved to interned indices; `None` inside means "the name is unknown: match nothing".
pub(super) struct Resolved {
    pub(super) resource: Option<Option<u16>>,
    pub(super) user: Option<Option<u16>>,
    pub(super) instance: Option<Option<u8>>,
}

impl Resolved {
    pub(super) fn matches_nothing(&self) -> bool {
        matches!(self.resource, Some(None))
            || matches!(self.user, Some(None))
            || matches!(self.instance, Some(None))
    }

    /// Counts must come from the events themselves (aggregates are kept per resource only).
    pub(super) fn scans_events(&self) -> bool {
        self.user.is_some() || self.instance.is_some()
    }

    pub(super) fn accepts(&self, e: &PackedEvent, tag: u8) -> bool {
        self.resource.is_none_or(|r| r == Some(e.resource()))
            && self.user.is_none_or(|u| u == Some(e.user))
            && self.instance.is_none_or(|i| i == Some(tag))
    }
}
