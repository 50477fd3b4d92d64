//! The live stream: compute once, send to everyone.
//!
//! One [`StreamHub`] per [`Realtime`] owns one [`Channel`] per distinct `(resource, user)` filter.
//! A single background task (started on the first subscription, stopped by the shutdown token or
//! when the instance is dropped) builds one frame per channel per tick, or `push_delay` at most
//! after an event, serialises it once into an SSE message ([`Bytes`]) and publishes it on a
//! `tokio::sync::watch` channel. Every client of that filter writes the same `Bytes` (a reference
//! count, no copy); a slow client simply sees the newest frame next and, having missed one, gets a
//! catch-up snapshot instead of the delta, so it never blocks the others nor queues memory.
//!
//! A frame costs O(resources + new events): rates and peaks come from the per-second aggregates,
//! new events from a cursor, and the previous values are kept to leave unchanged fields out.

mod frame;

use crate::buffer::{Cursor, EventFilter, EventRecord, SecondPoint};
use crate::cluster::view::{Scope, Source};
use crate::handle::Realtime;
use crate::routes::ApiError;
use crate::snapshot::Rates;
use crate::state::Shared;
use axum::body::Bytes;
use axum::http::StatusCode;
use frame::{
    BufferFrame, ClusterFrame, CompactEvent, FrameJson, FrameKind, ResourceChange, ResourceFrame,
};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) use frame::KEEP_ALIVE;

/// Most events a delta carries (the newest are kept; `events_omitted` counts the rest).
pub(crate) const MAX_FRAME_EVENTS: usize = 20;
/// Most events a snapshot carries.
pub(crate) const SNAPSHOT_EVENTS: usize = 50;
/// Frames remembered per channel to answer `Last-Event-ID` exactly.
pub(crate) const HISTORY_FRAMES: usize = 128;
/// Distinct filtered channels streamed at once (the unfiltered stream does not count).
pub(crate) const MAX_FILTERS: usize = 64;
/// Distinct filters one client address may stream at once.
pub(crate) const MAX_FILTERS_PER_CLIENT: usize = 8;
/// How long a channel without subscribers is kept (so a reconnect can resume exactly).
pub(crate) const LINGER: Duration = Duration::from_secs(30);
/// The window of the rates in frames.
pub(crate) const RATE_WINDOW: u32 = 60;
/// The `retry:` advice sent once per connection, in milliseconds.
pub(crate) const RETRY_MS: u64 = 3_000;

/// One published frame: its sequence number, the previous frame's (to detect skipped frames) and
/// the encoded delta message.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) seq: u64,
    pub(crate) prev_seq: u64,
    pub(crate) delta: Bytes,
}

/// What a client that followed every frame holds (the base of deltas and of snapshots).
#[derive(Debug, Clone, Default)]
struct Sent {
    ts_ms: u64,
    rates: Rates,
    resources: Vec<ResourceFrame>,
    buffer: BufferFrame,
    point: Option<SecondPoint>,
    cluster: Option<ClusterFrame>,
}

#[derive(Debug)]
struct HistoryFrame {
    seq: u64,
    events: Vec<EventRecord>,
    omitted: u64,
}

struct ChannelState {
    /// The instance building the frames.
    instance: Arc<str>,
    /// The buffer `cursor` walks (a cluster channel falls back to the local buffer while the
    /// cluster is degraded).
    source: Source,
    cursor: Cursor,
    seq: u64,
    sent: Sent,
    /// When rates and buffer were last refreshed in a frame.
    refreshed: Instant,
    /// Newest events, oldest first (for snapshots of new clients).
    recent: VecDeque<EventRecord>,
    /// The last frames' events (for `Last-Event-ID` and lagging clients).
    history: VecDeque<HistoryFrame>,
    /// The generic snapshot of frame `seq`, built on first demand.
    snapshot: Option<(u64, Bytes)>,
    /// Since when nobody listens.
    idle_since: Option<Instant>,
}

