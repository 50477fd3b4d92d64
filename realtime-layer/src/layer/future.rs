use super::classify::{Classifier, RequestInfo, ResponseInfo};
use crate::event::RealtimeEvents;
use crate::handle::Realtime;
use http::Response;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

pin_project! {
    /// Response future of [`RealtimeService`](super::RealtimeService): records the response's
    /// events once the inner future resolves.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        realtime: Option<Realtime>,
        classify: Option<(Arc<dyn Classifier>, RequestInfo)>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: F,
        realtime: Realtime,
        classify: Option<(Arc<dyn Classifier>, RequestInfo)>,
    ) -> Self {
        ResponseFuture {
            inner,
            realtime: Some(realtime),
            classify,
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
        if let (Ok(response), Some(realtime)) = (&mut result, this.realtime.take()) {
            // Removed so internal bookkeeping never leaks to outer layers or clients.
            if let Some(RealtimeEvents(events)) =
                response.extensions_mut().remove::<RealtimeEvents>()
            {
                realtime.record_all(&events);
            }
            if let Some((classifier, request)) = this.classify.take() {
                let info = ResponseInfo {
                    status: response.status(),
                    headers: response.headers(),
                };
                if let Some(event) = classifier.classify(&request, &info) {
                    realtime.record(event);
                }
            }
        }
        Poll::Ready(result)
    }
}
