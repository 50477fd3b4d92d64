//! Refused borrows per resource and reason over a window, counted from the held failures.

use super::{EventBuffer, EventFilter};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Refusals of one resource within a window, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Denials {
    /// Resource name.
    pub resource: Arc<str>,
    /// Reason → refusals, sorted by reason.
    pub by_reason: BTreeMap<Arc<str>, u64>,
}

impl EventBuffer {
    /// Refusals per resource and reason in the last `window_secs` seconds (the current second
    /// included), from the failures held (at most `max_failures`: beyond that the oldest of the
    /// window are missing). Resources without refusals are left out; sorted by name.
    pub fn denials(&self, window_secs: u32, filter: &EventFilter) -> Vec<Denials> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let resolved = inner.resolve(filter);
        if resolved.matches_nothing() {
            return Vec::new();
        }
        let from_ms = (now / 1000 + 1).saturating_sub(window_secs.max(1) as u64) * 1000;
        let ring = &inner.rings[2];
        let mut counts: BTreeMap<(u16, u16), u64> = BTreeMap::new();
        let mut seq = ring.seq_at(inner.rel(from_ms));
        while let Some(e) = ring.get(seq) {
            if resolved.accepts(e, ring.tag(seq)) {
                *counts.entry((e.resource(), e.id as u16)).or_insert(0) += 1;
            }
            seq += 1;
        }
        let mut out: BTreeMap<Arc<str>, Denials> = BTreeMap::new();
        for ((res, why), n) in counts {
            let name = inner.resources.name(res).clone();
            out.entry(name.clone())
                .or_insert_with(|| Denials {
                    resource: name,
                    by_reason: BTreeMap::new(),
                })
                .by_reason
                .insert(inner.reasons.name(why).clone(), n);
        }
        out.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::BufferConfig;
    use crate::clock::ManualClock;
    use crate::event::Event;
    use std::time::Duration;

    #[test]
    fn counts_by_resource_and_reason_within_the_window() {
        let clock = ManualClock::new(1_800_000_000_000);
        let buf = EventBuffer::new(BufferConfig::default(), Arc::new(clock.clone())).unwrap();
        buf.record(&Event::failure("a", "u", "exhausted"));
        clock.advance(Duration::from_secs(120));
        for _ in 0..3 {
            buf.record(&Event::failure("a", "u", "max_overage"));
        }
        buf.record(&Event::failure("a", "v", "exhausted"));
        buf.record(&Event::failure("b", "u", "exhausted"));
        let d = buf.denials(60, &EventFilter::default());
        assert_eq!(d.len(), 2);
        assert_eq!(&*d[0].resource, "a");
        let a: Vec<(&str, u64)> = d[0].by_reason.iter().map(|(k, v)| (&**k, *v)).collect();
        assert_eq!(a, [("exhausted", 1), ("max_overage", 3)]);
        assert_eq!(d[1].by_reason.values().sum::<u64>(), 1);
        let all = buf.denials(3600, &EventFilter::default());
        assert_eq!(all[0].by_reason[&Arc::<str>::from("exhausted")], 2);
        let only_v = EventFilter {
            resource: None,
            user: Some("v".into()),
            ..EventFilter::default()
        };
        assert_eq!(buf.denials(60, &only_v)[0].by_reason.len(), 1);
    }
}
