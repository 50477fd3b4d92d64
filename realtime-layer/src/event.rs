//! The event model: what a resource pool tells the layer.

use axum::response::{IntoResponseParts, ResponseParts};
use serde::Serialize;
use std::borrow::Cow;
use std::convert::Infallible;

/// The reason of a return the pool made itself because a lease ran out ([`Event::expired`]).
pub const EXPIRED_REASON: &str = "expired";

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A client checked a resource out.
    Borrow,
    /// A client gave a resource back.
    Return,
    /// A checkout was refused (pool exhausted, limit reached, unknown resource...).
    Failure,
}

impl EventKind {
    /// The lowercase wire name (`borrow`, `return`, `failure`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Borrow => "borrow",
            EventKind::Return => "return",
            EventKind::Failure => "failure",
        }
    }
}

/// One borrow, return or failure of a pooled resource.
///
/// Events carry no timestamp: the buffer stamps them with its [`Clock`](crate::Clock) when they are
/// recorded, so tests can move time without sleeping.
///
/// Names are `Cow<'static, str>`: string literals (and other `&'static str`) are kept as borrowed
/// pointers, so an event with fixed names costs no allocation to build or drop; a `String` is
/// moved in as is. Borrowed names of a shorter lifetime are passed as owned strings
/// (`name.to_owned()`, `name.clone()`).
///
/// ```
/// use realtime_layer::{Event, EventKind};
///
/// let borrow = Event::borrow("GPU A100", "alice").overage(true).borrow_id("42");
/// let give_back = Event::returned("GPU A100", "alice").borrow_id("42");
/// let refused = Event::failure("GPU A100", "bob", "exhausted");
/// assert_eq!(refused.kind(), EventKind::Failure);
/// assert_eq!(refused.reason(), Some("exhausted"));
/// assert!(borrow.is_overage());
/// assert_eq!(give_back.borrow_id_str(), Some("42"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    kind: EventKind,
    resource: Cow<'static, str>,
    user: Cow<'static, str>,
    borrow_id: Option<Cow<'static, str>>,
    overage: bool,
    reason: Option<Cow<'static, str>>,
}

impl Event {
    fn new(
        kind: EventKind,
        resource: impl Into<Cow<'static, str>>,
        user: impl Into<Cow<'static, str>>,
    ) -> Self {
        Event {
            kind,
            resource: resource.into(),
            user: user.into(),
            borrow_id: None,
            overage: false,
            reason: None,
        }
    }

    /// A successful checkout of `resource` by `user`.
    pub fn borrow(
        resource: impl Into<Cow<'static, str>>,
        user: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(EventKind::Borrow, resource, user)
    }

    /// `user` gave `resource` back.
    pub fn returned(
        resource: impl Into<Cow<'static, str>>,
        user: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(EventKind::Return, resource, user)
    }

    /// A refused checkout; `reason` is a short machine string such as `exhausted`.
    pub fn failure(
        resource: impl Into<Cow<'static, str>>,
        user: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut event = Self::new(EventKind::Failure, resource, user);
        event.reason = Some(reason.into());
        event
    }

    /// The pool took `resource` back from `user` because the borrow's lease ran out: a return
    /// (counted as one everywhere) whose [`reason`](Event::reason) is `expired`, so event lists
    /// can tell it from a return by the client.
    ///
    /// ```
    /// use realtime_layer::{Event, EventKind};
    ///
    /// let expiry = Event::expired("seat-1", "ann").borrow_id("42");
    /// assert_eq!(expiry.kind(), EventKind::Return);
    /// assert_eq!(expiry.reason(), Some("expired"));
    /// ```
    pub fn expired(
        resource: impl Into<Cow<'static, str>>,
        user: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut event = Self::new(EventKind::Return, resource, user);
        event.reason = Some(EXPIRED_REASON.into());
        event
    }

    /// Marks a borrow as an overage borrow (above the committed quantity). Ignored on other kinds.
    pub fn overage(mut self, overage: bool) -> Self {
        self.overage = overage && self.kind == EventKind::Borrow;
        self
    }

    /// Attaches the borrow id (borrows and returns; ignored on failures).
    pub fn borrow_id(mut self, id: impl Into<Cow<'static, str>>) -> Self {
        if self.kind != EventKind::Failure {
            self.borrow_id = Some(id.into());
        }
        self
    }

    /// The kind of event.
    pub fn kind(&self) -> EventKind {
        self.kind
    }
    /// The resource (pool entry) name.
    pub fn resource(&self) -> &str {
        &self.resource
    }
    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The resource name as held (borrowed `'static` or owned).
    pub(crate) fn resource_name(&self) -> &Cow<'static, str> {
        &self.resource
    }
    /// The user name as held (borrowed `'static` or owned).
    pub(crate) fn user_name(&self) -> &Cow<'static, str> {
        &self.user
    }
    /// The borrow id, if one was attached.
    pub fn borrow_id_str(&self) -> Option<&str> {
        self.borrow_id.as_deref()
    }
    /// Whether this borrow was above the committed quantity.
    pub fn is_overage(&self) -> bool {
        self.overage
    }
    /// The failure reason (failures), or `expired` for an [expiry](Event::expired).
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

/// Events a handler attaches to its response; [`RealtimeLayer`](crate::RealtimeLayer) records and
/// removes them when the response passes.
///
/// Handlers rarely name this type: returning an [`Event`] (or several) as a response part pushes it
/// here. Insert it directly when you build responses by hand:
///
/// ```
/// use realtime_layer::{Event, RealtimeEvents};
///
/// let mut response = http::Response::new(());
/// RealtimeEvents::push_into(response.extensions_mut(), Event::borrow("seat-1", "ann"));
/// assert_eq!(response.extensions().get::<RealtimeEvents>().unwrap().len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RealtimeEvents(pub Vec<Event>);

impl RealtimeEvents {
    /// Appends `event` to the events already in `extensions` (creating the list if needed).
    pub fn push_into(extensions: &mut http::Extensions, event: Event) {
        match extensions.get_mut::<RealtimeEvents>() {
            Some(events) => events.0.push(event),
            None => {
                extensions.insert(RealtimeEvents(vec![event]));
            }
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<Event>> for RealtimeEvents {
    fn from(events: Vec<Event>) -> Self {
        RealtimeEvents(events)
    }
}

/// Lets an axum handler return `(Event::borrow(..), Json(body))`.
impl IntoResponseParts for Event {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        RealtimeEvents::push_into(res.extensions_mut(), self);
        Ok(res)
    }
}

/// Lets an axum handler return several events at once.
impl IntoResponseParts for RealtimeEvents {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        for event in self.0 {
            RealtimeEvents::push_into(res.extensions_mut(), event);
        }
        Ok(res)
    }
}
