//! Seconds spent at or above a level, per resource, from the per-second aggregates: one pass over
//! the window for any number of (resource, level) questions.

use super::EventBuffer;
use std::collections::HashMap;

/// Per question: seconds counted so far, and whether the current second is already counted.
#[derive(Clone, Copy, Default)]
struct Tally {
    seconds: u64,
    counted_sec: Option<u32>,
}

/// Per resource: the first second not accounted for yet and the level carried into it.
#[derive(Clone, Copy)]
struct Carry {
    next: u64,
    level: u32,
}

impl EventBuffer {
    /// For each `(resource, level)` in `questions`, the seconds of the last `window_secs` seconds
    /// (the current second included) in which the resource's borrowed level reached `level`: a
    /// second with activity counts when its peak did, an idle second when the level carried into
    /// it did. Unknown resources count 0.
    pub fn seconds_at_or_above(&self, window_secs: u32, questions: &[(&str, u32)]) -> Vec<u64> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.advance(now);
        let to = now / 1000;
        let from = (to + 1).saturating_sub(window_secs.max(1) as u64);
        let (from32, to32) = (
            from.min(u32::MAX as u64) as u32,
            to.min(u32::MAX as u64) as u32,
        );
        // Resource index → the questions about it.
        let mut asked: HashMap<u16, Vec<usize>> = HashMap::new();
        for (i, (name, _)) in questions.iter().enumerate() {
            if let Some(r) = inner.resources.lookup(name) {
                asked.entry(r).or_default().push(i);
            }
        }
        let mut tally = vec![Tally::default(); questions.len()];
        let mut carry: HashMap<u16, Carry> = asked
            .keys()
            .map(|&r| {
                let level = inner.seconds.level_before(from32, Some(r));
                (r, Carry { next: from, level })
            })
            .collect();
        inner.seconds.for_each(from32, to32, |head, entries| {
            let sec = head.sec;
            for e in entries {
                let (Some(qs), Some(c)) = (asked.get(&e.res), carry.get_mut(&e.res)) else {
                    continue;
                };
                for &q in qs {
                    let level = questions[q].1;
                    let t = &mut tally[q];
                    if c.level >= level && (sec as u64) > c.next {
                        // Idle seconds between the last active one and this one.
                        t.seconds += sec as u64 - c.next;
                    }
                    if e.peak as u32 >= level && t.counted_sec != Some(sec) {
                        t.seconds += 1;
                        t.counted_sec = Some(sec);
                    }
                }
                c.level = e.end as u32;
                c.next = sec as u64 + 1;
            }
        });
        for (r, qs) in &asked {
            let c = carry[r];
            for &q in qs {
                if c.level >= questions[q].1 && c.next <= to {
                    tally[q].seconds += to + 1 - c.next;
                }
            }
        }
        tally.into_iter().map(|t| t.seconds).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::buffer::{BufferConfig, EventBuffer};
    use crate::clock::ManualClock;
    use crate::event::Event;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn counts_active_and_idle_seconds_at_or_above_levels() {
        let clock = ManualClock::new(1_800_000_000_000);
        let buf = EventBuffer::new(BufferConfig::default(), Arc::new(clock.clone())).unwrap();
        // Second 0: 300 borrows (more than one aggregate entry holds) and 299 returns: peak 300,
        // ends at 1. Second 100: one more (2) until second 150, when one comes back (1).
        for _ in 0..300 {
            buf.record(&Event::borrow("a", "u"));
        }
        for _ in 0..299 {
            buf.record(&Event::returned("a", "u"));
        }
        clock.advance(Duration::from_secs(100));
        buf.record(&Event::borrow("a", "u"));
        clock.advance(Duration::from_secs(50));
        buf.record(&Event::returned("a", "u"));
        clock.advance(Duration::from_secs(49)); // now: second 199
        let q = [("a", 1), ("a", 2), ("a", 300), ("a", 301), ("nope", 1)];
        // 200 s: level ≥ 1 all along; ≥ 2 in second 0 and seconds 100..=150; 300 in second 0.
        assert_eq!(buf.seconds_at_or_above(200, &q), [200, 52, 1, 0, 0]);
        // The last 120 s (80..=199) start idle at level 1, carried from second 0.
        assert_eq!(buf.seconds_at_or_above(120, &q), [120, 51, 0, 0, 0]);
        // The last 10 s: idle at 1 throughout.
        assert_eq!(buf.seconds_at_or_above(10, &q[..2]), [10, 0]);
    }
}
