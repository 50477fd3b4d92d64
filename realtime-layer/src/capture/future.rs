use super::classify::{Classifier, RequestInfo, ResponseInfo};
use crate::core::{Core, HttpStart};
use crate::event::RealtimeEvents;
use http::Response;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// What a classifier needs once the response is there; boxed, so the future stays two words
/// larger than the inner one (futures are moved several times per request).
pub(crate) type Classify = Box<(Arc<dyn Classifier>, RequestInfo)>;

pin_project! {
    /// Response future of [`RealtimeService`](super::RealtimeService): records the response's
    /// events once the inner future resolves.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        core: Arc<Core>,
        classify: Option<Classify>,
        http: Option<HttpStart>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: F,
        core: Arc<Core>,
        classify: Option<Classify>,
        http: Option<HttpStart>,
    ) -> Self {
        ResponseFuture {
            inner,
            core,
            classify,
            http,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(http)) = (&result, this.http.take()) {
            http.finish(response.status());
        }
        if let Ok(response) = &mut result {
            // Most responses carry no extension at all: one pointer test, no map lookup.
            if !response.extensions().is_empty() {
                // Removed so internal bookkeeping never leaks to outer layers or clients.
                if let Some(RealtimeEvents(events)) =
                    response.extensions_mut().remove::<RealtimeEvents>()
                {
                    this.core.record_owned(events);
                }
            }
            if let Some(classify) = this.classify.take() {
                let (classifier, request) = &*classify;
                let info = ResponseInfo {
                    status: response.status(),
                    headers: response.headers(),
                };
                if let Some(event) = classifier.classify(request, &info) {
                    this.core.record(event);
                }
            }
        }
        Poll::Ready(result)
    }
}
