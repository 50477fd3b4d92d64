//! The tower middleware: [`RealtimeLayer`] (configuration), [`RealtimeService`] (the wrapped
//! service) and [`ResponseFuture`], in tower-http's shape.
//!
//! Events are captured three ways:
//! 1. handlers put [`Event`](crate::Event)s in the response extensions (or return them as response
//!    parts); the layer records and removes them as the response passes;
//! 2. code holding the [`Realtime`](crate::Realtime) handle calls
//!    [`Realtime::record`](crate::Realtime::record);
//! 3. a [`Classifier`] maps request/response facts (method, matched path, status, headers) to
//!    events, for services whose handlers cannot be changed.

mod classify;
mod future;
mod refusals;
mod service;

pub use classify::{Classifier, RequestInfo, ResponseInfo};
pub use future::ResponseFuture;
pub use refusals::{RefusalFuture, RefusalLayer, RefusalService};
pub use service::RealtimeService;

use crate::core::{Core, HttpMetrics};
use std::sync::Arc;
use tower_layer::Layer;

/// Records borrow/return/failure events of the wrapped service into a
/// [`Realtime`](crate::Realtime) instance (built by [`Realtime::layer`](crate::Realtime::layer)
/// or [`RealtimeLayer::new`]).
///
/// Works on any `tower::Service<http::Request<B>>` answering `http::Response<_>`.
///
/// ```
/// use http::{Request, Response, StatusCode};
/// use realtime_layer::{Event, Realtime, RequestInfo, ResponseInfo};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let realtime = Realtime::builder().build().unwrap();
/// let layer = realtime.layer().classifier(|req: &RequestInfo, res: &ResponseInfo<'_>| {
///     (req.method == http::Method::POST && res.status == StatusCode::CREATED)
///         .then(|| Event::borrow("parking", "visitor"))
/// });
/// let service = ServiceBuilder::new().layer(layer).service(service_fn(|_req: Request<()>| async {
///     Ok::<_, std::convert::Infallible>(
///         Response::builder().status(StatusCode::CREATED).body(()).unwrap(),
///     )
/// }));
/// let request = Request::post("/spaces").body(()).unwrap();
/// service.oneshot(request).await.unwrap();
/// assert_eq!(realtime.buffer().stats().borrow_count, 1);
/// # }
/// ```
#[derive(Clone)]
pub struct RealtimeLayer {
    /// The instance's core: the only thing the request path touches.
    core: Arc<Core>,
    classifier: Option<Arc<dyn Classifier>>,
    http: Option<Arc<HttpMetrics>>,
}

impl std::fmt::Debug for RealtimeLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeLayer")
            .field("classifier", &self.classifier.is_some())
            .finish_non_exhaustive()
    }
}

impl RealtimeLayer {
    /// A layer recording into `core` (the facade's [`RealtimeLayer::new`] and
    /// [`Realtime::layer`](crate::Realtime::layer) call this).
    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        RealtimeLayer {
            core,
            classifier: None,
            http: None,
        }
    }

    /// Wraps a whole axum [`Router`](axum::Router) once: the cheapest way to run the layer.
    ///
    /// `Router::layer` wraps every route separately, so each request also pays for a boxed clone
    /// of the route and a larger future; wrapped once around the router (as tower-http suggests
    /// for outer layers), the layer costs about 1% of a hello-world request, or 5% with an event
    /// recorded (`cargo bench -p realtime-layer --bench overhead`). The router's handlers are
    /// turned into routes here, once (`Router::with_state(())`), not on every request.
    ///
    /// Serve the result with `axum::serve(listener, app.into_make_service())`. A [classifier](Self::classifier) that matches on route templates
    /// needs `Router::layer` instead: outside the router the request has no `MatchedPath` yet.
    ///
    /// ```
    /// use axum::{routing::post, Router};
    /// use realtime_layer::{Event, Realtime};
    ///
    /// async fn borrow() -> (Event, &'static str) {
    ///     (Event::borrow("GPU A100", "alice"), "ok")
    /// }
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let realtime = Realtime::builder().build().unwrap();
    /// let router = Router::new()
    ///     .route("/borrow", post(borrow))
    ///     .merge(realtime.routes());
    /// let app = realtime.layer().wrap(router);
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// axum::serve(listener, app.into_make_service()).await
    /// # }
    /// ```
    pub fn wrap(&self, router: axum::Router) -> RealtimeService<axum::Router> {
        self.layer(router.with_state(()))
    }

    /// Also records HTTP golden signals of every request: rate, errors and latency per route
    /// (axum's `MatchedPath`, so apply the layer with `Router::layer`; requests matching no route
    /// count as `(unmatched)`, at most [`MAX_ROUTES`](crate::MAX_ROUTES) routes), exported as the OpenTelemetry
    /// histogram `http.server.request.duration` (`http.route`, `http.request.method`,
    /// `http.response.status_code`), listed under `http` in `/realtime/stats` and shown on the
    /// page. Costs a clock read and a short lock per request; off by default.
    pub fn http_metrics(mut self) -> Self {
        self.http = Some(self.core.http.clone());
        self
    }

    /// Also derives events from request/response facts. Events found in the response extensions
    /// are still recorded.
    pub fn classifier(mut self, classifier: impl Classifier) -> Self {
        self.classifier = Some(Arc::new(classifier));
        self
    }
}

impl<S> Layer<S> for RealtimeLayer {
    type Service = RealtimeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RealtimeService::new(
            inner,
            self.core.clone(),
            self.classifier.clone(),
            self.http.clone(),
        )
    }
}
