//! The lease vocabulary shared by both wire formats: event names, attribute names, limits on
//! names, and turning one sender record into an [`Event`] at its sender's time.

use crate::buffer::TimedEvent;
use crate::event::{Event, EXPIRED_REASON};

/// Longest resource, user, reason or borrow id taken (bytes); longer ones make the record
/// malformed, so a sender cannot grow the name tables with megabyte names.
pub const MAX_NAME_BYTES: usize = 256;

/// The event names (OTLP `eventName` or the `event.name` attribute; NDJSON `kind` without the
/// `lease.` prefix) and what each records.
pub const EVENT_NAMES: [&str; 4] = [
    "lease.borrow",
    "lease.return",
    "lease.failure",
    "lease.expired",
];

/// What a sender's record says, before validation (borrowed from the decoded request).
#[derive(Debug, Default, Clone)]
pub(crate) struct LeaseRecord<'a> {
    /// `borrow`, `return`, `failure` or `expired`.
    pub(crate) kind: &'a str,
    pub(crate) resource: Option<&'a str>,
    pub(crate) user: Option<&'a str>,
    pub(crate) borrow_id: Option<std::borrow::Cow<'a, str>>,
    pub(crate) reason: Option<&'a str>,
    pub(crate) overage: bool,
    /// The sender's time, Unix ms (`None`: not given, taken as the time of arrival).
    pub(crate) ts_ms: Option<u64>,
}

fn name<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, String> {
    match value {
        None => Err(format!("missing {field}")),
        Some("") => Err(format!("empty {field}")),
        Some(v) if v.len() > MAX_NAME_BYTES => {
            Err(format!("{field} longer than {MAX_NAME_BYTES} bytes"))
        }
        Some(v) => Ok(v),
    }
}

fn optional<'a>(field: &str, value: Option<&'a str>) -> Result<Option<&'a str>, String> {
    match value {
        Some(v) if v.len() > MAX_NAME_BYTES => {
            Err(format!("{field} longer than {MAX_NAME_BYTES} bytes"))
        }
        Some("") | None => Ok(None),
        Some(v) => Ok(Some(v)),
    }
}

impl LeaseRecord<'_> {
    /// The event at its time (`now_ms` when the sender gave none), or why it is malformed.
    /// Resource and user names are checked; `field` names the attributes in the message
    /// (`lease.resource` for OTLP, `resource` for NDJSON).
    pub(crate) fn to_event(&self, now_ms: u64, otlp: bool) -> Result<TimedEvent, String> {
        let f = |plain: &'static str, attr: &'static str| if otlp { attr } else { plain };
        let resource = name(f("resource", "lease.resource"), self.resource)?.to_owned();
        let user = name(f("user", "lease.user"), self.user)?.to_owned();
        let reason = optional(f("reason", "lease.reason"), self.reason)?;
        let id = optional(f("borrow_id", "lease.id"), self.borrow_id.as_deref())?;
        let event = match self.kind {
            "borrow" => Event::borrow(resource, user).overage(self.overage),
            "return" => Event::returned(resource, user),
            "expired" => Event::expired(resource, user),
            "failure" => Event::failure(resource, user, reason.unwrap_or("unknown").to_owned()),
            other => {
                return Err(format!(
                    "unknown kind {other:?} (borrow, return, failure or expired)"
                ))
            }
        };
        let event = match (id, self.kind) {
            (Some(id), "borrow" | "return" | "expired") => event.borrow_id(id.to_owned()),
            _ => event,
        };
        debug_assert!(self.kind != "expired" || event.reason() == Some(EXPIRED_REASON));
        Ok(TimedEvent {
            ts_ms: self.ts_ms.unwrap_or(now_ms),
            event,
        })
    }
}

/// The kind of an OTLP event name (`lease.borrow` → `borrow`), `None` for other names.
pub(crate) fn kind_of_event_name(name: &str) -> Option<&str> {
    name.strip_prefix("lease.")
        .filter(|k| matches!(*k, "borrow" | "return" | "failure" | "expired"))
}
