use super::classify::{Classifier, RequestInfo};
use super::future::ResponseFuture;
use crate::core::{Core, HttpMetrics};
use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// The service produced by [`RealtimeLayer`](super::RealtimeLayer).
#[derive(Clone)]
pub struct RealtimeService<S> {
    inner: S,
    core: Arc<Core>,
    classifier: Option<Arc<dyn Classifier>>,
    http: Option<Arc<HttpMetrics>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for RealtimeService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeService")
            .field("inner", &self.inner)
            .field("classifier", &self.classifier.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> RealtimeService<S> {
    pub(crate) fn new(
        inner: S,
        core: Arc<Core>,
        classifier: Option<Arc<dyn Classifier>>,
        http: Option<Arc<HttpMetrics>>,
    ) -> Self {
        RealtimeService {
            inner,
            core,
            classifier,
            http,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl RealtimeService<axum::Router> {
    /// A make-service for `axum::serve(listener, app.into_make_service())` (what
    /// `axum::ServiceExt::into_make_service` gives, without naming the request type).
    pub fn into_make_service(self) -> axum::routing::IntoMakeService<Self> {
        axum::ServiceExt::<axum::extract::Request>::into_make_service(self)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RealtimeService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Request facts are only copied when a classifier will read them.
        let classify = self
            .classifier
            .as_ref()
            .map(|c| Box::new((c.clone(), RequestInfo::capture(&req))));
        let http = self.http.as_ref().map(|h| h.start(&req));
        ResponseFuture::new(self.inner.call(req), self.core.clone(), classify, http)
    }
}
