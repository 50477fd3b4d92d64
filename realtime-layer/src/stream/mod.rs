//! The live stream: compute once, send to everyone.
//!
//! One [`StreamHub`] per [`Realtime`] owns one [`Channel`] per distinct `(resource, user)` filter.
//! A single background task (started on the first subscription, stopped by the shutdown token or
//! when the instance is dropped) builds one frame per channel per tick, or `push_delay` at most
//! after an event, serialises it once into an SSE message ([`Bytes`]) and publishes it on the
//! channel's fanout (the newest frame, like a watch channel, with one waker per reader). Every
//! client of that filter writes the same `Bytes` (a reference count, no copy); a slow client
//! simply sees the newest frame next and, having missed one, gets a catch-up snapshot instead of
//! the delta, so it never blocks the others nor queues memory.
//!
//! A frame costs O(resources + new events): rates and peaks come from the per-second aggregates,
//! new events from a cursor, and the previous values are kept to leave unchanged fields out.
//!
//! Files: `hub` (channels per filter, fairness limits, the frame task), `channel` (one filter's
//! frames, resumes and catch-up snapshots), `compute` (a frame's values, through the views),
//! `delta` (encoding snapshots and deltas), `fanout` (the newest frame and its readers' wakers),
//! `frame` (the JSON shapes), `limits`.

mod channel;
mod compute;
mod delta;
mod fanout;
mod frame;
mod hub;
mod limits;

pub(crate) use channel::{snapshot_frame, Channel, Published};
pub(crate) use fanout::FanoutRx;
pub(crate) use frame::{frame_json, KEEP_ALIVE};
pub(crate) use hub::{FilterLease, LiveStream, Subscribed};
pub(crate) use limits::RETRY_MS;
