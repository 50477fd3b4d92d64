//! Classifiers: events from request/response facts, for handlers that know nothing of the layer.

use crate::event::Event;
use http::{HeaderMap, Method, StatusCode, Uri};

/// What a classifier may read of the request (captured before the inner service runs).
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// Request method.
    pub method: Method,
    /// Request URI.
    pub uri: Uri,
    /// The route template (axum's `MatchedPath`, e.g. `/spaces/{id}`) when the layer runs inside an
    /// axum router (`Router::layer`).
    pub matched_path: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
}

impl RequestInfo {
    pub(crate) fn capture<B>(req: &http::Request<B>) -> Self {
        RequestInfo {
            method: req.method().clone(),
            uri: req.uri().clone(),
            matched_path: req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str().to_owned()),
            headers: req.headers().clone(),
        }
    }

    /// The matched route if known, else the URI path.
    pub fn route(&self) -> &str {
        self.matched_path.as_deref().unwrap_or(self.uri.path())
    }
}

/// What a classifier may read of the response.
#[derive(Debug)]
pub struct ResponseInfo<'a> {
    /// Response status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: &'a HeaderMap,
}

/// Maps a finished request to an event (or none).
///
/// Any `Fn(&RequestInfo, &ResponseInfo<'_>) -> Option<Event>` closure is a classifier:
///
/// ```
/// use realtime_layer::{Classifier, Event, RequestInfo, ResponseInfo};
///
/// let classify = |req: &RequestInfo, res: &ResponseInfo<'_>| {
///     let user = req.headers.get("x-user")?.to_str().ok()?.to_owned();
///     match (req.method.as_str(), req.route(), res.status.is_success()) {
///         ("POST", "/leases", true) => Some(Event::borrow("gpu", user)),
///         ("POST", "/leases", false) => Some(Event::failure("gpu", user, "exhausted")),
///         ("DELETE", "/leases/{id}", true) => Some(Event::returned("gpu", user)),
///         _ => None,
///     }
/// };
/// # fn is_classifier(_: impl Classifier) {}
/// # is_classifier(classify);
/// ```
pub trait Classifier: Send + Sync + 'static {
    /// The event this exchange stands for, if any.
    fn classify(&self, request: &RequestInfo, response: &ResponseInfo<'_>) -> Option<Event>;
}

impl<F> Classifier for F
where
    F: Fn(&RequestInfo, &ResponseInfo<'_>) -> Option<Event> + Send + Sync + 'static,
{
    fn classify(&self, request: &RequestInfo, response: &ResponseInfo<'_>) -> Option<Event> {
        self(request, response)
    }
}