/// The frames of one filter.
pub(crate) struct Channel {
    scope: Scope,
    filter: EventFilter,
    tx: watch::Sender<Arc<Published>>,
    state: Mutex<ChannelState>,
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
    pub(crate) rx: watch::Receiver<Arc<Published>>,
    pub(crate) lease: Option<FilterLease>,
}

/// Builds and fans out frames for every filter of one instance.
pub(crate) struct StreamHub {
    channels: Mutex<Channels>,
    /// Streams cut because their client accepted no bytes within the server's write timeout.
    slow_disconnects: AtomicU64,
    /// Sequence numbers are shared by all channels and start at the hub's start time in
    /// milliseconds, so ids keep increasing across server restarts and an id from another
    /// process or filter never matches a remembered frame.
    next_seq: AtomicU64,
}

impl StreamHub {
    fn new(start: u64) -> Self {
        StreamHub {
            channels: Mutex::new(Channels::default()),
            slow_disconnects: AtomicU64::new(0),
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
        realtime: &Realtime,
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
                            .find(|(k, ch)| !is_unfiltered(k) && ch.tx.receiver_count() == 0)
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
                let ch = Arc::new(Channel::new(realtime, scope, filter, self.seq()));
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

    /// Streams cut by the server's write timeout so far.
    pub(crate) fn slow_disconnects(&self) -> u64 {
        self.slow_disconnects.load(Ordering::Relaxed)
    }

    /// Counts a stream cut by the server's write timeout.
    pub(crate) fn count_slow_disconnect(&self) {
        self.slow_disconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Builds one frame for every channel and forgets channels nobody listened to for [`LINGER`].
    fn build_all(&self, realtime: &Realtime, now: Instant) {
        // Once per build, for every channel.
        crate::cluster::view::feed(realtime);
        let channels: Vec<Arc<Channel>> = {
            let mut channels = self.channels.lock();
            channels.map.retain(|_, ch| {
                let mut st = ch.state.lock();
                if ch.tx.receiver_count() > 0 {
                    st.idle_since = None;
                    true
                } else {
                    let since = *st.idle_since.get_or_insert(now);
                    now.duration_since(since) < LINGER
                }
            });
            channels.map.values().cloned().collect()
        };
        let tick = realtime.stream_config().tick;
        for ch in channels {
            ch.build(realtime, self.seq(), now, tick);
        }
    }
}

impl Channel {
    /// A channel whose first frame (seq `seq`) reflects the buffer now, with the newest events
    /// for snapshots.
    fn new(realtime: &Realtime, scope: Scope, filter: EventFilter, seq: u64) -> Channel {
        let source = scope.source(realtime);
        let (events, cursor) = newest_events(realtime, &scope, &filter);
        let now = Instant::now();
        let (tx, _) = watch::channel(Arc::new(Published {
            seq: 0,
            prev_seq: 0,
            delta: Bytes::new(),
        }));
        let ch = Channel {
            scope,
            filter,
            tx,
            state: Mutex::new(ChannelState {
                instance: realtime.shared.instance_id.clone(),
                source,
                cursor,
                seq: 0,
                sent: Sent::default(),
                refreshed: now,
                recent: events.into(),
                history: VecDeque::new(),
                snapshot: None,
                idle_since: None,
            }),
        };
        {
            let mut st = ch.state.lock();
            let (sent, _) = compute(realtime, &ch.scope, &ch.filter, &st.sent);
            st.sent = sent;
            st.seq = seq;
            st.history.push_back(HistoryFrame {
                seq,
                events: Vec::new(),
                omitted: 0,
            });
            let delta = st.encode(
                FrameKind::Delta,
                &[],
                0,
                true,
                Resources::Full,
                true,
                true,
                true,
            );
            ch.tx.send_replace(Arc::new(Published {
                seq,
                prev_seq: 0,
                delta,
            }));
        }
        ch
    }

    /// A receiver of this channel's frames.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// Builds and publishes the next frame.
    fn build(&self, realtime: &Realtime, seq: u64, now: Instant, tick: Duration) {
        let mut st = self.state.lock();
        let source = self.scope.source(realtime);
        let buffer = Scope::buffer_of(source, realtime);
        let filter = self.scope.filter(realtime, &self.filter);
        if source != st.source {
            // The cluster became reachable or unreachable: go on from the other buffer's end
            // (its own past is in its history, not in this stream).
            st.source = source;
            st.cursor = buffer.cursor();
        }
        let (events, omitted, cursor) = buffer.events_after(st.cursor, MAX_FRAME_EVENTS, &filter);
        st.cursor = cursor;
        // Rates and buffer facts move with every event; refresh them once per tick at most
        // (resources, events and points go out at once).
        let refresh = now.duration_since(st.refreshed) >= tick.mul_f64(0.9);
        let (next, point_changed) = compute(realtime, &self.scope, &self.filter, &st.sent);
        let inc_cluster = next.cluster != st.sent.cluster;
        let inc_rates = refresh && next.rates != st.sent.rates;
        let inc_buffer = refresh && next.buffer != st.sent.buffer;
        if refresh {
            st.refreshed = now;
        }
        let prev_resources = std::mem::take(&mut st.sent.resources);
        let sent = Sent {
            ts_ms: next.ts_ms,
            rates: if inc_rates { next.rates } else { st.sent.rates },
            resources: next.resources,
            buffer: if inc_buffer {
                next.buffer
            } else {
                std::mem::take(&mut st.sent.buffer)
            },
            point: next.point,
            cluster: next.cluster,
        };
        st.sent = sent;
        let prev_seq = st.seq;
        st.seq = seq;
        // Only what changed: the fields of the resources that moved, or the whole list when the
        // set of resources itself changed.
        let same_names = prev_resources.len() == st.sent.resources.len()
            && prev_resources
                .iter()
                .zip(&st.sent.resources)
                .all(|(a, b)| a.name == b.name);
        let changes: Vec<ResourceChange> = if same_names {
            prev_resources
                .iter()
                .zip(&st.sent.resources)
                .enumerate()
                .filter_map(|(i, (old, new))| ResourceChange::between(i, old, new))
                .collect()
        } else {
            Vec::new()
        };
        let resources = if !same_names {
            Resources::Full
        } else if changes.is_empty() {
            Resources::Unchanged
        } else {
            Resources::Changes(&changes)
        };
        let delta = st.encode(
            FrameKind::Delta,
            &events,
            omitted,
            inc_rates,
            resources,
            inc_buffer,
            point_changed,
            inc_cluster,
        );
        drop(changes);
        for e in &events {
            if st.recent.len() == SNAPSHOT_EVENTS {
                st.recent.pop_front();
            }
            st.recent.push_back(e.clone());
        }
        if st.history.len() == HISTORY_FRAMES {
            st.history.pop_front();
        }
        st.history.push_back(HistoryFrame {
            seq,
            events,
            omitted,
        });
        st.snapshot = None;
        self.tx.send_replace(Arc::new(Published {
            seq,
            prev_seq,
            delta,
        }));
    }

    /// A snapshot of the newest frame for a client that last saw frame `last_seen` (`None`: a new
    /// client). When `last_seen` is remembered, the snapshot's events are exactly those of the
    /// frames after it (no gap, no duplicate); otherwise the newest events. Marks the newest
    /// frame seen in `rx` and returns its sequence number with the message.
    pub(crate) fn catch_up(
        &self,
        last_seen: Option<u64>,
        rx: &mut watch::Receiver<Arc<Published>>,
    ) -> (u64, Bytes) {
        let mut st = self.state.lock();
        // Frames are published under the state lock: the newest one is frame `st.seq`.
        rx.borrow_and_update();
        let seq = st.seq;
        let pos = last_seen.and_then(|id| st.history.iter().position(|h| h.seq == id));
        if let Some(pos) = pos {
            let mut omitted = 0u64;
            let mut events: VecDeque<&EventRecord> = VecDeque::new();
            for h in st.history.iter().skip(pos + 1) {
                omitted += h.omitted;
                for e in &h.events {
                    if events.len() == SNAPSHOT_EVENTS {
                        events.pop_front();
                        omitted += 1;
                    }
                    events.push_back(e);
                }
            }
            let events: Vec<EventRecord> = events.into_iter().cloned().collect();
            let bytes = st.encode(
                FrameKind::Snapshot,
                &events,
                omitted,
                true,
                Resources::Full,
                true,
                true,
                true,
            );
            return (seq, bytes);
        }
        if let Some((s, bytes)) = &st.snapshot {
            if *s == seq {
                return (seq, bytes.clone());
            }
        }
        let events: Vec<EventRecord> = st.recent.iter().cloned().collect();
        let bytes = st.encode(
            FrameKind::Snapshot,
            &events,
            0,
            true,
            Resources::Full,
            true,
            true,
            true,
        );
        st.snapshot = Some((seq, bytes.clone()));
        (seq, bytes)
    }
}

/// How a frame carries the resources.
#[derive(Clone, Copy)]
enum Resources<'a> {
    /// Not at all (a delta where nothing changed).
    Unchanged,
    /// The full list (snapshots, and deltas where resources came or went).
    Full,
    /// A delta's changed fields only.
    Changes(&'a [ResourceChange]),
}

impl ChannelState {
    /// Encodes frame `self.seq` from the sent values, with the chosen fields. Snapshots carry
    /// events as objects, deltas in compact form (`ev`).
    #[allow(clippy::too_many_arguments)]
    fn encode(
        &self,
        kind: FrameKind,
        events: &[EventRecord],
        omitted: u64,
        rates: bool,
        resources: Resources<'_>,
        buffer: bool,
        point: bool,
        cluster: bool,
    ) -> Bytes {
        let snapshot = kind == FrameKind::Snapshot;
        let ts_ms = self.sent.ts_ms;
        let compact: Vec<CompactEvent<'_>> = if snapshot {
            Vec::new()
        } else {
            events
                .iter()
                .map(|event| CompactEvent {
                    event,
                    frame_ts_ms: ts_ms,
                    // The list is sorted by name; an event of a resource outside it (another
                    // filter's, or folded) keeps its name.
                    resource_index: self
                        .sent
                        .resources
                        .binary_search_by(|r| (*r.name).cmp(&*event.resource))
                        .ok(),
                })
                .collect()
        };
        FrameJson {
            seq: self.seq,
            kind,
            ts_ms,
            instance: &self.instance,
            cluster: if cluster {
                self.sent.cluster.as_ref()
            } else {
                None
            },
            rates: rates.then_some(&self.sent.rates),
            resources: matches!(resources, Resources::Full)
                .then_some(self.sent.resources.as_slice()),
            res: match resources {
                Resources::Changes(changes) => Some(changes),
                _ => None,
            },
            buffer: buffer.then_some(&self.sent.buffer),
            events: snapshot.then_some(events),
            ev: (!compact.is_empty()).then_some(compact.as_slice()),
            events_omitted: (snapshot || omitted > 0).then_some(omitted),
            point: if point {
                self.sent.point.as_ref()
            } else {
                None
            },
        }
        .to_sse()
    }
}

/// The newest events of `scope` and `filter` (for a new channel's snapshots) and the cursor
/// right after them.
fn newest_events(
    realtime: &Realtime,
    scope: &Scope,
    filter: &EventFilter,
) -> (Vec<EventRecord>, Cursor) {
    let buffer = scope.buffer(realtime);
    let filter = scope.filter(realtime, filter);
    let before_ms = buffer.clock().now_ms();
    // Find where the newest SNAPSHOT_EVENTS start, then read forward from there: one locked
    // call gives both the events and the exact cursor after them (no gap, no duplicate).
    let retention = buffer.config().retention.as_secs().min(u32::MAX as u64) as u32;
    let from_ms = buffer
        .recent_events(retention, SNAPSHOT_EVENTS, &filter)
        .last()
        .map_or(before_ms, |e| e.ts_ms);
    let (events, _, cursor) =
        buffer.events_after(buffer.cursor_at(from_ms), SNAPSHOT_EVENTS, &filter);
    (events, cursor)
}

fn too_many_filters(detail: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_filters", detail)
}

/// The plain dashboard stream: default scope, no resource or user filter.
fn is_unfiltered(key: &FilterKey) -> bool {
    matches!(key, (Scope::Default, None, None))
}

/// Current values for `filter`; the flag tells whether `point` moved to a newer second than in
/// `prev` (it is only recomputed then).
fn compute(realtime: &Realtime, scope: &Scope, filter: &EventFilter, prev: &Sent) -> (Sent, bool) {
    let buffer = scope.buffer(realtime);
    let ts_ms = buffer.clock().now_ms();
    let (totals, views) = crate::snapshot::resource_views(realtime, scope, RATE_WINDOW, filter);
    let point_t = (ts_ms / 1000).saturating_sub(1);
    let (point, changed) = match prev.point {
        Some(p) if p.t == point_t => (Some(p), false),
        _ => (Some(second_point(realtime, scope, filter, point_t)), true),
    };
    let cluster = realtime.shared.cluster.as_ref().map(|c| ClusterFrame {
        state: c.state_name(),
        scope: scope.name(realtime),
        live_instances: c.live_peers(ts_ms).len() + 1,
    });
    let sent = Sent {
        ts_ms,
        rates: Rates::from_totals(&totals, RATE_WINDOW),
        resources: views.iter().map(ResourceFrame::from).collect(),
        buffer: buffer.stats().into(),
        point,
        cluster,
    };
    (sent, changed)
}

/// The aggregate of second `t` for `filter` (zero counts and the carried level when idle). With
/// a user filter the counts are that user's events (read from the events of that second), and
/// `peak_borrowed` stays the pool's (levels are not kept per user).
fn second_point(realtime: &Realtime, scope: &Scope, filter: &EventFilter, t: u64) -> SecondPoint {
    let buffer = scope.buffer(realtime);
    let filter = &scope.filter(realtime, filter);
    if filter.instance.is_some() {
        let series = buffer.seconds_filtered(t, t, filter);
        return series.points.first().copied().unwrap_or(SecondPoint {
            t,
            peak_borrowed: series.level_before,
            end_borrowed: series.level_before,
            ..SecondPoint::default()
        });
    }
    let series = buffer.seconds(t, t, filter.resource.as_deref());
    let mut p = series.points.first().copied().unwrap_or(SecondPoint {
        t,
        peak_borrowed: series.level_before,
        end_borrowed: series.level_before,
        ..SecondPoint::default()
    });
    if filter.user.is_some() {
        p.borrows = 0;
        p.overage_borrows = 0;
        p.returns = 0;
        p.failures = 0;
        let end_ms = (t + 1) * 1000;
        let mut cursor = buffer.cursor_at(t * 1000);
        'pages: loop {
            let (page, next) = buffer.page(cursor, 1000, filter);
            if page.is_empty() {
                break;
            }
            for e in &page {
                if e.ts_ms >= end_ms {
                    break 'pages;
                }
                match e.kind {
                    crate::event::EventKind::Borrow => {
                        p.borrows += 1;
                        p.overage_borrows += e.overage as u32;
                    }
                    crate::event::EventKind::Return => p.returns += 1,
                    crate::event::EventKind::Failure => p.failures += 1,
                }
            }
            cursor = next;
        }
    }
    p
}

impl Realtime {
    /// The hub of this instance, started (with its task) on first use. Needs a Tokio runtime.
    pub(crate) fn stream_hub(&self) -> &Arc<StreamHub> {
        self.shared.stream_hub.get_or_init(|| {
            let hub = Arc::new(StreamHub::new(self.buffer().clock().now_ms()));
            tokio::spawn(run(Arc::downgrade(&self.shared), hub.clone()));
            hub
        })
    }

