//! The stream hub: one channel per distinct filter, the fairness limits (filters per server and
//! per client address), and the task that builds every channel's frame per tick or after
//! activity.

use super::channel::{Channel, Published};
use super::fanout::FanoutRx;
use super::limits::{LINGER, MAX_FILTERS, MAX_FILTERS_PER_CLIENT};
use crate::buffer::EventFilter;
use crate::core::Core;
use crate::error::ApiError;
use crate::views::Scope;
use axum::http::StatusCode;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use tokio::time::Instant;

/// The live stream of one instance: its hub, started (with its task) on the first subscription.
#[derive(Default)]
pub(crate) struct LiveStream {
    hub: OnceLock<Arc<StreamHub>>,
}

impl LiveStream {
    /// The hub, started on first use with a task that builds frames from `core` (and ends once
    /// `core` is gone or shut down). Needs a Tokio runtime.
    pub(crate) fn hub(&self, core: &Arc<Core>) -> &Arc<StreamHub> {
        self.hub.get_or_init(|| {
            let hub = Arc::new(StreamHub::new(core.buffer.clock().now_ms()));
            tokio::spawn(run(Arc::downgrade(core), hub.clone()));
            hub
        })
    }
}

type FilterKey = (Scope, Option<String>, Option<String>);

/// The channels, and which filtered ones each client address streams (with how many streams).
#[derive(Default)]
struct Channels {
    map: HashMap<FilterKey, Arc<Channel>>,
    per_client: HashMap<IpAddr, HashMap<FilterKey, usize>>,
}

/// A client's use of one filtered channel, counted against [`MAX_FILTERS_PER_CLIENT`] while
/// alive.
pub(crate) struct FilterLease {
    hub: Arc<StreamHub>,
    client: IpAddr,
    key: FilterKey,
}

impl Drop for FilterLease {
    fn drop(&mut self) {
        let mut channels = self.hub.channels.lock();
        if let Some(mine) = channels.per_client.get_mut(&self.client) {
            if let Some(n) = mine.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    mine.remove(&self.key);
                }
            }
            if mine.is_empty() {
                channels.per_client.remove(&self.client);
            }
        }
    }
}

/// A subscription to one channel: the channel, a receiver of its frames, and the lease that
/// counts it against its client's share of filters.
pub(crate) struct Subscribed {
    pub(crate) channel: Arc<Channel>,
    pub(crate) rx: FanoutRx<Arc<Published>>,
    pub(crate) lease: Option<FilterLease>,
}

/// Builds and fans out frames for every filter of one instance.
pub(crate) struct StreamHub {
    channels: Mutex<Channels>,
    /// Sequence numbers are shared by all channels and start at the hub's start time in
    /// milliseconds, so ids keep increasing across server restarts and an id from another
    /// process or filter never matches a remembered frame.
    next_seq: AtomicU64,
}

impl StreamHub {
    fn new(start: u64) -> Self {
        StreamHub {
            channels: Mutex::new(Channels::default()),
            next_seq: AtomicU64::new(start.max(1)),
        }
    }

    fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Subscribes to the channel of `filter`, created (with its first frame) when new.
    ///
    /// Fairness (see `docs/PROTOCOL.md`): the unfiltered channel is always served; a filtered one
    /// needs a place among [`MAX_FILTERS`] (idle channels give theirs up) and, when the client's
    /// address is known, one of its [`MAX_FILTERS_PER_CLIENT`]. Subscribing under the lock keeps
    /// a channel from being reclaimed between its lookup and its first receiver.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        core: &Core,
        scope: Scope,
        filter: EventFilter,
        client: Option<IpAddr>,
    ) -> Result<Subscribed, ApiError> {
        let key = (scope.clone(), filter.resource.clone(), filter.user.clone());
        let filtered = !is_unfiltered(&key);
        let mut channels = self.channels.lock();
        if let (true, Some(ip)) = (filtered, client) {
            let mine = channels.per_client.get(&ip);
            let streams_it = mine.is_some_and(|m| m.contains_key(&key));
            if !streams_it && mine.map_or(0, HashMap::len) >= MAX_FILTERS_PER_CLIENT {
                return Err(too_many_filters(format!(
                    "one client address can stream at most {MAX_FILTERS_PER_CLIENT} distinct \
                     filters at once; close one of yours first (the unfiltered stream is always \
                     available)"
                )));
            }
        }
        let channel = match channels.map.get(&key) {
            Some(ch) => ch.clone(),
            None => {
                if filtered {
                    let open = channels.map.keys().filter(|k| !is_unfiltered(k)).count();
                    if open >= MAX_FILTERS {
                        let idle = channels
                            .map
                            .iter()
                            .find(|(k, ch)| !is_unfiltered(k) && ch.frames.reader_count() == 0)
                            .map(|(k, _)| k.clone());
                        match idle {
                            Some(k) => {
                                channels.map.remove(&k);
                            }
                            None => {
                                return Err(too_many_filters(format!(
                                    "at most {MAX_FILTERS} distinct stream filters can be open at \
                                     once; try again later (the unfiltered stream is always \
                                     available)"
                                )))
                            }
                        }
                    }
                }
                let ch = Arc::new(Channel::new(core, scope, filter, self.seq()));
                channels.map.insert(key.clone(), ch.clone());
                ch
            }
        };
        let rx = channel.subscribe();
        let lease = match (filtered, client) {
            (true, Some(ip)) => {
                *channels
                    .per_client
                    .entry(ip)
                    .or_default()
                    .entry(key.clone())
                    .or_insert(0) += 1;
                Some(FilterLease {
                    hub: self.clone(),
                    client: ip,
                    key,
                })
            }
            _ => None,
        };
        Ok(Subscribed { channel, rx, lease })
    }

    /// Ends every channel's streams (at shutdown; see [`Channel::close`]).
    fn close_all(&self) {
        for ch in self.channels.lock().map.values() {
            ch.close();
        }
    }

    /// Builds one frame for every channel and forgets channels nobody listened to for [`LINGER`].
    /// Returns the visible streams subscribed to them (hidden pages' streams get no frames).
    fn build_all(&self, core: &Core, now: Instant) -> usize {
        // Once per build, for every channel.
        core.feed_cluster();
        let mut readers = 0;
        let channels: Vec<Arc<Channel>> = {
            let mut channels = self.channels.lock();
            channels.map.retain(|_, ch| {
                let mut st = ch.state.lock();
                let count = ch.frames.reader_count();
                readers += count;
                if count > 0 {
                    st.idle_since = None;
                    true
                } else {
                    let since = *st.idle_since.get_or_insert(now);
                    now.duration_since(since) < LINGER
                }
            });
            channels.map.values().cloned().collect()
        };
        let tick = core.stream_config.tick;
        for ch in channels {
            ch.build(core, self.seq(), now, tick);
        }
        readers
    }
}

fn too_many_filters(detail: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_filters", detail)
}

/// The plain dashboard stream: default scope, no resource or user filter.
fn is_unfiltered(key: &FilterKey) -> bool {
    matches!(key, (Scope::Default, None, None))
}

/// The hub's task: a frame per tick, or soon after activity (coalesced, at most one per
/// `push_delay`). Ends on shutdown or when the instance is gone.
async fn run(weak: Weak<Core>, hub: Arc<StreamHub>) {
    // Only these two are held while waiting, never the instance itself: dropping the instance's
    // core (the last handle, layer and route) ends the task at its next wake-up.
    let Some((activity, shutdown, config)) = weak.upgrade().map(|core| {
        (
            core.activity.clone(),
            core.shutdown.clone(),
            core.stream_config.clone(),
        )
    }) else {
        return;
    };
    let mut last_build = Instant::now();
    let mut push_delay = config.push_delay;
    loop {
        let active = tokio::select! {
            _ = shutdown.cancelled() => return hub.close_all(),
            _ = activity.notified() => true,
            _ = tokio::time::sleep_until(last_build + config.tick) => false,
        };
        if active {
            // Coalesce a burst briefly, and keep to one frame per push delay.
            let coalesce = config.push_delay / 10;
            let at = (Instant::now() + coalesce).max(last_build + push_delay);
            tokio::select! {
                _ = shutdown.cancelled() => return hub.close_all(),
                _ = tokio::time::sleep_until(at) => {}
            }
        }
        // This frame reads every event recorded so far: drop a wake-up already pending.
        activity.consume();
        let Some(core) = weak.upgrade() else { return };
        let now = Instant::now();
        let readers = hub.build_all(&core, now);
        last_build = now;
        // Stretched when many streams are open: their writes are most of what a frame costs.
        push_delay = config.push_delay_for(readers);
        core.set_stream_push_delay(push_delay);
    }
}
