//! `GET /realtime/events.csv?window=SECONDS&resource=NAME&user=NAME&raw=BOOL`: the buffered events
//! as RFC 4180 CSV, streamed page by page (the buffer lock is held for one page at a time, and
//! memory stays at one page whatever the export size).
//!
//! Names come from clients, so by default text cells a spreadsheet would evaluate as a formula
//! (starting with `=`, `+`, `-`, `@`, tab or CR) get a leading `'` (OWASP's CSV injection advice);
//! `raw=true` exports them exactly.

use super::params::{self, Params};
use super::RouteState;
use crate::buffer::{Cursor, EventFilter, EventRecord};
use crate::core::Core;
use crate::error::ApiError;
use crate::event::EventKind;
use crate::views::{Scope, Source};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;

/// Events per page (and per body chunk).
const PAGE: usize = 1000;

/// The header row.
pub(crate) const HEADER: [&str; 7] = [
    "ts",
    "kind",
    "resource",
    "user",
    "borrow_id",
    "overage",
    "reason",
];

/// `2025-11-28T15:00:00.123Z`.
pub(crate) fn rfc3339_ms(ts_ms: u64) -> String {
    let secs = (ts_ms / 1000).min(i64::MAX as u64) as i64;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            dt.month() as u8,
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            ts_ms % 1000
        ),
        Err(_) => ts_ms.to_string(),
    }
}

/// `cell` with a leading `'` when a spreadsheet would read it as a formula.
pub(super) fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Rows of `events` (plus the header when `header`), quoted as RFC 4180 requires; text cells
/// neutralised unless `raw`. Cluster views add an `instance` column (the instance that recorded
/// each event).
fn encode(events: &[EventRecord], header: bool, instance: bool, raw: bool) -> Bytes {
    let text = |cell: &str| -> String {
        if raw {
            cell.to_owned()
        } else {
            neutralise(cell).into_owned()
        }
    };
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(events.len() * 80 + 64));
    if header {
        let _ = w.write_record(HEADER.iter().chain(instance.then_some(&"instance")));
    }
    for e in events {
        let ts = rfc3339_ms(e.ts_ms);
        let overage = match e.kind {
            EventKind::Borrow if e.overage => "true",
            EventKind::Borrow => "false",
            _ => "",
        };
        let row = [
            ts,
            e.kind.as_str().to_owned(),
            text(&e.resource),
            text(&e.user),
            text(e.borrow_id.as_deref().unwrap_or("")),
            overage.to_owned(),
            text(e.reason.as_deref().unwrap_or("")),
        ];
        let origin = instance.then(|| text(e.instance.as_deref().unwrap_or("")));
        let _ = w.write_record(row.iter().map(String::as_str).chain(origin.as_deref()));
    }
    Bytes::from(w.into_inner().unwrap_or_default())
}

struct Export {
    core: Arc<Core>,
    /// The buffer the cursor walks (fixed for the whole export).
    source: Source,
    filter: EventFilter,
    cursor: Cursor,
    /// Events recorded after this (during the export) are left out, so the export ends.
    until_ms: u64,
    header: bool,
    raw: bool,
    done: bool,
}

impl Export {
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let buffer = Scope::buffer_of(self.source, &self.core);
        let (mut page, next) = buffer.page(self.cursor, PAGE, &self.filter);
        self.cursor = next;
        if page.len() < PAGE {
            self.done = true;
        }
        if let Some(cut) = page.iter().position(|e| e.ts_ms > self.until_ms) {
            page.truncate(cut);
            self.done = true;
        }
        if page.is_empty() && !self.header {
            return None;
        }
        let bytes = encode(&page, self.header, self.source == Source::Cluster, self.raw);
        self.header = false;
        Some(bytes)
    }
}

pub(crate) async fn events_csv(
    State(routes): State<RouteState>,
    Params(q): Params,
) -> Result<Response, ApiError> {
    let core = &*routes.core;
    let retention = core.buffer.config().retention.as_secs();
    let window = params::window(&q, core, retention.min(u32::MAX as u64) as u32)?;
    let scope = params::scope(&q, core)?;
    let filter = params::filter(&q, core, &scope)?;
    let filter = scope.filter(core, &filter);
    let source = scope.source(core);
    let buffer = Scope::buffer_of(source, core);
    let now = buffer.clock().now_ms();
    let cursor = buffer.cursor_at(now.saturating_sub(window as u64 * 1000));
    let raw = match q.get("raw").map(|v| v.trim()) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_raw",
                format!("raw must be true or false, got {other:?}"),
            ))
        }
    };
    let export = Export {
        core: routes.core.clone(),
        source,
        filter,
        cursor,
        until_ms: now,
        header: true,
        raw,
        done: false,
    };
    let body = futures_util::stream::unfold(export, |mut export| async move {
        // Let other tasks run between pages of a long export.
        tokio::task::yield_now().await;
        let chunk = export.next_chunk()?;
        Some((Ok::<_, Infallible>(chunk), export))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"realtime-events.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn formula_cells_get_a_quote() {
        for cell in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        for cell in ["ann", "", "a=b", "'quoted", "1-2"] {
            assert_eq!(neutralise(cell), cell);
        }
    }
}
