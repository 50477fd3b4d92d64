//! [`RefusalLayer`]: counts refused answers (401, 403, 409, 413, 415, 421, 422, 429) of the
//! services it wraps, by route template and reason (see [`Refusal`](crate::Refusal)).

use crate::core::{is_refusal, Core};
use crate::error::Refusal;
use axum::extract::MatchedPath;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Counts the refused answers of the wrapped service into a [`Realtime`](crate::Realtime)
/// instance (built by [`Realtime::refusal_layer`](crate::Realtime::refusal_layer)).
///
/// Apply it with `Router::layer` (after routing, so the request carries its `MatchedPath`), last,
/// so it also sees the refusals of the layers applied before it (authentication, Host checks):
///
/// ```
/// use axum::{http::StatusCode, routing::post, Router};
/// use realtime_layer::{Realtime, Refusal};
///
/// let realtime = Realtime::builder().build().unwrap();
/// let app: Router = Router::new()
///     .route("/borrow", post(|| async { (StatusCode::CONFLICT, Refusal::new("exhausted"), "all out") }))
///     .layer(realtime.refusal_layer());
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct RefusalLayer {
    core: Arc<Core>,
}

impl std::fmt::Debug for RefusalLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalLayer").finish_non_exhaustive()
    }
}

impl RefusalLayer {
    /// A layer counting into `core` (the facade's `refusal_layer` calls this).
    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        core.refusals.enable();
        RefusalLayer { core }
    }
}

impl<S> Layer<S> for RefusalLayer {
    type Service = RefusalService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefusalService {
            inner,
            core: self.core.clone(),
        }
    }
}

/// The service produced by [`RefusalLayer`].
#[derive(Clone)]
pub struct RefusalService<S> {
    inner: S,
    core: Arc<Core>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for RefusalService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RefusalService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RefusalFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // A clone of an `Arc<str>`: the route is only read if the answer is a refusal.
        let route = req.extensions().get::<MatchedPath>().cloned();
        RefusalFuture {
            inner: self.inner.call(req),
            core: self.core.clone(),
            route,
        }
    }
}

pin_project! {
    /// Response future of [`RefusalService`].
    pub struct RefusalFuture<F> {
        #[pin]
        inner: F,
        core: Arc<Core>,
        route: Option<MatchedPath>,
    }
}

impl<F, B, E> Future for RefusalFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            if is_refusal(response.status()) {
                let reason = response.extensions().get::<Refusal>().map(Refusal::reason);
                let route = this.route.as_ref().map(MatchedPath::as_str);
                this.core.refusals.count(route, reason, response.status());
            }
        }
        Poll::Ready(result)
    }
}