    /// Live streams cut so far because their client accepted no bytes within the server's write
    /// timeout (a stalled reader; see [`serve`](crate::serve)).
    pub fn slow_stream_disconnects(&self) -> u64 {
        self.shared
            .stream_hub
            .get()
            .map_or(0, |hub| hub.slow_disconnects())
    }

    /// The JSON snapshot frame a new `/realtime/stream` client with `filter` would receive now,
    /// built from scratch (what the stream does once per channel; its per-tick frames cost the
    /// same or less). For debugging, tests and benchmarks; needs no runtime.
    ///
    /// ```
    /// use realtime_layer::{Event, Realtime};
    ///
    /// let realtime = Realtime::builder().build().unwrap();
    /// realtime.record(Event::borrow("GPU", "ann"));
    /// let frame: serde_json::Value =
    ///     serde_json::from_str(&realtime.snapshot_frame(&Default::default())).unwrap();
    /// assert_eq!(frame["kind"], "snapshot");
    /// assert_eq!(frame["resources"][0]["borrowed"], 1);
    /// assert_eq!(frame["events"][0]["user"], "ann");
    /// ```
    pub fn snapshot_frame(&self, filter: &EventFilter) -> String {
        crate::cluster::view::feed(self);
        let ch = Channel::new(self, Scope::Default, filter.clone(), 1);
        let mut rx = ch.subscribe();
        let (_, bytes) = ch.catch_up(None, &mut rx);
        String::from_utf8(frame_json(&bytes).to_vec()).expect("frames are UTF-8")
    }
}

/// The JSON of an SSE-encoded frame message (`id: N\ndata: JSON\n\n`, as built by the hub): a
/// slice of the same buffer (a reference count, no copy, no re-serialisation), for transports
/// that carry the bare JSON (`/realtime/ws`).
pub(crate) fn frame_json(message: &Bytes) -> Bytes {
    const DATA: &[u8] = b"data: ";
    let start = message
        .windows(DATA.len())
        .position(|w| w == DATA)
        .map_or(0, |i| i + DATA.len());
    let end = message[start..]
        .iter()
        .rposition(|&b| b != b'\n')
        .map_or(start, |i| start + i + 1);
    message.slice(start..end)
}

/// The hub's task: a frame per tick, or soon after activity (coalesced, at most one per
/// `push_delay`). Ends on shutdown or when the instance is gone.
async fn run(weak: Weak<Shared>, hub: Arc<StreamHub>) {
    // Only these two are held while waiting, never the instance itself: dropping the last
    // `Realtime` handle ends the task at its next wake-up.
    let Some((activity, shutdown, config)) = weak.upgrade().map(|s| {
        (
            s.activity.clone(),
            s.shutdown.clone(),
            s.stream_config.clone(),
        )
    }) else {
        return;
    };
    let mut last_build = Instant::now();
    loop {
        let active = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = activity.notified() => true,
            _ = tokio::time::sleep_until(last_build + config.tick) => false,
        };
        if active {
            // Coalesce a burst briefly, and keep to one frame per push_delay.
            let coalesce = config.push_delay / 10;
            let at = (Instant::now() + coalesce).max(last_build + config.push_delay);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(at) => {}
            }
        }
        // This frame reads every event recorded so far: drop a wake-up already pending.
        activity.consume();
        let Some(shared) = weak.upgrade() else { return };
        let now = Instant::now();
        hub.build_all(&Realtime { shared }, now);
        last_build = now;
    }
}
