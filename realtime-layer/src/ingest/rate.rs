//! Per-sender rate limits (events per second, token bucket through `governor`): one bucket per
//! token, or one shared bucket when the sidecar runs without tokens.

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// The smallest burst a bucket allows, so a sender can always send a batch of this many
/// events at once (batches above a bucket's burst are refused as too large).
pub const MIN_BURST: u32 = 10_000;

/// One sender's bucket.
pub(crate) struct Bucket {
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
    burst: u32,
}

/// What a bucket says about `n` events.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// Over the rate: try again after this long.
    Wait(Duration),
    /// More events than the bucket ever holds at once.
    OverBurst(u32),
}

impl Bucket {
    /// `rate` events per second, with a burst of one second's worth (at least [`MIN_BURST`]).
    pub(crate) fn new(rate: u32) -> Self {
        let rate = NonZeroU32::new(rate.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = rate.get().max(MIN_BURST);
        let quota =
            Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Bucket {
            limiter: RateLimiter::direct(quota),
            clock: DefaultClock::default(),
            burst,
        }
    }

    /// Takes `n` events from the bucket, or says when to come back.
    pub(crate) fn check(&self, n: usize) -> Verdict {
        let Some(count) = u32::try_from(n).ok().and_then(NonZeroU32::new) else {
            return if n == 0 {
                Verdict::Allowed
            } else {
                Verdict::OverBurst(self.burst)
            };
        };
        match self.limiter.check_n(count) {
            Ok(Ok(())) => Verdict::Allowed,
            Ok(Err(not_until)) => Verdict::Wait(not_until.wait_time_from(self.clock.now())),
            Err(_) => Verdict::OverBurst(self.burst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_and_refuse() {
        let b = Bucket::new(10);
        assert_eq!(b.check(10_000), Verdict::Allowed, "the minimum burst");
        assert!(matches!(b.check(5), Verdict::Wait(d) if d > Duration::ZERO));
        assert_eq!(b.check(10_001), Verdict::OverBurst(10_000));
        assert_eq!(b.check(0), Verdict::Allowed);
    }
}
