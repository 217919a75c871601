//! When each watch stream of a stanza last delivered anything — an event or a bookmark — stamped
//! on the client's responses as they stream in (`kubernetai_watch_last_heard_timestamp_seconds`):
//! kube-rs's watcher consumes bookmarks and tells no one, so without this a watch kept alive
//! only by bookmarks would look as silent as a dead one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use crate::observe::metrics::registry;

pub const METRIC: &str = "kubernetai_watch_last_heard_timestamp_seconds";

/// Stamps the watch streams of the stanza `at`.
#[derive(Clone)]
pub struct HeardLayer(pub Arc<str>);

impl<S> Layer<S> for HeardLayer {
    type Service = Heard<S>;

    fn layer(&self, inner: S) -> Heard<S> {
        Heard { inner, at: self.0.clone() }
    }
}

#[derive(Clone)]
pub struct Heard<S> {
    inner: S,
    at: Arc<str>,
}

impl<S, R, B> Service<Request<R>> for Heard<S>
where
    S: Service<Request<R>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: Body + Unpin,
{
    type Response = Response<Stamping<B>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<R>) -> Self::Future {
        let watch = req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
        // The resource is the path's last segment: services, endpointslices, pods, …
        let labels = watch.then(|| (self.at.clone(), req.uri().path().rsplit('/').next().unwrap_or_default().to_string()));
        let response = self.inner.call(req);
        Box::pin(async move { Ok(response.await?.map(|inner| Stamping { inner, labels })) })
    }
}

/// A response body that stamps the time of each piece of data it yields, for a watch.
pub struct Stamping<B> {
    inner: B,
    labels: Option<(Arc<str>, String)>,
}

impl<B: Body + Unpin> Body for Stamping<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some((at, resource))) = (&polled, &this.labels)
            && frame.is_data()
        {
            registry().set(METRIC, &[at, resource], crate::now() as f64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
