//! The newest value of a channel, fanned out to its readers: what `tokio::sync::watch` does, for
//! many readers woken together on every value.
//!
//! A watch receiver queues a waiter under the channel's lock each time it waits and is handed
//! its notification through a shared list; with a thousand streams that is most of what a frame
//! costs its readers. Here each reader owns one [`AtomicWaker`], registered once with the
//! channel: waiting is an atomic registration and a version check, and a publish wakes every
//! registered reader from one list.

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// One channel's newest value and its readers.
pub(crate) struct Fanout<T> {
    /// The newest value and its version (the count of values published before it).
    latest: Mutex<(u64, T)>,
    /// `latest.0`, readable without the lock: a reader's check for something new.
    version: AtomicU64,
    /// The readers' wakers (one per [`FanoutRx`], removed when it is dropped).
    readers: Mutex<Readers>,
}

/// The readers' wakers in slots: a reader leaves in O(1) (a mass disconnect of many thousand
/// streams must not hold the lock for a quadratic scan), and its slot is reused.
#[derive(Default)]
struct Readers {
    slots: Vec<Option<Arc<AtomicWaker>>>,
    free: Vec<usize>,
}

impl<T: Clone> Fanout<T> {
    /// A channel whose newest value is `initial`.
    pub(crate) fn new(initial: T) -> Self {
        Fanout {
            latest: Mutex::new((0, initial)),
            version: AtomicU64::new(0),
            readers: Mutex::new(Readers::default()),
        }
    }

    /// Makes `value` the newest and wakes every reader waiting for one.
    pub(crate) fn publish(&self, value: T) {
        {
            let mut latest = self.latest.lock();
            let version = latest.0 + 1;
            *latest = (version, value);
            // Stored before the wake-ups below: a reader that registered its waker after this
            // sees the new version; one that registered before is woken.
            self.version.store(version, Ordering::Release);
        }
        for reader in self.readers.lock().slots.iter().flatten() {
            reader.wake();
        }
    }

    /// How many readers are subscribed.
    pub(crate) fn reader_count(&self) -> usize {
        let readers = self.readers.lock();
        readers.slots.len() - readers.free.len()
    }

    /// A new reader, which has seen the newest value already.
    pub(crate) fn subscribe(self: &Arc<Self>) -> FanoutRx<T> {
        let waker = Arc::new(AtomicWaker::new());
        let slot = {
            let mut readers = self.readers.lock();
            match readers.free.pop() {
                Some(slot) => {
                    readers.slots[slot] = Some(waker.clone());
                    slot
                }
                None => {
                    readers.slots.push(Some(waker.clone()));
                    readers.slots.len() - 1
                }
            }
        };
        let seen = self.latest.lock().0;
        FanoutRx {
            fanout: self.clone(),
            waker,
            slot,
            seen,
        }
    }
}

/// One reader of a [`Fanout`]: it is woken on each value published after the last it saw.
pub(crate) struct FanoutRx<T> {
    fanout: Arc<Fanout<T>>,
    waker: Arc<AtomicWaker>,
    /// This reader's slot in the fanout's list.
    slot: usize,
    /// The version of the last value this reader saw.
    seen: u64,
}

impl<T: Clone> FanoutRx<T> {
    /// The newest value once it is one this reader has not seen (values published in between
    /// are skipped, as with a watch channel).
    pub(crate) fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        // Registered before the check, so a value published after the check wakes this task.
        self.waker.register(cx.waker());
        if self.fanout.version.load(Ordering::Acquire) == self.seen {
            return Poll::Pending;
        }
        Poll::Ready(self.mark_seen())
    }

    /// The newest value, marked as seen.
    pub(crate) fn mark_seen(&mut self) -> T {
        let latest = self.fanout.latest.lock();
        self.seen = latest.0;
        latest.1.clone()
    }
}

impl<T> Drop for FanoutRx<T> {
    fn drop(&mut self) {
        let mut readers = self.fanout.readers.lock();
        if let Some(slot) = readers.slots.get_mut(self.slot) {
            *slot = None;
            readers.free.push(self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::time::Duration;

    #[tokio::test]
    async fn readers_see_the_newest_value_once_and_are_woken() {
        let fanout = Arc::new(Fanout::new(0u32));
        let mut a = fanout.subscribe();
        let mut b = fanout.subscribe();
        assert_eq!(fanout.reader_count(), 2);
        let waiting = tokio::spawn(async move { poll_fn(|cx| a.poll_changed(cx)).await });
        tokio::task::yield_now().await;
        fanout.publish(1);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting reader is woken")
            .expect("the reader task ends");
        assert_eq!(got, 1);
        // Values published in between are skipped; the newest is seen once.
        fanout.publish(2);
        fanout.publish(3);
        assert_eq!(poll_fn(|cx| b.poll_changed(cx)).await, 3);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(b.poll_changed(&mut cx).is_pending(), "nothing new");
        drop(b);
        assert_eq!(fanout.reader_count(), 0, "dropped readers leave the list");
        // A freed slot is reused, and a reader in it is woken like any other.
        let mut c = fanout.subscribe();
        assert_eq!(fanout.reader_count(), 1);
        assert_eq!(fanout.readers.lock().slots.len(), 2, "no slot added");
        assert!(c.poll_changed(&mut cx).is_pending());
        fanout.publish(4);
        assert_eq!(poll_fn(|cx| c.poll_changed(cx)).await, 4);
    }
}
