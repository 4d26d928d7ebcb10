//! SSE responses for catwalk's streams: events framed by [`catwalk_core::wire::sse`] (which axum's builder
//! cannot express: the empty priming event, a server's own bytes never re-serialised), with a keep-alive comment
//! when the stream has been quiet.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::time::{Interval, MissedTickBehavior, interval_at};

use catwalk_core::wire::sse::KEEP_ALIVE;
pub use catwalk_core::wire::sse::{event, priming};

/// An SSE response over `events`, with `X-Accel-Buffering: no` so proxies do not hold events back.
pub fn response<S>(events: S, keep_alive: Duration) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let start = tokio::time::Instant::now() + keep_alive;
    let mut ticks = interval_at(start, keep_alive);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let body = KeepAlive {
        events: Box::pin(events),
        ticks,
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Passes events through; when none came for a keep-alive interval, sends a comment line.
struct KeepAlive {
    events: Pin<Box<dyn Stream<Item = Bytes> + Send>>,
    ticks: Interval,
}

impl Stream for KeepAlive {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.events.as_mut().poll_next(cx) {
            Poll::Ready(Some(event)) => {
                self.ticks.reset();
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.ticks.poll_tick(cx) {
                Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
