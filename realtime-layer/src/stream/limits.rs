//! The stream's fixed limits: frame sizes, remembered frames, filters per server and per client.

use std::time::Duration;

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
