//! One filter's frames: the channel that builds them (a delta per tick or after activity), keeps
//! the last frames for exact resumes, and answers catch-up snapshots.

use super::compute::{compute, newest_events, Sent};
use super::delta::{self, Fields, Resources};
use super::fanout::{Fanout, FanoutRx};
use super::frame::{frame_json, FrameKind, ResourceChange};
use super::limits::{HISTORY_FRAMES, MAX_FRAME_EVENTS, SNAPSHOT_EVENTS};
use crate::buffer::{Cursor, EventFilter, EventRecord};
use crate::core::Core;
use crate::views::{Scope, Source};
use axum::body::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One published frame: its sequence number, the previous frame's (to detect skipped frames) and
/// the encoded delta message; or, once the instance shuts down, the end of the stream.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) seq: u64,
    pub(crate) prev_seq: u64,
    pub(crate) delta: Bytes,
    /// The last value of the channel: its streams end (published once, at shutdown).
    pub(crate) closing: bool,
}

#[derive(Debug)]
struct HistoryFrame {
    seq: u64,
    events: Vec<EventRecord>,
    omitted: u64,
}

pub(super) struct ChannelState {
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
    pub(super) idle_since: Option<Instant>,
}

/// The frames of one filter.
pub(crate) struct Channel {
    pub(super) scope: Scope,
    pub(super) filter: EventFilter,
    pub(super) frames: Arc<Fanout<Arc<Published>>>,
    pub(super) state: Mutex<ChannelState>,
}

impl Channel {
    /// A channel whose first frame (seq `seq`) reflects the buffer now, with the newest events
    /// for snapshots.
    pub(super) fn new(core: &Core, scope: Scope, filter: EventFilter, seq: u64) -> Channel {
        let source = scope.source(core);
        let (events, cursor) = newest_events(core, &scope, &filter);
        let now = Instant::now();
        let frames = Arc::new(Fanout::new(Arc::new(Published {
            seq: 0,
            prev_seq: 0,
            delta: Bytes::new(),
            closing: false,
        })));
        let ch = Channel {
            scope,
            filter,
            frames,
            state: Mutex::new(ChannelState {
                instance: core.instance_id.clone(),
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
            let (sent, _) = compute(core, &ch.scope, &ch.filter, &st.sent);
            st.sent = sent;
            st.seq = seq;
            st.history.push_back(HistoryFrame {
                seq,
                events: Vec::new(),
                omitted: 0,
            });
            let delta = st.encode(FrameKind::Delta, Fields::all(&[], 0));
            ch.frames.publish(Arc::new(Published {
                seq,
                prev_seq: 0,
                delta,
                closing: false,
            }));
        }
        ch
    }

    /// A receiver of this channel's frames.
    pub(crate) fn subscribe(&self) -> FanoutRx<Arc<Published>> {
        self.frames.subscribe()
    }

    /// Builds and publishes the next frame.
    pub(super) fn build(&self, core: &Core, seq: u64, now: Instant, tick: Duration) {
        let mut st = self.state.lock();
        let source = self.scope.source(core);
        let buffer = Scope::buffer_of(source, core);
        let filter = self.scope.filter(core, &self.filter);
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
        let (next, point_changed) = compute(core, &self.scope, &self.filter, &st.sent);
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
            Fields {
                events: &events,
                omitted,
                rates: inc_rates,
                resources,
                buffer: inc_buffer,
                point: point_changed,
                cluster: inc_cluster,
            },
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
        self.frames.publish(Arc::new(Published {
            seq,
            prev_seq,
            delta,
            closing: false,
        }));
    }

    /// Ends every stream of this channel (at shutdown). Streams learn it from the channel they
    /// already wait on, so no stream has to poll the shutdown token on each of its frames.
    pub(super) fn close(&self) {
        let st = self.state.lock();
        self.frames.publish(Arc::new(Published {
            seq: st.seq,
            prev_seq: st.seq,
            delta: Bytes::new(),
            closing: true,
        }));
    }

    /// A snapshot of the newest frame for a client that last saw frame `last_seen` (`None`: a new
    /// client). When `last_seen` is remembered, the snapshot's events are exactly those of the
    /// frames after it (no gap, no duplicate); otherwise the newest events. Marks the newest
    /// frame seen in `rx` and returns its sequence number with the message.
    pub(crate) fn catch_up(
        &self,
        last_seen: Option<u64>,
        rx: &mut FanoutRx<Arc<Published>>,
    ) -> (u64, Bytes) {
        let mut st = self.state.lock();
        // Frames are published under the state lock: the newest one is frame `st.seq`.
        rx.mark_seen();
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
            let bytes = st.encode(FrameKind::Snapshot, Fields::all(&events, omitted));
            return (seq, bytes);
        }
        if let Some((s, bytes)) = &st.snapshot {
            if *s == seq {
                return (seq, bytes.clone());
            }
        }
        let events: Vec<EventRecord> = st.recent.iter().cloned().collect();
        let bytes = st.encode(FrameKind::Snapshot, Fields::all(&events, 0));
        st.snapshot = Some((seq, bytes.clone()));
        (seq, bytes)
    }
}

impl ChannelState {
    /// Encodes frame `self.seq` from the sent values, with the chosen fields.
    fn encode(&self, kind: FrameKind, fields: Fields<'_>) -> Bytes {
        delta::encode(self.seq, &self.instance, &self.sent, kind, fields)
    }
}

/// The JSON snapshot frame a new unfiltered-scope client with `filter` would receive now, built
/// from scratch (see [`Realtime::snapshot_frame`](crate::Realtime::snapshot_frame)).
pub(crate) fn snapshot_frame(core: &Core, filter: &EventFilter) -> String {
    core.feed_cluster();
    let ch = Channel::new(core, Scope::Default, filter.clone(), 1);
    let mut rx = ch.subscribe();
    let (_, bytes) = ch.catch_up(None, &mut rx);
    String::from_utf8(frame_json(&bytes).to_vec()).expect("frames are UTF-8")
}
