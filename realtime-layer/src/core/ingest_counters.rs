//! What the ingest endpoints of `realtime-sidecar` did (feature `sidecar`): accepted, duplicate,
//! late, ignored and refused events and requests, by a fixed set of reasons.
//!
//! Here, below the ingest module, because `/realtime/stats` and `/metrics` read them: plain
//! atomics, written by the ingest handlers and the apply task, read by the answers.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an event was not stored (a fixed set: exported as a metric attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// A field missing or of the wrong type, an unknown kind, a name too long.
    Malformed,
    /// Older than the retention.
    TooOld,
    /// Further in the future than the allowed clock skew.
    Future,
    /// A token not allowed for the event's resource (the whole request is refused: 403).
    Forbidden,
    /// Over the token's rate (the whole request is refused: 429).
    RateLimited,
    /// The apply queue over its high-water mark (the whole request is refused: 503).
    Overloaded,
}

impl Rejection {
    /// Every reason, in export order.
    pub(crate) const ALL: [Rejection; 6] = [
        Rejection::Malformed,
        Rejection::TooOld,
        Rejection::Future,
        Rejection::Forbidden,
        Rejection::RateLimited,
        Rejection::Overloaded,
    ];

    /// The wire name (`/realtime/stats`, the `reason` attribute of `/metrics`).
    pub(crate) fn code(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::TooOld => "too_old",
            Rejection::Future => "future",
            Rejection::Forbidden => "forbidden",
            Rejection::RateLimited => "rate_limited",
            Rejection::Overloaded => "overloaded",
        }
    }
}

/// Why a whole request was refused before its events could be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IngestRefusal {
    /// No or an unknown token (401).
    Unauthorized,
    /// A body over the cap, before or after decompression (413).
    TooLarge,
    /// A content type or encoding the endpoint does not take (415).
    Unsupported,
    /// A body that does not decode at all: bad gzip, protobuf or JSON (400).
    BadBody,
}

impl IngestRefusal {
    /// Every reason, in export order.
    pub(crate) const ALL: [IngestRefusal; 4] = [
        IngestRefusal::Unauthorized,
        IngestRefusal::TooLarge,
        IngestRefusal::Unsupported,
        IngestRefusal::BadBody,
    ];

    /// The wire name.
    pub(crate) fn code(self) -> &'static str {
        match self {
            IngestRefusal::Unauthorized => "unauthorized",
            IngestRefusal::TooLarge => "too_large",
            IngestRefusal::Unsupported => "unsupported",
            IngestRefusal::BadBody => "bad_body",
        }
    }
}

/// The ingest counters of one instance (since start).
#[derive(Debug, Default)]
pub(crate) struct IngestCounters {
    pub(crate) stored: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) late: AtomicU64,
    pub(crate) clamped_future: AtomicU64,
    pub(crate) ignored: AtomicU64,
    rejected: [AtomicU64; 6],
    refused: [AtomicU64; 4],
    /// Events waiting in the apply queue now.
    pub(crate) queued: AtomicU64,
}

impl IngestCounters {
    /// Counts `n` events rejected for `why`.
    pub(crate) fn reject(&self, why: Rejection, n: u64) {
        let i = Rejection::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejected[i].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one request refused for `why`.
    pub(crate) fn refuse(&self, why: IngestRefusal) {
        let i = IngestRefusal::ALL
            .iter()
            .position(|r| *r == why)
            .unwrap_or(0);
        self.refused[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot for the answers.
    pub(crate) fn snapshot(&self) -> IngestStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngestStats {
            stored: load(&self.stored),
            duplicates: load(&self.duplicates),
            late: load(&self.late),
            clamped_future: load(&self.clamped_future),
            ignored: load(&self.ignored),
            rejected: Rejection::ALL
                .iter()
                .zip(&self.rejected)
                .map(|(r, c)| (r.code(), load(c)))
                .collect(),
            refused_requests: IngestRefusal::ALL
                .iter()
                .zip(&self.refused)
                .map(|(r, c)| (r.code(), load(c)))
                .collect(),
            queued: load(&self.queued),
        }
    }
}

/// What the ingest endpoints did since start (`realtime-sidecar`; the `ingest` object of
/// `/realtime/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestStats {
    /// Events stored (counted once).
    pub stored: u64,
    /// Borrows and returns whose borrow id the buffer already held (a sender's retry): not
    /// counted again.
    pub duplicates: u64,
    /// Stored events older than the newest one stored then, counted in their own second.
    pub late: u64,
    /// Stored events stamped a little in the future (within the allowed skew), taken as now.
    pub clamped_future: u64,
    /// OTLP log records that are not lease events (no `lease.*` event name): skipped.
    pub ignored: u64,
    /// Events not stored, by reason (`malformed`, `too_old`, `future`, `forbidden`,
    /// `rate_limited`, `overloaded`).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Requests refused before their events could be read, by reason (`unauthorized`,
    /// `too_large`, `unsupported`, `bad_body`).
    pub refused_requests: BTreeMap<&'static str, u64>,
    /// Events waiting to be applied now.
    pub queued: u64,
}

impl IngestStats {
    /// Events rejected for `reason` (0 for an unknown reason).
    pub fn rejected(&self, reason: &str) -> u64 {
        self.rejected.get(reason).copied().unwrap_or(0)
    }
}
