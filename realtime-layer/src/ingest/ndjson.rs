//! `POST /ingest` bodies: one JSON event per line,
//! `{"kind","resource","user","borrow_id","reason","overage","ts_ms"}`.

use super::lease::LeaseRecord;
use crate::buffer::TimedEvent;
use serde::Deserialize;
use std::borrow::Cow;

/// Errors listed in an answer (the rest are only counted).
pub const MAX_LISTED_ERRORS: usize = 20;

/// One line as sent. Unknown fields are ignored (newer senders, extra context).
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    borrow_id: Option<Id<'a>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(default)]
    overage: bool,
    #[serde(default)]
    ts_ms: Option<u64>,
}

/// A borrow id: a string, or an integer (kept as its decimal spelling).
#[derive(Deserialize)]
#[serde(untagged)]
enum Id<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(u64),
}

/// A line that was not taken, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    /// Line number (1-based).
    pub line: usize,
    /// Why.
    pub error: String,
}

/// The events of a body and its bad lines (all of them: the answer lists the first ones).
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) events: Vec<TimedEvent>,
    /// Line numbers of the events (same order), for errors found later (time checks).
    pub(crate) lines: Vec<usize>,
    pub(crate) errors: Vec<LineError>,
}

/// Parses an NDJSON body; empty lines (and a trailing `\r`) are skipped. `now_ms` stamps
/// events without `ts_ms`.
pub(crate) fn parse(body: &[u8], now_ms: u64) -> Parsed {
    let mut out = Parsed::default();
    for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = i + 1;
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(e) => {
                out.errors.push(LineError {
                    line,
                    error: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                });
                continue;
            }
        };
        match serde_json::from_str::<Line>(text) {
            Ok(l) => {
                let id = l.borrow_id.as_ref().map(|id| match id {
                    Id::Text(t) => Cow::Borrowed(t.as_ref()),
                    Id::Number(n) => Cow::Owned(n.to_string()),
                });
                let record = LeaseRecord {
                    kind: &l.kind,
                    resource: l.resource.as_deref(),
                    user: l.user.as_deref(),
                    borrow_id: id,
                    reason: l.reason.as_deref(),
                    overage: l.overage,
                    ts_ms: l.ts_ms,
                };
                match record.to_event(now_ms, false) {
                    Ok(event) => {
                        out.events.push(event);
                        out.lines.push(line);
                    }
                    Err(error) => out.errors.push(LineError { line, error }),
                }
            }
            Err(e) => out.errors.push(LineError {
                line,
                error: format!("invalid event: {e}"),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn lines_events_and_errors() {
        let body = b"{\"kind\":\"borrow\",\"resource\":\"GPU \\\"A\\\"\",\"user\":\"ann\",\"borrow_id\":42,\"overage\":true,\"ts_ms\":1000}\r\n\
\n\
{\"kind\":\"return\",\"resource\":\"gpu\",\"user\":\"ann\",\"borrow_id\":\"42\"}\n\
{\"kind\":\"lend\",\"resource\":\"gpu\",\"user\":\"ann\"}\n\
{\"kind\":\"failure\",\"user\":\"ann\"}\n\
not json\n\
{\"kind\":\"failure\",\"resource\":\"gpu\",\"user\":\"\xff\"}\n\
{\"kind\":\"expired\",\"resource\":\"gpu\",\"user\":\"bo\",\"borrow_id\":\"9\",\"extra\":1}";
        let p = parse(body, 5_000);
        assert_eq!(p.events.len(), 3);
        assert_eq!(p.lines, vec![1, 3, 8]);
        let first = &p.events[0];
        assert_eq!((first.ts_ms, first.event.resource()), (1000, "GPU \"A\""));
        assert!(first.event.is_overage());
        assert_eq!(first.event.borrow_id_str(), Some("42"));
        assert_eq!(p.events[1].ts_ms, 5_000, "no ts_ms: the time of arrival");
        assert_eq!(p.events[2].event.kind(), EventKind::Return);
        assert_eq!(p.events[2].event.reason(), Some("expired"));
        let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7]);
        assert!(p.errors[0].error.contains("unknown kind"));
        assert!(p.errors[1].error.contains("missing resource"));
        assert!(p.errors[3].error.contains("invalid UTF-8"));
    }
}
