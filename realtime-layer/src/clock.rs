//! Injectable time source, so tests move time without sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock (the default).
///
/// Reading the OS wall clock costs ~35-45 ns on virtual machines, a third of the whole record
/// path, so this clock reads the CPU's time-stamp counter (through an owned `quanta::Clock`,
/// ~13 ns, no thread-local or global lookup) and adds it to a wall-clock anchor taken at most
/// [`SystemClock::REANCHOR`] ago. Between re-anchors it cannot drift more than the OS clock is
/// slewed (NTP: at most 0.5 ms per second). Where the counter is not usable `quanta` falls back
/// to the OS monotonic clock by itself.
#[derive(Debug, Clone)]
pub struct SystemClock {
    inner: Arc<Anchor>,
}

#[derive(Debug)]
struct Anchor {
    counter: quanta::Clock,
    /// Raw counter reading at creation; times are measured from it.
    origin: u64,
    /// Wall-clock milliseconds at `origin`, as of the last anchoring.
    offset_ms: AtomicU64,
    /// `origin`-relative ms of the last anchoring.
    anchored_at_ms: AtomicU64,
}

impl SystemClock {
    /// How often the counter is re-anchored to the OS wall clock.
    pub const REANCHOR: Duration = Duration::from_secs(10);

    /// A clock anchored now.
    pub fn new() -> Self {
        let counter = quanta::Clock::new();
        let origin = counter.raw();
        let clock = SystemClock {
            inner: Arc::new(Anchor {
                counter,
                origin,
                offset_ms: AtomicU64::new(0),
                anchored_at_ms: AtomicU64::new(0),
            }),
        };
        clock.anchor(0);
        clock
    }

    fn wall_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn anchor(&self, since_origin_ms: u64) {
        let wall = Self::wall_ms();
        self.inner
            .offset_ms
            .store(wall.saturating_sub(since_origin_ms), Ordering::Relaxed);
        self.inner
            .anchored_at_ms
            .store(since_origin_ms, Ordering::Relaxed);
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        let a = &*self.inner;
        let since_origin = a.counter.delta_as_nanos(a.origin, a.counter.raw()) / 1_000_000;
        if since_origin.saturating_sub(a.anchored_at_ms.load(Ordering::Relaxed))
            >= Self::REANCHOR.as_millis() as u64
        {
            self.anchor(since_origin);
        }
        a.offset_ms.load(Ordering::Relaxed) + since_origin
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use realtime_layer::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_ms(), 3_000);
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            now: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to `ms`.
    pub fn set(&self, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now_ms", &self.now_ms())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_follows_the_wall_clock() {
        let clock = SystemClock::new();
        let wall = SystemClock::wall_ms();
        assert!(clock.now_ms().abs_diff(wall) < 50);
        std::thread::sleep(Duration::from_millis(20));
        let later = clock.now_ms();
        assert!(later.abs_diff(SystemClock::wall_ms()) < 50);
        assert!(later >= wall + 15);
    }
}
